//! Entries that cannot be run are acked into a capped, expiring dead-letter list; they never fail the batch they
//! arrive in.

use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::{DEAD_LETTER_CAP, DEAD_LETTER_VALUE_MAX, GROUP, Poison, Started};

use crate::helpers::{TestQueue, deliver_up_to, job};

async fn pending(q: &TestQueue) -> usize {
    let mut c = q.conn().await;
    let reply: redis::streams::StreamPendingReply = c.xpending(q.key("queue:session-create"), GROUP).await.unwrap();
    reply.count()
}

#[tokio::test]
async fn one_record_that_cannot_be_read_is_dead_lettered_and_the_rest_of_its_start_batch_runs() {
    let q = TestQueue::start().await;
    let jobs: Vec<_> = (0..3).map(|i| job("acme", json!({"name": format!("batch {i}")}))).collect();
    for j in &jobs {
        q.store.enqueue(j, None, None).await.unwrap();
    }
    let mut c = q.conn().await;
    let _: () = c.hset(q.key(&format!("job:{}", jobs[1].id)), "created_at", "yesterday").await.unwrap();
    let deliveries = deliver_up_to(&q, 100).await;
    assert_eq!(deliveries.len(), 3);

    let started = q.store.start_attempts(&deliveries).await.expect("the batch starts");
    assert!(matches!(&started[0], Started::Run { record, .. } if record.id == jobs[0].id), "{started:?}");
    assert_eq!(started[1], Started::Skip);
    assert!(matches!(&started[2], Started::Run { record, .. } if record.id == jobs[2].id), "{started:?}");

    let letters = q.store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["entry_id"], deliveries[1].entry_id.as_str());
    assert_eq!(letters[0]["fields"], json!([["job", jobs[1].id.to_string()]]));
    assert!(letters[0]["reason"].as_str().unwrap().contains("created_at"), "{letters:?}");
    assert_eq!(pending(&q).await, 2, "the broken job's entry is acked, the two running ones are not");
    assert_eq!(q.store.queue_counts().await.unwrap().dead_letters, 1);
}

#[tokio::test]
async fn the_dead_letter_list_is_capped_expires_and_cuts_long_values() {
    let q = TestQueue::start().await;
    let long = "x".repeat(DEAD_LETTER_VALUE_MAX * 4);
    let poison: Vec<Poison> = (0..DEAD_LETTER_CAP + 5)
        .map(|i| Poison {
            entry_id: format!("1-{i}"),
            fields: vec![("job".into(), long[..DEAD_LETTER_VALUE_MAX].to_owned())],
            reason: "test".into(),
        })
        .collect();
    assert_eq!(q.store.dead_letter(&poison).await.unwrap(), DEAD_LETTER_CAP as u64);
    let newest = q.store.dead_letters(1).await.unwrap();
    assert_eq!(newest[0]["entry_id"], format!("1-{}", DEAD_LETTER_CAP + 4), "the newest are kept");
    let mut c = q.conn().await;
    let ttl: i64 = c.pttl(q.key("dead-letters:session-create")).await.unwrap();
    assert!(ttl > 0 && ttl <= 7 * 24 * 3600 * 1000, "{ttl}");

    // A raw entry with a huge value and many fields is kept cut to size when the worker reads it.
    let fields: Vec<(String, String)> = (0..100).map(|i| (format!("f{i}"), long.clone())).collect();
    let _: String = c.xadd(q.key("queue:session-create"), "*", &fields).await.unwrap();
    q.store.ensure_group().await.unwrap();
    // Read by a consumer that then dies: it is pending until taken over, and dead-lettered then.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("tester")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(q.key("queue:session-create"))
        .arg(">")
        .query_async(&mut c)
        .await
        .unwrap();
    let (taken, _) = q.store.take_over("other", std::time::Duration::ZERO, "0-0", 10).await.unwrap();
    assert!(taken.is_empty(), "nothing to run");
    assert_eq!(pending(&q).await, 0, "the taken-over poison entry is acked");
    let letter = &q.store.dead_letters(1).await.unwrap()[0];
    let kept = letter["fields"].as_array().unwrap();
    assert_eq!(kept.len(), 32);
    assert_eq!(kept[0][1].as_str().unwrap().len(), DEAD_LETTER_VALUE_MAX);
}
