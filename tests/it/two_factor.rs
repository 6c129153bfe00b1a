//! TOTP second factor of the dashboard, over loopback HTTP with codes computed here from the
//! key the enrolment page shows: `dashboard.require_2fa` sends an admin without a factor to
//! enrolment (otpauth URI, SVG QR code, a code to confirm, recovery codes shown once); later
//! logins need a code after the password; a code counts once (also the one that confirmed
//! enrolment), a recovery code once; wrong codes count in the login throttle like wrong
//! passwords; `mailerd user 2fa enable|status|disable` does the same from the command line.
//! And in headless Chromium (the dashboard test's WebDriver client): enrolment, then a login
//! with a code typed into the page.

use std::net::SocketAddr;

use totp_rs::{Algorithm, Builder, Secret};

use crate::harness::TestDaemon;
use crate::harness::http::{Page, form_call, pair_of};

const ADMIN: &str = "admin@local.test";
const PASSWORD: &str = "violet tractor pebble sunrise";

/// The 6-digit code of base32 `key` at Unix time `t`, as an authenticator app computes it.
fn code(key: &str, t: u64) -> String {
    let secret = Secret::try_from_base32(key).expect("base32 key");
    Builder::new().with_algorithm(Algorithm::SHA1).with_secret(secret).build().unwrap().generate(t).to_string()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A cookie pair `name=value` set by a response.
fn set_cookie(p: &Page, name: &str) -> Option<String> {
    p.cookies().iter().map(|c| pair_of(c)).find(|c| c.starts_with(&format!("{name}=")) && !c.ends_with('='))
}

/// The text of the element with `id` (up to its next tag).
fn by_id(text: &str, id: &str) -> String {
    let at = text.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {text}"));
    let rest = &text[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..].split('<').next().unwrap().to_string()
}

/// Password step of a login: the response (a session, or a parked login waiting for a code).
async fn password_step(http: SocketAddr, password: &str) -> Page {
    let form = form_call(http, None, "GET", "/dashboard/login", None, None).await;
    let token = pair_of(form.header("set-cookie"));
    let csrf = form.csrf();
    let fields = [("user", ADMIN), ("password", password), ("csrf", csrf.as_str())];
    form_call(http, None, "POST", "/dashboard/login", Some(&token), Some(&fields)).await
}

/// Code step of a parked login (`pending` is its cookie pair).
async fn code_step(http: SocketAddr, pending: &str, typed: &str) -> Page {
    let form = form_call(http, None, "GET", "/dashboard/login/code", Some(pending), None).await;
    assert_eq!(form.status, 200, "{}", form.text);
    let csrf = form.csrf();
    let fields = [("code", typed), ("csrf", csrf.as_str())];
    form_call(http, None, "POST", "/dashboard/login/code", Some(pending), Some(&fields)).await
}

/// A full login with a code; the session cookie pair when it was accepted, else the page.
async fn login_with(http: SocketAddr, typed: &str) -> Result<String, Page> {
    let r = password_step(http, PASSWORD).await;
    assert_eq!((r.status, r.header("location")), (303, "/dashboard/login/code"), "{}", r.text);
    assert!(set_cookie(&r, "mailerd_session").is_none(), "no session before the code");
    let pending = set_cookie(&r, "mailerd_2fa").expect("a parked login");
    let r = code_step(http, &pending, typed).await;
    if r.status == 303 {
        assert_eq!(r.header("location"), "/dashboard/");
        Ok(set_cookie(&r, "mailerd_session").expect("a session"))
    } else {
        Err(r)
    }
}

#[tokio::test]
async fn require_2fa_enrols_then_every_login_needs_a_code_used_once() {
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[dashboard]\nadmins = [\"{ADMIN}\"]\nrequire_2fa = true\n"
    ))
    .await;
    let http = d.http.unwrap();
    d.add_user(ADMIN, PASSWORD, None).await;

    // The password alone opens enrolment and nothing else.
    let r = password_step(http, PASSWORD).await;
    assert_eq!((r.status, r.header("location")), (303, "/dashboard/2fa"), "{}", r.text);
    let session = set_cookie(&r, "mailerd_session").unwrap();
    for path in ["/dashboard/", "/dashboard/queue", "/dashboard/suppressions"] {
        let r = form_call(http, None, "GET", path, Some(&session), None).await;
        assert_eq!((r.status, r.header("location")), (303, "/dashboard/2fa"), "{path}");
    }
    let enrol = form_call(http, None, "GET", "/dashboard/2fa", Some(&session), None).await;
    assert_eq!(enrol.status, 200);
    assert!(enrol.text.contains("id=\"enrol-required\""));
    let key = by_id(&enrol.text, "secret");
    let uri = by_id(&enrol.text, "otpauth").replace("&amp;", "&");
    assert_eq!(uri, format!("otpauth://totp/mailerd:admin%40local.test?secret={key}&issuer=mailerd"));
    let svg = &enrol.text[enrol.text.find("<div id=\"qr\"").unwrap()..];
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "a QR code rendered here");
    let again = form_call(http, None, "GET", "/dashboard/2fa", Some(&session), None).await;
    assert_eq!(by_id(&again.text, "secret"), key, "the same secret until it is confirmed");

    // A wrong code does not enrol; the app's code does, and the recovery codes are shown once.
    let csrf = enrol.csrf();
    let t0 = now();
    let right = code(&key, t0);
    let wrong = if right == "123456" { "654321" } else { "123456" };
    let post = |typed: String| {
        let (session, csrf) = (session.clone(), csrf.clone());
        async move {
            let fields = [("code", typed.as_str()), ("csrf", csrf.as_str())];
            form_call(http, None, "POST", "/dashboard/2fa/enable", Some(&session), Some(&fields)).await
        }
    };
    let r = post(wrong.to_string()).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("id=\"enrol-error\""));
    let r = post(right.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = &r.text[r.text.find("id=\"recovery-codes\"").unwrap()..];
    let recovery: Vec<String> =
        list.split("<code>").skip(1).map(|c| c.split('<').next().unwrap().to_string()).collect();
    assert_eq!(recovery.len(), 10);
    let r = form_call(http, None, "GET", "/dashboard/", Some(&session), None).await;
    assert_eq!(r.status, 200, "the dashboard is open after enrolment");
    let status = form_call(http, None, "GET", "/dashboard/2fa", Some(&session), None).await;
    assert!(status.text.contains("(10 of 10 recovery codes unused)") && !status.text.contains(&key));
    let cli = d.cli(&["user", "2fa", "status", ADMIN, "--json"], "").await;
    let v: serde_json::Value = serde_json::from_str(cli.stdout.trim()).unwrap();
    assert_eq!(
        (v["enabled"].as_bool(), v["recovery_codes_left"].as_u64(), v["required"].as_bool()),
        (Some(true), Some(10), Some(true))
    );

    // Next login: password, then a code. The code that confirmed enrolment is used up.
    let r = login_with(http, &right).await.unwrap_err();
    assert_eq!(r.status, 401);
    assert!(r.text.contains("id=\"code-error\""));
    let r = login_with(http, &code(&key, t0 - 30)).await.unwrap_err();
    assert_eq!(r.status, 401, "an earlier step after a later one");
    let next = code(&key, t0 + 30);
    let session = match login_with(http, &next).await {
        Ok(s) => s,
        Err(p) => panic!("the next step's code logs in: {} {}", p.status, p.text),
    };
    let r = form_call(http, None, "GET", "/dashboard/", Some(&session), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(login_with(http, &next).await.unwrap_err().status, 401, "a code counts once");
    // A recovery code logs in once.
    assert!(login_with(http, &recovery[0].to_uppercase()).await.is_ok());
    assert_eq!(login_with(http, &recovery[0]).await.unwrap_err().status, 401);
    let cli = d.cli(&["user", "2fa", "status", ADMIN], "").await;
    assert!(cli.stdout.contains("9 of 10 recovery codes unused"), "{}", cli.stdout);
    // The wrong password never reaches the code step.
    assert_eq!(password_step(http, "wrong password here").await.status, 401);
}

#[tokio::test]
async fn wrong_codes_count_in_the_login_throttle_and_the_cli_enrols() {
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[dashboard]\nadmins = [\"{ADMIN}\"]\n\
         [limits]\nauth_max_failures = 3\nauth_failure_window = 300\n"
    ))
    .await;
    let http = d.http.unwrap();
    d.add_user(ADMIN, PASSWORD, None).await;
    // Without a factor and without require_2fa, the password is the login.
    let r = password_step(http, PASSWORD).await;
    assert_eq!((r.status, r.header("location")), (303, "/dashboard/"));

    let enable = async || {
        let out = d.cli(&["user", "2fa", "enable", ADMIN], "").await;
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let line = |label: &str| {
            out.stdout.lines().find_map(|l| l.strip_prefix(label)).map(|v| v.trim().to_string()).expect(label)
        };
        let key = line("key:");
        assert!(line("otpauth URI:").contains(&format!("secret={key}")));
        assert_eq!(line("recovery codes:").split(' ').count(), 10);
        assert!(out.stdout.contains('█') || out.stdout.contains('▀'), "a QR code for the terminal");
        key
    };
    let key = enable().await;
    assert_eq!(d.cli(&["user", "2fa", "enable", ADMIN], "").await.code, Some(2), "enabled already");
    assert!(login_with(http, &code(&key, now())).await.is_ok());

    // Off from the command line: the password alone logs in again.
    let out = d.cli(&["user", "2fa", "disable", ADMIN], "").await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(d.cli(&["user", "2fa", "status", ADMIN], "").await.stdout.contains(": off"));
    assert_eq!(d.cli(&["user", "2fa", "disable", ADMIN], "").await.code, Some(2));
    let r = password_step(http, PASSWORD).await;
    assert_eq!((r.status, r.header("location")), (303, "/dashboard/"));

    // On again (a new key). Three wrong codes from this client: the fourth attempt is refused
    // unchecked, right or not.
    let key = enable().await;
    let r = password_step(http, PASSWORD).await;
    let pending = set_cookie(&r, "mailerd_2fa").expect("a parked login");
    let right = code(&key, now());
    let wrong = if right == "111111" { "222222" } else { "111111" };
    for _ in 0..3 {
        assert_eq!(code_step(http, &pending, wrong).await.status, 401);
    }
    let r = code_step(http, &pending, &right).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(!r.header("retry-after").is_empty());
    // One limiter: the password door is closed for this network, and the login for networks
    // it never logged in from.
    assert_eq!(password_step(http, PASSWORD).await.status, 429);
    let form = form_call(http, Some([127, 0, 0, 2].into()), "GET", "/dashboard/login", None, None).await;
    let token = pair_of(form.header("set-cookie"));
    let csrf = form.csrf();
    let fields = [("user", ADMIN), ("password", PASSWORD), ("csrf", csrf.as_str())];
    let r = form_call(http, Some([127, 0, 0, 2].into()), "POST", "/dashboard/login", Some(&token), Some(&fields)).await;
    assert_eq!(r.status, 429, "{}", r.text);
}

#[tokio::test]
async fn enrolment_and_login_in_a_real_browser() {
    let Some(b) = crate::harness::browser::Browser::start().await else { return };
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[dashboard]\nadmins = [\"{ADMIN}\"]\nrequire_2fa = true\n"
    ))
    .await;
    d.add_user(ADMIN, PASSWORD, None).await;
    let base = format!("http://{}", d.http.unwrap());
    let log_in = async || {
        b.go(&format!("{base}/dashboard/")).await;
        assert!(b.title().await.starts_with("Log in"));
        b.type_into("#user", ADMIN).await;
        b.type_into("#password", PASSWORD).await;
        b.click("#login").await;
        b.title_after("Log in").await
    };
    assert_eq!(log_in().await, "Two-factor · mailerd", "sent to enrolment");
    assert!(b.text("#enrol-required").await.contains("require_2fa"));
    let key = b.text("#secret").await;
    assert_eq!(key.len(), 32, "{key}");
    assert!(b.source().await.contains("<svg"), "the QR code is in the page");
    b.screenshot("07-2fa-enrol").await;
    let t0 = now();
    b.type_into("#code", &code(&key, t0)).await;
    b.click("#enable").await;
    let codes = b.text("#recovery-codes").await;
    assert_eq!(codes.lines().count(), 10, "{codes}");
    b.screenshot("08-2fa-recovery-codes").await;
    b.click("#continue").await;
    assert_eq!(b.title_after("Two-factor").await, "Overview · mailerd");

    // Log out, log in again: password, then the code of the next step.
    b.click("form[action='/dashboard/logout'] button").await;
    // The click returns before the logout's answer has loaded; going on at once could load the
    // dashboard still logged in (seen once in a loaded CI run).
    b.title_after("Overview").await;
    assert_eq!(log_in().await, "Second factor · mailerd");
    b.type_into("#code", &code(&key, t0 - 30)).await;
    b.click("#verify").await;
    assert!(b.text("#code-error").await.contains("Wrong or already used code"));
    // A step after the enrolment's: the next one while it is still within the skew, else the
    // current one (a loaded machine may take more than 30 s to get here).
    b.type_into("#code", &code(&key, now().max(t0 + 30))).await;
    b.click("#verify").await;
    assert_eq!(b.title_after("Second factor").await, "Overview · mailerd");
    b.screenshot("09-2fa-logged-in").await;
    b.quit().await;
}
