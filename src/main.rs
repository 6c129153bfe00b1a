//! The `mailerd` binary: parse the command line, run it, map the result to an exit code.
//! Called `sendmail` or `mailq` (a link to it), it is that program (sysexits.h exit codes).

use clap::Parser;
use mailerd::cli::{Cli, Personality};

fn main() {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    if let Some(program) = args.first().and_then(|a| Personality::of(a)) {
        std::process::exit(program.run(args.get(1..).unwrap_or(&[])));
    }
    // Logging starts once the configuration is read (`log.format`), in `cli`.
    let cli = Cli::parse_from(&args);
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
