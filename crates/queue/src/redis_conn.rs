//! A lazily connected, self-reconnecting Redis handle whose every call is bounded by the command timeout.

use std::{future::Future, sync::Arc, time::Duration};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::{QueueConfig, QueueError};

/// Connects on first use (so a process can start while Redis is down) and reconnects by itself afterwards.
#[derive(Clone)]
pub(crate) struct Redis {
    client: redis::Client,
    manager: Arc<OnceCell<ConnectionManager>>,
    timeout: Duration,
}

impl Redis {
    pub(crate) fn new(config: &QueueConfig) -> Result<Self, QueueError> {
        let client = client(config)?;
        Ok(Self { client, manager: Arc::new(OnceCell::new()), timeout: config.command_timeout })
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The shared multiplexed connection (created lazily; it connects at its first command).
    pub(crate) async fn conn(&self) -> Result<ConnectionManager, QueueError> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.timeout))
            .set_connection_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let client = self.client.clone();
        self.manager
            .get_or_try_init(|| async move { ConnectionManager::new_lazy_with_config(client, config) })
            .await
            .cloned()
            .map_err(QueueError::from)
    }

    /// Runs one call on the shared connection, bounded by the command timeout.
    pub(crate) async fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, QueueError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn().await?;
        match tokio::time::timeout(self.timeout, f(conn)).await {
            Ok(r) => r.map_err(QueueError::from),
            Err(_) => Err(QueueError::Unavailable(format!("{what}: no answer from redis within {:?}", self.timeout))),
        }
    }

    /// Like [`Redis::call`] for calls that are safe to repeat (reads): the first call after Redis restarted
    /// fails on the dead connection, so it is tried once more on the new one, within the same time bound.
    pub(crate) async fn call_again<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, QueueError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let conn = self.conn().await?;
            match f(conn).await {
                Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                    let conn = self.conn().await?;
                    f(conn).await.map_err(QueueError::from)
                }
                r => r.map_err(QueueError::from),
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(QueueError::Unavailable(format!("{what}: no answer from redis within {:?}", self.timeout))),
        }
    }
}

pub(crate) fn client(config: &QueueConfig) -> Result<redis::Client, QueueError> {
    redis::Client::open(config.redis_url.as_str()).map_err(|e| {
        QueueError::Config(format!("WGATE_REDIS_URL {:?} is not a Redis URL: {e}", redact(&config.redis_url)))
    })
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((head, tail)) => match head.rsplit_once(':') {
            Some((scheme_user, _)) if scheme_user.contains("//") => format!("{scheme_user}:***@{tail}"),
            _ => format!("***@{tail}"),
        },
        None => url.to_owned(),
    }
}
