//! Checks of a valid configuration (`mailerd config check`): what parses but will hurt.
//!
//! A host name that is not fully qualified (receivers distrust such a HELO), a relative data
//! dir (sendmail, mailq and the CLI run elsewhere and find another store), dashboard admins
//! without a login, a DKIM key that cannot be read, a TLS certificate that expires within 30
//! days (or cannot be read), and a return-path domain that is not obviously ours.
//! Standards: RFC 5321 §4.1.1.1 (HELO names a fully qualified domain), RFC 5280 §4.1.2.5
//! (validity: UTCTime before 2050, GeneralizedTime after).
//! Must not: write anything, or fail: every problem is a `Check`.

use std::path::Path;

use super::{Check, CheckReport, Status};
use crate::config::Config;
use crate::store::Store;
use crate::time::Timestamp;

/// A certificate that expires sooner than this is a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// Runs every check; `store` is the configured store when it could be opened (None: the
/// checks that need it say they could not check).
pub async fn check(config: &Config, source: &str, store: Option<&dyn Store>, now: Timestamp) -> CheckReport {
    let mut r = CheckReport::new("config", source);
    r.push(hostname(&config.hostname));
    r.push(data_dir(&config.data_dir));
    r.push(admins(config, store).await);
    r.push(dkim(config));
    r.push(tls(config, now));
    r.push(return_path(config));
    r
}

fn hostname(name: &str) -> Check {
    let lower = name.to_ascii_lowercase();
    let short =
        !lower.contains('.') || lower == "localhost" || lower.ends_with(".localdomain") || lower.ends_with(".local");
    if short {
        return Check::new("hostname", Status::Warn)
            .detail(format!("{name} is not a fully qualified domain name: receivers refuse or distrust a HELO like it"))
            .fix("set hostname = \"mx.example.com\" (a name whose A record and your IP's reverse DNS agree)");
    }
    Check::ok("hostname").detail(name.to_string())
}

fn data_dir(dir: &Path) -> Check {
    if dir.is_relative() {
        return Check::new("data_dir", Status::Warn)
            .detail(format!(
                "{} is relative: sendmail, mailq and the CLI started elsewhere use another store",
                dir.display()
            ))
            .fix("give data_dir (and store.url) as absolute paths, e.g. /var/lib/mailerd");
    }
    Check::ok("data_dir").detail(dir.display().to_string())
}

async fn admins(config: &Config, store: Option<&dyn Store>) -> Check {
    if config.dashboard.admins.is_empty() {
        return Check::new("dashboard", Status::Info).detail("no admins: the dashboard is off");
    }
    let Some(store) = store else {
        return Check::new("dashboard", Status::Unknown).detail("the store could not be opened to look the admins up");
    };
    let mut missing = Vec::new();
    for admin in &config.dashboard.admins {
        match store.mailbox(admin).await {
            Ok(Some(m)) if m.password_hash.is_some() => {}
            Ok(_) => missing.push(admin.clone()),
            Err(e) => return Check::new("dashboard", Status::Unknown).detail(format!("looking admins up: {e}")),
        }
    }
    if missing.is_empty() {
        return Check::ok("dashboard").detail(format!("{} admin(s), each with a login", config.dashboard.admins.len()));
    }
    Check::new("dashboard", Status::Warn)
        .detail(format!("admin(s) without a login, who cannot log in: {}", missing.join(", ")))
        .fix(format!("mailerd user add {} (the password is read from standard input)", missing.join(" / ")))
}

fn dkim(config: &Config) -> Check {
    let Some(d) = &config.dkim else {
        return Check::new("dkim", Status::Info).detail("not configured: outgoing mail is not signed");
    };
    match crate::dkim::Signer::load(&d.domain, &d.selector, &d.key) {
        Ok(_) => Check::ok("dkim").detail(format!("{}._domainkey.{}: key {} readable", d.selector, d.domain, d.key.display())),
        Err(e) => Check::new("dkim", Status::Warn)
            .detail(format!("key {} cannot be used here: {e:#}", d.key.display()))
            .fix("make the key readable by the user mailerd runs as (mailerd dkim keygen makes one); `serve` will not start without it"),
    }
}

fn tls(config: &Config, now: Timestamp) -> Check {
    let (cert, _) = config.cert_paths();
    if config.tls.cert.is_none() && !cert.exists() {
        return Check::new("tls", Status::Info)
            .detail("no certificate yet: serve makes a self-signed one in data_dir/tls on first start");
    }
    let pem = match std::fs::read(&cert) {
        Ok(p) => p,
        Err(e) => {
            return Check::new("tls", Status::Warn)
                .detail(format!("{}: {e}", cert.display()))
                .fix("set tls.cert to a readable PEM certificate (and tls.key to its key)");
        }
    };
    let Some(not_after) = first_certificate(&pem).and_then(|der| not_after(&der)) else {
        return Check::new("tls", Status::Warn)
            .detail(format!("{} holds no certificate mailerd can read", cert.display()))
            .fix("tls.cert must be a PEM file that starts with the server's certificate");
    };
    let days = (not_after.millis() - now.millis()).div_euclid(86_400_000);
    let when = not_after.iso8601();
    if not_after <= now {
        return Check::new("tls", Status::Warn)
            .detail(format!("{} expired on {when}", cert.display()))
            .fix("renew the certificate (clients that verify refuse STARTTLS)");
    }
    if days < EXPIRY_WARNING_DAYS {
        return Check::new("tls", Status::Warn)
            .detail(format!("{} expires in {days} day(s), on {when}", cert.display()))
            .fix("renew the certificate now; mailerd reads it at start, so restart it after renewing");
    }
    Check::ok("tls").detail(format!("{} valid until {when}", cert.display()))
}

fn return_path(config: &Config) -> Check {
    let domain = &config.bounce.return_path_domain;
    let ours =
        domain.eq_ignore_ascii_case(&config.hostname) || config.local.domains.iter().any(|d| d.as_str() == domain);
    if !config.bounce.sign_return_path || ours {
        return Check::ok("return_path").detail(domain.clone());
    }
    Check::new("return_path", Status::Info)
        .detail(format!("bounces go to bounces+…@{domain}, which is neither the host name nor a local domain"))
        .fix(format!("make sure the MX of {domain} is this host, or bounces never come back"))
}

/// The DER of the first certificate in a PEM file.
fn first_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem).next()?.ok().map(|c| c.as_ref().to_vec())
}

/// One DER element: its tag, its content and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = (rest.get(..n)?, rest.get(n..)?);
        (bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), rest)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The end of a certificate's validity (RFC 5280 §4.1: Certificate → tbsCertificate →
/// [version], serialNumber, signature, issuer, validity → notBefore, notAfter).
fn not_after(der: &[u8]) -> Option<Timestamp> {
    let (_, cert, _) = element(der)?;
    let (_, tbs, _) = element(cert)?;
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..3 {
        rest = element(rest)?.2; // serialNumber, signature, issuer
    }
    let (_, validity, _) = element(rest)?;
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?.strip_suffix('Z')?;
    let num = |s: &str| -> Option<i64> { s.parse().ok() };
    let (year, rest) = match tag {
        0x17 => {
            let yy = num(text.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (num(text.get(..4)?)?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| rest.get(i..i + 2).and_then(num);
    Timestamp::from_utc(year, field(0)?, field(2)?, field(4)?, field(6)?, field(8)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(not_after: (i32, u8, u8)) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["mx.example.com".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn validity_is_read_from_the_certificate() {
        let pem = self_signed((2031, 5, 17));
        let der = first_certificate(pem.as_bytes()).unwrap();
        assert_eq!(not_after(&der).unwrap().iso8601(), "2031-05-17T00:00:00Z");
        // Past 2049 the time is a GeneralizedTime.
        let der = first_certificate(self_signed((2061, 1, 2)).as_bytes()).unwrap();
        assert_eq!(not_after(&der).unwrap().iso8601(), "2061-01-02T00:00:00Z");
        assert_eq!(not_after(b"\x30\x03junk"), None);
        assert_eq!(not_after(&[]), None);
    }

    #[test]
    fn expiry_within_30_days_warns() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, self_signed((2030, 1, 20))).unwrap();
        let toml = format!("[tls]\ncert = \"{}\"\nkey = \"{}\"\n", cert.display(), cert.display());
        let config = Config::from_toml(&toml).unwrap();
        let at = |y, m, d| Timestamp::from_utc(y, m, d, 0, 0, 0).unwrap();
        assert_eq!(tls(&config, at(2029, 11, 1)).status, Status::Ok);
        let soon = tls(&config, at(2030, 1, 1));
        assert_eq!(soon.status, Status::Warn);
        assert!(soon.detail.unwrap().contains("expires in 19 day(s)"));
        assert!(tls(&config, at(2030, 2, 1)).detail.unwrap().contains("expired on 2030-01-20"));
    }

    #[test]
    fn short_host_names_and_relative_data_dirs_warn() {
        assert_eq!(hostname("mx").status, Status::Warn);
        assert_eq!(hostname("localhost").status, Status::Warn);
        assert_eq!(hostname("box.localdomain").status, Status::Warn);
        assert_eq!(hostname("mx.example.com").status, Status::Ok);
        assert_eq!(data_dir(Path::new("./mailerd-data")).status, Status::Warn);
        assert_eq!(data_dir(Path::new("/var/lib/mailerd")).status, Status::Ok);
    }
}
