//! Redis outage.

#[allow(unused_imports)]
use super::*;

#[tokio::test]
async fn a_dead_redis_is_503_within_a_second_and_unready_then_everything_recovers() {
    let mut app = TestApp::spawn().await;
    assert_eq!(app.create_async("acme", &body()).await.status(), 202);
    assert_eq!(app.readyz().await, 200);
    app.redis.kill();
    for _ in 0..3 {
        unavailable_within_a_second("a create", app.create_async("acme", &body())).await;
    }
    let missing = wgate_types::JobId::new().to_string();
    unavailable_within_a_second("a job read", app.get_job(&app.token("acme"), &missing)).await;
    let start = Instant::now();
    assert_eq!(app.readyz().await, 503);
    assert!(start.elapsed() <= REDIS_DOWN_BOUND, "/readyz answered after {:?}", start.elapsed());
    assert!(app.metrics().await.contains("wgate_redis_errors_total{op=\"enqueue\"}"));

    app.redis.start_again().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.readyz().await != 200 {
        assert!(Instant::now() < deadline, "not ready again after Redis came back");
        pause(Duration::from_millis(50)).await;
    }
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 202);
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    assert_eq!(app.get_job(&app.token("acme"), &id).await.status(), 200, "what was acknowledged is stored");
}

/// The bound on an answer while Redis hangs or is down: the 1 s Redis timeout, plus scheduling slack on a busy
/// machine.
const REDIS_DOWN_BOUND: Duration = Duration::from_millis(1200);

/// Asserts that `answer` is the 503 of an unreachable Redis, given within a second.
pub(crate) async fn unavailable_within_a_second(
    what: &str,
    answer: impl std::future::Future<Output = reqwest::Response>,
) {
    let start = Instant::now();
    let Ok(r) = tokio::time::timeout(Duration::from_secs(5), answer).await else {
        panic!("{what} got no answer within 5 s while Redis was unreachable");
    };
    let took = start.elapsed();
    assert_eq!(r.status(), 503, "{what}");
    assert!(took <= REDIS_DOWN_BOUND, "{what} answered after {took:?}");
    assert_eq!(header(r.headers(), "retry-after"), Some("1"), "{what}");
    assert_eq!(json_of(r).await["code"], 503, "{what}");
}

#[tokio::test]
async fn a_frozen_redis_is_503_within_a_second_and_the_first_request_after_it_thaws_is_served() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 202);
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let token = app.token("acme");
    assert_eq!(app.readyz().await, 200);

    // Frozen for over six seconds: past the completion subscription's keepalive (5 s), which then fails too.
    let frozen = app.redis.freeze();
    for _ in 0..3 {
        unavailable_within_a_second("a create", app.create_async("acme", &body())).await;
        unavailable_within_a_second("a job read", app.get_job(&token, &id)).await;
        let start = Instant::now();
        assert_eq!(app.readyz().await, 503);
        assert!(start.elapsed() <= REDIS_DOWN_BOUND, "/readyz answered after {:?}", start.elapsed());
    }
    frozen.thaw();

    // Nothing left from the freeze delays the next requests: each is served at once.
    let start = Instant::now();
    assert_eq!(app.readyz().await, 200, "ready at the first probe after the thaw");
    assert_eq!(app.get_job(&token, &id).await.status(), 200, "the first read after the thaw");
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 202, "the first create after the thaw");
    let created = header(r.headers(), "x-job-id").unwrap().to_owned();
    assert_eq!(app.get_job(&token, &created).await.status(), 200, "what was acknowledged is stored");
    assert!(start.elapsed() < Duration::from_millis(500), "service came back after {:?}", start.elapsed());
    // A synchronous create is answered by the job's completion: the subscription is back as well.
    // Work off what is queued: the jobs acknowledged, and those whose create was answered 503 while its script
    // sat unread in the hung server's socket, which Redis ran when it woke (a client retries those with its
    // Idempotency-Key to get the same job).
    let queued = app.store.queue_counts().await.unwrap().pending;
    assert!((2..=5).contains(&queued), "{queued} jobs queued");
    let mut worked = Vec::new();
    for _ in 0..queued {
        worked.push(app.work_one(|_| succeeded("My WhatsApp")).await.to_string());
    }
    assert!(worked.contains(&id) && worked.contains(&created), "{worked:?}");
    let start = Instant::now();
    let b = body();
    let (r, _) = tokio::join!(app.create_session("acme", &b, &[]), app.work_one(|_| succeeded("My WhatsApp")));
    assert_eq!(r.status(), 200, "a synchronous create right after the thaw");
    assert!(start.elapsed() < Duration::from_secs(2), "answered after {:?}", start.elapsed());
}
