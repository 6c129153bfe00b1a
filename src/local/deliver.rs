//! Local delivery of one claimed recipient: the message, with the envelope sender in a
//! Return-Path line, written into the recipient's Maildir.
//!
//! Standards: RFC 5321 §4.4 (the final delivery records the envelope sender in Return-Path).
//! Must not: write the store, or decide retries; it returns a `DeliveryOutcome` (the outcome
//! table's type, `outbound::outcome`, shared by both transports) that the scheduler records.

use std::path::PathBuf;

use super::maildir;
use crate::outbound::outcome::{DeliveryOutcome, Stage};

/// Delivers `body` into the Maildir of the mailbox `key` under `mail_root`.
pub async fn deliver(
    mail_root: PathBuf,
    hostname: String,
    key: String,
    reverse_path: &str,
    body: &[u8],
) -> DeliveryOutcome {
    let mut message = format!("Return-Path: <{reverse_path}>\r\n").into_bytes();
    message.extend_from_slice(body);
    let result = tokio::task::spawn_blocking(move || maildir::deliver(&mail_root, &key, &hostname, &message)).await;
    match result {
        Ok(Ok(path)) => DeliveryOutcome::delivered_locally(format!("delivered to maildir as {}", path.display())),
        Ok(Err(e)) => DeliveryOutcome::local_trouble(Stage::Local, format!("maildir: {e}")),
        Err(e) => DeliveryOutcome::local_trouble(Stage::Local, format!("delivery task: {e}")),
    }
}
