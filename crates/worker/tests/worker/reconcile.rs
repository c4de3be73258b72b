//! No orphaned sessions: a job whose attempts may have reached WhatsGate is reconciled before it ends dead and
//! before a replay creates again.

use std::time::Duration;

use serde_json::json;
use wgate_queue::Replay;
use wgate_types::JobStatus;

use crate::helpers::{TestWorker, World, acme};

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_attempt_whose_answer_was_lost_adopts_the_session_it_created_instead_of_ending_dead() {
    // Every create makes the session and loses the answer; one attempt only.
    let world = World::start(json!({"ambiguous_rate": 1.0})).await;
    let worker = world.worker().await;
    let job = world.enqueue("lost answer", 1).await;
    let done = world.finished(job.id, SECS(10)).await;

    assert_eq!((done.status, done.attempts), (JobStatus::Succeeded, 1), "{done:?}");
    let upstream = world.sim.sessions("lost answer").await;
    assert_eq!(upstream.len(), 1, "one session upstream: {upstream:?}");
    let unique_id = upstream[0]["unique_id"].as_str().unwrap().to_owned();
    assert_eq!(done.response.as_ref().unwrap()["unique_id"], upstream[0]["unique_id"]);
    let owner = world.store.session_owner(&acme(), &unique_id).await.unwrap().expect("the session has an owner");
    assert_eq!(owner.job_id, job.id);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_last_attempt_failed_cleanly_still_ends_dead_with_its_error_and_no_session() {
    let world = World::start(json!({"error_rate": 1.0})).await;
    let worker = world.worker().await;
    let job = world.enqueue("never created", 2).await;
    let done = world.finished(job.id, SECS(10)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Dead, 2), "{done:?}");
    assert_eq!(done.error.map(|e| e.name), Some("InternalError".to_owned()));
    assert_eq!(world.sim.created("never created").await, 0);
    worker.stop().await;
}

/// WhatsGate behind a broken load balancer: session-create reaches the simulator, every other command (the
/// look-ups) answers 503.
async fn lookups_fail(sim: &str) -> String {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let create = format!("{sim}/api/v1/session-create");
    let server = HttpServer::new(move || {
        let create = create.clone();
        App::new()
            .route(
                "/api/v1/session-create",
                web::post().to(move |req: HttpRequest, body: web::Bytes| {
                    let create = create.clone();
                    async move {
                        let key = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                        let sent = reqwest::Client::new()
                            .post(create)
                            .header("X-Api-Key", key)
                            .header("Content-Type", "application/json")
                            .body(body)
                            .send()
                            .await;
                        match sent {
                            Ok(r) => {
                                let status = actix_web::http::StatusCode::from_u16(r.status().as_u16()).unwrap();
                                HttpResponse::build(status).body(r.bytes().await.unwrap_or_default())
                            }
                            Err(_) => HttpResponse::BadGateway().finish(),
                        }
                    }
                }),
            )
            .default_service(web::to(|| async { HttpResponse::ServiceUnavailable().body("maintenance") }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_could_not_be_reconciled_ends_dead_and_its_replay_adopts_the_session_instead_of_creating_another() {
    let world = World::start(json!({"ambiguous_rate": 1.0})).await;
    let name = "replayed after a lost answer";

    // 1. The only attempt creates the session and loses the answer, and WhatsGate cannot be reached to look for
    //    it: after its bounded look-ups the job ends dead, saying so.
    let mut cut_off = world.settings();
    cut_off.upstream.url = lookups_fail(&world.sim.base).await;
    let first = TestWorker::start(cut_off).await;
    let job = world.enqueue(name, 1).await;
    let dead = world.finished(job.id, SECS(20)).await;
    assert_eq!((dead.status, dead.attempts), (JobStatus::Dead, 1), "{dead:?}");
    assert_eq!(dead.error.as_ref().map(|e| e.name.as_str()), Some("Unreconciled"), "{dead:?}");
    assert_eq!(world.sim.created(name).await, 1);
    first.stop().await;

    // 2. The replay looks upstream first and adopts the session: still one session for the job.
    world.sim.faults(json!({"ambiguous_rate": 0.0})).await;
    let worker = world.worker().await;
    assert!(matches!(world.store.replay(&acme(), job.id, None).await.unwrap(), Replay::Requeued(_)));
    let done = world.finished(job.id, SECS(10)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Succeeded, 1), "{done:?}");
    assert_eq!(world.sim.created(name).await, 1, "the replay made a second session");
    let upstream = world.sim.sessions(name).await;
    assert_eq!(done.response.as_ref().unwrap()["unique_id"], upstream[0]["unique_id"]);
    worker.stop().await;
}
