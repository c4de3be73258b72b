//! A WhatsGate-compatible simulator for tests, benchmarks and demos (binary wgate-sim).
