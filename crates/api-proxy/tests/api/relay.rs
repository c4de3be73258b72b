//! Webhook relay.

#[allow(unused_imports)]
use super::*;

/// A tenant callback that records what it receives and answers `status`.
pub(crate) async fn callback_server(status: Arc<Mutex<u16>>, seen: Arc<Mutex<Vec<Value>>>) -> String {
    let addr = serve(move |cfg| {
        let (status, seen) = (status.clone(), seen.clone());
        cfg.route(
            "/hook",
            web::post().to(move |body: web::Json<Value>| {
                let (status, seen) = (status.clone(), seen.clone());
                async move {
                    seen.lock().unwrap().push(body.into_inner());
                    let code = *status.lock().unwrap();
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).finish()
                }
            }),
        );
    });
    format!("http://{addr}/hook")
}

pub(crate) async fn hook_token_of(app: &TestApp, id: &str) -> String {
    let mut conn = app.redis.connection().await;
    redis::cmd("HGET").arg(app.keys.job(id.parse().unwrap())).arg("hook_token").query_async(&mut conn).await.unwrap()
}

#[tokio::test]
async fn a_webhook_is_relayed_and_acknowledged_only_when_the_tenant_acknowledges() {
    let app = TestApp::spawn().await;
    let status = Arc::new(Mutex::new(200));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let callback = callback_server(status.clone(), seen.clone()).await;
    let r = app.create_async("acme", &json!({"name": "Shop", "callback": callback})).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let token = hook_token_of(&app, &id).await;
    assert!(token.len() >= 22, "at least 128 bits");
    let event = json!({"id": 77, "whatsapp_id": "6345454545454", "event_action": "ready", "event_date": "2022-10-11 19:30:14", "status_code": 200, "event_data": {}});
    let r = app.hook(&token, &event).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await, json!({"result": "OK", "id": 77}));
    assert_eq!(seen.lock().unwrap().as_slice(), std::slice::from_ref(&event));

    *status.lock().unwrap() = 500;
    let r = app.hook(&token, &event).await;
    assert_eq!(r.status(), 502, "WhatsGate must retry");
    assert_eq!(json_of(r).await["code"], 502);
}

#[tokio::test]
async fn a_tenant_callback_slower_than_the_hook_timeout_is_given_up_on_and_whatsgate_told_to_retry() {
    // The callback takes 30 s to answer; the relay waits WGATE_HOOK_TIMEOUT_MS (400 ms) for it.
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route(
            "/hook",
            web::post().to(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                HttpResponse::Ok().finish()
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .bind("127.0.0.1:0")
    .unwrap();
    let callback = format!("http://{}/hook", server.addrs()[0]);
    let server = server.run();
    let stop = server.handle();
    tokio::spawn(server);
    let app = TestApp::spawn_with(|s| s.hook_timeout_ms = 400).await;
    let r = app.create_async("acme", &json!({"name": "Slow", "callback": callback})).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let token = hook_token_of(&app, &id).await;
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), app.hook(&token, &json!({"id": 5})))
        .await
        .expect("the relay answered WhatsGate within 10 s");
    let took = start.elapsed();
    assert_eq!(r.status(), 502, "WhatsGate must retry");
    assert!(took >= Duration::from_millis(400), "gave up after {took:?}, before the hook timeout");
    assert!(took < Duration::from_millis(2_000), "waited {took:?} for a 400 ms hook timeout");
    stop.stop(false).await;
}

#[tokio::test]
async fn an_unknown_hook_is_404_and_a_job_without_callback_is_acknowledged_and_dropped() {
    let app = TestApp::spawn().await;
    let unknown = app.hook("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &json!({"id": 1})).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.hook("short", &json!({"id": 1})).await.status(), 404);
    let r = app.create_async("acme", &json!({"name": "No callback"})).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let token = hook_token_of(&app, &id).await;
    let r = app.hook(&token, &json!({"id": "e-1"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await, json!({"result": "OK", "id": "e-1"}));
}
