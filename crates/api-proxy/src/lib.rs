//! The tenant-facing HTTP API (binary wgate-api).
