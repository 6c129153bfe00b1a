//! The dashboard login shares SMTP AUTH's failure limiter, over plain loopback HTTP: 200 wrong
//! passwords from one client get at most `auth_max_failures` password checks (counted by
//! `mailerd_login_checks_total` in `/metrics`), the rest 429 with `Retry-After` and no check,
//! also for the right password and for parallel guesses; a client blocked on one door is
//! blocked on the other; a login guessed from many clients is locked for networks it never
//! logged in from, on both doors, while its owner still gets in from where they did.
//!
//! Clients are told apart by their source address (127.0.0.x). Must not: use any address
//! outside 127.0.0.0/8.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::harness::http::{Page, form_call, pair_of};
use crate::harness::smtp::plain;
use crate::harness::{Client, TestDaemon};

const ADMIN: &str = "admin@local.test";
const PASSWORD: &str = "correct horse battery staple";
const USER: &str = "user@local.test";
const USER_PASSWORD: &str = "user password";
/// `limits.auth_max_failures` of these tests.
const MAX: u64 = 5;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

async fn daemon() -> TestDaemon {
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[dashboard]\nadmins = [\"{ADMIN}\"]\n\
         [limits]\nauth_max_failures = {MAX}\nauth_failure_window = 300\nmax_errors = 100\n"
    ))
    .await;
    d.add_user(ADMIN, PASSWORD, None).await;
    d.add_user(USER, USER_PASSWORD, None).await;
    d
}

type Resp = Page;

/// One HTTP request from the source address `from`.
async fn call(
    http: SocketAddr,
    from: IpAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> Resp {
    form_call(http, Some(from), method, path, cookie, form).await
}

/// The login form's double-submit token: (its cookie pair, the form's value).
async fn login_token(http: SocketAddr) -> (String, String) {
    let form = call(http, ip(1), "GET", "/dashboard/login", None, None).await;
    assert_eq!(form.status, 200, "{}", form.text);
    let set = form.headers.get("set-cookie").and_then(|v| v.to_str().ok()).expect("login cookie");
    (pair_of(set), form.csrf())
}

async fn post_login(http: SocketAddr, from: IpAddr, token: &(String, String), user: &str, password: &str) -> Resp {
    let form = [("user", user), ("password", password), ("csrf", token.1.as_str())];
    call(http, from, "POST", "/dashboard/login", Some(&token.0), Some(&form)).await
}

/// `mailerd_login_*_total{via="…"}` from `/metrics`, by metric line name.
async fn metrics(http: SocketAddr) -> BTreeMap<String, u64> {
    let r = call(http, ip(1), "GET", "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    r.text
        .lines()
        .filter(|l| l.starts_with("mailerd_login_"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
        .collect()
}

fn count(m: &BTreeMap<String, u64>, what: &str, via: &str) -> u64 {
    m.get(&format!("mailerd_login_{what}_total{{via=\"{via}\"}}")).copied().unwrap_or_else(|| panic!("{what} {via}"))
}

/// A submission session from `from` after STARTTLS, ready for AUTH.
async fn smtp_from(d: &TestDaemon, from: IpAddr) -> Client {
    let mut c = Client::connect_from(d.submission, from).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.starttls(&d.cert_path()).await;
    c.cmd("EHLO client.test").await.expect("250");
    c
}

fn tally(statuses: &[u16]) -> BTreeMap<u16, u64> {
    let mut t = BTreeMap::new();
    for s in statuses {
        *t.entry(*s).or_insert(0) += 1;
    }
    t
}

#[tokio::test]
async fn guessing_from_one_client_is_throttled_on_both_doors() {
    let d = daemon().await;
    let http = d.http.expect("http listener");
    let token = login_token(http).await;

    // 200 wrong passwords from one client, spread over logins (so only the client's own count
    // holds them back): the admin's and 100 names that may or may not exist.
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for i in 0..200 {
        let user = if i % 2 == 0 { ADMIN.to_string() } else { format!("guess{i}@local.test") };
        let r = post_login(http, ip(1), &token, &user, &format!("guess {i}")).await;
        if r.status == 429 {
            retry_after.push(r.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok()));
            assert!(r.text.contains("Try again later"), "{}", r.text);
        }
        statuses.push(r.status);
    }
    let m = metrics(http).await;
    let (checks, throttled) = (count(&m, "checks", "dashboard"), count(&m, "throttled", "dashboard"));
    let t = tally(&statuses);
    println!(
        "dashboard, one client: 200 wrong passwords, {checks} checked (argon2), {} answered 401, {} answered 429 unchecked",
        t.get(&401).unwrap_or(&0),
        t.get(&429).unwrap_or(&0)
    );
    assert!(checks <= MAX, "{checks} checks");
    assert_eq!(t.get(&401).copied().unwrap_or(0), checks, "{t:?}");
    assert_eq!(t.get(&429).copied().unwrap_or(0), 200 - checks, "{t:?}");
    assert_eq!(throttled, 200 - checks);
    assert_eq!(count(&m, "failures", "dashboard"), checks);
    assert!(retry_after.iter().all(|s| s.is_some_and(|s| (1..=300).contains(&s))), "{retry_after:?}");

    // The right password is refused too while the client is blocked, and not checked.
    let r = post_login(http, ip(1), &token, ADMIN, PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.headers.get("set-cookie").is_none(), "no session");
    // SMTP AUTH from that client: refused by the same limiter.
    let mut c = smtp_from(&d, ip(1)).await;
    c.cmd(&format!("AUTH PLAIN {}", plain(ADMIN, PASSWORD))).await.expect("454 4.7.0");
    let m = metrics(http).await;
    assert_eq!(count(&m, "checks", "dashboard"), checks, "no check while blocked");
    assert_eq!((count(&m, "checks", "smtp"), count(&m, "throttled", "smtp")), (0, 1));

    // Another client is not blocked: the admin gets in from there.
    let r = post_login(http, ip(2), &token, ADMIN, PASSWORD).await;
    assert_eq!((r.status, r.headers.get("location").and_then(|v| v.to_str().ok())), (303, Some("/dashboard/")));

    // 50 guesses at once from a third client: checks are charged before they run.
    let before = count(&metrics(http).await, "checks", "dashboard");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let token = token.clone();
        tasks.spawn(async move { post_login(http, ip(3), &token, &format!("burst{i}@local.test"), "x").await.status });
    }
    let parallel = tally(&tasks.join_all().await);
    let checked = count(&metrics(http).await, "checks", "dashboard") - before;
    println!("dashboard, one client, 50 parallel guesses: {checked} checked, statuses {parallel:?}");
    assert!(checked <= MAX, "{checked} checks");
    assert_eq!(parallel.get(&429).copied().unwrap_or(0), 50 - checked);
}

#[tokio::test]
async fn a_client_blocked_by_smtp_auth_failures_is_refused_on_the_dashboard() {
    let d = daemon().await;
    let http = d.http.expect("http listener");
    let token = login_token(http).await;
    let mut c = smtp_from(&d, ip(4)).await;
    let mut replies = Vec::new();
    for i in 0..8 {
        let r = c.cmd(&format!("AUTH PLAIN {}", plain(&format!("guess{i}@local.test"), "wrong"))).await;
        replies.push(r.code);
    }
    println!("SMTP AUTH, one client: 8 wrong passwords, replies {:?}", tally(&replies));
    assert_eq!(replies, [535, 535, 535, 535, 535, 454, 454, 454]);
    let r = post_login(http, ip(4), &token, ADMIN, PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let m = metrics(http).await;
    assert_eq!((count(&m, "checks", "smtp"), count(&m, "failures", "smtp"), count(&m, "throttled", "smtp")), (5, 5, 3));
    assert_eq!((count(&m, "checks", "dashboard"), count(&m, "throttled", "dashboard")), (0, 1));
}

#[tokio::test]
async fn a_login_guessed_from_many_clients_is_locked_except_where_its_owner_logged_in() {
    let d = daemon().await;
    let http = d.http.expect("http listener");
    let token = login_token(http).await;
    // The admin logs in from 127.0.0.1: that network is now known to the login.
    assert_eq!(post_login(http, ip(1), &token, ADMIN, PASSWORD).await.status, 303);

    // A botnet: 40 clients, one wrong guess each for the admin.
    let mut statuses = Vec::new();
    for bot in 10..50 {
        statuses.push(post_login(http, ip(bot), &token, ADMIN, &format!("guess {bot}")).await.status);
    }
    let m = metrics(http).await;
    let checks = count(&m, "checks", "dashboard") - 1;
    let t = tally(&statuses);
    println!("dashboard, one login from 40 clients: {checks} checked, statuses {t:?}");
    assert!(checks <= MAX, "{checks} checks");
    assert_eq!(t.get(&429).copied().unwrap_or(0), 40 - checks);

    // The right password from a new network: refused unchecked, on both doors.
    assert_eq!(post_login(http, ip(60), &token, ADMIN, PASSWORD).await.status, 429);
    let mut c = smtp_from(&d, ip(61)).await;
    c.cmd(&format!("AUTH PLAIN {}", plain(ADMIN, PASSWORD))).await.expect("454 4.7.0");
    // From where the admin logged in before, the password is still checked: the attacker cannot
    // lock the owner out.
    let r = post_login(http, ip(1), &token, ADMIN, PASSWORD).await;
    assert_eq!((r.status, r.headers.get("location").and_then(|v| v.to_str().ok())), (303, Some("/dashboard/")));
    let mut c = smtp_from(&d, ip(1)).await;
    c.cmd(&format!("AUTH PLAIN {}", plain(ADMIN, PASSWORD))).await.expect("235 2.7.0");
    // …and that does not unlock the login for the others.
    assert_eq!(post_login(http, ip(60), &token, ADMIN, PASSWORD).await.status, 429);

    // And the other way round: SMTP AUTH guesses at a login from 5 clients lock it on the dashboard.
    for bot in 70..75 {
        let mut c = smtp_from(&d, ip(bot)).await;
        c.cmd(&format!("AUTH PLAIN {}", plain(USER, "wrong"))).await.expect("535 5.7.8");
    }
    let mut c = smtp_from(&d, ip(75)).await;
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, USER_PASSWORD))).await.expect("454 4.7.0");
    let r = post_login(http, ip(76), &token, USER, USER_PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let m = metrics(http).await;
    println!(
        "after: dashboard {} checked / {} throttled, SMTP {} checked / {} throttled",
        count(&m, "checks", "dashboard"),
        count(&m, "throttled", "dashboard"),
        count(&m, "checks", "smtp"),
        count(&m, "throttled", "smtp")
    );
}
