//! An upgrade keeps what a deployment holds in Redis, and `wgate migrate` moves it onto a cluster. `tests/it/fixtures/layout-v1.json` is a dump (`DUMP` of
//! every key, with its TTL) of a namespace written by the release before Redis key partitions: two tenants' owned
//! sessions, three jobs still queued (two under an `Idempotency-Key`), their QR and hook records. The tests restore
//! it into a fresh redis-server and run today's API and worker on it.

use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use wgate_queue::{Enqueued, JobStore, Layout, QrTarget, QueueConfig};
use wgate_testkit::{RedisCluster, RedisServer};
use wgate_types::{JobId, JobRecord, JobStatus, NewJob, SessionCreate, TOKEN_SECRET_LEN, TenantId};

use super::helpers::{RedisTarget, Stack, StackOptions, json_of};

const FIXTURE: &str = include_str!("../fixtures/layout-v1.json");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).expect("the fixture is JSON")
}

/// Restores every key of the fixture under `{namespace}:` with its TTL.
pub(super) async fn restore(redis: &RedisServer, namespace: &str) {
    let mut c = redis.connection().await;
    for k in fixture()["keys"].as_array().expect("keys") {
        let name = format!("{{{namespace}}}:{}", k["key"].as_str().expect("key"));
        let ttl = k["pttl"].as_i64().expect("pttl").max(0);
        let _: () = redis::cmd("RESTORE")
            .arg(&name)
            .arg(ttl)
            .arg(hex::decode(k["dump"].as_str().expect("dump")).expect("the dump is hex"))
            .query_async(&mut c)
            .await
            .expect("RESTORE");
    }
}

/// What the release before held, checked through today's API and worker.
pub(super) async fn assert_state_kept(stack: &Stack) {
    let fx = fixture();
    // The queued jobs run: each reaches succeeded, seen by its own tenant only.
    for q in fx["queued"].as_array().expect("queued") {
        let tenant = q["tenant"].as_str().expect("tenant");
        let id: JobId = q["job"]["data"]["id"].as_str().expect("id").parse().expect("job id");
        let record = stack.finished(id, Duration::from_secs(20)).await;
        assert_eq!(record.status, JobStatus::Succeeded, "queued job {id}");
        let job = json_of(stack.get_job(tenant, &id.to_string()).await).await;
        assert_eq!(job["data"]["response"]["name"], q["name"], "{job}");
        let other = if tenant == "acme" { "globex" } else { "acme" };
        assert_eq!(stack.get_job(other, &id.to_string()).await.status(), 404);
        // The same request under the same Idempotency-Key is the same job.
        if let Some(key) = q["idempotency_key"].as_str() {
            let again = stack.create(tenant, &json!({"name": q["name"]}), &[("Idempotency-Key", key)]).await;
            assert!(again.status().is_success(), "replay: {}", again.status());
            assert_eq!(super::helpers::header(&again, "x-job-id").as_deref(), Some(id.to_string().as_str()));
        }
    }
    // The sessions made before the upgrade are still their tenants' own, and no one else's.
    for (tenant, other) in [("acme", "globex"), ("globex", "acme")] {
        let owned = &fx["owned"][tenant];
        let uid = owned["session"]["data"]["unique_id"].as_str().expect("unique_id");
        let events_get = |who: &str| {
            let req = stack.http.post(format!("{}/api/v1/events-get", stack.api)).bearer_auth(stack.token(who));
            req.json(&json!({"WhatsappID": uid})).send()
        };
        assert_eq!(events_get(tenant).await.expect("events-get").status(), 200, "{tenant} owns {uid}");
        assert_eq!(events_get(other).await.expect("events-get").status(), 404, "{other} does not own {uid}");
        let job = json_of(stack.get_job(tenant, owned["job"].as_str().expect("job")).await).await;
        assert_eq!(job["data"]["status"], "succeeded");
    }
    // Their relay and QR links still lead somewhere: WhatsGate's events for the session are taken and stored.
    let qr = fx["owned"]["acme"]["session"]["data"]["qr_link"].as_str().expect("qr_link");
    let qr_token = qr.rsplit('/').next().expect("token");
    let r = stack.http.get(format!("{}/qr/{qr_token}", stack.api)).send().await.expect("qr window");
    assert_eq!(r.status(), 200, "the QR window of a session made before the upgrade");
    let uid = fx["owned"]["acme"]["session"]["data"]["unique_id"].as_str().expect("unique_id");
    let acme = wgate_types::TenantId::parse("acme").expect("tenant");
    let owner = stack.store.session_owner(&acme, uid).await.expect("redis").expect("owner");
    let relay = format!("{}/hooks/{}", stack.api, owner.hook_token);
    let event = json!({"id": 4242, "whatsapp_id": uid, "event_action": "message",
        "event_date": "2026-01-02 03:04:05", "status_code": 200, "event_data": {"body": "after the upgrade"}});
    let r = stack.http.post(&relay).json(&event).send().await.expect("relay");
    assert_eq!(r.status(), 200, "the relay of a session made before the upgrade");
    let page = stack
        .http
        .post(format!("{}/api/v1/events-get", stack.api))
        .bearer_auth(stack.token("acme"))
        .json(&json!({"WhatsappID": uid}))
        .send()
        .await
        .expect("events-get");
    assert_eq!(json_of(page).await["data"][0]["id"], 4242);
    stack.assert_queue_drained().await;
}

#[tokio::test]
async fn an_upgrade_keeps_the_queued_jobs_owned_sessions_and_idempotency_keys_of_the_release_before() {
    let redis = RedisServer::start().await;
    let namespace = wgate_testkit::unique_namespace("upgrade");
    restore(&redis, &namespace).await;
    let target = RedisTarget { url: redis.url(), tls: Default::default(), mode: wgate_queue::RedisMode::Standalone };
    // Another seed than the one the fixture was made with: the simulator's session ids differ from those kept.
    let options = StackOptions { namespace: Some(namespace), sim_seed: 1207, ..StackOptions::default() };
    let stack = Stack::start_on(options, target).await;
    assert_state_kept(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wgate_migrate_moves_the_release_befores_namespace_onto_a_cluster_with_16_partitions_where_it_all_works() {
    let redis = RedisServer::start().await;
    let namespace = wgate_testkit::unique_namespace("migrate");
    restore(&redis, &namespace).await;
    let cluster = RedisCluster::start(3, 1).await;
    let args = |from: &str| wgate::migrate::MigrateArgs {
        to: wgate::jobs::RedisArgs {
            redis_url: cluster.url(),
            namespace: namespace.clone(),
            redis_ca_file: None,
            redis_client_cert: None,
            redis_client_key: None,
            redis_mode: "cluster".into(),
            redis_sentinel_service: None,
            queue_partitions: None,
        },
        from_url: from.to_owned(),
        from_namespace: None,
        from_mode: "standalone".into(),
        from_sentinel_service: None,
        from_ca_file: None,
        from_client_cert: None,
        from_client_key: None,
    };
    let today = queue_a_job_of_today(&redis, &namespace).await;
    wgate::migrate::run(args(&redis.url())).await.expect("the migration");
    let again = wgate::migrate::run(args(&redis.url())).await.expect_err("a second run is refused");
    assert!(format!("{again:#}").contains("migrated into already"), "{again:#}");

    let target = RedisTarget { url: cluster.url(), tls: Default::default(), mode: wgate_queue::RedisMode::Cluster };
    let options = StackOptions { namespace: Some(namespace), sim_seed: 1207, ..StackOptions::default() };
    let stack = Stack::start_on(options, target).await;
    assert_eq!(stack.store.layout().count(), 16);
    // The tenants' records left the namespace's old tag: the fixture's tokens mostly hash elsewhere.
    let acme = wgate_types::TenantId::parse("acme").expect("tenant");
    let layout = stack.store.layout();
    assert_ne!(layout.tenant(&acme).prefix(), layout.base().prefix());
    // Its hook token was minted before partitions and does not hash to acme's partition: the relay below finds it
    // through the partition the migration wrote beside it.
    let uid = fixture()["owned"]["acme"]["session"]["data"]["unique_id"].as_str().expect("unique_id").to_owned();
    let owner = stack.store.session_owner(&acme, &uid).await.expect("redis").expect("acme owns its session");
    assert_ne!(layout.of_token(&owner.hook_token), layout.of_tenant(&acme));
    // The same holds for the hook and QR tokens of today's release, kept in their job's record.
    let window = stack.store.qr_target(&today.qr_token).await.expect("redis");
    assert_eq!(window, Some(QrTarget { tenant: acme.clone(), job_id: today.id }), "the QR window of a migrated job");
    let relay = stack.store.hook_target(&today.hook_token).await.expect("redis").expect("the relay of a migrated job");
    assert_eq!((relay.tenant, relay.job_id), (acme.clone(), today.id));
    assert_eq!(stack.finished(today.id, Duration::from_secs(20)).await.status, JobStatus::Succeeded);
    assert_state_kept(&stack).await;
}

/// A job of acme queued by today's release into the namespace before it is migrated (one partition), with hook and
/// QR tokens whose own hash points away from acme's partition among 16.
async fn queue_a_job_of_today(redis: &RedisServer, namespace: &str) -> JobRecord {
    let source = JobStore::new(QueueConfig::new(redis.url(), namespace)).expect("job store");
    let acme = TenantId::parse("acme").expect("tenant");
    let sixteen = Layout::new(namespace, 16);
    let id = JobId::new();
    let mut elsewhere = (0u64..)
        .map(|n| format!("{id}{n:0>TOKEN_SECRET_LEN$}"))
        .filter(|t| sixteen.of_token(t) != sixteen.of_tenant(&acme));
    let (hook_token, qr_token) =
        (elsewhere.next().expect("a token hashing elsewhere"), elsewhere.next().expect("another one"));
    let new = NewJob {
        tenant: acme,
        request: SessionCreate::from_json(br#"{"name":"Queued today"}"#).expect("request"),
        max_attempts: 6,
        request_id: None,
        hook_token,
        qr_token,
    };
    let job = JobRecord::accepted(id, new, OffsetDateTime::now_utc());
    assert_eq!(source.enqueue(&job, None, None).await.expect("enqueue"), Enqueued::Created);
    job
}
