//! `wgate-api`: the tenant-facing HTTP API. It authenticates each tenant (JWT), rate-limits it (governor, per
//! tenant), validates the session-create body, stores and queues the job in Redis through `wgate-queue`, and
//! answers synchronously by waiting on the completion subscription, or at once with 202. It also relays
//! WhatsGate's webhooks to the tenants' own callbacks. Its OpenAPI document is generated from the handlers
//! ([`openapi`]) and served at `GET /openapi.json`.
//!
//! `Application::build(settings)` binds both listeners (port 0 allowed) and `run_until_stopped` serves them; the
//! binary's `main` is a few lines over it.
#![warn(unreachable_pub)]

pub mod auth;
pub mod callback_check;
pub mod error;
pub mod fallback;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod prefer;
pub mod present;
pub mod qr_cache;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod store;
pub mod upstream;

pub use settings::ApiSettings;
pub use startup::Application;
