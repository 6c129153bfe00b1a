//! xtext encoding for DSN parameters (ENVID, ORCPT).
//!
//! Standards: RFC 3461 §4 (xtext).
//! Must not: accept malformed hex escapes silently; decoding returns None instead.

/// Decodes `+XX` hex escapes; None on a bad escape or a character outside xtext.
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                let hex = text.get(i + 1..i + 3)?;
                if !hex.bytes().all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(&h)) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'!'..=b'~' if b != b'=' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes text as xtext: `+`, `=`, controls and non-ASCII become `+XX`.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        assert_eq!(super::decode("rfc822;a+2Bb@x").as_deref(), Some("rfc822;a+b@x"));
        assert_eq!(super::encode("a+b=c"), "a+2Bb+3Dc");
        assert_eq!(super::decode("bad+2"), None);
        assert_eq!(super::decode("bad+zz"), None);
        assert_eq!(super::decode("sp ace"), None);
    }
}
