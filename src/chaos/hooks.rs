//! The webhook part of a chaos run: WhatsGate's events posted to the gateway over the window (while workers are
//! SIGKILLed and redis-server restarts) and delivered to a flaky tenant endpoint; then every event the gateway
//! acknowledged must have reached the endpoint, each with one `webhook-id` however often it was tried.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use serde_json::json;
use wgate_testkit::Receiver;

use super::Report;

/// Posts events `1..=count` to the hook, spread over `window`, each retried until WhatsGate would have been
/// answered `{"result":"OK","id":n}` (or `give_up`); answers the acknowledged ids and the retries.
pub(super) async fn post_events(
    http: reqwest::Client,
    hook_url: String,
    count: usize,
    window: Duration,
    give_up: Instant,
) -> (Vec<u64>, usize) {
    let mut acknowledged = Vec::with_capacity(count);
    let mut retries = 0;
    let t0 = tokio::time::Instant::now();
    for n in 1..=count as u64 {
        let at = t0 + window.mul_f64((n - 1) as f64 / count.max(1) as f64);
        tokio::time::sleep_until(at).await;
        let body = json!({"id": n, "whatsapp_id": "6345454545454", "event_action": "message",
            "event_date": "2026-01-01 00:00:00", "status_code": 200, "event_data": {"body": format!("chaos {n}")}});
        loop {
            let sent = http.post(&hook_url).json(&body).timeout(Duration::from_secs(5)).send().await;
            let ok = match sent {
                Ok(r) if r.status() == 200 => {
                    r.json::<serde_json::Value>().await.is_ok_and(|v| v["result"] == "OK" && v["id"] == n)
                }
                _ => false,
            };
            if ok {
                acknowledged.push(n);
                break;
            }
            retries += 1;
            if Instant::now() > give_up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (acknowledged, retries)
}

/// Waits (until `deadline`) for every acknowledged event to be delivered, then counts what the endpoint saw.
pub(super) async fn check_delivered(
    receiver: &Receiver,
    acknowledged: &[u64],
    deadline: Duration,
    report: &mut Report,
) {
    let wanted: HashSet<u64> = acknowledged.iter().copied().collect();
    let delivered = |got: &[wgate_testkit::Received]| -> HashSet<u64> {
        got.iter().filter(|r| r.delivered()).filter_map(|r| r.json()["id"].as_u64()).collect()
    };
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if wanted.is_subset(&delivered(&receiver.got())) || tokio::time::Instant::now() > end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = receiver.got();
    let done = delivered(&got);
    let mut ids: HashMap<u64, HashSet<String>> = HashMap::new();
    for r in &got {
        if let (Some(n), Some(id)) = (r.json()["id"].as_u64(), r.header("webhook-id")) {
            ids.entry(n).or_default().insert(id.to_owned());
        }
    }
    report.events_acknowledged = acknowledged.len();
    report.events_delivered = wanted.intersection(&done).count();
    report.events_lost = wanted.difference(&done).count();
    report.events_with_several_ids = ids.values().filter(|s| s.len() > 1).count();
    report.endpoint_requests = got.len();
    report.endpoint_failures = got.iter().filter(|r| !r.delivered()).count();
}
