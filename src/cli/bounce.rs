//! `mailerd bounce parse FILE... [--json]`: what each bounce says, per recipient; and
//! `mailerd bounce verify FILE... [--json] [--no-dns]`: genuine, forged or unknown, and why.
//!
//! JSON Lines as in DESIGN §3, or aligned lines for people.
//! Exit code 0 when every file was read (verify: 1 when one is forged), 2 when one could not be.
//! `mailerd bounce train forged|genuine FILE...` teaches the learned filter (`feedback::learn`).
//! Must not: hold parsing logic; that is `feedback`.

use std::io::{Read, Write};

use anyhow::Result;

use crate::feedback::parse_bounce;

fn read_input(file: &str) -> std::io::Result<Vec<u8>> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().take(crate::feedback::MAX_INPUT as u64 + 1).read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(file)
    }
}

/// Reads one input; when it cannot be read, says so on stderr and makes the exit code 2.
fn read_or_report(file: &str, code: &mut i32) -> Option<Vec<u8>> {
    match read_input(file) {
        Ok(raw) => Some(raw),
        Err(e) => {
            eprintln!("mailerd: {file}: {e}");
            *code = 2;
            None
        }
    }
}

pub async fn verify(config: &crate::config::Config, files: &[String], json: bool, no_dns: bool) -> Result<i32> {
    let store = super::open_store(config).await?;
    let signer = crate::daemon::return_path_signer(config, store.clone().cluster().as_deref(), true).await?;
    let verifier = crate::feedback::evidence::Verifier::new(config, Some(signer), !no_dns);
    let mut code = 0;
    let mut out = std::io::stdout().lock();
    for file in files {
        let Some(raw) = read_or_report(file, &mut code) else { continue };
        let v = verifier.verify(store.as_ref(), &raw, &Default::default()).await?;
        if v.verdict == crate::feedback::verify::Verdict::Forged && code == 0 {
            code = 1;
        }
        let written = if json {
            writeln!(out, "{}", v.to_json(file))
        } else {
            let mut text = format!("{file}: {}\n", v.verdict.as_str());
            for e in &v.evidence {
                text.push_str(&format!("  {:<4} {:<18} {}\n", if e.ok { "ok" } else { "!!" }, e.check, e.detail));
            }
            write!(out, "{text}")
        };
        if written.is_err() {
            break;
        }
    }
    Ok(code)
}

/// `mailerd bounce train forged|genuine FILE...`: the operator's word, stored in the model the
/// daemon (and every node of a cluster) predicts with.
pub async fn train(
    config: &crate::config::Config,
    label: crate::store::learner::Label,
    files: &[String],
    json: bool,
) -> Result<i32> {
    let limits = crate::feedback::evidence::learner_settings(config).map(|s| s.limits).unwrap_or_default();
    let store = super::open_store(config).await?;
    let mut code = 0;
    let mut out = std::io::stdout().lock();
    for file in files {
        let Some(raw) = read_or_report(file, &mut code) else { continue };
        let ins = crate::feedback::verify::inspect(&raw);
        let n = ins.features.len();
        let sample = crate::feedback::learn::sample(
            &raw,
            ins.features,
            Some(label),
            crate::store::learner::TrainSource::Operator,
            crate::time::Timestamp::now(),
        );
        let learned = store.learn(sample, limits).await?;
        let written = if json {
            let line =
                serde_json::json!({"file": file, "label": label.as_str(), "learned": learned.as_str(), "tokens": n});
            writeln!(out, "{line}")
        } else {
            writeln!(out, "{file}: {} as {label} ({n} tokens)", learned.as_str())
        };
        if written.is_err() {
            break;
        }
    }
    Ok(code)
}

pub fn parse(files: &[String], json: bool, explain: bool) -> Result<i32> {
    let mut code = 0;
    let mut out = std::io::stdout().lock();
    for file in files {
        let Some(raw) = read_or_report(file, &mut code) else { continue };
        let report = parse_bounce(&raw);
        let written = if json {
            let mut v = report.to_json(file);
            if explain && let Some(list) = v.get_mut("recipients").and_then(|r| r.as_array_mut()) {
                for (j, rc) in list.iter_mut().zip(&report.recipients) {
                    if let Some(obj) = j.as_object_mut() {
                        obj.insert("explain".into(), rc.explain_json());
                    }
                }
            }
            writeln!(out, "{v}")
        } else {
            human(&mut out, file, &report, explain)
        };
        if written.is_err() {
            break; // stdout closed (e.g. piped into head)
        }
    }
    Ok(code)
}

fn human(out: &mut impl Write, file: &str, r: &crate::feedback::BounceReport, explain: bool) -> std::io::Result<()> {
    let kind = format!("{:?}", r.kind).to_lowercase();
    writeln!(out, "{file}: {kind}{}", r.mta.as_deref().map(|m| format!(" (from {m})")).unwrap_or_default())?;
    if let Some(f) = &r.feedback {
        writeln!(out, "  feedback_type: {}", f.feedback_type.as_str())?;
        if let Some(agent) = &f.user_agent {
            writeln!(out, "  reported by:   {agent}")?;
        }
        let redacted = if f.redacted { " (redacted)" } else { "" };
        writeln!(out, "  recipient:     {}{redacted}", f.recipients.first().map_or("-", String::as_str))?;
        writeln!(out, "  message:       {}", r.original.message_id.as_deref().unwrap_or("-"))?;
    }
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
        if explain {
            for line in rc.explain_lines() {
                writeln!(out, "  {:<40} {line}", "")?;
            }
        }
    }
    Ok(())
}
