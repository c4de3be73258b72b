//! Logging to stderr (stdout carries only the `listening on` line): `WGATE_LOG` filter (default `info`),
//! `WGATE_LOG_FORMAT` `json` (default) or `pretty`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call does nothing.
pub fn init() {
    // actix logs every deliberately dropped connection (the ambiguous fault) as an error; that is the point.
    let filter = EnvFilter::try_from_env("WGATE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("actix_http::h1::dispatcher=off".parse().unwrap_or_default());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match std::env::var("WGATE_LOG_FORMAT").as_deref() {
        Ok("pretty") => builder.pretty().try_init(),
        _ => builder.json().try_init(),
    };
    let _ = result;
}
