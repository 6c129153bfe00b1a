//! Inputs the fuzzer once crashed on (`tests/data/fuzz/fuzz-*.eml`): each must now parse
//! without a panic and render to JSON. Also a small deterministic mutation run (truncations,
//! byte flips, spliced boundaries) of corpus bounces through the parser and the forged-bounce
//! checks, so the regular test run keeps a little of what the fuzzer does.
//!
//! Standards: none. Must not: assert anything about accuracy; only robustness.

use mailerd::feedback::parse_bounce;
use mailerd::feedback::verify::{Facts, inspect, judge};
use std::path::PathBuf;

#[test]
fn former_fuzz_crashes_parse_without_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let is_fuzz = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("fuzz-"));
        if !is_fuzz {
            continue;
        }
        let raw = std::fs::read(&path).unwrap_or_default();
        let report = parse_bounce(&raw);
        let _ = report.to_json(&path.display().to_string());
        seen += 1;
    }
    assert!(seen > 0, "no fuzz fixtures in {}", dir.display());
}

#[test]
fn mutated_corpus_bounces_parse_and_verify_without_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/bounces");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    if files.is_empty() {
        println!("SKIP mutated corpus: no corpus at {}", dir.display());
        return;
    }
    files.sort();
    // xorshift: the same mutations every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut runs = 0;
    for path in files.iter().step_by(3) {
        let raw = std::fs::read(path).unwrap();
        for _ in 0..6 {
            let mut m = raw.clone();
            match next() % 4 {
                0 => m.truncate((next() as usize) % (m.len() + 1)),
                1 => {
                    for _ in 0..8 {
                        if !m.is_empty() {
                            let i = (next() as usize) % m.len();
                            m[i] ^= 1 << (next() % 8);
                        }
                    }
                }
                2 => {
                    let i = (next() as usize) % (m.len() + 1);
                    m.splice(i..i, b"\r\n--\r\nContent-Type: multipart/report; boundary=\"\"\r\n\r\n".iter().copied());
                }
                _ => {
                    let i = (next() as usize) % (m.len() + 1);
                    let tail = m.split_off(i);
                    m.extend_from_slice(&tail[..tail.len().min(64)]);
                    m.extend_from_slice(&raw);
                }
            }
            let _ = parse_bounce(&m).to_json("mutated");
            let _ = judge(&inspect(&m), &Facts::default()).to_json("mutated");
            runs += 1;
        }
    }
    assert!(runs > 300, "{runs} mutated inputs");
}
