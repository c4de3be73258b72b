//! The simulator's integration tests: it is started in-process on port 0 (and once as the real binary)
//! and driven over HTTP only, as the gateway will drive it.

mod binary;
mod commands;
mod events;
mod faults;
mod helpers;
mod lifecycle;
mod messaging;
mod qr_window;
mod webhooks;
