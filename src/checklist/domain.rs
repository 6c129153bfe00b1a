//! `check domain`: is a sending domain set up so receivers accept its mail?
//! MX, SPF, DKIM, DMARC, reverse DNS of the outbound IPs, the sender's side (`sending`: TLS,
//! unsubscribe, complaint rate), MTA-STS and TLS-RPT; each item ok / warn / fail with a
//! one-line fix. `requirements` reads the report against the mailbox providers' rules.
//!
//! Standards: RFC 7208 (SPF: one record, at most 10 DNS-querying terms, evaluated with
//! mail-auth), RFC 6376 (DKIM key records), RFC 7489 (DMARC policy, alignment, rua),
//! RFC 7505 (null MX), RFC 8461 (MTA-STS), RFC 8460 (TLS-RPT), RFC 8601 §3 (iprev: PTR
//! forward-confirmed).
//! MTA-STS and TLS-RPT records are read with `tlspolicy`'s grammar; when absent, the fix is
//! the records to publish (the policy's mx lines from the domain's MX records).
//! Must not: send mail, fetch the MTA-STS policy over HTTPS, or fail on a missing optional
//! record (MTA-STS and TLS-RPT absent are information).

use std::net::IpAddr;
use std::path::PathBuf;

use mail_auth::SpfResult;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::spf::{Macro, Mechanism, Qualifier, Spf};

use super::resolver::Resolver;
use super::sending::{self, ListenerCertificate};
use super::{Check, CheckReport, Status};
use crate::config::{Config, TlsMode, Unsubscribe};
use crate::dns::DnsFailure;
use crate::store::Store;
use crate::time::Timestamp;

/// What the sending side looks like (from the configuration, or the command line).
#[derive(Debug, Clone, Default)]
pub struct DomainOptions {
    /// The public IPs mail leaves from (`check.outbound_ips`).
    pub outbound_ips: Vec<IpAddr>,
    /// The HELO name (`outbound.helo`).
    pub helo: String,
    /// The envelope sender domain (`bounce.return_path_domain`).
    pub return_path_domain: String,
    /// The `[dkim]` key we sign with.
    pub dkim: Option<DkimKey>,
    /// `outbound.tls` (None: not checked).
    pub outbound_tls: Option<TlsMode>,
    /// The listeners' certificate (None: not checked).
    pub listener_certificate: Option<ListenerCertificate>,
    /// `[unsubscribe]` (None: not checked).
    pub unsubscribe: Option<Unsubscribe>,
}

impl DomainOptions {
    /// The options of this mailerd's configuration; `ips` replace `check.outbound_ips` when given.
    pub fn from_config(config: &Config, ips: Vec<IpAddr>) -> DomainOptions {
        DomainOptions {
            outbound_ips: if ips.is_empty() { config.check.outbound_ips.clone() } else { ips },
            helo: config.outbound.helo.clone(),
            return_path_domain: config.bounce.return_path_domain.clone(),
            dkim: config.dkim.as_ref().map(|d| DkimKey {
                domain: d.domain.clone(),
                selector: d.selector.clone(),
                key: d.key.clone(),
            }),
            outbound_tls: Some(config.outbound.tls),
            listener_certificate: Some(ListenerCertificate {
                chain: config.cert_paths().0,
                ca_file: config.tls.ca_file.clone(),
            }),
            unsubscribe: Some(config.unsubscribe.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub key: PathBuf,
}

/// SPF allows at most this many DNS-querying terms (RFC 7208 §4.6.4).
pub const SPF_LOOKUP_LIMIT: usize = 10;

/// Runs every domain check; with a store, the complaint rate of what was delivered too.
pub async fn check(domain: &str, opts: &DomainOptions, dns: &Resolver, store: Option<&dyn Store>) -> CheckReport {
    let mut report = CheckReport::new("domain", domain);
    let domain = match crate::smtp::address::Domain::parse(domain) {
        Ok(d) if !d.is_address_literal() && d.as_str().contains('.') => d.as_str().to_string(),
        _ => {
            report.push(
                Check::new("syntax", Status::Fail)
                    .detail("not a domain name")
                    .fix("give the domain of your From addresses, e.g. example.com"),
            );
            return report;
        }
    };
    report.normalized = Some(domain.clone());
    // The lookups are independent: asked at once, a slow or silent server costs one timeout.
    let unsubscribe = async {
        match &opts.unsubscribe {
            Some(u) => Some(sending::check_unsubscribe(u, opts.dkim.is_some(), dns).await),
            None => None,
        }
    };
    let complaints = async {
        match store {
            Some(store) => Some(sending::check_complaint_rate(store, Timestamp::now()).await),
            None => None,
        }
    };
    let (mx, spf, dkim, dmarc, rdns, unsubscribe, complaints, sts, rpt) = tokio::join!(
        check_mx(&domain, dns),
        check_spf(&domain, opts, dns),
        check_dkim(&domain, opts, dns),
        check_dmarc(&domain, opts, dns),
        check_rdns(opts, dns),
        unsubscribe,
        complaints,
        check_mta_sts(&domain, dns),
        check_tls_rpt(&domain, dns),
    );
    report.push(mx);
    spf.into_iter().chain([dkim]).chain(dmarc).chain(rdns).for_each(|c| report.push(c));
    if let Some(mode) = opts.outbound_tls {
        report.push(sending::check_outbound_tls(mode));
    }
    if let Some(cert) = &opts.listener_certificate {
        report.push(sending::check_listener_certificate(cert, &opts.helo));
    }
    unsubscribe.into_iter().chain(complaints).chain([sts, rpt]).for_each(|c| report.push(c));
    report
}

fn unknown(name: &'static str, e: &str) -> Check {
    Check::new(name, Status::Unknown).detail(format!("could not check: {e}"))
}

async fn check_mx(domain: &str, dns: &Resolver) -> Check {
    match dns.mx(domain).await {
        Ok(mx) if mx.iter().any(|(_, h)| h.is_empty()) => Check::new("mx", Status::Fail)
            .detail(format!("{domain} publishes a null MX: receivers may refuse mail from it (RFC 7505)"))
            .fix("publish a real MX so replies and bounces can arrive"),
        Ok(mx) => Check::ok("mx").detail(mx.iter().map(|(p, h)| format!("{p} {h}")).collect::<Vec<_>>().join(", ")),
        Err(DnsFailure::NoRecords) => Check::new("mx", Status::Warn)
            .detail("no MX record: replies and bounces go to the domain's A record, if any")
            .fix(format!("publish an MX record for {domain}")),
        Err(DnsFailure::NxDomain) => Check::new("mx", Status::Fail)
            .detail(format!("{domain} does not exist (NXDOMAIN)"))
            .fix("register the domain or check its spelling"),
        Err(DnsFailure::Temporary(e)) => unknown("mx", &e),
    }
}

/// Counts the DNS-querying terms of an SPF record, following include: and redirect=.
/// Returns (count, problems found on the way).
async fn count_lookups(record: &Spf, dns: &Resolver, depth: usize, problems: &mut Vec<String>) -> usize {
    let mut count = 0;
    let mut targets = Vec::new();
    for d in record.directives.iter() {
        match &d.mechanism {
            Mechanism::Include { macro_string } => {
                count += 1;
                targets.push(("include", macro_string));
            }
            Mechanism::A { .. } | Mechanism::Mx { .. } | Mechanism::Ptr { .. } | Mechanism::Exists { .. } => count += 1,
            _ => {}
        }
    }
    if let Some(r) = &record.redirect {
        count += 1;
        targets.push(("redirect", r));
    }
    if depth >= SPF_LOOKUP_LIMIT {
        return count;
    }
    for (kind, target) in targets {
        let Macro::Literal(name) = target else {
            problems.push(format!("{kind} with a macro is not followed"));
            continue;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        match dns.txt_with_prefix(&name, "v=spf1").await {
            Ok(records) if records.len() == 1 => match records.first().map(|r| Spf::parse(r.as_bytes())) {
                Some(Ok(inner)) => count += Box::pin(count_lookups(&inner, dns, depth + 1, problems)).await,
                _ => problems.push(format!("{kind}:{name} has an SPF record that does not parse")),
            },
            Ok(records) if records.is_empty() => problems.push(format!("{kind}:{name} has no SPF record")),
            Ok(_) => problems.push(format!("{kind}:{name} has more than one SPF record")),
            Err(DnsFailure::Temporary(e)) => problems.push(format!("{kind}:{name}: could not check: {e}")),
            Err(_) => problems.push(format!("{kind}:{name} does not exist")),
        }
        if count > SPF_LOOKUP_LIMIT {
            break;
        }
    }
    count
}

async fn check_spf(domain: &str, opts: &DomainOptions, dns: &Resolver) -> Vec<Check> {
    let records = match dns.txt_with_prefix(domain, "v=spf1").await {
        Ok(r) => r,
        Err(DnsFailure::Temporary(e)) => return vec![unknown("spf", &e)],
        Err(_) => Vec::new(),
    };
    let suggested = match opts.outbound_ips.first() {
        Some(IpAddr::V4(ip)) => format!("v=spf1 ip4:{ip} -all"),
        Some(IpAddr::V6(ip)) => format!("v=spf1 ip6:{ip} -all"),
        None => "v=spf1 mx -all".to_string(),
    };
    let record = match records.as_slice() {
        [] => {
            return vec![
                Check::new("spf", Status::Fail)
                    .detail(format!("no SPF record at {domain}"))
                    .fix(format!("publish {domain} TXT \"{suggested}\"")),
            ];
        }
        [one] => one.clone(),
        _ => {
            return vec![
                Check::new("spf", Status::Fail)
                    .detail(format!("{} SPF records: receivers treat that as an error (permerror)", records.len()))
                    .fix("merge them into one v=spf1 record"),
            ];
        }
    };
    let spf = match Spf::parse(record.as_bytes()) {
        Ok(s) => s,
        Err(e) => {
            return vec![
                Check::new("spf", Status::Fail)
                    .detail(format!("SPF record does not parse ({e}): {record}"))
                    .fix(format!("correct the record, e.g. \"{suggested}\"")),
            ];
        }
    };
    let mut out = Vec::new();
    // The `all` at the end says what happens to everyone else.
    let all = spf.directives.iter().find(|d| d.mechanism == Mechanism::All).map(|d| d.qualifier.clone());
    out.push(match (all, spf.redirect.is_some()) {
        (Some(Qualifier::Pass), _) => Check::new("spf", Status::Fail)
            .detail(format!("+all lets anyone send as {domain}: {record}"))
            .fix("end the record with -all (or ~all)"),
        (Some(Qualifier::Neutral), _) => Check::new("spf", Status::Warn)
            .detail(format!("?all says nothing about other senders: {record}"))
            .fix("end the record with -all (or ~all)"),
        (None, false) => Check::new("spf", Status::Warn)
            .detail(format!("no all mechanism: other senders are neutral: {record}"))
            .fix("end the record with -all (or ~all)"),
        _ => Check::ok("spf").detail(record.clone()),
    });
    let mut problems = Vec::new();
    let lookups = count_lookups(&spf, dns, 0, &mut problems).await;
    let mut c = if lookups > SPF_LOOKUP_LIMIT {
        Check::new("spf_lookups", Status::Fail)
            .detail(format!("more than {SPF_LOOKUP_LIMIT} DNS lookups ({lookups}): receivers answer permerror"))
            .fix("replace include:/a/mx terms by ip4:/ip6: ranges, or drop services you no longer use")
    } else {
        Check::ok("spf_lookups").detail(format!("{lookups} of {SPF_LOOKUP_LIMIT} DNS lookups"))
    };
    if !problems.is_empty() {
        if c.status == Status::Ok {
            c = Check::new("spf_lookups", Status::Warn).fix("fix or remove the broken include/redirect");
        }
        c.detail =
            Some(format!("{}; {}", c.detail.unwrap_or_else(|| format!("{lookups} lookups")), problems.join("; ")));
    }
    out.push(c);
    out.push(check_spf_ips(domain, opts, dns).await);
    out
}

async fn check_spf_ips(domain: &str, opts: &DomainOptions, dns: &Resolver) -> Check {
    if opts.outbound_ips.is_empty() {
        return Check::new("spf_ip", Status::Info)
            .detail("no outbound IP configured: set check.outbound_ips (or --ip) to test that yours pass");
    }
    let sender = format!("postmaster@{domain}");
    let mut worst = Check::ok("spf_ip");
    let mut passed = Vec::new();
    for ip in &opts.outbound_ips {
        let out =
            dns.authenticator().verify_spf(SpfParameters::verify_mail_from(*ip, &opts.helo, &opts.helo, &sender)).await;
        let c = match out.result() {
            SpfResult::Pass => {
                passed.push(ip.to_string());
                continue;
            }
            SpfResult::TempError => Check::new("spf_ip", Status::Unknown).detail(format!("{ip}: temporary error")),
            SpfResult::SoftFail | SpfResult::Neutral => Check::new("spf_ip", Status::Warn)
                .detail(format!("{ip} is not authorised ({})", out.result()))
                .fix(format!("add ip{}:{ip} to the SPF record", if ip.is_ipv4() { 4 } else { 6 })),
            r => Check::new("spf_ip", Status::Fail)
                .detail(format!("{ip} does not pass SPF for {domain} ({r})"))
                .fix(format!("add ip{}:{ip} to the SPF record", if ip.is_ipv4() { 4 } else { 6 })),
        };
        if c.status > worst.status {
            worst = c;
        }
    }
    if worst.status == Status::Ok {
        worst = worst.detail(format!("{} pass{}", passed.join(", "), if passed.len() == 1 { "es" } else { "" }));
    }
    worst
}

/// The SubjectPublicKeyInfo (DER) of a PKCS#8 PEM private key file.
fn public_key_of(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use rcgen::PublicKeyData;
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = rcgen::KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(key.subject_public_key_info())
}

async fn check_dkim(domain: &str, opts: &DomainOptions, dns: &Resolver) -> Check {
    use base64::Engine as _;
    let Some(k) = &opts.dkim else {
        return Check::new("dkim", Status::Warn)
            .detail("no [dkim] key configured: mail leaves unsigned")
            .fix("run mailerd dkim keygen and set [dkim] domain, selector and key");
    };
    if domain != k.domain && !domain.ends_with(&format!(".{}", k.domain)) {
        return Check::new("dkim", Status::Warn)
            .detail(format!("mail from {domain} is not signed: the [dkim] domain is {}", k.domain))
            .fix(format!("set [dkim] domain = \"{domain}\" (with a key published for it)"));
    }
    let name = format!("{}._domainkey.{}", k.selector, k.domain);
    let ours = public_key_of(&k.key);
    let expected =
        ours.as_ref().ok().map(|spki| crate::dkim::txt_record(&base64::engine::general_purpose::STANDARD.encode(spki)));
    let with_record = |c: Check| match &expected {
        Some(r) => c.suggestion(r.clone()),
        None => c,
    };
    let records = match dns.txt_with_prefix(&name, "v=DKIM1").await {
        Ok(r) => r,
        Err(DnsFailure::Temporary(e)) => return unknown("dkim", &e),
        Err(_) => Vec::new(),
    };
    // A record without v= is allowed (RFC 6376 §3.6.1): take any TXT with p=.
    let records = if records.is_empty() {
        match dns.txt(&name).await {
            Ok(all) => all.into_iter().filter(|t| t.contains("p=")).collect(),
            Err(_) => Vec::new(),
        }
    } else {
        records
    };
    let Some(record) = records.first() else {
        return with_record(
            Check::new("dkim", Status::Fail)
                .detail(format!("no DKIM record at {name}"))
                .fix(format!("publish {name} TXT with the record in `suggestion` (mailerd dkim keygen prints it)")),
        );
    };
    if let Err(e) = mail_auth::common::verify::DomainKey::parse(record.as_bytes()) {
        return with_record(
            Check::new("dkim", Status::Fail)
                .detail(format!("the record at {name} does not parse: {e}"))
                .fix("publish the record exactly as mailerd dkim keygen printed it"),
        );
    }
    let ours = match ours {
        Ok(o) => o,
        Err(e) => {
            return Check::new("dkim", Status::Fail)
                .detail(format!("cannot read the [dkim] key {e}"))
                .fix("check [dkim] key (a PKCS#8 PEM file made by mailerd dkim keygen)");
        }
    };
    let published: String = record
        .split(';')
        .filter_map(|t| t.trim().strip_prefix("p="))
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let published = base64::engine::general_purpose::STANDARD.decode(published.as_bytes()).unwrap_or_default();
    // p= holds the SubjectPublicKeyInfo; some publish the bare PKCS#1 key, which ends it.
    if !published.is_empty() && (published == ours || ours.ends_with(&published)) {
        Check::ok("dkim").detail(format!("{name}: published key matches [dkim] key"))
    } else if published.is_empty() {
        with_record(
            Check::new("dkim", Status::Fail)
                .detail(format!("{name} has an empty or revoked key (p=)"))
                .fix(format!("publish {name} TXT with the record in `suggestion`")),
        )
    } else {
        with_record(
            Check::new("dkim", Status::Fail)
                .detail(format!("the key at {name} is not the public key of [dkim] key: signatures fail"))
                .fix(format!("publish {name} TXT with the record in `suggestion`, or configure the matching key")),
        )
    }
}

/// The organizational domain (public suffix + one label), for DMARC's relaxed alignment.
pub fn organizational(domain: &str) -> String {
    psl::domain_str(domain).unwrap_or(domain).to_string()
}

fn aligned(a: &str, b: &str, strict: bool) -> bool {
    if strict { a.eq_ignore_ascii_case(b) } else { organizational(a) == organizational(b) }
}

/// The DMARC records of `domain` (RFC 7489 §6.6.3: the domain's, else its organizational
/// domain's) and where they were found; Err on a temporary failure.
pub async fn dmarc_records(domain: &str, dns: &Resolver) -> Result<(String, Vec<String>), String> {
    let org = organizational(domain);
    let mut at = format!("_dmarc.{domain}");
    let mut records = match dns.txt_with_prefix(&at, "v=DMARC1").await {
        Ok(r) => r,
        Err(DnsFailure::Temporary(e)) => return Err(e),
        Err(_) => Vec::new(),
    };
    if records.is_empty() && org != domain {
        at = format!("_dmarc.{org}");
        records = match dns.txt_with_prefix(&at, "v=DMARC1").await {
            Ok(r) => r,
            Err(DnsFailure::Temporary(e)) => return Err(e),
            Err(_) => Vec::new(),
        };
    }
    Ok((at, records))
}

async fn check_dmarc(domain: &str, opts: &DomainOptions, dns: &Resolver) -> Vec<Check> {
    use mail_auth::dmarc::{Alignment, Dmarc, Policy};
    let (at, records) = match dmarc_records(domain, dns).await {
        Ok(found) => found,
        Err(e) => return vec![unknown("dmarc", &e)],
    };
    let record = match records.as_slice() {
        [] => {
            return vec![
                Check::new("dmarc", Status::Fail)
                    .detail(format!("no DMARC record at _dmarc.{domain}: large receivers refuse bulk mail without one"))
                    .fix(format!("publish _dmarc.{domain} TXT \"v=DMARC1; p=none; rua=mailto:dmarc@{domain}\"")),
            ];
        }
        [one] => one.clone(),
        _ => {
            return vec![
                Check::new("dmarc", Status::Fail)
                    .detail(format!("{} DMARC records at {at}: receivers ignore them all", records.len()))
                    .fix("keep one v=DMARC1 record"),
            ];
        }
    };
    let dmarc = match Dmarc::parse(record.as_bytes()) {
        Ok(d) => d,
        Err(e) => {
            return vec![
                Check::new("dmarc", Status::Fail)
                    .detail(format!("the record at {at} does not parse ({e}): {record}"))
                    .fix(format!("publish \"v=DMARC1; p=none; rua=mailto:dmarc@{domain}\"")),
            ];
        }
    };
    let mut out = Vec::new();
    let policy = if at == format!("_dmarc.{domain}") || dmarc.sp == Policy::Unspecified { dmarc.p } else { dmarc.sp };
    let (status, word) = match policy {
        Policy::Reject => (Status::Ok, "reject"),
        Policy::Quarantine => (Status::Ok, "quarantine"),
        Policy::None => (Status::Warn, "none"),
        Policy::Unspecified => (Status::Fail, "missing"),
    };
    let mut c = Check::new("dmarc", status).detail(format!("p={word} at {at}"));
    if status == Status::Warn {
        c = c
            .detail(format!("p=none at {at}: monitoring only, forged mail is still delivered"))
            .fix("move to p=quarantine, then p=reject, once the reports show only your own servers");
    } else if status == Status::Fail {
        c = c.fix("add p=none (then quarantine or reject) to the record");
    }
    out.push(c);
    out.push(if dmarc.rua.is_empty() {
        Check::new("dmarc_rua", Status::Warn)
            .detail("no rua=: you get no reports of who sends as you")
            .fix(format!("add rua=mailto:dmarc@{domain} to the record"))
    } else {
        Check::ok("dmarc_rua").detail(dmarc.rua.iter().map(|u| u.uri.as_str()).collect::<Vec<_>>().join(", "))
    });
    // Alignment: SPF authenticates the return-path domain, DKIM the d= domain.
    let spf_ok = aligned(&opts.return_path_domain, domain, dmarc.aspf == Alignment::Strict);
    let dkim_ok = opts.dkim.as_ref().is_some_and(|k| aligned(&k.domain, domain, dmarc.adkim == Alignment::Strict));
    let rp = &opts.return_path_domain;
    out.push(match (spf_ok, dkim_ok) {
        (true, true) => Check::ok("dmarc_alignment").detail(format!("return path {rp} and DKIM d= align")),
        (true, false) => Check::new("dmarc_alignment", Status::Warn)
            .detail(format!("only SPF aligns (return path {rp}); forwarded mail will fail DMARC"))
            .fix(format!("sign with DKIM for {domain} ([dkim] domain)")),
        (false, true) => Check::new("dmarc_alignment", Status::Ok)
            .detail(format!("DKIM aligns; the return path {rp} does not (SPF cannot count for DMARC)")),
        (false, false) => Check::new("dmarc_alignment", Status::Fail)
            .detail(format!("neither the return path {rp} nor a DKIM signature aligns with {domain}: DMARC fails"))
            .fix(format!("set bounce.return_path_domain to {domain} or a subdomain, and [dkim] domain = {domain}")),
    });
    out
}

async fn check_rdns(opts: &DomainOptions, dns: &Resolver) -> Vec<Check> {
    if opts.outbound_ips.is_empty() {
        return vec![
            Check::new("rdns", Status::Info)
                .detail("no outbound IP configured: set check.outbound_ips (or --ip) to check reverse DNS"),
        ];
    }
    let helo = opts.helo.trim_end_matches('.').to_ascii_lowercase();
    let mut out = Vec::new();
    for ip in &opts.outbound_ips {
        let names = match dns.ptr(*ip).await {
            Ok(n) => n,
            Err(DnsFailure::Temporary(e)) => {
                out.push(unknown("rdns", &format!("{ip}: {e}")));
                continue;
            }
            Err(_) => {
                out.push(
                    Check::new("rdns", Status::Fail)
                        .detail(format!("{ip} has no PTR record: many receivers refuse such mail"))
                        .fix(format!("ask the owner of {ip} (your hosting provider) to set its PTR to {helo}")),
                );
                continue;
            }
        };
        let mut confirmed = Vec::new();
        for name in names.iter().take(5) {
            if dns.addresses(name).await.is_ok_and(|ips| ips.contains(ip)) {
                confirmed.push(name.clone());
            }
        }
        out.push(if confirmed.contains(&helo) {
            Check::ok("rdns").detail(format!("{ip} → {helo} → {ip} (forward-confirmed, matches HELO)"))
        } else if let Some(n) = confirmed.first() {
            Check::new("rdns", Status::Warn)
                .detail(format!("{ip} → {n} (forward-confirmed), but HELO is {helo}"))
                .fix(format!("set outbound.helo = \"{n}\", or change the PTR to {helo}"))
        } else {
            Check::new("rdns", Status::Fail)
                .detail(format!("{ip} → {} does not resolve back to {ip}", names.join(", ")))
                .fix(format!("give {} an A/AAAA record for {ip}", names.first().map(String::as_str).unwrap_or("")))
        });
    }
    out
}

/// MTA-STS (RFC 8461): one valid `_mta-sts` record and an address for `mta-sts.DOMAIN`, where
/// the policy is served; absent, the records to add (the policy's mx lines from the MX records).
async fn check_mta_sts(domain: &str, dns: &Resolver) -> Check {
    let at = format!("_mta-sts.{domain}");
    let records = match dns.txt_with_prefix(&at, "v=STSv1").await {
        Ok(r) => r,
        Err(DnsFailure::Temporary(e)) => return unknown("mta_sts", &e),
        Err(_) => Vec::new(),
    };
    if records.is_empty() {
        let mx = match dns.mx(domain).await {
            Ok(mx) if !mx.iter().any(|(_, h)| h.is_empty()) => mx.into_iter().map(|(_, h)| h).collect(),
            _ => vec![format!("mx.{domain}")],
        };
        let lines: Vec<String> = mx.iter().map(|h| format!("mx: {h}")).collect();
        return Check::new("mta_sts", Status::Info)
            .detail(format!("no MTA-STS record at {at}: senders may deliver to {domain} without TLS (optional)"))
            .fix(format!(
                "to make senders require TLS: publish TXT {at} \"v=STSv1; id={}\" and serve https://mta-sts.{domain}/.well-known/mta-sts.txt \
                 (text/plain, a certificate valid for mta-sts.{domain}) with: version: STSv1 | mode: testing | {} | max_age: 604800; \
                 switch to mode: enforce (and a new id) once the TLS-RPT reports are clean",
                crate::time::Timestamp::now().iso8601().chars().filter(char::is_ascii_digit).take(14).collect::<String>(),
                lines.join(" | ")
            ));
    }
    let record = match crate::tlspolicy::select_record(&records) {
        Ok(r) => r,
        Err(e) => {
            return Check::new("mta_sts", Status::Fail)
                .detail(format!("{at}: {e} ({}): senders ignore the policy", records.join(" | ")))
                .fix(format!("publish exactly one record at {at}: \"v=STSv1; id=<1-32 letters and digits>\""));
        }
    };
    let host = format!("mta-sts.{domain}");
    match dns.addresses(&host).await {
        Ok(_) => {
            Check::ok("mta_sts").detail(format!("{at}: id {}; the policy is served from https://{host}/", record.id))
        }
        Err(DnsFailure::Temporary(e)) => unknown("mta_sts", &e),
        Err(_) => Check::new("mta_sts", Status::Warn)
            .detail(format!("{at} says id {} but {host} has no address: senders cannot fetch the policy", record.id))
            .fix(format!("give {host} an A/AAAA record and serve the policy there over HTTPS")),
    }
}

/// TLS-RPT (RFC 8460): one valid `_smtp._tls` record with a `rua`; absent, the record to add.
async fn check_tls_rpt(domain: &str, dns: &Resolver) -> Check {
    let at = format!("_smtp._tls.{domain}");
    let records = match dns.txt_with_prefix(&at, "v=TLSRPTv1").await {
        Ok(r) => r,
        Err(DnsFailure::Temporary(e)) => return unknown("tls_rpt", &e),
        Err(_) => Vec::new(),
    };
    match records.as_slice() {
        [] => Check::new("tls_rpt", Status::Info)
            .detail(format!("no TLS-RPT record at {at}: you get no reports of senders' TLS failures (optional)"))
            .fix(format!("publish TXT {at} \"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\"")),
        [one] => match crate::tlspolicy::parse_tlsrpt(one) {
            Ok(r) => Check::ok("tls_rpt").detail(format!("{at}: reports go to {}", r.rua.join(", "))),
            Err(e) => Check::new("tls_rpt", Status::Fail)
                .detail(format!("{at}: {e}: senders send no reports"))
                .fix(format!("publish \"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\" at {at}")),
        },
        many => Check::new("tls_rpt", Status::Fail)
            .detail(format!("{} TLS-RPT records at {at}: senders ignore them all", many.len()))
            .fix(format!("keep one record at {at}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_uses_the_organizational_domain() {
        assert_eq!(organizational("mail.example.co.uk"), "example.co.uk");
        assert!(aligned("bounces.example.com", "example.com", false));
        assert!(!aligned("bounces.example.com", "example.com", true));
        assert!(!aligned("example.net", "example.com", false));
    }
}
