//! Compromised-account detection (issue 19, item 4), end to end on loopback with the daemon's
//! clock injected (`time::Clock::manual`: hours pass when the test says, nothing sleeps):
//! a login that keeps a steady hourly load sends on; the same login's burst over SMTP AUTH is
//! refused with 451 4.7.1 exactly at the message past `burst_factor` × its baseline (not one
//! early), its `account_suspected` event reaches a webhook receiver, the dashboard lists it and
//! one click resumes it; a login from a never-seen network pauses the account.
//! And, on the detector's pure core, a week of steady synthetic traffic of many accounts
//! (after the warm-up) for the false-positive rate, and a 20x burst of each for the detection
//! rate; both figures are printed (`cargo test --test it suspect -- --nocapture`).
//!
//! Must not: use any address outside 127.0.0.0/8, deliver anything (queue.hold), or sleep to
//! let time pass.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mailerd::smtp::address::Domain;
use mailerd::store::{EventKind, Hour, Scope, Store};
use mailerd::suspect::{Baselines, Signal};
use mailerd::time::{Clock, Timestamp};

use crate::harness::http::{Page, form_call, pair_of, webhook_receiver};
use crate::harness::smtp::{Reply, plain};
use crate::harness::{Client, TestDaemon};

const USER: &str = "app@local.test";
const ADMIN: &str = "ops@local.test";
const PASSWORD: &str = "pw of a login";
/// 2026-12-01 00:00 UTC, a whole hour.
const T0: i64 = 1_796_083_200_000;

async fn daemon(account: &str, clock: Clock, extra: &str) -> TestDaemon {
    let d = TestDaemon::with_clock(
        &format!(
            "[listen]\nhttp = \"127.0.0.1:0\"\n[dashboard]\nadmins = [\"{ADMIN}\"]\n[queue]\nhold = true\n\
             [routes]\n\"dest.test\" = \"127.0.0.1:9\"\n[limits]\nmax_errors = 1000\n\
             [account]\n{account}\n{extra}"
        ),
        clock,
    )
    .await;
    d.add_user(USER, PASSWORD, None).await;
    d.add_user(ADMIN, PASSWORD, None).await;
    d
}

/// A submission session from `from` after STARTTLS and AUTH as USER.
async fn logged_in(d: &TestDaemon, from: IpAddr) -> Client {
    let mut c = Client::connect_from(d.submission, from).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.starttls(&d.cert_path()).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASSWORD))).await.expect("235 2.7.0");
    c
}

/// One message to `to`: the reply that ended the transaction (RCPT's when it refused).
async fn send(c: &mut Client, to: &str) -> Reply {
    c.cmd(&format!("MAIL FROM:<{USER}>")).await.expect("250");
    let r = c.cmd(&format!("RCPT TO:<{to}>")).await;
    if r.code != 250 {
        c.cmd("RSET").await.expect("250");
        return r;
    }
    c.cmd("DATA").await.expect("354");
    c.send_raw(format!("From: <{USER}>\r\nSubject: news\r\n\r\nhello {to}\r\n").as_bytes()).await;
    c.cmd(".").await
}

fn loopback(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

#[tokio::test]
async fn a_burst_over_smtp_auth_is_paused_exactly_past_the_limit_reported_and_resumed() {
    let clock = Clock::manual(Timestamp(T0 + 60_000));
    let (hook, hooked) = webhook_receiver().await;
    let d = daemon(
        "burst_factor = 4.0\nwarmup = 10800\nbaseline_window = 86400\nburst_min_messages = 5\nburst_min_domains = 50\nnew_network = false",
        clock.clone(),
        &format!("[[webhooks]]\nurl = \"http://{hook}/hook\"\nsecret = \"whsec_test_0123456789\"\nevents = [\"account_suspected\"]\n"),
    )
    .await;
    let mut c = logged_in(&d, loopback(1)).await;
    // A steady load: 6 hours of 4 to 7 messages; hours 3-5 are past the 3 h warm-up and are
    // checked (limit 4 x 7 = 28), none trips.
    let steady = [5, 7, 4, 6, 5, 6];
    for (hour, n) in steady.iter().enumerate() {
        clock.set(Timestamp(T0 + hour as i64 * Hour::MS + 60_000));
        for i in 0..*n {
            send(&mut c, &format!("reader{i}@dest.test")).await.expect("250 2.0.0");
        }
    }
    assert_eq!(d.store().account_pause("user:app@local.test").await.unwrap(), None, "a steady load is not paused");

    // Hour 6: a burst. The baseline is the busiest hour of the day before (7): 28 go, the 29th
    // is refused after its DATA, and the account is paused.
    clock.set(Timestamp(T0 + 6 * Hour::MS + 60_000));
    let mut accepted = 0;
    let refusal = loop {
        let r = send(&mut c, &format!("victim{accepted}@dest.test")).await;
        if r.code != 250 {
            break r;
        }
        accepted += 1;
        assert!(accepted <= 28, "the 29th message must not be accepted");
    };
    assert_eq!(accepted, 28, "exactly 4 x the baseline of 7 accepted, not one fewer");
    refusal.expect("451 4.7.1");
    assert!(
        refusal.first().contains("messages_per_hour: 29 messages this hour, over the limit 28"),
        "{}",
        refusal.first()
    );
    // Paused: the next message is refused at RCPT (the breaker's pause, from the store).
    send(&mut c, "victim99@dest.test").await.expect("451 4.7.1");
    let pause = d.store().account_pause("user:app@local.test").await.unwrap().expect("paused");
    assert!(pause.detail.starts_with("messages_per_hour: 29"), "{pause:?}");

    // The event reaches the webhook receiver (and the event stream).
    let mut body = None;
    for _ in 0..400 {
        body = hooked.lock().unwrap().first().cloned();
        if body.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let v: serde_json::Value = serde_json::from_str(&body.expect("a webhook call")).unwrap();
    assert_eq!(v["type"], "account_suspected");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("user:app@local.test: messages_per_hour: 29") && detail.contains("baseline of 7"),
        "{v}"
    );
    let events = d.store().events_after(0, Some(EventKind::AccountSuspected), &Scope::All, 100).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");

    // The dashboard lists it; one click resumes it.
    let http = d.http.unwrap();
    let (cookie, page) = dashboard_login(http).await;
    let list = form_call(http, None, "GET", "/dashboard/accounts", Some(&cookie), None).await;
    assert!(list.text.contains("user:app@local.test") && list.text.contains("messages_per_hour"), "{}", list.text);
    let csrf = list.csrf();
    let _ = page;
    let r = form_call(
        http,
        None,
        "POST",
        "/dashboard/accounts/resume",
        Some(&cookie),
        Some(&[("account", "user:app@local.test"), ("csrf", &csrf)]),
    )
    .await;
    assert!(r.status == 200 && r.text.contains("sends again"), "{} {}", r.status, r.text);
    assert_eq!(d.store().account_pause("user:app@local.test").await.unwrap(), None);
    // Resumed: the admin said the burst was wanted, so the rest of the hour is not held again.
    send(&mut c, "victim100@dest.test").await.expect("250 2.0.0");
    send(&mut c, "victim101@dest.test").await.expect("250 2.0.0");
}

async fn dashboard_login(http: SocketAddr) -> (String, Page) {
    let form = form_call(http, None, "GET", "/dashboard/login", None, None).await;
    let login_cookie = pair_of(&form.cookies()[0]);
    let csrf = form.csrf();
    let r = form_call(
        http,
        None,
        "POST",
        "/dashboard/login",
        Some(&login_cookie),
        Some(&[("user", ADMIN), ("password", PASSWORD), ("csrf", &csrf)]),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let cookie = r.cookies().iter().map(|c| pair_of(c)).find(|c| c.starts_with("mailerd_session")).expect("session");
    (cookie, r)
}

#[tokio::test]
async fn a_login_from_a_never_seen_network_pauses_the_account() {
    let clock = Clock::manual(Timestamp(T0));
    let d = daemon("warmup = 3600\nnetwork_prefix_v4 = 32", clock.clone(), "").await;
    // Warm-up: the home network is learnt.
    let mut c = logged_in(&d, loopback(1)).await;
    send(&mut c, "friend@dest.test").await.expect("250 2.0.0");
    clock.advance(Duration::from_secs(2 * 3600));
    // Known network after the warm-up: fine.
    let mut c = logged_in(&d, loopback(1)).await;
    send(&mut c, "friend@dest.test").await.expect("250 2.0.0");
    assert_eq!(d.store().account_pause("user:app@local.test").await.unwrap(), None);
    // A stranger with the password: AUTH succeeds (nothing is revealed), sending does not.
    let mut s = logged_in(&d, loopback(3)).await;
    let r = send(&mut s, "victim@dest.test").await;
    r.expect("451 4.7.1");
    assert!(r.first().contains("new_network: login from 127.0.0.3/32"), "{}", r.first());
    // The owner is paused too until an admin resumes (the password is known to someone else).
    send(&mut c, "friend@dest.test").await.expect("451 4.7.1");
    let events = d.store().events_after(0, Some(EventKind::AccountSuspected), &Scope::All, 100).await.unwrap();
    let e = events.first().expect("event");
    assert!(e.detail.as_deref().unwrap().contains("(1 known networks)"), "{e:?}");
    // Resumed on the command line: the new network is known now.
    let run = d.cli(&["account", "resume", "user:app@local.test"], "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut s = logged_in(&d, loopback(3)).await;
    send(&mut s, "victim@dest.test").await.expect("250 2.0.0");
}

// ------------------------------------------------------------------ a week, compressed

/// SplitMix64: a seeded generator, so the figures are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A factor in [1 - spread, 1 + spread].
    fn jitter(&mut self, spread: f64) -> f64 {
        1.0 - spread + 2.0 * spread * (self.below(10_001) as f64 / 10_000.0)
    }
}

/// How a synthetic account sends.
#[derive(Debug, Clone, Copy)]
enum Profile {
    /// A list of `list` addresses at `hour` every day, over `spread` hours.
    DailyNewsletter { list: u64, hour: i64, spread: i64 },
    /// The same once a week, on `day`.
    WeeklyNewsletter { list: u64, day: i64, hour: i64, spread: i64 },
    /// Transactional mail following the day: `peak` per hour at midday, a fifth of it at night.
    Transactional { peak: u64 },
}

struct Synthetic {
    name: String,
    profile: Profile,
    /// Networks it logs in from (an office /24, a home /24, a cloud IPv6 /48).
    networks: Vec<[u8; 3]>,
    /// Its recipients' domains: a few big providers and a long tail.
    tail: u64,
}

fn accounts(rng: &mut Rng, n: usize) -> Vec<Synthetic> {
    (0..n)
        .map(|i| {
            let profile = match i % 3 {
                0 => Profile::DailyNewsletter {
                    list: 200 + rng.below(2_000),
                    hour: 6 + rng.below(6) as i64,
                    spread: 1 + rng.below(3) as i64,
                },
                1 => Profile::WeeklyNewsletter {
                    list: 500 + rng.below(4_000),
                    day: rng.below(7) as i64,
                    hour: 8 + rng.below(4) as i64,
                    spread: 1 + rng.below(2) as i64,
                },
                _ => Profile::Transactional { peak: 10 + rng.below(200) },
            };
            // A newsletter goes out from its one sending host; an app logs in from its servers.
            let hosts = if matches!(profile, Profile::Transactional { .. }) { 1 + rng.below(3) } else { 1 };
            let networks =
                (0..hosts).map(|_| [10 + rng.below(200) as u8, rng.below(256) as u8, rng.below(256) as u8]).collect();
            Synthetic { name: format!("user:acct{i}@example.com"), profile, networks, tail: 50 + rng.below(2_000) }
        })
        .collect()
}

/// Messages the account sends in `hour` (hours since the start; day = hour / 24).
fn volume(a: &Synthetic, rng: &mut Rng, hour: i64) -> u64 {
    let (day, h) = (hour / 24, hour % 24);
    match a.profile {
        Profile::DailyNewsletter { list, hour: at, spread } if (at..at + spread).contains(&h) => {
            (list as f64 * rng.jitter(0.15) / spread as f64) as u64
        }
        Profile::WeeklyNewsletter { list, day: d, hour: at, spread }
            if day % 7 == d && (at..at + spread).contains(&h) =>
        {
            (list as f64 * rng.jitter(0.15) / spread as f64) as u64
        }
        Profile::Transactional { peak } => {
            let daylight = (std::f64::consts::PI * (h as f64 - 6.0) / 12.0).sin().max(0.0);
            (peak as f64 * (0.2 + 0.8 * daylight) * rng.jitter(0.3)) as u64
        }
        _ => 0,
    }
}

/// A recipient domain: 60% at 10 big providers, the rest in the account's long tail.
fn recipient_domain(a: &Synthetic, rng: &mut Rng, domains: &[Domain], tail: &[Domain]) -> Domain {
    if rng.below(100) < 60 {
        domains[rng.below(domains.len() as u64) as usize].clone()
    } else {
        tail[rng.below(a.tail.min(tail.len() as u64)) as usize].clone()
    }
}

fn login_ip(a: &Synthetic, rng: &mut Rng) -> IpAddr {
    let n = a.networks[rng.below(a.networks.len() as u64) as usize];
    IpAddr::from([n[0], n[1], n[2], 1 + rng.below(250) as u8])
}

#[test]
fn a_steady_week_does_not_trip_and_a_20x_burst_does() {
    let config = mailerd::config::Config::from_toml("").unwrap().suspect;
    let mut rng = Rng(19);
    let accounts = accounts(&mut rng, 90);
    let big: Vec<Domain> = (0..10).map(|i| Domain::parse(&format!("provider{i}.test")).unwrap()).collect();
    let tail: Vec<Domain> = (0..2_000).map(|i| Domain::parse(&format!("d{i}.tail.test")).unwrap()).collect();
    let from = Domain::parse("example.com").unwrap();
    let mut b = Baselines::new(config);
    let warmup_hours = (config.warmup.as_secs() / 3600) as i64;
    let week = 7 * 24;
    let (mut trips, mut checked_messages, mut active_hours, mut logins) = (Vec::new(), 0u64, 0u64, 0u64);
    let mut sent: std::collections::HashMap<String, Vec<(i64, u64)>> = Default::default();
    // The warm-up, then one week measured; one login per active hour, messages spread over it.
    for hour in 0..warmup_hours + week {
        let measured = hour >= warmup_hours;
        for a in &accounts {
            let n = volume(a, &mut rng, hour);
            if n == 0 {
                continue;
            }
            sent.entry(a.name.clone()).or_default().push((hour, n));
            let start = T0 + hour * Hour::MS;
            let ip = login_ip(a, &mut rng);
            if let Err(s) = b.login(&a.name, ip, Timestamp(start)) {
                assert!(!measured || matches!(s, Signal::NewNetwork { .. }));
                if measured {
                    trips.push((a.name.clone(), hour, s));
                }
            }
            for i in 0..n {
                let at = Timestamp(start + (i as i64 * (Hour::MS - 1)) / n as i64);
                let to = [recipient_domain(a, &mut rng, &big, &tail)];
                if let Err(s) = b.message(&a.name, Some(&from), &to, at) {
                    trips.push((a.name.clone(), hour, s));
                }
            }
            if measured {
                checked_messages += n;
                active_hours += 1;
                logins += 1;
            }
        }
    }
    let fp = trips.len() as f64 / active_hours as f64;
    println!(
        "steady week after a {warmup_hours} h warm-up: {} accounts (daily and weekly newsletters, transactional), \
         {checked_messages} messages, {logins} logins in {active_hours} active account-hours: {} trips \
         (false-positive rate {:.4}% per active account-hour, {} of {} accounts)",
        accounts.len(),
        trips.len(),
        fp * 100.0,
        trips.iter().map(|t| &t.0).collect::<std::collections::HashSet<_>>().len(),
        accounts.len()
    );
    for t in &trips {
        println!("  false positive: {} at hour {}: {:?}", t.0, t.1, t.2);
    }
    assert!(trips.is_empty(), "a steady load must not trip");

    // Then each account's burst: 20x its busiest hour of the window, to spam lists (many domains).
    let hour = warmup_hours + week;
    let (mut caught, mut by_messages, mut by_domains, mut under_floor) = (0, 0, 0, 0);
    let mut at_fraction = Vec::new();
    for a in &accounts {
        let window = (config.baseline_window.as_secs() / 3600) as i64;
        let baseline = sent[&a.name].iter().filter(|(h, _)| *h >= hour - window).map(|(_, n)| *n).max().unwrap_or(1);
        let burst = 20 * baseline;
        let start = T0 + hour * Hour::MS;
        let mut tripped = None;
        for i in 0..burst {
            let to = [tail[rng.below(tail.len() as u64) as usize].clone()];
            if let Err(s) = b.message(&a.name, Some(&from), &to, Timestamp(start + i as i64)) {
                tripped = Some((i + 1, s));
                break;
            }
        }
        if let Some((i, _)) = &tripped {
            at_fraction.push(*i as f64 / burst as f64);
        }
        match tripped {
            Some((_, Signal::MessagesPerHour { .. })) => by_messages += 1,
            Some((_, Signal::DomainsPerHour { .. })) => by_domains += 1,
            Some(_) => {}
            None => {
                under_floor += 1;
                continue;
            }
        }
        caught += 1;
    }
    println!(
        "20x burst of each account: {caught} of {} paused ({by_messages} by messages per hour, {by_domains} by recipient \
         domains per hour), {under_floor} not paused; paused after {:.0}% to {:.0}% of the burst",
        accounts.len(),
        at_fraction.iter().copied().fold(f64::MAX, f64::min) * 100.0,
        at_fraction.iter().copied().fold(0.0, f64::max) * 100.0
    );
    assert_eq!(caught, accounts.len(), "every 20x burst trips");
}

#[tokio::test]
async fn an_api_key_past_its_limit_gets_403_account_paused() {
    let clock = Clock::manual(Timestamp(T0));
    let d = daemon("warmup = 0\nburst_factor = 2.0\nburst_min_messages = 3", clock.clone(), "").await;
    let (key, record) = mailerd::http::auth::generate("shop", Scope::All).unwrap();
    d.store().create_api_key(record.clone()).await.unwrap();
    let api = d.http.unwrap();
    let send = |i: usize| {
        let key = key.clone();
        async move {
            let body = serde_json::json!({"from": "shop@local.test", "to": [format!("c{i}@dest.test")], "text": "hi"});
            crate::harness::http::post_json(api, "/api/v1/messages", Some(&key), &body).await
        }
    };
    // No history: the floor of 3 an hour; the 4th is refused and pauses the key.
    for i in 0..3 {
        let r = send(i).await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    let r = send(3).await;
    assert_eq!((r.status, r.json["type"].as_str()), (403, Some("/problems/account-paused")), "{}", r.text);
    assert!(r.text.contains("messages_per_hour: 4 messages this hour, over the limit 3"), "{}", r.text);
    let account = format!("apikey:{}", record.id);
    assert!(d.store().account_pause(&account).await.unwrap().is_some());
    assert_eq!(send(4).await.status, 403, "paused");
}
