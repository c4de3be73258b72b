//! The Redis connection settings: those that cannot work stop the binary at start with one line naming them;
//! `WGATE_REDIS_WAIT_REPLICAS` holds a create's acknowledgment until a real replica has it.

use serde_json::json;
use wgate_testkit::RedisServer;

use crate::{
    helpers::{TestApp, header, json_of},
    one_line_naming, run_binary,
};

#[test]
fn an_unknown_redis_mode_or_a_sentinel_service_in_cluster_mode_is_refused_at_start() {
    let out = run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_REDIS_MODE", "replicated")]);
    one_line_naming(&out, "WGATE_REDIS_MODE");
    assert!(String::from_utf8_lossy(&out.stderr).contains("standalone, sentinel, cluster"));
    let out = run_binary(&[
        ("WGATE_JWT_SECRET", "s"),
        ("WGATE_REDIS_MODE", "cluster"),
        ("WGATE_REDIS_SENTINEL_SERVICE", "main"),
    ]);
    one_line_naming(&out, "WGATE_REDIS_SENTINEL_SERVICE");
}

#[test]
fn sentinel_mode_without_its_service_is_refused_at_start() {
    let out = run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_REDIS_MODE", "sentinel")]);
    one_line_naming(&out, "WGATE_REDIS_SENTINEL_SERVICE");
}

#[test]
fn tls_files_with_a_plain_redis_url_or_a_missing_file_are_refused_at_start() {
    let out = run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_REDIS_CA_FILE", "/nonexistent/ca.crt")]);
    one_line_naming(&out, "rediss://");
    let out = run_binary(&[
        ("WGATE_JWT_SECRET", "s"),
        ("WGATE_REDIS_URL", "rediss://127.0.0.1:1"),
        ("WGATE_REDIS_CA_FILE", "/nonexistent/ca.crt"),
    ]);
    one_line_naming(&out, "WGATE_REDIS_CA_FILE");
}

#[tokio::test]
async fn with_wait_replicas_a_create_is_503_until_a_replica_has_it_then_202() {
    let app = TestApp::spawn_with(|s| {
        s.redis_wait_replicas = 1;
        s.redis_wait_timeout_ms = 1000;
    })
    .await;
    let key = [("idempotency-key", "replicated-1"), ("prefer", "respond-async")];
    let r = app.create_session("acme", &json!({"name": "Alone"}), &key).await;
    assert_eq!(r.status(), 503, "no replica confirmed the write");
    let body = json_of(r).await;
    assert!(body["message"].as_str().is_some_and(|m| m.contains("Idempotency-Key")), "{body}");

    // Redis delays a replica's first sync by 5 s by default, waiting for more replicas.
    let mut primary = app.redis.connection().await;
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("repl-diskless-sync-delay").arg(0).query_async(&mut primary).await.unwrap();
    let replica = RedisServer::start_replica_of(&app.redis).await;
    app.redis.await_replicas_online(1).await;
    let r = app.create_session("acme", &json!({"name": "Alone"}), &key).await;
    assert_eq!(r.status(), 202, "the retry with the same key is acknowledged once a replica has it");
    let id = header(r.headers(), "x-job-id").expect("X-Job-Id").to_owned();
    let mut c = replica.connection().await;
    let exists: bool = redis::cmd("EXISTS").arg(app.keys.job(id.parse().unwrap())).query_async(&mut c).await.unwrap();
    assert!(exists, "the acknowledged job is on the replica");
}
