//! A WhatsGate-compatible simulator (binary `wgate-sim`) for the gateway's tests, benchmarks and demos.
//!
//! It speaks WhatsGate's documented API, `POST /api/v1/<command>` (or `/v1/<command>`, the base of WhatsGate's
//! SDKs) with `X-Api-Key`: the session commands (`session-create`, `sessions-get`, `session-delete`,
//! `set-hook`, `set-name`) and the messaging ones (`send`, `check`, `get-chats`, `seen`, `typing`,
//! `get-media`, `events-get`; see [`messaging`]). It answers every error with HTTP 500
//! `{"name","message","code":0}`, serves its own QR window at `/qr/<unique_id>` with WhatsGate's
//! postMessage protocol, and delivers webhooks `{id, whatsapp_id, event_action, event_date, status_code,
//! event_data}` with acknowledgement and retries; every event is also kept for `events-get` ([`events`]).
//! It shares no code with the gateway on purpose: it is the independent check of it.
//!
//! Messaging works on READY sessions only. A send answers the sent message (`"async": false`) or
//! `{"result":{}}` (queued, the default), then sends `sent` (queued sends only) and `ack` events.
//! `POST /sim/sessions/<id>/incoming` makes a message (text or a file of a chosen size, then served by
//! `get-media`) arrive, `/disconnect` logs the device out (a `disconnect` event, then PENDING and AUTH
//! again), and `/event` makes any documented event (`create`, `media`, `error`, ...).
//!
//! Session lifecycle (computed from timestamps when read, so it costs nothing while idle):
//! `PENDING` for `--init-ms` after creation, then `AUTH` with a `qr` (or, in CODE mode, a pairing `code`,
//! already given in the create answer) that changes every `--qr-rotate-ms`. `POST /sim/sessions/<id>/scan`
//! makes it `READY` (with `wid` and `pushname`) and sends a `ready` webhook. `POST /sim/sessions/<id>/fail`
//! simulates a failed authorization: the session goes back to `PENDING` (no qr) and after `--init-ms` shows
//! fresh values in `AUTH` again, so a client polling `sessions-get` sees `AUTH -> PENDING` as "authorization
//! failed, try again" (the QR page reports it as `error`). `session-delete` answers the session as
//! `DESTROYING`; afterwards it is gone and every command on it is `NotFound`.
//!
//! Faults apply to `session-create` only and are decided by one draw of a seeded generator per valid call
//! (after the key check and body validation): `error` (500, nothing created), `throttle` (429 with
//! `Retry-After: 1`, nothing created), `timeout` (never answered, nothing created) and `ambiguous`
//! (created, then answered 500 or the connection dropped, chosen by a second draw). The same seed and the
//! same sequence of calls give the same outcomes. `/sim/stats`, `/sim/faults` and `/sim/reset` let tests
//! observe and steer it; see [`Application`] to start one in-process on port 0.
#![warn(unreachable_pub)]

pub mod api;
pub mod clock;
pub mod config;
pub mod control;
pub mod events;
pub mod messaging;
pub mod qr_page;
pub mod session;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhook;

pub use config::{DEFAULT_API_KEY, FaultSettings, SimConfig};
pub use startup::{Application, spawn};
