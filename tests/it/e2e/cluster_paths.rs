//! The main paths on a real 3-primary, 3-replica Redis Cluster with the keys split into 16 partitions: tenants
//! whose partitions live on different primaries create sessions synchronously and asynchronously, read their jobs,
//! replay an `Idempotency-Key`, hit their quota and their rate limit, run a session command, open their QR window,
//! get their webhooks and send a message. Every Lua script runs in one slot, or the cluster refuses it.

use std::{collections::HashSet, time::Duration};

use serde_json::json;
use wgate_queue::{RedisMode, RedisTls};
use wgate_testkit::{Behaviour, Receiver, RedisCluster};
use wgate_types::{JobId, JobStatus, TenantId};

use super::{
    helpers::{RedisTarget, Stack, StackOptions, header, json_of},
    sessions::command,
    webhooks::{delivered_ids, event, session},
};

/// A tenant file: `capped` may own one session, `limited` gets a write bucket of 2 refilled every 10 s.
const TENANTS: &str = "[tenants.capped]\nmax_sessions = 1\n\n[tenants.limited]\nrate_per_second = 0.1\nburst = 2\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_with_16_partitions_every_main_path_works_for_tenants_on_different_primaries() {
    let cluster = RedisCluster::start(3, 1).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tenants_file = dir.path().join("tenants.toml");
    std::fs::write(&tenants_file, TENANTS).expect("the tenants file");
    let target = RedisTarget { url: cluster.url(), tls: RedisTls::default(), mode: RedisMode::Cluster };
    let options = StackOptions { tenants_file: Some(tenants_file), ..Default::default() };
    let stack = Stack::start_on(options, target).await;
    let layout = stack.store.layout();
    assert_eq!(layout.count(), 16, "a cluster gets 16 partitions by default");

    let tenants = ["acme", "globex", "initech", "umbrella", "hooli", "stark"];
    let mut primaries = HashSet::new();
    for t in tenants {
        let prefix = layout.tenant(&TenantId::parse(t).expect("tenant")).prefix().to_owned();
        primaries.insert(cluster.primary_of(&prefix).await.expect("the partition's primary"));
    }
    assert!(primaries.len() >= 2, "the tenants' partitions live on {} primaries", primaries.len());

    // Synchronous and asynchronous creates, the job read back, and another tenant's read refused.
    let mut sessions = Vec::new();
    for t in tenants {
        let r = stack.create(t, &json!({"name": format!("{t} sync")}), &[]).await;
        assert_eq!(r.status(), 200, "{t}'s synchronous create: {}", r.text().await.unwrap_or_default());
        let job = header(&r, "x-job-id").expect("X-Job-Id");
        let body = json_of(r).await;
        sessions.push((t, body["data"]["unique_id"].as_str().expect("unique_id").to_owned(), body));
        assert_eq!(json_of(stack.get_job(t, &job).await).await["data"]["status"], "succeeded");

        let r = stack.create(t, &json!({"name": format!("{t} async")}), &[("Prefer", "respond-async")]).await;
        assert_eq!(r.status(), 202, "{t}'s asynchronous create");
        let id: JobId = header(&r, "x-job-id").expect("X-Job-Id").parse().expect("job id");
        assert_eq!(stack.finished(id, Duration::from_secs(15)).await.status, JobStatus::Succeeded);
        assert_eq!(json_of(stack.get_job("intruder", &id.to_string()).await).await["code"], 404);
    }

    // The same Idempotency-Key answers the same job.
    let first = stack.create("globex", &json!({"name": "Idem"}), &[("Idempotency-Key", "order-1")]).await;
    assert_eq!(first.status(), 200);
    let again = stack.create("globex", &json!({"name": "Idem"}), &[("Idempotency-Key", "order-1")]).await;
    assert_eq!(again.status(), 200);
    assert_eq!(header(&again, "x-job-id"), header(&first, "x-job-id"), "the replayed key answers its job");
    assert_eq!(stack.sim_stats().await["by_name"]["Idem"], 1, "one session for the key");

    // The quota counts the tenant's live sessions and creates under way.
    assert_eq!(stack.create("capped", &json!({"name": "One"}), &[]).await.status(), 200);
    let r = stack.create("capped", &json!({"name": "Two"}), &[]).await;
    assert_eq!(r.status(), 403, "over the quota: {}", r.text().await.unwrap_or_default());

    // The shared write bucket: two creates pass, the third is refused with a Retry-After.
    let mut limited = Vec::new();
    for n in 0..2 {
        let r = stack.create("limited", &json!({"name": format!("L{n}")}), &[("Prefer", "respond-async")]).await;
        assert_eq!(r.status(), 202, "create {n} within the burst");
        limited.push(header(&r, "x-job-id").expect("X-Job-Id").parse::<JobId>().expect("job id"));
    }
    let r = stack.create("limited", &json!({"name": "L2"}), &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status(), 429, "the third create within 10 s is over the rate");
    assert!(header(&r, "retry-after").is_some(), "a 429 says when to come back");

    // A session command on an owned session, and the listing of the tenant's sessions.
    let (_, acme_id, acme_body) = &sessions[0];
    let r = command(&stack, "acme", "set-name", &json!({"WhatsappID": acme_id, "name": "Renamed"})).await;
    assert_eq!(r.status(), 200, "set-name: {}", r.text().await.unwrap_or_default());
    let page = json_of(command(&stack, "acme", "sessions-get", &json!({})).await).await;
    let listed: Vec<&str> =
        page["data"].as_array().expect("a list").iter().filter_map(|s| s["unique_id"].as_str()).collect();
    assert!(listed.contains(&acme_id.as_str()), "acme lists its session: {page}");
    let r = command(&stack, "globex", "set-name", &json!({"WhatsappID": acme_id, "name": "Theirs"})).await;
    assert_eq!(r.status(), 404, "another tenant's session is unknown to globex");

    // The QR window: its token finds the job in the tenant's partition; a bogus token is broken.
    let link = acme_body["data"]["qr_link"].as_str().expect("qr_link");
    let token = link.rsplit_once("/qr/").map(|(_, t)| t).expect("a gateway qr_link");
    assert_eq!(layout.of_token(token), layout.of_tenant(&TenantId::parse("acme").expect("tenant")));
    let state = stack.http.get(format!("{}/qr/{token}/state", stack.api)).send().await.expect("qr state");
    assert_eq!(state.status(), 200, "the window's state");
    let bogus = format!("{}/qr/{}/state", stack.api, "A".repeat(43));
    assert_eq!(stack.http.get(bogus).send().await.expect("qr state").status(), 404);

    // A webhook from WhatsGate reaches the tenant.
    let receiver = Receiver::start(Behaviour::OK).await;
    let (uid, _) = session(&stack, "initech", &receiver.url).await;
    let id = event(&stack, &uid, "message", json!({"body": "hi"})).await;
    receiver.wait_until("the event delivered", Duration::from_secs(15), |got| delivered_ids(got).contains(&id)).await;

    // A message sent on a READY session.
    let r = stack.http.post(format!("{}/sim/sessions/{acme_id}/scan", stack.sim)).send().await.expect("scan");
    assert!(r.status().is_success(), "the simulator scans the session");
    let body = json!({"WhatsappID": acme_id, "async": false, "recipient": {"number": "79990001122"},
        "message": {"type": "text", "body": "Hello"}});
    let r = stack
        .http
        .post(format!("{}/api/v1/send", stack.api))
        .bearer_auth(stack.token("acme"))
        .header("Idempotency-Key", "send-1")
        .json(&body)
        .send()
        .await
        .expect("send answered");
    assert_eq!(r.status(), 200, "send: {}", r.text().await.unwrap_or_default());
    assert_eq!(stack.sim_stats().await["sends_by_session"][acme_id.as_str()], 1);

    for id in limited {
        assert_eq!(stack.finished(id, Duration::from_secs(15)).await.status, JobStatus::Succeeded);
    }
    stack.assert_queue_drained().await;
}
