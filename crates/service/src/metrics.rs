//! The Prometheus registry of one process, holding `wgate_build_info` and the process collector.

use prometheus::{IntGaugeVec, Opts, Registry};

/// A registry with `wgate_build_info{version}` = 1 and (on Linux) `process_*` metrics.
pub fn new_registry() -> Registry {
    let registry = Registry::new();
    if let Ok(info) = IntGaugeVec::new(Opts::new("wgate_build_info", "Build of this wgate process."), &["version"]) {
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let _ = registry.register(Box::new(info));
    }
    #[cfg(target_os = "linux")]
    {
        let _ = registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
    }
    registry
}

/// Renders the registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut buf) {
        tracing::error!(error = %e, "encoding metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}
