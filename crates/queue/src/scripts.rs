//! The Lua scripts (in `src/lua/`), loaded once per process and run with `EVALSHA`.

use std::sync::LazyLock;

use redis::Script;

/// The scripts that draw from a tenant's rate-limit bucket start with the one GCRA function.
macro_rules! with_gcra {
    ($file:literal) => {
        concat!(include_str!("lua/gcra.lua"), include_str!($file))
    };
}

/// The scripts that start attempts share one function for it.
macro_rules! with_start_one {
    ($file:literal) => {
        concat!(include_str!("lua/start_one.lua"), include_str!($file))
    };
}

pub(crate) static ENQUEUE: LazyLock<Script> = LazyLock::new(|| Script::new(with_gcra!("lua/enqueue.lua")));
pub(crate) static REPLAY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/replay.lua")));
pub(crate) static COUNTS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/counts.lua")));
pub(crate) static START: LazyLock<Script> = LazyLock::new(|| Script::new(with_start_one!("lua/start.lua")));
pub(crate) static FINISH: LazyLock<Script> = LazyLock::new(|| Script::new(with_start_one!("lua/finish.lua")));
pub(crate) static PROMOTE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/promote.lua")));
pub(crate) static REFRESH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/refresh.lua")));
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/release.lua")));
pub(crate) static FORGET_SESSION: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/forget_session.lua")));
pub(crate) static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/dead_letter.lua")));
pub(crate) static TRIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/trim.lua")));
pub(crate) static RATE: LazyLock<Script> = LazyLock::new(|| Script::new(with_gcra!("lua/rate.lua")));
pub(crate) static SEND_CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/send_claim.lua")));
pub(crate) static SEND_FINISH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/send_finish.lua")));
pub(crate) static PACE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/pace.lua")));
pub(crate) static WEBHOOK_RECEIVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/webhook_receive.lua")));
pub(crate) static WEBHOOK_START: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/webhook_start.lua")));
pub(crate) static WEBHOOK_FINISH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/webhook_finish.lua")));
pub(crate) static WEBHOOK_REPLAY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/webhook_replay.lua")));
