//! The `wgate` command line as a library, so tests can call each command in process.
#![warn(unreachable_pub)]

pub mod chaos;
pub mod cli;
pub mod dev;
pub mod hooks;
pub mod jobs;
pub mod migrate;
pub mod token;
