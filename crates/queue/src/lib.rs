//! Durable job queue and job store over Redis Streams, with an apalis backend.
