//! /metrics read by a real client parser (Python's prometheus_client): every family with
//! samples is typed, which it is only when its HELP/TYPE lines come right before its samples.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::harness::TestDaemon;
use crate::harness::http::get;

/// Prints `name type samples` per family, as prometheus_client parsed them.
const PARSE: &str = "
import sys
from prometheus_client.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    print(f.name, f.type, len(f.samples))
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_client_reads_every_family_typed() {
    let usable =
        Command::new("python3").args(["-c", "import prometheus_client"]).output().is_ok_and(|o| o.status.success());
    if !usable {
        assert!(std::env::var_os("CI").is_none(), "CI: prometheus_client is missing (pip install prometheus_client)");
        let _ = writeln!(
            std::io::stderr(),
            "SKIP metrics_parse: needs python3 with prometheus_client (pip install prometheus_client)"
        );
        return;
    }
    let d = TestDaemon::with("[listen]\nhttp = \"127.0.0.1:0\"").await;
    let m = get(d.http.expect("http listener"), "/metrics", None).await;
    assert_eq!(m.status, 200);
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(m.text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let parsed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), m.text);
    let families: Vec<(&str, &str, usize)> = parsed
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            Some((w.next()?, w.next()?, w.next()?.parse().ok()?))
        })
        .collect();
    for (name, kind, samples) in &families {
        assert!(*samples == 0 || *kind != "unknown", "{name} was read untyped:\n{parsed}\n{}", m.text);
    }
    let kind_of = |name: &str| families.iter().find(|f| f.0 == name && f.2 > 0).map(|f| f.1);
    // prometheus_client names a counter family without its `_total`.
    assert_eq!(kind_of("mailerd_connections"), Some("counter"), "{parsed}");
    assert_eq!(kind_of("mailerd_connections_open"), Some("gauge"), "{parsed}");
    assert_eq!(kind_of("mailerd_delivery_latency_seconds"), Some("histogram"), "{parsed}");
    assert_eq!(kind_of("mailerd_messages_accepted"), Some("counter"), "{parsed}");
}
