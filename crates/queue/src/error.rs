//! One error type for every queue call, by how the caller reacts.

/// What went wrong talking to the queue.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// Redis cannot be reached, timed out or is loading: the caller answers 503 / retries later.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not have the shape this code writes: a bug or a hand edit.
    #[error("corrupt queue data: {0}")]
    Corrupt(String),
    /// The configuration cannot work (an invalid Redis URL, say).
    #[error("invalid queue configuration: {0}")]
    Config(String),
    /// Redis refused a command for another reason (a script error, permissions).
    #[error("redis error: {0}")]
    Redis(String),
}

impl QueueError {
    /// True when the error says nothing about the data, only that Redis is unreachable for now.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<redis::RedisError> for QueueError {
    fn from(e: redis::RedisError) -> Self {
        use redis::{ErrorKind, ServerErrorKind};
        let unavailable = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
            || matches!(
                e.kind(),
                ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                        // A cluster's slot moving (a failover, a resharding) past the client's redirects.
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                ) | ErrorKind::ClusterConnectionNotFound
            );
        if unavailable { Self::Unavailable(e.to_string()) } else { Self::Redis(e.to_string()) }
    }
}
