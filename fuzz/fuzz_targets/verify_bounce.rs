//! libFuzzer target for forged-bounce detection without store or DNS
//! (`feedback::verify::inspect` + `judge`): any bytes must give a verdict, never a panic, and
//! render to JSON.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run verify_bounce -- -max_total_time=120`.
//! The default panic hook is restored for the reason given in `parse_bounce.rs`.
//! Must not: assert anything about the verdict; only robustness.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mailerd::feedback::verify::{Facts, SentFact, TokenFact, inspect, judge};
use std::sync::Once;

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
    });
    let ins = inspect(data);
    let facts = Facts {
        token: TokenFact::Absent,
        sent: SentFact::Sent { message_id: "m".into(), queue_id: "Q".into(), recipients: vec!["a@b".into()] },
        auth: None,
        all_signed: true,
    };
    let _ = judge(&ins, &facts).to_json("fuzz");
    let _ = judge(&ins, &Facts::default()).summary();
});
