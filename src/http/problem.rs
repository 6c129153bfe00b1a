//! Errors of the HTTP API as RFC 9457 problem details (`application/problem+json`), naming the
//! request field at fault when there is one.
//!
//! Must not: leak internal error text for server faults beyond one line.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    /// A short, stable slug: `invalid-field`, `unauthorized`, `not-found`…
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// The JSON path of the field at fault (`to[1]`, `attachments[0].content`).
    pub field: Option<String>,
    /// Extra members (e.g. the refused recipients).
    pub extra: Option<Value>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem { status, kind, title, detail: detail.into(), field: None, extra: None }
    }

    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid request field", detail);
        p.field = Some(field.into());
        p
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", "Malformed request", detail)
    }

    /// Names `Authorization`, the header at fault.
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Missing or unknown API key", detail);
        p.field = Some("Authorization".into());
        p
    }

    pub fn forbidden(field: &str, detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed for this API key", detail);
        p.field = Some(field.into());
        p
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// A 404 naming the path parameter (`id`, `address`) that names nothing.
    pub fn not_found_at(field: &str, detail: impl Into<String>) -> Problem {
        let mut p = Problem::not_found(detail);
        p.field = Some(field.into());
        p
    }

    /// The request took longer than the server allows (reading its body included).
    pub fn timeout(limit: std::time::Duration) -> Problem {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "Request took too long",
            format!("a request must be sent and served within {} s", limit.as_secs()),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Try again later", detail)
    }

    /// The same problem, naming `field`.
    pub fn at(mut self, field: &str) -> Problem {
        self.field = Some(field.into());
        self
    }

    pub fn with(mut self, extra: Value) -> Problem {
        self.extra = Some(extra);
        self
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Problem {
        tracing::warn!(error = %e, "HTTP API: store error");
        Problem::unavailable(format!("the store could not answer: {e}"))
    }
}

impl Problem {
    /// The problem document (`type`, `title`, `status`, `detail`, `field`, extra members).
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "type": format!("/problems/{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(obj) = body.as_object_mut() {
            if let Some(f) = &self.field {
                obj.insert("field".into(), json!(f));
            }
            if let Some(Value::Object(extra)) = &self.extra {
                obj.extend(extra.clone());
            }
        }
        body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.to_json();
        (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
    }
}
