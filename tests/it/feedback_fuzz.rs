//! Inputs the fuzzer once crashed on (`tests/data/fuzz/fuzz-*.eml`): each must now parse
//! without a panic and render to JSON.
//!
//! Standards: none. Must not: assert anything about accuracy; only robustness.

use mailerd::feedback::parse_bounce;
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
