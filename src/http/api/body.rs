//! Request bodies and query strings whose problems name their field: a JSON body must say
//! `application/json` (415 naming `Content-Type` otherwise), must be JSON (400 naming `body`),
//! and a missing, unknown or mistyped field is a 422 naming it (`from`, `to[0]`, `limit`), the
//! same for every route (`batch::parse` reads the path with `serde_path_to_error`).
//!
//! Must not: accept a body the route's limit refuses (axum's `DefaultBodyLimit` still applies).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::super::problem::Problem;
use super::batch;

/// A 415 naming `Content-Type` unless the request says `application/json`.
pub(super) fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        return Ok(());
    }
    let mut p = Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        "send the body as application/json",
    );
    p.field = Some("Content-Type".into());
    Err(p)
}

/// The problem of a body that could not be read (too large: 413; cut off: 400), naming `body`.
pub(super) fn unreadable(e: &axum::extract::rejection::BytesRejection) -> Problem {
    let mut p = Problem::new(e.status(), "unreadable-body", "Body not read", e.body_text());
    p.field = Some("body".into());
    p
}

/// The JSON body of `headers` and `body` as `T`, its problems naming the field.
pub(super) fn json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, Problem> {
    require_json(headers)?;
    batch::parse(body, "")
}

/// A JSON body read as `T` (see the module header for its problems).
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let headers = req.headers().clone();
        require_json(&headers)?;
        let bytes = Bytes::from_request(req, state).await.map_err(|e| unreadable(&e))?;
        batch::parse(&bytes, "").map(Json)
    }
}

/// A query string read as `T`: an unknown, missing or mistyped parameter is a 422 naming it.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// The page size of a list: `limit` or `default`, a 422 naming `limit` outside 1..=`max`.
pub(super) fn page_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, Problem> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > max {
        return Err(Problem::invalid("limit", format!("between 1 and {max}")));
    }
    Ok(limit)
}

/// `a=1&b=x` as `T`, the problem naming the parameter at fault.
pub(super) fn query<T: DeserializeOwned>(text: &str) -> Result<T, Problem> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(text.as_bytes()));
    serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let named = inner.strip_prefix("missing field `").or_else(|| inner.strip_prefix("unknown field `"));
        let field = match named.and_then(|rest| rest.split('`').next()) {
            Some(name) => name.to_string(),
            None if path != "." => path,
            None => "query".to_string(),
        };
        Problem::invalid(field, format!("query string: {inner}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<usize>,
        since: Option<String>,
    }

    #[test]
    fn query_problems_name_the_parameter() {
        assert!(query::<Q>("limit=5&since=x").is_ok());
        assert!(query::<Q>("").is_ok());
        assert_eq!(query::<Q>("limit=five").unwrap_err().field.as_deref(), Some("limit"));
        assert_eq!(query::<Q>("limit=1&colour=red").unwrap_err().field.as_deref(), Some("colour"));
    }

    #[test]
    fn json_bodies_need_the_json_type() {
        let mut h = HeaderMap::new();
        let p = json::<serde_json::Value>(&h, b"{}").unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("Content-Type")));
        h.insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        assert!(json::<serde_json::Value>(&h, b"{}").is_ok());
    }
}
