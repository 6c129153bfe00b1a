//! The second factor of a login: TOTP codes (HMAC-SHA1, 6 digits, 30-second steps, one step
//! of clock skew either way: what every authenticator app reads from an otpauth URI), the
//! otpauth URI and its QR code as inline SVG for enrolment, and recovery codes.
//!
//! Standards: RFC 6238 (TOTP), RFC 4226 (HOTP, its truncation), Google Authenticator's Key
//! Uri Format (`otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…`), ISO/IEC 18004 (QR code).
//! Must not: read the clock (callers pass the time), touch the store, or accept a code
//! without telling the caller its time step (a code counts once: the store records the step).

use totp_rs::{Algorithm, Builder, Totp};

use crate::inbound::password::SecretKind;
use crate::store::TotpSecret;

/// Bytes of a new secret: 160 bits, HMAC-SHA1's block-size recommendation (RFC 4226 §4).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Seconds per code.
pub const STEP: u64 = 30;
/// The name authenticator apps show above the account.
pub const ISSUER: &str = "mailerd";

/// What a typed second factor turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A TOTP code of this time step (the caller still records the step, refusing a replay).
    Totp(u64),
    /// Something shaped like a recovery code: the hash to look up and use.
    Recovery(String),
    /// Neither a right TOTP code nor a recovery code.
    Wrong,
}

fn totp(secret: &TotpSecret, algorithm: Algorithm, digits: u8, account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(STEP)
        .with_skew(1)
        .with_secret(secret.0.clone())
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .ok()
}

/// A new random secret; None without randomness.
pub fn new_secret() -> Option<TotpSecret> {
    let mut b = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut b).ok()?;
    Some(TotpSecret(b))
}

/// The secret as authenticator apps take it typed in: RFC 4648 base32 without padding.
pub fn base32(secret: &TotpSecret) -> String {
    totp_rs::Secret::from(secret.0.clone()).to_base32()
}

/// The otpauth URI of `account`'s secret (None for an account name with a `:`, which the
/// format cannot carry; addresses may not have one unquoted).
pub fn otpauth_uri(secret: &TotpSecret, account: &str) -> Option<String> {
    totp(secret, Algorithm::SHA1, 6, account)?.to_url().ok()
}

/// The QR code of `text` as an SVG element to embed in a page (no XML declaration).
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(220, 220).quiet_zone(true).build();
    Some(svg.split_once("?>").map_or(svg.clone(), |(_, rest)| rest.to_string()))
}

/// The QR code of `text` for a terminal (two rows per character).
pub fn qr_text(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build())
}

/// Reads a typed second factor for `secret` at `unix_secs`: a 6-digit code of the current
/// step or one step either side, else a recovery code's shape, else wrong. Spaces are ignored.
pub fn check(secret: &TotpSecret, typed: &str, unix_secs: u64) -> Code {
    let compact: String = typed.chars().filter(|c| !c.is_whitespace()).take(64).collect();
    if compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()) {
        return match totp(secret, Algorithm::SHA1, 6, "x").and_then(|t| t.check(&compact, unix_secs)) {
            Some(step) => Code::Totp(step),
            None => Code::Wrong,
        };
    }
    match SecretKind::RecoveryCode.hash(&compact) {
        Some(hash) => Code::Recovery(hash),
        None => Code::Wrong,
    }
}

/// New recovery codes: the codes to show once, and their hashes to store.
pub fn recovery_codes() -> Option<(Vec<String>, Vec<String>)> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let code = SecretKind::RecoveryCode.generate()?;
        hashes.push(SecretKind::RecoveryCode.hash(&code)?);
        codes.push(code);
    }
    Some((codes, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the seeds and the 8-digit codes at each time, per algorithm.
    #[test]
    fn rfc_6238_test_vectors() {
        let sha1 = TotpSecret(b"12345678901234567890".to_vec());
        let sha256 = TotpSecret(b"12345678901234567890123456789012".to_vec());
        let sha512 = TotpSecret(b"1234567890123456789012345678901234567890123456789012345678901234".to_vec());
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in vectors {
            for (secret, alg, want) in
                [(&sha1, Algorithm::SHA1, c1), (&sha256, Algorithm::SHA256, c256), (&sha512, Algorithm::SHA512, c512)]
            {
                let got = totp(secret, alg, 8, "rfc").unwrap().generate(t).to_string();
                assert_eq!(got, want, "T={t} {alg:?}");
            }
        }
    }

    #[test]
    fn codes_count_within_one_step_either_way_and_say_their_step() {
        let s = TotpSecret(b"12345678901234567890".to_vec());
        let code_at = |t: u64| totp(&s, Algorithm::SHA1, 6, "x").unwrap().generate(t).to_string();
        // RFC 6238's 8-digit 94287082 at T=59 is 287082 with 6 digits (the low digits).
        assert_eq!(code_at(59), "287082");
        let now = 1_111_111_111;
        let step = now / STEP;
        assert_eq!(check(&s, &code_at(now), now), Code::Totp(step));
        assert_eq!(check(&s, &code_at(now - STEP), now), Code::Totp(step - 1));
        assert_eq!(check(&s, &code_at(now + STEP), now), Code::Totp(step + 1));
        assert_eq!(check(&s, &code_at(now - 2 * STEP), now), Code::Wrong);
        let spaced = format!("{} {}", &code_at(now)[..3], &code_at(now)[3..]);
        assert_eq!(check(&s, &spaced, now), Code::Totp(step));
        for bad in ["", "12345", "1234567", "abcdef", "+12345", &"9".repeat(10_000)] {
            assert_eq!(check(&s, bad, now), Code::Wrong, "{bad:.20}");
        }
    }

    #[test]
    fn enrolment_material() {
        let s = new_secret().unwrap();
        assert_eq!(s.0.len(), SECRET_BYTES);
        assert_ne!(new_secret().unwrap(), s);
        let uri = otpauth_uri(&s, "admin@local.test").unwrap();
        assert_eq!(uri, format!("otpauth://totp/mailerd:admin%40local.test?secret={}&issuer=mailerd", base32(&s)));
        assert_eq!(base32(&s).len(), 32);
        assert!(otpauth_uri(&s, "a:b@x.test").is_none());
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{:.60}", svg);
        assert!(qr_text(&uri).unwrap().lines().count() > 10);
        let (codes, hashes) = recovery_codes().unwrap();
        assert_eq!((codes.len(), hashes.len()), (RECOVERY_CODES, RECOVERY_CODES));
        assert_eq!(check(&s, &codes[0], 0), Code::Recovery(hashes[0].clone()));
        assert_eq!(check(&s, &codes[3].to_uppercase(), 0), Code::Recovery(hashes[3].clone()));
    }
}
