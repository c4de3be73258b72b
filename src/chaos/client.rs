//! The run's HTTP calls: submitting jobs and asking after them as their tenant would, and listing the
//! simulator's sessions.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use wgate_types::unique_id_text;

use super::SIM_KEY;

pub(super) enum Submitted {
    Accepted { name: String, id: String, at: Instant },
    Refused { name: String, last: String },
}

/// Submits one job until the API takes it; retries reuse the `Idempotency-Key`, so a lost answer cannot make
/// a second job.
pub(super) async fn submit(
    http: reqwest::Client,
    url: String,
    token: String,
    name: String,
    give_up: Instant,
) -> (Submitted, usize) {
    let mut retries = 0;
    let mut last = String::new();
    while Instant::now() < give_up {
        let sent = http
            .post(&url)
            .bearer_auth(&token)
            .header("Prefer", "respond-async")
            .header("Idempotency-Key", format!("key-{name}"))
            .json(&json!({"name": name}))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                let id = r.headers().get("x-job-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                match (status, id) {
                    (200 | 202 | 422 | 502 | 504, Some(id)) => {
                        return (Submitted::Accepted { name, id, at: Instant::now() }, retries);
                    }
                    (400 | 401 | 403 | 404 | 409 | 413 | 415, _) => {
                        let body = r.text().await.unwrap_or_default();
                        return (Submitted::Refused { name, last: format!("{status} {body}") }, retries);
                    }
                    _ => last = format!("{status}"),
                }
            }
            Err(e) => last = format!("{e}"),
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Submitted::Refused { name, last }, retries)
}

/// The job's status as its tenant sees it: `Some("succeeded")`, ..., `Some("missing")` for a 404, `None` when the
/// API could not say (it is asked again); with the `unique_id` of its session when it has one.
pub(super) async fn job_status(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    id: &str,
) -> Option<(String, Option<String>)> {
    let r = http.get(format!("{api}/api/v1/jobs/{id}")).bearer_auth(token).send().await.ok()?;
    match r.status().as_u16() {
        200 => {
            let v: Value = r.json().await.ok()?;
            let status = v["data"]["status"].as_str()?.to_owned();
            Some((status, unique_id_text(&v["data"]["response"]["unique_id"])))
        }
        404 => Some(("missing".to_owned(), None)),
        _ => None,
    }
}

/// Every session the simulator holds, by `unique_id`, paging through `sessions-get`.
pub(super) async fn upstream_sessions(http: &reqwest::Client, sim: &str) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut page = 1u64;
    loop {
        let r: Value = http
            .post(format!("{sim}/api/v1/sessions-get"))
            .header("X-Api-Key", SIM_KEY)
            .json(&json!({"page_cnt": 100, "page": page}))
            .send()
            .await
            .context("listing the simulator's sessions")?
            .json()
            .await
            .context("the simulator's sessions")?;
        let data = r["data"].as_array().with_context(|| format!("sessions-get answered {r}"))?;
        ids.extend(data.iter().filter_map(|s| unique_id_text(&s["unique_id"])));
        if page >= r["pages"].as_u64().unwrap_or(0) {
            return Ok(ids);
        }
        page += 1;
    }
}

pub(super) fn is_terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "dead")
}
