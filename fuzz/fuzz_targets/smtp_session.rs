//! libFuzzer target for the SMTP server state machine (`inbound::session::Session`, pure):
//! any sequence of commands the connection could drive it with must never panic, and its
//! invariants must hold after every step: no transaction without a greeting, never more
//! recipients than the limit, DATA only with a recipient, nothing but TLS survives STARTTLS.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run smtp_session -- -max_total_time=1800`.
//! Must not: do I/O; the state machine has none.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mailerd::inbound::session::{AcceptedRcpt, Session};
use mailerd::smtp::address::ReversePath;
use mailerd::smtp::command::MailParams;
use mailerd::store::Destination;

const MAX_RECIPIENTS: usize = 5;

fn rcpt(n: u8) -> AcceptedRcpt {
    AcceptedRcpt {
        address: format!("r{n}@example.jp"),
        orcpt: None,
        notify: None,
        destination: if n % 2 == 0 { Destination::Mailbox(format!("r{n}@example.jp")) } else { Destination::Remote },
        notes: Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut s = Session::new();
    for &op in data.iter().take(4096) {
        let arg = op >> 4;
        match op & 0x0f {
            0 => s.greet(format!("client{arg}"), arg & 1 == 0),
            1 => {
                if s.may_mail().is_ok() {
                    s.open(ReversePath::Null, MailParams::default());
                }
            }
            2 => {
                if s.may_rcpt(MAX_RECIPIENTS).is_ok() {
                    s.add_rcpt(rcpt(arg));
                }
            }
            3 => {
                if s.may_rcpt(MAX_RECIPIENTS).is_ok() {
                    s.refuse_rcpt();
                }
            }
            4 => {
                if s.may_data().is_ok() {
                    let tx = s.take();
                    assert!(tx.is_some_and(|t| !t.rcpts.is_empty()), "DATA without a recipient");
                }
            }
            5 => {
                let _ = s.take();
            }
            6 => {
                if s.may_starttls().is_ok() {
                    let errors = s.errors;
                    s.tls_started();
                    assert!(s.tls && s.helo.is_none() && s.transaction.is_none() && s.auth_user.is_none());
                    assert_eq!(s.errors, errors);
                }
            }
            7 => {
                if s.may_auth().is_ok() {
                    s.auth_user = Some(format!("user{arg}@example.jp"));
                }
            }
            8 => {
                let _ = s.junk(u32::from(arg));
            }
            9 => s.errors = s.errors.saturating_add(1),
            _ => {
                // Every refusal is a reply the connection can render.
                for r in [s.may_mail().err(), s.may_data().err(), s.may_starttls().err(), s.may_auth().err()]
                    .into_iter()
                    .flatten()
                {
                    assert!((400..600).contains(&r.code));
                    let _ = r.render();
                }
            }
        }
        if s.transaction.is_some() {
            assert!(s.helo.is_some(), "a transaction without a greeting");
        }
        if let Some(tx) = &s.transaction {
            assert!(tx.rcpts.len() <= MAX_RECIPIENTS, "more recipients than the limit");
        }
    }
});
