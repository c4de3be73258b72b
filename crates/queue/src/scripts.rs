//! The Lua scripts (in `src/lua/`), loaded once per process and run with `EVALSHA`.

use std::sync::LazyLock;

use redis::Script;

pub(crate) static ENQUEUE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/enqueue.lua")));
pub(crate) static REPLAY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/replay.lua")));
pub(crate) static COUNTS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/counts.lua")));
