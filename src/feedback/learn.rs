//! The learning filter for mailer-daemon mail: the Bayesian token learner SpamAssassin and
//! rspamd use for spam, applied to bounces. [`features`] turns a message into tokens (words
//! and word pairs of the human-readable part, the subject, the From and Reporting-MTA, and the
//! message's structure); [`predict`] combines what the stored model knows of them into the
//! probability that the message is forged (Robinson's f(w) per token, Fisher's chi-square
//! combining of the most telling ones); [`apply`] lets that probability turn an `unknown`
//! verdict into `likely_forged` or `likely_genuine`, and nothing else.
//!
//! Standards: G. Robinson, "A statistical approach to the spam problem" (2003); the
//! chi-square combining of SpamBayes and SpamAssassin's Bayes plugin.
//! Must not: touch the store (the model comes in as a value; `evidence` reads it, `ingest`
//! and the operator's tools train it), or change a verdict other than `unknown`.

use std::collections::BTreeSet;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::parse::Doc;
use super::verify::{Evidence, Inspection, Verdict, Verification, org_domain};
use crate::store::learner::{Label, Model, Sample, TrainSource};
use crate::time::Timestamp;

/// Tokens kept of one message (the first ones, in the order below: structure first).
pub const MAX_FEATURES: usize = 600;
/// Characters of the human-readable part read.
const TEXT_BYTES: usize = 16 * 1024;
/// The most telling tokens combined per message (SpamAssassin's N_SIGNIFICANT_TOKENS).
const SIGNIFICANT: usize = 150;
/// Robinson's strength of the prior (s) and the prior itself (x).
const ROBINSON_S: f64 = 1.0;
const ROBINSON_X: f64 = 0.5;
/// Tokens whose f(w) is closer to 0.5 than this say nothing and are left out.
const MIN_STRENGTH: f64 = 0.1;

/// How the filter is run: the certainty it needs, and how much it must have learned first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// A probability of forged at or above it makes `likely_forged`; at or below 1 − it,
    /// `likely_genuine`.
    pub threshold: f64,
    /// Messages of each label trained before the filter says anything.
    pub min_trained: u64,
    pub limits: crate::store::learner::LearnerLimits,
}

/// What the filter made of one message.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// The probability that the message is forged, 0..=1.
    pub probability_forged: f64,
    /// Tokens that counted (known to the model and telling).
    pub tokens: usize,
    pub trained_forged: u64,
    pub trained_genuine: u64,
}

/// The features of a message, sorted and without repeats.
pub fn features(ins: &Inspection, doc: Option<&Doc>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: String| {
        if out.len() < MAX_FEATURES {
            out.push(t);
        }
    };
    // Structure.
    let r = &ins.report;
    push(format!("x:kind:{}", r.kind.as_str()));
    push(format!("x:writer:{}", r.mta.as_deref().unwrap_or("none")));
    push(format!("x:recipients:{}", bucket(r.recipients.len())));
    let concrete = r.recipients.iter().any(|rc| rc.status.is_some() || rc.reply_code.is_some());
    push(format!("x:status:{concrete}"));
    for rc in r.recipients.iter().take(4) {
        push(format!("x:reason:{}", rc.reason.as_str()));
        if let Some(s) = rc.status.as_deref() {
            push(format!("x:class:{}", s.chars().next().unwrap_or('?')));
        }
    }
    let quotes = r.original.message_id.is_some() || r.original.subject.is_some() || r.original.from.is_some();
    push(format!("x:quotes-original:{quotes}"));
    push(format!("x:links:{}", bucket(ins.links.len())));
    for l in ins.links.iter().take(8) {
        push(format!("link:{}", org_domain(link_host(l))));
    }
    push(format!("x:attachments:{}", bucket(ins.odd_attachments.len())));
    for a in ins.odd_attachments.iter().take(4) {
        push(format!("att:{}", a.split(' ').next().unwrap_or("")));
    }
    push(format!("x:asks-credentials:{}", ins.asks_credentials.is_some()));
    push(format!("x:lure:{}", ins.lure.is_some()));
    match ins.from_address.as_deref().and_then(|a| a.rsplit_once('@')) {
        Some((local, domain)) => {
            push(format!("from:{}", local.to_ascii_lowercase()));
            push(format!("from-org:{}", org_domain(domain)));
        }
        None => push("from:none".into()),
    }
    match ins.reporting_mta.as_deref() {
        Some(m) if m.parse::<std::net::IpAddr>().is_err() => push(format!("mta:{}", org_domain(m))),
        Some(_) => push("mta:ip".into()),
        None => push("mta:none".into()),
    }
    if let Some(doc) = doc {
        push(format!("x:report-part:{}", !doc.dsn.is_empty()));
        let ctype = doc.content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        push(format!("x:ctype:{}", if ctype.is_empty() { "none" } else { ctype.as_str() }));
        if let Some(name) = doc.from.split('<').next().map(str::trim).filter(|n| !n.is_empty()) {
            for w in words(name).into_iter().take(6) {
                push(format!("name:{w}"));
            }
        }
        for w in words(&doc.subject).into_iter().take(20) {
            push(format!("s:{w}"));
        }
        let text = head(&doc.text, TEXT_BYTES);
        let ws = words(text);
        for w in &ws {
            push(w.clone());
        }
        for pair in ws.windows(2) {
            if let [a, b] = pair {
                push(format!("{a} {b}"));
            }
        }
    }
    let set: BTreeSet<String> = out.into_iter().collect();
    set.into_iter().collect()
}

fn bucket(n: usize) -> &'static str {
    match n {
        0 => "0",
        1 => "1",
        2..=3 => "2-3",
        _ => "4+",
    }
}

fn link_host(link: &str) -> &str {
    let rest = link.split_once("://").map_or(link, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    host.rsplit_once('@').map_or(host, |(_, h)| h).split(':').next().unwrap_or(host)
}

fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// Lower-case words of 2 to 24 characters; digits within a word are kept (status codes like
/// 550 and 5.1.1 are telling), links and addresses become their domain.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || "()<>[]{}\"',;:!?*=|".contains(c)) {
        let w = raw.trim_matches(|c: char| !c.is_alphanumeric());
        if w.is_empty() {
            continue;
        }
        let lw = w.to_lowercase();
        if lw.starts_with("http") || lw.starts_with("www.") {
            continue; // counted as `link:` tokens
        }
        if let Some((_, domain)) = lw.rsplit_once('@') {
            out.push(format!("addr:{}", org_domain(domain)));
            continue;
        }
        let n = lw.chars().count();
        if (2..=24).contains(&n) {
            out.push(lw);
        } else if n > 24 {
            out.push("x:long-word".into());
        }
        if out.len() >= MAX_FEATURES {
            break;
        }
    }
    out
}

/// The sample of a raw message for the store.
pub fn sample(raw: &[u8], tokens: Vec<String>, label: Option<Label>, source: TrainSource, at: Timestamp) -> Sample {
    Sample { digest: hex(&Sha256::digest(raw)), bounce: None, original: None, tokens, label, source, at }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Robinson's f(w): the token's probability of forged, pulled towards the prior when it was
/// seen rarely.
fn token_probability(forged: u64, genuine: u64, model: &Model) -> f64 {
    let b = forged as f64 / model.forged_messages.max(1) as f64;
    let g = genuine as f64 / model.genuine_messages.max(1) as f64;
    if b + g <= 0.0 {
        return ROBINSON_X;
    }
    let p = b / (b + g);
    let n = (forged + genuine) as f64;
    (ROBINSON_S * ROBINSON_X + n * p) / (ROBINSON_S + n)
}

/// The probability that a message with `tokens` is forged, when the model has learned at
/// least `min_trained` messages of each label and knows some telling token.
pub fn predict(model: &Model, tokens: &[String], min_trained: u64) -> Option<Prediction> {
    if model.forged_messages < min_trained.max(1) || model.genuine_messages < min_trained.max(1) {
        return None;
    }
    let mut probs: Vec<f64> = tokens
        .iter()
        .filter_map(|t| model.tokens.get(t))
        .map(|c| token_probability(c.forged, c.genuine, model))
        .filter(|p| (p - 0.5).abs() >= MIN_STRENGTH)
        .collect();
    if probs.is_empty() {
        return None;
    }
    probs.sort_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
    probs.truncate(SIGNIFICANT);
    let n = probs.len();
    // Clamped away from 0 and 1 so that one token cannot decide alone (ln 0).
    let clamp = |p: f64| p.clamp(1e-6, 1.0 - 1e-6);
    let ln_genuine: f64 = probs.iter().map(|p| clamp(*p).ln()).sum();
    let ln_forged: f64 = probs.iter().map(|p| (1.0 - clamp(*p)).ln()).sum();
    let s = 1.0 - chi2q(-2.0 * ln_forged, 2 * n);
    let h = 1.0 - chi2q(-2.0 * ln_genuine, 2 * n);
    Some(Prediction {
        probability_forged: ((s - h + 1.0) / 2.0).clamp(0.0, 1.0),
        tokens: n,
        trained_forged: model.forged_messages,
        trained_genuine: model.genuine_messages,
    })
}

/// The inverse chi-square: P(X > x2) for X ~ chi-square with `v` (even) degrees of freedom.
fn chi2q(x2: f64, v: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..(v / 2) {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

/// Lets a prediction speak where the deterministic evidence did not: an `unknown` verdict on
/// a message that claims to be a bounce becomes `likely_forged` / `likely_genuine` when the
/// probability passes the threshold; any other verdict is left as it is. The prediction is
/// kept with the verification, and one piece of evidence says what it was.
pub fn apply(v: &mut Verification, claims_bounce: bool, prediction: Option<Prediction>, threshold: f64) {
    if v.verdict != Verdict::Unknown || !claims_bounce {
        return;
    }
    let Some(p) = prediction else { return };
    let pf = p.probability_forged;
    let learned = if pf >= threshold {
        Some(Verdict::LikelyForged)
    } else if pf <= 1.0 - threshold {
        Some(Verdict::LikelyGenuine)
    } else {
        None
    };
    v.evidence.push(Evidence {
        check: "learner",
        ok: pf < 0.5,
        detail: format!(
            "learned filter: probability {pf:.4} that it is forged ({} telling tokens; trained on {} forged and {} genuine){}",
            p.tokens,
            p.trained_forged,
            p.trained_genuine,
            if learned.is_none() { ", not confident enough to decide" } else { "" }
        ),
        weight: 0,
        damning: false,
    });
    v.learned = Some(p);
    if let Some(verdict) = learned {
        v.verdict = verdict;
    }
}

/// The label a verification trains the filter with: only verdicts the evidence makes with
/// certainty (a valid token → genuine; a bad MAC, a request for credentials, or a bounce for
/// mail never sent → forged).
pub fn certain_label(v: &Verification) -> Option<Label> {
    if !v.certain {
        return None;
    }
    match v.verdict {
        Verdict::Genuine => Some(Label::Genuine),
        Verdict::Forged => Some(Label::Forged),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::learner::TokenCount;

    fn model(forged: u64, genuine: u64, tokens: &[(&str, u64, u64)]) -> Model {
        Model {
            forged_messages: forged,
            genuine_messages: genuine,
            tokens: tokens.iter().map(|(t, f, g)| (t.to_string(), TokenCount { forged: *f, genuine: *g })).collect(),
            size: tokens.len() as u64,
        }
    }

    #[test]
    fn chi2q_matches_known_values() {
        // P(X > 2) with 2 degrees of freedom is e^-1.
        assert!((chi2q(2.0, 2) - (-1.0f64).exp()).abs() < 1e-12);
        assert!((chi2q(0.0, 10) - 1.0).abs() < 1e-12);
        assert!(chi2q(200.0, 4) < 1e-40);
    }

    #[test]
    fn robinson_pulls_rare_tokens_towards_the_prior() {
        let m = model(10, 10, &[]);
        assert!((token_probability(1, 0, &m) - 0.75).abs() < 1e-9, "(1·0.5 + 1·1)/(1 + 1)");
        assert!(token_probability(9, 0, &m) > 0.94);
        assert!((token_probability(5, 5, &m) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn telling_tokens_decide_and_none_means_no_prediction() {
        let m = model(
            20,
            20,
            &[("verify", 18, 0), ("mailbox", 15, 1), ("user", 1, 17), ("unknown", 0, 16), ("the", 20, 20)],
        );
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p = predict(&m, &t(&["verify", "mailbox", "the"]), 5).unwrap();
        assert!(p.probability_forged > 0.95, "{p:?}");
        assert_eq!(p.tokens, 2, "`the` says nothing");
        let p = predict(&m, &t(&["user", "unknown"]), 5).unwrap();
        assert!(p.probability_forged < 0.05, "{p:?}");
        assert!(predict(&m, &t(&["the", "never-seen"]), 5).is_none());
        assert!(predict(&m, &t(&["verify"]), 21).is_none(), "too little trained");
    }

    #[test]
    fn features_cover_text_subject_sender_and_structure() {
        let raw = b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message to bob@example.org. See https://help.example.com/x\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; bob@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--\r\n";
        let ins = super::super::verify::inspect(raw);
        let f = &ins.features;
        for want in [
            "s:undelivered",
            "deliver",
            "could not",
            "addr:example.org",
            "link:example.com",
            "from:mailer-daemon",
            "from-org:example.net",
            "mta:example.net",
            "name:mail",
            "x:report-part:true",
            "x:links:1",
            "x:ctype:multipart/report",
            "x:status:true",
        ] {
            assert!(f.iter().any(|t| t == want), "{want} missing from {f:?}");
        }
        let mut sorted = f.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(&sorted, f);
        // Garbage in: still tokens, no panic.
        let junk = super::super::verify::inspect(&[0xff, 0xfe, b'\n', b'\n', 0x80]);
        assert!(junk.features.len() <= MAX_FEATURES);
    }
}
