//! The dashboard over real loopback HTTP: without a session every page redirects to the login;
//! a wrong password, a login that is not an admin and a login form without its token are
//! refused; the session cookie's flags; a POST without (or with a wrong) CSRF token is 403;
//! user text is escaped; the dashboard is off (404) with no admins. Then in a real browser
//! (headless Chromium driven through chromedriver with plain WebDriver JSON): log in, send a
//! message through the API, see it in the queue and its journey, paste a bounce into the
//! explorer and read its classification; screenshots go to target/dashboard-screenshots/.
//!
//! Must not: use any address outside 127.0.0.0/8, or skip the browser test when CI is set.

use std::net::SocketAddr;

use mailerd::store::{Store, Suppression};
use serde_json::json;

use crate::harness::TestDaemon;
use crate::harness::browser::Browser;
use crate::harness::http::{Page, form_call, pair_of, post_json};

const ADMIN: &str = "admin@local.test";
const PASSWORD: &str = "correct horse battery staple";

type Resp = Page;

/// One request with an optional cookie header and form body (redirects are not followed).
async fn call(addr: SocketAddr, method: &str, path: &str, cookie: Option<&str>, form: Option<&[(&str, &str)]>) -> Resp {
    form_call(addr, None, method, path, cookie, form).await
}

async fn daemon(extra: &str) -> TestDaemon {
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[dashboard]\nadmins = [\"{ADMIN}\"]\n[routes]\n\"nowhere.test\" = \"127.0.0.1:9\"\n{extra}"
    ))
    .await;
    d.add_user(ADMIN, PASSWORD, None).await;
    d.add_user("user@local.test", "user password", None).await;
    d
}

/// Logs in over plain HTTP; returns the session cookie pair.
async fn login(http: SocketAddr, user: &str, password: &str) -> Resp {
    let form = call(http, "GET", "/dashboard/login", None, None).await;
    assert_eq!(form.status, 200, "{}", form.text);
    let login_cookie = pair_of(&form.cookies()[0]);
    let csrf = form.csrf();
    call(
        http,
        "POST",
        "/dashboard/login",
        Some(&login_cookie),
        Some(&[("user", user), ("password", password), ("csrf", &csrf)]),
    )
    .await
}

#[tokio::test]
async fn login_session_cookie_and_csrf() {
    let d = daemon("").await;
    let http = d.http.expect("http listener");

    // No session: every page sends to the login.
    for path in ["/dashboard", "/dashboard/", "/dashboard/queue", "/dashboard/suppressions", "/dashboard/bounces"] {
        let r = call(http, "GET", path, None, None).await;
        assert_eq!((r.status, r.header("location")), (303, "/dashboard/login"), "{path}");
    }
    let r = call(http, "GET", "/dashboard/queue", Some("mailerd_session=00ff"), None).await;
    assert_eq!((r.status, r.header("location")), (303, "/dashboard/login"), "an unknown session id");
    let r = call(http, "POST", "/dashboard/queue/X/delete", None, Some(&[("csrf", "x")])).await;
    assert_eq!(r.status, 303, "a POST without a session changes nothing");

    // The login form's own token (double submit): without its cookie, refused.
    let form = call(http, "GET", "/dashboard/login", None, None).await;
    assert_eq!(form.header("content-type"), "text/html; charset=utf-8");
    let csrf = form.csrf();
    let r =
        call(http, "POST", "/dashboard/login", None, Some(&[("user", ADMIN), ("password", PASSWORD), ("csrf", &csrf)]))
            .await;
    assert_eq!(r.status, 403, "{}", r.text);

    // Wrong password, and a right password of a login that is not an admin.
    let r = login(http, ADMIN, "wrong").await;
    assert_eq!(r.status, 401);
    assert!(
        r.text.contains("Wrong address or password") && r.cookies().iter().all(|c| !c.starts_with("mailerd_session"))
    );
    let r = login(http, "user@local.test", "user password").await;
    assert_eq!(r.status, 401, "not listed in [dashboard] admins");

    // The right one: a session cookie with the flags.
    let r = login(http, "Admin@local.test", PASSWORD).await;
    assert_eq!((r.status, r.header("location")), (303, "/dashboard/"), "{}", r.text);
    let cookie = r.cookies().into_iter().find(|c| c.starts_with("mailerd_session=")).expect("session cookie");
    let id = pair_of(&cookie)["mailerd_session=".len()..].to_string();
    assert_eq!(id.len(), 64, "256 bits in hex: {cookie}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age=43200"] {
        assert!(cookie.split(';').any(|p| p.trim() == flag), "{flag} in {cookie}");
    }
    let session = pair_of(&cookie);

    let page = call(http, "GET", "/dashboard/", Some(&session), None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Deliverability") && page.text.contains(ADMIN));
    assert!(page.header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(page.text.contains("id=\"card-complaints\"") && page.text.contains("Complaint rate"), "{}", page.text);
    let token = page.csrf();

    // Bulk sender readiness: every provider rule with its result and a link to the rule.
    let r = call(http, "GET", "/dashboard/readiness?domain=local.test", Some(&session), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for id in ["spf", "dkim", "dmarc", "alignment", "fcrdns", "tls", "one_click_unsubscribe", "complaint_rate"] {
        assert!(r.text.contains(&format!("id=\"req-{id}\"")), "{id}: {}", r.text);
    }
    assert!(r.text.contains("href=\"https://www.rfc-editor.org/rfc/rfc8058\""), "{}", r.text);
    assert!(r.text.contains("badge r-pass") && r.text.contains("badge r-fail"), "{}", r.text);

    // Text from the store is escaped.
    let store = d.store();
    store
        .suppress(Suppression {
            address: "<script>alert(1)</script>@x.test".into(),
            reason: "manual".into(),
            status: None,
            detail: Some("<b>bold</b>".into()),
            message_id: None,
            created_at: String::new(),
            domain: None,
            scope: mailerd::store::SuppressionScope::Global,
        })
        .await
        .unwrap();
    let r = call(http, "GET", "/dashboard/suppressions?q=script", Some(&session), None).await;
    assert!(
        r.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;@x.test") && r.text.contains("&lt;b&gt;bold"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("<script>alert") && !r.text.contains("<b>bold"));

    // CSRF: missing or wrong token is 403 and changes nothing; the right one works.
    let victim = "<script>alert(1)</script>@x.test";
    let r = call(http, "POST", "/dashboard/suppressions/remove", Some(&session), Some(&[("address", victim)])).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = call(
        http,
        "POST",
        "/dashboard/suppressions/remove",
        Some(&session),
        Some(&[("address", victim), ("csrf", "0000")]),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = call(http, "POST", "/dashboard/suppressions/remove", Some(&session), None).await;
    assert_eq!(r.status, 403, "no form at all");
    assert!(store.suppression(victim).await.unwrap().is_some(), "still suppressed");
    let r = call(
        http,
        "POST",
        "/dashboard/suppressions/remove",
        Some(&session),
        Some(&[("address", victim), ("csrf", &token)]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(store.suppression(victim).await.unwrap().is_none());

    // The bounce explorer's buttons teach the learned filter (with the session's CSRF token).
    let phish = "From: MAILER-DAEMON@mx.dest.test\r\nSubject: Undelivered Mail\r\n\r\nYour mailbox is full, upgrade at https://x.example/\r\n";
    let r =
        call(http, "POST", "/dashboard/bounces/train", Some(&session), Some(&[("raw", phish), ("label", "forged")]))
            .await;
    assert_eq!(r.status, 403, "no CSRF token: {}", r.text);
    let train = |label: &'static str| {
        let (session, token) = (session.clone(), token.clone());
        async move {
            let form = [("raw", phish), ("label", label), ("csrf", token.as_str())];
            call(http, "POST", "/dashboard/bounces/train", Some(&session), Some(&form)).await
        }
    };
    let r = train("forged").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("is forged: trained"), "{}", r.text);
    let r = train("genuine").await;
    assert!(r.text.contains("is genuine: relabelled"), "{}", r.text);
    assert_eq!(train("spam").await.status, 422);
    let m = store.learner_model(&[]).await.unwrap();
    assert_eq!((m.forged_messages, m.genuine_messages), (0, 1));

    // Logout ends the session.
    let r = call(http, "POST", "/dashboard/logout", Some(&session), Some(&[("csrf", &token)])).await;
    assert_eq!(r.status, 303);
    assert!(r.cookies().iter().any(|c| c.starts_with("mailerd_session=;") && c.contains("Max-Age=0")));
    let r = call(http, "GET", "/dashboard/", Some(&session), None).await;
    assert_eq!(r.status, 303, "the old id is gone");

    // No admins configured: the dashboard is off.
    let off = TestDaemon::with("[listen]\nhttp = \"127.0.0.1:0\"\n").await;
    let r = call(off.http.unwrap(), "GET", "/dashboard/login", None, None).await;
    assert_eq!(r.status, 404);
    assert!(r.text.contains("dashboard is off"), "{}", r.text);
}

// ------------------------------------------------------------------ the browser

#[tokio::test]
async fn in_a_real_browser() {
    let Some(b) = Browser::start().await else { return };
    let d = daemon("").await;
    let http = d.http.expect("http listener");
    let base = format!("http://{http}");

    // Log in (a wrong password first).
    b.go(&format!("{base}/dashboard/queue")).await;
    assert!(b.title().await.starts_with("Log in"), "redirected to the login");
    b.type_into("#user", ADMIN).await;
    b.type_into("#password", "not it").await;
    b.click("#login").await;
    assert!(b.text("#login-error").await.contains("Wrong address or password"));
    b.screenshot("01-login-refused").await;
    b.type_into("#user", ADMIN).await;
    b.type_into("#password", PASSWORD).await;
    b.click("#login").await;
    assert_eq!(b.title_after("Log in").await, "Overview · mailerd");

    // Send a message through the API to a destination that does not answer: it stays queued.
    let (key, record) = mailerd::http::auth::generate("dashboard-test", mailerd::store::Scope::All).unwrap();
    d.store().create_api_key(record).await.unwrap();
    let r = post_json(
        http,
        "/api/v1/messages",
        Some(&key),
        &json!({"from": "app@local.test", "to": ["carol@nowhere.test"], "subject": "Dashboard <test>", "text": "hello"}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();

    b.go(&format!("{base}/dashboard/")).await;
    b.screenshot("02-overview").await;
    assert!(b.text("#card-sent").await.contains('1'), "one recipient counted");

    // The queue shows it (queued or deferred), filtered by domain too.
    b.go(&format!("{base}/dashboard/queue?state=queue&domain=nowhere.test")).await;
    let table = b.text("#queue").await;
    assert!(table.contains("carol@nowhere.test") && table.contains(&id), "{table}");
    b.screenshot("03-queue").await;
    b.go(&format!("{base}/dashboard/queue?state=delivered&domain=nowhere.test")).await;
    assert!(b.text("#empty").await.contains("No recipients"));

    // Its journey.
    b.go(&format!("{base}/dashboard/queue")).await;
    b.click(&format!("a[href='/dashboard/messages/{id}']")).await;
    let events = b.text("#events").await;
    assert!(events.contains("queued"), "{events}");
    b.screenshot("04-message").await;

    // The bounce explorer.
    let bounce = "From: MAILER-DAEMON@mx.dest.test\r\nTo: app@local.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n<bob@dest.test>: host mx.dest.test said: 550 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)\r\n";
    b.go(&format!("{base}/dashboard/bounces")).await;
    b.cmd(
        "POST",
        "/execute/sync",
        Some(json!({"script": "document.getElementById('raw').value = arguments[0];", "args": [bounce]})),
    )
    .await;
    b.click("#explore").await;
    assert_eq!(b.text("#kind").await, "bounce");
    let table = b.text("#bounce-recipients").await;
    assert!(table.contains("bob@dest.test") && table.contains("userunknown") && table.contains("hard"), "{table}");
    assert!(b.text("#verdict").await.contains("Verdict"), "the forged-bounce verdict is shown");
    b.click("#train-genuine").await;
    assert!(b.text("#result").await.contains("is genuine: trained"), "the explorer's button trains the filter");
    b.go(&format!("{base}/dashboard/bounces")).await;
    b.screenshot("05-bounce-explorer").await;

    // The checklist as a form.
    b.go(&format!("{base}/dashboard/checklist")).await;
    b.type_into("#check-address", "someone@gmial.com").await;
    b.click("form[action='/dashboard/checklist/address'] button").await;
    let report = b.text("#report").await;
    assert!(report.contains("gmail.com"), "the typo check suggests gmail.com: {report}");
    b.screenshot("06-checklist").await;

    // Delete from the queue page (the confirm dialog is accepted).
    b.go(&format!("{base}/dashboard/queue")).await;
    b.cmd(
        "POST",
        "/execute/sync",
        Some(json!({"script": "window.confirm = function() { return true; };", "args": []})),
    )
    .await;
    b.click(&format!("form[action='/dashboard/queue/{id}/delete'] button")).await;
    assert!(b.text("#result").await.contains("was deleted"));
    assert!(b.source().await.contains("Deleted"));
    assert!(d.store().message_detail(&mailerd::store::MessageId(id)).await.unwrap().is_none(), "deleted");
    eprintln!("screenshots in {}", b.shots.display());
    b.quit().await;
}
