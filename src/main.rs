//! The `mailerd` binary: parse the command line, run it, map the result to an exit code.
//! Called `sendmail` or `mailq` (a link to it), it is that program (sysexits.h exit codes).

use std::io::IsTerminal;

use clap::Parser;
use mailerd::cli::{Cli, Personality};

fn main() {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    if let Some(program) = args.first().and_then(|a| Personality::of(a)) {
        logging("warn");
        std::process::exit(program.run(args.get(1..).unwrap_or(&[])));
    }
    let cli = Cli::parse_from(&args);
    logging(cli.default_log());
    let code = match mailerd::cli::run(cli) {
        Ok(code) => code,
        Err(e) if mailerd::cli::is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("mailerd: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

/// Logs to stderr, filtered by MAILERD_LOG, else at `default`.
fn logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILERD_LOG").unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
