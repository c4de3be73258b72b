//! Where a request carries its token.

use actix_web::{HttpRequest, http::header};

use super::AuthError;

/// The token of a request, from `Authorization: Bearer` or else `X-Api-Key` (also when `Authorization` carries
/// another scheme, e.g. a proxy's `Basic`).
pub fn token_of(req: &HttpRequest) -> Result<&str, AuthError> {
    let headers = req.headers();
    let bearer = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v.to_str().map_err(|_| AuthError::Malformed)?.trim();
            match v.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
                _ => None,
            }
        }
        None => None,
    };
    if let Some(token) = bearer {
        return if token.is_empty() { Err(AuthError::Malformed) } else { Ok(token) };
    }
    if let Some(v) = headers.get("x-api-key") {
        let v = v.to_str().map_err(|_| AuthError::Malformed)?.trim();
        return if v.is_empty() { Err(AuthError::Missing) } else { Ok(v) };
    }
    if headers.contains_key(header::AUTHORIZATION) { Err(AuthError::Malformed) } else { Err(AuthError::Missing) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_token_comes_from_bearer_or_x_api_key() {
        let r = TestRequest::default().insert_header(("authorization", "Bearer abc")).to_http_request();
        assert_eq!(token_of(&r), Ok("abc"));
        let r = TestRequest::default().insert_header(("x-api-key", " k ")).to_http_request();
        assert_eq!(token_of(&r), Ok("k"));
        let r = TestRequest::default()
            .insert_header(("authorization", "Basic dXNlcg=="))
            .insert_header(("x-api-key", "k"))
            .to_http_request();
        assert_eq!(token_of(&r), Ok("k"));
        let r = TestRequest::default().insert_header(("authorization", "Basic dXNlcg==")).to_http_request();
        assert_eq!(token_of(&r), Err(AuthError::Malformed));
        let r = TestRequest::default().insert_header(("authorization", "Bearer ")).to_http_request();
        assert_eq!(token_of(&r), Err(AuthError::Malformed));
        assert_eq!(token_of(&TestRequest::default().to_http_request()), Err(AuthError::Missing));
    }
}
