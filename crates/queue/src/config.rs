//! Where the queue lives and how long its records are kept.

use std::{path::PathBuf, time::Duration};

/// Settings shared by every user of the queue (API and worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub redis_url: String,
    /// Every key is `{<namespace>}:...` or, with several partitions, `{<namespace>:<n>}:...`; the braces are a
    /// Redis Cluster hash tag.
    pub namespace: String,
    /// Bound on every Redis call: a dead Redis turns into [`crate::QueueError::Unavailable`] within this time.
    pub command_timeout: Duration,
    /// How long terminal job records, their hooks and dead entries are kept.
    pub job_ttl: Duration,
    /// How long an `Idempotency-Key` holds its job.
    pub idempotency_ttl: Duration,
    /// Certificates for a `rediss://` URL.
    pub tls: RedisTls,
    /// One Redis, or a primary found through Sentinel.
    pub mode: RedisMode,
    /// A write acknowledged to a client (an enqueue with its idempotency record, a replay) is acknowledged only
    /// once `WAIT` says this many replicas have it; 0 turns the wait off.
    pub wait_replicas: u32,
    /// How long that `WAIT` may take before the write is reported unavailable.
    pub wait_timeout: Duration,
    /// Hash tags the keys and queues are split into (`WGATE_QUEUE_PARTITIONS`, see [`crate::Layout`]); 1 keeps
    /// every key under `{<namespace>}`.
    pub partitions: u16,
}

/// How `redis_url` is read: one server, or the sentinels that name the current primary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RedisMode {
    /// `redis_url` is the one Redis (a managed endpoint whose address follows failover is one too).
    #[default]
    Standalone,
    /// `redis_url` lists the sentinels, comma separated; `service` is the name they monitor the primary under.
    /// Their user, password and TLS apply to the primary as well; the database number applies to the primary.
    Sentinel { service: String },
    /// `redis_url` lists seed nodes of a Redis Cluster, comma separated; the client learns the rest and follows
    /// slot moves and failovers. Their user, password and TLS apply to every node.
    Cluster,
}

impl RedisMode {
    /// From `WGATE_REDIS_MODE` and `WGATE_REDIS_SENTINEL_SERVICE`; the error is one line naming the setting.
    pub fn parse(mode: &str, sentinel_service: Option<&str>) -> Result<Self, String> {
        let service = sentinel_service.map(str::trim).filter(|s| !s.is_empty());
        match mode.trim().to_ascii_lowercase().as_str() {
            "standalone" | "" => match service {
                None => Ok(Self::Standalone),
                Some(_) => Err("WGATE_REDIS_SENTINEL_SERVICE is set but WGATE_REDIS_MODE is standalone: set \
                                WGATE_REDIS_MODE=sentinel, or unset the service"
                    .into()),
            },
            "sentinel" => match service {
                Some(s) => Ok(Self::Sentinel { service: s.to_owned() }),
                None => Err("WGATE_REDIS_MODE=sentinel needs WGATE_REDIS_SENTINEL_SERVICE, the name the sentinels \
                             monitor the primary under"
                    .into()),
            },
            "cluster" => match service {
                None => Ok(Self::Cluster),
                Some(_) => Err("WGATE_REDIS_SENTINEL_SERVICE is set but WGATE_REDIS_MODE is cluster: unset the \
                                service, or set WGATE_REDIS_MODE=sentinel"
                    .into()),
            },
            other => Err(format!("WGATE_REDIS_MODE {other:?} is not one of standalone, sentinel, cluster")),
        }
    }
}

/// PEM files for a `rediss://` connection: a private CA to trust instead of the system's, and a client
/// certificate and key for a server that requires mutual TLS. Read when a connection is made, so a renewed
/// certificate is picked up by the next reconnection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// `WGATE_REDIS_CA_FILE`: the CA certificate(s) that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// `WGATE_REDIS_CLIENT_CERT`: the client certificate chain, given with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// `WGATE_REDIS_CLIENT_KEY`: the client certificate's private key.
    pub client_key: Option<PathBuf>,
}

impl RedisTls {
    /// True when any file is set (then the URL must be `rediss://`).
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }
}

impl QueueConfig {
    /// The documented defaults: 1 s command timeout, 7-day job TTL, 24 h idempotency TTL.
    pub fn new(redis_url: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            namespace: namespace.into(),
            command_timeout: Duration::from_secs(1),
            job_ttl: Duration::from_secs(7 * 24 * 3600),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            tls: RedisTls::default(),
            mode: RedisMode::Standalone,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(500),
            partitions: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RedisMode;

    #[test]
    fn the_redis_mode_is_read_with_its_service() {
        assert_eq!(RedisMode::parse("standalone", None), Ok(RedisMode::Standalone));
        assert_eq!(RedisMode::parse(" Sentinel ", Some("main")), Ok(RedisMode::Sentinel { service: "main".into() }));
        assert_eq!(RedisMode::parse("Cluster", None), Ok(RedisMode::Cluster));
        let e = RedisMode::parse("cluster", Some("main")).unwrap_err();
        assert!(e.contains("WGATE_REDIS_SENTINEL_SERVICE") && !e.contains('\n'), "{e}");
        assert!(RedisMode::parse("sentinel", None).unwrap_err().contains("WGATE_REDIS_SENTINEL_SERVICE"));
        assert!(RedisMode::parse("sentinel", Some(" ")).is_err());
        assert!(RedisMode::parse("standalone", Some("main")).unwrap_err().contains("WGATE_REDIS_MODE"));
        assert!(RedisMode::parse("replicated", None).unwrap_err().contains("standalone, sentinel, cluster"));
    }
}
