//! `wgate chaos` in process, small: jobs under simulator faults, a worker SIGKILL and a redis-server restart, with
//! the real `wgate-worker` binary. Every accepted job must end terminal, none lost, one upstream session at most.

use std::{path::PathBuf, process::Command, time::Duration};

mod orphans;

use wgate::chaos::{self, ChaosArgs};

/// The `wgate-worker` binary of this build profile, built first when `cargo test` did not build it (it does when
/// the whole workspace is tested).
fn worker_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/chaos-<hash> -> target/<profile>/wgate-worker
    let bin = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>").join("wgate-worker");
    if !bin.is_file() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "wgate-worker", "--bin", "wgate-worker"]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("running cargo build for the worker binary");
        assert!(status.success(), "cargo build -p wgate-worker failed");
    }
    bin
}

/// Runs the scenario (bounded to 60 s) and answers its report with the table it prints.
async fn run_chaos(args: &ChaosArgs) -> (chaos::Report, String) {
    let report = tokio::time::timeout(Duration::from_secs(60), chaos::run(args))
        .await
        .expect("the chaos run ended within 60 s")
        .expect("the chaos run completed");
    let table = report.to_markdown(args);
    println!("{table}");
    (report, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_under_faults_worker_kills_and_a_redis_restart_all_end_terminal_with_at_most_one_session_each() {
    wgate_service::init_test_tracing();
    let args = ChaosArgs {
        jobs: 60,
        kills: 1,
        workers: 2,
        window_secs: 4.0,
        deadline_secs: 30,
        worker_concurrency: 8,
        upstream_timeout_ms: 500,
        visibility_timeout_ms: 1500,
        worker_bin: Some(worker_bin()),
        verbose: std::env::var_os("TEST_LOG").is_some(),
        ..ChaosArgs::default()
    };
    let (report, table) = run_chaos(&args).await;
    assert_eq!(report.violations(), Vec::<String>::new(), "{table}");
    // 60 jobs, and the session whose hook the webhook events arrive at.
    assert_eq!(report.accepted, 61, "{table}");
    assert_eq!(report.succeeded + report.failed + report.dead, 61, "{table}");
    assert!(report.max_sessions_per_job <= 1, "{table}");
    assert_eq!((report.worker_kills, report.redis_restarts), (1, 1), "{table}");
    assert_eq!(
        (report.events_acknowledged, report.events_delivered, report.events_lost),
        (args.events, args.events, 0),
        "every webhook event acknowledged and delivered: {table}"
    );
    assert!(report.endpoint_failures > 0, "the endpoint failed requests, so retries were exercised: {table}");
    // The kill must have hit a worker with jobs in flight: killing an idle one proves nothing about takeover.
    assert!(report.in_flight_at_kills > 0, "the killed worker had no job in flight: {table}");
    assert!(report.accepted_before_redis_restart > 0, "the restart came before any job: {table}");
    // The faults were really injected: more create calls than sessions.
    assert!(report.create_calls > report.sessions_created, "{table}");
}

#[tokio::test]
async fn a_missing_worker_binary_stops_the_run_before_anything_starts_with_the_build_command() {
    let args = ChaosArgs { worker_bin: Some("/nonexistent/wgate-worker".into()), ..ChaosArgs::default() };
    let err = chaos::run(&args).await.expect_err("the run refuses to start");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("/nonexistent/wgate-worker") && msg.contains("cargo build --release --workspace --bins"),
        "{msg}"
    );
}
