//! Gathers the facts forged-bounce detection weighs (`verify::judge`): the signed return path
//! against our key, the quoted Message-ID against the sent log, and SPF, DKIM and DMARC of the
//! bounce itself through mail-auth.
//!
//! Standards: RFC 7208 (SPF of the HELO identity for a null sender), RFC 6376, RFC 7489.
//! Must not: decide the verdict (that is `verify`), write to the store, or count mail outside
//! the caller's scope as ours.

use std::net::IpAddr;

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfResult};

use super::verify::{AuthFact, Facts, Inspection, SentFact, TokenFact, Verification, inspect, judge, org_domain};
use crate::bounce::return_path::{Signer, TokenError};
use crate::store::{MessageId, Scope, Store, StoreError};
use crate::time::Timestamp;

/// The most SPF, DKIM and DMARC of one bounce may take; beyond it they are not counted.
const AUTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// How a bounce reached us, when known (the daemon knows; a file on the command line does not,
/// and then the newest Received header stands in).
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// The RCPT TO address.
    pub rcpt: Option<String>,
    pub client_ip: Option<IpAddr>,
    pub helo: Option<String>,
    /// Empty for the null reverse path.
    pub mail_from: String,
}

/// Everything needed to verify bounces on this host.
pub struct Verifier {
    pub signer: Option<Signer>,
    /// `bounce.sign_return_path`: all our mail carries a token.
    pub all_signed: bool,
    /// None: (g) is not checked.
    pub authenticator: Option<MessageAuthenticator>,
    /// Our host name, for SPF macros.
    pub hostname: String,
    /// The learned filter (`learn`), asked about bounces the evidence leaves `unknown`;
    /// None when `bounce.learner = false`.
    pub learner: Option<super::learn::Settings>,
}

impl Verifier {
    /// The verifier of this host: our return-path key (when given), and mail-auth on the
    /// configured name servers unless `check_auth` is false.
    pub fn new(config: &crate::config::Config, signer: Option<Signer>, check_auth: bool) -> Verifier {
        let authenticator = if check_auth {
            match crate::dns::Dns::authenticator(&config.dns_nameservers, AUTH_TIMEOUT, 1) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(error = %e, "no resolver for SPF/DKIM/DMARC of bounces");
                    None
                }
            }
        } else {
            None
        };
        Verifier {
            signer,
            all_signed: config.bounce.sign_return_path,
            authenticator,
            hostname: config.hostname.clone(),
            learner: learner_settings(config),
        }
    }

    /// Inspects `raw`, gathers the facts and judges.
    pub async fn verify(&self, store: &dyn Store, raw: &[u8], envelope: &Envelope) -> Result<Verification, StoreError> {
        self.verify_in(store, raw, envelope, &Scope::All).await
    }

    /// `verify` for a caller who may know only about mail of `scope` (a scoped API key): a
    /// token or a sent-log entry of another sender's message counts as none, so the verdict
    /// never tells that such mail was sent.
    pub async fn verify_in(
        &self,
        store: &dyn Store,
        raw: &[u8],
        envelope: &Envelope,
        scope: &Scope,
    ) -> Result<Verification, StoreError> {
        let ins = inspect(raw);
        let mut token = self.token_fact(&ins, envelope, Timestamp::now());
        if let TokenFact::Valid { queue_id } = &token
            && !in_scope(store, scope, queue_id).await?
        {
            token = TokenFact::Absent;
        }
        let sent = sent_fact(store, &ins, &token, scope).await?;
        let auth = match &self.authenticator {
            Some(a) if ins.claims_bounce => {
                let lookups = auth_fact(a, raw, envelope, &ins, &self.hostname);
                tokio::time::timeout(AUTH_TIMEOUT, lookups).await.unwrap_or_else(|_| {
                    tracing::debug!("SPF/DKIM/DMARC of a bounce timed out; not counted");
                    None
                })
            }
            _ => None,
        };
        let mut v = judge(&ins, &Facts { token, sent, auth, all_signed: self.all_signed });
        // Only where the evidence says nothing: the filter never overrides a verdict.
        if let Some(l) = &self.learner
            && v.verdict == super::verify::Verdict::Unknown
            && ins.claims_bounce
        {
            let model = store.learner_model(&v.features).await?;
            let prediction = super::learn::predict(&model, &v.features, l.min_trained);
            super::learn::apply(&mut v, ins.claims_bounce, prediction, l.threshold);
        }
        Ok(v)
    }

    fn token_fact(&self, ins: &Inspection, envelope: &Envelope, now: Timestamp) -> TokenFact {
        let Some(signer) = &self.signer else { return TokenFact::Absent };
        let mut fact = TokenFact::Absent;
        for address in envelope.rcpt.iter().chain(ins.tokens.iter()) {
            let Some((local, domain)) = address.rsplit_once('@') else { continue };
            match signer.verify_address(local, domain, now) {
                Ok(t) => return TokenFact::Valid { queue_id: t.queue_id },
                Err(TokenError::NotOurs) => {}
                Err(TokenError::Expired) => fact = TokenFact::Expired,
                Err(TokenError::Malformed | TokenError::BadSignature) => {
                    if fact == TokenFact::Absent {
                        fact = TokenFact::Invalid;
                    }
                }
            }
        }
        fact
    }
}

/// The learned filter's settings from `[bounce]`, None when it is off.
pub fn learner_settings(config: &crate::config::Config) -> Option<super::learn::Settings> {
    config.bounce.learner.map(|l| super::learn::Settings {
        threshold: l.threshold,
        min_trained: l.min_trained,
        limits: crate::store::learner::LearnerLimits { max_tokens: l.max_tokens, ..Default::default() },
    })
}

/// Whether the message `queue_id` is one `scope` may know about (a message that is gone is
/// nobody's but the admins').
async fn in_scope(store: &dyn Store, scope: &Scope, queue_id: &str) -> Result<bool, StoreError> {
    if scope.is_all() {
        return Ok(true);
    }
    let facts = store.report_facts(&MessageId(queue_id.to_string())).await?;
    Ok(facts.is_some_and(|f| scope.covers_path(&f.reverse_path)))
}

/// (b) and (c): the quoted Message-ID in the sent log, or the message a valid token names;
/// only messages of `scope` count.
async fn sent_fact(
    store: &dyn Store,
    ins: &Inspection,
    token: &TokenFact,
    scope: &Scope,
) -> Result<SentFact, StoreError> {
    if let Some(mid) = ins.report.original.message_id.as_deref() {
        let message_id = crate::store::normalize_header_id(mid);
        if !message_id.is_empty() {
            let mut rows = store.sent_log(&message_id).await?;
            if !scope.is_all() {
                let mut ours = std::collections::HashMap::new();
                for r in &rows {
                    if !ours.contains_key(&r.queue_id.0) {
                        ours.insert(r.queue_id.0.clone(), in_scope(store, scope, &r.queue_id.0).await?);
                    }
                }
                rows.retain(|r| ours.get(&r.queue_id.0) == Some(&true));
            }
            if rows.is_empty() {
                return Ok(SentFact::NotSent { message_id });
            }
            let queue_id = rows.first().map(|r| r.queue_id.0.clone()).unwrap_or_default();
            let recipients = rows.into_iter().map(|r| r.recipient).collect();
            return Ok(SentFact::Sent { message_id, queue_id, recipients });
        }
    }
    if let TokenFact::Valid { queue_id } = token
        && let Some(facts) = store.report_facts(&MessageId(queue_id.clone())).await?
    {
        let recipients = facts.recipients.into_iter().map(|r| r.address.to_lowercase()).collect();
        return Ok(SentFact::Sent {
            message_id: format!("queue id {queue_id}"),
            queue_id: queue_id.clone(),
            recipients,
        });
    }
    Ok(SentFact::NoMessageId)
}

/// (g): SPF of the sending host, DKIM signatures, DMARC of the From domain.
async fn auth_fact(
    auth: &MessageAuthenticator,
    raw: &[u8],
    envelope: &Envelope,
    ins: &Inspection,
    hostname: &str,
) -> Option<AuthFact> {
    let newest = ins.received.first();
    let ip = envelope.client_ip.or_else(|| newest.and_then(|h| h.from_ip.as_deref()).and_then(|s| s.parse().ok()))?;
    let helo = envelope.helo.clone().or_else(|| newest.and_then(|h| h.from_names.first().cloned()))?;
    let msg = AuthenticatedMessage::parse(raw)?;
    let spf_params = if envelope.mail_from.is_empty() {
        SpfParameters::verify_ehlo(ip, &helo, hostname)
    } else {
        SpfParameters::verify_mail_from(ip, &helo, hostname, &envelope.mail_from)
    };
    let (dkim, spf) = tokio::join!(auth.verify_dkim(&msg), auth.verify_spf(spf_params));
    let mail_from_domain =
        envelope.mail_from.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_else(|| helo.clone());
    let dmarc = auth.verify_dmarc(DmarcParameters::new(&msg, &dkim, &mail_from_domain, &spf)).await;
    let from_org = msg.from.first().and_then(|f| f.rsplit_once('@')).map(|(_, d)| org_domain(d));
    let dkim_aligned_pass = dkim
        .iter()
        .any(|o| o.result() == &DkimResult::Pass && o.signature().is_some_and(|s| Some(org_domain(&s.d)) == from_org));
    let dkim_fail = dkim.iter().any(|o| matches!(o.result(), DkimResult::Fail(_)));
    let spf_name = match spf.result() {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    };
    let (d, s) = (dmarc.dkim_result(), dmarc.spf_result());
    let has_policy = matches!(
        dmarc.policy(),
        mail_auth::dmarc::Policy::None | mail_auth::dmarc::Policy::Quarantine | mail_auth::dmarc::Policy::Reject
    );
    let dmarc_name = if d == &DmarcResult::Pass || s == &DmarcResult::Pass {
        "pass"
    } else if matches!(d, DmarcResult::TempError(_)) || matches!(s, DmarcResult::TempError(_)) {
        "temperror"
    } else if matches!(d, DmarcResult::PermError(_)) || matches!(s, DmarcResult::PermError(_)) {
        "permerror"
    } else if matches!(d, DmarcResult::Fail(_)) || matches!(s, DmarcResult::Fail(_)) || has_policy {
        // A published policy and no aligned pass is a DMARC failure (mail-auth leaves both
        // results at None when neither SPF nor DKIM passed at all).
        "fail"
    } else {
        "none"
    };
    let dmarc_enforced =
        matches!(dmarc.policy(), mail_auth::dmarc::Policy::Reject | mail_auth::dmarc::Policy::Quarantine);
    Some(AuthFact { spf: spf_name.into(), dkim_aligned_pass, dkim_fail, dmarc: dmarc_name.into(), dmarc_enforced })
}
