//! TLS reporting (RFC 8460) for outbound delivery: once a UTC day is over, the TLS results
//! counted for each recipient domain that day become one aggregate report, sent to every
//! `rua` of the domain's `_smtp._tls` TXT record: by mail through mailerd's own queue
//! (DKIM-signed by `accept` when a key covers the From domain), and by HTTPS POST.
//!
//! Standards: RFC 8460 §3 (the `_smtp._tls` record: `v=TLSRPTv1`, `rua` of `mailto:` and
//! `https:` URIs), §4 (the JSON report: organization-name, date-range, contact-info,
//! report-id, and per policy its type, string, domain, MX patterns, summary and
//! failure-details), §5.1 (`application/tlsrpt+gzip`), §5.2 (the file name
//! `submitter!policy-domain!begin!end.json.gz`), §5.3 (the mail: `multipart/report;
//! report-type="tlsrpt"`, `TLS-Report-Domain`, `TLS-Report-Submitter`, the Subject with the
//! Report-ID), §5.4 (HTTPS: POST of the gzipped report over verified TLS).
//! The rendering (`report_json`, `gzip`, `render_mail`) is pure: it takes time and ids as
//! arguments. `Reporter` does the I/O: store, DNS, queue, HTTPS.
//! Must not: write the store except taking the day's counts (`take_tls_counts`), or send a
//! day's report of a domain twice (the take is atomic: of several nodes, one gets the counts).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::trust::Trust;
use crate::accept::{self, Incoming, Wakeup};
use crate::config::Config;
use crate::dns::{Dns, DnsFailure};
use crate::smtp::address::{Mailbox, ReversePath};
use crate::smtp::command::{MailParams, Notify};
use crate::store::{Destination, MessageId, NewRecipient, Origin, Store, StoreError, Via};
use crate::time::{Clock, Timestamp};
use crate::tlspolicy::{Day, Policy, PolicyType, ReportPolicy, TlsCount, TlsResult, parse_tlsrpt};

/// The media type of a gzipped report (RFC 8460 §5.1, §6.4).
pub const MEDIA_TYPE: &str = "application/tlsrpt+gzip";
/// How long a POST to an `https:` rua may take, connect to answer.
const HTTPS_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest the report task sleeps before it looks at the clock again.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// What a report says about its sender.
pub struct Submitter<'a> {
    pub organization: &'a str,
    /// The contact address (`contact-info`) and From of report mail.
    pub contact: &'a Mailbox,
    /// The domain that submits (`TLS-Report-Submitter`, the file name's first part).
    pub domain: &'a str,
}

/// The JSON report (RFC 8460 §4.4) of `domain`'s counts on `day`.
pub fn report_json(who: &Submitter<'_>, report_id: &str, day: Day, domain: &str, counts: &[TlsCount]) -> Value {
    let mut by_policy: BTreeMap<(&str, &str, &str), Vec<&TlsCount>> = BTreeMap::new();
    for c in counts {
        by_policy.entry((c.policy.kind.as_str(), c.policy.id.as_str(), c.policy.body.as_str())).or_default().push(c);
    }
    let policies: Vec<Value> = by_policy
        .into_values()
        .filter_map(|rows| {
            let policy = &rows.first()?.policy;
            Some(policy_json(policy, domain, &rows))
        })
        .collect();
    json!({
        "organization-name": who.organization,
        "date-range": {
            "start-datetime": day.start().iso8601(),
            "end-datetime": day.last_second().iso8601(),
        },
        "contact-info": who.contact.to_string(),
        "report-id": report_id,
        "policies": policies,
    })
}

fn policy_json(policy: &ReportPolicy, domain: &str, rows: &[&TlsCount]) -> Value {
    let mut p = json!({ "policy-type": policy.kind.as_str(), "policy-domain": domain });
    // The policy text, a line per string: the MTA-STS policy, or the TLSA records (RFC 8460 §4.4).
    if policy.kind == PolicyType::Sts || (policy.kind == PolicyType::Tlsa && !policy.body.is_empty()) {
        let lines: Vec<&str> =
            policy.body.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty()).collect();
        p["policy-string"] = json!(lines);
    }
    if policy.kind == PolicyType::Sts
        && let Ok(parsed) = Policy::parse(&policy.body)
    {
        p["mx-host"] = json!(parsed.mx.iter().map(|m| m.to_string()).collect::<Vec<_>>());
    }
    // A DANE policy is the TLSA RRset of one MX host (the id): that host is the mx-host.
    if policy.kind == PolicyType::Tlsa {
        p["mx-host"] = json!([policy.id]);
    }
    let successes: u64 = rows.iter().filter(|r| r.result == TlsResult::Success).map(|r| r.count).sum();
    let failures: u64 = rows.iter().filter(|r| r.result != TlsResult::Success).map(|r| r.count).sum();
    let mut details: Vec<(String, Value)> = rows
        .iter()
        .filter(|r| r.result != TlsResult::Success)
        .map(|r| {
            let mut d = json!({ "result-type": r.result.result_type(), "failed-session-count": r.count });
            if let Some(ip) = r.sending_ip {
                d["sending-mta-ip"] = json!(ip.to_string());
            }
            if let Some(mx) = &r.mx_host {
                d["receiving-mx-hostname"] = json!(mx);
            }
            if let Some(ip) = r.receiving_ip {
                d["receiving-ip"] = json!(ip.to_string());
            }
            if r.result.result_type() != r.result.as_str() {
                d["failure-reason-code"] = json!(r.result.as_str());
            }
            (d.to_string(), d)
        })
        .collect();
    details.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = json!({
        "policy": p,
        "summary": { "total-successful-session-count": successes, "total-failure-session-count": failures },
    });
    if !details.is_empty() {
        out["failure-details"] = Value::Array(details.into_iter().map(|(_, d)| d).collect());
    }
    out
}

/// The report gzipped (RFC 8460 §5.1).
pub fn gzip(report: &Value) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(report.to_string().as_bytes());
    z.finish().unwrap_or_default()
}

/// `submitter!policy-domain!begin!end.json.gz` (RFC 8460 §5.2; times in Unix seconds).
pub fn filename(submitter: &str, domain: &str, day: Day) -> String {
    let (begin, end) = (day.start().millis() / 1000, day.last_second().millis() / 1000);
    format!("{submitter}!{domain}!{begin}!{end}.json.gz")
}

/// One report mail (RFC 8460 §5.3) to `to`.
#[allow(clippy::too_many_arguments)]
pub fn render_mail(
    who: &Submitter<'_>,
    to: &Mailbox,
    domain: &str,
    day: Day,
    report_id: &str,
    message_id: &str,
    gz: &[u8],
    summary: (u64, u64),
    now: Timestamp,
) -> Vec<u8> {
    let boundary = format!("tlsrpt-{}", message_id.split('@').next().unwrap_or(message_id));
    let b64 = base64::engine::general_purpose::STANDARD.encode(gz);
    let mut body = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        body.push_str(&String::from_utf8_lossy(chunk));
        body.push_str("\r\n");
    }
    let date = &day.start().iso8601()[..10];
    format!(
        "From: {from}\r\nDate: {now}\r\nTo: {to}\r\n\
         Subject: Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>\r\n\
         TLS-Report-Domain: {domain}\r\nTLS-Report-Submitter: {submitter}\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n\
         Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"{boundary}\"\r\n\r\n\
         This is a multipart message in MIME format.\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
         This is an aggregate TLS report (RFC 8460) from {submitter} for mail to {domain} on {date} (UTC):\r\n\
         {ok} successful and {failed} failed TLS sessions. The report is attached.\r\n\r\n\
         --{boundary}\r\nContent-Type: {MEDIA_TYPE}\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment;\r\n\tfilename=\"{file}\"\r\n\r\n{body}\r\n--{boundary}--\r\n",
        from = who.contact,
        now = now.rfc5322(),
        submitter = who.domain,
        ok = summary.0,
        failed = summary.1,
        file = filename(who.domain, domain, day),
    )
    .into_bytes()
}

/// Where a report goes: one `rua` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rua {
    Mail(Mailbox),
    Https(hyper::Uri),
}

impl Rua {
    /// A `mailto:` (its query, if any, is ignored; `%40`-style escapes decoded) or `https:` URI.
    pub fn parse(uri: &str) -> Option<Rua> {
        let lower = uri.to_ascii_lowercase();
        if lower.starts_with("mailto:") {
            let address = uri.get(7..)?.split('?').next()?;
            return Mailbox::parse(&percent_decode(address)?).ok().map(Rua::Mail);
        }
        if lower.starts_with("https://") {
            let u: hyper::Uri = uri.parse().ok()?;
            u.host()?;
            return Some(Rua::Https(u));
        }
        None
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Sends the daily reports.
pub struct Reporter {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub dns: Dns,
    pub trust: Arc<Trust>,
    pub wakeup: Arc<Wakeup>,
    pub dkim: Option<Arc<crate::dkim::Signer>>,
    pub clock: Clock,
}

impl Reporter {
    /// Sends what is due now, then again after each midnight (UTC) on the clock, until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = self.clock.now();
            self.send_due(now).await;
            let next = Day::of(now).next().start();
            let wait = Duration::from_millis(next.millis().saturating_sub(now.millis()).max(0) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait.min(MAX_SLEEP)) => {}
                _ = self.clock.changed() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Sends the reports of every domain and day before `now`'s day that has counts.
    pub async fn send_due(&self, now: Timestamp) {
        let due = match self.store.tls_report_due(Day::of(now)).await {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "cannot read the TLS report counts");
                return;
            }
        };
        for (day, domain) in due {
            if let Err(e) = self.send_one(day, &domain, now).await {
                warn!(domain, day = %day.start().iso8601(), error = %e, "TLS report not sent");
            }
        }
    }

    async fn send_one(&self, day: Day, domain: &str, now: Timestamp) -> Result<(), StoreError> {
        let counts = self.store.take_tls_counts(day, domain).await?;
        if counts.is_empty() {
            // Another node took them.
            return Ok(());
        }
        let ruas = match self.dns.txt(&format!("_smtp._tls.{domain}")).await {
            Ok(records) => {
                let valid: Vec<_> = records.iter().filter(|r| r.starts_with("v=TLSRPTv1")).collect();
                match valid.as_slice() {
                    [one] => parse_tlsrpt(one).map(|r| r.rua).unwrap_or_default(),
                    _ => Vec::new(),
                }
            }
            Err(DnsFailure::NxDomain | DnsFailure::NoRecords) => Vec::new(),
            Err(DnsFailure::Temporary(e)) => {
                warn!(domain, error = %e, "the _smtp._tls lookup failed: that day's TLS report is dropped");
                Vec::new()
            }
        };
        if ruas.is_empty() {
            debug!(domain, "no TLS-RPT record: no report");
            return Ok(());
        }
        let o = &self.config.outbound;
        let submitter_domain = o.tls_rpt_from.domain().to_string();
        let who =
            Submitter { organization: &o.tls_rpt_organization, contact: &o.tls_rpt_from, domain: &submitter_domain };
        let report_id = format!(
            "{}.{}@{}",
            day.start().iso8601().get(..10).unwrap_or(""),
            MessageId::generate(now),
            submitter_domain
        );
        let report = report_json(&who, &report_id, day, domain, &counts);
        let gz = gzip(&report);
        let ok: u64 = counts.iter().filter(|c| c.result == TlsResult::Success).map(|c| c.count).sum();
        let failed: u64 = counts.iter().filter(|c| c.result != TlsResult::Success).map(|c| c.count).sum();
        for uri in ruas {
            match Rua::parse(&uri) {
                Some(Rua::Mail(to)) => {
                    self.mail(&who, &to, domain, day, &report_id, &gz, (ok, failed)).await?;
                }
                Some(Rua::Https(u)) => match self.post(&u, &gz).await {
                    Ok(()) => info!(domain, rua = %u, report_id, "TLS report posted"),
                    Err(e) => warn!(domain, rua = %u, error = %e, "TLS report POST failed"),
                },
                None => warn!(domain, rua = uri, "TLS-RPT rua not usable"),
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn mail(
        &self,
        who: &Submitter<'_>,
        to: &Mailbox,
        domain: &str,
        day: Day,
        report_id: &str,
        gz: &[u8],
        summary: (u64, u64),
    ) -> Result<(), StoreError> {
        // The queue runs on the system's time, whatever clock decided that the day is over.
        let queued_at = Timestamp::now();
        let id = MessageId::generate(queued_at);
        let message_id = format!("{}@{}", id, who.domain);
        let message = render_mail(who, to, domain, day, report_id, &message_id, gz, summary, queued_at);
        let destination =
            if self.config.is_local_domain(to.domain()) { Destination::Mailbox(to.key()) } else { Destination::Remote };
        let incoming = Incoming {
            id: id.clone(),
            from: ReversePath::Mailbox(who.contact.clone()),
            params: MailParams::default(),
            recipients: vec![NewRecipient {
                address: to.to_string(),
                orcpt: None,
                // A report that cannot be delivered is dropped, not bounced to ourselves.
                notify: Some(Notify { never: true, ..Notify::default() }),
                destination,
            }],
            rejected: Vec::new(),
            origin: Origin {
                via: Via::Report,
                client_ip: "127.0.0.1".into(),
                helo: self.config.hostname.clone(),
                ..Origin::default()
            },
            received_at: queued_at,
            message,
            reports: Vec::new(),
            notes: Vec::new(),
            idempotency: None,
        };
        accept::accept(self.store.as_ref(), &self.wakeup, self.dkim.as_deref(), incoming).await?;
        info!(domain, to = %to, queue_id = %id, report_id, "TLS report queued");
        Ok(())
    }

    /// POSTs the gzipped report to `uri` over TLS verified for its host (RFC 8460 §5.4).
    async fn post(&self, uri: &hyper::Uri, gz: &[u8]) -> Result<(), String> {
        tokio::time::timeout(HTTPS_TIMEOUT, self.post_now(uri, gz))
            .await
            .map_err(|_| format!("no answer within {HTTPS_TIMEOUT:?}"))?
    }

    async fn post_now(&self, uri: &hyper::Uri, gz: &[u8]) -> Result<(), String> {
        let host = uri.host().ok_or("no host")?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(443);
        let ips = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self.dns.addresses(&host).await.map_err(|e| format!("cannot resolve {host}: {e:?}"))?,
        };
        let mut tcp = None;
        let mut last = String::from("no address");
        for ip in ips {
            match tokio::net::TcpStream::connect((ip, port)).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("{ip}: {e}"),
            }
        }
        let tcp = tcp.ok_or_else(|| format!("cannot connect to {host}: {last}"))?;
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = self.trust.https().connect(name, tcp).await.map_err(|e| format!("TLS with {host}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or(host);
        let req = hyper::Request::post(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, MEDIA_TYPE)
            .header(hyper::header::USER_AGENT, "mailerd")
            .body(Full::new(Bytes::copy_from_slice(gz)))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        if status.is_success() { Ok(()) } else { Err(format!("HTTP {}", status.as_u16())) }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn count(policy: &ReportPolicy, result: TlsResult, mx: Option<&str>, n: u64) -> TlsCount {
        TlsCount {
            day: Day(20_000),
            domain: "a.test".into(),
            policy: policy.clone(),
            result,
            mx_host: mx.map(str::to_string),
            receiving_ip: mx.map(|_| "192.0.2.7".parse().unwrap()),
            sending_ip: mx.map(|_| "198.51.100.1".parse().unwrap()),
            count: n,
        }
    }

    #[test]
    fn the_report_follows_the_rfc_schema() {
        let contact = Mailbox::parse("tls-reports@sender.test").unwrap();
        let who = Submitter { organization: "Sender Inc", contact: &contact, domain: "sender.test" };
        let sts = ReportPolicy {
            kind: PolicyType::Sts,
            id: "7".into(),
            body: "version: STSv1\r\nmode: enforce\r\nmx: *.a.test\r\nmax_age: 86400\r\n".into(),
        };
        let tlsa = ReportPolicy {
            kind: PolicyType::Tlsa,
            id: "mx3.a.test".into(),
            body: "_25._tcp.mx3.a.test IN TLSA 3 1 1 00ff\n_25._tcp.mx3.a.test IN TLSA 2 0 1 ff00".into(),
        };
        let counts = vec![
            count(&sts, TlsResult::Success, Some("mx1.a.test"), 5),
            count(&sts, TlsResult::StartTlsNotSupported, Some("mx2.a.test"), 2),
            count(&sts, TlsResult::MxNotInPolicy, Some("mx.b.test"), 1),
            count(&ReportPolicy::none(), TlsResult::Success, Some("mx1.a.test"), 3),
            count(&tlsa, TlsResult::TlsaInvalid, Some("mx3.a.test"), 4),
            count(&tlsa, TlsResult::Success, Some("mx3.a.test"), 6),
        ];
        let r = report_json(&who, "rid", Day(20_000), "a.test", &counts);
        assert_eq!(r["organization-name"], "Sender Inc");
        assert_eq!(r["contact-info"], "tls-reports@sender.test");
        assert_eq!(r["report-id"], "rid");
        assert_eq!(r["date-range"]["start-datetime"], "2024-10-04T00:00:00Z");
        assert_eq!(r["date-range"]["end-datetime"], "2024-10-04T23:59:59Z");
        let policies = r["policies"].as_array().unwrap();
        assert_eq!(policies.len(), 3);
        let dane = policies.iter().find(|p| p["policy"]["policy-type"] == "tlsa").unwrap();
        assert_eq!(
            dane["policy"]["policy-string"],
            json!(["_25._tcp.mx3.a.test IN TLSA 3 1 1 00ff", "_25._tcp.mx3.a.test IN TLSA 2 0 1 ff00"])
        );
        assert_eq!(dane["policy"]["mx-host"], json!(["mx3.a.test"]));
        assert_eq!(dane["summary"]["total-successful-session-count"], 6);
        assert_eq!(dane["failure-details"][0]["result-type"], "tlsa-invalid");
        assert_eq!(dane["failure-details"][0]["failed-session-count"], 4);
        let none = policies.iter().find(|p| p["policy"]["policy-type"] == "no-policy-found").unwrap();
        assert_eq!(none["summary"]["total-successful-session-count"], 3);
        assert!(none.get("failure-details").is_none());
        let p = policies.iter().find(|p| p["policy"]["policy-type"] == "sts").unwrap();
        assert_eq!(p["policy"]["policy-domain"], "a.test");
        assert_eq!(
            p["policy"]["policy-string"],
            json!(["version: STSv1", "mode: enforce", "mx: *.a.test", "max_age: 86400"])
        );
        assert_eq!(p["policy"]["mx-host"], json!(["*.a.test"]));
        assert_eq!(p["summary"]["total-successful-session-count"], 5);
        assert_eq!(p["summary"]["total-failure-session-count"], 3);
        let details = p["failure-details"].as_array().unwrap();
        assert_eq!(details.len(), 2);
        let starttls = details.iter().find(|d| d["result-type"] == "starttls-not-supported").unwrap();
        assert_eq!(starttls["failed-session-count"], 2);
        assert_eq!(starttls["receiving-mx-hostname"], "mx2.a.test");
        assert_eq!(starttls["receiving-ip"], "192.0.2.7");
        assert_eq!(starttls["sending-mta-ip"], "198.51.100.1");
        let mx = details.iter().find(|d| d["result-type"] == "validation-failure").unwrap();
        assert_eq!(mx["failure-reason-code"], "mx-not-in-policy");

        let mut text = String::new();
        flate2::read::GzDecoder::new(&gzip(&r)[..]).read_to_string(&mut text).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), r, "gzip round trip");
    }

    #[test]
    fn the_mail_has_the_rfc_headers_and_attachment() {
        let contact = Mailbox::parse("tls-reports@sender.test").unwrap();
        let who = Submitter { organization: "o", contact: &contact, domain: "sender.test" };
        let to = Mailbox::parse("rua@a.test").unwrap();
        let gz = gzip(&json!({"x": 1}));
        let mail = render_mail(&who, &to, "a.test", Day(20_000), "rid@x", "m1@sender.test", &gz, (4, 1), Timestamp(0));
        let text = String::from_utf8(mail).unwrap();
        for line in [
            "TLS-Report-Domain: a.test\r\n",
            "TLS-Report-Submitter: sender.test\r\n",
            "Subject: Report Domain: a.test Submitter: sender.test Report-ID: <rid@x>\r\n",
            "Content-Type: multipart/report; report-type=\"tlsrpt\";",
            "Content-Type: application/tlsrpt+gzip\r\n",
            "filename=\"sender.test!a.test!1728000000!1728086399.json.gz\"",
            "4 successful and 1 failed",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        let parsed = mail_parser::MessageParser::default().parse(text.as_bytes()).unwrap();
        let attachment = parsed.attachments().next().expect("one attachment");
        let mut json = String::new();
        flate2::read::GzDecoder::new(attachment.contents()).read_to_string(&mut json).unwrap();
        assert_eq!(json, r#"{"x":1}"#);
    }

    #[test]
    fn rua_uris() {
        assert_eq!(Rua::parse("mailto:tls@a.test"), Some(Rua::Mail(Mailbox::parse("tls@a.test").unwrap())));
        assert_eq!(
            Rua::parse("MAILTO:tls%2Breports@a.test?subject=x"),
            Some(Rua::Mail(Mailbox::parse("tls+reports@a.test").unwrap()))
        );
        assert!(matches!(Rua::parse("https://r.a.test:8443/v1"), Some(Rua::Https(u)) if u.port_u16() == Some(8443)));
        for bad in ["mailto:", "mailto:%zz@a.test", "http://a.test/", "https://", "ftp://x", "mailto:no-at"] {
            assert_eq!(Rua::parse(bad), None, "{bad}");
        }
    }
}
