//! The real `wgate-sim` binary: it starts, prints where it listens, and answers.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts the binary and reads `listening on http://...` from its first stdout line.
async fn start(args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    // This test's own HTTP client needs a rustls provider (the in-process tests get it from Application::build).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut command = Command::new(env!("CARGO_BIN_EXE_wgate-sim"));
    command.args(["--listen", "127.0.0.1:0", "--workers", "1"]).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true).spawn().expect("wgate-sim starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(20), BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("a first line within 20 s")
        .expect("stdout readable");
    let base = line.trim().strip_prefix("listening on ").expect("listening on ...").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (child, base)
}

async fn create(base: &str, key: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/session-create"))
        .header("X-Api-Key", key)
        .json(&json!({ "name": "from the binary" }))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn the_binary_prints_its_address_and_answers_with_the_given_key() {
    let (mut child, base) = start(&["--api-key", "k1", "--api-key", "k2", "--seed", "5"], &[]).await;
    let created = create(&base, "k2").await;
    assert_eq!(created["result"], "OK", "{created}");
    assert_eq!(created["data"]["qr_link"], format!("{base}/qr/{}", created["data"]["unique_id"].as_str().expect("id")));
    assert_eq!(create(&base, "sim-key").await["name"], "Unauthorized", "sim-key only when no key is given");
    child.kill().await.expect("stopped");
}

#[tokio::test]
async fn the_binary_reads_its_settings_from_the_environment() {
    let (mut child, base) = start(
        &[],
        &[
            ("WGATE_SIM_API_KEY", "env-key"),
            ("WGATE_SIM_PUBLIC_URL", "https://sim.example"),
            ("WGATE_SIM_ERROR_RATE", "1"),
        ],
    )
    .await;
    let faults: serde_json::Value =
        reqwest::get(format!("{base}/sim/faults")).await.expect("answer").json().await.expect("json");
    assert_eq!(faults["error_rate"], 1.0);
    assert_eq!(create(&base, "env-key").await["name"], "InternalError");
    reqwest::Client::new()
        .post(format!("{base}/sim/faults"))
        .json(&json!({ "error_rate": 0 }))
        .send()
        .await
        .expect("ok");
    let created = create(&base, "env-key").await;
    let link = created["data"]["qr_link"].as_str().expect("qr_link");
    assert!(link.starts_with("https://sim.example/qr/"), "{link}");
    child.kill().await.expect("stopped");
}
