//! The Redis connection settings that cannot work stop the binary at start with one line naming them.

use crate::{one_line_naming, run_binary};

#[test]
fn cluster_mode_is_refused_at_start_as_not_supported_yet() {
    let out = run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_REDIS_MODE", "cluster")]);
    one_line_naming(&out, "WGATE_REDIS_MODE");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported yet"));
}

#[test]
fn sentinel_mode_without_its_service_is_refused_at_start() {
    let out = run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_REDIS_MODE", "sentinel")]);
    one_line_naming(&out, "WGATE_REDIS_SENTINEL_SERVICE");
}

#[test]
fn tls_files_with_a_plain_redis_url_or_a_missing_file_are_refused_at_start() {
    let out = run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_REDIS_CA_FILE", "/nonexistent/ca.crt")]);
    one_line_naming(&out, "rediss://");
    let out = run_binary(&[
        ("WGATE_JWT_SECRET", "s"),
        ("WGATE_REDIS_URL", "rediss://127.0.0.1:1"),
        ("WGATE_REDIS_CA_FILE", "/nonexistent/ca.crt"),
    ]);
    one_line_naming(&out, "WGATE_REDIS_CA_FILE");
}
