//! Bounce reading speed: `feedback::parse_bounce` (detect, parse, classify) over the labelled
//! corpus on one thread, messages per second, against a baseline measured in the same run —
//! mail-parser's MIME parse alone of the same bytes — and the process's peak memory.
//! Also `verify::inspect` + `judge` (the forged-bounce checks without store or DNS).
//!
//! Run: `cargo bench --bench bounce_parse` (corpus from ../shared/corpus/bounces or
//! $MAILERD_CORPUS_DIR). Target (issue 4): >= 5,000 bounces per second on one core.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mailerd::feedback::parse_bounce;
use mailerd::feedback::verify::{Facts, inspect, judge};

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::env::var_os("MAILERD_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/bounces"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).expect("read")).collect()
}

/// Runs `f` over the corpus until `budget` has passed; messages per second.
fn rate(corpus: &[Vec<u8>], budget: Duration, mut f: impl FnMut(&[u8]) -> usize) -> (f64, usize) {
    let start = Instant::now();
    let (mut n, mut sink) = (0usize, 0usize);
    while start.elapsed() < budget {
        for m in corpus {
            sink = sink.wrapping_add(f(m));
            n += 1;
        }
    }
    (n as f64 / start.elapsed().as_secs_f64(), sink)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let corpus = corpus();
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    println!("corpus: {} messages, {} KiB", corpus.len(), bytes / 1024);
    let budget = Duration::from_secs(3);
    // Warm up (regex compilation, page cache).
    let _ = rate(&corpus, Duration::from_millis(300), |m| parse_bounce(m).recipients.len());

    let (base, s1) =
        rate(&corpus, budget, |m| mail_parser::MessageParser::default().parse(m).map_or(0, |p| p.parts.len()));
    let (ours, s2) = rate(&corpus, budget, |m| parse_bounce(m).recipients.len());
    let (verify, s3) = rate(&corpus, budget, |m| judge(&inspect(m), &Facts::default()).evidence.len());
    println!("mail-parser MIME parse only (baseline): {base:>9.0} msg/s");
    println!("parse_bounce (detect+parse+classify):   {ours:>9.0} msg/s  = {:.2}x the baseline", ours / base);
    println!("verify inspect+judge (no store/DNS):    {verify:>9.0} msg/s  = {:.2}x the baseline", verify / base);
    println!("peak RSS: {} MiB", peak_rss_kib() / 1024);
    println!("(checksum {})", s1 ^ s2 ^ s3);
}
