//! Configuration.

#[allow(unused_imports)]
use super::*;

pub(crate) fn run_binary(env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wgate-api"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("WGATE_API_LISTEN", "127.0.0.1:0").env("WGATE_API_ADMIN_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // A configuration error stops the process at once; a correct one would serve forever.
    let start = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the binary did not stop on a configuration error");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when the test ends, whatever way it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn one_line_naming(out: &std::process::Output, variable: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(variable), "{stderr}");
}

#[test]
fn the_binary_stops_with_one_line_naming_the_variable_when_no_jwt_key_is_set() {
    one_line_naming(&run_binary(&[]), "WGATE_JWT_SECRET");
}

#[test]
fn the_binary_stops_with_one_line_naming_the_variable_when_a_pem_file_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n").unwrap();
    one_line_naming(&run_binary(&[("WGATE_JWT_PUBLIC_KEYS", bad.to_str().unwrap())]), "WGATE_JWT_PUBLIC_KEYS");
    one_line_naming(&run_binary(&[("WGATE_JWT_PUBLIC_KEYS", "/nonexistent.pem")]), "WGATE_JWT_PUBLIC_KEYS");
}

#[test]
fn the_binary_stops_with_one_line_naming_the_variable_when_a_value_is_malformed() {
    one_line_naming(&run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_RATE_BURST", "lots")]), "WGATE_RATE_BURST");
    one_line_naming(&run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_JWT_JWKS_URL", "nope")]), "WGATE_JWT_JWKS_URL");
    one_line_naming(&run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_REDIS_URL", "not a url")]), "WGATE_REDIS_URL");
    one_line_naming(&run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_API_LISTEN", "here")]), "WGATE_API_LISTEN");
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(&tenants, "[tenants.acme]\nburst = 0\n").unwrap();
    one_line_naming(
        &run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_TENANTS_FILE", tenants.to_str().unwrap())]),
        "WGATE_TENANTS_FILE",
    );
}

#[tokio::test]
async fn the_binary_serves_with_settings_from_a_config_file_logs_json_and_stops_cleanly_on_sigterm() {
    let redis = wgate_testkit::RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wgate.toml");
    std::fs::write(
        &file,
        format!(
            "redis_url = \"{}\"\napi_listen = \"127.0.0.1:0\"\napi_admin_listen = \"127.0.0.1:0\"\n\
             jwt_secret = \"{SECRET}\"\nlog_format = \"json\"\n",
            redis.url()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wgate-api"))
        .arg("--config")
        .arg(&file)
        .env_remove("WGATE_JWT_SECRET")
        .env_remove("WGATE_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    // Both listeners on port 0: the addresses come from this process's own log line.
    let (listening, log) = wgate_testkit::announced(stdout, "wgate-api listening", Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("wgate-api did not start: {e:#}"));
    let api = wgate_testkit::address_in(&listening, "address").unwrap().port();
    let admin = wgate_testkit::address_in(&listening, "admin_address").unwrap().port();
    let client = wgate_testkit::http_client();
    let token = hs256(SECRET, &claims("acme", json!({})));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{admin}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "wgate-api did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = client
        .post(format!("http://127.0.0.1:{api}/api/v1/session-create"))
        .bearer_auth(&token)
        .header("prefer", "respond-async")
        .header("x-request-id", "log-check-1")
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job_id = header(r.headers(), "x-job-id").unwrap().to_owned();
    // SIGTERM: a clean exit.
    let mut child = child;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.0.id() as i32), nix::sys::signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(35);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "wgate-api did not exit within 35 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    // One JSON object per line (all of them read once the pipe closed); the acceptance carries the request id,
    // the tenant and the job id.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.closed() {
        assert!(Instant::now() < deadline, "the log pipe was not closed within 5 s of the exit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stdout = log.lines().join("\n");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect();
    let accepted = lines.iter().find(|l| l["message"] == "job accepted").expect("an acceptance log line");
    assert_eq!(accepted["span"]["request_id"], "log-check-1", "{accepted}");
    assert_eq!(accepted["span"]["tenant"], "acme", "{accepted}");
    assert_eq!(accepted["job_id"], job_id.as_str(), "{accepted}");
    assert!(!stdout.contains(SECRET) && !stdout.contains(&token), "no secret or token in the logs");
}
