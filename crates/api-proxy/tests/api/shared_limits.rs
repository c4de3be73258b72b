//! Shared rate limits: three real `wgate-api` processes on one Redis admit together what one would.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use wgate_testkit::{RedisServer, free_port, unique_namespace};

use crate::helpers::{SECRET, claims, header, hs256};

struct Api {
    base: String,
    _child: tokio::process::Child,
}

async fn start_api(redis: &RedisServer, namespace: &str, store: &str) -> Api {
    let (port, admin) = (free_port(), free_port());
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wgate-api"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WGATE_") {
            cmd.env_remove(k);
        }
    }
    let child = cmd
        .env("WGATE_REDIS_URL", redis.url())
        .env("WGATE_NAMESPACE", namespace)
        .env("WGATE_JWT_SECRET", SECRET)
        .env("WGATE_API_LISTEN", format!("127.0.0.1:{port}"))
        .env("WGATE_API_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("WGATE_RATE_PER_SECOND", "10")
        .env("WGATE_RATE_BURST", "20")
        .env("WGATE_RATE_LIMIT_STORE", store)
        .env("WGATE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wgate-api starts");
    let http = wgate_testkit::http_client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http.get(format!("http://127.0.0.1:{admin}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "wgate-api on port {port} was not ready within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Api { base: format!("http://127.0.0.1:{port}"), _child: child }
}

/// 200 asynchronous creates for one tenant, spread over one second and over the processes in turn; answers
/// the statuses with their `RateLimit` headers.
async fn burst_over(apis: &[Api]) -> Vec<(u16, String)> {
    let http = wgate_testkit::http_client();
    let token = hs256(SECRET, &claims("shared", json!({})));
    let started = tokio::time::Instant::now();
    let sends = (0..200u64).map(|i| {
        let (http, token) = (http.clone(), token.clone());
        let url = format!("{}/api/v1/session-create", apis[i as usize % apis.len()].base);
        async move {
            tokio::time::sleep_until(started + Duration::from_millis(i * 5)).await;
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("prefer", "respond-async")
                .json(&json!({"name": format!("Shop {i}")}))
                .send()
                .await
                .expect("session-create answered");
            (r.status().as_u16(), header(r.headers(), "ratelimit").unwrap_or_default().to_owned())
        }
    });
    join_all(sends).await
}

#[tokio::test]
async fn three_api_processes_admit_together_what_one_would_and_agree_on_the_headers() {
    let redis = RedisServer::start().await;
    let namespace = unique_namespace("shared");
    let apis = join_all((0..3).map(|_| start_api(&redis, &namespace, "redis"))).await;
    let answers = burst_over(&apis).await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let limited = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(accepted + limited, 200, "only 202 and 429: {answers:?}");
    // Burst 20 plus 10/s over the second the requests took (and a little for their spread).
    eprintln!("shared buckets: {accepted} of 200 creates accepted over one second by three processes");
    assert!((20..=30).contains(&accepted), "{accepted} accepted: {answers:?}");
    // One bucket: each admission left a different count, never the same `r` twice in the first burst, as three
    // separate buckets would (each starting at 19).
    let firsts: Vec<&str> = answers.iter().take(20).map(|(_, h)| h.as_str()).collect();
    let mut seen = std::collections::HashSet::new();
    for h in &firsts {
        let r = h.split(";r=").nth(1).and_then(|x| x.split(';').next()).unwrap_or_default();
        assert!(r == "0" || seen.insert(r.to_owned()), "the same remaining count twice: {firsts:?}");
    }
}

#[tokio::test]
async fn with_the_local_store_each_process_has_its_own_buckets() {
    let redis = RedisServer::start().await;
    let namespace = unique_namespace("local");
    let apis = join_all((0..3).map(|_| start_api(&redis, &namespace, "local"))).await;
    let answers = burst_over(&apis).await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    assert!(accepted > 31, "three separate buckets admit more than one ({accepted})");
}
