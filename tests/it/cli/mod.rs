//! The `wgate` binary, run as a user would.

mod config_reference;
mod hooks;
mod replay;

use std::process::Command;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

fn wgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wgate")).args(args).output().expect("running wgate")
}

#[test]
fn token_prints_a_jwt_that_a_standard_hs256_verifier_accepts() {
    let out = wgate(&["token", "--secret", "s3cret", "--tenant", "acme", "--ttl", "600"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["wgate"]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    let data = jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(b"s3cret"), &validation).unwrap();
    assert_eq!(data.claims["sub"], "acme");
    assert_eq!(data.claims["aud"], "wgate");
    let exp = data.claims["exp"].as_u64().unwrap();
    let iat = data.claims["iat"].as_u64().unwrap();
    assert_eq!(exp - iat, 600);
    assert!(data.claims.get("scope").is_none());
}

#[test]
fn token_carries_scope_audience_and_issuer_when_asked() {
    let out = wgate(&[
        "token",
        "--secret",
        "k",
        "--tenant",
        "t-1",
        "--scope",
        "admin sessions:read",
        "--aud",
        "other",
        "--iss",
        "me",
    ]);
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["other"]);
    validation.set_issuer(&["me"]);
    let data = jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(b"k"), &validation).unwrap();
    assert_eq!(data.claims["scope"], "admin sessions:read");
}

#[test]
fn token_refuses_a_tenant_id_the_gateway_would_reject() {
    let out = wgate(&["token", "--secret", "k", "--tenant", "bad tenant!"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--tenant"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn jobs_show_prints_a_record_and_replay_refuses_a_job_that_is_not_dead() {
    use wgate_queue::{JobStore, QueueConfig};
    use wgate_types::{JobId, JobRecord, NewJob, SessionCreate, TenantId};

    let redis = wgate_testkit::RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), "cli")).unwrap();
    let request = SessionCreate::from_json(br#"{"name":"Shop"}"#).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let id = JobId::new();
    let new = NewJob {
        tenant: TenantId::parse("acme").unwrap(),
        request,
        max_attempts: 6,
        request_id: None,
        hook_token: format!("{id}{:_<22}", "hook"),
        qr_token: String::new(),
    };
    let job = JobRecord::accepted(id, new, now);
    store.enqueue(&job, None, None).await.unwrap();
    let id = job.id.to_string();
    let args = |cmd: &str| ["jobs", "--redis-url", &redis.url(), "--namespace", "cli", cmd, &id].map(str::to_owned);

    let out = wgate(&args("show").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((shown["id"].as_str(), shown["status"].as_str()), (Some(id.as_str()), Some("queued")));

    let out = wgate(&args("replay").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is queued, not dead"));

    let out = wgate(&["jobs", "--redis-url", &redis.url(), "show", "not-a-job"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a job id"));
}

/// `wgate dev` as the README runs it: the whole stack answers a real session-create with the printed token, and
/// Ctrl-C (SIGINT) stops every part, the redis-server child included.
#[tokio::test]
async fn dev_starts_a_working_stack_and_ctrl_c_stops_every_part() {
    dev_stack(&[]).await;
}

/// The same with `--redis-mode cluster`: a throwaway Redis Cluster of six nodes, all of them stopped on Ctrl-C.
#[tokio::test]
async fn dev_on_a_throwaway_redis_cluster_works_and_ctrl_c_stops_every_node() {
    dev_stack(&["--redis-mode", "cluster"]).await;
}

async fn dev_stack(extra: &[&str]) {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};

    // Every listener on port 0: the addresses are read from what this `wgate dev` prints.
    let any = "127.0.0.1:0";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wgate"))
        .args([
            "dev",
            "--api-listen",
            any,
            "--api-admin-listen",
            any,
            "--worker-admin-listen",
            any,
            "--sim-listen",
            any,
        ])
        .args(["--tenant", "dev-test"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wgate dev starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut redis_url, mut token) = (None, None);
    let (mut sim, mut api, mut api_admin, mut worker_admin) = (None, None, None, None);
    // "http://127.0.0.1:PORT/..." -> "127.0.0.1:PORT"
    let host_port = |url: &str| url.trim_start_matches("http://").split('/').next().map(str::to_owned);
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout readable") {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["redis", url, ..] => redis_url = Some((*url).to_owned()),
                ["simulator", url, ..] => sim = host_port(url),
                ["api", url, "(metrics:", metrics] => {
                    api = host_port(url);
                    api_admin = host_port(metrics.trim_end_matches(')'));
                }
                ["worker", "metrics:", metrics] => worker_admin = host_port(metrics),
                _ => {}
            }
            if let Some(rest) = line.trim().strip_prefix("-H 'Authorization: Bearer ") {
                token = rest.split('\'').next().map(str::to_owned);
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read).await.expect("the stack comes up within 60 s");
    let (redis_url, token) = (redis_url.expect("redis line"), token.expect("a token in the curl"));
    let (api, api_admin, worker_admin, sim) = (
        api.expect("the api line"),
        api_admin.expect("the api's metrics address"),
        worker_admin.expect("the worker line"),
        sim.expect("the simulator line"),
    );

    let http = wgate_testkit::http_client();
    let r = http
        .post(format!("http://{api}/api/v1/session-create"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "From the README"}))
        .send()
        .await
        .expect("API answers");
    assert_eq!(r.status(), 200, "the printed curl works end to end");
    let stats: Value =
        http.get(format!("http://{sim}/sim/stats")).send().await.expect("sim stats").json().await.expect("stats JSON");
    assert_eq!(stats["by_name"]["From the README"], 1);

    let pid = nix::unistd::Pid::from_raw(child.id().expect("pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("wgate dev exits within 30 s of Ctrl-C")
        .expect("exit status");
    assert!(status.success(), "{status}");
    for node in redis_url.split(',') {
        let redis_port = node.rsplit(':').next().expect("port").to_owned();
        assert!(
            std::net::TcpStream::connect(format!("127.0.0.1:{redis_port}")).is_err(),
            "redis-server {node} is gone"
        );
    }
    for p in [&api, &api_admin, &worker_admin, &sim] {
        assert!(std::net::TcpStream::connect(p).is_err(), "port {p} is closed");
    }
}

#[test]
fn openapi_prints_the_committed_api_document() {
    let out = wgate(&["openapi"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
    assert!(
        String::from_utf8(out.stdout).unwrap() == committed,
        "docs/openapi.json is not what `wgate openapi` prints: cargo run -q -- openapi > docs/openapi.json"
    );
}
