//! The `wgate` command line as a library, so tests can call each command in process.

pub mod chaos;
pub mod cli;
pub mod dev;
pub mod hooks;
pub mod jobs;
pub mod token;
