//! `mailerd check address|domain|message`: the delivery checklist for people and scripts.
//!
//! Human output: one aligned line per check with its fix; `--json`: one JSON document per
//! subject (JSON Lines, DESIGN §3). Exit code 1 when any check failed, 0 when there were only
//! warnings, 2 on usage or runtime errors.
//! Must not: hold checking logic; that is `checklist`.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::checklist::address::{self, Options};
use crate::checklist::domain::{self, DomainOptions};
use crate::checklist::probe::{self, ProbeOptions};
use crate::checklist::requirements::{self, Audience, Met};
use crate::checklist::resolver::Resolver;
use crate::checklist::{CheckReport, Status, message};
use crate::config::Config;

pub async fn address(config: &Config, inputs: &[String], no_dns: bool, probe_mx: bool, json: bool) -> Result<i32> {
    let dns = if no_dns {
        None
    } else {
        Some(crate::dns::Dns::new(&config.dns_nameservers).map_err(|e| anyhow::anyhow!("DNS: {e}"))?)
    };
    // The suppression list is consulted when the store exists; checking never creates one.
    let store = if crate::store::is_postgres_url(&config.store_url) || config.sqlite_path().exists() {
        Some(super::open_store(config).await?)
    } else {
        None
    };
    let probe_opts = ProbeOptions {
        helo: config.outbound.helo.clone(),
        port: config.outbound.mx_port,
        timeout: Duration::from_secs(10),
    };
    let options = Options::default();
    let mut reports = Vec::new();
    for input in inputs {
        let (mut report, parsed) = address::check_full(input, &options, dns.as_ref(), store.as_deref()).await;
        if let (true, Some(dns), Some(p)) = (probe_mx, dns.as_ref(), parsed.as_ref()) {
            report.push(probe::probe(p, dns, &probe_opts).await);
        }
        reports.push(report);
    }
    print(&reports, json)
}

pub async fn domain(config: &Config, name: &str, ips: Vec<std::net::IpAddr>, json: bool) -> Result<i32> {
    let resolver = Resolver::new(&config.dns_nameservers)?;
    let opts = DomainOptions::from_config(config, ips);
    // The complaint rate is read when the store exists; checking never creates one.
    let store = if crate::store::is_postgres_url(&config.store_url) || config.sqlite_path().exists() {
        Some(super::open_store(config).await?)
    } else {
        None
    };
    let report = domain::check(name, &opts, &resolver, store.as_deref()).await;
    let mut out = std::io::stdout().lock();
    // A write error is stdout closed (e.g. piped into head): nothing more to say.
    let _ = if json {
        writeln!(out, "{}", requirements::domain_json(&report))
    } else {
        human(&mut out, &report, std::io::stdout().is_terminal()).and_then(|()| human_requirements(&mut out, &report))
    };
    Ok(if report.passed() { 0 } else { 1 })
}

pub async fn message(config: &Config, file: &str, no_dns: bool, json: bool) -> Result<i32> {
    // Read at most a little over the limit: the size check only needs to know it is over.
    let cap = config.limits.max_message_size.saturating_mul(4).max(64 * 1024 * 1024);
    let mut raw = Vec::new();
    if file == "-" {
        std::io::stdin().lock().take(cap).read_to_end(&mut raw).context("reading standard input")?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(cap).read_to_end(&mut raw))
            .with_context(|| format!("reading {file}"))?;
    }
    let resolver = if no_dns { None } else { Some(Resolver::new(&config.dns_nameservers)?) };
    let report = message::check_all(file, &raw, config.limits.max_message_size, resolver.as_ref()).await;
    print(&[report], json)
}

/// Prints the reports; returns 1 when any check failed.
fn print(reports: &[CheckReport], json: bool) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    let colour = !json && std::io::stdout().is_terminal();
    for r in reports {
        let written = if json { writeln!(out, "{}", r.to_json()) } else { human(&mut out, r, colour) };
        if written.is_err() {
            break; // stdout closed (e.g. piped into head)
        }
    }
    Ok(if reports.iter().all(CheckReport::passed) { 0 } else { 1 })
}

/// The providers' rules under a domain report: one line each, with the fix of the check that
/// decided it.
fn human_requirements(out: &mut impl Write, r: &CheckReport) -> std::io::Result<()> {
    writeln!(out, "bulk sender requirements (Gmail, Yahoo, Outlook):")?;
    let assessed = requirements::assess(r);
    let width = assessed.iter().map(|a| a.requirement.id.len()).max().unwrap_or(0);
    for a in &assessed {
        let who = match a.requirement.audience {
            Audience::All => "all senders",
            Audience::Bulk => "bulk senders",
            Audience::Advice => "advice",
        };
        let mut line = format!("  {:<width$}  {:<7} {} ({who})", a.requirement.id, a.met.as_str(), a.requirement.rule);
        if a.met != Met::Pass {
            if let Some(fix) = a.deciding.as_ref().and_then(|c| c.fix.as_deref()) {
                line.push_str(&format!(" — fix: {fix}"));
            } else if let Some(d) = a.deciding.as_ref().and_then(|c| c.detail.as_deref()) {
                line.push_str(&format!(" — {d}"));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

pub(super) fn human(out: &mut impl Write, r: &CheckReport, colour: bool) -> std::io::Result<()> {
    let head = match &r.normalized {
        Some(n) if n != &r.subject => format!("{} ({n})", r.subject),
        _ => r.subject.clone(),
    };
    writeln!(out, "{head}: {}", r.worst().as_str())?;
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &r.checks {
        let status = format!("{:<7}", c.status.as_str());
        let status = if colour {
            let code = match c.status {
                Status::Ok => "32",
                Status::Info | Status::Unknown => "36",
                Status::Warn => "33",
                Status::Fail => "31",
            };
            format!("\x1b[{code}m{status}\x1b[0m")
        } else {
            status
        };
        let mut line = format!("  {:<width$}  {status} {}", c.name, c.detail.as_deref().unwrap_or(""));
        if let Some(fix) = &c.fix {
            line.push_str(&format!(" — fix: {fix}"));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
