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
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mailerd::store::{Store, Suppression};
use serde_json::{Value, json};

use crate::harness::TestDaemon;
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
    let token = page.csrf();

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

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver child process and one WebDriver session on it.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    shots: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn wd_call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect to chromedriver");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.expect("WebDriver response");
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

impl Browser {
    /// None when Chromium or chromedriver is missing (outside CI).
    async fn start() -> Option<Browser> {
        let chromium = std::path::Path::new("/usr/bin/chromium").exists();
        let driver_ok =
            Command::new("chromedriver").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
        if !chromium || !driver_ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium and chromedriver are required in CI (.ci/run installs chromium chromium-driver)"
            );
            eprintln!(
                "SKIP dashboard browser test: /usr/bin/chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut browser = Browser { driver, addr, session: String::new(), shots: screenshot_dir() };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]
            }
        }}});
        let v = wd_call(addr, "POST", "/session", Some(caps)).await;
        browser.session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("new session: {v}")).to_string();
        Some(browser)
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = wd_call(self.addr, method, &format!("/session/{}{path}", self.session), body).await;
        assert!(v["value"].get("error").is_none(), "{method} {path}: {v}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// The element `css` selects, waiting up to 5 s for it: a click that submits a form
    /// returns before the next page has loaded.
    async fn find(&self, css: &str) -> String {
        let path = format!("/session/{}/element", self.session);
        let query = json!({"using": "css selector", "value": css});
        for _ in 0..50 {
            let v = wd_call(self.addr, "POST", &path, Some(query.clone())).await;
            if v["value"]["error"] != "no such element" {
                assert!(v["value"].get("error").is_none(), "POST /element: {v}");
                return v["value"][ELEMENT].as_str().unwrap_or_else(|| panic!("element {css}: {v}")).to_string();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.cmd("POST", "/element", Some(query)).await[ELEMENT].as_str().unwrap_or("").to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text }))).await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({}))).await;
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd("GET", &format!("/element/{e}/text"), None).await.as_str().unwrap_or("").to_string()
    }

    async fn source(&self) -> String {
        self.cmd("GET", "/source", None).await.as_str().unwrap_or("").to_string()
    }

    async fn title(&self) -> String {
        self.cmd("GET", "/title", None).await.as_str().unwrap_or("").to_string()
    }

    /// The title once the page has left one titled `from` (a click that submits a form returns
    /// before the next page loads; waits up to 5 s).
    async fn title_after(&self, from: &str) -> String {
        for _ in 0..50 {
            let t = self.title().await;
            if !t.starts_with(from) {
                return t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.title().await
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    async fn quit(self) {
        let _ = wd_call(self.addr, "DELETE", &format!("/session/{}", self.session), None).await;
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

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
