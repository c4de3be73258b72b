//! Test helpers: private redis-server instances and in-process services on port 0.
