//! A CODE number may carry a leading `+` for the tenant; WhatsGate takes digits only, so the gateway drops it on
//! the way upstream (the simulator, like WhatsGate, rejects a `+`).

use serde_json::json;

use super::helpers::{Stack, header, json_of};

#[tokio::test]
async fn a_code_create_whose_number_has_a_leading_plus_reaches_upstream_as_digits_and_succeeds() {
    let stack = Stack::start().await;
    let body = json!({"name": "Plus", "auth_type": "CODE", "number": "+79991234567"});
    let r = stack.create("acme", &body, &[]).await;
    assert_eq!(r.status(), 200);
    let job_id = header(&r, "x-job-id").expect("X-Job-Id");
    let data = json_of(r).await["data"].clone();
    assert!(data["code"].as_str().is_some_and(|c| !c.is_empty()), "CODE mode answers a pairing code: {data}");
    let stats = stack.sim_stats().await;
    assert_eq!((stats["create_calls"].as_u64(), stats["by_name"]["Plus"].as_u64()), (Some(1), Some(1)), "{stats}");
    let job = json_of(stack.get_job("acme", &job_id).await).await;
    assert_eq!((job["data"]["status"].as_str(), job["data"]["attempts"].as_u64()), (Some("succeeded"), Some(1)));
}
