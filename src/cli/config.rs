//! `mailerd config check [--strict]`: the configuration in force, every default filled in and
//! secrets masked, then what in it will hurt (`checklist::config`), one line per check.
//!
//! Exit codes: 2 when the configuration does not load (the key and the problem are named;
//! `cli::run` says so before this runs), 1 when a check failed or, with `--strict`, warned,
//! else 0.
//! Must not: change anything (the store is opened only when it exists already).

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::Result;

use crate::checklist::Status;
use crate::config::Config;
use crate::time::Timestamp;

pub async fn check(config: &Config, path: Option<&Path>, strict: bool) -> Result<i32> {
    let source = path.map_or_else(|| "(no file: the defaults)".to_string(), |p| p.display().to_string());
    outln!("# effective configuration of {source}: every default filled in, secrets masked")?;
    outln!("{}", toml::to_string(&config.effective(true))?.trim_end())?;
    outln!("")?;
    // The checks that need the store read it only when it exists: checking never creates one.
    let store = if crate::store::is_postgres_url(&config.store_url) || config.sqlite_path().exists() {
        super::open_store(config).await.ok()
    } else {
        None
    };
    let report = crate::checklist::config::check(config, &source, store.as_deref(), Timestamp::now()).await;
    let mut out = std::io::stdout().lock();
    super::check::human(&mut out, &report, std::io::stdout().is_terminal())?;
    let worst = report.worst();
    Ok(if worst == Status::Fail || (strict && worst == Status::Warn) { 1 } else { 0 })
}
