//! libFuzzer target for `feedback::parse_bounce`: any bytes must give a report, never a
//! panic, and the report must stay bounded and render to JSON.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_bounce -- -max_total_time=120`.
//! libfuzzer-sys installs a panic hook that aborts even on panics that are caught; the
//! parser deliberately catches one known `debug_assert!` inside mail-parser 0.11.9, so the
//! default hook is restored here. An uncaught panic still aborts (libfuzzer-sys wraps each
//! run in `catch_unwind` and aborts on `Err`), so real crashes are still found.
//! Must not: assert anything about accuracy; only robustness.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Once;

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
    });
    let report = mailerd::feedback::parse_bounce(data);
    assert!(report.recipients.len() <= mailerd::feedback::parse::MAX_RECIPIENTS);
    let _ = report.to_json("fuzz");
});
