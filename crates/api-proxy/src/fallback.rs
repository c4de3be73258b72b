//! The answers of requests no handler takes: an unknown path (404) and a known path with another method (405).

use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// The answer of any path no route matches.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("resource"))
}

/// The answer of a resource to any method but `allow`: 405 with `Allow` (RFC 9110).
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, ApiError>(ApiError::MethodNotAllowed { allow }) })
}
