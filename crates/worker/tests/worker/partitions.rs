//! One worker on one Redis whose keys are split into 8 partitions: it serves every partition's queue, with retries
//! promoted in each, and its gauges add the partitions up.

use std::{collections::HashSet, time::Duration};

use redis::AsyncCommands;
use serde_json::json;
use wgate_testkit::RedisServerOptions;
use wgate_types::{JobStatus, TenantId};

use crate::helpers::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_8_partitions_one_worker_runs_the_jobs_and_retries_of_every_tenants_partition() {
    // A third of WhatsGate's answers fail: the retries wait in each partition's scheduled set.
    let world = World::start_partitioned(json!({"error_rate": 0.3}), RedisServerOptions::default(), 8).await;
    let worker = world.worker().await;
    let layout = world.store.layout();
    let tenants: Vec<TenantId> = (0..20).map(|i| TenantId::parse(&format!("t{i}")).expect("tenant")).collect();
    let partitions: HashSet<usize> = tenants.iter().map(|t| layout.of_tenant(t)).collect();
    assert!(partitions.len() >= 6, "20 tenants use most of 8 partitions: {partitions:?}");

    let mut jobs = Vec::new();
    for i in 0..40 {
        let tenant = &tenants[i % tenants.len()];
        jobs.push(world.enqueue_as(tenant, &format!("job {i}"), 16).await.expect("enqueued"));
    }
    let mut retried = 0;
    for job in &jobs {
        let done = world.finished(job.id, Duration::from_secs(30)).await;
        assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
        retried += usize::from(done.attempts > 1);
    }
    assert!(retried > 0, "some jobs were retried through their partition's scheduled set");

    // Each record lives under its tenant's partition tag, none under the namespace's own.
    let mut c = world.redis.connection().await;
    for job in &jobs {
        let keys = layout.tenant(&job.tenant);
        assert!(c.exists::<_, bool>(keys.job(job.id)).await.expect("EXISTS"), "{}", keys.job(job.id));
        assert!(!c.exists::<_, bool>(world.key(&format!("job:{}", job.id))).await.expect("EXISTS"));
    }
    let counts = world.store.queue_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.running, counts.scheduled, counts.dead), (0, 0, 0, 0), "{counts:?}");
    worker.stop().await;
}
