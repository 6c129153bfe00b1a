//! The `mailerd` binary: parse the command line, run it, map the result to an exit code.

use std::io::IsTerminal;

use clap::Parser;

fn main() {
    let cli = mailerd::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILERD_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
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
