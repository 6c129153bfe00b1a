//! HTML building blocks of the dashboard: escaping, the page shell (navigation, the inline
//! stylesheet and script), CSRF-carrying POST forms, and the deliverability chart as inline SVG.
//!
//! Standards: HTML Living Standard (§13.1.2.6 escaping in text and attribute values), SVG 1.1.
//! Must not: put any text from a user, a remote server or the store into a page without
//! [`esc`]; load anything from another origin (pages are self-contained, no build step).

use std::fmt::Write as _;

/// Escapes text for HTML text and double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an optional value; an em dash for none.
pub fn opt(s: Option<&str>) -> String {
    s.map(esc).unwrap_or_else(|| "—".into())
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters stay).
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const CSS: &str = "
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;color:#1d2330;background:#f4f6f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}
header a{color:#cfd8e6;text-decoration:none}header a.on{color:#fff;font-weight:600}header b{margin-right:1em}
header form{margin-left:auto}main{padding:1.2em;max-width:1200px;margin:auto}
h1{font-size:1.4em;margin:.2em 0 .8em}h2{font-size:1.1em;margin:1.4em 0 .5em}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e7ee;vertical-align:top}
th{background:#eef1f6;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.8em}.card{background:#fff;border:1px solid #e3e7ee;border-radius:6px;padding:.7em 1em;min-width:9em}
.card b{display:block;font-size:1.5em}.muted{color:#6b7385}.err{color:#b3261e}.box{background:#fff;border:1px solid #e3e7ee;border-radius:6px;padding:1em;margin-bottom:1em}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;background:#e3e7ee}
.s-delivered,.v-genuine,.c-ok,.r-pass{background:#d5f0dc}.s-bounced,.s-expired,.v-forged,.c-fail,.r-fail{background:#f8d7d5}.s-deferred,.c-warn,.r-advice{background:#fbeccb}.s-queued,.c-info,.r-unknown{background:#dde8fb}
input,select,textarea,button{font:inherit;padding:.3em .5em}textarea{width:100%;font-family:ui-monospace,monospace;font-size:12px}
button{cursor:pointer;border:1px solid #9aa5b8;border-radius:4px;background:#fff}button.danger{border-color:#b3261e;color:#b3261e}
form.inline{display:inline}code,.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}code.reason{word-break:normal}
svg text{font:10px system-ui,sans-serif;fill:#6b7385}
";

const JS: &str = "
document.addEventListener('submit',function(e){var m=e.target.getAttribute('data-confirm');if(m&&!confirm(m))e.preventDefault();});
document.addEventListener('change',function(e){var t=e.target;if(t.type==='file'&&t.files&&t.files[0]){var r=new FileReader();
r.onload=function(){var a=document.getElementById(t.getAttribute('data-into'));if(a)a.value=r.result;};r.readAsText(t.files[0]);}});
";

/// The navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/dashboard/", "Overview"),
    ("/dashboard/queue", "Queue"),
    ("/dashboard/suppressions", "Suppressions"),
    ("/dashboard/accounts", "Paused accounts"),
    ("/dashboard/bounces", "Bounce explorer"),
    ("/dashboard/checklist", "Checklist"),
    ("/dashboard/readiness", "Bulk sender readiness"),
    ("/dashboard/2fa", "Two-factor"),
];

/// A whole page. `session` is (user, CSRF token) when logged in: then the navigation and the
/// logout button are shown. `body` must already be escaped HTML.
pub fn page(title: &str, active: &str, session: Option<(&str, &str)>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · mailerd</title><style>{CSS}</style></head><body><header><b>mailerd</b>",
        esc(title)
    );
    if let Some((user, csrf)) = session {
        for (path, label) in NAV {
            let class = if *path == active { " class=\"on\"" } else { "" };
            let _ = write!(out, "<a href=\"{path}\"{class}>{label}</a>");
        }
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/dashboard/logout\"><span class=\"muted\">{}</span> {}<button>Log out</button></form>",
            esc(user),
            csrf_field(csrf)
        );
    }
    let _ = write!(out, "</header><main>{body}</main><script>{JS}</script></body></html>");
    out
}

/// The hidden CSRF field every POST form carries.
pub fn csrf_field(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(token))
}

/// A one-button POST form (`confirm`: a question asked first).
pub fn button_form(action: &str, label: &str, csrf: &str, fields: &[(&str, &str)], confirm: Option<&str>) -> String {
    let mut out = format!("<form class=\"inline\" method=\"post\" action=\"{}\"", esc(action));
    if let Some(q) = confirm {
        let _ = write!(out, " data-confirm=\"{}\"", esc(q));
    }
    out.push('>');
    out.push_str(&csrf_field(csrf));
    for (name, value) in fields {
        let _ = write!(out, "<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(name), esc(value));
    }
    let class = if confirm.is_some() { " class=\"danger\"" } else { "" };
    let _ = write!(out, "<button{class}>{}</button></form>", esc(label));
    out
}

/// A state (or verdict, or check status) as a coloured badge.
pub fn badge(prefix: &str, word: &str) -> String {
    format!("<span class=\"badge {prefix}-{w}\">{w}</span>", w = esc(word))
}

/// One day of the chart: midnight UTC (ms), delivered, failed (bounced or expired).
pub struct Day {
    pub day: i64,
    pub delivered: u64,
    pub failed: u64,
}

/// Deliverability per day as an inline SVG bar chart: the bar's height is the day's rate
/// (delivered / (delivered + failed)), its colour goes from red to green, and its tooltip
/// gives the counts.
pub fn chart(days: &[Day]) -> String {
    if days.is_empty() {
        return "<p class=\"muted\">No delivery outcomes in this period yet.</p>".into();
    }
    let (w, h, left, bottom) = (760.0_f64, 180.0_f64, 34.0_f64, 20.0_f64);
    let plot = h - bottom - 6.0;
    let step = (w - left) / days.len() as f64;
    let bar = (step * 0.75).max(1.0);
    let mut out = format!(
        "<svg role=\"img\" aria-label=\"Deliverability rate per day\" viewBox=\"0 0 {w} {h}\" width=\"100%\" style=\"max-width:{w}px;background:#fff;border:1px solid #e3e7ee;border-radius:6px\">"
    );
    for pct in [0, 50, 100] {
        let y = 6.0 + plot * (1.0 - f64::from(pct) / 100.0);
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e7ee\"/><text x=\"2\" y=\"{:.1}\">{pct}%</text>",
            y + 3.0
        );
    }
    let label_every = (days.len() / 10).max(1);
    for (i, d) in days.iter().enumerate() {
        let total = d.delivered + d.failed;
        let rate = if total == 0 { 0.0 } else { d.delivered as f64 / total as f64 };
        let bh = (plot * rate).max(1.0);
        let x = left + step * i as f64 + (step - bar) / 2.0;
        let y = 6.0 + plot - bh;
        let fill = if total == 0 { "#e3e7ee".to_string() } else { format!("hsl({},55%,50%)", (rate * 120.0).round()) };
        let date = crate::time::Timestamp(d.day).iso8601();
        let date = date.get(..10).unwrap_or(&date);
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{fill}\"><title>{date}: {:.1}% ({} delivered, {} failed)</title></rect>",
            rate * 100.0,
            d.delivered,
            d.failed
        );
        if i % label_every == 0 {
            let _ = write!(out, "<text x=\"{x:.1}\" y=\"{:.1}\">{}</text>", h - 6.0, date.get(5..).unwrap_or(date));
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(url("a b/é@x"), "a%20b%2F%C3%A9%40x");
        let f = button_form("/x", "Go", "t\"k", &[("address", "<b>")], Some("Sure?"));
        assert!(f.contains("value=\"t&quot;k\"") && f.contains("value=\"&lt;b&gt;\""), "{f}");
    }

    #[test]
    fn chart_has_one_bar_per_day() {
        let days = [Day { day: 0, delivered: 9, failed: 1 }, Day { day: 86_400_000, delivered: 0, failed: 0 }];
        let svg = chart(&days);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("1970-01-01: 90.0% (9 delivered, 1 failed)"), "{svg}");
    }
}
