//! Webhook deliveries by the real worker binary through crashes and a Redis restart: nothing acknowledged to
//! WhatsGate is lost, and every attempt of an event carries the same `webhook-id`.

use std::{collections::HashSet, time::Duration};

use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::{NewEvent, Received as Stored};
use wgate_testkit::{Behaviour, Received, Receiver, RedisServerOptions};
use wgate_types::{JobId, TenantId};

use crate::helpers::World;

const TOKEN: &str = "hooktokenhooktokenhooktoken";

/// The relay hook the API would have written at session-create, pointing at `callback`.
async fn hook(world: &World, callback: &str) {
    let mut conn = world.redis.connection().await;
    let _: () = conn
        .hset_multiple(
            world.key(&format!("hook:{TOKEN}")),
            &[("tenant", "acme"), ("job", &JobId::new().to_string()), ("callback", callback)],
        )
        .await
        .unwrap();
}

/// Stores WhatsGate's event `n` as the API does (retrying while Redis restarts); answers once it is acknowledged.
async fn receive(world: &World, n: u64) {
    let tenant = TenantId::parse("acme").unwrap();
    let body =
        json!({"id": n, "whatsapp_id": "6345454545454", "event_action": "message", "event_data": {}}).to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let event = NewEvent {
            id: JobId::new(),
            tenant: &tenant,
            hook_token: TOKEN,
            job: JobId::new(),
            event_id: &n.to_string(),
            event: "message",
            session: "6345454545454",
            event_at: None,
            body: &body,
            deliver: true,
        };
        match world.store.receive_event(&event).await {
            Ok(Stored::Stored(_) | Stored::Seen(_)) => return,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "event {n} not stored within 15 s: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn env(world: &World) -> Vec<(String, String)> {
    let mut settings = world.settings();
    settings.visibility_timeout_ms = 1500;
    let mut env = world.env(&settings);
    env.extend(
        [
            ("WGATE_EGRESS_ALLOW_NETS", "127.0.0.0/8"),
            ("WGATE_WEBHOOK_RETRY_SCHEDULE", "100ms,100ms,200ms,200ms,300ms,300ms,300ms,300ms,300ms,300ms"),
            ("WGATE_WEBHOOK_TIMEOUT_MS", "20000"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env
}

fn event_id(r: &Received) -> Option<u64> {
    r.json()["id"].as_u64()
}

/// Every event in `ids` delivered (2xx) at least once, and every request of one event with one `webhook-id`.
fn check_all_delivered_with_stable_ids(got: &[Received], ids: impl Iterator<Item = u64>) {
    for n in ids {
        let requests: Vec<&Received> = got.iter().filter(|r| event_id(r) == Some(n)).collect();
        assert!(requests.iter().any(|r| r.delivered()), "event {n} delivered");
        let webhook_ids: HashSet<&str> = requests.iter().filter_map(|r| r.header("webhook-id")).collect();
        assert_eq!(webhook_ids.len(), 1, "event {n}: every attempt carries the same webhook-id");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sigkilled_mid_delivery_loses_no_event_and_another_delivers_it_with_the_same_id() {
    let world = World::start(json!({})).await;
    let receiver = Receiver::start(Behaviour::Hang).await;
    hook(&world, &receiver.url).await;
    let mut first = world.process_with(env(&world)).await;
    for n in 1..=5 {
        receive(&world, n).await;
    }
    receiver
        .wait_until("deliveries in flight to the hanging endpoint", Duration::from_secs(10), |got| got.len() >= 5)
        .await;
    first.kill();
    receiver.set(Behaviour::OK);
    let _second = world.process_with(env(&world)).await;
    let got = receiver
        .wait_until("all five events delivered by the second worker", Duration::from_secs(30), |got| {
            (1..=5).all(|n| got.iter().any(|r| r.delivered() && event_id(r) == Some(n)))
        })
        .await;
    check_all_delivered_with_stable_ids(&got, 1..=5);
}

/// The gap between the first two requests of event `n`, once there are two.
async fn first_retry_gap(receiver: &Receiver, n: u64) -> Duration {
    let got = receiver
        .wait_until("a second attempt of the event", Duration::from_secs(15), |got| {
            got.iter().filter(|r| event_id(r) == Some(n)).count() >= 2
        })
        .await;
    let at: Vec<_> = got.iter().filter(|r| event_id(r) == Some(n)).map(|r| r.at).collect();
    at[1] - at[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_retry_after_wins_over_the_schedule_in_seconds_or_as_an_http_date() {
    let world = World::start(json!({})).await;
    // The schedule retries after 100 ms; the endpoint asks for more.
    let receiver = Receiver::start(Behaviour::Answer { status: 503, retry_after: Some(2) }).await;
    hook(&world, &receiver.url).await;
    let _worker = world.process_with(env(&world)).await;
    receive(&world, 1).await;
    let gap = first_retry_gap(&receiver, 1).await;
    assert!(gap >= Duration::from_millis(1900), "Retry-After: 2 honoured, the retry came after {gap:?}");

    // An HTTP date three seconds ahead (whole seconds, so the wait is between 2 and 3 s).
    receiver.set(Behaviour::AnswerRetryAt { status: 503, after_secs: 3 });
    receive(&world, 2).await;
    let gap = first_retry_gap(&receiver, 2).await;
    assert!(gap >= Duration::from_millis(1500), "a Retry-After date honoured, the retry came after {gap:?}");
    receiver.set(Behaviour::OK);
    let got = receiver
        .wait_until("both events delivered", Duration::from_secs(15), |got| {
            (1..=2).all(|n| got.iter().any(|r| r.delivered() && event_id(r) == Some(n)))
        })
        .await;
    check_all_delivered_with_stable_ids(&got, 1..=2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_run_loses_no_acknowledged_event() {
    let mut world = World::start_with(json!({}), RedisServerOptions { appendonly: true }).await;
    let receiver = Receiver::start(Behaviour::status(503)).await;
    hook(&world, &receiver.url).await;
    let _worker = world.process_with(env(&world)).await;
    for n in 1..=20 {
        receive(&world, n).await;
    }
    receiver.wait_until("deliveries failing and retrying", Duration::from_secs(10), |got| got.len() >= 10).await;
    world.redis.kill();
    world.redis.start_again().await;
    receiver.set(Behaviour::OK);
    for n in 21..=30 {
        receive(&world, n).await;
    }
    let got = receiver
        .wait_until("every acknowledged event delivered after the restart", Duration::from_secs(40), |got| {
            (1..=30).all(|n| got.iter().any(|r| r.delivered() && event_id(r) == Some(n)))
        })
        .await;
    check_all_delivered_with_stable_ids(&got, 1..=30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_record_that_cannot_be_read_is_dead_lettered_and_the_others_are_delivered() {
    let world = World::start(json!({})).await;
    let receiver = Receiver::start(Behaviour::OK).await;
    hook(&world, &receiver.url).await;
    for n in 1..=3 {
        receive(&world, n).await;
    }
    let tenant = TenantId::parse("acme").unwrap();
    let stored = world.store.tenant_deliveries(&tenant, &Default::default(), 0, 10).await.unwrap();
    let broken = stored.items.iter().find(|d| d.event_id == "2").expect("event 2 stored").id;
    let mut conn = world.redis.connection().await;
    let _: () = conn.hset(world.key(&format!("delivery:{broken}")), "tenant", "not a tenant!").await.unwrap();

    let _worker = world.process_with(env(&world)).await;
    receiver
        .wait_until("events 1 and 3 delivered", Duration::from_secs(10), |got| {
            [1, 3].iter().all(|n| got.iter().any(|r| r.delivered() && event_id(r) == Some(*n)))
        })
        .await;
    let letters = async {
        loop {
            let n: u64 = conn.llen(world.key("dead-letters:webhook")).await.unwrap();
            if n == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), letters).await.expect("the broken delivery dead-lettered in time");
    assert!(receiver.got().iter().all(|r| event_id(r) != Some(2)), "the unreadable delivery was not sent");
}
