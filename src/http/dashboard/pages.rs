//! The dashboard's pages: each handler asks the store (or the checklist, the bounce parser and
//! the verifier) and hands plain values to a `render_*` function that returns the page. The
//! render functions are pure, so the benchmark can time them with the store queries.
//!
//! Pages: overview (counts, deliverability per day, bounces by reason with the reason table's
//! advice, failing domains), queue (filter by state and domain; retry, delete), a message's
//! journey (every event with the remote reply), suppressions (search, remove), paused accounts
//! (why: the breaker's rate or the compromised-account detector's signal; resume), bounce explorer
//! (`feedback::parse_bounce` + the forged-bounce verdict), and the delivery checklist.
//! Every POST handler takes `dashboard::Posted` (the admin, the form, the CSRF check).
//! Must not: render text without `html::esc`, change anything on a GET, or accept a POST
//! without the session's CSRF token.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::html::{self, Day, badge, button_form, esc, opt, url};
use super::{Admin, Posted, error_page, html_response};
use crate::bounce::reason::Reason;
use crate::checklist::{CheckReport, address, message, requirements};
use crate::feedback::verify::Verification;
use crate::feedback::{BounceReport, ReportKind};
use crate::http::AppState;
use crate::store::{
    AccountPause, DeliveryOverview, MessageDetail, MessageId, QueueFilter, QueueRow, RecipientState, StoreError,
    Suppression,
};
use crate::time::Timestamp;

/// Days the overview's chart covers.
pub const CHART_DAYS: i64 = 30;
/// Rows on the queue and suppression pages.
pub const PAGE_ROWS: usize = 200;
const DAY_MS: i64 = 86_400_000;

fn session(admin: &Admin) -> Option<(&str, &str)> {
    Some((admin.user.as_str(), admin.csrf.as_str()))
}

fn store_error(admin: &Admin, e: StoreError) -> Response {
    tracing::warn!(error = %e, "dashboard: store query failed");
    error_page(StatusCode::SERVICE_UNAVAILABLE, Some(admin), &format!("The store could not answer: {e}"))
}

fn ok(body: String) -> Response {
    html_response(StatusCode::OK, body)
}

fn when(t: Timestamp) -> String {
    let s = t.iso8601();
    esc(s.get(..19).unwrap_or(&s)).replace('T', " ")
}

fn pct(n: u64, d: u64) -> String {
    if d == 0 { "—".into() } else { format!("{:.1}%", n as f64 * 100.0 / d as f64) }
}

/// A complaint rate: two decimals, as the providers' 0.1% and 0.3% need.
fn complaint_pct(n: u64, d: u64) -> String {
    if d == 0 { "—".into() } else { format!("{:.2}%", n as f64 * 100.0 / d as f64) }
}

// ---------------------------------------------------------------- overview

/// The overview's figures, folded from the store's aggregates.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: u64,
    pub queued: u64,
    pub deferred: u64,
    pub delivered: u64,
    pub hard: u64,
    pub soft: u64,
    /// Bounced and expired recipients by reason: (count, hard).
    pub reasons: BTreeMap<Reason, (u64, u64)>,
}

/// Hard or soft for a bounced recipient's last status (expired recipients are soft).
fn classify(state: RecipientState, status: Option<&str>) -> (Reason, bool) {
    if state == RecipientState::Expired {
        return (Reason::Expired, false);
    }
    // The running counts keep the status only, so the words cannot weigh in here.
    let verdict = crate::feedback::classify::of_outcome(status, None, None);
    (verdict.reason, verdict.hard_bounce.unwrap_or(false))
}

pub fn summarize(o: &DeliveryOverview) -> Summary {
    let mut s = Summary::default();
    for row in &o.by_state_status {
        s.total += row.count;
        match row.state {
            // Held mail is queued mail that waits for an operator (`mailerd queue release`).
            RecipientState::Queued | RecipientState::Held => s.queued += row.count,
            RecipientState::Deferred => s.deferred += row.count,
            RecipientState::Delivered => s.delivered += row.count,
            RecipientState::Bounced | RecipientState::Expired => {
                let (reason, hard) = classify(row.state, row.status.as_deref());
                let e = s.reasons.entry(reason).or_default();
                e.0 += row.count;
                if hard {
                    e.1 += row.count;
                    s.hard += row.count;
                } else {
                    s.soft += row.count;
                }
            }
        }
    }
    s
}

/// The chart's days from `since` to `now`, empty days included.
fn days(o: &DeliveryOverview, since: Timestamp, now: Timestamp) -> Vec<Day> {
    let first = since.millis().div_euclid(DAY_MS);
    let last = now.millis().div_euclid(DAY_MS);
    let mut out: Vec<Day> = (first..=last).map(|d| Day { day: d * DAY_MS, delivered: 0, failed: 0 }).collect();
    for d in &o.daily {
        let i = d.day.millis().div_euclid(DAY_MS) - first;
        if let Some(day) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            match d.state {
                RecipientState::Delivered => day.delivered += d.count,
                _ => day.failed += d.count,
            }
        }
    }
    out
}

/// The start of the chart's period.
pub fn chart_since(now: Timestamp) -> Timestamp {
    Timestamp((now.millis().div_euclid(DAY_MS) - (CHART_DAYS - 1)) * DAY_MS)
}

pub fn render_overview(admin: &Admin, o: &DeliveryOverview, now: Timestamp) -> String {
    let s = summarize(o);
    let finished = s.delivered + s.hard + s.soft;
    let mut b = String::from("<h1>Overview</h1>");
    if admin.password_due {
        b.push_str(
            "<p class=\"err\" id=\"password-due\">Your password is older than the configured maximum age \
             (<code>login.password_max_age</code>): change it with <code>mailerd user passwd ADDRESS</code>.</p>",
        );
    }
    // Complaints (ARF reports) against recipients delivered in the chart's period.
    let since = chart_since(now);
    let recent: u64 = o.daily.iter().filter(|d| d.state == RecipientState::Delivered).map(|d| d.count).sum();
    let complaint_note = format!("of delivered, last {CHART_DAYS} days (limit 0.3%)");
    b.push_str("<div class=\"cards\" id=\"cards\">");
    for (id, label, value, note) in [
        ("sent", "Recipients", s.total.to_string(), String::new()),
        ("delivered", "Delivered", s.delivered.to_string(), pct(s.delivered, finished)),
        ("queued", "Queued", s.queued.to_string(), String::new()),
        ("deferred", "Deferred", s.deferred.to_string(), String::new()),
        ("hard", "Bounced hard", s.hard.to_string(), pct(s.hard, finished)),
        ("soft", "Bounced soft", s.soft.to_string(), pct(s.soft, finished)),
        ("rate", "Deliverability", pct(s.delivered, finished), "of finished recipients".into()),
        ("complaints", "Complaint rate", complaint_pct(o.complaints, recent), complaint_note),
    ] {
        let _ = write!(
            b,
            "<div class=\"card\" id=\"card-{id}\"><span class=\"muted\">{label}</span><b>{}</b><span class=\"muted\">{}</span></div>",
            esc(&value),
            esc(&note)
        );
    }
    b.push_str("</div>");
    let _ = write!(b, "<h2>Deliverability per day (last {CHART_DAYS} days, UTC)</h2>");
    b.push_str(&html::chart(&days(o, since, now)));
    b.push_str("<h2>Bounces by reason</h2>");
    if s.reasons.is_empty() {
        b.push_str("<p class=\"muted\">No bounces.</p>");
    } else {
        b.push_str("<table id=\"reasons\"><tr><th>Reason</th><th>Recipients</th><th>Hard</th><th>What it means</th><th>What to do</th></tr>");
        let mut reasons: Vec<_> = s.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        for (reason, (n, hard)) in reasons {
            let info = reason.info();
            let _ = write!(
                b,
                "<tr><td><code>{}</code></td><td class=\"n\">{n}</td><td class=\"n\">{hard}</td><td>{}</td><td>{}</td></tr>",
                esc(reason.as_str()),
                esc(info.summary),
                esc(info.advice)
            );
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>Top failing domains</h2>");
    if o.failing_domains.is_empty() {
        b.push_str("<p class=\"muted\">No failing domains.</p>");
    } else {
        b.push_str("<table id=\"domains\"><tr><th>Domain</th><th>Bounced or expired</th><th>Deferred</th></tr>");
        for d in &o.failing_domains {
            let _ = write!(
                b,
                "<tr><td><a href=\"/dashboard/queue?state=all&amp;domain={}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                url(&d.domain),
                esc(&d.domain),
                d.failed,
                d.deferred
            );
        }
        b.push_str("</table>");
    }
    html::page("Overview", "/dashboard/", session(admin), &b)
}

pub async fn overview(State(state): State<Arc<AppState>>, admin: Admin) -> Response {
    let now = Timestamp::now();
    match state.ctx.store.delivery_overview(chart_since(now), 10).await {
        Ok(o) => ok(render_overview(&admin, &o, now)),
        Err(e) => store_error(&admin, e),
    }
}

// ---------------------------------------------------------------- queue

#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    /// `queue` (queued and deferred, the default), `all`, or one state.
    pub state: Option<String>,
    pub domain: Option<String>,
}

impl QueueQuery {
    pub fn filter(&self, limit: usize) -> QueueFilter {
        let states = match self.state.as_deref().unwrap_or("queue") {
            "all" => Vec::new(),
            s => RecipientState::parse(s)
                .map(|s| vec![s])
                .unwrap_or_else(|| vec![RecipientState::Queued, RecipientState::Deferred, RecipientState::Held]),
        };
        let domain = self.domain.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_lowercase);
        QueueFilter { states, domain, limit }
    }
}

pub fn render_queue(admin: &Admin, q: &QueueQuery, rows: &[QueueRow]) -> String {
    let current = q.state.as_deref().unwrap_or("queue");
    let mut b = String::from(
        "<h1>Queue</h1><form method=\"get\" action=\"/dashboard/queue\" class=\"box\">State <select name=\"state\" id=\"state\">",
    );
    for (value, label) in [
        ("queue", "queued, deferred or held"),
        ("all", "all"),
        ("queued", "queued"),
        ("deferred", "deferred"),
        ("held", "held"),
        ("delivered", "delivered"),
        ("bounced", "bounced"),
        ("expired", "expired"),
    ] {
        let sel = if value == current { " selected" } else { "" };
        let _ = write!(b, "<option value=\"{value}\"{sel}>{label}</option>");
    }
    let _ = write!(
        b,
        "</select> Domain <input name=\"domain\" id=\"domain\" value=\"{}\" placeholder=\"example.com\"> <button>Filter</button></form>",
        esc(q.domain.as_deref().unwrap_or(""))
    );
    if rows.is_empty() {
        b.push_str("<p class=\"muted\" id=\"empty\">No recipients match.</p>");
        return html::page("Queue", "/dashboard/queue", session(admin), &b);
    }
    let _ = write!(
        b,
        "<p class=\"muted\">{} recipient(s), most recently changed first{}.</p>",
        rows.len(),
        if rows.len() >= PAGE_ROWS { " (the first ones only: narrow the filter)" } else { "" }
    );
    b.push_str("<table id=\"queue\"><tr><th>Message</th><th>From</th><th>To</th><th>State</th><th>Attempts</th><th>Last reply</th><th>Changed</th><th></th></tr>");
    for r in rows {
        let id = &r.message.0;
        let _ = write!(
            b,
            "<tr><td><a class=\"mono\" href=\"/dashboard/messages/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td><code>{}</code> {}</td><td>{}</td><td>",
            url(id),
            esc(id),
            if r.reverse_path.is_empty() { "&lt;&gt;".into() } else { esc(&r.reverse_path) },
            esc(&r.address),
            badge("s", r.state.as_str()),
            r.attempts,
            opt(r.last_status.as_deref()),
            esc(r.last_detail.as_deref().unwrap_or("")),
            when(r.updated_at)
        );
        if matches!(r.state, RecipientState::Queued | RecipientState::Deferred) {
            b.push_str(&button_form(&format!("/dashboard/queue/{}/retry", url(id)), "Retry", &admin.csrf, &[], None));
            b.push(' ');
            b.push_str(&button_form(
                &format!("/dashboard/queue/{}/delete", url(id)),
                "Delete",
                &admin.csrf,
                &[],
                Some("Delete this message and all its recipients?"),
            ));
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</table>");
    html::page("Queue", "/dashboard/queue", session(admin), &b)
}

pub async fn queue(State(state): State<Arc<AppState>>, admin: Admin, Query(q): Query<QueueQuery>) -> Response {
    match state.ctx.store.queue_search(q.filter(PAGE_ROWS)).await {
        Ok(rows) => ok(render_queue(&admin, &q, &rows)),
        Err(e) => store_error(&admin, e),
    }
}

fn done(admin: &Admin, title: &str, text: &str, back: &str) -> Response {
    let body =
        format!("<h1>{}</h1><p id=\"result\">{}</p><p><a href=\"{}\">Back</a></p>", esc(title), esc(text), esc(back));
    ok(html::page(title, "", session(admin), &body))
}

pub async fn retry(State(state): State<Arc<AppState>>, Path(id): Path<String>, Posted(admin, _): Posted) -> Response {
    match state.ctx.store.retry_now(&MessageId(id.clone())).await {
        Ok(n) => {
            state.ctx.queue_wakeup.poke();
            tracing::info!(user = %admin.user, message = %id, recipients = n, "dashboard: retry");
            done(&admin, "Retry", &format!("{n} recipient(s) of {id} are due now."), "/dashboard/queue")
        }
        Err(e) => store_error(&admin, e),
    }
}

pub async fn delete(State(state): State<Arc<AppState>>, Path(id): Path<String>, Posted(admin, _): Posted) -> Response {
    match state.ctx.store.delete_message(&MessageId(id.clone())).await {
        Ok(true) => {
            tracing::info!(user = %admin.user, message = %id, "dashboard: delete");
            done(&admin, "Deleted", &format!("Message {id} was deleted."), "/dashboard/queue")
        }
        Ok(false) => error_page(StatusCode::NOT_FOUND, Some(&admin), &format!("No message {id}.")),
        Err(e) => store_error(&admin, e),
    }
}

// ---------------------------------------------------------------- one message

pub fn render_message(admin: &Admin, m: &MessageDetail) -> String {
    let e = &m.entry;
    let id = &e.id.0;
    let mut b = format!(
        "<h1>Message <span class=\"mono\">{}</span></h1><div class=\"box\"><p>From <b>{}</b> · {} bytes · received {} via {}{}</p>",
        esc(id),
        if e.reverse_path.is_empty() { "&lt;&gt;".into() } else { esc(&e.reverse_path) },
        e.size,
        esc(&e.received_at),
        esc(m.origin.via.as_str()),
        m.origin.auth_user.as_deref().map(|u| format!(" (as {})", esc(u))).unwrap_or_default()
    );
    b.push_str(&button_form(
        &format!("/dashboard/queue/{}/retry", url(id)),
        "Retry deferred now",
        &admin.csrf,
        &[],
        None,
    ));
    b.push(' ');
    b.push_str(&button_form(
        &format!("/dashboard/queue/{}/delete", url(id)),
        "Delete",
        &admin.csrf,
        &[],
        Some("Delete this message and all its recipients?"),
    ));
    b.push_str("</div><h2>Recipients</h2><table id=\"recipients\"><tr><th>Address</th><th>State</th><th>Attempts</th><th>Last status</th><th>Remote</th></tr>");
    for r in &e.recipients {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td><code>{}</code> {}</td><td class=\"mono\">{}</td></tr>",
            esc(&r.address),
            badge("s", r.state.as_str()),
            r.attempts,
            opt(r.last_status.as_deref()),
            esc(r.last_detail.as_deref().unwrap_or("")),
            opt(r.remote_mta.as_deref())
        );
    }
    b.push_str("</table><h2>Journey</h2><table id=\"events\"><tr><th>When</th><th>Event</th><th>Recipient</th><th>Status</th><th>Remote reply</th><th>Remote</th></tr>");
    for ev in &m.events {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(&ev.at),
            badge("s", ev.kind.as_str()),
            opt(ev.recipient.as_deref()),
            opt(ev.status.as_deref()),
            esc(ev.detail.as_deref().unwrap_or("")),
            opt(ev.remote.as_deref())
        );
    }
    b.push_str("</table>");
    html::page("Message", "", session(admin), &b)
}

pub async fn message(State(state): State<Arc<AppState>>, admin: Admin, Path(id): Path<String>) -> Response {
    match state.ctx.store.message_detail(&MessageId(id.clone())).await {
        Ok(Some(m)) => ok(render_message(&admin, &m)),
        Ok(None) => error_page(StatusCode::NOT_FOUND, Some(&admin), &format!("No message {id}.")),
        Err(e) => store_error(&admin, e),
    }
}

// ---------------------------------------------------------------- suppressions

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
}

pub fn render_suppressions(admin: &Admin, q: &str, list: &[Suppression]) -> String {
    let mut b = format!(
        "<h1>Suppression list</h1><form method=\"get\" action=\"/dashboard/suppressions\" class=\"box\">\
         <input name=\"q\" id=\"q\" value=\"{}\" placeholder=\"part of an address\"> <button>Search</button></form>",
        esc(q)
    );
    if list.is_empty() {
        b.push_str("<p class=\"muted\" id=\"empty\">No suppressed addresses match.</p>");
        return html::page("Suppressions", "/dashboard/suppressions", session(admin), &b);
    }
    b.push_str("<table id=\"suppressions\"><tr><th>Address</th><th>Reason</th><th>Status</th><th>Detail</th><th>Since</th><th></th></tr>");
    for s in list {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.address),
            esc(&s.reason),
            opt(s.status.as_deref()),
            esc(s.detail.as_deref().unwrap_or("")),
            esc(&s.created_at),
            button_form(
                "/dashboard/suppressions/remove",
                "Remove",
                &admin.csrf,
                &[("address", &s.address)],
                Some("Send to this address again?")
            )
        );
    }
    b.push_str("</table>");
    html::page("Suppressions", "/dashboard/suppressions", session(admin), &b)
}

pub async fn suppressions(State(state): State<Arc<AppState>>, admin: Admin, Query(q): Query<SearchQuery>) -> Response {
    let query = q.q.as_deref().unwrap_or("").trim();
    match state.ctx.store.search_suppressions(query, PAGE_ROWS).await {
        Ok(list) => ok(render_suppressions(&admin, query, &list)),
        Err(e) => store_error(&admin, e),
    }
}

#[derive(Debug, Deserialize)]
pub struct AddressForm {
    #[serde(default)]
    pub address: String,
}

pub async fn unsuppress(
    State(state): State<Arc<AppState>>,
    Posted(admin, AddressForm { address }): Posted<AddressForm>,
) -> Response {
    match state.ctx.store.unsuppress(address.trim(), &crate::store::Scope::All).await {
        Ok(removed) => {
            tracing::info!(user = %admin.user, address = %address, removed, "dashboard: unsuppress");
            let text = if removed {
                format!("{address} was removed from the suppression list.")
            } else {
                format!("{address} was not on the suppression list.")
            };
            done(&admin, "Suppression list", &text, "/dashboard/suppressions")
        }
        Err(e) => store_error(&admin, e),
    }
}

// ---------------------------------------------------------------- paused accounts

/// Accounts paused by the hard-bounce/complaint breaker or the compromised-account detector,
/// each with why and a one-click resume.
pub fn render_accounts(admin: &Admin, list: &[AccountPause]) -> String {
    let mut b = String::from(
        "<h1>Paused accounts</h1><p class=\"muted\">Sending is refused (SMTP 451 4.7.1, API 403) until resumed: \
         check the account first (a burst or a login from a new network may be a stolen password; change it).</p>",
    );
    if list.is_empty() {
        b.push_str("<p class=\"muted\" id=\"empty\">No account is paused.</p>");
        return html::page("Paused accounts", "/dashboard/accounts", session(admin), &b);
    }
    b.push_str("<table id=\"accounts\"><tr><th>Account</th><th>Why</th><th>Since</th><th></th></tr>");
    for p in list {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.account),
            esc(&p.detail),
            esc(&p.paused_at),
            button_form("/dashboard/accounts/resume", "Resume", &admin.csrf, &[("account", &p.account)], None)
        );
    }
    b.push_str("</table>");
    html::page("Paused accounts", "/dashboard/accounts", session(admin), &b)
}

pub async fn accounts(State(state): State<Arc<AppState>>, admin: Admin) -> Response {
    match state.ctx.store.paused_accounts().await {
        Ok(list) => ok(render_accounts(&admin, &list)),
        Err(e) => store_error(&admin, e),
    }
}

#[derive(Debug, Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    pub account: String,
}

pub async fn resume(
    State(state): State<Arc<AppState>>,
    Posted(admin, AccountForm { account }): Posted<AccountForm>,
) -> Response {
    match state.ctx.store.resume_account(account.trim()).await {
        Ok(resumed) => {
            tracing::info!(user = %admin.user, account = %account, resumed, "dashboard: resume account");
            let text = if resumed { format!("{account} sends again.") } else { format!("{account} was not paused.") };
            done(&admin, "Paused accounts", &text, "/dashboard/accounts")
        }
        Err(e) => store_error(&admin, e),
    }
}

// ---------------------------------------------------------------- bounce explorer

fn bounce_form_html(admin: &Admin, raw: &str) -> String {
    format!(
        "<h1>Bounce explorer</h1><form method=\"post\" action=\"/dashboard/bounces\" class=\"box\">{}\
         <p>Paste a bounce (the whole message, headers included) or load a file: <input type=\"file\" accept=\".eml,.txt,message/rfc822\" data-into=\"raw\"></p>\
         <textarea name=\"raw\" id=\"raw\" rows=\"14\" required>{}</textarea><p><button id=\"explore\">Classify and verify</button></p></form>",
        html::csrf_field(&admin.csrf),
        esc(raw)
    )
}

pub fn render_bounce(admin: &Admin, raw: &str, report: &BounceReport, v: Option<&Verification>) -> String {
    let mut b = bounce_form_html(admin, raw);
    let _ = write!(
        b,
        "<div class=\"box\" id=\"classification\"><h2>Classification</h2><p>Kind <b id=\"kind\">{}</b>{}</p>",
        esc(report.kind.as_str()),
        report.mta.as_deref().map(|m| format!(" · written by <b>{}</b>", esc(m))).unwrap_or_default()
    );
    let kind_reason = match report.kind {
        ReportKind::Vacation => Some(Reason::Vacation),
        ReportKind::Feedback => Some(Reason::Feedback),
        ReportKind::Delivered => Some(Reason::Delivered),
        _ => None,
    };
    if let Some(r) = kind_reason {
        let _ = write!(b, "<p>{}: {}</p>", esc(r.info().summary), esc(r.info().advice));
    }
    if !report.recipients.is_empty() {
        b.push_str("<table id=\"bounce-recipients\"><tr><th>Recipient</th><th>Status</th><th>Reason</th><th>Hard</th><th>Remote said</th><th>What to do</th></tr>");
        for r in &report.recipients {
            let hard = match r.hard_bounce {
                Some(true) => "hard",
                Some(false) => "soft",
                None => "unknown",
            };
            let _ = write!(
                b,
                "<tr><td>{}</td><td><code>{}</code>{}</td><td><code class=\"reason\">{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.address),
                opt(r.status.as_deref()),
                r.reply_code.as_deref().map(|c| format!(" ({})", esc(c))).unwrap_or_default(),
                esc(r.reason.as_str()),
                hard,
                esc(r.diagnostic.as_deref().unwrap_or("")),
                esc(&r.advice)
            );
        }
        b.push_str("</table>");
    }
    let o = &report.original;
    if o.message_id.is_some() || o.subject.is_some() {
        let _ = write!(
            b,
            "<p class=\"muted\">About the message {} · subject {} · to {}</p>",
            opt(o.message_id.as_deref()),
            opt(o.subject.as_deref()),
            opt(o.to.as_deref())
        );
    }
    for w in &report.warnings {
        let _ = write!(b, "<p class=\"muted\">Note: {}</p>", esc(w));
    }
    b.push_str("</div>");
    if let Some(v) = v {
        let _ = write!(
            b,
            "<div class=\"box\" id=\"verdict\"><h2>Forged or genuine?</h2><p>Verdict {}{}</p><table><tr><th>Check</th><th></th><th>Detail</th></tr>",
            badge("v", v.verdict.as_str()),
            v.original
                .as_deref()
                .map(|id| format!(
                    " · about our message <a class=\"mono\" href=\"/dashboard/messages/{}\">{}</a>",
                    url(id),
                    esc(id)
                ))
                .unwrap_or_default()
        );
        for e in &v.evidence {
            let _ = write!(
                b,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(e.check),
                if e.ok { badge("c", "ok") } else { badge("c", "fail") },
                esc(&e.detail)
            );
        }
        b.push_str("</table>");
        // The operator's word teaches the learned filter (`feedback::learn`).
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/dashboard/bounces/train\" id=\"train\">{}<input type=\"hidden\" name=\"raw\" value=\"{}\">\
             <p>Teach the learned filter: <button name=\"label\" value=\"forged\" id=\"train-forged\">It is forged</button> \
             <button name=\"label\" value=\"genuine\" id=\"train-genuine\">It is genuine</button></p></form></div>",
            html::csrf_field(&admin.csrf),
            esc(raw)
        );
    }
    html::page("Bounce explorer", "/dashboard/bounces", session(admin), &b)
}

pub async fn bounce_form(admin: Admin) -> Response {
    ok(html::page("Bounce explorer", "/dashboard/bounces", session(&admin), &bounce_form_html(&admin, "")))
}

#[derive(Debug, Deserialize)]
pub struct RawForm {
    #[serde(default)]
    pub raw: String,
}

pub async fn bounce_explore(
    State(state): State<Arc<AppState>>,
    Posted(admin, RawForm { raw }): Posted<RawForm>,
) -> Response {
    // Browsers send textarea lines with CRLF already; a pasted LF-only message parses too.
    let bytes = Bytes::from(raw.clone().into_bytes());
    let parsed = bytes.clone();
    let report = match tokio::task::spawn_blocking(move || crate::feedback::parse_bounce(&parsed)).await {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(&admin), &format!("parser task: {e}")),
    };
    let verdict = match state.verifier.verify(state.ctx.store.as_ref(), &bytes, &Default::default()).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: bounce verification failed");
            None
        }
    };
    ok(render_bounce(&admin, &raw, &report, verdict.as_ref()))
}

#[derive(Debug, Deserialize)]
pub struct TrainForm {
    #[serde(default)]
    pub raw: String,
    #[serde(default)]
    pub label: String,
}

/// The explorer's "forged" / "genuine" buttons: trains the learned filter with the message.
pub async fn bounce_train(
    State(state): State<Arc<AppState>>,
    Posted(admin, TrainForm { raw, label }): Posted<TrainForm>,
) -> Response {
    let Some(label) = crate::store::learner::Label::parse(label.trim()) else {
        return error_page(StatusCode::UNPROCESSABLE_ENTITY, Some(&admin), "the label is `forged` or `genuine`");
    };
    if raw.trim().is_empty() {
        return error_page(StatusCode::UNPROCESSABLE_ENTITY, Some(&admin), "no message to learn from");
    }
    let bytes = raw.into_bytes();
    let ins = match tokio::task::spawn_blocking({
        let bytes = bytes.clone();
        move || crate::feedback::verify::inspect(&bytes)
    })
    .await
    {
        Ok(ins) => ins,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(&admin), &format!("parser task: {e}")),
    };
    let n = ins.features.len();
    let sample = crate::feedback::learn::sample(
        &bytes,
        ins.features,
        Some(label),
        crate::store::learner::TrainSource::Operator,
        Timestamp::now(),
    );
    let limits = state.verifier.learner.map(|l| l.limits).unwrap_or_default();
    match state.ctx.store.learn(sample, limits).await {
        Ok(learned) => {
            tracing::info!(user = %admin.user, label = label.as_str(), learned = learned.as_str(), "dashboard: bounce trained");
            let text =
                format!("Taught the learned filter that the message is {label}: {} ({n} tokens).", learned.as_str());
            done(&admin, "Bounce explorer", &text, "/dashboard/bounces")
        }
        Err(e) => store_error(&admin, e),
    }
}

// ---------------------------------------------------------------- checklist

fn checklist_html(admin: &Admin, address: &str, raw: &str) -> String {
    format!(
        "<h1>Delivery checklist</h1>\
         <form method=\"post\" action=\"/dashboard/checklist/address\" class=\"box\">{}<h2>An address</h2>\
         <input name=\"address\" id=\"check-address\" value=\"{}\" placeholder=\"someone@example.com\" required size=\"40\"> <button>Check address</button></form>\
         <form method=\"post\" action=\"/dashboard/checklist/message\" class=\"box\">{}<h2>A message</h2>\
         <p>Paste a message (headers and body) or load a file: <input type=\"file\" accept=\".eml,.txt,message/rfc822\" data-into=\"check-raw\"></p>\
         <textarea name=\"raw\" id=\"check-raw\" rows=\"10\" required>{}</textarea><p><button>Check message</button></p></form>",
        html::csrf_field(&admin.csrf),
        esc(address),
        html::csrf_field(&admin.csrf),
        esc(raw)
    )
}

pub fn render_checklist(admin: &Admin, address: &str, raw: &str, report: Option<&CheckReport>) -> String {
    let mut b = checklist_html(admin, address, raw);
    if let Some(r) = report {
        let _ = write!(
            b,
            "<div class=\"box\" id=\"report\"><h2>{} {}</h2>{}<table><tr><th>Check</th><th>Result</th><th>Found</th><th>What to do</th></tr>",
            esc(r.kind),
            esc(&r.subject),
            badge("c", r.worst().as_str())
        );
        for c in &r.checks {
            let _ = write!(
                b,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
                esc(c.name),
                badge("c", c.status.as_str()),
                esc(c.detail.as_deref().unwrap_or("")),
                c.suggestion.as_deref().map(|s| format!(" (did you mean <b>{}</b>?)", esc(s))).unwrap_or_default(),
                esc(c.fix.as_deref().unwrap_or(""))
            );
        }
        b.push_str("</table></div>");
    }
    html::page("Checklist", "/dashboard/checklist", session(admin), &b)
}

pub async fn checklist(admin: Admin) -> Response {
    ok(render_checklist(&admin, "", "", None))
}

pub async fn check_address(
    State(state): State<Arc<AppState>>,
    Posted(admin, AddressForm { address: input }): Posted<AddressForm>,
) -> Response {
    let ctx = &state.ctx;
    let (report, _) =
        address::check_full(input.trim(), &address::Options::default(), ctx.dns.as_deref(), Some(ctx.store.as_ref()))
            .await;
    ok(render_checklist(&admin, &input, "", Some(&report)))
}

pub async fn check_message(
    State(state): State<Arc<AppState>>,
    Posted(admin, RawForm { raw }): Posted<RawForm>,
) -> Response {
    let config = &state.ctx.config;
    let resolver = crate::checklist::resolver::Resolver::new(&config.dns_nameservers).ok();
    let report = message::check_all("message", raw.as_bytes(), config.limits.max_message_size, resolver.as_ref()).await;
    ok(render_checklist(&admin, "", &raw, Some(&report)))
}

// ---------------------------------------------------------------- bulk sender readiness

#[derive(Debug, Default, Deserialize)]
pub struct ReadinessQuery {
    #[serde(default)]
    pub domain: String,
}

/// The providers' rules for `domain`, each with its status, the deciding check's finding and
/// fix, and the link to the rule; then every check the rules rest on.
pub fn render_readiness(admin: &Admin, domain: &str, report: &CheckReport) -> String {
    let mut b = format!(
        "<h1>Bulk sender readiness</h1><p>What Gmail and Yahoo (since 2024) and Outlook (since 2025) ask of senders, \
         checked for the sending domain against this mailerd's configuration and DNS.</p>\
         <form method=\"get\" action=\"/dashboard/readiness\" class=\"box\"><input name=\"domain\" id=\"readiness-domain\" \
         value=\"{}\" required size=\"30\"> <button>Check domain</button></form>",
        esc(domain)
    );
    let _ = write!(
        b,
        "<table id=\"requirements\"><tr><th>Requirement</th><th>Applies to</th><th>Result</th><th>Found</th><th>What to do</th></tr>"
    );
    for a in requirements::assess(report) {
        let r = a.requirement;
        let (found, fix) = match (&a.deciding, a.met) {
            (_, requirements::Met::Pass) => (String::new(), String::new()),
            (Some(c), _) => (c.detail.clone().unwrap_or_default(), c.fix.clone().unwrap_or_default()),
            (None, _) => (String::new(), String::new()),
        };
        let _ = write!(
            b,
            "<tr id=\"req-{id}\"><td>{} <a href=\"{}\" rel=\"noreferrer\">(rule)</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(r.rule),
            esc(r.link),
            esc(r.audience.as_str()),
            badge("r", a.met.as_str()),
            esc(&found),
            esc(&fix),
            id = esc(r.id),
        );
    }
    b.push_str("</table><h2>Every check</h2><table id=\"checks\"><tr><th>Check</th><th>Result</th><th>Found</th><th>What to do</th></tr>");
    for c in &report.checks {
        let _ = write!(
            b,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(c.name),
            badge("c", c.status.as_str()),
            esc(c.detail.as_deref().unwrap_or("")),
            esc(c.fix.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</table>");
    html::page("Bulk sender readiness", "/dashboard/readiness", session(admin), &b)
}

/// The domain the page checks first: the DKIM signing domain, else the return-path domain's
/// organizational domain.
fn sending_domain(config: &crate::config::Config) -> String {
    match &config.dkim {
        Some(d) => d.domain.clone(),
        None => crate::checklist::domain::organizational(&config.bounce.return_path_domain),
    }
}

pub async fn readiness(State(state): State<Arc<AppState>>, admin: Admin, Query(q): Query<ReadinessQuery>) -> Response {
    let config = &state.ctx.config;
    let domain = match q.domain.trim() {
        "" => sending_domain(config),
        d => d.to_string(),
    };
    // A page answers within seconds: a silent name server costs one short timeout per lookup.
    let quick = std::time::Duration::from_secs(2);
    let resolver = match crate::checklist::resolver::Resolver::with_timeout(&config.dns_nameservers, quick, 1) {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(&admin), &format!("DNS: {e}")),
    };
    let opts = crate::checklist::domain::DomainOptions::from_config(config, Vec::new());
    let report = crate::checklist::domain::check(&domain, &opts, &resolver, Some(state.ctx.store.as_ref())).await;
    ok(render_readiness(&admin, &domain, &report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DailyCount, DomainFailures, StateStatusCount};

    fn admin() -> Admin {
        Admin { user: "admin@local.test".into(), csrf: "tok".into(), password_due: false, must_enrol: false }
    }

    #[test]
    fn overview_folds_counts_and_escapes() {
        let now = Timestamp(40 * DAY_MS + 5);
        let o = DeliveryOverview {
            by_state_status: vec![
                StateStatusCount { state: RecipientState::Delivered, status: Some("2.0.0".into()), count: 90 },
                StateStatusCount { state: RecipientState::Bounced, status: Some("5.1.1".into()), count: 6 },
                StateStatusCount { state: RecipientState::Bounced, status: Some("5.2.2".into()), count: 2 },
                StateStatusCount { state: RecipientState::Expired, status: Some("4.4.7".into()), count: 2 },
                StateStatusCount { state: RecipientState::Deferred, status: None, count: 3 },
            ],
            daily: vec![DailyCount { day: Timestamp(40 * DAY_MS), state: RecipientState::Delivered, count: 90 }],
            failing_domains: vec![DomainFailures { domain: "<evil>.test".into(), failed: 8, deferred: 3 }],
            complaints: 3,
        };
        let s = summarize(&o);
        assert_eq!((s.total, s.delivered, s.deferred, s.hard, s.soft), (103, 90, 3, 6, 4));
        let page = render_overview(&admin(), &o, now);
        assert!(page.contains("&lt;evil&gt;.test") && !page.contains("<evil>"));
        assert!(page.contains("userunknown") && page.contains(Reason::UserUnknown.info().advice));
        assert!(page.contains("90.0%"), "deliverability 90/100");
        assert!(page.contains("<b>3.33%</b>"), "3 complaints of 90 delivered: {page}");
        assert!(!page.contains("password-due"));
        let due = Admin { password_due: true, ..admin() };
        assert!(render_overview(&due, &o, now).contains("id=\"password-due\""));
        assert_eq!(page.matches("<rect").count(), CHART_DAYS as usize);
    }

    #[test]
    fn queue_filter_defaults_to_the_queue() {
        let f = QueueQuery::default().filter(10);
        assert_eq!(f.states, vec![RecipientState::Queued, RecipientState::Deferred, RecipientState::Held]);
        let f = QueueQuery { state: Some("all".into()), domain: Some(" Example.COM ".into()) }.filter(10);
        assert!(f.states.is_empty());
        assert_eq!(f.domain.as_deref(), Some("example.com"));
    }
}
