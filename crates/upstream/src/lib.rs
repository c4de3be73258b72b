//! WhatsGate HTTP client with error classification, shared by the API and the worker.
