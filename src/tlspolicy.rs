//! Outbound TLS policies as values: the MTA-STS TXT record and policy grammar, `mx` patterns,
//! a policy as cached in the store, the TLS-RPT result types of a session, and DANE's TLSA
//! records.
//!
//! Standards: RFC 8461 §3.1 (the `_mta-sts` TXT record), §3.2 (the policy: CRLF or LF lines
//! of `key: value`; unknown fields ignored; of a repeated field but `mx` the first counts;
//! `max_age` at most 31557600 s), §4.1 (`mx` patterns: a host name, or `*.` matching exactly
//! one leftmost label), RFC 8460 §4.3 (result types), RFC 6698 §2.1 and RFC 7672 §3.1 (the
//! TLSA fields, and which of them SMTP can use).
//! Pure: no I/O, no clock (callers pass `now`); bad input is an error value, never a panic,
//! and nothing grows beyond the policy size limit.
//! Must not: fetch, resolve or store anything (`outbound::sts` does).

use std::fmt;

use thiserror::Error;

use crate::time::Timestamp;

/// The largest policy body accepted (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// The longest `max_age` a policy may ask for: one year (RFC 8461 §3.2).
pub const MAX_MAX_AGE: u64 = 31_557_600;
/// At most this many `mx` lines are kept (a bound, far above any real policy).
const MAX_MX_PATTERNS: usize = 100;

/// Why a TXT record or a policy is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("the record does not start with v=STSv1")]
    NotSts,
    #[error("the record has no valid id")]
    NoId,
    #[error("the record is malformed: {0}")]
    MalformedRecord(String),
    #[error("the policy is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    #[error("the policy is not UTF-8 text")]
    NotText,
    #[error("line {0} of the policy is not `key: value`")]
    MalformedLine(usize),
    #[error("the policy's version is not STSv1")]
    Version,
    #[error("the policy's mode is missing or not one of enforce, testing, none")]
    Mode,
    #[error("the policy's max_age is missing or not a number of seconds")]
    MaxAge,
    #[error("the policy's mx `{0}` is not a host name pattern")]
    Mx(String),
    #[error("the policy lists no mx (required unless mode is none)")]
    NoMx,
    #[error("the record does not start with v=TLSRPTv1")]
    NotTlsRpt,
    #[error("the record has no rua= (where reports go)")]
    NoRua,
    #[error("`{0}` is not a mailto: or https: URI")]
    BadRua(String),
}

/// An `_mta-sts.DOMAIN` TXT record: only its id matters to a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRecord {
    /// 1-32 letters and digits; a new id announces a new policy.
    pub id: String,
}

/// Parses one TXT record (its strings already joined). RFC 8461 §3.1: `v=STSv1` first, then
/// `;`-separated `name=value` fields of which `id` is required.
pub fn parse_record(text: &str) -> Result<StsRecord, PolicyError> {
    let mut fields = text.split(';').map(|f| f.trim_matches([' ', '\t']));
    let version = fields.next().unwrap_or("");
    match version.split_once('=') {
        Some((k, v)) if k.trim_end_matches([' ', '\t']) == "v" && v.trim_start_matches([' ', '\t']) == "STSv1" => {}
        _ => return Err(PolicyError::NotSts),
    }
    let mut id = None;
    for (i, field) in fields.enumerate() {
        if field.is_empty() {
            // Only a trailing delimiter may leave an empty field.
            continue;
        }
        let Some((name, value)) = field.split_once('=') else {
            return Err(PolicyError::MalformedRecord(format!("field {} has no `=`", i + 2)));
        };
        let (name, value) = (name.trim_end_matches([' ', '\t']), value.trim_start_matches([' ', '\t']));
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        let value_ok = !value.is_empty() && value.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b';' && b != b'=');
        if !name_ok || !value_ok {
            return Err(PolicyError::MalformedRecord(format!("field `{field}`")));
        }
        if name == "id" && id.is_none() {
            if value.len() > 32 || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PolicyError::NoId);
            }
            id = Some(value.to_string());
        }
    }
    id.map(|id| StsRecord { id }).ok_or(PolicyError::NoId)
}

/// Of the TXT records at `_mta-sts.DOMAIN`, the one MTA-STS record: those not starting with
/// `v=STSv1` are discarded; none, several or an invalid one mean no policy (RFC 8461 §3.1).
pub fn select_record(records: &[String]) -> Result<StsRecord, PolicyError> {
    let sts: Vec<&String> = records.iter().filter(|r| r.starts_with("v=STSv1")).collect();
    match sts.as_slice() {
        [one] => parse_record(one),
        [] => Err(PolicyError::NotSts),
        _ => Err(PolicyError::MalformedRecord(format!("{} v=STSv1 records", sts.len()))),
    }
}

/// An `_smtp._tls.DOMAIN` TXT record (RFC 8460 §3): where TLS reports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRptRecord {
    /// `mailto:` and `https:` URIs, in the record's order.
    pub rua: Vec<String>,
}

/// Parses a TLS-RPT record: `v=TLSRPTv1` first, then `;`-separated fields of which `rua` (a
/// comma-separated list of `mailto:` or `https:` URIs) is required.
pub fn parse_tlsrpt(text: &str) -> Result<TlsRptRecord, PolicyError> {
    let mut fields = text.split(';').map(|f| f.trim_matches([' ', '\t']));
    match fields.next().and_then(|v| v.split_once('=')) {
        Some((k, v)) if k.trim() == "v" && v.trim() == "TLSRPTv1" => {}
        _ => return Err(PolicyError::NotTlsRpt),
    }
    let mut rua = None;
    for field in fields.filter(|f| !f.is_empty()) {
        let Some((name, value)) = field.split_once('=') else {
            return Err(PolicyError::MalformedRecord(format!(
                "field `{}`",
                field.chars().take(80).collect::<String>()
            )));
        };
        if name.trim() == "rua" && rua.is_none() {
            let mut uris = Vec::new();
            for uri in value.split(',').map(str::trim).take(MAX_MX_PATTERNS) {
                let lower = uri.to_ascii_lowercase();
                let ok = (lower.starts_with("mailto:") && uri.len() > 7 && uri.contains('@'))
                    || (lower.starts_with("https://") && uri.len() > 8);
                if !ok || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(PolicyError::BadRua(uri.chars().take(80).collect()));
                }
                uris.push(uri.to_string());
            }
            rua = Some(uris);
        }
    }
    match rua {
        Some(rua) if !rua.is_empty() => Ok(TlsRptRecord { rua }),
        _ => Err(PolicyError::NoRua),
    }
}

/// What a policy asks of senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only matching MX hosts, over verified TLS; otherwise do not deliver.
    Enforce,
    /// Deliver as without a policy, but report what would have failed.
    Testing,
    /// The domain withdrew its policy.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "enforce" => Some(Mode::Enforce),
            "testing" => Some(Mode::Testing),
            "none" => Some(Mode::None),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `mx` line: a host name, or `*.` and a name (matching one more leftmost label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxPattern {
    /// Lower case, without a trailing dot, without the `*.` of a wildcard.
    name: String,
    wildcard: bool,
}

impl MxPattern {
    pub fn parse(text: &str) -> Result<MxPattern, PolicyError> {
        let bad = || PolicyError::Mx(text.chars().take(80).collect());
        let lower = text.trim_end_matches('.').to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, lower),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(bad());
        }
        Ok(MxPattern { name, wildcard })
    }

    /// Whether the MX host `host` (any case, trailing dot or not) matches this pattern.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if !self.wildcard {
            return host == self.name;
        }
        match host.split_once('.') {
            Some((first, rest)) => !first.is_empty() && rest == self.name,
            None => false,
        }
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)
    }
}

/// A valid MTA-STS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Seconds the policy may be cached (at most [`MAX_MAX_AGE`]).
    pub max_age: u64,
    pub mx: Vec<MxPattern>,
}

impl Policy {
    /// Parses a policy body (RFC 8461 §3.2).
    pub fn parse(body: &str) -> Result<Policy, PolicyError> {
        if body.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        let (mut version, mut mode, mut max_age) = (None, None, None);
        let mut mx = Vec::new();
        for (n, line) in body.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim_matches([' ', '\t']).is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else { return Err(PolicyError::MalformedLine(n + 1)) };
            let key_ok = !key.is_empty()
                && key.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && key.len() <= 32
                && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !key_ok {
                return Err(PolicyError::MalformedLine(n + 1));
            }
            let value = value.trim_matches([' ', '\t']);
            match key {
                "version" if version.is_none() => version = Some(value == "STSv1"),
                "mode" if mode.is_none() => mode = Some(Mode::parse(value).ok_or(PolicyError::Mode)?),
                "max_age" if max_age.is_none() => {
                    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(PolicyError::MaxAge);
                    }
                    max_age = Some(value.parse::<u64>().map_err(|_| PolicyError::MaxAge)?.min(MAX_MAX_AGE));
                }
                "mx" if mx.len() < MAX_MX_PATTERNS => mx.push(MxPattern::parse(value)?),
                // Unknown fields, repeats of the fields above and mx beyond the bound are ignored.
                _ => {}
            }
        }
        if version != Some(true) {
            return Err(PolicyError::Version);
        }
        let mode = mode.ok_or(PolicyError::Mode)?;
        let max_age = max_age.ok_or(PolicyError::MaxAge)?;
        if mx.is_empty() && mode != Mode::None {
            return Err(PolicyError::NoMx);
        }
        Ok(Policy { mode, max_age, mx })
    }

    /// Whether an MX host is one the policy names.
    pub fn allows(&self, host: &str) -> bool {
        self.mx.iter().any(|p| p.matches(host))
    }

    /// The patterns, comma-separated, for logs and reports.
    pub fn mx_list(&self) -> String {
        self.mx.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
    }
}

/// A policy as the store keeps it, shared by every node: the body as fetched (the one stored
/// form; it is parsed again when read), the TXT id it was fetched under, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPolicy {
    /// The recipient domain (lower-case A-label).
    pub domain: String,
    pub id: String,
    pub policy: Policy,
    pub body: String,
    pub fetched_at: Timestamp,
    /// `fetched_at` + max_age.
    pub expires_at: Timestamp,
}

impl CachedPolicy {
    pub fn new(domain: &str, id: &str, body: String, fetched_at: Timestamp) -> Result<CachedPolicy, PolicyError> {
        let policy = Policy::parse(&body)?;
        let expires_at = fetched_at.plus(std::time::Duration::from_secs(policy.max_age));
        Ok(CachedPolicy { domain: domain.to_string(), id: id.to_string(), policy, body, fetched_at, expires_at })
    }

    pub fn is_fresh(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// The TLS result of one delivery session under a policy (RFC 8460 §4.3 result types, and
/// success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsResult {
    Success,
    StartTlsNotSupported,
    CertificateHostMismatch,
    CertificateExpired,
    CertificateNotTrusted,
    ValidationFailure,
    /// No MX host of the domain matches its policy (sts-policy-invalid would be the policy's
    /// own fault; this is the MX records'). Reported as `validation-failure` with this as its
    /// `failure-reason-code` (RFC 8460 has no type of its own for it).
    MxNotInPolicy,
    StsPolicyFetchError,
    StsPolicyInvalid,
    /// The policy host's HTTPS certificate did not verify (RFC 8460 §4.3.2.2).
    StsWebpkiInvalid,
    /// DANE results (RFC 8460 §4.3.2.1): no TLSA record matched the certificate chain; the
    /// TLSA lookup failed or was bogus. `DaneRequired` is never recorded: mailerd has no setting
    /// that requires DANE of a destination.
    TlsaInvalid,
    DnssecInvalid,
    DaneRequired,
}

impl TlsResult {
    const ALL: [TlsResult; 13] = [
        TlsResult::Success,
        TlsResult::StartTlsNotSupported,
        TlsResult::CertificateHostMismatch,
        TlsResult::CertificateExpired,
        TlsResult::CertificateNotTrusted,
        TlsResult::ValidationFailure,
        TlsResult::MxNotInPolicy,
        TlsResult::StsPolicyFetchError,
        TlsResult::StsPolicyInvalid,
        TlsResult::StsWebpkiInvalid,
        TlsResult::TlsaInvalid,
        TlsResult::DnssecInvalid,
        TlsResult::DaneRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsResult::Success => "success",
            TlsResult::StartTlsNotSupported => "starttls-not-supported",
            TlsResult::CertificateHostMismatch => "certificate-host-mismatch",
            TlsResult::CertificateExpired => "certificate-expired",
            TlsResult::CertificateNotTrusted => "certificate-not-trusted",
            TlsResult::ValidationFailure => "validation-failure",
            TlsResult::MxNotInPolicy => "mx-not-in-policy",
            TlsResult::StsPolicyFetchError => "sts-policy-fetch-error",
            TlsResult::StsPolicyInvalid => "sts-policy-invalid",
            TlsResult::StsWebpkiInvalid => "sts-webpki-invalid",
            TlsResult::TlsaInvalid => "tlsa-invalid",
            TlsResult::DnssecInvalid => "dnssec-invalid",
            TlsResult::DaneRequired => "dane-required",
        }
    }

    pub fn parse(text: &str) -> Option<TlsResult> {
        TlsResult::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The `result-type` of a TLS report (RFC 8460 §4.3): ours, but `mx-not-in-policy`, which
    /// RFC 8460 does not name, is a `validation-failure`.
    pub fn result_type(self) -> &'static str {
        match self {
            TlsResult::MxNotInPolicy => "validation-failure",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for TlsResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last TLS result toward a domain, for `mailerd tls status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastResult {
    pub domain: String,
    /// The policy that applied, as said in the journey (`MTA-STS enforce, id 2024`).
    pub policy: String,
    pub result: TlsResult,
    /// The MX host, and what went wrong.
    pub detail: String,
    pub at: Timestamp,
}

/// A UTC day (days since 1970-01-01): the period of one TLS report (RFC 8460 §4.1, "daily").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

const DAY_MS: i64 = 86_400_000;

impl Day {
    pub fn of(t: Timestamp) -> Day {
        Day(t.millis().div_euclid(DAY_MS))
    }

    /// Its first millisecond.
    pub fn start(self) -> Timestamp {
        Timestamp(self.0.saturating_mul(DAY_MS))
    }

    /// Its last second (`end-datetime` of a report is inclusive: `…T23:59:59Z`).
    pub fn last_second(self) -> Timestamp {
        Timestamp(self.0.saturating_add(1).saturating_mul(DAY_MS).saturating_sub(1000))
    }

    pub fn next(self) -> Day {
        Day(self.0.saturating_add(1))
    }
}

/// The `policy-type` of a TLS report (RFC 8460 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyType {
    Sts,
    /// DANE: the MX host's TLSA records (the id is the TLSA base domain).
    Tlsa,
    NoPolicyFound,
}

impl PolicyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Sts => "sts",
            PolicyType::Tlsa => "tlsa",
            PolicyType::NoPolicyFound => "no-policy-found",
        }
    }

    pub fn parse(text: &str) -> Option<PolicyType> {
        [PolicyType::Sts, PolicyType::Tlsa, PolicyType::NoPolicyFound].into_iter().find(|p| p.as_str() == text)
    }
}

/// A TLSA record (RFC 6698 §2.1): which certificate (usage), which part of it (selector), and
/// how it is compared (matching type) with `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// TLSA certificate usages (RFC 6698 §2.1.1, RFC 7218 names).
pub const DANE_TA: u8 = 2;
pub const DANE_EE: u8 = 3;

impl Tlsa {
    /// Whether an SMTP client can use the record (RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1)
    /// are not; RFC 7671 §4: unknown selectors and matching types are not, nor is a digest of
    /// the wrong length).
    pub fn usable(&self) -> bool {
        let length_ok = match self.matching {
            0 => !self.data.is_empty(),
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        matches!(self.usage, DANE_TA | DANE_EE) && matches!(self.selector, 0 | 1) && length_ok
    }
}

/// The presentation form, `3 1 1 0a1b…` (the data in lower-case hex).
impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ", self.usage, self.selector, self.matching)?;
        self.data.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The policy a session ran under, as a TLS report names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportPolicy {
    pub kind: PolicyType,
    /// The `_mta-sts` id (empty for no-policy-found).
    pub id: String,
    /// The policy text as fetched (empty when none was, e.g. on a fetch error).
    pub body: String,
}

impl ReportPolicy {
    pub fn none() -> ReportPolicy {
        ReportPolicy { kind: PolicyType::NoPolicyFound, id: String::new(), body: String::new() }
    }
}

/// Sessions of one day to one policy domain with one result, on one path: the aggregate a
/// TLS report is made of (the store adds `count` to a matching row rather than keeping a row
/// per session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCount {
    pub day: Day,
    /// The recipient (policy) domain, lower case.
    pub domain: String,
    pub policy: ReportPolicy,
    pub result: TlsResult,
    /// The MX host tried, when one was.
    pub mx_host: Option<String>,
    pub receiving_ip: Option<std::net::IpAddr>,
    pub sending_ip: Option<std::net::IpAddr>,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_records() {
        assert_eq!(parse_record("v=STSv1; id=20160831085700Z;").unwrap().id, "20160831085700Z");
        assert_eq!(parse_record("v=STSv1;id=abc").unwrap().id, "abc");
        assert_eq!(parse_record("v = STSv1 ; ext=x ; id = 7").unwrap().id, "7");
        assert_eq!(parse_record("v=STSv1; id=a; id=b").unwrap().id, "a", "the first id counts");
        assert_eq!(parse_record("v=STSv2; id=1"), Err(PolicyError::NotSts));
        assert_eq!(parse_record("id=1; v=STSv1"), Err(PolicyError::NotSts), "v must come first");
        assert_eq!(parse_record("v=STSv1;"), Err(PolicyError::NoId));
        assert_eq!(parse_record("v=STSv1; id=has-dash"), Err(PolicyError::NoId));
        assert_eq!(parse_record(&format!("v=STSv1; id={}", "1".repeat(33))), Err(PolicyError::NoId));
        assert!(matches!(parse_record("v=STSv1; id"), Err(PolicyError::MalformedRecord(_))));
        assert!(matches!(parse_record("v=STSv1; id=1; bad field=2"), Err(PolicyError::MalformedRecord(_))));
    }

    #[test]
    fn tls_rpt_records() {
        let r = parse_tlsrpt("v=TLSRPTv1; rua=mailto:tls@a.test,https://r.a.test/v1").unwrap();
        assert_eq!(r.rua, vec!["mailto:tls@a.test", "https://r.a.test/v1"]);
        assert_eq!(parse_tlsrpt("v=TLSRPTv1;rua=mailto:x@a.test;").unwrap().rua.len(), 1);
        assert_eq!(parse_tlsrpt("v=TLSRPTv1;"), Err(PolicyError::NoRua));
        assert_eq!(parse_tlsrpt("v=TLSRPTv2; rua=mailto:x@a.test"), Err(PolicyError::NotTlsRpt));
        assert_eq!(parse_tlsrpt("v=TLSRPTv1; rua=http://a.test/"), Err(PolicyError::BadRua("http://a.test/".into())));
        assert_eq!(parse_tlsrpt("v=TLSRPTv1; rua=mailto:"), Err(PolicyError::BadRua("mailto:".into())));
    }

    #[test]
    fn one_record_or_none() {
        let r = |v: &[&str]| select_record(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(r(&["v=spf1 -all", "v=STSv1; id=1"]).unwrap().id, "1");
        assert!(r(&["v=STSv1; id=1", "v=STSv1; id=2"]).is_err(), "two records: no policy");
        assert_eq!(r(&["v=spf1 -all"]), Err(PolicyError::NotSts));
    }

    const RFC_EXAMPLE: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";

    #[test]
    fn the_rfc_example() {
        let p = Policy::parse(RFC_EXAMPLE).unwrap();
        assert_eq!((p.mode, p.max_age, p.mx.len()), (Mode::Enforce, 604_800, 3));
        assert_eq!(p.mx_list(), "mail.example.com, *.example.net, backupmx.example.com");
        let crlf = RFC_EXAMPLE.replace('\n', "\r\n");
        assert_eq!(Policy::parse(&crlf).unwrap(), p);
        assert_eq!(Policy::parse(RFC_EXAMPLE.trim_end()).unwrap(), p, "the last line break is optional");
    }

    #[test]
    fn policy_grammar() {
        let p = |s: &str| Policy::parse(s);
        assert_eq!(p("version: STSv1\nmode: testing\nmx:mx.a.test\nmax_age:\t86400").unwrap().mode, Mode::Testing);
        assert_eq!(p("version: STSv1\nmode: none\nmax_age: 1").unwrap().mx, vec![], "mode none needs no mx");
        assert_eq!(p("version: STSv1\nmode: enforce\nmax_age: 1"), Err(PolicyError::NoMx));
        assert_eq!(p("mode: enforce\nmx: a.test\nmax_age: 1"), Err(PolicyError::Version));
        assert_eq!(p("version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1"), Err(PolicyError::Version));
        assert_eq!(p("version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1"), Err(PolicyError::Mode));
        assert_eq!(p("version: STSv1\nmode: enforce\nmx: a.test"), Err(PolicyError::MaxAge));
        assert_eq!(p("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1"), Err(PolicyError::MaxAge));
        assert_eq!(p("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 12345678901"), Err(PolicyError::MaxAge));
        let capped = p("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 9999999999").unwrap();
        assert_eq!(capped.max_age, MAX_MAX_AGE);
        assert_eq!(p("version: STSv1\nmode enforce\nmx: a.test\nmax_age: 1"), Err(PolicyError::MalformedLine(2)));
        assert_eq!(p("version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 1"), Err(PolicyError::Mx("a..test".into())));
        // Unknown fields are ignored; of repeated fields but mx the first counts.
        let q = p("version: STSv1\nfoo: bar baz\nmode: testing\nmode: enforce\nmx: a.test\nmax_age: 5\nmax_age: 7")
            .unwrap();
        assert_eq!((q.mode, q.max_age), (Mode::Testing, 5));
        assert_eq!(p(&"x".repeat(MAX_POLICY_BYTES + 1)), Err(PolicyError::TooLarge));
        assert!(p("").is_err() && p("\u{0}\u{ff}:::").is_err());
    }

    #[test]
    fn mx_patterns_and_wildcards() {
        let exact = MxPattern::parse("Mail.Example.com.").unwrap();
        assert!(exact.matches("mail.example.com") && exact.matches("MAIL.EXAMPLE.COM."));
        assert!(!exact.matches("x.mail.example.com") && !exact.matches("example.com"));
        let wild = MxPattern::parse("*.example.net").unwrap();
        assert!(wild.matches("mx1.example.net") && wild.matches("MX2.Example.Net."));
        assert!(!wild.matches("example.net"), "the wildcard needs a label");
        assert!(!wild.matches("a.b.example.net"), "the wildcard is one label only");
        assert!(!wild.matches("mx1.example.network") && !wild.matches(".example.net"));
        assert_eq!(wild.to_string(), "*.example.net");
        for bad in ["", "*.", "*", "a.*.b", "-a.b", "a b.c", "*.*.b", "a..b"] {
            assert!(MxPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cached_policies_expire_after_max_age() {
        let t = Timestamp(1_000_000);
        let c = CachedPolicy::new("a.test", "1", "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 60".into(), t)
            .unwrap();
        assert_eq!(c.expires_at, Timestamp(1_060_000));
        assert!(c.is_fresh(Timestamp(1_059_999)) && !c.is_fresh(Timestamp(1_060_000)));
        for r in TlsResult::ALL {
            assert_eq!(TlsResult::parse(r.as_str()), Some(r));
        }
        assert_eq!(TlsResult::parse("nonsense"), None);
        assert_eq!(TlsResult::MxNotInPolicy.result_type(), "validation-failure");
        assert_eq!(TlsResult::StsWebpkiInvalid.result_type(), "sts-webpki-invalid");
    }

    #[test]
    fn report_days_are_utc_days() {
        let t = Timestamp::from_utc(2026, 12, 6, 13, 52, 20).unwrap();
        let d = Day::of(t);
        assert_eq!(d.start().iso8601(), "2026-12-06T00:00:00Z");
        assert_eq!(d.last_second().iso8601(), "2026-12-06T23:59:59Z");
        assert_eq!(d.next().start().iso8601(), "2026-12-07T00:00:00Z");
        assert_eq!(Day::of(Timestamp(-1)), Day(-1), "before 1970 still a whole day");
        assert_eq!(PolicyType::parse("no-policy-found"), Some(PolicyType::NoPolicyFound));
        assert_eq!(PolicyType::parse("tlsa"), Some(PolicyType::Tlsa));
        assert_eq!(PolicyType::parse("dane"), None);
    }

    #[test]
    fn tlsa_records_smtp_can_use() {
        let t = |usage, selector, matching, len| Tlsa { usage, selector, matching, data: vec![0xab; len] };
        assert!(t(3, 1, 1, 32).usable() && t(2, 0, 2, 64).usable() && t(3, 0, 0, 300).usable());
        assert!(!t(0, 1, 1, 32).usable() && !t(1, 1, 1, 32).usable(), "PKIX usages are unusable for SMTP");
        assert!(!t(4, 1, 1, 32).usable() && !t(3, 2, 1, 32).usable() && !t(3, 1, 3, 32).usable());
        assert!(!t(3, 1, 1, 31).usable() && !t(3, 1, 2, 32).usable() && !t(3, 1, 0, 0).usable());
        assert_eq!(t(3, 1, 1, 2).to_string(), "3 1 1 abab");
    }
}
