//! One conformance suite for every `Store` backend: each case below runs against SQLite (a
//! temporary file) and against PostgreSQL (a fresh schema per case, when
//! MAILERD_TEST_POSTGRES_URL is set; otherwise a SKIP line), so both give the same answers.
//! Plus one end-to-end run of the daemon on PostgreSQL: SMTP in, Maildir out.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mailerd::smtp::address::{Domain, Mailbox, ReversePath};
use mailerd::smtp::command::{Notify, Ret};
use mailerd::smtp::reply::EnhancedStatus;
use mailerd::store::postgres::PgStore;
use mailerd::store::sqlite::SqliteStore;
use mailerd::store::{
    AccountPause, ApiKey, AppPassword, Attempt, Destination, EventKind, Feedback, IdempotencyRecord, MessageId,
    NewMessage, NewRecipient, Origin, RecipientId, RecipientState, ReportMark, Scope, Store, StoreError, Suppression,
    TotpSecret, Transport, Via,
};
use mailerd::time::Timestamp;

use crate::harness::postgres::{TestSchema, url_or_skip};
use crate::harness::{Client, TestDaemon};

/// A store under test and what keeps it alive (its directory or its schema).
struct Backend {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<TestSchema>,
}

fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("mailerd.db")).expect("open SQLite");
    Backend { store: Arc::new(store), _dir: Some(dir), _schema: None }
}

async fn postgres(test: &str) -> Option<Backend> {
    let admin = url_or_skip(&format!("store_conformance::{test}"))?;
    let schema = TestSchema::create(&admin, test).await;
    let store = PgStore::connect(&schema.url).await.expect("open PostgreSQL store");
    Some(Backend { store: Arc::new(store), _dir: None, _schema: Some(schema) })
}

/// Generates `sqlite::NAME` and `postgres::NAME` for every case `NAME(store)`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = super::sqlite();
                    super::$name(b.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(b) = super::postgres(stringify!($name)).await else { return };
                    super::$name(b.store.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    insert_is_read_back,
    insert_with_a_taken_id_stores_nothing,
    claim_takes_due_recipients_of_one_transport,
    a_lease_hides_the_recipient_until_it_expires,
    only_the_owner_renews_a_lease,
    connection_slots_are_shared_by_all_owners,
    claim_honours_limit_and_time_order,
    two_owners_never_get_the_same_recipient,
    only_the_lease_owner_records_an_outcome,
    deferred_recipients_come_due_at_their_time,
    mailbox_quota_is_accounted,
    report_marks_are_taken_exactly_once,
    concurrent_reports_on_one_recipient_store_one,
    suppression_add_list_remove,
    an_identical_suppression_is_recorded_once,
    feedback_turns_delivered_into_bounced,
    sent_log_remembers_remote_recipients,
    notes_become_check_events,
    delete_removes_message_but_keeps_sent_log,
    retry_now_makes_deferred_due,
    queue_operations_select_and_count,
    queue_summary_skips_feedback_and_finished_recipients,
    release_body_only_when_all_final,
    a_record_settles_what_has_nothing_to_report,
    concurrent_writers_are_answered_each_on_their_own,
    a_cluster_secret_is_the_first_callers,
    api_keys_cursors_pauses_and_event_stream,
    dashboard_queries_answer_alike,
    api_keys_are_listed_rotated_and_revoked,
    suppression_entries_have_scopes,
    events_are_filtered_by_sender_scope,
    every_destination_is_read_back_typed,
    idempotency_records_commit_with_their_message,
    mta_sts_policies_and_tls_results_are_kept_per_domain,
    tls_sessions_are_counted_per_day_and_taken_once,
    passwords_age_and_are_rehashed_only_when_unchanged,
    app_passwords_are_named_looked_up_by_hash_touched_and_revoked,
    second_factors_accept_each_step_and_recovery_code_once,
    a_deleted_login_takes_its_credentials_with_it,
    sender_domain_suppressions_refuse_only_their_sender,
    a_batch_of_messages_is_stored_all_or_none,
    a_sandbox_message_is_recorded_and_never_claimed,
    the_learned_filter_trains_relabels_and_stays_within_its_bounds,
    rejected_recipients_and_attempt_numbers_are_in_the_event_stream,
    the_suppression_list_pages_by_cursor,
    messages_are_searched_by_state_recipient_tag_and_time,
    account_activity_adds_up_across_flushes_and_nodes,
    message_id_headers_are_kept_per_message,
    templates_are_kept_per_key_and_paged_by_name,
    suppressions_of_many_addresses_are_read_at_once,
);

fn origin() -> Origin {
    Origin {
        via: Via::Smtp,
        client_ip: "192.0.2.1".into(),
        helo: "client.test".into(),
        // auth_user None, tls false, and whatever else an origin may carry: the defaults.
        ..Default::default()
    }
}

fn rcpt(address: &str, transport: Transport) -> NewRecipient {
    NewRecipient {
        address: address.into(),
        orcpt: None,
        notify: None,
        destination: match transport {
            Transport::Local => Destination::Mailbox(address.into()),
            Transport::Remote => Destination::Remote,
            Transport::Feedback => Destination::NullSenderTo(address.into()),
        },
    }
}

/// An envelope sender: `<>` for "", else the address.
fn path(address: &str) -> ReversePath {
    if address.is_empty() { ReversePath::Null } else { ReversePath::Mailbox(Mailbox::parse(address).expect("address")) }
}

fn message(id: &str, at: i64, recipients: Vec<NewRecipient>) -> NewMessage {
    NewMessage {
        id: MessageId(id.into()),
        reverse_path: path("sender@example.com"),
        envid: None,
        ret: None,
        received_at: Timestamp(at),
        origin: origin(),
        body: format!("Message-ID: <{id}@example.com>\r\nSubject: t\r\n\r\nbody of {id}\r\n").into_bytes(),
        header_message_id: None,
        recipients,
        reports: Vec::new(),
        notes: Vec::new(),
        rejected: Vec::new(),
        idempotency: None,
    }
}

fn attempt(recipient: RecipientId, message: &str, state: RecipientState) -> Attempt {
    Attempt {
        recipient,
        message: MessageId(message.into()),
        state,
        status: match state {
            RecipientState::Delivered => EnhancedStatus::new(2, 0, 0),
            RecipientState::Deferred => EnhancedStatus::new(4, 4, 1),
            _ => EnhancedStatus::new(5, 1, 1),
        },
        detail: format!("{} by test", state.as_str()),
        reply_code: Some(match state {
            RecipientState::Delivered => 250,
            RecipientState::Deferred => 451,
            _ => 550,
        }),
        remote: Some("mx.example.net[192.0.2.9]:25".into()),
        next_attempt_at: None,
        mailbox_bytes: None,
        event: None,
    }
}

const T0: i64 = 1_700_000_000_000;
const LEASE: Duration = Duration::from_secs(600);

/// The event stream from the start once `n` events show: on PostgreSQL the stream holds back
/// events behind any write transaction still running on the server (other tests' included),
/// so committed events may show a moment later. Never more than 5 s.
async fn settled_events(s: &dyn Store, kind: Option<&str>, n: usize) -> Vec<mailerd::store::EventRecord> {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let events = s.events_after(0, kind.and_then(EventKind::parse), &Scope::All, 100).await.unwrap();
        if events.len() >= n || std::time::Instant::now() > until {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn claim(s: &dyn Store, t: Transport, now: i64, limit: usize, owner: &str) -> Vec<mailerd::store::Claim> {
    let mut c = s.claim_due(t, Timestamp(now), limit, LEASE, owner).await.expect("claim");
    // Which of several equally due recipients comes first is not part of the contract.
    c.sort_by_key(|c| c.recipient.0);
    c
}

async fn states(s: &dyn Store, id: &str) -> Vec<(String, RecipientState, u32)> {
    let d = s.message_detail(&MessageId(id.into())).await.expect("detail").expect("message exists");
    d.entry.recipients.into_iter().map(|r| (r.address, r.state, r.attempts)).collect()
}

fn scope(domains: &[&str]) -> Scope {
    Scope::Domains(domains.iter().map(|d| Domain::parse(d).expect("domain")).collect())
}

fn api_key(id: &str, name: &str, hash: &str, scope: Scope) -> ApiKey {
    ApiKey {
        id: id.into(),
        name: name.into(),
        hash: hash.repeat(32),
        scope,
        created_at: String::new(),
        last_used_at: None,
        sandbox: false,
    }
}

// --- the cases ---

async fn insert_is_read_back(s: Arc<dyn Store>) {
    let mut m =
        message("M1", T0, vec![rcpt("bob@local.test", Transport::Local), rcpt("Alice@Example.NET", Transport::Remote)]);
    m.envid = Some("env-1".into());
    m.ret = Some(Ret::Hdrs);
    m.recipients[1].notify = Some(Notify { failure: true, delay: true, ..Notify::default() });
    m.recipients[1].orcpt = Some("rfc822;Alice@Example.NET".into());
    let body = m.body.clone();
    s.insert_message(m).await.expect("insert");

    assert_eq!(s.load_body(&MessageId("M1".into())).await.unwrap(), Some(body.clone()));
    assert_eq!(s.load_body(&MessageId("nope".into())).await.unwrap(), None);
    let d = s.message_detail(&MessageId("M1".into())).await.unwrap().expect("detail");
    assert_eq!(d.envid.as_deref(), Some("env-1"));
    assert_eq!(d.ret, Some(Ret::Hdrs));
    assert_eq!(d.origin, origin());
    assert_eq!(d.entry.size, body.len() as u64);
    assert_eq!(d.entry.reverse_path, "sender@example.com");
    assert_eq!(d.entry.received_at, Timestamp(T0).iso8601());
    let r: Vec<_> = d.entry.recipients.iter().map(|r| (r.address.as_str(), r.transport, r.state)).collect();
    assert_eq!(
        r,
        [
            ("bob@local.test", Transport::Local, RecipientState::Queued),
            ("Alice@Example.NET", Transport::Remote, RecipientState::Queued)
        ]
    );
    assert_eq!(d.entry.recipients[1].notify, Some(Notify { failure: true, delay: true, ..Notify::default() }));
    assert_eq!(d.entry.recipients[1].orcpt.as_deref(), Some("rfc822;Alice@Example.NET"));
    // The JSON of `queue show --json` and the API spells RET and NOTIFY as before they were typed.
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!((&json["ret"], &json["recipients"][1]["notify"]), (&"hdrs".into(), &"FAILURE,DELAY".into()));
    assert_eq!(json["recipients"][0]["notify"], serde_json::Value::Null);
    let kinds: Vec<_> = d.events.iter().map(|e| (e.kind.as_str(), e.recipient.as_deref())).collect();
    assert_eq!(kinds, [("queued", Some("bob@local.test")), ("queued", Some("Alice@Example.NET"))]);
    assert_eq!(d.events[0].detail.as_deref(), Some("from 192.0.2.1 via smtp"));

    let q = s.queue_list(10).await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].id.0, "M1");
    let f = s.report_facts(&MessageId("M1".into())).await.unwrap().expect("facts");
    assert_eq!(f.origin_via, Via::Smtp);
    assert_eq!(f.envid.as_deref(), Some("env-1"));
    assert_eq!(f.received_at, Timestamp(T0));
    assert_eq!(f.recipients.len(), 2);
    assert!(f.recipients.iter().all(|r| r.attempts == 0 && !r.final_reported && !r.delay_reported));
    assert!(s.report_facts(&MessageId("nope".into())).await.unwrap().is_none());
}

async fn insert_with_a_taken_id_stores_nothing(s: Arc<dyn Store>) {
    s.insert_message(message("DUP", T0, vec![rcpt("a@local.test", Transport::Local)])).await.expect("first");
    let again = message("DUP", T0, vec![rcpt("b@local.test", Transport::Local), rcpt("c@x.test", Transport::Remote)]);
    assert!(s.insert_message(again).await.is_err(), "a second message with the same id is refused");
    assert_eq!(states(&*s, "DUP").await, [("a@local.test".to_string(), RecipientState::Queued, 0)]);
    // The store is still usable after the failed insert.
    s.insert_message(message("DUP2", T0, vec![rcpt("d@local.test", Transport::Local)])).await.expect("next");
}

async fn claim_takes_due_recipients_of_one_transport(s: Arc<dyn Store>) {
    let mut m = message("C1", T0, vec![rcpt("bob@local.test", Transport::Local), rcpt("al@ex.net", Transport::Remote)]);
    m.recipients[1].notify = Some(Notify { never: true, ..Notify::default() });
    let size = m.body.len() as u64;
    s.insert_message(m).await.unwrap();
    // Not due before it was received.
    assert!(claim(&*s, Transport::Local, T0 - 1, 10, "n1").await.is_empty());
    let local = claim(&*s, Transport::Local, T0, 10, "n1").await;
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].address, "bob@local.test");
    assert_eq!(local[0].destination, Destination::Mailbox("bob@local.test".into()));
    assert_eq!(local[0].message.0, "C1");
    assert_eq!(local[0].size, size);
    assert_eq!(local[0].received_at, Timestamp(T0));
    assert_eq!(local[0].reverse_path, path("sender@example.com"));
    assert_eq!(local[0].attempts, 0);
    let remote = claim(&*s, Transport::Remote, T0, 10, "n1").await;
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0].address, "al@ex.net");
    assert_eq!(remote[0].notify, Some(Notify { never: true, ..Notify::default() }));
    assert!(claim(&*s, Transport::Feedback, T0, 10, "n1").await.is_empty());
}

async fn a_lease_hides_the_recipient_until_it_expires(s: Arc<dyn Store>) {
    s.insert_message(message("L1", T0, vec![rcpt("bob@local.test", Transport::Local)])).await.unwrap();
    let first = claim(&*s, Transport::Local, T0, 10, "dead-node").await;
    assert_eq!(first.len(), 1);
    // Leased: nobody else gets it while the lease runs.
    assert!(claim(&*s, Transport::Local, T0 + 1000, 10, "n2").await.is_empty());
    let end = T0 + LEASE.as_millis() as i64;
    assert!(claim(&*s, Transport::Local, end - 1, 10, "n2").await.is_empty());
    // The owner died: at the lease's end the recipient is due again, for anyone.
    let again = claim(&*s, Transport::Local, end, 10, "n2").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].recipient, first[0].recipient);
    // Still queued (a claim is not an attempt) and still in the queue list.
    assert_eq!(states(&*s, "L1").await, [("bob@local.test".to_string(), RecipientState::Queued, 0)]);
    assert_eq!(s.queue_list(10).await.unwrap().len(), 1);
}

async fn only_the_owner_renews_a_lease(s: Arc<dyn Store>) {
    s.insert_message(message("N1", T0, vec![rcpt("al@ex.net", Transport::Remote)])).await.unwrap();
    let a = claim(&*s, Transport::Remote, T0, 10, "n1").await;
    let rid = a[0].recipient;
    let lease = LEASE.as_millis() as i64;
    assert_eq!(s.renew_leases("n2", &[rid], Timestamp(T0 + 5 * lease)).await.unwrap(), 0, "not n2's lease");
    assert_eq!(s.renew_leases("n1", &[rid], Timestamp(T0 + 2 * lease)).await.unwrap(), 1);
    // Renewed: still hidden where the first lease would have ended.
    assert!(claim(&*s, Transport::Remote, T0 + lease, 10, "n2").await.is_empty());
    // n1 stopped renewing (it died): due again at the renewed lease's end.
    let b = claim(&*s, Transport::Remote, T0 + 2 * lease, 10, "n2").await;
    assert_eq!(b.len(), 1);
    assert_eq!(s.renew_leases("n1", &[rid], Timestamp(T0 + 9 * lease)).await.unwrap(), 0, "taken over");
    s.record_attempts("n2", vec![attempt(rid, "N1", RecipientState::Delivered)]).await.unwrap();
    assert_eq!(s.renew_leases("n2", &[rid], Timestamp(T0 + 9 * lease)).await.unwrap(), 0, "recorded: no lease");
    assert_eq!(states(&*s, "N1").await, [("al@ex.net".to_string(), RecipientState::Delivered, 1)]);
}

async fn connection_slots_are_shared_by_all_owners(s: Arc<dyn Store>) {
    let at = |ms: i64| Timestamp(T0 + ms);
    let lease = LEASE.as_millis() as i64;
    // A store of one process has no cluster part: the per-node semaphore is the limit.
    let Some(s) = s.cluster() else { return };
    let take = |owner: &'static str, now: i64| {
        let s = s.clone();
        async move { s.acquire_slot("mx.a", 2, owner, at(now), at(now + lease)).await.unwrap() }
    };
    assert_eq!(take("n1", 0).await, Some(0));
    assert_eq!(take("n2", 0).await, Some(1));
    assert_eq!(take("n3", 0).await, None, "both slots are held");
    s.release_slot("mx.a", 0, "n2").await.unwrap(); // not n2's: nothing changes
    assert_eq!(take("n3", 1).await, None);
    s.release_slot("mx.a", 0, "n1").await.unwrap();
    assert_eq!(take("n3", 2).await, Some(0));
    // Other destinations have their own slots.
    assert_eq!(s.acquire_slot("mx.b", 1, "n3", at(2), at(lease)).await.unwrap(), Some(0));
    // n2 renews; n3 dies: its slots free themselves at their lease's end.
    let held = [("mx.a".to_string(), 1), ("mx.a".to_string(), 0), ("mx.b".to_string(), 0)];
    assert_eq!(s.renew_slots("n2", &held, at(3 * lease)).await.unwrap(), [("mx.a".to_string(), 1)], "only n2's own");
    assert_eq!(take("n4", lease + 3).await, Some(0));
    assert_eq!(take("n5", lease + 3).await, None, "n2's renewed slot still counts");
    // Many nodes asking at once: never more owners than slots.
    let mut asks = Vec::new();
    for i in 0..12 {
        let s = s.clone();
        asks.push(tokio::spawn(
            async move { s.acquire_slot("mx.c", 3, &format!("c{i}"), at(0), at(lease)).await.unwrap() },
        ));
    }
    let mut got = Vec::new();
    for a in asks {
        got.extend(a.await.unwrap());
    }
    got.sort();
    assert!(got.len() <= 3 && got.windows(2).all(|w| w[0] != w[1]), "{got:?}");
}

async fn claim_honours_limit_and_time_order(s: Arc<dyn Store>) {
    // Received newest first; claims come oldest first.
    for i in 0..5 {
        let id = format!("O{i}");
        s.insert_message(message(&id, T0 + 100 * (5 - i), vec![rcpt(&format!("r{i}@x.test"), Transport::Remote)]))
            .await
            .unwrap();
    }
    let now = T0 + 10_000;
    let a = claim(&*s, Transport::Remote, now, 2, "n1").await;
    let mut ids: Vec<_> = a.iter().map(|c| c.message.0.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["O3", "O4"], "the two longest due");
    let b = claim(&*s, Transport::Remote, now, 10, "n1").await;
    let mut ids: Vec<_> = b.iter().map(|c| c.message.0.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["O0", "O1", "O2"]);
    assert!(claim(&*s, Transport::Remote, now, 10, "n1").await.is_empty());
}

async fn two_owners_never_get_the_same_recipient(s: Arc<dyn Store>) {
    const MESSAGES: usize = 60;
    const PER: usize = 5;
    for i in 0..MESSAGES {
        let rcpts = (0..PER).map(|j| rcpt(&format!("u{j}@d{i}.test"), Transport::Remote)).collect();
        s.insert_message(message(&format!("P{i:03}"), T0 + i as i64, rcpts)).await.unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..6 {
        let s = s.clone();
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let c = claim(&*s, Transport::Remote, T0 + 1_000_000, 7, &format!("node{w}")).await;
                if c.is_empty() {
                    break;
                }
                got.extend(c.into_iter().map(|c| c.recipient.0));
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a recipient was claimed twice");
    assert_eq!(all.len(), MESSAGES * PER, "every recipient was claimed once");
}

async fn only_the_lease_owner_records_an_outcome(s: Arc<dyn Store>) {
    s.insert_message(message("R1", T0, vec![rcpt("al@ex.net", Transport::Remote)])).await.unwrap();
    let a = claim(&*s, Transport::Remote, T0, 10, "node-a").await;
    let rid = a[0].recipient;
    let expired = T0 + LEASE.as_millis() as i64;
    let b = claim(&*s, Transport::Remote, expired, 10, "node-b").await;
    assert_eq!(b[0].recipient, rid);
    // node-a comes back late: its outcome is dropped, node-b's stands.
    s.record_attempts("node-a", vec![attempt(rid, "R1", RecipientState::Bounced)]).await.unwrap();
    assert_eq!(states(&*s, "R1").await, [("al@ex.net".to_string(), RecipientState::Queued, 0)]);
    s.record_attempts("node-b", vec![attempt(rid, "R1", RecipientState::Delivered)]).await.unwrap();
    assert_eq!(states(&*s, "R1").await, [("al@ex.net".to_string(), RecipientState::Delivered, 1)]);
    // Recording again (the lease is gone) changes nothing.
    s.record_attempts("node-b", vec![attempt(rid, "R1", RecipientState::Bounced)]).await.unwrap();
    let d = s.message_detail(&MessageId("R1".into())).await.unwrap().unwrap();
    assert_eq!(d.entry.recipients[0].state, RecipientState::Delivered);
    assert_eq!(d.entry.recipients[0].last_status.as_deref(), Some("2.0.0"));
    assert_eq!(d.entry.recipients[0].remote_mta.as_deref(), Some("mx.example.net[192.0.2.9]:25"));
    let kinds: Vec<_> = d.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["queued", "delivered"]);
    assert_eq!(d.events[1].remote.as_deref(), Some("mx.example.net[192.0.2.9]:25"));
    // Final recipients are never claimed again, and leave the queue list.
    assert!(claim(&*s, Transport::Remote, expired * 2, 10, "node-c").await.is_empty());
    assert!(s.queue_list(10).await.unwrap().is_empty());
    let f = s.report_facts(&MessageId("R1".into())).await.unwrap().unwrap();
    assert_eq!(f.recipients[0].reply_code, Some(250));
    assert_eq!(f.recipients[0].attempts, 1);
    // An attempt with its own event name (e.g. a dropped forged bounce).
    s.insert_message(message("R2", T0, vec![rcpt("x@ex.net", Transport::Remote)])).await.unwrap();
    let c = claim(&*s, Transport::Remote, T0, 10, "node-a").await;
    let mut at = attempt(c[0].recipient, "R2", RecipientState::Delivered);
    at.event = Some(EventKind::ForgedBounce);
    s.record_attempts("node-a", vec![at]).await.unwrap();
    let d = s.message_detail(&MessageId("R2".into())).await.unwrap().unwrap();
    assert_eq!(d.events.last().map(|e| e.kind.as_str()), Some("forged_bounce"));
}

async fn deferred_recipients_come_due_at_their_time(s: Arc<dyn Store>) {
    s.insert_message(message(
        "D1",
        T0,
        vec![rcpt("al@ex.net", Transport::Remote), rcpt("b@ex.net", Transport::Remote)],
    ))
    .await
    .unwrap();
    let c = claim(&*s, Transport::Remote, T0, 10, "n1").await;
    assert_eq!(c.len(), 2);
    let later = T0 + 3_600_000;
    let mut deferred = attempt(c[0].recipient, "D1", RecipientState::Deferred);
    deferred.next_attempt_at = Some(Timestamp(later));
    let bounced = attempt(c[1].recipient, "D1", RecipientState::Bounced);
    s.record_attempts("n1", vec![deferred, bounced]).await.unwrap();
    let st = states(&*s, "D1").await;
    assert_eq!(st[0], ("al@ex.net".to_string(), RecipientState::Deferred, 1));
    assert_eq!(st[1], ("b@ex.net".to_string(), RecipientState::Bounced, 1));
    assert!(claim(&*s, Transport::Remote, later - 1, 10, "n1").await.is_empty());
    let again = claim(&*s, Transport::Remote, later, 10, "n2").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].recipient, c[0].recipient);
    assert_eq!(again[0].attempts, 1);
    let q = s.queue_list(10).await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].recipients[0].last_status.as_deref(), Some("4.4.1"));
}

async fn mailbox_quota_is_accounted(s: Arc<dyn Store>) {
    assert!(s.mailbox("bob@local.test").await.unwrap().is_none());
    s.upsert_mailbox("bob@local.test", Some("hash-1".into()), Some(10_000)).await.unwrap();
    let m = s.mailbox("bob@local.test").await.unwrap().expect("mailbox");
    assert_eq!((m.password_hash.as_deref(), m.quota, m.used_bytes), (Some("hash-1"), Some(10_000), 0));
    // None keeps what is there.
    s.upsert_mailbox("bob@local.test", None, None).await.unwrap();
    let m = s.mailbox("bob@local.test").await.unwrap().unwrap();
    assert_eq!((m.password_hash.as_deref(), m.quota), (Some("hash-1"), Some(10_000)));
    s.upsert_mailbox("bob@local.test", Some("hash-2".into()), None).await.unwrap();
    assert_eq!(s.mailbox("bob@local.test").await.unwrap().unwrap().password_hash.as_deref(), Some("hash-2"));

    s.insert_message(message(
        "Q1",
        T0,
        vec![rcpt("bob@local.test", Transport::Local), rcpt("carol@local.test", Transport::Local)],
    ))
    .await
    .unwrap();
    let c = claim(&*s, Transport::Local, T0, 10, "n1").await;
    let mut a = attempt(c[0].recipient, "Q1", RecipientState::Delivered);
    a.mailbox_bytes = Some(("bob@local.test".into(), 1234));
    let mut b = attempt(c[1].recipient, "Q1", RecipientState::Delivered);
    b.mailbox_bytes = Some(("carol@local.test".into(), 99));
    s.record_attempts("n1", vec![a, b]).await.unwrap();
    assert_eq!(s.mailbox("bob@local.test").await.unwrap().unwrap().used_bytes, 1234);
    // A mailbox without a login gets an account row for its usage.
    let carol = s.mailbox("carol@local.test").await.unwrap().expect("usage row");
    assert_eq!((carol.used_bytes, carol.password_hash, carol.quota), (99, None, None));
    // A stale recorder adds nothing.
    let mut stale = attempt(c[0].recipient, "Q1", RecipientState::Delivered);
    stale.mailbox_bytes = Some(("bob@local.test".into(), 1000));
    s.record_attempts("n1", vec![stale]).await.unwrap();
    assert_eq!(s.mailbox("bob@local.test").await.unwrap().unwrap().used_bytes, 1234);
}

fn dsn(id: &str, reports: Vec<(RecipientId, ReportMark)>) -> NewMessage {
    let mut m = message(id, T0 + 5000, vec![rcpt("sender@example.com", Transport::Remote)]);
    m.reverse_path = ReversePath::Null;
    m.origin.via = Via::Dsn;
    m.reports = reports;
    m
}

async fn report_marks_are_taken_exactly_once(s: Arc<dyn Store>) {
    s.insert_message(message("O1", T0, vec![rcpt("a@ex.net", Transport::Remote), rcpt("b@ex.net", Transport::Remote)]))
        .await
        .unwrap();
    let f = s.report_facts(&MessageId("O1".into())).await.unwrap().unwrap();
    let (a, b) = (f.recipients[0].id, f.recipients[1].id);
    s.insert_message(dsn("DSN1", vec![(a, ReportMark::Delay)])).await.expect("delay report");
    s.insert_message(dsn("DSN2", vec![(a, ReportMark::Final), (b, ReportMark::Final)])).await.expect("final");
    let f = s.report_facts(&MessageId("O1".into())).await.unwrap().unwrap();
    assert!(f.recipients[0].final_reported && f.recipients[0].delay_reported);
    assert!(f.recipients[1].final_reported && !f.recipients[1].delay_reported);
    // Any recipient already reported: the whole DSN is refused and nothing of it stored.
    let e = s.insert_message(dsn("DSN3", vec![(b, ReportMark::Delay), (a, ReportMark::Final)])).await;
    assert!(matches!(e, Err(StoreError::AlreadyReported)), "{e:?}");
    assert!(s.message_detail(&MessageId("DSN3".into())).await.unwrap().is_none());
    let f = s.report_facts(&MessageId("O1".into())).await.unwrap().unwrap();
    assert!(!f.recipients[1].delay_reported, "the refused DSN's marks were rolled back");
    assert!(matches!(
        s.insert_message(dsn("DSN4", vec![(a, ReportMark::Delay)])).await,
        Err(StoreError::AlreadyReported)
    ));
    s.insert_message(dsn("DSN5", vec![(b, ReportMark::Delay)])).await.expect("b's delay mark is still free");
}

async fn concurrent_reports_on_one_recipient_store_one(s: Arc<dyn Store>) {
    s.insert_message(message("O2", T0, vec![rcpt("a@ex.net", Transport::Remote)])).await.unwrap();
    let f = s.report_facts(&MessageId("O2".into())).await.unwrap().unwrap();
    let rid = f.recipients[0].id;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.insert_message(dsn(&format!("CD{i}"), vec![(rid, ReportMark::Final)])).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::AlreadyReported) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one report is stored");
}

const DAY: i64 = 24 * 3600 * 1000;

/// A message at `at` carrying the idempotency record of (`api_key`, `key`) for a day.
fn idempotent(id: &str, at: i64, api_key: &str, key: &str) -> NewMessage {
    let mut m = message(id, at, vec![rcpt("a@ex.net", Transport::Remote)]);
    m.idempotency = Some(IdempotencyRecord {
        api_key: api_key.into(),
        key: key.into(),
        request_hash: format!("hash of {id}"),
        message_id: MessageId(id.into()),
        status: 202,
        response: format!("{{\"id\":\"{id}\"}}"),
        created_at: Timestamp(at),
        expires_at: Timestamp(at + DAY),
    });
    m
}

async fn idempotency_records_commit_with_their_message(s: Arc<dyn Store>) {
    let first = idempotent("I1", T0, "key1", "k-a");
    s.insert_message(first.clone()).await.unwrap();
    let read = s.idempotency("key1", "k-a", Timestamp(T0 + 1)).await.unwrap();
    assert_eq!(read.as_ref(), first.idempotency.as_ref(), "read back as written");
    // Per API key: another key's k-a is another record.
    assert_eq!(s.idempotency("key2", "k-a", Timestamp(T0)).await.unwrap(), None);
    s.insert_message(idempotent("I2", T0, "key2", "k-a")).await.expect("another API key's k-a");

    // A live key refuses the whole insert: no second message.
    match s.insert_message(idempotent("I3", T0 + 5, "key1", "k-a")).await {
        Err(StoreError::IdempotencyKeyTaken) => {}
        other => panic!("expected IdempotencyKeyTaken, got {other:?}"),
    }
    assert!(s.message_detail(&MessageId("I3".into())).await.unwrap().is_none(), "nothing of I3 stored");
    assert_eq!(s.idempotency("key1", "k-a", Timestamp(T0 + 5)).await.unwrap().unwrap().message_id.0, "I1");

    // Concurrent inserts of one key: exactly one message.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(
            async move { s.insert_message(idempotent(&format!("IC{i}"), T0, "key1", "k-b")).await },
        ));
    }
    let mut stored = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(()) => stored.push(format!("IC{i}")),
            Err(StoreError::IdempotencyKeyTaken) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(stored.len(), 1, "exactly one of the concurrent inserts is stored");
    let winner = s.idempotency("key1", "k-b", Timestamp(T0)).await.unwrap().unwrap();
    assert_eq!(winner.message_id.0, stored[0]);
    for i in 0..8 {
        let there = s.message_detail(&MessageId(format!("IC{i}"))).await.unwrap().is_some();
        assert_eq!(there, stored[0] == format!("IC{i}"), "IC{i}");
    }

    // After 24 h the record is not read, and the key may be used again.
    assert!(s.idempotency("key1", "k-a", Timestamp(T0 + DAY - 1)).await.unwrap().is_some());
    assert_eq!(s.idempotency("key1", "k-a", Timestamp(T0 + DAY)).await.unwrap(), None, "expired");
    s.insert_message(idempotent("I4", T0 + DAY + 10, "key1", "k-a")).await.expect("an expired key is free again");
    let again = s.idempotency("key1", "k-a", Timestamp(T0 + DAY + 10)).await.unwrap().unwrap();
    assert_eq!((again.message_id.0.as_str(), again.created_at), ("I4", Timestamp(T0 + DAY + 10)));
    // The expired records of other keys were swept by that insert; their messages stay.
    assert_eq!(s.idempotency("key2", "k-a", Timestamp(T0)).await.unwrap(), None, "swept");
    assert!(s.message_detail(&MessageId("I2".into())).await.unwrap().is_some());
}

async fn suppression_add_list_remove(s: Arc<dyn Store>) {
    let entry = |address: &str, reason: &str| Suppression {
        address: address.into(),
        reason: reason.into(),
        status: Some("5.1.1".into()),
        detail: Some("550 5.1.1 user unknown".into()),
        message_id: Some("M9".into()),
        created_at: String::new(),
        domain: None,
        scope: mailerd::store::SuppressionScope::Global,
    };
    assert!(s.suppression("a@ex.net").await.unwrap().is_none());
    s.suppress(entry("a@ex.net", "userunknown")).await.unwrap();
    s.suppress(entry("b@ex.net", "hostunknown")).await.unwrap();
    let a = s.suppression("a@ex.net").await.unwrap().expect("suppressed");
    assert_eq!(
        (a.reason.as_str(), a.status.as_deref(), a.message_id.as_deref()),
        ("userunknown", Some("5.1.1"), Some("M9"))
    );
    assert!(a.created_at.ends_with('Z'));
    // Refresh: same address, new reason; still one entry.
    s.suppress(entry("a@ex.net", "hasmoved")).await.unwrap();
    assert_eq!(s.suppression("a@ex.net").await.unwrap().unwrap().reason, "hasmoved");
    let mut all: Vec<_> = s.suppressions(&Scope::All, 100).await.unwrap().into_iter().map(|e| e.address).collect();
    all.sort();
    assert_eq!(all, ["a@ex.net", "b@ex.net"]);
    assert_eq!(s.suppressions(&Scope::All, 1).await.unwrap().len(), 1);
    assert!(s.unsuppress("a@ex.net", &Scope::All).await.unwrap());
    assert!(!s.unsuppress("a@ex.net", &Scope::All).await.unwrap());
    assert!(s.suppression("a@ex.net").await.unwrap().is_none());
    assert_eq!(s.suppressions(&Scope::All, 100).await.unwrap().len(), 1);
    // A suppression caused by a message is an event of that message (webhooks subscribe to it).
    let events = settled_events(&*s, Some("suppressed"), 3).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().all(|e| e.id == "M9" && e.kind.as_str() == "suppressed"));
    assert_eq!(events[0].recipient.as_deref(), Some("a@ex.net"));
}

/// Two workers reporting one hard bounce at once (jobs of one message to several domains)
/// suppress the address once: one `suppressed` event, and only one of them hears "changed".
async fn an_identical_suppression_is_recorded_once(s: Arc<dyn Store>) {
    let entry = |reason: &str| Suppression {
        address: "gone@ex.net".into(),
        reason: reason.into(),
        status: Some("5.1.1".into()),
        detail: Some("550 5.1.1 user unknown".into()),
        message_id: Some("D1".into()),
        created_at: String::new(),
        domain: None,
        scope: mailerd::store::SuppressionScope::Global,
    };
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            let e = entry("userunknown");
            tokio::spawn(async move { s.suppress(e).await.unwrap() })
        })
        .collect();
    let mut changed = 0;
    for w in workers {
        changed += usize::from(w.await.unwrap());
    }
    assert_eq!(changed, 1, "exactly one caller added it");
    assert!(!s.suppress(entry("userunknown")).await.unwrap(), "the same again is no news");
    let events = settled_events(&*s, Some("suppressed"), 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    // New facts about the address are news: a second event.
    assert!(s.suppress(entry("hasmoved")).await.unwrap());
    assert_eq!(settled_events(&*s, Some("suppressed"), 2).await.len(), 2);
    assert_eq!(s.suppression("gone@ex.net").await.unwrap().unwrap().reason, "hasmoved");
}

async fn feedback_turns_delivered_into_bounced(s: Arc<dyn Store>) {
    s.insert_message(message("F1", T0, vec![rcpt("a@ex.net", Transport::Remote), rcpt("b@ex.net", Transport::Remote)]))
        .await
        .unwrap();
    let c = claim(&*s, Transport::Remote, T0, 10, "n1").await;
    s.record_attempts("n1", vec![attempt(c[0].recipient, "F1", RecipientState::Delivered)]).await.unwrap();
    let fb = |rid: RecipientId, address: &str, delay: bool| Feedback {
        recipient: rid,
        message: MessageId("F1".into()),
        address: address.into(),
        delay,
        status: Some(EnhancedStatus::new(5, 1, 1)),
        detail: "user unknown".into(),
        remote: Some("mx.ex.net".into()),
    };
    // A delay report only adds an event.
    assert!(!s.record_feedback(fb(c[0].recipient, "a@ex.net", true)).await.unwrap());
    assert_eq!(states(&*s, "F1").await[0].1, RecipientState::Delivered);
    assert!(s.record_feedback(fb(c[0].recipient, "a@ex.net", false)).await.unwrap());
    // b was never delivered (still leased): the event is kept, the state is not touched.
    assert!(!s.record_feedback(fb(c[1].recipient, "b@ex.net", false)).await.unwrap());
    let d = s.message_detail(&MessageId("F1".into())).await.unwrap().unwrap();
    assert_eq!(d.entry.recipients[0].state, RecipientState::Bounced);
    assert_eq!(d.entry.recipients[0].last_status.as_deref(), Some("5.1.1"));
    assert_eq!(d.entry.recipients[0].last_detail.as_deref(), Some("user unknown"));
    assert_eq!(d.entry.recipients[1].state, RecipientState::Queued);
    let kinds: Vec<_> = d.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["queued", "queued", "delivered", "delayed", "bounced", "bounced"]);
    assert_eq!(d.events[4].detail.as_deref(), Some("bounce received: user unknown"));
    assert_eq!(d.events[4].remote.as_deref(), Some("mx.ex.net"));
    // Bounced twice is still one change.
    assert!(!s.record_feedback(fb(c[0].recipient, "a@ex.net", false)).await.unwrap());
}

async fn sent_log_remembers_remote_recipients(s: Arc<dyn Store>) {
    let mut m = message(
        "S1",
        T0,
        vec![
            rcpt("Alice@Example.NET", Transport::Remote),
            rcpt("bob@local.test", Transport::Local),
            rcpt("carol@ex.org", Transport::Remote),
        ],
    );
    m.header_message_id = Some(" <ABC.123@Sender.Example> ".into());
    s.insert_message(m).await.unwrap();
    let mut no_header = message("S2", T0, vec![rcpt("dave@ex.org", Transport::Remote)]);
    no_header.header_message_id = None;
    s.insert_message(no_header).await.unwrap();
    for key in ["<abc.123@sender.example>", "ABC.123@SENDER.EXAMPLE", "abc.123@sender.example"] {
        let log = s.sent_log(key).await.unwrap();
        let got: Vec<_> = log.iter().map(|e| (e.queue_id.0.as_str(), e.recipient.as_str(), e.sent_at)).collect();
        assert_eq!(got, [("S1", "alice@example.net", Timestamp(T0)), ("S1", "carol@ex.org", Timestamp(T0))], "{key}");
    }
    assert!(s.sent_log("<never@sent.example>").await.unwrap().is_empty());
    // The same Message-ID sent again (a resend) is a second entry.
    let mut again = message("S3", T0 + 1, vec![rcpt("alice@example.net", Transport::Remote)]);
    again.header_message_id = Some("<abc.123@sender.example>".into());
    s.insert_message(again).await.unwrap();
    assert_eq!(s.sent_log("abc.123@sender.example").await.unwrap().len(), 3);
}

async fn notes_become_check_events(s: Arc<dyn Store>) {
    let mut m = message("N1", T0, vec![rcpt("al@gmial.com", Transport::Remote)]);
    m.notes = vec![
        (Some("al@gmial.com".into()), "typo: did you mean al@gmail.com?".into()),
        (None, "message: no text/plain alternative".into()),
    ];
    s.insert_message(m).await.unwrap();
    let d = s.message_detail(&MessageId("N1".into())).await.unwrap().unwrap();
    let checks: Vec<_> = d
        .events
        .iter()
        .filter(|e| e.kind.as_str() == "check")
        .map(|e| (e.recipient.as_deref(), e.detail.as_deref()))
        .collect();
    assert_eq!(
        checks,
        [
            (Some("al@gmial.com"), Some("typo: did you mean al@gmail.com?")),
            (None, Some("message: no text/plain alternative"))
        ]
    );
    assert_eq!(d.events.iter().filter(|e| e.kind.as_str() == "queued").count(), 1);
}

async fn delete_removes_message_but_keeps_sent_log(s: Arc<dyn Store>) {
    let mut m = message("X1", T0, vec![rcpt("a@ex.net", Transport::Remote)]);
    m.header_message_id = Some("<x1@example.com>".into());
    s.insert_message(m).await.unwrap();
    s.insert_message(message("X2", T0, vec![rcpt("b@ex.net", Transport::Remote)])).await.unwrap();
    // A message that is not there is not deleted, and no `deleted` event says it was.
    assert!(!s.delete_message(&MessageId("never".into())).await.unwrap());
    assert!(s.delete_message(&MessageId("X1".into())).await.unwrap());
    assert!(!s.delete_message(&MessageId("X1".into())).await.unwrap());
    assert!(s.message_detail(&MessageId("X1".into())).await.unwrap().is_none());
    assert!(s.load_body(&MessageId("X1".into())).await.unwrap().is_none());
    let left = claim(&*s, Transport::Remote, T0, 10, "n1").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].message.0, "X2");
    assert_eq!(s.sent_log("x1@example.com").await.unwrap().len(), 1);
    let deleted = settled_events(&*s, Some("deleted"), 1).await;
    let ids: Vec<_> = deleted.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["X1"], "one event, for the message that was there");
}

async fn retry_now_makes_deferred_due(s: Arc<dyn Store>) {
    s.insert_message(message("T1", T0, vec![rcpt("a@ex.net", Transport::Remote), rcpt("b@ex.net", Transport::Remote)]))
        .await
        .unwrap();
    let start = Timestamp::now().millis();
    let c = claim(&*s, Transport::Remote, start, 10, "n1").await;
    let far = start + 86_400_000;
    let mut d = attempt(c[0].recipient, "T1", RecipientState::Deferred);
    d.next_attempt_at = Some(Timestamp(far));
    s.record_attempts("n1", vec![d]).await.unwrap();
    // b is still leased to n1: retry_now leaves it alone.
    assert_eq!(s.retry_now(&MessageId("T1".into())).await.unwrap(), 1);
    let now = start + 1000;
    let again = claim(&*s, Transport::Remote, now, 10, "n2").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].recipient, c[0].recipient);
    assert_eq!(s.retry_now(&MessageId("nope".into())).await.unwrap(), 0);
}

/// `mailerd status`'s summary (read from running counts on SQLite) counts only waiting remote
/// and local recipients, per state and per lower-cased domain, and its oldest deferred message
/// is never a feedback recipient, even when that one was deferred first.
async fn queue_summary_skips_feedback_and_finished_recipients(s: Arc<dyn Store>) {
    let now = Timestamp::now().millis();
    s.insert_message(message("S1", now, vec![rcpt("fb@here.test", Transport::Feedback)])).await.unwrap();
    s.insert_message(message(
        "S2",
        now + 1,
        vec![rcpt("a@Slow.Test", Transport::Remote), rcpt("b@slow.test", Transport::Remote)],
    ))
    .await
    .unwrap();
    s.insert_message(message("S3", now + 2, vec![rcpt("c@fast.test", Transport::Remote)])).await.unwrap();
    // The feedback recipient is deferred first, then a@Slow.Test; c@fast.test is delivered.
    let deferred = |rid, id: &str| {
        let mut a = attempt(rid, id, RecipientState::Deferred);
        a.next_attempt_at = Some(Timestamp(now + 86_400_000));
        a
    };
    let fb = claim(&*s, Transport::Feedback, now + 5, 10, "n1").await;
    s.record_attempts("n1", vec![deferred(fb[0].recipient, "S1")]).await.unwrap();
    let remote = claim(&*s, Transport::Remote, now + 5, 10, "n1").await;
    let id = |addr: &str| remote.iter().find(|c| c.address == addr).unwrap().recipient;
    // b@slow.test stays leased: claimed, no outcome yet.
    s.record_attempts(
        "n1",
        vec![deferred(id("a@Slow.Test"), "S2"), attempt(id("c@fast.test"), "S3", RecipientState::Delivered)],
    )
    .await
    .unwrap();
    let summary = s.queue_summary(Timestamp(now + 10), 10).await.unwrap();
    let count = |st: RecipientState| summary.by_state.iter().find(|c| c.state == st).map(|c| c.count);
    // b@slow.test is leased (in delivery) and still counts as queued.
    assert_eq!((count(RecipientState::Queued), count(RecipientState::Deferred)), (Some(1), Some(1)));
    let domains: Vec<_> =
        summary.top_domains.iter().map(|d| (d.domain.as_str(), d.queued, d.deferred, d.held)).collect();
    assert_eq!(domains, [("slow.test", 1, 1, 0)], "one domain whatever the case; fast.test is done");
    let oldest = summary.oldest_deferred.as_ref().expect("a@Slow.Test is deferred");
    assert_eq!((oldest.message.0.as_str(), oldest.address.as_str()), ("S2", "a@Slow.Test"));
    assert_eq!(s.oldest_deferred().await.unwrap().map(|o| o.message.0), Some("S2".to_string()));
}

/// flush, hold, release and bulk delete (`mailerd queue …`) by message, state and domain; held
/// recipients are never claimed, keep their body, and count in the queue summary.
async fn queue_operations_select_and_count(s: Arc<dyn Store>) {
    use mailerd::store::Selection;
    let now = Timestamp::now().millis();
    let at = |ms: i64| Timestamp(now + ms);
    s.insert_message(message(
        "Q1",
        now,
        vec![rcpt("a@one.test", Transport::Remote), rcpt("b@Two.Test", Transport::Remote)],
    ))
    .await
    .unwrap();
    s.insert_message(message("Q2", now + 1, vec![rcpt("c@two.test", Transport::Remote)])).await.unwrap();
    s.insert_message(message("Q3", now + 2, vec![rcpt("d@three.test", Transport::Remote)])).await.unwrap();
    // Q3's recipient is tried and deferred for a day.
    let c = claim(&*s, Transport::Remote, now + 5, 10, "n1").await;
    let d3 = c.iter().find(|c| c.message.0 == "Q3").unwrap().recipient;
    let mut deferred = attempt(d3, "Q3", RecipientState::Deferred);
    deferred.next_attempt_at = Some(at(86_400_000));
    s.record_attempts("n1", vec![deferred]).await.unwrap();
    // Leased (in delivery) recipients are neither flushed nor held.
    let everything = Selection::all();
    assert_eq!(s.flush(&everything, at(10)).await.unwrap(), 1, "only Q3's is free");
    assert_eq!(claim(&*s, Transport::Remote, now + 20, 10, "n2").await.len(), 1, "flushed: due now");
    assert_eq!(s.hold(&everything, at(30)).await.unwrap(), 0, "every recipient is leased now");
    // Leases run out (a dead worker); now everything may be held, by domain first.
    let later = LEASE.as_millis() as i64 + 1000;
    let two = Selection { domain: Some("two.test".into()), ..Selection::all() };
    assert_eq!(s.hold(&two, at(later)).await.unwrap(), 2, "b@Two.Test and c@two.test");
    assert_eq!(s.hold(&Selection::message(&MessageId("Q1".into())), at(later)).await.unwrap(), 1);
    assert_eq!(s.hold(&Selection::message(&MessageId("Q1".into())), at(later)).await.unwrap(), 0, "held already");
    let waiting = claim(&*s, Transport::Remote, now + later + 2 * LEASE.as_millis() as i64, 10, "n3").await;
    let claimed: Vec<_> = waiting.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(claimed, ["d@three.test"], "held recipients are never claimed");
    assert_eq!(states(&*s, "Q1").await[0].1, RecipientState::Held);
    // A held message keeps its body, is in the queue list and counts as a queued message.
    s.release_body(&MessageId("Q2".into())).await.unwrap();
    assert!(!s.load_body(&MessageId("Q2".into())).await.unwrap().unwrap().is_empty());
    assert_eq!(s.queued_messages().await.unwrap(), 3);
    let listed: Vec<_> = s.queue_list(10).await.unwrap().into_iter().map(|e| e.id.0).collect();
    assert_eq!(listed, ["Q1", "Q2", "Q3"]);
    let summary = s.queue_summary(at(later), 10).await.unwrap();
    let count = |st: RecipientState| summary.by_state.iter().find(|c| c.state == st).map(|c| c.count);
    assert_eq!(
        (count(RecipientState::Queued), count(RecipientState::Deferred), count(RecipientState::Held)),
        (Some(0), Some(1), Some(3))
    );
    assert_eq!(summary.top_domains.len(), 3);
    assert_eq!(summary.top_domains[0].domain, "two.test");
    assert_eq!((summary.top_domains[0].held, summary.top_domains[0].queued), (2, 0));
    let oldest = summary.oldest_deferred.as_ref().expect("d is deferred");
    assert_eq!((oldest.message.0.as_str(), oldest.address.as_str(), oldest.attempts), ("Q3", "d@three.test", 1));
    assert_eq!(summary.delivered_last_minute, 0);
    // Release: queued again (never tried), due at once, with an event each.
    assert_eq!(s.release(&Selection::message(&MessageId("Q2".into())), at(later)).await.unwrap(), 1);
    assert_eq!(states(&*s, "Q2").await[0].1, RecipientState::Queued);
    let due = claim(&*s, Transport::Remote, now + later + 1, 10, "n4").await;
    assert_eq!(due.iter().map(|c| c.address.as_str()).collect::<Vec<_>>(), ["c@two.test"]);
    let kinds: Vec<_> = s
        .message_detail(&MessageId("Q2".into()))
        .await
        .unwrap()
        .unwrap()
        .events
        .into_iter()
        .map(|e| (e.kind.to_string(), e.recipient))
        .collect();
    assert_eq!(
        kinds,
        [
            ("queued".to_string(), Some("c@two.test".to_string())),
            ("held".into(), Some("c@two.test".into())),
            ("released".into(), Some("c@two.test".into()))
        ]
    );
    // Bulk delete by state: Q1 (all held) goes; Q3 (queued, leased) and Q2 (leased) stay.
    let held = Selection { state: Some(RecipientState::Held), ..Selection::all() };
    assert_eq!(s.delete_messages(&held, at(later)).await.unwrap(), 1);
    assert!(s.message_detail(&MessageId("Q1".into())).await.unwrap().is_none());
    let three = Selection { domain: Some("three.test".into()), ..Selection::all() };
    assert_eq!(s.delete_messages(&three, at(later)).await.unwrap(), 1);
    assert_eq!(s.delete_messages(&three, at(later)).await.unwrap(), 0);
    assert_eq!(s.delete_messages(&Selection::all(), at(later)).await.unwrap(), 1, "Q2");
    assert_eq!(s.queued_messages().await.unwrap(), 0);
    let deleted: Vec<_> = settled_events(&*s, Some("deleted"), 3).await.into_iter().map(|e| e.id).collect();
    assert_eq!(deleted, ["Q1", "Q3", "Q2"]);
}

async fn release_body_only_when_all_final(s: Arc<dyn Store>) {
    s.insert_message(message("B1", T0, vec![rcpt("a@ex.net", Transport::Remote), rcpt("b@ex.net", Transport::Remote)]))
        .await
        .unwrap();
    let id = MessageId("B1".into());
    let body = s.load_body(&id).await.unwrap().unwrap();
    let c = claim(&*s, Transport::Remote, T0, 10, "n1").await;
    s.record_attempts("n1", vec![attempt(c[0].recipient, "B1", RecipientState::Delivered)]).await.unwrap();
    s.release_body(&id).await.unwrap();
    assert_eq!(s.load_body(&id).await.unwrap(), Some(body), "kept while b is undelivered");
    s.record_attempts("n1", vec![attempt(c[1].recipient, "B1", RecipientState::Bounced)]).await.unwrap();
    s.release_body(&id).await.unwrap();
    assert_eq!(s.load_body(&id).await.unwrap(), Some(Vec::new()));
    // History stays.
    assert_eq!(s.message_detail(&id).await.unwrap().unwrap().entry.recipients.len(), 2);
    s.release_body(&id).await.unwrap();
}

/// A record that leaves every recipient of a message delivered, none asking for a success
/// report, settles it in its own transaction (the body goes, the id comes back); anything
/// still to report or to try keeps the body for the reporter.
async fn a_record_settles_what_has_nothing_to_report(s: Arc<dyn Store>) {
    let two =
        |id: &str| message(id, T0, vec![rcpt("a@ex.net", Transport::Remote), rcpt("b@ex.net", Transport::Remote)]);
    let mut success = message("S3", T0, vec![rcpt("c@ex.net", Transport::Remote)]);
    success.recipients[0].notify = Some(Notify { never: false, success: true, failure: true, delay: false });
    for m in [message("S1", T0, vec![rcpt("a@ex.net", Transport::Remote)]), two("S2"), success, two("S4"), two("S5")] {
        s.insert_message(m).await.unwrap();
    }
    let c = claim(&*s, Transport::Remote, T0, 20, "n1").await;
    let of = |id: &str| c.iter().filter(|c| c.message.0 == id).map(|c| c.recipient).collect::<Vec<_>>();
    let body = |id: &str| {
        let s = s.clone();
        let id = MessageId(id.into());
        async move { s.load_body(&id).await.unwrap().unwrap() }
    };
    let ids = |v: Vec<MessageId>| v.into_iter().map(|m| m.0).collect::<Vec<_>>();
    let delivered = |id: &str, r: RecipientId| attempt(r, id, RecipientState::Delivered);

    let settled = s.record_attempts("n1", vec![delivered("S1", of("S1")[0])]).await.unwrap();
    assert_eq!(ids(settled), ["S1"]);
    assert!(body("S1").await.is_empty(), "the settled message's body is released");

    let settled = s.record_attempts("n1", vec![delivered("S2", of("S2")[0])]).await.unwrap();
    assert!(settled.is_empty(), "b is not delivered yet");
    assert!(!body("S2").await.is_empty());
    let settled = s.record_attempts("n1", vec![delivered("S2", of("S2")[1])]).await.unwrap();
    assert_eq!(ids(settled), ["S2"]);

    let settled = s.record_attempts("n1", vec![delivered("S3", of("S3")[0])]).await.unwrap();
    assert!(settled.is_empty(), "a success report is owed");
    assert!(!body("S3").await.is_empty());

    // Both of S4's recipients in one record, with one of S5 delivered and one bounced.
    let (s4, s5) = (of("S4"), of("S5"));
    let settled = s
        .record_attempts(
            "n1",
            vec![
                delivered("S4", s4[0]),
                delivered("S4", s4[1]),
                delivered("S5", s5[0]),
                attempt(s5[1], "S5", RecipientState::Bounced),
            ],
        )
        .await
        .unwrap();
    assert_eq!(ids(settled), ["S4"]);
    assert!(body("S4").await.is_empty());
    assert!(!body("S5").await.is_empty(), "a failure report is owed");
    // A record by an owner whose leases are gone changes nothing and settles nothing.
    assert!(s.record_attempts("n2", vec![delivered("S5", s5[0])]).await.unwrap().is_empty());
}

/// Many writers at once (the PostgreSQL store gathers them into shared statements): each
/// caller gets its own answer, a failing insert fails no neighbour, every claim carries or
/// loads its own body, and each caller reading facts after its record gets its own message's.
async fn concurrent_writers_are_answered_each_on_their_own(s: Arc<dyn Store>) {
    const N: usize = 40;
    s.insert_message(message("TAKEN", T0, vec![rcpt("t@ex.net", Transport::Remote)])).await.unwrap();
    let mut inserts = tokio::task::JoinSet::new();
    for i in 0..N {
        let s = s.clone();
        inserts.spawn(async move {
            let id = format!("W{i:02}");
            (
                id.clone(),
                s.insert_message(message(&id, T0, vec![rcpt(&format!("r{i}@ex.net"), Transport::Remote)])).await,
            )
        });
    }
    for _ in 0..3 {
        let s = s.clone();
        inserts.spawn(async move {
            (
                "TAKEN".to_string(),
                s.insert_message(message("TAKEN", T0, vec![rcpt("x@ex.net", Transport::Remote)])).await,
            )
        });
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(r) = inserts.join_next().await {
        match r.unwrap() {
            (id, Ok(())) => {
                assert_ne!(id, "TAKEN", "a taken id was stored again");
                stored += 1;
            }
            (id, Err(_)) => {
                assert_eq!(id, "TAKEN", "{id} failed beside a bad neighbour");
                refused += 1;
            }
        }
    }
    assert_eq!((stored, refused), (N, 3));

    // Claimed by four owners; each claim's body is its own message's.
    let mut claims = Vec::new();
    for owner in ["o0", "o1", "o2", "o3"] {
        claims.extend(claim(&*s, Transport::Remote, T0, 11, owner).await.into_iter().map(|c| (owner, c)));
    }
    assert_eq!(claims.len(), N + 1);
    for (_, c) in &claims {
        let body = match &c.body {
            Some(b) => b.as_ref().clone(),
            None => s.load_body(&c.message).await.unwrap().unwrap(),
        };
        assert_eq!(body, message(&c.message.0, T0, Vec::new()).body, "body of {}", c.message);
    }

    // Every outcome recorded at once, one call per message; "W00" by an owner without its lease.
    let mut records = tokio::task::JoinSet::new();
    for (owner, c) in claims {
        let s = s.clone();
        let owner = if c.message.0 == "W00" { "stranger" } else { owner };
        records.spawn(async move {
            let a = attempt(c.recipient, &c.message.0, RecipientState::Delivered);
            s.record_attempts(owner, vec![a]).await.expect("record");
            (c.message.clone(), s.report_facts_of(std::slice::from_ref(&c.message)).await.expect("facts"))
        });
    }
    while let Some(r) = records.join_next().await {
        let (id, facts) = r.unwrap();
        assert_eq!(facts.len(), 1, "{id}: the facts of its own message only");
        assert_eq!(facts[0].id, id);
        assert_eq!(facts[0].recipients.len(), 1);
        let want = if id.0 == "W00" { RecipientState::Queued } else { RecipientState::Delivered };
        assert_eq!(facts[0].recipients[0].state, want, "{id}");
    }

    // Released together: only the messages whose recipient is final lose their body.
    let mut releases = tokio::task::JoinSet::new();
    for i in 0..N {
        let s = s.clone();
        releases.spawn(async move { s.release_body(&MessageId(format!("W{i:02}"))).await });
    }
    while let Some(r) = releases.join_next().await {
        r.unwrap().expect("release");
    }
    for i in 0..N {
        let body = s.load_body(&MessageId(format!("W{i:02}"))).await.unwrap().unwrap();
        assert_eq!(body.is_empty(), i != 0, "W{i:02}");
    }
}

/// A shared store keeps one secret per name for all its nodes, the first caller's, even when
/// several ask at once; a store of one process has no cluster part (each node keeps its own).
async fn a_cluster_secret_is_the_first_callers(s: Arc<dyn Store>) {
    let Some(s) = s.cluster() else { return };
    let mut askers = tokio::task::JoinSet::new();
    for i in 0..8u8 {
        let s = s.clone();
        askers.spawn(async move { s.cluster_secret("return-path", Some(&[i; 32])).await.expect("secret") });
    }
    let mut answers = HashSet::new();
    while let Some(a) = askers.join_next().await {
        answers.insert(a.unwrap());
    }
    assert_eq!(answers.len(), 1, "every node got the same secret");
    let secret = answers.into_iter().next().unwrap().expect("a shared store keeps a secret");
    assert!(secret.len() == 32 && secret.iter().all(|b| *b == secret[0] && *b < 8), "{secret:?}");
    assert_eq!(s.cluster_secret("return-path", Some(b"another")).await.unwrap(), Some(secret.clone()));
    assert_eq!(s.cluster_secret("return-path", None).await.unwrap(), Some(secret));
    // Reading never stores.
    assert_eq!(s.cluster_secret("other", None).await.unwrap(), None);
    assert_eq!(s.cluster_secret("other", Some(b"another")).await.unwrap(), Some(b"another".to_vec()));
}

async fn api_keys_cursors_pauses_and_event_stream(s: Arc<dyn Store>) {
    let key = api_key("k1", "shop", "ab", scope(&["example.com"]));
    s.create_api_key(key.clone()).await.unwrap();
    let got = s.api_key(&"ab".repeat(32)).await.unwrap().expect("key");
    assert_eq!((got.id.as_str(), got.name.as_str(), got.scope.clone()), ("k1", "shop", scope(&["example.com"])));
    assert!(s.api_key(&"cd".repeat(32)).await.unwrap().is_none());
    assert!(s.create_api_key(key).await.is_err(), "the same key twice");

    assert_eq!(s.webhook_cursor("https://hook.test/a").await.unwrap(), 0);
    s.set_webhook_cursor("https://hook.test/a", 7).await.unwrap();
    s.set_webhook_cursor("https://hook.test/a", 5).await.unwrap();
    assert_eq!(s.webhook_cursor("https://hook.test/a").await.unwrap(), 7, "a cursor never moves back");

    s.insert_message(message("E1", T0, vec![rcpt("a@ex.net", Transport::Remote), rcpt("b@ex.net", Transport::Remote)]))
        .await
        .unwrap();
    assert_eq!(s.queue_depth().await.unwrap(), 2);
    let pause = AccountPause {
        account: "user:app@example.com".into(),
        detail: "12% hard bounces".into(),
        message_id: Some("E1".into()),
        paused_at: String::new(),
    };
    assert!(s.pause_account(pause.clone()).await.unwrap());
    assert!(!s.pause_account(pause).await.unwrap(), "paused already");
    assert_eq!(s.account_pause("user:app@example.com").await.unwrap().expect("paused").detail, "12% hard bounces");
    assert_eq!(s.paused_accounts().await.unwrap().len(), 1);
    let keys = |k: &[&str]| k.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let first = s.first_pause(keys(&["domain:example.com", "user:app@example.com"])).await.unwrap();
    assert_eq!(first.map(|p| p.account), Some("user:app@example.com".to_string()), "the one paused");
    assert!(s.first_pause(keys(&["domain:example.com", "user:other@example.com"])).await.unwrap().is_none());
    assert!(s.first_pause(Vec::new()).await.unwrap().is_none());

    let all = settled_events(&*s, None, 3).await;
    let kinds: Vec<_> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["queued", "queued", "account_paused"]);
    assert!(all.windows(2).all(|w| w[0].event_id < w[1].event_id));
    let rest = s.events_after(all[0].event_id, Some(EventKind::Queued), &Scope::All, 100).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].event_id, all[1].event_id);
    assert_eq!(s.events_after(all[0].event_id, None, &Scope::All, 1).await.unwrap().len(), 1);

    assert!(s.resume_account("user:app@example.com").await.unwrap());
    assert!(!s.resume_account("user:app@example.com").await.unwrap());
    assert!(s.account_pause("user:app@example.com").await.unwrap().is_none());
}

/// The daemon on PostgreSQL: a message accepted over SMTP lands in a local Maildir, and its
/// recipient is recorded as delivered in the shared store.
#[tokio::test]
async fn daemon_on_postgres_accepts_and_delivers() {
    let Some(admin) = url_or_skip("store_conformance::daemon_on_postgres_accepts_and_delivers") else { return };
    let schema = TestSchema::create(&admin, "daemon_e2e").await;
    let d = TestDaemon::with(&format!("[store]\nurl = \"{}\"", schema.url)).await;
    let mut c = Client::connect(d.smtp).await;
    let r =
        c.send_mail("a@sender.test", &["postmaster@local.test"], "Subject: pg\r\n\r\nstored in PostgreSQL\r\n").await;
    r.expect("250 2.0.0 Ok: queued as");
    let id = r.queue_id();
    let files = d.wait_maildir("local.test", "postmaster", 1).await;
    let stored = std::fs::read_to_string(&files[0]).expect("maildir file");
    assert!(stored.contains(&id) && stored.ends_with("stored in PostgreSQL\r\n"), "{stored}");
    // Nothing was written to a SQLite file, and the PostgreSQL store says delivered.
    assert!(!d.dir.path().join("mailerd.db").exists());
    let store = PgStore::connect(&schema.url).await.expect("second connection, as another node");
    let mut state = None;
    for _ in 0..100 {
        let m = store.message_detail(&MessageId(id.clone())).await.unwrap().expect("message in PostgreSQL");
        state = Some(m.entry.recipients[0].state);
        if state == Some(RecipientState::Delivered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, Some(RecipientState::Delivered));
    d.shutdown().await;
}

/// Nodes starting at once migrate one after the other (advisory lock), and a restart finds
/// the schema current and its data intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_are_safe_to_run_concurrently() {
    let Some(admin) = url_or_skip("store_conformance::postgres_migrations_are_safe_to_run_concurrently") else {
        return;
    };
    let schema = TestSchema::create(&admin, "migrations").await;
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = schema.url.clone();
            tokio::spawn(async move { PgStore::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().expect("every node starts"));
    }
    stores[0].insert_message(message("MIG", T0, vec![rcpt("a@ex.net", Transport::Remote)])).await.unwrap();
    drop(stores);
    let again = PgStore::connect(&schema.url).await.expect("restart");
    assert_eq!(states(&again, "MIG").await.len(), 1);
}

/// PostgreSQL's event stream never moves past an event whose transaction is still open (ids
/// are taken at insert; a later id may commit first, on another node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_event_stream_waits_for_open_transactions() {
    let Some(admin) = url_or_skip("store_conformance::postgres_event_stream_waits_for_open_transactions") else {
        return;
    };
    let schema = TestSchema::create(&admin, "event_fence").await;
    let store = PgStore::connect(&schema.url).await.expect("store");
    let (slow, conn) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    slow.batch_execute("BEGIN; INSERT INTO events (message_id, kind, at) VALUES ('SLOW', 'queued', 1)").await.unwrap();
    store.insert_message(message("FAST", T0, vec![rcpt("a@ex.net", Transport::Remote)])).await.unwrap();
    assert!(
        store.events_after(0, None, &Scope::All, 100).await.unwrap().is_empty(),
        "FAST's event waits behind SLOW's"
    );
    slow.batch_execute("COMMIT").await.unwrap();
    // The horizon is the whole server's: a transaction of another test running beside this one
    // holds the fence too, until it ends.
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids = store.events_after(0, None, &Scope::All, 100).await.unwrap().into_iter().map(|e| e.id).collect();
        if ids.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ids, ["SLOW", "FAST"]);
}

async fn dashboard_queries_answer_alike(s: Arc<dyn Store>) {
    use mailerd::store::QueueFilter;
    let rcpts = vec![
        rcpt("a@x.test", Transport::Remote),
        rcpt("b@Y.test", Transport::Remote),
        rcpt("c@y.test", Transport::Remote),
        rcpt("bob@local.test", Transport::Local),
    ];
    s.insert_message(message("D1", T0, rcpts)).await.unwrap();
    let c = claim(&*s, Transport::Remote, T0, 10, "n1").await;
    let outcomes = [RecipientState::Delivered, RecipientState::Bounced, RecipientState::Deferred];
    let attempts = c.iter().zip(outcomes).map(|(c, st)| attempt(c.recipient, "D1", st)).collect();
    s.record_attempts("n1", attempts).await.unwrap();

    let o = s.delivery_overview(Timestamp(0), 10).await.unwrap();
    let mut counts: Vec<_> = o.by_state_status.iter().map(|c| (c.state.as_str(), c.status.clone(), c.count)).collect();
    counts.sort();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        counts,
        [
            ("bounced", some("5.1.1"), 1),
            ("deferred", some("4.4.1"), 1),
            ("delivered", some("2.0.0"), 1),
            ("queued", None, 1)
        ]
    );
    let today = Timestamp::now().millis() / 86_400_000 * 86_400_000;
    let mut daily: Vec<_> = o.daily.iter().map(|d| (d.day.millis(), d.state.as_str(), d.count)).collect();
    daily.sort();
    assert_eq!(daily, [(today, "bounced", 1), (today, "delivered", 1)]);
    let failing: Vec<_> = o.failing_domains.iter().map(|d| (d.domain.as_str(), d.failed, d.deferred)).collect();
    assert_eq!(failing, [("y.test", 1, 1)], "one domain, whatever the case of its letters");
    assert!(
        s.delivery_overview(Timestamp::now().plus(Duration::from_secs(2 * 86_400)), 10).await.unwrap().daily.is_empty()
    );
    // Complaints are counted from their events (SQLite schema v16's, PostgreSQL v18's partial index), by time.
    assert_eq!(o.complaints, 0);
    let complaint = |address: &str| Suppression { message_id: Some("D1".into()), ..suppression(address, "complaint") };
    for a in ["a@x.test", "c@y.test"] {
        s.suppress_as(complaint(a), mailerd::store::EventKind::Complained, "abuse complaint".into()).await.unwrap();
    }
    s.suppress_as(complaint("z@x.test"), mailerd::store::EventKind::Suppressed, "by hand".into()).await.unwrap();
    assert_eq!(s.delivery_overview(Timestamp(0), 10).await.unwrap().complaints, 2, "complained events only");
    let later = Timestamp::now().plus(Duration::from_secs(60));
    assert_eq!(s.delivery_overview(later, 10).await.unwrap().complaints, 0, "none since a later time");

    let search = |states: Vec<RecipientState>, domain: Option<&str>, limit: usize| {
        let s = s.clone();
        let filter = QueueFilter { states, domain: domain.map(str::to_string), limit };
        async move {
            let mut rows: Vec<String> = s.queue_search(filter).await.unwrap().into_iter().map(|r| r.address).collect();
            rows.sort();
            rows
        }
    };
    assert_eq!(
        search(vec![RecipientState::Deferred, RecipientState::Bounced], Some("Y.test"), 10).await,
        ["b@Y.test", "c@y.test"]
    );
    assert_eq!(search(vec![RecipientState::Queued], None, 10).await, ["bob@local.test"]);
    assert_eq!(search(vec![], Some("x.test"), 10).await, ["a@x.test"]);
    assert_eq!(search(vec![], None, 2).await, ["bob@local.test", "c@y.test"], "the newest two");
    let row =
        s.queue_search(QueueFilter { states: vec![RecipientState::Bounced], domain: None, limit: 5 }).await.unwrap();
    assert_eq!(
        (row[0].reverse_path.as_str(), row[0].attempts, row[0].last_status.as_deref()),
        ("sender@example.com", 1, Some("5.1.1"))
    );

    for address in ["under_score@x.test", "underXscore@x.test"] {
        s.suppress(suppression(address, "userunknown")).await.unwrap();
    }
    let found: Vec<_> = s.search_suppressions("UNDER_", 10).await.unwrap().into_iter().map(|e| e.address).collect();
    assert_eq!(found, ["under_score@x.test"], "_ is a character, not a wildcard");
    assert_eq!(s.search_suppressions("score@", 1).await.unwrap().len(), 1);
}

async fn api_keys_are_listed_rotated_and_revoked(s: Arc<dyn Store>) {
    s.create_api_key(api_key("k1", "shop", "a1", scope(&["b.example", "a.example"]))).await.unwrap();
    s.create_api_key(api_key("k2", "ops", "a2", Scope::All)).await.unwrap();
    let listed: Vec<_> = s.api_keys().await.unwrap().into_iter().map(|k| (k.id, k.scope, k.last_used_at)).collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&("k1".into(), scope(&["b.example", "a.example"]), None)), "{listed:?}");
    assert!(listed.contains(&("k2".into(), Scope::All, None)), "{listed:?}");
    assert!(s.api_keys().await.unwrap().iter().all(|k| !k.sandbox), "keys send for real unless made otherwise");
    s.create_api_key(ApiKey { sandbox: true, ..api_key("k3", "test", "c3", scope(&["a.example"])) }).await.unwrap();
    assert!(s.api_key(&"c3".repeat(32)).await.unwrap().expect("k3").sandbox, "the sandbox flag is kept");
    assert!(s.revoke_api_key("k3").await.unwrap());

    s.touch_api_key("k1", Timestamp(T0)).await.unwrap();
    s.touch_api_key("k1", Timestamp(T0 - 5)).await.unwrap();
    assert_eq!(s.api_key(&"a1".repeat(32)).await.unwrap().unwrap().last_used_at, Some(Timestamp(T0)), "never back");

    // Rotation: same id, name and scope, the old hash finds nothing.
    assert!(s.rotate_api_key("k1", &"b1".repeat(32)).await.unwrap());
    assert!(s.api_key(&"a1".repeat(32)).await.unwrap().is_none(), "the old secret stops working");
    let rotated = s.api_key(&"b1".repeat(32)).await.unwrap().expect("the new secret works");
    assert_eq!((rotated.id.as_str(), rotated.name.as_str()), ("k1", "shop"));
    assert_eq!(rotated.scope, scope(&["b.example", "a.example"]));
    assert!(!s.rotate_api_key("nope", &"c1".repeat(32)).await.unwrap());

    assert!(s.revoke_api_key("k1").await.unwrap());
    assert!(!s.revoke_api_key("k1").await.unwrap());
    assert!(s.api_key(&"b1".repeat(32)).await.unwrap().is_none());
    assert_eq!(s.api_keys().await.unwrap().len(), 1);
}

async fn suppression_entries_have_scopes(s: Arc<dyn Store>) {
    let entry = |address: &str, domain: Option<&str>, reason: &str| Suppression {
        domain: domain.map(|d| Domain::parse(d).unwrap()),
        ..suppression(address, reason)
    };
    s.suppress(entry("x@ex.net", Some("a.example"), "userunknown")).await.unwrap();
    s.suppress(entry("x@ex.net", Some("b.example"), "userunknown")).await.unwrap();
    s.suppress(entry("x@ex.net", None, "manual")).await.unwrap();
    s.suppress(entry("y@ex.net", Some("mail.a.example"), "hostunknown")).await.unwrap();
    s.suppress(entry("z@ex.net", Some("b.example"), "manual")).await.unwrap();
    // Refreshing an entry of one scope keeps one entry (also for the admins' NULL scope).
    s.suppress(entry("x@ex.net", Some("a.example"), "hasmoved")).await.unwrap();
    s.suppress(entry("x@ex.net", None, "manual")).await.unwrap();

    let addresses = |list: Vec<Suppression>| {
        let mut v: Vec<_> = list.into_iter().map(|e| (e.address, e.domain.map(|d| d.to_string()))).collect();
        v.sort();
        v
    };
    let a = scope(&["a.example"]);
    assert_eq!(s.suppressions(&Scope::All, 100).await.unwrap().len(), 5);
    assert_eq!(
        addresses(s.suppressions(&a, 100).await.unwrap()),
        [("x@ex.net".into(), Some("a.example".into())), ("y@ex.net".into(), Some("mail.a.example".into()))],
        "a scope sees its domain and subdomains, never NULL or other domains"
    );
    assert_eq!(addresses(s.suppressions(&scope(&["mail.a.example"]), 100).await.unwrap()).len(), 1, "not the parent");
    assert_eq!(addresses(s.suppressions(&scope(&["example"]), 100).await.unwrap()).len(), 4, "all under example");
    assert_eq!(addresses(s.suppressions(&scope(&["c.example"]), 100).await.unwrap()), []);
    let x = s.suppression_entries("x@ex.net", &a).await.unwrap();
    assert_eq!((x.len(), x[0].reason.as_str()), (1, "hasmoved"));
    assert_eq!(s.suppression_entries("x@ex.net", &Scope::All).await.unwrap().len(), 3);
    assert!(s.suppression_entries("z@ex.net", &a).await.unwrap().is_empty());

    // Any entry refuses the address, whatever its scope.
    assert!(s.suppression("z@ex.net").await.unwrap().is_some());
    // Removal within a scope leaves the other scopes' entries.
    assert!(!s.unsuppress("z@ex.net", &a).await.unwrap(), "b's entry is absent for a");
    assert!(s.unsuppress("x@ex.net", &a).await.unwrap());
    assert!(!s.unsuppress("x@ex.net", &a).await.unwrap());
    assert_eq!(s.suppression_entries("x@ex.net", &Scope::All).await.unwrap().len(), 2);
    assert!(s.suppression("x@ex.net").await.unwrap().is_some(), "still refused: b's and the admins' entries");
    assert!(s.unsuppress("x@ex.net", &Scope::All).await.unwrap(), "an admin removes every entry");
    assert!(s.suppression("x@ex.net").await.unwrap().is_none());
    assert_eq!(s.search_suppressions("ex.net", 10).await.unwrap().len(), 2);
}

async fn sender_domain_suppressions_refuse_only_their_sender(s: Arc<dyn Store>) {
    use mailerd::store::SuppressionScope;
    let d = |name: &str| Domain::parse(name).unwrap();
    let entry = |address: &str, domain: &str, reason: &str, scope: SuppressionScope| Suppression {
        address: address.into(),
        reason: reason.into(),
        status: None,
        detail: Some(format!("{reason} detail")),
        message_id: Some("U1".into()),
        created_at: String::new(),
        domain: Some(d(domain)),
        scope,
    };
    let unsub = |address: &str, domain: &str| entry(address, domain, "unsubscribed", SuppressionScope::SenderDomain);
    // An unsubscribe writes its own event, once.
    assert!(s.suppress_as(unsub("a@ex.net", "news.test"), EventKind::Unsubscribed, "unsub".into()).await.unwrap());
    assert!(!s.suppress_as(unsub("a@ex.net", "news.test"), EventKind::Unsubscribed, "unsub".into()).await.unwrap());
    let events = settled_events(&*s, Some("unsubscribed"), 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].id.as_str(), events[0].recipient.as_deref()), ("U1", Some("a@ex.net")));
    assert!(settled_events(&*s, Some("suppressed"), 0).await.is_empty());

    let read = s.suppression("a@ex.net").await.unwrap().unwrap();
    assert_eq!((read.scope, read.reason.as_str()), (SuppressionScope::SenderDomain, "unsubscribed"));
    // Refused for its sender domain only: not a subdomain, not another domain, not `<>`.
    assert!(s.suppression_for("a@ex.net", Some(&d("news.test"))).await.unwrap().is_some());
    for other in ["shop.test", "mail.news.test"] {
        assert!(s.suppression_for("a@ex.net", Some(&d(other))).await.unwrap().is_none(), "{other}");
    }
    assert!(s.suppression_for("a@ex.net", None).await.unwrap().is_none());
    // A global entry refuses everyone, and an unsubscribe never narrows it.
    s.suppress(entry("b@ex.net", "news.test", "userunknown", SuppressionScope::Global)).await.unwrap();
    assert!(!s.suppress_as(unsub("b@ex.net", "news.test"), EventKind::Unsubscribed, "x".into()).await.unwrap());
    let b = s.suppression_for("b@ex.net", Some(&d("shop.test"))).await.unwrap().expect("still global");
    assert_eq!((b.scope, b.reason.as_str()), (SuppressionScope::Global, "userunknown"));
    assert!(s.suppression_for("b@ex.net", None).await.unwrap().is_some());
    // A complaint widens an unsubscribe to everyone.
    assert!(
        s.suppress_as(
            entry("a@ex.net", "news.test", "complaint", SuppressionScope::Global),
            EventKind::Complained,
            "c".into()
        )
        .await
        .unwrap()
    );
    assert!(s.suppression_for("a@ex.net", Some(&d("shop.test"))).await.unwrap().is_some());
    assert_eq!(settled_events(&*s, Some("complained"), 1).await.len(), 1);
    // Unsubscribes from two senders are two entries; each refuses only its own sender.
    s.suppress_as(unsub("c@ex.net", "one.test"), EventKind::Unsubscribed, "x".into()).await.unwrap();
    s.suppress_as(unsub("c@ex.net", "two.test"), EventKind::Unsubscribed, "x".into()).await.unwrap();
    assert_eq!(s.suppression_entries("c@ex.net", &Scope::All).await.unwrap().len(), 2);
    assert!(s.suppression_for("c@ex.net", Some(&d("two.test"))).await.unwrap().is_some());
    assert!(s.suppression_for("c@ex.net", Some(&d("three.test"))).await.unwrap().is_none());
    let listed = s.suppressions(&scope(&["one.test"]), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].scope, SuppressionScope::SenderDomain);
}

async fn events_are_filtered_by_sender_scope(s: Arc<dyn Store>) {
    // Senders: the scope's domain, a subdomain, another domain, one that only ends alike, the
    // null sender, and a quoted local part holding another domain.
    let senders = [
        ("A1", "app@a.example"),
        ("B1", "app@b.example"),
        ("A2", "news@mail.a.example"),
        ("X1", "app@xa.example"),
        ("N1", ""),
        ("B2", "\"app@a.example\"@b.example"),
        ("A3", "\"app@b.example\"@a.example"),
    ];
    for (i, (id, from)) in senders.iter().enumerate() {
        let mut m = message(
            id,
            T0 + i as i64,
            vec![rcpt("r1@ex.net", Transport::Remote), rcpt("r2@ex.net", Transport::Remote)],
        );
        m.reverse_path = path(from);
        s.insert_message(m).await.unwrap();
    }
    let all = settled_events(&*s, None, 14).await;
    assert_eq!(all.len(), 14);
    let a = scope(&["a.example"]);
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut pages = 0;
    loop {
        let page = s.events_after(cursor, None, &a, 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        pages += 1;
        assert!(page.len() == 4 || seen.len() + page.len() == 6, "a page is full unless it is the last: {page:?}");
        cursor = page.last().unwrap().event_id;
        seen.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, ["A1", "A1", "A2", "A2", "A3", "A3"]);
    let b: Vec<_> = s.events_after(0, Some(EventKind::Queued), &scope(&["b.example"]), 100).await.unwrap();
    assert_eq!(b.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["B1", "B1", "B2", "B2"]);
    assert_eq!(s.events_after(0, None, &scope(&["b.example", "a.example"]), 100).await.unwrap().len(), 10);
    assert!(s.events_after(0, Some(EventKind::Delivered), &a, 100).await.unwrap().is_empty());
    assert!(s.events_after(0, None, &scope(&["c.example"]), 100).await.unwrap().is_empty());
    // The Rust reading of a sender (GET /messages/{id}) agrees with the stores' SQL.
    for (id, from) in senders {
        assert_eq!(a.covers_sender(from), id.starts_with('A'), "{from}");
    }
}

/// Rows made before schema v6 (SQLite) / v8 (PostgreSQL): a key without domains becomes an
/// admin key, a key with domains stays scoped, and old suppression entries have no scope
/// (admins only) and still refuse their address.
async fn rows_made_before_scopes(s: &dyn Store) {
    let keys = s.api_keys().await.unwrap();
    let scope_of = |id: &str| keys.iter().find(|k| k.id == id).map(|k| k.scope.clone());
    assert_eq!(scope_of("old-any"), Some(Scope::All));
    assert_eq!(scope_of("old-shop"), Some(scope(&["a.example"])));
    let entry = s.suppression("old@ex.net").await.unwrap().expect("still suppressed");
    assert_eq!(entry.domain, None);
    assert!(s.suppressions(&scope(&["a.example"]), 10).await.unwrap().is_empty());
    assert_eq!(s.suppressions(&Scope::All, 10).await.unwrap().len(), 1);
    // The old entry and a scoped one of the same address live side by side.
    let mut again = entry.clone();
    again.domain = Some(Domain::parse("a.example").unwrap());
    s.suppress(again).await.unwrap();
    assert_eq!(s.suppression_entries("old@ex.net", &Scope::All).await.unwrap().len(), 2);
}

const OLD_ROWS: &str = "
INSERT INTO api_keys (id, name, key_hash, domains, created_at) VALUES ('old-any', 'any', 'h1', '[]', 1);
INSERT INTO api_keys (id, name, key_hash, domains, created_at) VALUES ('old-shop', 'shop', 'h2', '[\"a.example\"]', 2);
INSERT INTO suppressions (address, reason, created_at) VALUES ('old@ex.net', 'userunknown', 3);";

/// The SQLite schema files in order: version N is the first N of them.
const SQLITE_SCHEMAS: &[&str] = &[
    include_str!("../../src/store/sqlite/schema.sql"),
    include_str!("../../src/store/sqlite/schema_v2.sql"),
    include_str!("../../src/store/sqlite/schema_v3.sql"),
    include_str!("../../src/store/sqlite/schema_v4.sql"),
    include_str!("../../src/store/sqlite/schema_v5.sql"),
    include_str!("../../src/store/sqlite/schema_v6.sql"),
    include_str!("../../src/store/sqlite/schema_v7.sql"),
    include_str!("../../src/store/sqlite/schema_v8.sql"),
    include_str!("../../src/store/sqlite/schema_v9.sql"),
    include_str!("../../src/store/sqlite/schema_v10.sql"),
    include_str!("../../src/store/sqlite/schema_v11.sql"),
    include_str!("../../src/store/sqlite/schema_v12.sql"),
    include_str!("../../src/store/sqlite/schema_v13.sql"),
    include_str!("../../src/store/sqlite/schema_v14.sql"),
    include_str!("../../src/store/sqlite/schema_v15.sql"),
    include_str!("../../src/store/sqlite/schema_v16.sql"),
    include_str!("../../src/store/sqlite/schema_v17.sql"),
    include_str!("../../src/store/sqlite/schema_v18.sql"),
    include_str!("../../src/store/sqlite/schema_v19.sql"),
];

/// The PostgreSQL schema files in order: version N is the first N of them.
const POSTGRES_SCHEMAS: &[&str] = &[
    include_str!("../../src/store/postgres/schema_v1.sql"),
    include_str!("../../src/store/postgres/schema_v2.sql"),
    include_str!("../../src/store/postgres/schema_v3.sql"),
    include_str!("../../src/store/postgres/schema_v4.sql"),
    include_str!("../../src/store/postgres/schema_v5.sql"),
    include_str!("../../src/store/postgres/schema_v6.sql"),
    include_str!("../../src/store/postgres/schema_v7.sql"),
    include_str!("../../src/store/postgres/schema_v8.sql"),
    include_str!("../../src/store/postgres/schema_v9.sql"),
    include_str!("../../src/store/postgres/schema_v10.sql"),
    include_str!("../../src/store/postgres/schema_v11.sql"),
    include_str!("../../src/store/postgres/schema_v12.sql"),
    include_str!("../../src/store/postgres/schema_v13.sql"),
    include_str!("../../src/store/postgres/schema_v14.sql"),
    include_str!("../../src/store/postgres/schema_v15.sql"),
    include_str!("../../src/store/postgres/schema_v16.sql"),
    include_str!("../../src/store/postgres/schema_v17.sql"),
    include_str!("../../src/store/postgres/schema_v18.sql"),
    include_str!("../../src/store/postgres/schema_v19.sql"),
    include_str!("../../src/store/postgres/schema_v20.sql"),
];

/// A SQLite store file left at schema `version` by an older mailerd, holding `rows`; the
/// store that opens it runs the migrations after that version.
fn sqlite_at_version(dir: &std::path::Path, version: usize, rows: &str) -> SqliteStore {
    let path = dir.join("mailerd.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in SQLITE_SCHEMAS.iter().take(version) {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch(rows).unwrap();
        c.execute_batch(&format!("PRAGMA user_version = {version};")).unwrap();
    }
    SqliteStore::open(&path).unwrap()
}

/// A PostgreSQL schema left at `version` by an older mailerd, holding `rows`; the store that
/// connects runs the migrations after that version.
async fn postgres_at_version(admin: &str, name: &str, version: usize, rows: &str) -> (TestSchema, PgStore) {
    let schema = TestSchema::create(admin, name).await;
    let (c, conn) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c.batch_execute("CREATE TABLE mailerd_schema (version INTEGER NOT NULL)").await.unwrap();
    for (v, sql) in (1..).zip(POSTGRES_SCHEMAS.iter().take(version)) {
        c.batch_execute(sql).await.unwrap();
        c.execute("INSERT INTO mailerd_schema (version) VALUES ($1)", &[&v]).await.unwrap();
    }
    c.batch_execute(rows).await.unwrap();
    let store = PgStore::connect(&schema.url).await.unwrap();
    (schema, store)
}

#[tokio::test]
async fn sqlite_upgrade_to_scopes() {
    let dir = tempfile::tempdir().unwrap();
    rows_made_before_scopes(&sqlite_at_version(dir.path(), 5, OLD_ROWS)).await;
}

#[tokio::test]
async fn postgres_upgrade_to_scopes() {
    let Some(admin) = url_or_skip("store_conformance::postgres_upgrade_to_scopes") else { return };
    let (_schema, store) = postgres_at_version(&admin, "upgrade_scopes", 7, OLD_ROWS).await;
    rows_made_before_scopes(&store).await;
}

/// The learned filter's model: a sample counts once under its label, moves when relabelled
/// (the operator's label stands against an automatic one), a recorded sample is found by its
/// bounce id and labelled later; the model keeps to its token cap (the least useful tokens go)
/// and its sample cap (the oldest go).
async fn the_learned_filter_trains_relabels_and_stays_within_its_bounds(s: Arc<dyn Store>) {
    use mailerd::store::learner::{Label, Learned, LearnerLimits, Sample, TrainSource};
    let limits = LearnerLimits { max_tokens: 1_000, max_samples: 10 };
    let sample = |digest: &str, tokens: &[&str], label: Option<Label>, source: TrainSource, at: i64| Sample {
        digest: digest.into(),
        bounce: Some(MessageId(format!("B-{digest}"))),
        original: None,
        tokens: tokens.iter().map(|t| t.to_string()).collect(),
        label,
        source,
        at: Timestamp(at),
    };
    let toks = ["s:undelivered", "x:links:0", "verify"];
    let learn = |x: Sample| {
        let s = s.clone();
        async move { s.learn(x, limits).await.expect("learn") }
    };
    assert_eq!(learn(sample("a", &toks, Some(Label::Forged), TrainSource::Auto, T0)).await, Learned::Trained);
    assert_eq!(learn(sample("a", &toks, Some(Label::Forged), TrainSource::Auto, T0)).await, Learned::Unchanged);
    let ask: Vec<String> = toks.iter().map(|t| t.to_string()).chain(["unseen".to_string()]).collect();
    let m = s.learner_model(&ask).await.unwrap();
    assert_eq!((m.forged_messages, m.genuine_messages, m.size, m.tokens.len()), (1, 0, 3, 3));
    assert_eq!((m.tokens["verify"].forged, m.tokens["verify"].genuine), (1, 0));
    assert_eq!(learn(sample("a", &toks, Some(Label::Genuine), TrainSource::Operator, T0)).await, Learned::Relabelled);
    assert_eq!(learn(sample("a", &toks, Some(Label::Forged), TrainSource::Auto, T0)).await, Learned::Unchanged);
    let m = s.learner_model(&ask).await.unwrap();
    assert_eq!((m.forged_messages, m.genuine_messages), (0, 1));
    assert_eq!((m.tokens["verify"].forged, m.tokens["verify"].genuine), (0, 1));
    // Recorded without a label, found by its bounce id, labelled later.
    assert_eq!(learn(sample("b", &["verify", "quota"], None, TrainSource::Auto, T0 + 1)).await, Learned::Recorded);
    let got = s.learner_sample(&MessageId("B-b".into())).await.unwrap().expect("sample of B-b");
    assert_eq!(
        (got.digest.as_str(), got.label, got.tokens.clone()),
        ("b", None, vec!["quota".into(), "verify".into()])
    );
    assert!(s.learner_sample(&MessageId("B-none".into())).await.unwrap().is_none());
    let mut labelled = got.clone();
    labelled.label = Some(Label::Forged);
    labelled.source = TrainSource::Operator;
    assert_eq!(learn(labelled).await, Learned::Trained);
    let got = s.learner_sample(&MessageId("B-b".into())).await.unwrap().unwrap();
    assert_eq!((got.label, got.source), (Some(Label::Forged), TrainSource::Operator));
    // The caps: 30 samples of 50 tokens of their own and one they share.
    for i in 0..30i64 {
        let mut own: Vec<String> = (0..50).map(|j| format!("t{i}-{j}")).collect();
        own.push("shared".into());
        let refs: Vec<&str> = own.iter().map(String::as_str).collect();
        learn(sample(&format!("c{i:02}"), &refs, Some(Label::Genuine), TrainSource::Auto, T0 + 10 + i)).await;
    }
    let first: Vec<String> = vec!["t0-0".into(), "t29-0".into(), "shared".into(), "verify".into()];
    let m = s.learner_model(&first).await.unwrap();
    assert!(m.size <= limits.max_tokens, "the model holds {} tokens", m.size);
    assert!(!m.tokens.contains_key("t0-0"), "an old token seen once is pruned first");
    assert!(m.tokens.contains_key("t29-0") && m.tokens.contains_key("shared"), "{:?}", m.tokens.keys());
    assert_eq!(m.tokens["shared"].genuine, 30);
    assert_eq!(m.genuine_messages, 31, "pruning keeps the totals");
    assert!(s.learner_sample(&MessageId("B-c00".into())).await.unwrap().is_none(), "the oldest samples go");
    assert!(s.learner_sample(&MessageId("B-c29".into())).await.unwrap().is_some());
}

/// Every kind of destination a recipient can have goes in typed and comes back typed with its
/// claim, each under its own transport.
async fn every_destination_is_read_back_typed(s: Arc<dyn Store>) {
    let to = |address: &str, destination: Destination| NewRecipient {
        address: address.into(),
        orcpt: None,
        notify: None,
        destination,
    };
    let all = [
        to("al@ex.net", Destination::Remote),
        to("alias@local.test", Destination::Forward("target@elsewhere.test".into())),
        to("bob@local.test", Destination::Mailbox("bob@local.test".into())),
        to("bounces+a@rp.test", Destination::BounceOf { queue_id: MessageId("Q1".into()), rid: Some(RecipientId(7)) }),
        to("bounces+b@rp.test", Destination::BounceOf { queue_id: MessageId("Q2".into()), rid: None }),
        to("carol@local.test", Destination::NullSenderTo("carol@local.test".into())),
        to("unsubscribe+x@rp.test", Destination::Report),
    ];
    s.insert_message(message("D1", T0, all.to_vec())).await.expect("insert");
    let mut got = Vec::new();
    for t in [Transport::Remote, Transport::Local, Transport::Feedback] {
        for c in claim(&*s, t, T0, 10, "n1").await {
            assert_eq!(c.destination.transport(), t, "{:?} claimed as {t:?}", c.destination);
            got.push((c.address, c.destination));
        }
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<(String, Destination)> = all.into_iter().map(|r| (r.address, r.destination)).collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
}

/// Recipients written before destinations had columns of their own (SQLite 6, PostgreSQL 8):
/// `mailbox` held `QUEUEID:RID` and `local:KEY` for the feedback transport.
async fn rows_made_before_destinations(s: &dyn Store) {
    let mut got = Vec::new();
    for t in [Transport::Remote, Transport::Local, Transport::Feedback] {
        for c in claim(s, t, T0, 10, "n1").await {
            got.push((c.address, c.destination));
        }
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let d = |a: &str, d: Destination| (a.to_string(), d);
    assert_eq!(
        got,
        vec![
            d("a@ex.net", Destination::Remote),
            d("b@local.test", Destination::Forward("t@ex.net".into())),
            d("c@local.test", Destination::Mailbox("c@local.test".into())),
            d("d@rp.test", Destination::BounceOf { queue_id: MessageId("Q1".into()), rid: Some(RecipientId(7)) }),
            d("e@rp.test", Destination::BounceOf { queue_id: MessageId("Q2".into()), rid: None }),
            d("f@local.test", Destination::NullSenderTo("f@local.test".into())),
        ]
    );
}

const OLD_DESTINATIONS: &str = "
INSERT INTO messages (id, reverse_path, size, received_at, origin, body) VALUES ('OLD', 's@ex.net', 0, 1, '{}', '');
INSERT INTO recipients (message_id, address, transport, mailbox, state, next_attempt_at, updated_at) VALUES
    ('OLD', 'a@ex.net', 'remote', NULL, 'queued', 1, 1),
    ('OLD', 'b@local.test', 'remote', 't@ex.net', 'queued', 1, 1),
    ('OLD', 'c@local.test', 'local', 'c@local.test', 'queued', 1, 1),
    ('OLD', 'd@rp.test', 'feedback', 'Q1:7', 'queued', 1, 1),
    ('OLD', 'e@rp.test', 'feedback', 'Q2:0', 'queued', 1, 1),
    ('OLD', 'f@local.test', 'feedback', 'local:f@local.test', 'queued', 1, 1);";

#[tokio::test]
async fn sqlite_upgrade_to_destinations() {
    let dir = tempfile::tempdir().unwrap();
    rows_made_before_destinations(&sqlite_at_version(dir.path(), 6, OLD_DESTINATIONS)).await;
}

#[tokio::test]
async fn postgres_upgrade_to_destinations() {
    let Some(admin) = url_or_skip("store_conformance::postgres_upgrade_to_destinations") else { return };
    let (_schema, store) = postgres_at_version(&admin, "upgrade_destinations", 8, OLD_DESTINATIONS).await;
    rows_made_before_destinations(&store).await;
}

async fn mta_sts_policies_and_tls_results_are_kept_per_domain(s: Arc<dyn Store>) {
    use mailerd::tlspolicy::{CachedPolicy, LastResult, Mode, TlsResult};
    assert_eq!(s.sts_policy("a.test").await.unwrap(), None);
    let body = "version: STSv1\r\nmode: enforce\r\nmx: *.a.test\r\nmx: mx.b.test\r\nmax_age: 86400\r\n";
    let first = CachedPolicy::new("a.test", "1", body.into(), Timestamp(1_000)).unwrap();
    s.put_sts_policy(&first).await.unwrap();
    let read = s.sts_policy("a.test").await.unwrap().expect("cached");
    assert_eq!(read, first, "read back as stored: body, id, times, parsed policy");
    assert_eq!((read.policy.mode, read.policy.mx_list().as_str()), (Mode::Enforce, "*.a.test, mx.b.test"));
    assert_eq!(read.expires_at, Timestamp(1_000 + 86_400_000));
    // A new id replaces the policy; another domain is another row.
    let second = CachedPolicy::new(
        "a.test",
        "2",
        "version: STSv1\nmode: testing\nmx: mx.a.test\nmax_age: 60".into(),
        Timestamp(5_000),
    )
    .unwrap();
    s.put_sts_policy(&second).await.unwrap();
    let other =
        CachedPolicy::new("c.test", "9", "version: STSv1\nmode: none\nmax_age: 1".into(), Timestamp(5_000)).unwrap();
    s.put_sts_policy(&other).await.unwrap();
    assert_eq!(s.sts_policy("a.test").await.unwrap(), Some(second));
    assert_eq!(s.sts_policy("c.test").await.unwrap().map(|p| p.policy.mode), Some(Mode::None));

    assert_eq!(s.tls_result("a.test").await.unwrap(), None);
    let failed = LastResult {
        domain: "a.test".into(),
        policy: "MTA-STS enforce, id 2".into(),
        result: TlsResult::StartTlsNotSupported,
        detail: "mx.a.test[127.0.0.1]:25 does not offer STARTTLS".into(),
        at: Timestamp(7_000),
    };
    s.record_tls_result(&failed).await.unwrap();
    assert_eq!(s.tls_result("a.test").await.unwrap(), Some(failed.clone()));
    let ok = LastResult { result: TlsResult::Success, at: Timestamp(8_000), ..failed };
    s.record_tls_result(&ok).await.unwrap();
    assert_eq!(s.tls_result("a.test").await.unwrap(), Some(ok), "the last result replaces the one before");
}

async fn tls_sessions_are_counted_per_day_and_taken_once(s: Arc<dyn Store>) {
    use mailerd::tlspolicy::{Day, PolicyType, ReportPolicy, TlsCount, TlsResult};
    let sts = ReportPolicy { kind: PolicyType::Sts, id: "7".into(), body: "version: STSv1\nmode: testing".into() };
    let ok = TlsCount {
        day: Day(20_000),
        domain: "a.test".into(),
        policy: sts.clone(),
        result: TlsResult::Success,
        mx_host: Some("mx.a.test".into()),
        receiving_ip: Some("127.0.0.2".parse().unwrap()),
        sending_ip: Some("::1".parse().unwrap()),
        count: 1,
    };
    let failed = TlsCount {
        result: TlsResult::StsPolicyFetchError,
        mx_host: None,
        receiving_ip: None,
        sending_ip: None,
        ..ok.clone()
    };
    let plain = TlsCount { policy: ReportPolicy::none(), result: TlsResult::StartTlsNotSupported, ..ok.clone() };
    for c in [&ok, &ok, &ok, &failed, &plain] {
        s.count_tls_sessions(c).await.unwrap();
    }
    // Another domain that day, a.test the next day.
    s.count_tls_sessions(&TlsCount { domain: "b.test".into(), ..ok.clone() }).await.unwrap();
    s.count_tls_sessions(&TlsCount { day: Day(20_001), count: 4, ..ok.clone() }).await.unwrap();

    assert_eq!(s.tls_report_due(Day(20_000)).await.unwrap(), vec![], "nothing before the first day");
    let due = s.tls_report_due(Day(20_001)).await.unwrap();
    assert_eq!(due, vec![(Day(20_000), "a.test".to_string()), (Day(20_000), "b.test".to_string())]);
    let mut taken = s.take_tls_counts(Day(20_000), "a.test").await.unwrap();
    taken.sort_by_key(|c| c.result.as_str());
    assert_eq!(taken, vec![plain, failed, TlsCount { count: 3, ..ok.clone() }], "one row per key, counts added");
    assert_eq!(s.take_tls_counts(Day(20_000), "a.test").await.unwrap(), vec![], "taken once");
    assert_eq!(s.tls_report_due(Day(20_002)).await.unwrap().len(), 2, "b.test that day and a.test the next");
    assert_eq!(s.take_tls_counts(Day(20_001), "a.test").await.unwrap()[0].count, 4);
}

// --- account protection (issue 19) ---

async fn passwords_age_and_are_rehashed_only_when_unchanged(s: Arc<dyn Store>) {
    let before = Timestamp::now();
    s.upsert_mailbox("pw@local.test", Some("$argon2id$old".into()), None).await.unwrap();
    let m = s.mailbox("pw@local.test").await.unwrap().unwrap();
    let set_at = m.password_changed_at.expect("a password has an age");
    assert!(set_at >= before && set_at <= Timestamp::now());
    // A quota change keeps the password and its age.
    s.upsert_mailbox("pw@local.test", None, Some(10)).await.unwrap();
    let m = s.mailbox("pw@local.test").await.unwrap().unwrap();
    assert_eq!((m.password_hash.as_deref(), m.password_changed_at), (Some("$argon2id$old"), Some(set_at)));
    // A re-hash replaces only the hash it was computed from, and keeps the age.
    assert!(!s.rehash_password("pw@local.test", "$argon2id$other", "$argon2id$new").await.unwrap());
    assert!(s.rehash_password("pw@local.test", "$argon2id$old", "$argon2id$new").await.unwrap());
    let m = s.mailbox("pw@local.test").await.unwrap().unwrap();
    assert_eq!((m.password_hash.as_deref(), m.password_changed_at), (Some("$argon2id$new"), Some(set_at)));
    assert!(!s.rehash_password("nobody@local.test", "$argon2id$new", "x").await.unwrap());
    // A mailbox without a password has no age.
    s.upsert_mailbox("nopw@local.test", None, None).await.unwrap();
    assert_eq!(s.mailbox("nopw@local.test").await.unwrap().unwrap().password_changed_at, None);
}

fn app(address: &str, name: &str, hash: &str, at: i64) -> AppPassword {
    AppPassword {
        address: address.into(),
        name: name.into(),
        hash: hash.into(),
        created_at: Timestamp(at),
        last_used_at: None,
        last_used_ip: None,
    }
}

async fn app_passwords_are_named_looked_up_by_hash_touched_and_revoked(s: Arc<dyn Store>) {
    let a = "app@local.test";
    assert!(s.add_app_password(app(a, "phone", "h-phone", 1_000)).await.unwrap());
    assert!(s.add_app_password(app(a, "laptop", "h-laptop", 2_000)).await.unwrap());
    assert!(!s.add_app_password(app(a, "phone", "h-other", 3_000)).await.unwrap(), "names are unique per login");
    assert!(s.add_app_password(app("b@local.test", "phone", "h-phone", 3_000)).await.unwrap());
    let list = s.app_passwords(a).await.unwrap();
    assert_eq!(list.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["laptop", "phone"]);
    assert_eq!(list[1], app(a, "phone", "h-phone", 1_000));
    assert_eq!(s.app_password(a, "h-laptop").await.unwrap().map(|p| p.name), Some("laptop".into()));
    assert_eq!(s.app_password(a, "h-nope").await.unwrap(), None);
    assert_eq!(s.app_password("c@local.test", "h-phone").await.unwrap(), None, "another login's");
    let ip: std::net::IpAddr = "2001:db8::7".parse().unwrap();
    s.touch_app_password(a, "phone", Timestamp(5_000), ip).await.unwrap();
    // An older touch (a slower node) does not move the time back.
    s.touch_app_password(a, "phone", Timestamp(4_000), "127.0.0.9".parse().unwrap()).await.unwrap();
    let p = s.app_password(a, "h-phone").await.unwrap().unwrap();
    assert_eq!((p.last_used_at, p.last_used_ip), (Some(Timestamp(5_000)), Some(ip)));
    assert!(s.revoke_app_password(a, "phone").await.unwrap());
    assert!(!s.revoke_app_password(a, "phone").await.unwrap());
    assert_eq!(s.app_password(a, "h-phone").await.unwrap(), None);
    assert!(s.app_password("b@local.test", "h-phone").await.unwrap().is_some(), "the other login's stays");
}

async fn a_deleted_login_takes_its_credentials_with_it(s: Arc<dyn Store>) {
    let (a, b) = ("gone@local.test", "stays@local.test");
    for who in [a, b] {
        s.upsert_mailbox(who, Some("$argon2id$x".into()), Some(5_000)).await.unwrap();
        assert!(s.add_app_password(app(who, "phone", &format!("h-{who}"), 1_000)).await.unwrap());
        s.enable_second_factor(who, &TotpSecret(vec![1; 20]), &["r1".into()], Timestamp(7_000)).await.unwrap();
    }
    assert!(s.delete_mailbox(a).await.unwrap());
    assert!(!s.delete_mailbox(a).await.unwrap(), "only once");
    assert!(!s.delete_mailbox("never@local.test").await.unwrap());
    assert!(s.mailbox(a).await.unwrap().is_none());
    assert!(s.app_passwords(a).await.unwrap().is_empty());
    assert_eq!(s.second_factor(a).await.unwrap(), None);
    // Added again, it starts without the old credentials.
    s.upsert_mailbox(a, Some("$argon2id$y".into()), None).await.unwrap();
    assert_eq!(
        s.mailbox(a).await.unwrap().map(|m| (m.quota, m.password_hash)),
        Some((None, Some("$argon2id$y".into())))
    );
    assert!(s.app_password(a, &format!("h-{a}")).await.unwrap().is_none());
    // The other login keeps everything.
    assert_eq!(s.mailbox(b).await.unwrap().and_then(|m| m.quota), Some(5_000));
    assert_eq!(s.app_passwords(b).await.unwrap().len(), 1);
    assert!(s.second_factor(b).await.unwrap().is_some());
}

async fn second_factors_accept_each_step_and_recovery_code_once(s: Arc<dyn Store>) {
    let a = "tf@local.test";
    assert_eq!(s.second_factor(a).await.unwrap(), None);
    assert!(!s.use_totp_step(a, 10).await.unwrap(), "no factor, no step");
    let secret = TotpSecret((0u8..20).collect());
    s.enable_second_factor(a, &secret, &["r1".into(), "r2".into()], Timestamp(7_000)).await.unwrap();
    let f = s.second_factor(a).await.unwrap().unwrap();
    assert_eq!((f.secret.clone(), f.enabled_at, f.last_step), (secret.clone(), Timestamp(7_000), None));
    assert_eq!(
        f.recovery_codes.iter().map(|c| (c.hash.as_str(), c.used_at)).collect::<Vec<_>>(),
        [("r1", None), ("r2", None)]
    );
    assert!(s.use_totp_step(a, 100).await.unwrap());
    assert!(!s.use_totp_step(a, 100).await.unwrap(), "a code is used once");
    assert!(!s.use_totp_step(a, 99).await.unwrap(), "nor an earlier one after it");
    assert!(s.use_totp_step(a, 101).await.unwrap());
    assert_eq!(s.second_factor(a).await.unwrap().unwrap().last_step, Some(101));
    assert!(s.use_recovery_code(a, "r2", Timestamp(8_000)).await.unwrap());
    assert!(!s.use_recovery_code(a, "r2", Timestamp(9_000)).await.unwrap(), "a recovery code is used once");
    assert!(!s.use_recovery_code(a, "r9", Timestamp(9_000)).await.unwrap());
    assert!(!s.use_recovery_code("other@local.test", "r1", Timestamp(9_000)).await.unwrap());
    let codes = s.second_factor(a).await.unwrap().unwrap().recovery_codes;
    assert_eq!(codes[1].used_at, Some(Timestamp(8_000)));
    // Enrolling again replaces the secret and the codes and forgets the step.
    let new_secret = TotpSecret(vec![9; 20]);
    s.enable_second_factor(a, &new_secret, &["r3".into()], Timestamp(10_000)).await.unwrap();
    let f = s.second_factor(a).await.unwrap().unwrap();
    assert_eq!((f.secret, f.last_step, f.recovery_codes.len()), (new_secret, None, 1));
    assert!(!s.use_recovery_code(a, "r1", Timestamp(11_000)).await.unwrap(), "old codes are gone");
    assert!(s.disable_second_factor(a).await.unwrap());
    assert!(!s.disable_second_factor(a).await.unwrap());
    assert_eq!(s.second_factor(a).await.unwrap(), None);
    assert!(!s.use_recovery_code(a, "r3", Timestamp(12_000)).await.unwrap());
}

const MAILBOX_BEFORE_AGES: &str = "
INSERT INTO mailboxes (address, password_hash) VALUES ('old@local.test', '$argon2id$x');
INSERT INTO mailboxes (address) VALUES ('nopw@local.test');";

async fn mailboxes_made_before_password_ages(s: &dyn Store, before: Timestamp) {
    let m = s.mailbox("old@local.test").await.unwrap().unwrap();
    let age = m.password_changed_at.expect("counted from the migration");
    assert!(age >= before && age <= Timestamp::now());
    assert_eq!(s.mailbox("nopw@local.test").await.unwrap().unwrap().password_changed_at, None);
}

#[tokio::test]
async fn sqlite_upgrade_to_password_ages() {
    let dir = tempfile::tempdir().unwrap();
    let before = Timestamp(Timestamp::now().millis() - 1_000);
    mailboxes_made_before_password_ages(&sqlite_at_version(dir.path(), 9, MAILBOX_BEFORE_AGES), before).await;
}

#[tokio::test]
async fn postgres_upgrade_to_password_ages() {
    let Some(admin) = url_or_skip("store_conformance::postgres_upgrade_to_password_ages") else { return };
    let before = Timestamp(Timestamp::now().millis() - 1_000);
    let (_schema, store) = postgres_at_version(&admin, "upgrade_ages", 11, MAILBOX_BEFORE_AGES).await;
    mailboxes_made_before_password_ages(&store, before).await;
}

async fn a_batch_of_messages_is_stored_all_or_none(s: Arc<dyn Store>) {
    let batch: Vec<NewMessage> = (0..5)
        .map(|i| {
            let mut m = message(&format!("B{i}"), T0 + i, vec![rcpt(&format!("r{i}@ex.net"), Transport::Remote)]);
            m.notes = vec![(None, format!("note {i}"))];
            m
        })
        .collect();
    s.insert_messages(batch).await.expect("a batch");
    for i in 0..5 {
        let d = s.message_detail(&MessageId(format!("B{i}"))).await.unwrap().expect("stored");
        assert_eq!(d.entry.recipients.len(), 1, "B{i}");
    }
    assert_eq!(s.queued_messages().await.unwrap(), 5);
    assert_eq!(claim(&*s, Transport::Remote, T0 + 10, 100, "w").await.len(), 5, "every recipient is due");

    // One taken id fails the whole batch: nothing of its neighbours is stored.
    let bad = vec![
        message("B10", T0, vec![rcpt("x@ex.net", Transport::Remote)]),
        message("B3", T0, vec![rcpt("y@ex.net", Transport::Remote)]),
        message("B11", T0, vec![rcpt("z@ex.net", Transport::Remote)]),
    ];
    assert!(s.insert_messages(bad).await.is_err(), "a taken id fails the batch");
    for id in ["B10", "B11"] {
        assert!(s.message_detail(&MessageId(id.into())).await.unwrap().is_none(), "{id} not stored");
    }
    assert_eq!(states(&*s, "B3").await.len(), 1, "B3 untouched");

    // The batch's idempotency record (on its first message) commits with it, or refuses it all.
    let mut first = idempotent("B20", T0, "key1", "batch-1");
    first.idempotency.as_mut().unwrap().status = 200;
    s.insert_messages(vec![first, message("B21", T0, vec![rcpt("w@ex.net", Transport::Remote)])]).await.unwrap();
    assert_eq!(s.idempotency("key1", "batch-1", Timestamp(T0)).await.unwrap().unwrap().status, 200);
    let again = vec![message("B31", T0, vec![]), idempotent("B30", T0, "key1", "batch-1")];
    match s.insert_messages(again).await {
        Err(StoreError::IdempotencyKeyTaken) => {}
        other => panic!("expected IdempotencyKeyTaken, got {other:?}"),
    }
    for id in ["B30", "B31"] {
        assert!(s.message_detail(&MessageId(id.into())).await.unwrap().is_none(), "{id} not stored");
    }
    assert_eq!(s.queued_messages().await.unwrap(), 7);
    // An empty batch stores nothing and is no error.
    s.insert_messages(Vec::new()).await.expect("an empty batch");
    assert_eq!(s.queued_messages().await.unwrap(), 7);
}

async fn a_sandbox_message_is_recorded_and_never_claimed(s: Arc<dyn Store>) {
    let mut m = message("SB1", T0, vec![rcpt("a@ex.net", Transport::Remote), rcpt("b@local.test", Transport::Local)]);
    m.origin.sandbox = true;
    m.notes = vec![(None, "a finding".into())];
    m.header_message_id = Some("<sb1@example.com>".into());
    s.insert_message(m).await.unwrap();
    let mut real = message("REAL", T0, vec![rcpt("c@ex.net", Transport::Remote)]);
    real.origin.tags = vec!["welcome".into()];
    real.origin.metadata = [("user".to_string(), "42".to_string())].into();
    s.insert_message(real).await.unwrap();
    let events = settled_events(&*s, None, 4).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.tags.as_slice(), last.metadata.get("user").map(String::as_str)),
        (&["welcome".to_string()][..], Some("42"))
    );
    assert!(events[0].tags.is_empty(), "a message without tags");
    let scoped = s.events_after(0, None, &scope(&["example.com"]), 100).await.unwrap();
    assert_eq!(scoped.len(), 4, "settled above");
    assert_eq!(scoped.last().unwrap().tags, ["welcome"], "the scoped read too");
    let seen: Vec<(&str, Option<&str>, EventKind, bool)> =
        events.iter().map(|e| (e.id.as_str(), e.recipient.as_deref(), e.kind, e.sandbox)).collect();
    assert_eq!(
        seen,
        [
            ("SB1", None, EventKind::Check, true),
            ("SB1", Some("a@ex.net"), EventKind::Queued, true),
            ("SB1", Some("b@local.test"), EventKind::Queued, true),
            ("REAL", Some("c@ex.net"), EventKind::Queued, false),
        ]
    );
    let detail = s.message_detail(&MessageId("SB1".into())).await.unwrap().expect("the message is kept");
    assert!(detail.entry.recipients.is_empty(), "no recipient rows");
    assert!(detail.origin.sandbox, "the origin says sandbox");
    for t in [Transport::Remote, Transport::Local] {
        let claimed: Vec<String> = claim(&*s, t, T0 + 1000, 100, "w").await.into_iter().map(|c| c.message.0).collect();
        assert!(!claimed.contains(&"SB1".to_string()), "{claimed:?}");
    }
    assert_eq!(s.queued_messages().await.unwrap(), 1, "only the real one waits");
    assert!(s.sent_log("sb1@example.com").await.unwrap().is_empty(), "nothing sent, nothing in the sent log");
    assert!(s.delete_message(&MessageId("SB1".into())).await.unwrap(), "and it can be deleted");
}

async fn rejected_recipients_and_attempt_numbers_are_in_the_event_stream(s: Arc<dyn Store>) {
    let mut m = message("RJ1", T0, vec![rcpt("a@ex.net", Transport::Remote)]);
    let refusal = "550 5.1.1 <b@ex.net>: suppressed since 2026-01-01 after a hard bounce (userunknown)";
    m.rejected = vec![mailerd::store::RejectedRcpt {
        address: "b@ex.net".into(),
        status: EnhancedStatus::new(5, 1, 1),
        detail: refusal.into(),
    }];
    s.insert_message(m).await.unwrap();
    let ours = |events: Vec<mailerd::store::EventRecord>| -> Vec<mailerd::store::EventRecord> {
        events.into_iter().filter(|e| e.id == "RJ1").collect()
    };
    let rejected = ours(settled_events(&*s, Some("rejected"), 1).await);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let r = &rejected[0];
    assert_eq!(
        (r.kind, r.recipient.as_deref(), r.status.as_deref(), r.detail.as_deref()),
        (EventKind::Rejected, Some("b@ex.net"), Some("5.1.1"), Some(refusal))
    );
    assert_eq!((r.attempt, r.tags.clone()), (None, origin().tags), "no attempt; the send's tags");

    // Two deferrals, then the give-up: the attempts are numbered, the first one's time kept.
    for (n, state) in [(1, RecipientState::Deferred), (2, RecipientState::Deferred), (3, RecipientState::Expired)] {
        let c = claim(&*s, Transport::Remote, T0 + n * 1000, 10, "n1").await;
        assert_eq!(c.len(), 1, "attempt {n}");
        let mut a = attempt(c[0].recipient, "RJ1", state);
        a.next_attempt_at = Some(Timestamp(T0 + (n + 1) * 1000));
        s.record_attempts("n1", vec![a]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let events = ours(settled_events(&*s, None, 6).await);
    let tried: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Deferred | EventKind::Expired))
        .map(|e| (e.kind, e.attempt))
        .collect();
    assert_eq!(
        tried,
        [(EventKind::Deferred, Some(1)), (EventKind::Deferred, Some(2)), (EventKind::Expired, Some(3))],
        "{events:?}"
    );
    let first = events.iter().find(|e| e.kind == EventKind::Deferred).unwrap();
    assert!(
        events.iter().filter(|e| e.attempt.is_some()).all(|e| e.first_attempt_at.as_deref() == Some(first.at.as_str())),
        "every attempt names the first one's time: {events:?}"
    );
    assert!(events.iter().filter(|e| e.kind == EventKind::Queued).all(|e| e.attempt.is_none()));
}

/// A global suppression entry of `address` for `reason`, with no status, detail or message.
fn suppression(address: &str, reason: &str) -> Suppression {
    Suppression {
        address: address.into(),
        reason: reason.into(),
        status: None,
        detail: None,
        message_id: None,
        created_at: String::new(),
        domain: None,
        scope: mailerd::store::SuppressionScope::Global,
    }
}

async fn the_suppression_list_pages_by_cursor(s: Arc<dyn Store>) {
    // Seven entries, two of them the same address for two domains, several at the same time.
    let entry = |address: &str, domain: Option<&str>| Suppression {
        domain: domain.map(|d| Domain::parse(d).unwrap()),
        ..suppression(address, "manual")
    };
    for (a, d) in [
        ("p1@ex.net", None),
        ("p2@ex.net", Some("a.example")),
        ("p2@ex.net", Some("b.example")),
        ("p3@ex.net", None),
        ("p4@ex.net", Some("a.example")),
        ("p5@ex.net", None),
        ("p6@ex.net", None),
    ] {
        assert!(s.suppress(entry(a, d)).await.unwrap());
    }
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let (page, next) = s.suppressions_after(&Scope::All, 3, after.as_ref()).await.unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            assert!(next.is_none());
            break;
        }
        seen.extend(page.into_iter().map(|e| (e.address, e.domain.map(|d| d.to_string()))));
        after = next;
    }
    let mut all = seen.clone();
    all.sort();
    all.dedup();
    assert_eq!((seen.len(), all.len()), (7, 7), "every entry once: {seen:?}");
    assert_eq!(
        s.suppressions(&Scope::All, 100).await.unwrap().into_iter().map(|e| e.address).collect::<Vec<_>>(),
        seen.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
        "the pages are the list, in its order"
    );
    let (scoped, _) = s.suppressions_after(&scope(&["a.example"]), 10, None).await.unwrap();
    assert_eq!(scoped.len(), 2, "a scope pages its own entries: {scoped:?}");
}

async fn messages_are_searched_by_state_recipient_tag_and_time(s: Arc<dyn Store>) {
    use mailerd::store::MessageSearch;
    for (i, (id, rcpt, tag)) in
        [("S1", "a@ex.net", "news"), ("S2", "b@ex.net", "invoice"), ("S3", "A@ex.net", "news")].into_iter().enumerate()
    {
        let mut m = message(id, T0 + i as i64 * 1000, vec![rcpt_of(rcpt)]);
        m.origin.tags = vec![tag.into()];
        s.insert_message(m).await.unwrap();
    }
    let c = claim(&*s, Transport::Remote, T0 + 5000, 10, "n1").await;
    let s2 = c.iter().find(|c| c.message.0 == "S2").unwrap();
    s.record_attempts("n1", vec![attempt(s2.recipient, "S2", RecipientState::Bounced)]).await.unwrap();
    let ids = |hits: Vec<mailerd::store::MessageHit>| hits.into_iter().map(|h| h.id.0).collect::<Vec<_>>();
    let find = |q: MessageSearch| {
        let s = s.clone();
        async move { ids(s.search_messages(&Scope::All, &MessageSearch { limit: 10, ..q }).await.unwrap()) }
    };
    assert_eq!(find(MessageSearch::default()).await, ["S3", "S2", "S1"], "newest first");
    assert_eq!(find(MessageSearch { tag: Some("news".into()), ..Default::default() }).await, ["S3", "S1"]);
    assert_eq!(find(MessageSearch { recipient: Some("a@EX.net".into()), ..Default::default() }).await, ["S3", "S1"]);
    assert_eq!(find(MessageSearch { state: Some(RecipientState::Bounced), ..Default::default() }).await, ["S2"]);
    let bounced_a = MessageSearch {
        state: Some(RecipientState::Bounced),
        recipient: Some("a@ex.net".into()),
        ..Default::default()
    };
    assert!(find(bounced_a).await.is_empty(), "state and address of the same recipient");
    assert_eq!(find(MessageSearch { since: Some(Timestamp(T0 + 1000)), ..Default::default() }).await, ["S3", "S2"]);
    let page = s.search_messages(&Scope::All, &MessageSearch { limit: 2, ..Default::default() }).await.unwrap();
    let last = page.last().unwrap();
    let before = Some((Timestamp(last.received_ms), last.id.clone()));
    assert_eq!(find(MessageSearch { before, ..Default::default() }).await, ["S1"], "the cursor goes on after the page");
    let (other, q) = (scope(&["other.example"]), MessageSearch { limit: 10, ..Default::default() });
    assert!(s.search_messages(&other, &q).await.unwrap().is_empty(), "a scope sees only its senders' messages");
    assert_eq!(ids(s.search_messages(&scope(&["example.com"]), &q).await.unwrap()).len(), 3, "and all of them");
}

fn rcpt_of(address: &str) -> NewRecipient {
    rcpt(address, Transport::Remote)
}

/// The compromised-account detector's history: messages of an hour add up over flushes (two
/// nodes flushing the same hour), distinct domains keep the larger count, first sight keeps
/// the earliest, seen values keep their latest time, old hours are forgotten; a suspicion
/// pauses the account once, with one `account_suspected` event of no message.
async fn account_activity_adds_up_across_flushes_and_nodes(s: Arc<dyn Store>) {
    use mailerd::store::{AccountActivity, AccountPause, Hour, HourCount, Seen, SeenAt};
    let acct = "user:app@x.test";
    assert_eq!(s.account_history(acct, Hour(0)).await.unwrap(), Default::default(), "unknown account");
    let net: Seen = Seen::Network("192.0.2.0/24".parse().unwrap());
    let from = Seen::FromDomain(mailerd::smtp::address::Domain::parse("x.test").unwrap());
    let hc = |hour: i64, messages: u64, domains: u64| HourCount { hour: Hour(hour), messages, domains };
    let node_a = AccountActivity {
        account: acct.into(),
        first_seen: Timestamp(5_000),
        hours: vec![hc(10, 3, 2), hc(11, 4, 1)],
        seen: vec![SeenAt { seen: net.clone(), last: Timestamp(7_000) }],
    };
    let node_b = AccountActivity {
        account: acct.into(),
        first_seen: Timestamp(4_000),
        hours: vec![hc(11, 6, 5), hc(2, 9, 9)],
        seen: vec![
            SeenAt { seen: net.clone(), last: Timestamp(6_000) },
            SeenAt { seen: from.clone(), last: Timestamp(8_000) },
        ],
    };
    s.record_account_activity(vec![node_a], Hour(0)).await.unwrap();
    s.record_account_activity(vec![node_b], Hour(5)).await.unwrap();
    let h = s.account_history(acct, Hour(0)).await.unwrap();
    assert_eq!(h.first_seen, Some(Timestamp(4_000)));
    assert_eq!(h.hours, vec![hc(10, 3, 2), hc(11, 10, 5)], "hour 2 forgotten; 4 + 6 messages, max domains");
    let mut seen: Vec<(Seen, Timestamp)> = h.seen.into_iter().map(|v| (v.seen, v.last)).collect();
    seen.sort();
    assert_eq!(seen, vec![(net, Timestamp(7_000)), (from, Timestamp(8_000))]);
    assert_eq!(s.account_history(acct, Hour(11)).await.unwrap().hours, vec![hc(11, 10, 5)], "from an hour on");
    assert!(s.account_history("user:other@x.test", Hour(0)).await.unwrap().hours.is_empty());

    let pause = |detail: &str| AccountPause {
        account: acct.into(),
        detail: detail.into(),
        message_id: None,
        paused_at: String::new(),
    };
    assert!(s.suspect_account(pause("new_network: login from 203.0.113.0/24")).await.unwrap());
    assert!(!s.suspect_account(pause("messages_per_hour: again")).await.unwrap(), "paused already");
    let p = s.account_pause(acct).await.unwrap().expect("paused");
    assert_eq!(p.detail, "new_network: login from 203.0.113.0/24");
    // Settled: on PostgreSQL the stream holds back events behind other tests' open transactions.
    let events = settled_events(&*s, Some("account_suspected"), 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].id, "");
    assert_eq!(events[0].detail.as_deref(), Some("user:app@x.test: new_network: login from 203.0.113.0/24"));
    assert!(s.resume_account(acct).await.unwrap());
}

/// The Message-ID header is stored with its message: events carry `id` (queue id) and
/// `message_id` (the header), as do the journey and the search; a message without one has none.
async fn message_id_headers_are_kept_per_message(s: Arc<dyn Store>) {
    let mut with = message("H1", T0, vec![rcpt("a@ex.net", Transport::Remote)]);
    with.header_message_id = Some("<h1@example.com>".into());
    let without = message("H2", T0 + 1, vec![rcpt("b@ex.net", Transport::Remote)]);
    s.insert_message(with).await.unwrap();
    s.insert_message(without).await.unwrap();
    let events = settled_events(&*s, Some("queued"), 2).await;
    let pairs: Vec<_> = events.iter().map(|e| (e.id.as_str(), e.message_id.as_deref())).collect();
    assert_eq!(pairs, [("H1", Some("<h1@example.com>")), ("H2", None)]);
    assert!(events[0].event_id < events[1].event_id, "event_id is the cursor");
    let detail = s.message_detail(&MessageId("H1".into())).await.unwrap().expect("H1");
    assert_eq!(detail.message_id.as_deref(), Some("<h1@example.com>"));
    assert_eq!(s.message_detail(&MessageId("H2".into())).await.unwrap().expect("H2").message_id, None);
    let q = mailerd::store::MessageSearch { limit: 10, ..Default::default() };
    let hits: Vec<_> =
        s.search_messages(&Scope::All, &q).await.unwrap().into_iter().map(|h| (h.id.0, h.message_id)).collect();
    assert_eq!(hits, [("H2".to_string(), None), ("H1".to_string(), Some("<h1@example.com>".to_string()))]);
}

/// Templates belong to one API key: put (a second put keeps `created_at`), read, list by name
/// with a cursor, delete; another key sees none of them.
async fn templates_are_kept_per_key_and_paged_by_name(s: Arc<dyn Store>) {
    use mailerd::store::Template;
    let t = |key: &str, name: &str, text: &str, at: i64| Template {
        api_key: key.into(),
        name: name.into(),
        subject: Some("Hi {{ name }}".into()),
        text: Some(text.into()),
        html: None,
        created_at: Timestamp(at),
        updated_at: Timestamp(at),
    };
    for (i, name) in ["welcome", "Receipt", "alert", "b-2"].iter().enumerate() {
        s.put_template(t("k1", name, "v1", T0 + i as i64)).await.unwrap();
    }
    s.put_template(t("k2", "welcome", "other key", T0)).await.unwrap();
    let mut again = t("k1", "welcome", "v2", T0 + 100);
    again.created_at = Timestamp(T0);
    s.put_template(again).await.unwrap();
    let got = s.template("k1", "welcome").await.unwrap().expect("stored");
    assert_eq!((got.text.as_deref(), got.created_at, got.updated_at), (Some("v2"), Timestamp(T0), Timestamp(T0 + 100)));
    assert_eq!(got.subject.as_deref(), Some("Hi {{ name }}"));
    assert_eq!(got.html, None);
    assert_eq!(s.template("k2", "welcome").await.unwrap().unwrap().text.as_deref(), Some("other key"));
    assert!(s.template("k2", "alert").await.unwrap().is_none(), "another key's template is not there");
    // By name in byte order, paged by the last name.
    let names = |list: Vec<Template>| list.into_iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(names(s.templates("k1", None, 2).await.unwrap()), ["Receipt", "alert"]);
    assert_eq!(names(s.templates("k1", Some("alert"), 2).await.unwrap()), ["b-2", "welcome"]);
    assert!(s.templates("k1", Some("welcome"), 2).await.unwrap().is_empty());
    assert!(s.delete_template("k1", "alert").await.unwrap());
    assert!(!s.delete_template("k1", "alert").await.unwrap());
    assert_eq!(names(s.templates("k1", None, 10).await.unwrap()), ["Receipt", "b-2", "welcome"]);
    assert_eq!(names(s.templates("k2", None, 10).await.unwrap()), ["welcome"]);
}

/// One read returns every entry of many addresses, oldest first, whatever their scope, and
/// nothing for addresses without one: the batch's check picks with `refuses` exactly what
/// `suppression_for` picks.
async fn suppressions_of_many_addresses_are_read_at_once(s: Arc<dyn Store>) {
    use mailerd::store::SuppressionScope;
    let entry = |address: &str, domain: Option<&str>, scope: SuppressionScope| Suppression {
        domain: domain.map(|d| Domain::parse(d).unwrap()),
        scope,
        ..suppression(address, "manual")
    };
    s.suppress(entry("a@ex.net", None, SuppressionScope::Global)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.suppress(entry("b@ex.net", Some("shop.example"), SuppressionScope::SenderDomain)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.suppress(entry("b@ex.net", Some("news.example"), SuppressionScope::SenderDomain)).await.unwrap();
    s.suppress(entry("z@ex.net", None, SuppressionScope::Global)).await.unwrap();
    let addresses: Vec<String> = ["a@ex.net", "b@ex.net", "c@ex.net"].iter().map(|a| a.to_string()).collect();
    let found = s.suppressions_of(addresses).await.unwrap();
    let rows: Vec<_> = found.iter().map(|e| (e.address.as_str(), e.domain.as_ref().map(|d| d.as_str()))).collect();
    assert_eq!(rows, [("a@ex.net", None), ("b@ex.net", Some("shop.example")), ("b@ex.net", Some("news.example"))]);
    assert!(s.suppressions_of(Vec::new()).await.unwrap().is_empty());
    for (address, sender) in [("a@ex.net", None), ("b@ex.net", Some("news.example")), ("b@ex.net", Some("x.example"))] {
        let sender = sender.map(|d| Domain::parse(d).unwrap());
        let picked = found.iter().find(|e| e.address == address && e.refuses(sender.as_ref())).cloned();
        let one = s.suppression_for(address, sender.as_ref()).await.unwrap();
        assert_eq!(picked.map(|e| e.domain), one.map(|e| e.domain), "{address} from {sender:?}");
    }
}

/// SQLite's running counts (`stats_state`, `stats_domain`, `stats_daily`) agree with a recount
/// of the rows they count, now that inserts and records of attempts count themselves once per
/// group commit (schema v19) instead of a trigger per row: with domains in mixed case, outside ASCII or missing, with
/// feedback and sandbox recipients that are not counted, with inserts that fail beside others
/// (the group then runs again with a savepoint per request), and with recipients claimed,
/// delivered, deferred, bounced, bounced again by a report and deleted while inserts of the same
/// group are waiting (the update trigger counts the report's change).
#[tokio::test]
async fn sqlite_running_counts_match_a_recount() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("mailerd.db")).unwrap());
    let addresses = ["a@Mixed.Test", "b@mixed.test", "c@ÜNI.test", "d@x@Two.Test", "noat", "e@ex.net"];
    s.insert_message(message("TAKEN", T0, vec![rcpt("t@ex.net", Transport::Remote)])).await.unwrap();
    for round in 0..3 {
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..30 {
            let s = s.clone();
            let to: Vec<_> = addresses.iter().skip(i % 3).take(1 + i % 4).map(|a| rcpt(a, Transport::Remote)).collect();
            let id = format!("R{round}M{i:02}");
            writes.spawn(async move {
                let mut m = message(&id, T0 + i as i64, to);
                m.recipients.push(rcpt("fb@here.test", Transport::Feedback));
                if i % 10 == 9 {
                    m.origin.sandbox = true;
                }
                if i % 7 == 6 {
                    // A taken id: this insert fails and its neighbours are stored all the same.
                    m.id = MessageId("TAKEN".into());
                }
                let _ = s.insert_message(m).await;
            });
        }
        let c = claim(&*s, Transport::Remote, T0 + 100 + round, 20, "n1").await;
        let states = [RecipientState::Delivered, RecipientState::Deferred, RecipientState::Bounced];
        let attempts = c.iter().zip(states.iter().cycle()).map(|(c, st)| attempt(c.recipient, &c.message.0, *st));
        s.record_attempts("n1", attempts.collect()).await.unwrap();
        // A bounce received for a delivered recipient: the update trigger moves it to bounced.
        if let Some(d) = c.first() {
            let bounce = Feedback {
                recipient: d.recipient,
                message: d.message.clone(),
                address: d.address.clone(),
                delay: false,
                status: Some(EnhancedStatus::new(5, 1, 1)),
                detail: "user unknown".into(),
                remote: None,
            };
            s.record_feedback(bounce).await.unwrap();
        }
        let fb = claim(&*s, Transport::Feedback, T0 + 100 + round, 5, "n1").await;
        let attempts = fb.iter().map(|c| attempt(c.recipient, &c.message.0, RecipientState::Delivered));
        s.record_attempts("n1", attempts.collect()).await.unwrap();
        s.delete_message(&MessageId(format!("R{round}M00"))).await.unwrap();
        while writes.join_next().await.is_some() {}
    }
    let db = rusqlite::Connection::open(dir.path().join("mailerd.db")).unwrap();
    let rows = |sql: &str| -> Vec<(String, String, i64)> {
        let mut stmt = db.prepare(sql).unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    };
    let counted = rows("SELECT state, status, n FROM stats_state WHERE n <> 0 ORDER BY 1, 2");
    let recounted = rows(
        "SELECT state, coalesce(last_status, ''), count(*) FROM recipients WHERE transport <> 'feedback'
         GROUP BY 1, 2 ORDER BY 1, 2",
    );
    assert_eq!(counted, recounted);
    assert!(recounted.iter().any(|(state, _, _)| state == "queued"), "{recounted:?}");
    let counted = rows("SELECT domain, state, n FROM stats_domain WHERE n <> 0 ORDER BY 1, 2");
    let recounted = rows(
        "SELECT lower(substr(address, instr(address, '@') + 1)), state, count(*) FROM recipients
         WHERE transport <> 'feedback' GROUP BY 1, 2 ORDER BY 1, 2",
    );
    assert_eq!(counted, recounted);
    let counted = rows("SELECT CAST(day AS TEXT), state, n FROM stats_daily WHERE n <> 0 ORDER BY 1, 2");
    let recounted_daily = rows(
        "SELECT CAST(updated_at / 86400000 AS TEXT), state, count(*) FROM recipients
         WHERE transport <> 'feedback' AND state IN ('delivered', 'bounced', 'expired') GROUP BY 1, 2 ORDER BY 1, 2",
    );
    assert_eq!(counted, recounted_daily);
    assert!(!counted.is_empty());
    let domains: HashSet<&str> = recounted.iter().map(|(d, _, _)| d.as_str()).collect();
    assert_eq!(domains, HashSet::from(["mixed.test", "Üni.test", "x@two.test", "noat", "ex.net"]));
}

/// SQLite loads a body on the calling task when it is small and on a blocking thread when it
/// is not: both come back whole, and an unknown message has none.
#[tokio::test]
async fn sqlite_bodies_load_whole_small_or_large() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("mailerd.db")).unwrap();
    for (id, size) in [("SMALL", 4 * 1024), ("EDGE", 64 * 1024), ("LARGE", 300 * 1024)] {
        let mut m = message(id, T0, vec![rcpt("a@ex.net", Transport::Remote)]);
        m.body = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let body = m.body.clone();
        s.insert_message(m).await.unwrap();
        assert_eq!(s.load_body(&MessageId(id.into())).await.unwrap(), Some(body), "{id}");
    }
    assert_eq!(s.load_body(&MessageId("NONE".into())).await.unwrap(), None);
}

/// A young PostgreSQL store keeps its planner statistics fresh: the hot statements plan
/// generically, from statistics that a store created empty has none of until autovacuum's
/// first ANALYZE, so the store analyzes its tables itself once it has stored 1,000 messages
/// (and again at each doubling). Without it, every record and body release read every
/// recipient row (`bench/cluster.sh`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_young_store_analyzes_its_tables() {
    let Some(b) = postgres("young_store_analyzes").await else { return };
    let schema = b._schema.as_ref().unwrap();
    let (admin, conn) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let analyzed = async || -> f32 {
        admin.query_one("SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass", &[]).await.unwrap().get(0)
    };
    assert!(analyzed().await < 0.0, "a new table has no statistics");
    // Whatever ANALYZE comes must be the store's own.
    admin.batch_execute("ALTER TABLE messages SET (autovacuum_enabled = false)").await.unwrap();
    for batch in 0..10 {
        let msgs = (0..100)
            .map(|i| message(&format!("Y{batch:02}{i:03}"), T0, vec![rcpt("a@ex.net", Transport::Remote)]))
            .collect();
        b.store.insert_messages(msgs).await.unwrap();
        if batch < 9 {
            assert!(analyzed().await < 0.0, "no ANALYZE before 1,000 messages");
        }
    }
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while analyzed().await < 1000.0 {
        assert!(std::time::Instant::now() < until, "no ANALYZE after 1,000 messages");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node remembers the pause lookups of RCPT for a second: a pause made on another node of
/// the cluster is refused here within that second, and one made here at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_pause_on_another_node_holds_here_within_a_second() {
    let Some(b) = postgres("pause_other_node").await else { return };
    let other = PgStore::connect(&b._schema.as_ref().unwrap().url).await.expect("second node");
    let accounts = vec!["domain:shop.test".to_string()];
    assert!(b.store.first_pause(accounts.clone()).await.unwrap().is_none());
    let pause = AccountPause {
        account: "domain:shop.test".into(),
        detail: "complaints".into(),
        message_id: None,
        paused_at: String::new(),
    };
    assert!(other.pause_account(pause).await.unwrap());
    let paused_at = std::time::Instant::now();
    while b.store.first_pause(accounts.clone()).await.unwrap().is_none() {
        assert!(paused_at.elapsed() < Duration::from_millis(1500), "not seen within a second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Resumed here: at once.
    assert!(b.store.resume_account("domain:shop.test").await.unwrap());
    assert!(b.store.first_pause(accounts).await.unwrap().is_none());
}
