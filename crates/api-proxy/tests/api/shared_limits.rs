//! Shared rate limits: three real `wgate-api` processes on one Redis admit together what one would.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use wgate_testkit::{RedisServer, free_port, unique_namespace};

use crate::helpers::{SECRET, claims, header, hs256};

/// A real `wgate-api` process, stopped when dropped.
pub(crate) struct Api {
    pub(crate) base: String,
    _child: tokio::process::Child,
}

async fn start_api(redis: &RedisServer, namespace: &str, store: &str) -> Api {
    start_api_with(redis, namespace, &[("WGATE_RATE_LIMIT_STORE", store)]).await
}

/// A `wgate-api` process on `redis` and `namespace` (write rate 10/s, burst 20), with `env` set on top.
pub(crate) async fn start_api_with(redis: &RedisServer, namespace: &str, env: &[(&str, &str)]) -> Api {
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
        .env("WGATE_LOG", "warn")
        .envs(env.iter().copied())
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
/// the statuses with their `RateLimit` headers, and the time from the first answer to the last (a loaded machine
/// may stretch the second, and the bucket refills meanwhile).
async fn burst_over(apis: &[Api]) -> (Vec<(u16, String)>, Duration) {
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
            let at = tokio::time::Instant::now();
            (r.status().as_u16(), header(r.headers(), "ratelimit").unwrap_or_default().to_owned(), at)
        }
    });
    let answers = join_all(sends).await;
    let first = answers.iter().map(|a| a.2).min().unwrap_or(started);
    let last = answers.iter().map(|a| a.2).max().unwrap_or(started);
    (answers.into_iter().map(|(s, h, _)| (s, h)).collect(), last - first)
}

#[tokio::test]
async fn three_api_processes_admit_together_what_one_would_and_agree_on_the_headers() {
    let redis = RedisServer::start().await;
    let namespace = unique_namespace("shared");
    let apis = join_all((0..3).map(|_| start_api(&redis, &namespace, "redis"))).await;
    let (answers, span) = burst_over(&apis).await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let limited = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(accepted + limited, 200, "only 202 and 429: {answers:?}");
    // Burst 20 plus 10/s over the time the answers took: 30 when they fit in one second, as they do on an idle
    // machine.
    let most = 20 + (10.0 * span.as_secs_f64()).ceil() as usize;
    eprintln!("shared buckets: {accepted} of 200 creates accepted in {span:?} by three processes (at most {most})");
    assert!((20..=most).contains(&accepted), "{accepted} accepted in {span:?}: {answers:?}");
    // One bucket: only the very first admission finds it full (`r=19` left); three separate buckets would each
    // answer `r=19` to their first request.
    let full = answers.iter().filter(|(_, h)| h.starts_with("\"write\";r=19;")).count();
    assert_eq!(full, 1, "{answers:?}");
}

#[tokio::test]
async fn with_the_local_store_each_process_has_its_own_buckets() {
    let redis = RedisServer::start().await;
    let namespace = unique_namespace("local");
    let apis = join_all((0..3).map(|_| start_api(&redis, &namespace, "local"))).await;
    let (answers, span) = burst_over(&apis).await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let one_bucket = 20 + (10.0 * span.as_secs_f64()).ceil() as usize;
    assert!(accepted > one_bucket, "three separate buckets admit more than one ({accepted})");
    let full = answers.iter().filter(|(_, h)| h.starts_with("\"write\";r=19;")).count();
    assert_eq!(full, 3, "each process's first admission finds its own bucket full: {answers:?}");
}
