//! `wgate jobs replay` respects the tenant's session quota, as the API's replay does.
#![allow(clippy::unwrap_used)] // a panic is the failure report of a test

use wgate_queue::{Delivery, GROUP, JobStore, Outcome, QueueConfig, Started};
use wgate_types::{ErrorClass, JobError, JobId, JobRecord, NewJob, SessionCreate, TenantId};

use super::wgate;

fn job(name: &str) -> JobRecord {
    let request = SessionCreate::from_json(format!(r#"{{"name":"{name}"}}"#).as_bytes()).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let id = JobId::new();
    let new = NewJob {
        tenant: TenantId::parse("acme").unwrap(),
        request,
        max_attempts: 1,
        request_id: None,
        hook_token: format!("{id}{name:_<22}"),
        qr_token: String::new(),
    };
    JobRecord::accepted(id, new, now)
}

/// Runs the one queued job's only attempt to `dead`, as a worker would.
async fn bury(redis: &wgate_testkit::RedisServer, store: &JobStore) {
    store.ensure_group().await.unwrap();
    let mut c = redis.connection().await;
    let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("cli-test")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(store.keys().stream(wgate_types::JobKind::SessionCreate))
        .arg(">")
        .query_async(&mut c)
        .await
        .unwrap();
    let entry = &reply.keys[0].ids[0];
    let id: String = entry.get("job").unwrap();
    let d = Delivery { job_id: id.parse().unwrap(), entry_id: entry.id.clone(), taken_over: false, partition: 0 };
    let Started::Run { record, .. } = store.start_attempt(&d).await.unwrap() else { panic!("not started") };
    let error = JobError { name: "Timeout".into(), message: "no answer".into(), class: ErrorClass::Timeout };
    store.finish_attempt(&d, &record, &Outcome::Dead(error)).await.unwrap();
}

#[tokio::test]
async fn jobs_replay_is_refused_when_the_tenants_session_quota_is_reached_and_a_tenant_override_wins() {
    let redis = wgate_testkit::RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), "cli")).unwrap();
    let dead = job("dead");
    store.enqueue(&dead, None, None).await.unwrap();
    bury(&redis, &store).await;
    store.enqueue(&job("live"), None, None).await.unwrap();
    let id = dead.id.to_string();
    let url = redis.url();

    let out = wgate(&["jobs", "--redis-url", &url, "--namespace", "cli", "--max-sessions", "1", "replay", &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("session quota of 1") && err.contains("max_sessions"), "{err}");
    assert_eq!(store.find(dead.id).await.unwrap().unwrap().status, wgate_types::JobStatus::Dead);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, "[tenants.acme]\nmax_sessions = 5\n").unwrap();
    let file = file.to_str().unwrap();
    let args = ["jobs", "--redis-url", &url, "--namespace", "cli", "--max-sessions", "1", "--tenants-file", file];
    let out = wgate(&[&args[..], &["replay", &id]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(store.find(dead.id).await.unwrap().unwrap().status, wgate_types::JobStatus::Queued);
}

#[tokio::test]
async fn jobs_show_finds_a_job_in_its_tenants_partition_when_told_the_deployments_partitions() {
    let redis = wgate_testkit::RedisServer::start().await;
    let store = JobStore::new(QueueConfig { partitions: 4, ..QueueConfig::new(redis.url(), "cli-parts") }).unwrap();
    // A tenant outside partition 0, where a store without partitions would look.
    let tenant =
        (0..).map(|i| TenantId::parse(&format!("t{i}")).unwrap()).find(|t| store.layout().of_tenant(t) != 0).unwrap();
    let queued = job("parted");
    let hook_token = store.layout().mint_job_token(&tenant, queued.id);
    let queued = JobRecord { tenant, hook_token, ..queued };
    store.enqueue(&queued, None, None).await.unwrap();
    let (url, id) = (redis.url(), queued.id.to_string());

    let out = wgate(&["jobs", "--redis-url", &url, "--namespace", "cli-parts", "--queue-partitions", "4", "show", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
    let out = wgate(&["jobs", "--redis-url", &url, "--namespace", "cli-parts", "show", &id]);
    assert!(!out.status.success(), "without the partitions the job is not where the command looks");
    let out = wgate(&["jobs", "--redis-url", &url, "--queue-partitions", "300", "show", &id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("WGATE_QUEUE_PARTITIONS"), "a bad count names its setting");
}
