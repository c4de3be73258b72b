//! A private redis-server and a `JobStore` on it, one per test.

use std::time::Duration;

use time::OffsetDateTime;
use wgate_queue::{JobStore, QueueConfig};
use wgate_testkit::{RedisServer, unique_namespace};
use wgate_types::{JobId, JobRecord, NewJob, SessionCreate, TenantId};

pub struct TestQueue {
    pub redis: RedisServer,
    pub config: QueueConfig,
    pub store: JobStore,
}

impl TestQueue {
    pub async fn start() -> Self {
        Self::start_with(wgate_testkit::RedisServerOptions::default()).await
    }

    pub async fn start_with(options: wgate_testkit::RedisServerOptions) -> Self {
        let redis = RedisServer::start_with(options).await;
        let config = QueueConfig::new(redis.url(), unique_namespace("queue"));
        let store = JobStore::new(config.clone()).unwrap();
        Self { redis, config, store }
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.redis.connection().await
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{{{}}}:{rest}", self.config.namespace)
    }
}

pub fn tenant(t: &str) -> TenantId {
    TenantId::parse(t).unwrap()
}

pub fn request(body: serde_json::Value) -> SessionCreate {
    SessionCreate::from_json(body.to_string().as_bytes()).unwrap()
}

/// A fresh job as the API makes it, with a unique hook token.
pub fn job(tenant_id: &str, body: serde_json::Value) -> JobRecord {
    let id = JobId::new();
    let new = NewJob {
        tenant: tenant(tenant_id),
        request: request(body),
        max_attempts: 6,
        request_id: Some(format!("req-{id}")),
        // Shaped as the API mints them (the job's id and 22 URL-safe characters), or a lookup refuses them unread.
        hook_token: format!("{id}{:_<22}", "hook"),
        qr_token: String::new(),
    };
    JobRecord::accepted(id, new, OffsetDateTime::now_utc())
}

/// Reads up to `count` undelivered entries of the stream as a worker would.
pub async fn deliver_up_to(q: &TestQueue, count: usize) -> Vec<wgate_queue::Delivery> {
    use redis::AsyncCommands;
    q.store.ensure_group().await.unwrap();
    let mut c = q.conn().await;
    let reply: redis::streams::StreamReadReply = c
        .xread_options(
            &[q.key("queue:session-create")],
            &[">"],
            &redis::streams::StreamReadOptions::default().group(wgate_queue::GROUP, "tester").count(count),
        )
        .await
        .unwrap();
    reply.keys[0]
        .ids
        .iter()
        .map(|e| {
            let job: String = e.get("job").unwrap();
            wgate_queue::Delivery {
                job_id: job.parse().unwrap(),
                entry_id: e.id.clone(),
                taken_over: false,
                partition: 0,
            }
        })
        .collect()
}

pub async fn within<T>(what: &str, d: Duration, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(d, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not happen within {d:?}"),
    }
}
