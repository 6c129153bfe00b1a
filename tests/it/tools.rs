//! Which outside programs the suite uses, and one `SKIP` line for each that is missing, written
//! where a person sees it even when every test passes (the terminal, when there is one; and
//! stdout for `--nocapture`). Under CI (`CI` set) a missing program fails this test, since
//! `.ci/run` installs them all. The tests that need a program also print their own SKIP line
//! (visible with `--nocapture`) and return early.
//!
//! Must not: install anything.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn pg_ctl() -> bool {
    std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).any(|e| e.path().join("bin/pg_ctl").exists()))
        .unwrap_or(false)
}

#[test]
fn the_suite_says_what_it_could_not_run() {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    let checks: [(bool, &str, &str); 15] = [
        (
            runs("swaks", &["--version"]),
            "swaks::*",
            "swaks (apt-get install swaks libnet-ssleay-perl libio-socket-ssl-perl)",
        ),
        (
            Path::new("/usr/sbin/postfix").exists(),
            "postfix_peer::*",
            "Postfix as a real peer (apt-get install postfix)",
        ),
        (
            Path::new("/usr/sbin/dnsmasq").exists(),
            "delivery::*, checklist::*, unsubscribe::one_click_post_*",
            "dnsmasq as the tests' DNS server (apt-get install dnsmasq-base)",
        ),
        (
            Path::new("/usr/bin/chromium").exists() && runs("chromedriver", &["--version"]),
            "dashboard and unsubscribe browser tests",
            "headless Chromium (apt-get install chromium chromium-driver)",
        ),
        (runs("curl", &["--version"]), "unsubscribe::one_click_post_*", "curl (apt-get install curl)"),
        (
            Path::new("/usr/sbin/nsd").exists() && runs("ldns-signzone", &["-v"]) && runs("ldns-keygen", &["-v"]),
            "dane::*",
            "NSD and ldnsutils, a DNSSEC-signed zone (apt-get install nsd ldnsutils)",
        ),
        (
            std::env::var_os("MAILERD_TEST_POSTGRES_URL").is_some(),
            "store_conformance on PostgreSQL, cluster::*",
            "a PostgreSQL server (set MAILERD_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test)",
        ),
        (pg_ctl(), "cluster::a_postgresql_restart", "PostgreSQL's server binaries (apt-get install postgresql)"),
        (
            Command::new("git").args(["send-email", "-h"]).output().is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains("git send-email [")
                    || String::from_utf8_lossy(&o.stderr).contains("git send-email [")
            }),
            "sendmail::git_send_email",
            "git send-email (apt-get install git-email)",
        ),
        (
            python_has("prometheus_client"),
            "metrics_parse",
            "Python's prometheus_client (pip install prometheus_client)",
        ),
        (
            python_has("requests") && runs("node", &["--version"]),
            "examples",
            "Python's requests and Node.js (pip install requests; apt-get install nodejs)",
        ),
        (
            python_has("openapi_spec_validator") && python_has("jsonschema"),
            "openapi",
            "Python's openapi-spec-validator and jsonschema (pip install openapi-spec-validator jsonschema)",
        ),
        (
            Path::new("/usr/lib/dovecot/lmtp").exists() && Path::new("/usr/lib/dovecot/imap").exists(),
            "dovecot*",
            "Dovecot (apt-get install dovecot-imapd dovecot-lmtpd)",
        ),
        (root, "abuse::a_full_disk_answers_452_4_3_1", "root, to mount a tmpfs of the test's own"),
        (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/bounces/labels.jsonl").exists()
                || std::env::var_os("MAILERD_CORPUS_DIR").is_some(),
            "feedback_corpus",
            "the labelled bounce corpus in ../shared/corpus/bounces (or MAILERD_CORPUS_DIR)",
        ),
    ];
    let missing: Vec<String> = checks
        .iter()
        .filter(|(present, _, _)| !present)
        .map(|(_, tests, what)| format!("SKIP {tests}: needs {what}"))
        .collect();
    let summary = if missing.is_empty() {
        "every outside program the suite uses is here: nothing skipped".to_string()
    } else {
        missing.join("\n")
    };
    println!("{summary}");
    if !missing.is_empty()
        && let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty")
    {
        let _ = writeln!(tty, "\n{summary}");
    }
    if std::env::var_os("CI").is_some() {
        assert!(missing.is_empty(), "CI installs every program the suite uses:\n{summary}");
    }
}
