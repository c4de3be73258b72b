//! The one error body every wgate answer uses, shaped like WhatsGate's so its clients can read it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One problem with one field of a request (or, for upstream failures, `upstream.name` / `upstream.message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"field": "number", "problem": "must have 10 to 15 digits, got 2"}))]
pub struct FieldProblem {
    /// The field at fault: a body field, a header name, or `body` for the body as a whole.
    pub field: String,
    /// What is wrong with it, and what is expected.
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into() }
    }
}

/// `{"result":"ERROR","name":"<reason phrase>","message":"...","code":<status>,"details":[...]}`: the body of
/// every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"result": "ERROR", "name": "Bad Request",
    "message": "The request body is invalid (number); see details and correct it.", "code": 400,
    "details": [{"field": "number", "problem": "must have 10 to 15 digits, got 2"}]}))]
pub struct ErrorBody {
    /// Always `ERROR`.
    #[schema(pattern = "^ERROR$")]
    pub result: String,
    /// The HTTP reason phrase of `code`.
    pub name: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// The HTTP status of the answer.
    #[schema(minimum = 400, maximum = 599)]
    pub code: u16,
    /// One entry per field at fault, when the error concerns fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
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
