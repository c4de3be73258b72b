//! The job worker running session-create upstream (binary wgate-worker).
