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

/// The client for `WGATE_REDIS_URL`, with the certificates of `config.tls` for a `rediss://` URL. Every
/// connection the processes make (the shared one, the worker's blocking reader, the completion subscription)
/// comes from here, so all of them use TLS alike.
pub(crate) fn client(config: &QueueConfig) -> Result<redis::Client, QueueError> {
    let url = config.redis_url.trim();
    let bad_url = |e: redis::RedisError| {
        QueueError::Config(format!("WGATE_REDIS_URL {:?} is not a Redis URL: {e}", redact_url(url)))
    };
    let tls = &config.tls;
    let is_tls = url.starts_with("rediss://");
    if tls.is_set() && !is_tls {
        return Err(QueueError::Config(format!(
            "WGATE_REDIS_CA_FILE, WGATE_REDIS_CLIENT_CERT and WGATE_REDIS_CLIENT_KEY apply to TLS only, but \
             WGATE_REDIS_URL {:?} is not a rediss:// URL",
            redact_url(url)
        )));
    }
    if !tls.is_set() {
        // A rediss:// URL without files trusts the system's CA store.
        return redis::Client::open(url).map_err(bad_url);
    }
    let root_cert = match &tls.ca_file {
        Some(path) => {
            let pem = read_pem("WGATE_REDIS_CA_FILE", path)?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(QueueError::Config(format!(
                    "WGATE_REDIS_CA_FILE {} holds no PEM certificate",
                    path.display()
                )));
            }
            Some(pem)
        }
        None => None,
    };
    let client_tls = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read_pem("WGATE_REDIS_CLIENT_CERT", cert)?,
            client_key: read_pem("WGATE_REDIS_CLIENT_KEY", key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(QueueError::Config(
                "WGATE_REDIS_CLIENT_CERT and WGATE_REDIS_CLIENT_KEY go together: set both (mutual TLS) or neither"
                    .into(),
            ));
        }
    };
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(bad_url)?;
    redis::Client::build_with_tls(info, redis::TlsCertificates { client_tls, root_cert }).map_err(|e| {
        QueueError::Config(format!(
            "the TLS files for WGATE_REDIS_URL {:?} cannot be used (WGATE_REDIS_CA_FILE, \
             WGATE_REDIS_CLIENT_CERT, WGATE_REDIS_CLIENT_KEY must be PEM): {e}",
            redact_url(url)
        ))
    })
}

fn read_pem(setting: &str, path: &std::path::Path) -> Result<Vec<u8>, QueueError> {
    std::fs::read(path).map_err(|e| QueueError::Config(format!("{setting} {}: cannot be read: {e}", path.display())))
}

/// A Redis URL (or a comma-separated list of them) with every password replaced by `***`, for messages and `Debug`.
/// The `url` crate's parser finds the user info as Redis does, up to the last `@` before the host, so a password
/// holding `@` or `:` is hidden whole; a URL it cannot parse keeps only what follows its last `@`.
pub fn redact_url(urls: &str) -> String {
    urls.split(',').map(|one| redact_one(one.trim())).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn a_password_holding_at_signs_and_colons_is_hidden_whole() {
        assert_eq!(redact_url("redis://:p@ss:w@rd@host:6379/0"), "redis://:***@host:6379/0");
        assert_eq!(redact_url("rediss://user:s3cr@t@h:6380"), "rediss://user:***@h:6380");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("redis://:a@b@h1:1, redis://:c@d@h2:2"), "redis://:***@h1:1,redis://:***@h2:2");
        assert!(!redact_url("not a url with:secret@stuff@host").contains("secret"));
    }
}
