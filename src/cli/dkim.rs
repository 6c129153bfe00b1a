//! `mailerd dkim keygen`: makes a DKIM key and prints the DNS record to publish.
//!
//! Must not: overwrite an existing key.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::Config;

pub fn keygen(config: &Config, domain: Option<String>, selector: String, out: Option<PathBuf>) -> Result<i32> {
    let domain =
        domain.or_else(|| config.dkim.as_ref().map(|d| d.domain.clone())).unwrap_or_else(|| config.hostname.clone());
    let path = out.unwrap_or_else(|| config.data_dir.join(format!("dkim-{selector}.key")));
    let public = crate::dkim::write_new_key(&path)?;
    let record = crate::dkim::txt_record(&public);
    outln!("# private key written to {} (mode 0600)", path.display())?;
    outln!("# publish this TXT record:")?;
    outln!("{selector}._domainkey.{domain}. IN TXT \"{record}\"")?;
    outln!("# and add to the configuration:")?;
    outln!("[dkim]\ndomain = \"{domain}\"\nselector = \"{selector}\"\nkey = \"{}\"", path.display())?;
    Ok(0)
}
