//! The job store and queue over Redis: the key layout, the Lua scripts that change several keys at once, the
//! completion notifications a synchronous request waits on, and the apalis backend over a Redis Streams consumer
//! group that the worker runs on.
//!
//! Every key starts with its partition's hash tag (`{<namespace>}:` with one partition, see [`Layout`]), and a
//! script only gets keys of one partition, so each script's keys share one slot.
//! `docs/ARCHITECTURE.md` holds the key table; keep it true when a key changes here.
#![warn(unreachable_pub)]

mod attempt;
mod backend;
mod completions;
mod config;
mod enqueue;
mod error;
mod keys;
mod messaging;
mod migrate;
mod qr;
mod record;
mod redis_conn;
mod scripts;
mod sessions;
mod settings;
mod store;
mod webhook;
mod webhook_batch;

pub use attempt::{
    DEAD_LETTER_CAP, DEAD_LETTER_VALUE_MAX, Delivery, Finished, MAX_RECONCILE_PASSES, Outcome, Poison, Started, Written,
};
pub use backend::{Starter, StopHandle, StreamAck, StreamBackend, StreamConfig, consumer_name};
pub use completions::{Completions, Waiter};
pub use config::{QueueConfig, RedisMode, RedisTls};
pub use error::QueueError;
pub use keys::{GROUP, Keys, Layout, MAX_PARTITIONS, Queue, key_slot};
pub use messaging::{Pace, PaceAnswer, SendClaim};
pub use migrate::MigrateReport;
pub use qr::QrTarget;
pub use redis_conn::redact_url;
pub use settings::RedisSettings;
pub use store::{Enqueued, HookTarget, JobStore, QueueCounts, RateAnswer, RateDraw, Replay, SessionOwner};
pub use webhook::{
    DELIVERY_STATUSES, DeliveryFilter, DeliveryFinish, DeliveryOutcome, DeliveryPage, DeliveryRecord, DeliveryReplay,
    DeliveryStart, HookState, NewEvent, Received, SCAN_LIMIT, now_ms,
};
pub use webhook_batch::DeliveryBatcher;
