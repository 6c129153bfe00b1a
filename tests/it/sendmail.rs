//! Local programs send mail without msmtp: `mailerd sendmail` and the binary called `sendmail`
//! or `mailq` (a link, as `ln -s $(which mailerd) /usr/sbin/sendmail` makes), beside a running
//! daemon (a child process on the same data dir) that delivers what they queue.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mailerd::inbound::auth::hash_password;

use crate::queue_ops::{DataDir, eventually};

/// `mailerd --config … sendmail ARGS` with `input` on standard input.
fn sendmail(d: &DataDir, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailerd"));
    cmd.arg("--config").arg(&d.config).arg("sendmail").args(args);
    pipe(cmd, input)
}

fn pipe(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A directory with links to the binary named `sendmail` and `mailq`.
fn links() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (sendmail, mailq) = (dir.path().join("sendmail"), dir.path().join("mailq"));
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailerd"), &sendmail).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailerd"), &mailq).unwrap();
    (dir, sendmail, mailq)
}

fn text(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
}

fn files(d: &DataDir, local: &str) -> Vec<PathBuf> {
    let dir = d.dir.path().join("mail/local.test").join(local).join("new");
    std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendmail_t_i_queues_and_the_running_daemon_delivers() {
    let d = DataDir::new();
    d.store().upsert_mailbox("bob@local.test", Some(hash_password("pw").unwrap()), None).await.unwrap();
    let _daemon = d.serve();
    // -t: recipients from To/Cc/Bcc; -i: the lone dot is data; Bcc is removed.
    let message = b"To: Postmaster <postmaster@local.test>\nBcc: bob@local.test\nSubject: nightly report\n\n\
                    line one\n.\nline after the dot\n";
    let out = sendmail(&d, &["-t", "-i", "-F", "Report Robot"], message);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty() && out.stdout.is_empty(), "quiet: cron mails whatever it prints");
    eventually("delivery to postmaster", async || files(&d, "postmaster").len() == 1).await;
    eventually("delivery to the Bcc recipient", async || files(&d, "bob").len() == 1).await;
    let got = text(&files(&d, "bob")[0]);
    assert!(!got.contains("Bcc") && !got.contains("bob@local.test\r\nSubject"), "{got}");
    assert!(got.contains("Received: by mx.local.test (mailerd, from userid "), "{got}");
    assert!(got.contains("\r\nFrom: Report Robot <"), "{got}");
    assert!(got.contains("\r\nMessage-ID: <") && got.contains("\r\nDate: "), "{got}");
    assert!(got.contains("line one\r\n.\r\nline after the dot\r\n"), "{got}");
    // The Message-ID the door gave it is stored with the message: its events carry it.
    let header = got.split("\r\n").find_map(|l| l.strip_prefix("Message-ID: ")).unwrap().trim().to_string();
    let events = d.store().events_after(0, None, &mailerd::store::Scope::All, 100).await.unwrap();
    let bob: Vec<_> = events.iter().filter(|e| e.recipient.as_deref() == Some("bob@local.test")).collect();
    assert!(!bob.is_empty() && bob.iter().all(|e| e.message_id.as_deref() == Some(header.as_str())), "{events:?}");

    // Without -i the lone dot ends the message, as sendmail's.
    let out = sendmail(&d, &["postmaster@local.test"], b"Subject: dot\n\nbefore\n.\nafter\n");
    assert_eq!(out.status.code(), Some(0));
    eventually("the second delivery", async || files(&d, "postmaster").len() == 2).await;
    let second = files(&d, "postmaster").into_iter().map(|f| text(&f)).find(|t| t.contains("Subject: dot")).unwrap();
    assert!(second.contains("before\r\n") && !second.contains("after"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_style_through_a_link_named_sendmail_and_mailq() {
    let d = DataDir::new();
    let (_links, sendmail, mailq) = links();
    let run = |program: &Path, args: &[&str], input: &[u8]| {
        let mut cmd = Command::new(program);
        cmd.args(args).env("MAILERD_CONFIG", &d.config);
        pipe(cmd, input)
    };
    let out = run(&mailq, &[], b"");
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()), (Some(0), "Mail queue is empty\n"));
    // What cron runs: `sendmail -i` (some add -FCronDaemon -odi -oem -oi -t) with the output.
    let out = run(&sendmail, &["-FCronDaemon", "-odi", "-oem", "-oi", "postmaster@local.test"], b"backup done\n");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&sendmail, &["-i", "postmaster"], b"echo body\n");
    assert_eq!(out.status.code(), Some(0), "a bare name is in the first local domain");
    let out = run(&mailq, &[], b"");
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0));
    assert!(listed.starts_with("-Queue ID-"), "{listed}");
    assert_eq!(listed.matches("postmaster@local.test").count(), 2, "{listed}");
    assert!(listed.trim_end().ends_with("in 2 Requests."), "{listed}");
    let out = run(&sendmail, &["-bp"], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), listed, "-bp is mailq");
    // The daemon starts later and delivers what waited.
    let _daemon = d.serve();
    eventually("both cron mails", async || files(&d, "postmaster").len() == 2).await;
    let cron = files(&d, "postmaster").into_iter().map(|f| text(&f)).find(|t| t.contains("backup done")).unwrap();
    assert!(cron.contains("\r\nFrom: CronDaemon <"), "{cron}");
    assert!(cron.contains("\r\n\r\nbackup done\r\n"), "a message without headers gets them: {cron}");
    // -q flushes, and exits 0 with nothing to say.
    let out = run(&sendmail, &["-q"], b"");
    assert_eq!((out.status.code(), out.stdout.len(), out.stderr.len()), (Some(0), 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bs_speaks_smtp_on_standard_input_and_output() {
    let d = DataDir::new();
    let session = b"EHLO app.local\r\nMAIL FROM:<app@local.test>\r\nRCPT TO:<postmaster@local.test>\r\n\
                    RCPT TO:<nobody@local.test>\r\nDATA\r\nSubject: over stdio\r\n\r\nhi\r\n.\r\nQUIT\r\n";
    let out = sendmail(&d, &["-bs"], session);
    let transcript = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{transcript}");
    let codes: Vec<&str> = transcript.lines().filter(|l| l.as_bytes().get(3) == Some(&b' ')).map(|l| &l[..3]).collect();
    assert_eq!(codes, ["220", "250", "250", "250", "550", "354", "250", "221"], "{transcript}");
    assert!(transcript.contains("nobody@local.test"), "{transcript}");
    assert!(
        !transcript.contains("STARTTLS") && !transcript.contains("AUTH"),
        "no TLS or AUTH over stdio: {transcript}"
    );
    let queued = transcript.lines().find(|l| l.contains("queued as")).unwrap();
    let id = queued.rsplit(' ').next().unwrap().trim();
    let detail = d.store().message_detail(&mailerd::store::MessageId(id.into())).await.unwrap().unwrap();
    assert_eq!(detail.origin.via, mailerd::store::Via::Sendmail);
    assert!(detail.origin.auth_user.is_some(), "the local user is recorded");
    // Relaying: the local user may send elsewhere (as Postfix's sendmail lets local users).
    let session = b"HELO x\r\nMAIL FROM:<app@local.test>\r\nRCPT TO:<someone@elsewhere.test>\r\nQUIT\r\n";
    let out = sendmail(&d, &["-bs"], session);
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(transcript.lines().nth(2).is_some_and(|l| l.starts_with("250")), "{transcript}");
}

#[test]
fn exit_codes_say_what_happened() {
    let d = DataDir::new();
    let code = |args: &[&str], input: &[u8]| sendmail(&d, args, input).status.code();
    assert_eq!(code(&["-Z", "a@local.test"], b"x"), Some(64), "unknown option: EX_USAGE");
    assert_eq!(code(&[], b"x"), Some(64), "no recipients");
    assert_eq!(code(&["-t"], b"Subject: nobody\n\nx\n"), Some(64), "no recipients in the headers");
    assert_eq!(code(&["nobody@local.test"], b"x"), Some(67), "every recipient refused: EX_NOUSER");
    assert_eq!(
        code(&["-oem", "-odi", "-oQ/x", "-Ox=y", "-B8BITMIME", "-N", "never", "postmaster@local.test"], b"x"),
        Some(0)
    );
    // A store that cannot be reached: not queued, try again later (EX_TEMPFAIL), one clear line.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // closed again
    let config = d.dir.path().join("down.toml");
    let data_dir = d.dir.path().display();
    std::fs::write(
        &config,
        format!("data_dir = \"{data_dir}\"\n[store]\nurl = \"postgres://mailerd@{down}/mailerd\"\n"),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailerd"));
    cmd.arg("--config").arg(&config).args(["sendmail", "postmaster@local.test"]);
    let out = pipe(cmd, b"Subject: x\n\nx\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.starts_with("mailerd sendmail: not queued: ") && err.lines().count() == 1, "{err}");
}

/// git send-email, when git has it (Debian: apt-get install git-email), with --sendmail-cmd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_send_email_hands_patches_to_sendmail() {
    // `-h` prints the usage (and exits non-zero); without git-email git says it has no such command.
    let usable = Command::new("git").args(["send-email", "-h"]).output().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout).contains("git send-email [")
            || String::from_utf8_lossy(&o.stderr).contains("git send-email [")
    });
    if !usable {
        assert!(std::env::var_os("CI").is_none(), "CI: git send-email is missing (apt-get install git-email)");
        let _ = writeln!(
            std::io::stderr(),
            "SKIP sendmail::git_send_email: needs git send-email (apt-get install git-email)"
        );
        return;
    }
    let d = DataDir::new();
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git").current_dir(repo.path()).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    git(&["init", "-q"]);
    std::fs::write(repo.path().join("README"), "hello\n").unwrap();
    git(&["add", "README"]);
    git(&["-c", "user.name=Dev", "-c", "user.email=dev@local.test", "commit", "-q", "-m", "Add a README"]);
    let patch = git(&["format-patch", "-1", "-o", "out"]);
    let sendmail_cmd = format!("{} --config {} sendmail", env!("CARGO_BIN_EXE_mailerd"), d.config.display());
    let out = Command::new("git")
        .current_dir(repo.path())
        .args(["send-email", "--confirm=never", "--quiet", "--to=postmaster@local.test", "--from=dev@local.test"])
        .arg(format!("--sendmail-cmd={sendmail_cmd}"))
        .arg(patch.trim())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && (err.contains("Can't locate") || err.contains("is not a git command")) {
        let _ = writeln!(
            std::io::stderr(),
            "SKIP sendmail::git_send_email: git send-email cannot run here: {}",
            err.lines().next().unwrap_or("")
        );
        return;
    }
    assert!(out.status.success(), "{err}");
    let _daemon = d.serve();
    eventually("the patch in the mailbox", async || files(&d, "postmaster").len() == 1).await;
    let mut got = String::new();
    std::fs::File::open(&files(&d, "postmaster")[0]).unwrap().read_to_string(&mut got).unwrap();
    assert!(got.contains("Subject: [PATCH] Add a README"), "{got}");
}
