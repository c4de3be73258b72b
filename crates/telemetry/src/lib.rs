//! Tracing setup, Prometheus registry and the admin listener (/metrics, /healthz, /readyz).
