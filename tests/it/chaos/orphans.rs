//! `wgate chaos` counts orphans: sessions upstream that no job owns. Last attempts whose answers are lost must be
//! reconciled, not buried with their sessions.

use wgate::chaos::ChaosArgs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_on_the_last_attempt_leave_no_session_without_an_owning_job() {
    wgate_service::init_test_tracing();
    let args = ChaosArgs {
        jobs: 80,
        kills: 0,
        workers: 1,
        no_redis_restart: true,
        window_secs: 2.0,
        deadline_secs: 30,
        max_attempts: 2,
        ambiguous_rate: 0.4,
        error_rate: 0.2,
        throttle_rate: 0.0,
        timeout_rate: 0.0,
        worker_concurrency: 8,
        upstream_timeout_ms: 500,
        visibility_timeout_ms: 1500,
        worker_bin: Some(super::worker_bin()),
        verbose: std::env::var_os("TEST_LOG").is_some(),
        ..ChaosArgs::default()
    };
    let (report, table) = super::run_chaos(&args).await;
    assert_eq!(report.orphaned_sessions, 0, "{table}");
    assert_eq!(report.violations(), Vec::<String>::new(), "{table}");
    // The run did hit the case: sessions created with their answer lost.
    assert!(report.create_calls > report.sessions_created, "{table}");
    assert_eq!(report.sessions_created as usize, report.succeeded, "{table}");
}
