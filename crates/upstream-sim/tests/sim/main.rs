//! The simulator's integration tests: it is started in-process on port 0 (and once as the real binary)
//! and driven over HTTP only, as the gateway will drive it.

mod binary;
mod commands;
mod faults;
mod helpers;
mod lifecycle;
mod qr_window;
mod webhooks;
