//! DKIM: signing outgoing mail with mail-auth, and making a key pair to publish.
//!
//! Standards: RFC 6376 (DKIM), RFC 8301 (rsa-sha256, 2048-bit keys). Signatures use
//! c=relaxed/simple: mail-auth 0.13.3 canonicalizes relaxed *bodies* wrongly when they end in
//! whitespace-only lines (see docs/ARCHITECTURE.md), simple body canonicalization is exact.
//! Mail is signed when its From domain is the `[dkim]` domain or a subdomain of it.
//! Must not: change the message other than prepending the DKIM-Signature header.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

use crate::smtp::message::{find_headers_end, header_value};

/// Headers covered by our signatures (From first, as RFC 6376 §5.4 requires); the two
/// unsubscribe fields too, as RFC 8058 §4 requires of one-click unsubscribe.
const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

pub struct Signer {
    domain: String,
    inner: DkimSigner<RsaKey<Sha256>, Done>,
}

impl Signer {
    /// Loads the PKCS#8 PEM private key at `key` for `selector._domainkey.domain`.
    pub fn load(domain: &str, selector: &str, key: &Path) -> Result<Signer> {
        let der = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading DKIM key {}", key.display()))?;
        let rsa =
            RsaKey::<Sha256>::from_key_der(der).map_err(|e| anyhow::anyhow!("DKIM key {}: {e}", key.display()))?;
        let inner = DkimSigner::from_key(rsa)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS)
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Simple);
        Ok(Signer { domain: domain.to_ascii_lowercase(), inner })
    }

    /// Whether a message's From domain is ours to sign for.
    pub fn covers(&self, message: &[u8]) -> bool {
        let headers = message.get(..find_headers_end(message)).unwrap_or(message);
        let Some(from) = header_value(headers, "from") else { return false };
        let address = from.rsplit('<').next().unwrap_or(&from).trim_end_matches(['>', ' ']);
        let Some((_, domain)) = address.rsplit_once('@') else { return false };
        let domain = domain.trim().to_ascii_lowercase();
        domain == self.domain || domain.ends_with(&format!(".{}", self.domain))
    }

    /// The DKIM-Signature header line(s) for `message`, CRLF-terminated.
    pub fn sign(&self, message: &[u8]) -> Result<String> {
        let signature = self.inner.sign(message).map_err(|e| anyhow::anyhow!("DKIM signing: {e}"))?;
        Ok(unfold_closing(signature.to_header()))
    }
}

/// mail-auth folds the line before the closing `;` when the b= value filled the last one
/// (`b=…\r\n\t;`). RFC 6376 §3.7 deletes the whitespace around b='s value before hashing, so
/// removing it changes nothing for the signature; but verifiers that keep it (dkimpy, found by
/// `bench/relay_big.sh`) hash different bytes and fail every such signature.
fn unfold_closing(header: String) -> String {
    match header.strip_suffix(";\r\n") {
        Some(tags) => format!("{};\r\n", tags.trim_end_matches([' ', '\t', '\r', '\n'])),
        None => header,
    }
}

/// A new 2048-bit RSA key: (PKCS#8 PEM private key, base64 of the public key for `p=`).
pub fn generate_key() -> Result<(String, String)> {
    use base64::Engine;
    use rcgen::PublicKeyData;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).context("generating an RSA key")?;
    // p= holds the DER SubjectPublicKeyInfo (the "MIIBIj..." form every DKIM verifier reads).
    let public = base64::engine::general_purpose::STANDARD.encode(key.subject_public_key_info());
    Ok((key.serialize_pem(), public))
}

/// The TXT record to publish at `selector._domainkey.domain`.
pub fn txt_record(public_b64: &str) -> String {
    format!("v=DKIM1; k=rsa; p={public_b64}")
}

/// Writes a new key to `path` (mode 0600); refuses to overwrite one.
pub fn write_new_key(path: &Path) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        bail!("{} exists; remove it first to make a new key", path.display());
    }
    let (pem, public) = generate_key()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(pem.as_bytes())?;
    f.sync_all()?;
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_only_its_domain_and_the_signature_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("dkim.key");
        let public = write_new_key(&key).unwrap();
        assert!(public.len() > 300, "a 2048-bit key");
        assert!(write_new_key(&key).is_err(), "never overwrite a key");
        let s = Signer::load("example.com", "mail", &key).unwrap();
        let msg = b"From: App <app@news.example.com>\r\nTo: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n";
        assert!(s.covers(msg));
        assert!(!s.covers(b"From: x@example.org\r\n\r\nbody\r\n"));
        assert!(!s.covers(b"From: x@notexample.com\r\n\r\nbody\r\n"));
        let h = s.sign(msg).unwrap();
        assert!(h.starts_with("DKIM-Signature: "));
        for tag in ["d=example.com", "s=mail", "c=relaxed/simple", "a=rsa-sha256"] {
            assert!(h.contains(tag), "{tag} missing in {h}");
        }
        // Whatever the lengths before it, the b= value ends right at the closing ";".
        for n in 0..40 {
            let msg = format!("From: a@example.com\r\nSubject: {}\r\n\r\nbody\r\n", "x".repeat(n));
            let h = s.sign(msg.as_bytes()).unwrap();
            assert!(h.ends_with(";\r\n") && !h.trim_end_matches(";\r\n").ends_with(char::is_whitespace), "{h:?}");
        }
    }

    #[test]
    fn the_fold_before_the_closing_semicolon_is_removed() {
        assert_eq!(unfold_closing("DKIM-Signature: a=1; b=QUJD\r\n\t;\r\n".into()), "DKIM-Signature: a=1; b=QUJD;\r\n");
        assert_eq!(unfold_closing("DKIM-Signature: a=1; b=QUJD;\r\n".into()), "DKIM-Signature: a=1; b=QUJD;\r\n");
    }
}
