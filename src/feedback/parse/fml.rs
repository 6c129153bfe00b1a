//! fml, the Japanese mailing-list server: its error notices to the list owner ("Loop Alert:
//! Duplicated Message-ID", "NOT MEMBER article from", "Security Alert") name the address
//! in angle brackets on the line that explains the refusal.
//!
//! Standards: none; fml 4's notice templates, recognised by its `X-MLServer: fml` header.
//! Must not: panic or classify (the words go to the phrase tables like any diagnostic); rows
//! are capped.

use super::{Doc, MAX_RECIPIENTS, Row, addresses_in, row_from_text};

/// True when an fml list server wrote `doc`.
pub fn wrote(doc: &Doc) -> bool {
    doc.header("x-mlserver").is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("fml"))
}

/// One row per line of the notice that names an address in angle brackets, with the line
/// (and the notice's subject, which names the error when the line does not) as diagnostic.
pub fn parse(doc: &Doc) -> Vec<Row> {
    if !wrote(doc) {
        return Vec::new();
    }
    let mut out: Vec<Row> = Vec::new();
    for line in doc.text.lines().take(200) {
        if !line.contains('<') {
            continue;
        }
        for a in addresses_in(line) {
            if out.len() >= MAX_RECIPIENTS || out.iter().any(|r| r.address == a) {
                continue;
            }
            out.push(row_from_text(a, &format!("{} {}", line.trim(), doc.subject)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::parse::read_doc;

    const NOTICE: &str = "From: tama-admin@lists.example.jp\r\nTo: tama-admin@lists.example.jp\r\n\
Subject: NOT MEMBER article from kuro@example.net (tama ML)\r\nX-MLServer: fml [fml 4.0.3 release]\r\n\
Message-Id: <202001011200.FMLAAB01234.tama@lists.example.jp>\r\n\r\n\
NOT MEMBER article from <kuro@example.net>, rejected by tama ML.\r\n\r\nOriginal mail as follows:\r\n\r\n\
   From: <kuro@example.net>\r\n   To: <tama@lists.example.jp>\r\n   Subject: hello\r\n";

    #[test]
    fn reads_the_address_of_the_notice_line() {
        let doc = read_doc(NOTICE.as_bytes()).expect("doc");
        let rows = parse(&doc);
        let [row] = rows.as_slice() else { panic!("one row: {rows:?}") };
        assert_eq!(row.address, "kuro@example.net");
        assert!(row.diagnostic.as_deref().is_some_and(|d| d.starts_with("NOT MEMBER article from")));
    }

    #[test]
    fn other_list_servers_are_not_read() {
        let doc = read_doc(NOTICE.replace("X-MLServer: fml", "X-Mailer: other").as_bytes()).expect("doc");
        assert!(parse(&doc).is_empty());
    }
}
