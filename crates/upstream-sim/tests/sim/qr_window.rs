//! The QR window `/qr/<unique_id>` and the state endpoint its script polls.

use serde_json::json;

use wgate_upstream_sim::SimConfig;

use crate::helpers::{TestSim, test_config};

#[tokio::test]
async fn the_qr_page_is_self_contained_and_speaks_the_post_message_protocol() {
    let sim = TestSim::start().await;
    let id = sim.create_named("n").await;
    let link = sim.session(&id).await["qr_link"].as_str().expect("qr_link").to_owned();
    let response = sim.client.get(&link).send().await.expect("page");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(response.headers().get("x-frame-options").is_none(), "the page can be framed");
    let page = response.text().await.expect("html");

    assert!(page.contains(&format!("\"/qr/{id}/state\"")), "polls its own state endpoint");
    assert!(page.contains("window.parent.postMessage({ module: \"qr\", message: message }, \"*\")"));
    for message in ["loading", "qr", "success", "error", "broken"] {
        assert!(page.contains(&format!("post(\"{message}\")")), "posts {message}");
    }
    assert!(page.contains("1000"), "polls about once a second");
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!page.contains(external), "nothing loaded from elsewhere ({external})");
    }
}

#[tokio::test]
async fn the_qr_page_never_echoes_a_foreign_id() {
    let sim = TestSim::start().await;
    let page = sim.get("/qr/%3Cscript%3E").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("\"/qr/0/state\""));
    assert!(!page.text.contains("<script>\""));
}

#[tokio::test]
async fn the_state_endpoint_follows_the_session_and_is_404_once_it_is_gone() {
    let sim = TestSim::start().await;
    let id = sim.create_named("n").await;
    let state_path = format!("/qr/{id}/state");
    let first = sim.get(&state_path).await;
    assert_eq!(first.status, 200);
    assert!(first.json["status"] == "PENDING" || first.json["status"] == "AUTH", "{}", first.text);

    let auth = crate::helpers::eventually("AUTH on the state endpoint", || async {
        let state = sim.get(&state_path).await.json;
        (state["status"] == "AUTH").then_some(state)
    })
    .await;
    assert!(auth["qr"].as_str().is_some_and(|q| q.starts_with("2@")));
    assert!(auth["svg"].as_str().is_some_and(|s| s.starts_with("<svg")), "the qr is drawn");
    let attempt = auth["attempt"].as_u64().expect("attempt");

    sim.fail(&id).await;
    let failed = sim.get(&state_path).await.json;
    assert!(failed["status"] == "PENDING" || failed["status"] == "AUTH", "{failed}");
    assert_eq!(failed["attempt"].as_u64(), Some(attempt + 1), "the page can tell a failure even between polls");

    sim.scan(&id).await;
    assert_eq!(sim.get(&state_path).await.json["status"], "READY");

    sim.command("session-delete", json!({ "WhatsappID": id })).await;
    assert_eq!(sim.get(&state_path).await.status, 404, "broken");
    assert_eq!(sim.get("/qr/1234567890123/state").await.status, 404);
    assert_eq!(sim.get("/qr/nope/state").await.status, 404);
}

#[tokio::test]
async fn the_state_of_a_code_session_carries_its_code() {
    let sim = TestSim::start().await;
    let created = sim.create(json!({ "name": "n", "auth_type": "CODE", "number": "79990001122" })).await;
    let state = sim.get(&format!("/qr/{}/state", created.unique_id())).await.json;
    assert_eq!(state["code"], created.data()["code"]);
    assert!(state["qr"].is_null());
}

/// Runs the page's own script in node against the simulator and follows the
/// messages it posts while the test fails and then authorizes the device.
#[tokio::test]
async fn the_qr_page_script_posts_loading_qr_error_success_and_broken_when_run() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    // node (18 or later, for fetch) is installed by scripts/install-deps; without it this test fails, it never
    // passes unchecked.
    let node = std::process::Command::new("node").arg("--version").output().expect("node is installed");
    let major: u32 = String::from_utf8_lossy(&node.stdout)
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 18, "node {major} has no fetch: install node 18 or later");
    // No rotation during the test: every "qr" the page posts is then a new authorization attempt, and the
    // sequence of messages is exact instead of depending on when a rotation lands between two polls.
    let sim = TestSim::start_with(SimConfig { qr_rotate_ms: 3_600_000, ..test_config() }).await;
    let dir = std::env::temp_dir();
    let harness = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sim/qr_harness.js");

    async fn run(sim: &TestSim, unique_id: &str, file: std::path::PathBuf, harness: &str) -> tokio::process::Child {
        let page = sim.get(&format!("/qr/{unique_id}")).await.text;
        std::fs::write(&file, page).expect("page written");
        tokio::process::Command::new("node")
            .args([harness, sim.base.as_str(), file.to_str().expect("utf-8 path")])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs")
    }
    async fn next_message(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
        let line = tokio::time::timeout(std::time::Duration::from_secs(5), lines.next_line())
            .await
            .expect("the page posted no message within 5 s")
            .expect("stdout readable")
            .expect("a line");
        let posted: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(posted["target"], "*");
        posted["message"].as_str().expect("message").to_owned()
    }

    let id = sim.create_named("n").await;
    let (page, gone_page) =
        (dir.join(format!("wgate-sim-qr-{id}.html")), dir.join(format!("wgate-sim-qr-gone-{id}.html")));
    let mut child = run(&sim, &id, page.clone(), harness).await;
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(next_message(&mut lines).await, "loading");
    assert_eq!(next_message(&mut lines).await, "qr");
    sim.fail(&id).await;
    assert_eq!(next_message(&mut lines).await, "error");
    assert_eq!(next_message(&mut lines).await, "qr", "a fresh qr after the failure");
    sim.scan(&id).await;
    assert_eq!(next_message(&mut lines).await, "success");
    drop(child);

    let mut gone = run(&sim, "1234567890123", gone_page.clone(), harness).await;
    let mut lines = BufReader::new(gone.stdout.take().expect("stdout")).lines();
    assert_eq!(next_message(&mut lines).await, "loading");
    assert_eq!(next_message(&mut lines).await, "broken");
    let _ = std::fs::remove_file(page);
    let _ = std::fs::remove_file(gone_page);
}
