//! `check address --no-dns` throughput (`cargo bench --bench check_address`), one thread.
//!
//! Generates 200,000 addresses (well-known providers, company domains, typos, quoted and
//! international addresses, garbage) and times `checklist::address::check` over them, against
//! two baselines measured in the same run: a plain `split_once('@')` loop and the envelope
//! parser `smtp::address::Mailbox::parse`. Target: at least 100,000 addresses per second.
//! Prints best-of-5 rates and the ratios; exits non-zero when the target is missed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mailerd::checklist::address::{Options, check};
use mailerd::checklist::typo::PROVIDERS;
use mailerd::smtp::address::Mailbox;

const N: usize = 200_000;
const ROUNDS: usize = 5;
const TARGET: f64 = 100_000.0;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[(self.next() as usize) % items.len()]
    }
}

fn generate() -> Vec<String> {
    let first = ["john", "jane", "m.mueller", "li.wei", "info", "sales", "kim_j", "noreply", "a.b.c", "x+tag"];
    let words =
        ["acme", "northwind", "contoso", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "vandelay"];
    let tlds = ["com", "net", "org", "de", "co.uk", "fr", "io", "com.au", "nl", "it"];
    let typos = ["gmial.com", "hotmial.com", "yahooo.com", "outlok.com", "gmail.con", "example.cmo", "gmaik.com"];
    let mut rng = Lcg(42);
    (0..N)
        .map(|i| {
            let user = format!("{}{}", rng.pick(&first), i % 1000);
            match rng.next() % 20 {
                0..=9 => format!("{user}@{}", rng.pick(PROVIDERS)),
                10..=15 => format!("{user}@{}{}.{}", rng.pick(&words), i % 97, rng.pick(&tlds)),
                16 => format!("{user}@{}", rng.pick(&typos)),
                17 => format!("\"{user} x\"@{}.example", rng.pick(&words)),
                18 => format!("{user}@bücher-{}.de", i % 50),
                _ => format!("{user}.@@{}", rng.pick(&words)),
            }
        })
        .collect()
}

fn best_rate(addresses: &[String], mut f: impl FnMut(&str) -> usize) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut sink = 0usize;
        for a in addresses {
            sink = sink.wrapping_add(f(black_box(a)));
        }
        black_box(sink);
        best = best.min(start.elapsed());
    }
    addresses.len() as f64 / best.as_secs_f64()
}

fn main() {
    let addresses = generate();
    let options = Options::default();
    // Warm the lazily built provider index outside the timing.
    black_box(check("warm@gmial.com", &options));
    let split = best_rate(&addresses, |a| a.split_once('@').map(|(l, d)| l.len() + d.len()).unwrap_or(0));
    let mailbox = best_rate(&addresses, |a| Mailbox::parse(a).map(|m| m.domain().as_str().len()).unwrap_or(0));
    let checked = best_rate(&addresses, |a| check(a, &options).checks.len());
    let suggestions =
        addresses.iter().filter(|a| check(a, &options).get("typo").is_some_and(|c| c.suggestion.is_some())).count();
    println!("check_address: {N} generated addresses, best of {ROUNDS} rounds, one thread");
    println!("  baseline split_once('@')       {:>12.0} addresses/s", split);
    println!("  baseline smtp Mailbox::parse   {:>12.0} addresses/s", mailbox);
    println!("  checklist::address::check      {:>12.0} addresses/s  (target >= {TARGET:.0})", checked);
    println!("  ratio check / Mailbox::parse   {:>12.2}x slower", mailbox / checked);
    println!("  ratio check / split_once       {:>12.1}x slower", split / checked);
    println!("  typo suggestions made          {:>12}", suggestions);
    if checked < TARGET {
        eprintln!("check_address: below target");
        std::process::exit(1);
    }
}
