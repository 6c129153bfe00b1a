//! The value a parsed bounce becomes: [`BounceReport`] and its parts, and its JSON view
//! (DESIGN §3, `mailerd bounce parse --json`).
//!
//! Standards: field names follow RFC 3464 words where they exist.
//! Must not: parse, classify or do I/O; this file only holds types and renders them.

use crate::bounce::reason::Reason;
use serde::Serialize;
use serde_json::{Value, json};

/// What kind of message was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A non-delivery report (permanent or final failure).
    Bounce,
    /// A delay warning (the sender's MTA is still trying).
    Delay,
    /// An auto-reply (RFC 3834): out of office and the like.
    Vacation,
    /// An ARF (RFC 5965) feedback report.
    Feedback,
    /// A success report (Action: delivered / relayed / expanded).
    Delivered,
    /// Ordinary mail.
    NotBounce,
}

impl ReportKind {
    /// True for the kinds that report a failed (or delayed) delivery.
    pub fn is_bounce(self) -> bool {
        matches!(self, ReportKind::Bounce | ReportKind::Delay)
    }

    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Bounce => "bounce",
            ReportKind::Delay => "delay",
            ReportKind::Vacation => "vacation",
            ReportKind::Feedback => "feedback",
            ReportKind::Delivered => "delivered",
            ReportKind::NotBounce => "not_bounce",
        }
    }
}

/// One recipient a report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BouncedRecipient {
    /// Lower-cased, without `rfc822;` or angle brackets.
    pub address: String,
    /// SMTP reply code, e.g. `"550"`.
    pub reply_code: Option<String>,
    /// RFC 3463 enhanced status code, e.g. `"5.1.1"`.
    pub status: Option<String>,
    pub reason: Reason,
    /// True only when the address itself is bad (DESIGN §3).
    pub hard_bounce: Option<bool>,
    /// The remote server's words (Diagnostic-Code or the MTA's text), one line.
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    /// From the reason table (`bounce/reason.rs`).
    pub advice: String,
    /// How the reason was decided (`mailerd bounce parse --explain`).
    #[serde(skip)]
    pub why: Why,
}

/// The evidence a reason was decided on, besides the status, code and words kept above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Why {
    /// The SMTP command the refusal answered.
    pub phase: crate::feedback::classify::Phase,
    /// A delay report.
    pub delayed: bool,
    /// The rule of the precedence that decided.
    pub rule: crate::feedback::classify::Rule,
}

impl BouncedRecipient {
    /// The evidence and the deciding rule, for people (`bounce parse --explain`).
    pub fn explain_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "evidence: status {}, reply code {}, command {}, {}",
            self.status.as_deref().unwrap_or("none"),
            self.reply_code.as_deref().unwrap_or("none"),
            self.why.phase.as_str(),
            if self.why.delayed { "a delay report" } else { "a final report" },
        )];
        lines.push(format!("decided by {}", self.why.rule));
        if let Some(m) = self.matched() {
            lines.push(format!("words: \"{m}\""));
        }
        lines
    }

    /// The same as JSON (`bounce parse --json --explain`).
    pub fn explain_json(&self) -> Value {
        json!({
            "command": self.why.phase.as_str(),
            "delayed": self.why.delayed,
            "rule": self.why.rule.to_string(),
            "words": self.matched(),
        })
    }

    /// The words of the diagnostic that the deciding phrase matched.
    fn matched(&self) -> Option<String> {
        use crate::feedback::classify::Rule;
        let hit = match self.why.rule {
            Rule::Wording(h) | Rule::WordingAt(h, _) | Rule::WeakWording(h) => h,
            _ => return None,
        };
        crate::feedback::phrases::matched(&hit, self.diagnostic.as_deref()?)
    }
}

impl Default for Why {
    fn default() -> Self {
        Why { phase: Default::default(), delayed: false, rule: crate::feedback::classify::Rule::Undefined }
    }
}

/// Headers of the message that bounced, when the report includes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OriginalHeaders {
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub subject: Option<String>,
}

/// Everything read from one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BounceReport {
    pub kind: ReportKind,
    /// The software that wrote the report, lower-case (`"postfix"`, `"exim"`, ...).
    pub mta: Option<String>,
    pub recipients: Vec<BouncedRecipient>,
    pub original: OriginalHeaders,
    /// What could not be read, for people; never fatal.
    pub warnings: Vec<String>,
    /// The fields of an ARF feedback report (`kind` Feedback).
    pub feedback: Option<crate::feedback::arf::FeedbackReport>,
}

impl BounceReport {
    /// An empty report of `kind`.
    pub fn empty(kind: ReportKind) -> BounceReport {
        BounceReport {
            kind,
            mta: None,
            recipients: Vec::new(),
            original: OriginalHeaders::default(),
            warnings: Vec::new(),
            feedback: None,
        }
    }

    /// The DESIGN §3 JSON line for `mailerd bounce parse --json`.
    pub fn to_json(&self, file: &str) -> Value {
        let recipients: Vec<Value> = self
            .recipients
            .iter()
            .map(|r| {
                json!({
                    "address": r.address,
                    "reply_code": r.reply_code,
                    "status": r.status,
                    "reason": r.reason,
                    "hard_bounce": r.hard_bounce,
                    "diagnostic": r.diagnostic,
                    "remote_mta": r.remote_mta,
                    "advice": r.advice,
                })
            })
            .collect();
        let mut v = json!({
            "file": file,
            "is_bounce": self.kind.is_bounce(),
            "kind": self.kind,
            "mta": self.mta,
            "recipients": recipients,
            "original": {
                "message_id": self.original.message_id,
                "from": self.original.from,
                "to": self.original.to,
                "subject": self.original.subject,
            },
        });
        let kind_reason = match self.kind {
            ReportKind::Vacation => Some(Reason::Vacation),
            ReportKind::Feedback => Some(Reason::Feedback),
            ReportKind::Delivered => Some(Reason::Delivered),
            _ => None,
        };
        if let (Some(r), Some(obj)) = (kind_reason, v.as_object_mut()) {
            obj.insert("reason".into(), json!(r));
        }
        if let (Some(f), Some(obj)) = (&self.feedback, v.as_object_mut()) {
            obj.insert("feedback_type".into(), json!(f.feedback_type));
            obj.insert("feedback".into(), json!(f));
        }
        if !self.warnings.is_empty()
            && let Some(obj) = v.as_object_mut()
        {
            obj.insert("warnings".into(), json!(self.warnings));
        }
        v
    }
}
