//! The one error body every wgate answer uses, shaped like WhatsGate's so its clients can read it.

use serde::{Deserialize, Serialize};

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into() }
    }
}

/// `{"result":"ERROR","name":"<reason phrase>","message":"...","code":<status>,"details":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub result: String,
    pub name: String,
    pub message: String,
    pub code: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldProblem>,
}

impl ErrorBody {
    /// `name` is the HTTP reason phrase of `code`; `message` says what is wrong and what to do.
    pub fn new(code: u16, name: impl Into<String>, message: impl Into<String>) -> Self {
        Self { result: "ERROR".into(), name: name.into(), message: message.into(), code, details: Vec::new() }
    }

    pub fn with_details(mut self, details: Vec<FieldProblem>) -> Self {
        self.details = details;
        self
    }
}
