//! HTTPS webhooks on loopback: a receiver at `https://localhost:PORT/hook` whose certificate the
//! test changes while mailerd posts to it. A certificate of a CA mailerd does not trust, then
//! one of the trusted CA (`tls_ca`) for another name, are refused by mailerd (handshakes fail,
//! nothing is posted); the event is retried, not dropped: once the receiver shows a valid
//! certificate, the very first event arrives, signed, followed by the rest in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::harness::TestDaemon;
use crate::harness::smtp::Client;
use crate::harness::sts::TestCa;

const SECRET: &str = "whsec_https_0123456789";

/// What the receiver saw: failed TLS handshakes, and each POST.
#[derive(Default)]
struct Seen {
    failed_handshakes: usize,
    /// (Mailerd-Event-Id, body, whether the signature verified)
    posts: Vec<(String, String, bool)>,
}

struct Receiver {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    /// The server configuration new connections get (the test swaps it).
    config: Arc<Mutex<Arc<rustls::ServerConfig>>>,
    task: tokio::task::JoinHandle<()>,
}

fn server_config(ca: &TestCa, label: &str, names: &[&str]) -> Arc<rustls::ServerConfig> {
    let (cert, key) = ca.issue(label, names);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&cert).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

impl Receiver {
    async fn start(first: Arc<rustls::ServerConfig>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let config = Arc::new(Mutex::new(first));
        let (s, c) = (seen.clone(), config.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = tokio_rustls::TlsAcceptor::from(c.lock().unwrap().clone());
                let s = s.clone();
                tokio::spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(_) => {
                            s.lock().unwrap().failed_handshakes += 1;
                            return;
                        }
                    };
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let s = s.clone();
                        async move {
                            let id = req
                                .headers()
                                .get("mailerd-event-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            let sig = req
                                .headers()
                                .get("mailerd-signature")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let body = String::from_utf8_lossy(&body).into_owned();
                            let ok = verify(&sig, &body);
                            s.lock().unwrap().posts.push((id, body, ok));
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(if ok { 204 } else { 401 })
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Receiver { port, seen, config, task }
    }

    fn show(&self, config: Arc<rustls::ServerConfig>) {
        *self.config.lock().unwrap() = config;
    }

    fn failed_handshakes(&self) -> usize {
        self.seen.lock().unwrap().failed_handshakes
    }

    fn posts(&self) -> Vec<(String, String, bool)> {
        self.seen.lock().unwrap().posts.clone()
    }

    async fn wait_failed_handshakes(&self, n: usize) {
        for _ in 0..600 {
            if self.failed_handshakes() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{} failed handshakes, expected {n}", self.failed_handshakes());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn verify(sig: &str, body: &str) -> bool {
    use hmac::{Hmac, KeyInit, Mac};
    let Some((t, v1)) = sig.strip_prefix("t=").and_then(|r| r.split_once(",v1=")) else { return false };
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    hex == v1
}

#[tokio::test]
async fn https_webhooks_verify_the_certificate_and_retry_until_it_is_valid() {
    let trusted = TestCa::new();
    let stranger = TestCa::new();
    let receiver = Receiver::start(server_config(&stranger, "untrusted", &["localhost"])).await;
    let daemon = TestDaemon::with(&format!(
        "[local]\ndomains = [\"dest.test\"]\n\
         [[webhooks]]\nurl = \"https://localhost:{}/hook\"\nsecret = \"{SECRET}\"\nevents = [\"queued\", \"delivered\"]\n\
         tls_ca = \"{}\"\n",
        receiver.port,
        trusted.ca_file.display()
    ))
    .await;
    daemon.add_user("u@dest.test", "pw", None).await;
    let mut c = Client::connect(daemon.smtp).await;
    c.send_mail("app@sender.test", &["u@dest.test"], "Subject: hi\r\n\r\nhello\r\n").await.expect("250");
    daemon.wait_maildir("dest.test", "u", 1).await;

    // A CA mailerd does not trust: refused, and tried again (1 s later).
    receiver.wait_failed_handshakes(2).await;
    assert!(receiver.posts().is_empty(), "nothing is posted to an untrusted certificate");

    // The trusted CA, but a certificate for another name: refused too.
    let before = receiver.failed_handshakes();
    receiver.show(server_config(&trusted, "other-name", &["hooks.other.test"]));
    receiver.wait_failed_handshakes(before + 1).await;
    assert!(receiver.posts().is_empty(), "nothing is posted to a certificate for another name");

    // A valid certificate: the events arrive, the first one included, in order, signed.
    receiver.show(server_config(&trusted, "valid", &["localhost"]));
    let mut posts = Vec::new();
    for _ in 0..1200 {
        posts = receiver.posts();
        if posts.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(posts.len() >= 2, "both events arrived over https: {posts:?}");
    let events: Vec<serde_json::Value> = posts.iter().map(|(_, b, _)| serde_json::from_str(b).unwrap()).collect();
    assert_eq!(events[0]["type"], "queued", "the first event was retried, not dropped: {events:?}");
    assert_eq!(events[1]["type"], "delivered");
    assert!(events.iter().all(|e| e["recipient"] == "u@dest.test"));
    assert_eq!(posts[0].0, events[0]["event_id"].to_string(), "Mailerd-Event-Id is the event's id");
    let ids: Vec<i64> = events.iter().map(|e| e["event_id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    assert!(posts.iter().all(|(_, _, signed)| *signed), "every POST's signature verified");
}
