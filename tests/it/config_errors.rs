//! A bad configuration names the key and the problem, and the binary exits 2.

use std::process::Command;

#[test]
fn bad_config_names_the_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[relay]\ntrusted_networks = [\"10.0.0.0/99\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", path.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("relay.trusted_networks") && err.contains("10.0.0.0/99"), "{err}");

    std::fs::write(&path, "[limits]\nmax_message_size = \"big\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_message_size"));
}

#[test]
fn user_add_reads_the_password_from_stdin_and_queue_list_runs() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n[local]\ndomains = [\"local.test\"]\n", dir.path().display()))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", config.to_str().unwrap(), "user", "add", "Carol@Local.Test", "--quota", "5000"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"violet tractor pebble sunrise\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "carol@local.test: login and mailbox");
    let db = rusqlite::Connection::open(dir.path().join("mailerd.db")).unwrap();
    let (hash, quota): (String, i64) = db
        .query_row("SELECT password_hash, quota FROM mailboxes WHERE address = 'carol@local.test'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains("violet"));
    assert_eq!(quota, 5000);
    let out = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", config.to_str().unwrap(), "queue", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 message(s)"));
}

#[test]
fn suppression_and_queue_commands() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", dir.path().display())).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mailerd")).arg("--config").arg(&config).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    assert_eq!(run(&["suppression", "add", "Bad@Example.TEST"]).0, Some(0));
    let (code, out) = run(&["suppression", "list", "--json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!((v["address"].as_str(), v["reason"].as_str()), (Some("bad@example.test"), Some("manual")));
    assert_eq!(run(&["suppression", "remove", "bad@example.test"]).0, Some(0));
    assert_eq!(run(&["suppression", "remove", "bad@example.test"]).0, Some(1));
    assert_eq!(run(&["queue", "delete", "NOSUCHID"]).0, Some(2));
    // Regression: the failed delete used to record a `deleted` event (webhooks saw it).
    let db = rusqlite::Connection::open(dir.path().join("mailerd.db")).unwrap();
    let events: i64 = db.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 0);
    assert_eq!(run(&["queue", "retry", "NOSUCHID"]).0, Some(1));
}

/// `mailerd config check [--strict]`: the effective configuration with secrets masked, and
/// warnings for a short host name, an admin without a login, an unreadable DKIM key and a
/// certificate about to expire; exit 0, 1 with --strict, 2 when the file does not load.
#[test]
fn config_check_shows_the_effective_configuration_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["mx".to_string()]).unwrap();
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 86_400);
    params.not_after = soon.into();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, params.self_signed(&key).unwrap().pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mx\"\ndata_dir = \"{d}\"\n[tls]\ncert = \"{d}/cert.pem\"\nkey = \"{d}/key.pem\"\n\
             [dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nkey = \"{d}/missing.key\"\n\
             [dashboard]\nadmins = [\"ops@example.com\"]\n\
             [store]\nurl = \"sqlite://{d}/mailerd.db\"\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:9000/hook\"\nsecret = \"whsec_very_secret_value\"\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    // The store exists (an admin is looked up in it), with no login for ops@example.com.
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mailerd")).arg("--config").arg(&config).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert_eq!(run(&["suppression", "list"]).0, Some(0), "creates the store");
    let (code, out, err) = run(&["config", "check"]);
    assert_eq!(code, Some(0), "warnings alone: {out}{err}");
    assert!(
        out.contains("hostname = \"mx\"") && out.contains("[limits]") && out.contains("max_message_size = 26214400"),
        "{out}"
    );
    assert!(out.contains("secret = \"********\"") && !out.contains("whsec_very_secret_value"), "{out}");
    for (name, words) in [
        ("hostname", "not a fully qualified domain name"),
        ("dashboard", "ops@example.com"),
        ("dkim", "missing.key"),
        ("tls", "expires in 9 day(s)"),
    ] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(name) && l.contains("warn"))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        assert!(line.contains(words), "{line}");
    }
    assert_eq!(run(&["config", "check", "--strict"]).0, Some(1));
    std::fs::write(&config, "[limits]\nmax_recipients = 0\n").unwrap();
    let (code, _, err) = run(&["config", "check"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("limits.max_recipients"), "{err}");
}
