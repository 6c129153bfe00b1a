//! `mailerd bounce parse FILE... [--json]`: what each bounce says, per recipient.
//!
//! JSON Lines as in DESIGN §3, or one aligned line per recipient for people.
//! Exit code 0 when every file was read, 2 when one could not be.
//! Must not: hold parsing logic; that is `feedback`.

use std::io::{Read, Write};

use anyhow::Result;

use crate::feedback::parse_bounce;

pub fn parse(files: &[String], json: bool) -> Result<i32> {
    let mut code = 0;
    let mut out = std::io::stdout().lock();
    for file in files {
        let raw = if file == "-" {
            let mut buf = Vec::new();
            std::io::stdin().lock().take(crate::feedback::MAX_INPUT as u64 + 1).read_to_end(&mut buf).map(|_| buf)
        } else {
            std::fs::read(file)
        };
        let raw = match raw {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mailerd: {file}: {e}");
                code = 2;
                continue;
            }
        };
        let report = parse_bounce(&raw);
        let written = if json { writeln!(out, "{}", report.to_json(file)) } else { human(&mut out, file, &report) };
        if written.is_err() {
            break; // stdout closed (e.g. piped into head)
        }
    }
    Ok(code)
}

fn human(out: &mut impl Write, file: &str, r: &crate::feedback::BounceReport) -> std::io::Result<()> {
    let kind = format!("{:?}", r.kind).to_lowercase();
    writeln!(out, "{file}: {kind}{}", r.mta.as_deref().map(|m| format!(" (from {m})")).unwrap_or_default())?;
    for rc in &r.recipients {
        let hard = match rc.hard_bounce {
            Some(true) => "hard",
            Some(false) => "soft",
            None => "?",
        };
        writeln!(
            out,
            "  {:<40} {:<5} {:<8} {:<15} {}",
            rc.address,
            hard,
            rc.status.as_deref().unwrap_or("-"),
            rc.reason.as_str(),
            rc.diagnostic.as_deref().unwrap_or("").chars().take(100).collect::<String>()
        )?;
        writeln!(out, "  {:<40} fix: {}", "", rc.advice)?;
    }
    Ok(())
}
