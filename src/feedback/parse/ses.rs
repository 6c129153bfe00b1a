//! Amazon SES notifications delivered by mail (SNS JSON bodies): `notificationType`
//! `Bounce` / `Complaint` / `Delivery` with `bounce.bouncedRecipients[]` (emailAddress,
//! action, status, diagnosticCode) and `bounce.reportingMTA`.
//!
//! Standards: the SES notification JSON schema (serde_json, no typed schema: fields are
//! optional and read with `.get()`).
//! Must not: panic or classify; rows are capped.

use super::{MAX_RECIPIENTS, Row, clean_address, remote_in, reply_code_in, squeeze, status_in};
use serde_json::Value;

/// The SES notification object in `text` (an SNS envelope whose `Message` is JSON text,
/// or the notification itself), if any.
pub fn notification(text: &str) -> Option<Value> {
    if !text.contains("notificationType") && !text.contains("eventType") {
        return None;
    }
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let body = text.get(start..=end)?;
    // Mail bodies wrap long lines; JSON tolerates the whitespace between tokens only, so
    // join wrapped lines back first.
    let joined: String = body.lines().map(|l| l.trim_end_matches('\r')).collect::<Vec<_>>().join("");
    let v: Value = serde_json::from_str(&joined).or_else(|_| serde_json::from_str(body)).ok()?;
    match v.get("Message").and_then(Value::as_str) {
        Some(inner) => serde_json::from_str(inner).ok(),
        None => Some(v),
    }
}

/// The notification type: `"Bounce"`, `"Complaint"`, `"Delivery"`.
pub fn kind(n: &Value) -> Option<&str> {
    n.get("notificationType").or_else(|| n.get("eventType")).and_then(Value::as_str)
}

/// Per-recipient rows of a bounce or delivery notification.
pub fn parse(text: &str) -> Vec<Row> {
    let Some(n) = notification(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match kind(&n) {
        Some("Bounce") => {
            let b = n.get("bounce");
            let mta = b.and_then(|b| b.get("reportingMTA")).and_then(Value::as_str);
            let list = b.and_then(|b| b.get("bouncedRecipients")).and_then(Value::as_array);
            for r in list.into_iter().flatten().take(MAX_RECIPIENTS) {
                let Some(addr) = r.get("emailAddress").and_then(Value::as_str).and_then(clean_address) else {
                    continue;
                };
                let diag = r
                    .get("diagnosticCode")
                    .and_then(Value::as_str)
                    .map(|d| squeeze(d.trim_start_matches("smtp;").trim()));
                let status = r.get("status").and_then(Value::as_str).and_then(status_in);
                out.push(Row {
                    address: addr,
                    action: Some(r.get("action").and_then(Value::as_str).unwrap_or("failed").to_ascii_lowercase()),
                    reply_code: diag.as_deref().and_then(reply_code_in),
                    remote_mta: diag
                        .as_deref()
                        .and_then(remote_in)
                        .or_else(|| mta.map(|m| m.trim_start_matches("dsn;").trim().to_string())),
                    status,
                    diagnostic: diag,
                    local_program: false,
                });
            }
        }
        Some("Delivery") => {
            let d = n.get("delivery");
            let list = d.and_then(|d| d.get("recipients")).and_then(Value::as_array);
            for r in list.into_iter().flatten().take(MAX_RECIPIENTS) {
                if let Some(addr) = r.as_str().and_then(clean_address) {
                    let diag = d.and_then(|d| d.get("smtpResponse")).and_then(Value::as_str).map(squeeze);
                    out.push(Row {
                        address: addr,
                        action: Some("delivered".into()),
                        status: diag.as_deref().and_then(status_in),
                        reply_code: diag.as_deref().and_then(reply_code_in),
                        remote_mta: d.and_then(|d| d.get("reportingMTA")).and_then(Value::as_str).map(str::to_string),
                        diagnostic: diag,
                        local_program: false,
                    });
                }
            }
        }
        _ => {}
    }
    out
}
