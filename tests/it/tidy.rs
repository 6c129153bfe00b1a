//! The tidy test (after rust-analyzer's): rules about the tree that no compiler checks, read
//! from the source files themselves. Each rule says where a kind of thing may live; a file
//! that breaks one is named with the line.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A source file: its path below `src/` and its lines before the unit tests.
struct File {
    name: String,
    lines: Vec<String>,
}

fn tree() -> Vec<File> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    sources(&src)
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read source");
            let name = p.strip_prefix(&src).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            let lines = text.lines().take_while(|l| l.trim() != "#[cfg(test)]").map(str::to_string).collect();
            File { name, lines }
        })
        .collect()
}

/// Lines of files not in `allowed` (path prefixes) that `bad` holds for, as `file:line: text`.
fn offenders(allowed: &[&str], bad: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for f in tree().iter().filter(|f| !allowed.iter().any(|a| f.name.starts_with(a))) {
        for (i, l) in f.lines.iter().enumerate() {
            let code = l.trim_start();
            if !code.starts_with("//") && bad(code) {
                out.push(format!("{}:{}: {}", f.name, i + 1, code));
            }
        }
    }
    out
}

fn check(rule: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{rule}:\n{}", found.join("\n"));
}

#[test]
fn every_file_says_what_it_is() {
    let bare: Vec<String> = tree()
        .into_iter()
        .filter(|f| !f.lines.iter().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with("//!")))
        .map(|f| f.name)
        .collect();
    check("files without a //! header", bare);
}

#[test]
fn replies_and_statuses_live_in_their_tables() {
    let status = regex::Regex::new(r#""[245]\.[0-9]{1,3}\.[0-9]{1,3}\b|"[2345][0-9][0-9][ -][A-Za-z0-9]"#).unwrap();
    let tables = ["inbound/replies.rs", "outbound/outcome.rs", "bounce/reason.rs", "feedback/phrases.rs"];
    check("SMTP reply or status literal outside the tables", offenders(&tables, |l| status.is_match(l)));
}

#[test]
fn sql_lives_in_the_store() {
    let sql = regex::Regex::new(r#"\b(SELECT .* FROM|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX))\b"#)
        .unwrap();
    check("SQL outside store/", offenders(&["store/"], |l| sql.is_match(l)));
}

#[test]
fn only_the_command_line_prints() {
    check(
        "print! outside cli/ and main.rs",
        offenders(&["cli/", "main.rs"], |l| l.contains("println!(") || l.contains("print!(")),
    );
}

#[test]
fn smtp_imports_nothing_of_the_crate() {
    let smtp: Vec<String> = offenders(&[], |l| l.contains("crate::") && !l.contains("crate::smtp"))
        .into_iter()
        .filter(|o| o.starts_with("smtp/"))
        .collect();
    check("smtp/ importing the rest of the crate", smtp);
}

#[test]
fn config_imports_no_stage() {
    let stage = regex::Regex::new(
        r"crate::(inbound|outbound|queue|bounce|feedback|accept|http|local|checklist|cli|daemon|store|control|metrics)\b",
    )
    .unwrap();
    let found: Vec<String> =
        offenders(&[], |l| stage.is_match(l)).into_iter().filter(|o| o.starts_with("config")).collect();
    check("config importing a stage", found);
}

/// Top-level modules import each other one way only (the mail flows down); the one pair
/// allowed both ways is bounce <-> feedback: feedback reads bounce's reason table, and bounce
/// decides hard/soft of our own outcomes with feedback's classifier (one decision everywhere).
#[test]
fn no_module_pair_imports_each_other() {
    let uses = regex::Regex::new(r"crate::(\w+)").unwrap();
    let mut arrows = std::collections::BTreeSet::new();
    for f in tree() {
        let top = f.name.split('/').next().unwrap_or("").trim_end_matches(".rs").to_string();
        for l in f.lines.iter().filter(|l| !l.trim_start().starts_with("//")) {
            for c in uses.captures_iter(l) {
                if c[1] != top {
                    arrows.insert((top.clone(), c[1].to_string()));
                }
            }
        }
    }
    let both: Vec<String> = arrows
        .iter()
        .filter(|(a, b)| a < b && arrows.contains(&(b.clone(), a.clone())))
        .filter(|(a, b)| (a.as_str(), b.as_str()) != ("bounce", "feedback"))
        .map(|(a, b)| format!("{a} <-> {b}"))
        .collect();
    check("module pairs importing each other", both);
}
