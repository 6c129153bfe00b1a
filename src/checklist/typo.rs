//! Typo suggestions for the domain of an address: `gmial.com` → `gmail.com`, `example.con` →
//! `example.com`.
//!
//! Two independent rules, both built to stay silent unless the correction is far more
//! plausible than the input:
//! 1. Suffix: when the top-level label is not in the public suffix list (the `psl` crate,
//!    compiled in), and it is one plausible keystroke away from one of a few very common TLDs
//!    (`.con`, `.cmo`, `.cpm`, `.nte`, `.ogr`), it is corrected. A suffix that exists (`.cm`
//!    Cameroon, `.co` Colombia, `.om` Oman, `.ne` Niger) is never "corrected" by this rule.
//! 2. Provider: a registrable domain that is not itself a known mailbox provider, with the
//!    same public suffix as a provider and a second-level label one plausible typing error
//!    from a provider label, is corrected to that provider. What is plausible depends on the
//!    length, since short labels are one edit from many real words: for labels of 5+
//!    characters, restricted Damerau-Levenshtein 1 (transposition, insertion, deletion, or a
//!    substitution by a neighbouring QWERTY key) or a vowel swap inside the label (one vowel,
//!    or a doubled one, replaced by another: `yihoo`, `hotmeil`, `outlaak`; never the first or
//!    last letter, so `globe` is not `globo`); a 4-letter label only as a 5-letter provider
//!    label missing a letter other than the first (`gmal`, `yaho`); a 3- or 4-letter provider
//!    label only with a letter doubled (`aoll`, `livee`). When several provider labels fit, the
//!    most popular wins (`POPULAR`, then the order of `PROVIDERS`): `hmail` is `gmail`, not
//!    `ymail`. A provider with a single domain (gmail.com, icloud.com…) also corrects a
//!    suffix one edit away (`gmail.cm`, `gmail.co`).
//!
//! Standards: the public suffix list (publicsuffix.org) for what a suffix is; domains are
//! compared as lower-case A-labels.
//! Must not: allocate per call beyond the suggestion string, look anything up on the network,
//! or suggest for a domain that is a known provider.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Mailbox providers typos are corrected to (a curated list; `tests/data/common-domains.txt`
/// is a separate, larger list the tests check for false suggestions).
#[rustfmt::skip]
pub const PROVIDERS: &[&str] = &[
    // Google, Microsoft, Yahoo, Apple, AOL and other global webmail
    "gmail.com", "googlemail.com", "hotmail.com", "outlook.com", "live.com", "msn.com", "passport.com", "yahoo.com",
    "ymail.com", "rocketmail.com", "icloud.com", "me.com", "mac.com", "aol.com", "aim.com", "protonmail.com",
    "protonmail.ch", "proton.me", "pm.me", "tutanota.com", "tutanota.de", "tuta.io", "tutamail.com", "zoho.com",
    "zohomail.com", "fastmail.com", "fastmail.fm", "hushmail.com", "mail.com", "email.com", "gmx.com", "gmx.net",
    "gmx.de", "gmx.at", "gmx.ch", "gmx.us", "gmx.fr", "gmx.co.uk", "web.de", "yandex.com", "yandex.ru", "mail.ru",
    "inbox.ru", "list.ru", "bk.ru", "rambler.ru", "hey.com", "mailbox.org", "posteo.de", "posteo.net", "comcast.net",
    "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "charter.net", "cox.net", "earthlink.net",
    "optonline.net", "juno.com", "netzero.net", "frontier.com", "windstream.net",
    // country variants of the big providers
    "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es", "hotmail.nl", "hotmail.be", "hotmail.ca",
    "hotmail.com.br", "hotmail.com.ar", "hotmail.com.mx", "hotmail.se", "hotmail.no", "hotmail.dk", "hotmail.fi",
    "hotmail.ch", "hotmail.gr", "hotmail.co.jp", "hotmail.com.au", "hotmail.co.nz", "hotmail.cl", "hotmail.co.za",
    "hotmail.com.tr", "hotmail.my", "hotmail.ru", "hotmail.at", "hotmail.cz", "hotmail.hu", "hotmail.sk",
    "hotmail.ie", "hotmail.co.in", "hotmail.co.th", "hotmail.com.tw", "hotmail.com.hk", "hotmail.sg", "hotmail.ph",
    "hotmail.com.vn", "hotmail.co.id", "hotmail.com.pe", "hotmail.com.co", "hotmail.pt", "hotmail.lu", "outlook.fr",
    "outlook.de", "outlook.it", "outlook.es", "outlook.co.uk", "outlook.com.br", "outlook.jp", "outlook.com.au",
    "outlook.be", "outlook.at", "outlook.ie", "outlook.pt", "outlook.sk", "outlook.cz", "outlook.dk",
    "outlook.com.ar", "outlook.cl", "outlook.com.gr", "outlook.com.tr", "outlook.co.nz", "outlook.in", "outlook.kr",
    "outlook.ph", "outlook.sg", "outlook.my", "outlook.co.id", "outlook.co.th", "outlook.com.vn", "outlook.hu",
    "outlook.lv", "outlook.sa", "outlook.ie", "outlook.co.il", "outlook.com.pe", "outlook.com.mx", "live.co.uk",
    "live.fr", "live.de", "live.it", "live.nl", "live.be", "live.ca", "live.com.au", "live.com.mx", "live.com.ar",
    "live.se", "live.no", "live.dk", "live.cl", "live.ie", "live.at", "live.jp", "live.cn", "live.ru", "live.com.pt",
    "live.co.za", "live.in", "live.hk", "live.com.sg", "live.com.my", "msn.co.uk", "yahoo.co.uk", "yahoo.fr",
    "yahoo.de", "yahoo.it", "yahoo.es", "yahoo.ca", "yahoo.com.br", "yahoo.com.ar", "yahoo.com.mx", "yahoo.co.jp",
    "yahoo.co.in", "yahoo.in", "yahoo.com.au", "yahoo.co.nz", "yahoo.com.sg", "yahoo.com.hk", "yahoo.com.tw",
    "yahoo.co.id", "yahoo.com.ph", "yahoo.com.vn", "yahoo.co.th", "yahoo.com.my", "yahoo.ie", "yahoo.se", "yahoo.no",
    "yahoo.dk", "yahoo.fi", "yahoo.gr", "yahoo.pl", "yahoo.ro", "yahoo.at", "yahoo.be", "yahoo.ch", "yahoo.nl",
    "yahoo.pt", "yahoo.cl", "yahoo.com.co", "yahoo.com.pe", "yahoo.com.tr", "yahoo.co.za", "yahoo.co.kr", "yahoo.cn",
    "yahoo.com.cn", "yahoo.ru", "yahoo.cz", "yahoo.hu", "ymail.co.uk", "rocketmail.co.uk", "aol.co.uk", "aol.fr",
    "aol.de", "aol.it", "aol.nl", "aol.ca", "yandex.by", "yandex.kz", "yandex.ua", "yandex.com.tr", "ya.ru",
    // European ISPs and webmail
    "t-online.de", "freenet.de", "arcor.de", "online.de", "vodafone.de", "kabelmail.de", "mail.de", "email.de",
    "gmx.it", "gmx.es", "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "laposte.net", "neuf.fr", "bbox.fr",
    "numericable.fr", "libero.it", "virgilio.it", "tiscali.it", "alice.it", "tin.it", "fastwebnet.it", "email.it",
    "btinternet.com", "sky.com", "virginmedia.com", "ntlworld.com", "blueyonder.co.uk", "talktalk.net",
    "btopenworld.com", "tiscali.co.uk", "telenet.be", "skynet.be", "proximus.be", "ziggo.nl", "kpnmail.nl",
    "xs4all.nl", "planet.nl", "home.nl", "hetnet.nl", "bluewin.ch", "hispeed.ch", "sunrise.ch", "telia.com",
    "comhem.se", "bredband.net", "online.no", "telenor.no", "wp.pl", "o2.pl", "onet.pl", "interia.pl", "op.pl",
    "seznam.cz", "centrum.cz", "email.cz", "post.cz", "azet.sk", "centrum.sk", "freemail.hu", "citromail.hu",
    "abv.bg", "ukr.net", "i.ua", "meta.ua", "terra.es", "telefonica.net", "movistar.es", "sapo.pt", "netcabo.pt",
    "otenet.gr", "eircom.net", "a1.net", "chello.at", "aon.at",
    // Americas, Asia, Oceania
    "rogers.com", "shaw.ca", "sympatico.ca", "videotron.ca", "telus.net", "bell.net", "uol.com.br", "bol.com.br",
    "terra.com.br", "ig.com.br", "globo.com", "prodigy.net.mx", "bigpond.com", "bigpond.net.au", "optusnet.com.au",
    "iinet.net.au", "tpg.com.au", "xtra.co.nz", "qq.com", "163.com", "126.com", "sina.com", "sina.cn", "sohu.com",
    "yeah.net", "foxmail.com", "aliyun.com", "naver.com", "daum.net", "hanmail.net", "nate.com", "docomo.ne.jp",
    "ezweb.ne.jp", "softbank.ne.jp", "i.softbank.jp", "rediffmail.com", "rakuten.jp", "nifty.com", "biglobe.ne.jp",
    "mail.ee", "inbox.lv", "inbox.lt",
];

/// Provider labels by popularity, most used first: when a typo is one error from several
/// provider labels of its suffix, the first one here wins. Labels not listed rank after these,
/// in the order of `PROVIDERS`.
const POPULAR: &[&str] = &[
    "gmail", "yahoo", "outlook", "hotmail", "live", "icloud", "aol", "gmx", "yandex", "mail", "qq", "163", "orange",
    "web", "comcast",
];

/// Very common TLDs a mistyped unknown TLD is corrected to, most common first.
const COMMON_TLDS: &[&str] = &["com", "net", "org", "edu", "de", "uk", "fr", "it", "nl", "ru", "info", "gov"];

struct Index {
    /// Every provider domain (exact matches never get a suggestion).
    known: std::collections::HashSet<&'static str>,
    /// Public suffix → provider labels with that suffix, most popular first.
    by_suffix: HashMap<&'static str, Vec<&'static str>>,
    /// Provider label → its suffixes.
    by_label: HashMap<&'static str, Vec<&'static str>>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut idx = Index { known: Default::default(), by_suffix: HashMap::new(), by_label: HashMap::new() };
        let mut rank: HashMap<&'static str, usize> = POPULAR.iter().enumerate().map(|(i, &label)| (label, i)).collect();
        for &d in PROVIDERS {
            idx.known.insert(d);
            if let Some((label, suffix)) = split_registrable(d) {
                let labels = idx.by_suffix.entry(suffix).or_default();
                if !labels.contains(&label) {
                    labels.push(label);
                }
                let suffixes = idx.by_label.entry(label).or_default();
                if !suffixes.contains(&suffix) {
                    suffixes.push(suffix);
                }
                let next = POPULAR.len() + rank.len();
                rank.entry(label).or_insert(next);
            }
        }
        for labels in idx.by_suffix.values_mut() {
            labels.sort_by_key(|label| rank.get(label).copied().unwrap_or(usize::MAX));
        }
        idx
    })
}

/// Splits a registrable domain into (second-level label, public suffix); None when `domain`
/// has more labels than that (a subdomain) or no known suffix.
fn split_registrable(domain: &str) -> Option<(&str, &str)> {
    let suffix = psl::suffix(domain.as_bytes())?;
    let suffix = std::str::from_utf8(suffix.as_bytes()).ok()?;
    let label = domain.strip_suffix(suffix)?.strip_suffix('.')?;
    if label.is_empty() || label.contains('.') {
        return None;
    }
    Some((label, suffix))
}

/// Whether the public suffix list knows the top-level label of `domain`.
pub fn tld_is_known(domain: &str) -> bool {
    let tld = domain.rsplit('.').next().unwrap_or(domain);
    psl::suffix(tld.as_bytes()).is_some_and(|s| s.is_known())
}

/// The domain the user most likely meant, when that is far more plausible than `domain`
/// (a lower-case A-label domain without trailing dot). None when there is nothing to say.
pub fn suggest_domain(domain: &str) -> Option<String> {
    if domain.is_empty() || domain.len() > 255 || domain.starts_with('[') || !domain.is_ascii() {
        return None;
    }
    let idx = index();
    if idx.known.contains(domain) {
        return None;
    }
    // Rule 1: a top-level label that does not exist.
    let (fixed_tld, candidate) = match domain.rsplit_once('.') {
        Some((rest, tld)) if !tld_is_known(domain) => {
            let better = best_tld(tld)?;
            (true, format!("{rest}.{better}"))
        }
        Some(_) => (false, domain.to_string()),
        None => return None,
    };
    // Rule 2: a mistyped provider (checked on the corrected suffix too).
    if let Some(p) = provider_for(&candidate, idx) {
        return Some(p);
    }
    fixed_tld.then_some(candidate)
}

/// The common TLD one plausible edit away from `tld`, unique by popularity order.
fn best_tld(tld: &str) -> Option<&'static str> {
    let t = tld.as_bytes();
    // Digit or letter typed for a neighbour: c0m, cim.
    COMMON_TLDS.iter().copied().find(|c| plausible_edit(t, c.as_bytes()))
}

fn provider_for(domain: &str, idx: &Index) -> Option<String> {
    if idx.known.contains(domain) {
        return None;
    }
    let (label, suffix) = split_registrable(domain)?;
    // Same suffix, label one plausible typing error from a provider label; the labels are in
    // popularity order, so the first that fits is the most likely.
    if let Some(labels) = idx.by_suffix.get(suffix)
        && let Some(p) = labels.iter().find(|p| label_typo(label.as_bytes(), p.as_bytes()))
    {
        return Some(format!("{p}.{suffix}"));
    }
    // Provider label with a suffix one edit away, when the provider has a single domain.
    if let Some(suffixes) = idx.by_label.get(label)
        && let [only] = suffixes.as_slice()
        && label.len() >= 5
        && plausible_edit(suffix.as_bytes(), only.as_bytes())
    {
        return Some(format!("{label}.{only}"));
    }
    None
}

/// QWERTY rows, for "a neighbouring key" substitutions.
const ROWS: [&[u8]; 4] = [b"1234567890", b"qwertyuiop", b"asdfghjkl", b"zxcvbnm"];

fn key_pos(c: u8) -> Option<(i32, i32)> {
    for (r, row) in ROWS.iter().enumerate() {
        if let Some(col) = row.iter().position(|&k| k == c) {
            return Some((r as i32, col as i32));
        }
    }
    None
}

/// Whether two keys are neighbours on a QWERTY keyboard (rows are staggered by half a key).
fn adjacent(a: u8, b: u8) -> bool {
    match (key_pos(a), key_pos(b)) {
        (Some((ra, ca)), Some((rb, cb))) => {
            let dr = ra - rb;
            match dr {
                0 => (ca - cb).abs() == 1,
                // The lower row sits half a key right: its key c touches c and c+1 above.
                1 => cb == ca || cb == ca + 1,
                -1 => ca == cb || ca == cb + 1,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether the second-level label `typed` is one plausible typing error from the provider
/// label `meant`, with a stricter notion of plausible for short labels (see the module header).
fn label_typo(typed: &[u8], meant: &[u8]) -> bool {
    match (typed.len(), meant.len()) {
        (t, m) if t >= 5 && m >= 5 => plausible_edit(typed, meant) || vowel_swap(typed, meant),
        (4, 5) => omission(typed, meant),
        (t, m @ 3..=4) if t == m + 1 => doubling(typed, meant),
        _ => false,
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// `typed` is `meant` with one letter left out, not the first.
fn omission(typed: &[u8], meant: &[u8]) -> bool {
    let pre = common_prefix(typed, meant);
    meant.len() == typed.len() + 1 && pre > 0 && typed.get(pre..) == meant.get(pre + 1..)
}

/// `typed` is `meant` with one letter typed twice.
fn doubling(typed: &[u8], meant: &[u8]) -> bool {
    let pre = common_prefix(typed, meant);
    typed.len() == meant.len() + 1
        && pre > 0
        && typed.get(pre) == typed.get(pre - 1)
        && typed.get(pre + 1..) == meant.get(pre..)
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// `typed` is `meant` with one vowel, or a doubled vowel, replaced by another vowel, neither
/// the first nor the last letter: `yihoo`, `hotmeil`, `outlaak`.
fn vowel_swap(typed: &[u8], meant: &[u8]) -> bool {
    if typed.len() != meant.len() || typed.len() < 3 {
        return false;
    }
    let pre = common_prefix(typed, meant);
    let suf = common_prefix_rev(typed, meant);
    if pre == 0 || suf == 0 || pre + suf >= typed.len() {
        return false;
    }
    let t = typed.get(pre..typed.len() - suf).unwrap_or(&[]);
    let m = meant.get(pre..meant.len() - suf).unwrap_or(&[]);
    let (Some(&a), Some(&b)) = (t.first(), m.first()) else { return false };
    t.len() <= 2 && is_vowel(a) && is_vowel(b) && t.iter().all(|&c| c == a) && m.iter().all(|&c| c == b)
}

fn common_prefix_rev(a: &[u8], b: &[u8]) -> usize {
    a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count()
}

/// True when `typed` is exactly one plausible typing error away from `meant`: an adjacent
/// transposition, a missing character, an extra character, or a neighbouring-key substitution.
/// (Restricted Damerau-Levenshtein distance 1, with substitutions limited to neighbours.)
pub fn plausible_edit(typed: &[u8], meant: &[u8]) -> bool {
    if typed == meant {
        return false;
    }
    let (lt, lm) = (typed.len(), meant.len());
    // Common prefix and suffix; what is left is the edit.
    let pre = typed.iter().zip(meant).take_while(|(a, b)| a == b).count();
    let max_suf = lt.min(lm) - pre;
    let suf = typed.iter().rev().zip(meant.iter().rev()).take(max_suf).take_while(|(a, b)| a == b).count();
    let t = typed.get(pre..lt - suf).unwrap_or(&[]);
    let m = meant.get(pre..lm - suf).unwrap_or(&[]);
    match (t.len(), m.len()) {
        (1, 0) | (0, 1) => true,
        (1, 1) => t.first().zip(m.first()).is_some_and(|(&a, &b)| adjacent(a, b)),
        (2, 2) => t.first() == m.get(1) && t.get(1) == m.first(),
        _ => false,
    }
}

/// Restricted Damerau-Levenshtein (optimal string alignment) distance, for reports and tests.
pub fn damerau_levenshtein(a: &[u8], b: &[u8]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut prev2 = vec![0usize; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    for i in 1..=n {
        cur[0] = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &str) -> Option<String> {
        suggest_domain(d)
    }

    #[test]
    fn the_classic_typos_are_corrected() {
        assert_eq!(s("gmial.com").as_deref(), Some("gmail.com"));
        assert_eq!(s("hotmial.com").as_deref(), Some("hotmail.com"));
        assert_eq!(s("yahooo.com").as_deref(), Some("yahoo.com"));
        assert_eq!(s("outlok.com").as_deref(), Some("outlook.com"));
        assert_eq!(s("example.con").as_deref(), Some("example.com"));
        assert_eq!(s("x.cmo").as_deref(), Some("x.com"));
        assert_eq!(s("gmail.con").as_deref(), Some("gmail.com"));
        assert_eq!(s("gmial.con").as_deref(), Some("gmail.com"));
        assert_eq!(s("gmaik.com").as_deref(), Some("gmail.com"));
        assert_eq!(s("gmail.co").as_deref(), Some("gmail.com"));
        assert_eq!(s("gmail.cm").as_deref(), Some("gmail.com"));
        assert_eq!(s("hotmail.co.uj").as_deref(), Some("hotmail.co.uk"));
        assert_eq!(s("example.nte").as_deref(), Some("example.net"));
        assert_eq!(s("example.ogr").as_deref(), Some("example.org"));
        assert_eq!(s("yahoo.co.ukk").as_deref(), Some("yahoo.co.uk"));
    }

    #[test]
    fn existing_suffixes_and_real_domains_are_left_alone() {
        for d in [
            "gmail.com",
            "x.cm",
            "x.co",
            "x.om",
            "example.com",
            "mail.com",
            "email.com",
            "ymail.com",
            "hotmail.co",
            "yahoo.co",
            "mail.gmial.com",
            "web.de",
            "wep.de",
            "aol.com",
            "aok.com",
            "live.com",
            "love.com",
            "gmx.net",
            "example.org",
            "[127.0.0.1]",
            "",
            "com",
            "x",
            "email.cz",
            "yahoo.co.id",
        ] {
            assert_eq!(s(d), None, "{d}");
        }
    }

    #[test]
    fn short_labels_and_vowel_swaps() {
        for (typo, meant) in [
            ("gmal.com", "gmail.com"),
            ("gmai.com", "gmail.com"),
            ("yaho.com", "yahoo.com"),
            ("yaho.co.uk", "yahoo.co.uk"),
            ("gmal.con", "gmail.com"),
            ("aoll.com", "aol.com"),
            ("aaol.com", "aol.com"),
            ("gmxx.de", "gmx.de"),
            ("livee.com", "live.com"),
            ("ggmail.com", "gmail.com"),
            ("gmaail.com", "gmail.com"),
            ("yihoo.com", "yahoo.com"),
            ("hotmeil.com", "hotmail.com"),
            ("outlaak.com", "outlook.com"),
            ("yandax.ru", "yandex.ru"),
        ] {
            assert_eq!(s(typo).as_deref(), Some(meant), "{typo}");
        }
    }

    #[test]
    fn short_labels_and_vowels_that_are_words_are_left_alone() {
        for d in [
            "love.com",  // live.com: 4 letters, a substitution
            "lobo.com",  // globo.com without its first letter
            "mail.it",   // email.it without its first letter
            "mail.cz",   // email.cz without its first letter
            "globe.com", // globo.com: the last letter
            "libera.it", // libero.it: the last letter
            "soho.com",  // sohu.com: 4 letters, a vowel
            "note.com",  // nate.com: 4 letters, a vowel
            "aim.com",   // a provider one edit from aol.com
            "ao.com",    // too short
        ] {
            assert_eq!(s(d), None, "{d}");
        }
    }

    #[test]
    fn the_most_popular_provider_wins() {
        // hmail and tmail are one neighbouring key from both gmail and ymail.
        assert_eq!(s("hmail.com").as_deref(), Some("gmail.com"));
        assert_eq!(s("tmail.com").as_deref(), Some("gmail.com"));
        // tonline is t-online without its hyphen and online with a t.
        assert_eq!(s("tonline.de").as_deref(), Some("t-online.de"));
    }

    #[test]
    fn short_label_rules() {
        assert!(omission(b"gmal", b"gmail"));
        assert!(!omission(b"mail", b"gmail"), "not the first letter");
        assert!(doubling(b"aoll", b"aol"));
        assert!(doubling(b"aaol", b"aol"));
        assert!(!doubling(b"aoxl", b"aol"));
        assert!(!doubling(b"aolx", b"aol"));
        assert!(vowel_swap(b"outlaak", b"outlook"));
        assert!(vowel_swap(b"yihoo", b"yahoo"));
        assert!(!vowel_swap(b"outlaek", b"outlook"), "two different vowels");
        assert!(!vowel_swap(b"globe", b"globo"), "the last letter");
        assert!(!vowel_swap(b"imail", b"email"), "the first letter");
        assert!(!vowel_swap(b"gmxil", b"gmail"));
    }

    #[test]
    fn keyboard_neighbours() {
        assert!(adjacent(b'k', b'l'));
        assert!(adjacent(b'g', b't'));
        assert!(adjacent(b'g', b'y'));
        assert!(adjacent(b'b', b'g'));
        assert!(!adjacent(b'e', b'g'));
        assert!(adjacent(b'o', b'0'));
        assert!(!adjacent(b'a', b'l'));
    }

    #[test]
    fn edit_distance() {
        assert_eq!(damerau_levenshtein(b"gmial", b"gmail"), 1);
        assert_eq!(damerau_levenshtein(b"kitten", b"sitting"), 3);
        assert_eq!(damerau_levenshtein(b"", b"abc"), 3);
        for (a, b) in [("gmial", "gmail"), ("yahooo", "yahoo"), ("outlok", "outlook"), ("gmaik", "gmail")] {
            assert!(plausible_edit(a.as_bytes(), b.as_bytes()), "{a} {b}");
            assert_eq!(damerau_levenshtein(a.as_bytes(), b.as_bytes()), 1);
        }
        assert!(!plausible_edit(b"email", b"gmail"), "e and g are not neighbours");
        assert!(!plausible_edit(b"gmail", b"gmail"));
        assert!(!plausible_edit(b"gmxil", b"gmail") || adjacent(b'x', b'a'));
    }
}
