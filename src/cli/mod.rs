//! The command line (DESIGN §3): parses arguments and runs one subcommand.
//!
//! Exit codes: 0 success, 1 a check found problems, 2 usage or runtime error. A closed
//! standard output (`mailerd queue list | head`) is a normal end: every line goes through
//! `outln!`, which returns the write's error instead of panicking, and `is_broken_pipe` tells
//! `main` to exit 0 quietly.
//! Must not: hold logic the daemon needs; subcommands call into the library.

/// `println!` that returns the write's `io::Result` (`?` it): a reader that went away ends the
/// command instead of panicking ("failed printing to stdout").
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod account;
mod apikey;
mod bounce;
mod check;
mod config;
mod dkim;
mod mailq;
mod queue;
mod send;
pub mod sendmail;
mod serve;
mod status;
mod suppression;
mod tls;
mod user;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "mailerd", version, about = "A mail delivery daemon that delivers, refuses properly, and explains.")]
pub struct Cli {
    /// Configuration file (TOML); every key has a default.
    #[arg(long, global = true, env = "MAILERD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: SMTP (MX) and submission listeners, queue, local delivery.
    Serve,
    /// Manage logins and mailboxes.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect and act on the queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Read bounces: what failed, why, hard or soft, and what to do.
    #[command(subcommand)]
    Bounce(BounceCommand),
    /// Check an address, a sending domain or a message before sending (exit 1: a check failed).
    #[command(subcommand)]
    Check(CheckCommand),
    /// DKIM keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// The addresses mailerd will not send to (hard bounces and manual entries).
    #[command(subcommand)]
    Suppression(SuppressionCommand),
    /// Send a message through the running daemon's HTTP API.
    Send {
        #[arg(long)]
        from: String,
        #[arg(long, required = true, num_args = 1..)]
        to: Vec<String>,
        #[arg(long)]
        subject: Option<String>,
        /// The text body (a file, or - for standard input).
        #[arg(long, conflicts_with = "eml")]
        text: Option<String>,
        /// Send the subject, text, HTML and attachments of an existing message.
        #[arg(long)]
        eml: Option<String>,
        /// The API (default: http:// + listen.http).
        #[arg(long)]
        server: Option<String>,
        /// The API key (default: $MAILERD_API_KEY).
        #[arg(long)]
        key: Option<String>,
    },
    /// API keys for the HTTP API.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Sending accounts paused by the hard-bounce breaker.
    #[command(subcommand)]
    Account(AccountCommand),
    /// The running daemon: uptime, listeners, queue by state and domain, oldest deferred,
    /// deliveries per minute, paused accounts (asked over data_dir/mailerd.sock).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The configuration: check it and show what is in force.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Outbound TLS policies (MTA-STS).
    #[command(subcommand)]
    Tls(TlsCommand),
    /// The classic sendmail interface for local programs (also: this binary called `sendmail`):
    /// -t -i -f ADDR -F NAME | -bs | -bp | -q; exit codes from sysexits.h.
    #[command(disable_help_flag = true)]
    Sendmail {
        /// sendmail's own options and the recipients.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

impl Cli {
    /// The log level when MAILERD_LOG does not say: `sendmail` is quiet (cron mails whatever
    /// a job writes to stderr), everything else says what it does.
    pub fn default_log(&self) -> &'static str {
        match self.command {
            Command::Sendmail { .. } => "warn",
            _ => "info",
        }
    }
}

/// How the binary was called: by the name `sendmail` or `mailq` it is that program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    Sendmail,
    Mailq,
}

impl Personality {
    /// From argv[0] (`/usr/sbin/sendmail` is a link to mailerd).
    pub fn of(argv0: &str) -> Option<Personality> {
        match std::path::Path::new(argv0).file_name().and_then(|n| n.to_str()) {
            Some("sendmail") => Some(Personality::Sendmail),
            Some("mailq") => Some(Personality::Mailq),
            _ => None,
        }
    }

    /// Runs it with the arguments after argv[0]; returns the exit code. The configuration is
    /// `MAILERD_CONFIG` or sendmail's `-C`, else the system's (see `sendmail`).
    pub fn run(self, args: &[String]) -> i32 {
        let config = std::env::var_os("MAILERD_CONFIG").filter(|c| !c.is_empty()).map(PathBuf::from);
        sendmail::main(config, args, self == Personality::Mailq)
    }
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// The outbound TLS policy in force for a destination domain: source, mode, expiry, MX
    /// patterns, and the result of the last delivery session there.
    Status {
        domain: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate; print the effective configuration (secrets masked) and what in it will hurt:
    /// a short host name, admins without a login, an unreadable DKIM key, a TLS certificate
    /// that expires within 30 days. Exit 2 when it does not load, 1 on failures (and, with
    /// --strict, on warnings).
    Check {
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Paused accounts, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Let a paused account send again (`user:ADDRESS` or `apikey:ID`).
    Resume { account: String },
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Make a key (printed once; only its hash is stored): scoped to sender domains with
    /// --domain, or an admin key with --admin; one of them is required.
    Create {
        name: String,
        /// A sender domain (and its subdomains) the key may send from, read and change
        /// (repeatable).
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// An admin key: sends from any domain, sees and changes everything.
        #[arg(long)]
        admin: bool,
        /// A sandbox key: every send of it runs every check and is recorded (events marked
        /// `sandbox`), but nothing is delivered.
        #[arg(long)]
        sandbox: bool,
    },
    /// Every key: id, name, scope, created, last used.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a key; its secret stops working at once.
    Revoke { id: String },
    /// Give a key a new secret (printed once; same id, name and scope); the old one stops
    /// working at once.
    Rotate { id: String },
}

#[derive(Debug, Subcommand)]
pub enum BounceCommand {
    /// Parse and classify bounce messages (FILE may be - for standard input).
    Parse {
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long)]
        json: bool,
        /// Show, per recipient, the evidence and the rule of the precedence that decided.
        #[arg(long)]
        explain: bool,
    },
    /// Tell genuine bounces of our mail from forged ones (backscatter, phishing): checks the
    /// signed return path, the sent log, the content, the Received chain and SPF/DKIM/DMARC.
    /// Exit code 1 when a file is forged.
    Verify {
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long)]
        json: bool,
        /// Skip the SPF, DKIM and DMARC lookups.
        #[arg(long)]
        no_dns: bool,
    },
    /// Teach the learned filter what these mailer-daemon messages are (FILE may be - for
    /// standard input); a message trained before with the other label is relabelled.
    Train {
        #[arg(value_enum)]
        label: TrainLabel,
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Syntax, typo, role account, domain (MX / A, null MX, NXDOMAIN) and the suppression list.
    Address {
        #[arg(required = true)]
        addresses: Vec<String>,
        /// Skip the DNS lookups (syntax, typo and role checks only).
        #[arg(long)]
        no_dns: bool,
        /// Also ask the recipient's MX with RCPT TO (no DATA). Off by default: receivers see
        /// it as a directory-harvest attempt and may block-list your IP, and many servers
        /// accept every address or greylist, so the answer often proves nothing.
        #[arg(long, conflicts_with = "no_dns")]
        probe: bool,
        #[arg(long)]
        json: bool,
    },
    /// SPF, DKIM, DMARC, MX, reverse DNS, MTA-STS and TLS-RPT of a sending domain.
    Domain {
        domain: String,
        /// An outbound IP to test (repeatable; default: check.outbound_ips).
        #[arg(long = "ip")]
        ips: Vec<std::net::IpAddr>,
        #[arg(long)]
        json: bool,
    },
    /// Size, required headers, line syntax, 8-bit data, text alternative and DKIM of a message.
    Message {
        /// The message (RFC 5322, as it will be sent); - for standard input.
        file: String,
        /// Skip DKIM verification (no DNS).
        #[arg(long)]
        no_dns: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Make a 2048-bit RSA key and print the TXT record to publish.
    Keygen {
        /// The signing domain (default: [dkim] domain, else the host name).
        #[arg(long)]
        domain: Option<String>,
        #[arg(long, default_value = "mailerd")]
        selector: String,
        /// Where to write the private key (default: data_dir/dkim-SELECTOR.key).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SuppressionCommand {
    /// Every suppressed address, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Suppress an address by hand.
    Add { address: String },
    /// Allow sending to an address again.
    Remove { address: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add or update a user; the password is read from standard input. An address in a
    /// local domain also gets a mailbox.
    Add {
        address: String,
        /// Mailbox quota in bytes (default: local.quota).
        #[arg(long)]
        quota: Option<u64>,
    },
    /// Change a login's password; the new one is read from standard input and must meet the
    /// policy of `[login]` (refused with the reason, exit 1).
    Passwd { address: String },
    /// Delete a login with its app passwords and second factor (mail already delivered stays
    /// in its Maildir); its line leaves `dovecot.passwd_file` too.
    Del { address: String },
    /// Named SMTP credentials of a login, each revocable on its own.
    #[command(subcommand, name = "app-password")]
    AppPassword(AppPasswordCommand),
    /// The TOTP second factor of a login's dashboard logins.
    #[command(subcommand, name = "2fa")]
    TwoFactor(TwoFactorCommand),
}

#[derive(Debug, Subcommand)]
pub enum TwoFactorCommand {
    /// Turn it on: prints the otpauth URI (and its QR code), the key and recovery codes once.
    Enable { address: String },
    /// Turn it off (a lost phone and no recovery code left).
    Disable { address: String },
    /// On or off, since when, recovery codes left, and whether the dashboard requires it.
    Status {
        address: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppPasswordCommand {
    /// Make an app password (printed once; only its SHA-256 is stored).
    Add { address: String, name: String },
    /// A login's app passwords: name, created, last used and from where.
    List {
        address: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete an app password; it stops working at once, also on a running daemon.
    Revoke { address: String, name: String },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Messages with recipients still to deliver; with --state or --domain, the matching
    /// recipients, most recently changed first.
    List {
        #[arg(long)]
        json: bool,
        /// Show at most this many messages (recipients with --state/--domain).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Only recipients in this state.
        #[arg(long)]
        state: Option<WaitingState>,
        /// Only recipients at this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// One message: envelope, recipients and their history.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Try the waiting recipients of a message now, or of every message with ALL (the running
    /// daemon picks them up within a second).
    Retry {
        /// A queue id, or ALL.
        id: String,
    },
    /// Delete a message, or with --all every message with a waiting recipient that matches.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
    Delete {
        id: Option<String>,
        /// Every message in the queue (with --state/--domain: those with such a recipient).
        #[arg(long)]
        all: bool,
        /// Only messages with a recipient in this state.
        #[arg(long, requires = "all")]
        state: Option<WaitingState>,
        /// Only messages with a waiting recipient at this domain.
        #[arg(long, requires = "all")]
        domain: Option<String>,
    },
    /// Make every deferred (and queued) recipient due now, like `postqueue -f`.
    Flush {
        /// Only recipients at this domain (like `postqueue -s`).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Put a message (or --all) on hold: kept, not delivered until released (`postsuper -h`).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
    Hold {
        id: Option<String>,
        #[arg(long)]
        all: bool,
        /// Only recipients at this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Release held recipients of a message (or --all): due at once (`postsuper -H`).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
    Release {
        id: Option<String>,
        #[arg(long)]
        all: bool,
        /// Only recipients at this domain.
        #[arg(long)]
        domain: Option<String>,
    },
}

/// The states of a recipient still in the queue, for `queue delete --all --state`.
/// The label of `mailerd bounce train`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainLabel {
    Forged,
    Genuine,
}

impl From<TrainLabel> for crate::store::learner::Label {
    fn from(l: TrainLabel) -> Self {
        match l {
            TrainLabel::Forged => crate::store::learner::Label::Forged,
            TrainLabel::Genuine => crate::store::learner::Label::Genuine,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WaitingState {
    Queued,
    Deferred,
    Held,
}

impl From<WaitingState> for crate::store::RecipientState {
    fn from(s: WaitingState) -> Self {
        match s {
            WaitingState::Queued => Self::Queued,
            WaitingState::Deferred => Self::Deferred,
            WaitingState::Held => Self::Held,
        }
    }
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    // Reading bounces needs neither configuration nor a runtime.
    if let Command::Bounce(BounceCommand::Parse { files, json, explain }) = &cli.command {
        return bounce::parse(files, *json, *explain);
    }
    // sendmail finds its configuration and maps its outcomes to exit codes itself.
    if let Command::Sendmail { args } = &cli.command {
        return Ok(sendmail::main(cli.config.clone(), args, false));
    }
    let config = Config::load(cli.config.as_deref())?;
    crate::logging::init(cli.default_log(), config.log.format);
    let config_path = cli.config.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(config).await,
            Command::Send { from, to, subject, text, eml, server, key } => {
                send::send(&config, send::SendArgs { from, to, subject, text, eml, server, key }).await
            }
            Command::Apikey(ApikeyCommand::Create { name, domains, admin, sandbox }) => {
                apikey::create(&config, &name, domains, admin, sandbox).await
            }
            Command::Apikey(ApikeyCommand::List { json }) => apikey::list(&config, json).await,
            Command::Apikey(ApikeyCommand::Revoke { id }) => apikey::revoke(&config, &id).await,
            Command::Apikey(ApikeyCommand::Rotate { id }) => apikey::rotate(&config, &id).await,
            Command::Account(AccountCommand::List { json }) => account::list(&config, json).await,
            Command::Account(AccountCommand::Resume { account }) => account::resume(&config, &account).await,
            Command::Tls(TlsCommand::Status { domain, json }) => tls::status(&config, &domain, json).await,
            Command::User(UserCommand::Add { address, quota }) => user::add(&config, &address, quota).await,
            Command::User(UserCommand::Passwd { address }) => user::passwd(&config, &address).await,
            Command::User(UserCommand::Del { address }) => user::del(&config, &address).await,
            Command::User(UserCommand::AppPassword(AppPasswordCommand::Add { address, name })) => {
                user::app_add(&config, &address, &name).await
            }
            Command::User(UserCommand::AppPassword(AppPasswordCommand::List { address, json })) => {
                user::app_list(&config, &address, json).await
            }
            Command::User(UserCommand::AppPassword(AppPasswordCommand::Revoke { address, name })) => {
                user::app_revoke(&config, &address, &name).await
            }
            Command::User(UserCommand::TwoFactor(TwoFactorCommand::Enable { address })) => {
                user::two_factor_enable(&config, &address).await
            }
            Command::User(UserCommand::TwoFactor(TwoFactorCommand::Disable { address })) => {
                user::two_factor_disable(&config, &address).await
            }
            Command::User(UserCommand::TwoFactor(TwoFactorCommand::Status { address, json })) => {
                user::two_factor_status(&config, &address, json).await
            }
            Command::Queue(QueueCommand::List { json, limit, state: None, domain: None }) => {
                queue::list(&config, json, limit).await
            }
            Command::Queue(QueueCommand::List { json, limit, state, domain }) => {
                queue::list_recipients(&config, json, limit, state.map(Into::into), domain.as_deref()).await
            }
            Command::Queue(QueueCommand::Show { id, json }) => queue::show(&config, &id, json).await,
            Command::Queue(QueueCommand::Retry { id }) => queue::retry(&config, &id).await,
            Command::Queue(QueueCommand::Delete { id: Some(id), .. }) => queue::delete(&config, &id).await,
            Command::Queue(QueueCommand::Delete { id: None, state, domain, .. }) => {
                queue::delete_all(&config, state.map(Into::into), domain.as_deref()).await
            }
            Command::Queue(QueueCommand::Flush { domain }) => queue::flush(&config, domain.as_deref()).await,
            Command::Queue(QueueCommand::Hold { id, domain, .. }) => {
                queue::hold(&config, id.as_deref(), domain.as_deref(), queue::Op::Hold).await
            }
            Command::Queue(QueueCommand::Release { id, domain, .. }) => {
                queue::hold(&config, id.as_deref(), domain.as_deref(), queue::Op::Release).await
            }
            Command::Bounce(BounceCommand::Parse { files, json, explain }) => bounce::parse(&files, json, explain),
            Command::Bounce(BounceCommand::Verify { files, json, no_dns }) => {
                bounce::verify(&config, &files, json, no_dns).await
            }
            Command::Bounce(BounceCommand::Train { label, files, json }) => {
                bounce::train(&config, label.into(), &files, json).await
            }
            Command::Check(CheckCommand::Address { addresses, no_dns, probe, json }) => {
                check::address(&config, &addresses, no_dns, probe, json).await
            }
            Command::Check(CheckCommand::Domain { domain, ips, json }) => {
                check::domain(&config, &domain, ips, json).await
            }
            Command::Check(CheckCommand::Message { file, no_dns, json }) => {
                check::message(&config, &file, no_dns, json).await
            }
            Command::Dkim(DkimCommand::Keygen { domain, selector, out }) => {
                dkim::keygen(&config, domain, selector, out)
            }
            Command::Suppression(SuppressionCommand::List { json }) => suppression::list(&config, json).await,
            Command::Suppression(SuppressionCommand::Add { address }) => suppression::add(&config, &address).await,
            Command::Suppression(SuppressionCommand::Remove { address }) => {
                suppression::remove(&config, &address).await
            }
            Command::Status { json } => status::run(&config, json).await,
            Command::Config(ConfigCommand::Check { strict }) => {
                config::check(&config, config_path.as_deref(), strict).await
            }
            Command::Sendmail { .. } => unreachable_sendmail(),
        }
    })
}

/// `sendmail` returned before the runtime was built.
fn unreachable_sendmail() -> Result<i32> {
    anyhow::bail!("sendmail runs on its own")
}

/// Writes to standard output (what `outln!` calls).
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write as _;
    std::io::stdout().lock().write_fmt(args)
}

/// Whether a command failed only because its standard output was closed (a pager or `head`
/// that had enough): that is a normal end, exit 0, nothing on stderr.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Opens the store of `config` for a command-line tool (works beside a running daemon).
async fn open_store(config: &Config) -> Result<std::sync::Arc<dyn crate::store::Store>> {
    use anyhow::Context as _;
    crate::store::open(config).await.with_context(|| format!("opening store {}", crate::daemon::store_name(config)))
}
