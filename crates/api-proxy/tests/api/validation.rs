//! Validation.

#[allow(unused_imports)]
use super::*;

#[tokio::test]
async fn an_invalid_body_is_400_with_details_per_field() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &json!({"name": "", "callback": "ftp://x", "auth_type": "CODE"})).await;
    assert_eq!(r.status(), 400);
    let b = json_of(r).await;
    assert_eq!(b["name"], "Bad Request");
    assert_eq!(b["code"], 400);
    let fields: Vec<&str> = b["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "callback", "number"]);
    let r = app
        .post_raw(
            "/api/v1/session-create",
            b"{not json".to_vec(),
            &[("content-type", "application/json"), ("authorization", &format!("Bearer {}", app.token("acme")))],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await["details"][0]["field"], "body");
}

#[tokio::test]
async fn a_body_over_16_kib_is_413_and_a_non_json_content_type_is_415() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {}", app.token("acme"));
    let big = json!({"name": "x".repeat(17 * 1024)}).to_string().into_bytes();
    let r = app
        .post_raw("/api/v1/session-create", big, &[("content-type", "application/json"), ("authorization", &auth)])
        .await;
    assert_eq!(r.status(), 413);
    assert_eq!(json_of(r).await["code"], 413);
    let b = body().to_string().into_bytes();
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut h = vec![("authorization", auth.as_str())];
        if let Some(ct) = ct {
            h.push(("content-type", ct));
        }
        let r = app.post_raw("/api/v1/session-create", b.clone(), &h).await;
        assert_eq!(r.status(), 415, "{ct:?}");
        assert_eq!(json_of(r).await["code"], 415);
    }
    let r = app
        .post_raw(
            "/api/v1/session-create",
            b,
            &[
                ("content-type", "application/merge-patch+json; charset=utf-8"),
                ("authorization", &auth),
                ("prefer", "respond-async"),
            ],
        )
        .await;
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn a_bad_idempotency_key_is_400_naming_the_header() {
    let app = TestApp::spawn().await;
    let long = "k".repeat(256);
    for key in ["", long.as_str()] {
        let r = app.create_session("acme", &body(), &[("idempotency-key", key), ("prefer", "respond-async")]).await;
        assert_eq!(r.status(), 400, "{key:?}");
        assert_eq!(json_of(r).await["details"][0]["field"], "Idempotency-Key");
    }
}

#[test]
fn random_bodies_and_headers_never_get_a_5xx() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = rt.block_on(TestApp::spawn_with(|s| {
        s.sync_wait_ms = 20;
        s.rate_per_second = 1e6;
        s.rate_burst = 1_000_000;
    }));
    let token = app.token("fuzz");
    let paths = prop_oneof![
        Just("/api/v1/session-create".to_owned()),
        "[ -~]{0,30}".prop_map(|s| format!("/api/v1/jobs/{}", s.replace(['/', '?', '#', ' ', '%'], ""))),
        "[ -~]{0,30}".prop_map(|s| format!("/hooks/{}", s.replace(['/', '?', '#', ' ', '%'], ""))),
        "[a-z/]{0,20}".prop_map(|s| format!("/{s}")),
    ];
    let bodies = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (any::<Option<String>>(), any::<Option<String>>(), "QR|CODE|[a-z]{0,3}", "\\+?[0-9]{0,16}").prop_map(
            |(n, c, a, num)| json!({"name": n, "callback": c, "auth_type": a, "number": num}).to_string().into_bytes()
        ),
    ];
    let text = "[ -~]{0,40}";
    let strategy = (
        paths,
        prop_oneof![Just("POST"), Just("GET"), Just("PUT"), Just("DELETE")],
        bodies,
        prop_oneof![Just("application/json".to_owned()), text.prop_map(|s| s)],
        prop_oneof![Just(format!("Bearer {token}")), text.prop_map(|s| s)],
        proptest::option::of(text),
        proptest::option::of(text),
        proptest::option::of(text),
    );
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 96, ..Default::default() });
    runner
        .run(&strategy, |(path, method, body, ct, auth, idem, prefer, rid)| {
            let status = rt.block_on(async {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut req = app.client.request(method, format!("{}{path}", app.base)).body(body);
                for (name, value) in [
                    ("content-type", Some(ct)),
                    ("authorization", Some(auth)),
                    ("idempotency-key", idem),
                    ("prefer", prefer),
                    ("x-request-id", rid),
                ] {
                    if let Some(v) = value
                        && let Ok(v) = reqwest::header::HeaderValue::from_str(&v)
                    {
                        req = req.header(name, v);
                    }
                }
                req.send().await.map(|r| r.status().as_u16())
            });
            let status = status.map_err(|e| TestCaseError::fail(format!("request failed: {e}")))?;
            prop_assert!(status < 500, "status {}", status);
            Ok(())
        })
        .unwrap();
}
