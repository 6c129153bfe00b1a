//! The hard-bounce breaker: an API key whose mail hard-bounces too often is paused (403
//! account-paused on the API, an `account_paused` event), listed by `mailerd account list`, and
//! sends again after `mailerd account resume`.

use std::time::Duration;

use mailerd::store::Store;
use serde_json::json;

use crate::harness::TestDaemon;
use crate::harness::http::post_json;

#[tokio::test]
async fn a_key_with_too_many_hard_bounces_is_paused_until_resumed() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let src = TestDaemon::api_to(
        &dest,
        "[account]\nhard_bounce_threshold = 0.2\nmin_messages = 10\n[bounce]\nenforce_suppression = false\n",
    )
    .await;
    let api = src.http.unwrap();
    let store = src.store();
    let (key, record) = mailerd::http::auth::generate("list-import", mailerd::store::Scope::All).unwrap();
    let account = format!("apikey:{}", record.id);
    store.create_api_key(record).await.unwrap();
    // Half of a bought list does not exist.
    for i in 0..10 {
        let to = if i % 2 == 0 { "alice@dest.test".to_string() } else { format!("ghost{i}@dest.test") };
        let r = post_json(
            api,
            "/api/v1/messages",
            Some(&key),
            &json!({"from": "news@sender.test", "to": [to], "text": "hi"}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    let mut paused = None;
    for _ in 0..400 {
        paused = store.account_pause(&account).await.unwrap();
        if paused.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let paused = paused.expect("the breaker paused the key");
    assert!(paused.detail.contains("hard-bounce rate"), "{paused:?}");
    let msg = paused.message_id.clone().unwrap();
    let detail = store.message_detail(&mailerd::store::MessageId(msg)).await.unwrap().unwrap();
    assert!(detail.events.iter().any(|e| e.kind.as_str() == "account_paused"), "{:?}", detail.events);

    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&key),
        &json!({"from": "news@sender.test", "to": ["alice@dest.test"], "text": "hi"}),
    )
    .await;
    assert_eq!((r.status, r.json["type"].as_str()), (403, Some("/problems/account-paused")), "{}", r.text);

    let config = src.dir.path().join("cli.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", src.dir.path().display())).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
            .args(["--config", config.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["account", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&account), "{}", String::from_utf8_lossy(&out.stdout));
    let out = run(&["account", "resume", &account]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&key),
        &json!({"from": "news@sender.test", "to": ["alice@dest.test"], "text": "hi"}),
    )
    .await;
    assert_eq!(r.status, 202, "sending again after resume: {}", r.text);
}
