//! libFuzzer target for the SMTP command parser (`smtp::command::Command::parse`): any line,
//! with or without SMTPUTF8, must parse or give a typed error, never panic, and a parsed
//! command's addresses must render back without panicking.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run smtp_command -- -max_total_time=1800`.
//! Must not: assert anything about which commands are accepted; only robustness.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mailerd::smtp::command::Command;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else { return };
    // The connection hands the parser one line of at most 2,048 bytes of UTF-8.
    let Ok(line) = std::str::from_utf8(rest) else { return };
    if line.len() > 2048 || line.contains('\n') {
        return;
    }
    match Command::parse(line, flag & 1 == 1) {
        Ok(Command::Mail { from, .. }) => {
            let _ = from.to_string();
        }
        Ok(Command::Rcpt { to, .. }) => {
            let _ = to.to_string();
        }
        Ok(other) => {
            let _ = format!("{other:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
