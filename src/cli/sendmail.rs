//! `sendmail` (the binary called by that name, or `mailerd sendmail …`): the classic interface
//! of a mailer for local programs, as Postfix's sendmail(1) has it. A message on standard
//! input (`-t` recipients from its headers, `-i`/`-oi` a lone dot is data, `-f` sender, `-F`
//! full name, `-N`/`-R`/`-V` DSN options), `-bs` SMTP on standard input and output, `-bp` the
//! queue (= `mailq`), `-q` (or `-qRsite`) flush; the historic options Postfix ignores are
//! ignored. The configuration is `-C FILE`, `--config`, `MAILERD_CONFIG`, else
//! `/etc/mailerd/mailerd.toml` when it exists, else the defaults.
//!
//! Exit codes are sendmail's (sysexits.h), not mailerd's 0/1/2: 0 queued, 64 (EX_USAGE) bad
//! options or no recipients, 65 (EX_DATAERR) a message that can never be queued (too large,
//! refused by a check set to reject), 67 (EX_NOUSER) every recipient refused, 75
//! (EX_TEMPFAIL) not queued now (store, configuration), each with one line on stderr.
//! Must not: hold mail logic (that is `inbound::local`), or write anything but errors (and,
//! with `-v`, the queue id) on stderr: cron mails whatever a job prints.

use std::io::Read as _;
use std::path::PathBuf;

use crate::config::Config;
use crate::inbound::local::{self, Cleanup, Envelope, SubmitError};
use crate::smtp::address::ReversePath;
use crate::smtp::command::{MailParams, Notify, Ret};
use crate::store::{MessageId, Selection};
use crate::time::Timestamp;

pub const EX_OK: i32 = 0;
pub const EX_USAGE: i32 = 64;
pub const EX_DATAERR: i32 = 65;
pub const EX_NOUSER: i32 = 67;
pub const EX_TEMPFAIL: i32 = 75;

/// The configuration a system's `sendmail` and `mailq` read when given none.
pub const SYSTEM_CONFIG: &str = "/etc/mailerd/mailerd.toml";

/// What to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mode {
    /// `-bm` (the default): queue the message on standard input.
    #[default]
    Deliver,
    /// `-bs`: an SMTP session on standard input and output.
    Smtp,
    /// `-bp`: list the queue.
    Queue,
    /// `-q` (every deferred recipient) or `-qRsite` (one domain): due now.
    Flush(Option<String>),
    /// Accepted and done: `-bi`/`-I` (aliases live in the configuration), `-bh`, `-bH`, and
    /// `-qINTERVAL` (there is no queue runner to start).
    Nothing,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    /// `-t`
    pub extract: bool,
    /// `-i`, `-oi`
    pub ignore_dots: bool,
    /// `-f`, `-r`
    pub sender: Option<String>,
    /// `-F`
    pub full_name: Option<String>,
    /// `-v`
    pub verbose: bool,
    /// `-C`: the configuration file (Postfix's is a directory; ours is the file).
    pub config: Option<PathBuf>,
    /// `-N never|success,delay,failure`
    pub notify: Option<Notify>,
    /// `-R hdrs|full`
    pub ret: Option<Ret>,
    /// `-V envid`
    pub envid: Option<String>,
    pub recipients: Vec<String>,
}

/// Options that take a value (in the same word, `-fADDR`, or the next, `-f ADDR`).
const WITH_VALUE: &[char] = &['A', 'B', 'C', 'F', 'L', 'N', 'O', 'R', 'V', 'X', 'b', 'e', 'f', 'h', 'o', 'p', 'r'];
/// Options without a value that are accepted and ignored, as Postfix does: -G (gateway),
/// -U (initial submission), -m (me too), -n (no aliasing), -c (connections).
const IGNORED_FLAGS: &[char] = &['G', 'U', 'c', 'm', 'n'];

/// Parses sendmail's command line (getopt style: `-ti` is `-t -i`; options stop at the first
/// address, and a later word starting with `-` is a usage error, as in Postfix).
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        if arg == "--" {
            break;
        }
        let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) else {
            i -= 1;
            break;
        };
        for (at, c) in cluster.char_indices() {
            let rest = cluster.get(at + c.len_utf8()..).unwrap_or("");
            if c == 'q' {
                o.mode = match rest.chars().next() {
                    None => Mode::Flush(None),
                    Some('R' | 'S') => {
                        let site = match rest.get(1..).filter(|s| !s.is_empty()) {
                            Some(s) => s.to_string(),
                            None => next_value(args, &mut i, "-qR")?,
                        };
                        Mode::Flush(Some(site.trim_start_matches('@').to_string()))
                    }
                    // -q30m, -qI…: a queue runner's interval or a queue id selection.
                    Some(_) => Mode::Nothing,
                };
                break;
            }
            if WITH_VALUE.contains(&c) {
                let value =
                    if rest.is_empty() { next_value(args, &mut i, &format!("-{c}"))? } else { rest.to_string() };
                option_with_value(&mut o, c, value)?;
                break;
            }
            match c {
                't' => o.extract = true,
                'i' => o.ignore_dots = true,
                'v' => o.verbose = true,
                'I' => o.mode = Mode::Nothing,
                c if IGNORED_FLAGS.contains(&c) => {}
                c => return Err(format!("unknown option -{c}")),
            }
        }
    }
    for r in args.get(i..).unwrap_or(&[]) {
        if r.starts_with('-') {
            return Err(format!("{r}: recipient addresses must come after all options"));
        }
        o.recipients.push(r.clone());
    }
    Ok(o)
}

fn next_value(args: &[String], i: &mut usize, option: &str) -> Result<String, String> {
    let v = args.get(*i).cloned().ok_or_else(|| format!("option {option} needs a value"))?;
    *i += 1;
    Ok(v)
}

fn option_with_value(o: &mut Options, c: char, value: String) -> Result<(), String> {
    match c {
        'f' | 'r' => o.sender = Some(value),
        'F' => o.full_name = Some(value),
        'C' => o.config = Some(PathBuf::from(value)),
        'V' => o.envid = Some(value),
        'R' => {
            o.ret = Some(match value.to_ascii_lowercase().as_str() {
                "hdrs" => Ret::Hdrs,
                "full" => Ret::Full,
                _ => return Err(format!("-R {value}: use hdrs or full")),
            })
        }
        'N' => o.notify = Some(notify(&value)?),
        // -oi is -i; every other -oX (-oem, -odi, -oQ…, -o7, -o8, -om) is ignored.
        'o' => o.ignore_dots |= value == "i",
        'b' => {
            o.mode = match value.as_str() {
                "m" => Mode::Deliver,
                "s" => Mode::Smtp,
                "p" => Mode::Queue,
                "i" | "h" | "H" => Mode::Nothing,
                "d" | "l" | "D" => return Err(format!("-b{value}: the daemon is `mailerd serve`")),
                _ => return Err(format!("-b{value} is not supported")),
            }
        }
        // -A (config selection), -B (body type), -L (log label), -O (option), -X (log file),
        // -e (error mode), -h (hop count), -p (protocol): ignored, as in Postfix.
        _ => {}
    }
    Ok(())
}

/// `-N never` or a comma list of success, delay and failure.
fn notify(value: &str) -> Result<Notify, String> {
    let mut n = Notify::default();
    for word in value.split(',').map(|w| w.trim().to_ascii_lowercase()) {
        match word.as_str() {
            "never" => n.never = true,
            "success" => n.success = true,
            "delay" => n.delay = true,
            "failure" => n.failure = true,
            _ => return Err(format!("-N {value}: use never, or success, delay and failure")),
        }
    }
    if n.never && (n.success || n.delay || n.failure) {
        return Err(format!("-N {value}: never stands alone"));
    }
    Ok(n)
}

/// The configuration file to read: `-C`, then `--config`/`MAILERD_CONFIG`, then the system's.
fn config_path(options: &Options, global: Option<PathBuf>) -> Option<PathBuf> {
    options.config.clone().or(global).or_else(|| {
        let system = PathBuf::from(SYSTEM_CONFIG);
        system.exists().then_some(system)
    })
}

fn say(text: impl std::fmt::Display) {
    eprintln!("mailerd sendmail: {text}");
}

/// Runs `sendmail ARGS`; returns the exit code (sysexits.h).
pub fn main(global_config: Option<PathBuf>, args: &[String], mailq: bool) -> i32 {
    let mut options = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            say(e);
            return EX_USAGE;
        }
    };
    if mailq {
        options.mode = Mode::Queue;
    }
    let config = match Config::load(config_path(&options, global_config).as_deref()) {
        Ok(c) => {
            // Quiet: cron mails whatever a job writes to stderr.
            crate::logging::init("warn", c.log.format);
            c
        }
        Err(e) => {
            say(format!("configuration: {e}"));
            return EX_TEMPFAIL;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            say(format!("cannot start: {e}"));
            return EX_TEMPFAIL;
        }
    };
    let code = runtime.block_on(async move {
        match options.mode.clone() {
            Mode::Nothing => EX_OK,
            Mode::Queue => match super::mailq::print(&config).await {
                Ok(()) => EX_OK,
                Err(e) if super::is_broken_pipe(&e) => EX_OK,
                Err(e) => {
                    say(format!("{e:#}"));
                    EX_TEMPFAIL
                }
            },
            Mode::Flush(site) => flush(&config, site).await,
            Mode::Smtp => smtp(config).await,
            Mode::Deliver => deliver(config, options).await,
        }
    });
    // A blocking read of standard input (-bs) must not keep the process alive.
    runtime.shutdown_background();
    code
}

async fn flush(config: &Config, site: Option<String>) -> i32 {
    let domain = match site.map(|s| crate::smtp::address::Domain::parse(&s).map(|d| d.as_str().to_string())) {
        Some(Err(_)) => {
            say("-qR needs a domain");
            return EX_USAGE;
        }
        Some(Ok(d)) => Some(d),
        None => None,
    };
    let done = async {
        let store = super::open_store(config).await?;
        let n = store.flush(&Selection { domain, ..Selection::all() }, Timestamp::now()).await?;
        crate::control::wake(&config.data_dir).await;
        Ok::<_, anyhow::Error>(n)
    };
    match done.await {
        Ok(_) => EX_OK,
        Err(e) => {
            say(format!("{e:#}"));
            EX_TEMPFAIL
        }
    }
}

async fn smtp(config: Config) -> i32 {
    let (ctx, _running) = match crate::daemon::local_context(config).await {
        Ok(c) => c,
        Err(e) => {
            say(format!("{e:#}"));
            return EX_TEMPFAIL;
        }
    };
    let io = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    // The sender rules see the local user as the login `user@origin`, as `submit` does.
    let user = local::current_user();
    let origin = local::origin_domain(&ctx.config);
    let login = local::qualify(&user.name, &origin).map(|m| m.key()).unwrap_or(user.name);
    crate::inbound::connection::serve_local(ctx, Box::new(io), login, user.uid == 0).await;
    EX_OK
}

async fn deliver(config: Config, options: Options) -> i32 {
    let user = local::current_user();
    let origin = local::origin_domain(&config);
    let sender = match options.sender.as_deref().map(str::trim) {
        Some("" | "<>") => ReversePath::Null,
        Some(s) => match local::qualify(s, &origin) {
            Ok(m) => ReversePath::Mailbox(m),
            Err(e) => {
                say(format!("bad sender address {e}"));
                return EX_USAGE;
            }
        },
        None => match local::qualify(&user.name, &origin) {
            Ok(m) => ReversePath::Mailbox(m),
            Err(e) => {
                say(format!("no sender address for user {}: {e} (give one with -f)", user.name));
                return EX_USAGE;
            }
        },
    };
    if options.recipients.is_empty() && !options.extract {
        say("no recipients: give addresses, or -t to read them from the message's headers");
        return EX_USAGE;
    }
    // Read at most one byte past the limit: enough to know it is too large.
    let limit = config.limits.max_message_size;
    let mut input = Vec::new();
    let read = std::io::stdin().lock().take(limit.saturating_add(1)).read_to_end(&mut input);
    if let Err(e) = read {
        say(format!("reading the message: {e}"));
        return EX_TEMPFAIL;
    }
    let now = Timestamp::now();
    let id = MessageId::generate(now);
    let raw = local::read_message(&input, options.ignore_dots);
    let prepared = local::prepare(
        &raw,
        &Cleanup {
            hostname: &config.hostname,
            sender: &sender,
            user: &user,
            full_name: options.full_name.as_deref(),
            extract: options.extract,
            origin: &origin,
            id: &id,
            now,
        },
    );
    let mut recipients = options.recipients.clone();
    recipients.extend(prepared.header_recipients);
    if recipients.is_empty() {
        say("no recipient addresses found in the message's headers");
        return EX_USAGE;
    }
    let params = MailParams { ret: options.ret, envid: options.envid.clone(), ..MailParams::default() };
    let (ctx, _running) = match crate::daemon::local_context(config).await {
        Ok(c) => c,
        Err(e) => {
            say(format!("not queued: {e:#}"));
            return EX_TEMPFAIL;
        }
    };
    let envelope = Envelope { from: sender, recipients, params, notify: options.notify };
    let submitted = local::submit(&ctx, &user, envelope, id, now, prepared.message).await;
    if matches!(&submitted, Ok(done) if done.id.is_some()) {
        // Delivered at once by a running daemon, rather than at its next poll.
        crate::control::wake(&ctx.config.data_dir).await;
    }
    match submitted {
        Ok(done) => {
            for (rcpt, reply) in &done.refused {
                say(format!("{rcpt}: {}", reply.lines.join(" ")));
            }
            match &done.id {
                Some(id) => {
                    if options.verbose {
                        say(format!("queued as {id} for {} recipient(s)", done.accepted));
                    }
                    EX_OK
                }
                None if done.refused.iter().any(|(_, r)| r.code < 500) => {
                    say("not queued: try again later");
                    EX_TEMPFAIL
                }
                None => {
                    say("not queued: every recipient was refused");
                    EX_NOUSER
                }
            }
        }
        Err(e) => {
            say(format!("not queued: {e}"));
            match e {
                SubmitError::NoRecipients => EX_USAGE,
                e if e.is_temporary() => EX_TEMPFAIL,
                _ => EX_DATAERR,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, String> {
        parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_classic_command_lines() {
        let o = p(&["-t", "-i"]).unwrap();
        assert!(o.extract && o.ignore_dots && o.recipients.is_empty() && o.mode == Mode::Deliver);
        let o = p(&["-ti", "-f", "cron@example.com", "-FCron Daemon", "root", "ops@example.com"]).unwrap();
        assert!(o.extract && o.ignore_dots);
        assert_eq!(o.sender.as_deref(), Some("cron@example.com"));
        assert_eq!(o.full_name.as_deref(), Some("Cron Daemon"));
        assert_eq!(o.recipients, ["root", "ops@example.com"]);
        let o = p(&["-oi", "-fapp@example.com", "x@y.test"]).unwrap();
        assert!(o.ignore_dots && o.sender.as_deref() == Some("app@example.com"));
        assert_eq!(p(&["-bs"]).unwrap().mode, Mode::Smtp);
        assert_eq!(p(&["-bp"]).unwrap().mode, Mode::Queue);
        assert_eq!(p(&["-q"]).unwrap().mode, Mode::Flush(None));
        assert_eq!(p(&["-qRexample.com"]).unwrap().mode, Mode::Flush(Some("example.com".into())));
        assert_eq!(p(&["-qR", "@example.com"]).unwrap().mode, Mode::Flush(Some("example.com".into())));
        assert_eq!(p(&["-q30m"]).unwrap().mode, Mode::Nothing);
        assert_eq!(p(&["-bi"]).unwrap().mode, Mode::Nothing);
        assert_eq!(p(&["-I"]).unwrap().mode, Mode::Nothing);
        let o = p(&["-N", "success,failure", "-R", "hdrs", "-V", "env-1", "a@b.test"]).unwrap();
        assert_eq!(o.notify.map(|n| n.render()).as_deref(), Some("SUCCESS,FAILURE"));
        assert_eq!((o.ret, o.envid.as_deref()), (Some(Ret::Hdrs), Some("env-1")));
        assert_eq!(p(&["-C", "/etc/m.toml", "-v", "a"]).unwrap().config, Some(PathBuf::from("/etc/m.toml")));
    }

    #[test]
    fn historic_options_are_ignored() {
        let o = p(&["-oem", "-odi", "-oQ/var/spool/mqueue", "-Ox=y", "-B", "8BITMIME", "-X", "/tmp/log", "-G", "-U"])
            .unwrap();
        assert_eq!(o, Options::default());
        let o = p(&["-m", "-n", "-h", "10", "-L", "label", "-em", "-Am", "-p", "smtp:host", "-o7", "-o8", "a@b.test"])
            .unwrap();
        assert_eq!(o.recipients, ["a@b.test"]);
    }

    #[test]
    fn usage_errors() {
        assert!(p(&["-Z"]).unwrap_err().contains("-Z"));
        assert!(p(&["-f"]).unwrap_err().contains("needs a value"));
        assert!(p(&["a@b.test", "-f", "x"]).unwrap_err().contains("after all options"));
        assert!(p(&["-bd"]).unwrap_err().contains("mailerd serve"));
        assert!(p(&["-bv"]).is_err());
        assert!(p(&["-N", "sometimes"]).is_err());
        assert!(p(&["-R", "body"]).is_err());
        assert_eq!(
            p(&["--", "-odd-but-allowed"]).unwrap_err(),
            "-odd-but-allowed: recipient addresses must come after all options"
        );
    }
}
