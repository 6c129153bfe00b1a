//! MTA-STS test fixtures: a test CA (rcgen) that issues certificates for chosen names, and an
//! HTTPS server on 127.0.0.1 that serves `/.well-known/mta-sts.txt` per `mta-sts.DOMAIN` host
//! (a certificate from the test CA), counting fetches; a test may change a policy or make it
//! fail (an HTTP status other than 200).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct TestCa {
    pub dir: tempfile::TempDir,
    /// The CA certificate (PEM), for `tls.ca_file`.
    pub ca_file: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "mailerd test CA");
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).expect("write CA");
        TestCa { dir, ca_file, issuer: rcgen::Issuer::new(params, key) }
    }

    /// A certificate for `names` signed by this CA: (certificate file, key file), both PEM.
    pub fn issue(&self, label: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let (c, k) = (self.dir.path().join(format!("{label}.crt")), self.dir.path().join(format!("{label}.key")));
        std::fs::write(&c, cert.pem()).expect("write certificate");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        (c, k)
    }
}

/// What the server answers for one domain: an HTTP status, a Content-Type and a body.
type Policies = Arc<Mutex<HashMap<String, (u16, String, String)>>>;

pub struct PolicyServer {
    pub addr: SocketAddr,
    policies: Policies,
    fetches: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PolicyServer {
    /// Serves HTTPS on 127.0.0.1 with one certificate for `mta-sts.D` of every domain D.
    pub async fn start(ca: &TestCa, domains: &[&str]) -> PolicyServer {
        let names: Vec<String> = domains.iter().map(|d| format!("mta-sts.{d}")).collect();
        let (cert, key) = ca.issue("mta-sts", &names.iter().map(String::as_str).collect::<Vec<_>>());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&cert).unwrap().map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_file(&key).unwrap();
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let policies: Policies = Arc::default();
        let fetches: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (p, f) = (policies.clone(), fetches.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, p, f) = (acceptor.clone(), p.clone(), f.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (p, f) = (p.clone(), f.clone());
                        async move {
                            let host = req
                                .headers()
                                .get(hyper::header::HOST)
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            let domain = host.strip_prefix("mta-sts.").unwrap_or("").to_string();
                            *f.lock().unwrap().entry(domain.clone()).or_default() += 1;
                            let (status, content_type, body) = match (req.uri().path(), p.lock().unwrap().get(&domain))
                            {
                                ("/.well-known/mta-sts.txt", Some(x)) => x.clone(),
                                _ => (404, "text/plain".to_string(), "not found".to_string()),
                            };
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("Content-Type", content_type)
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        PolicyServer { addr, policies, fetches, task }
    }

    /// Serves `body` with `status` for `domain` from now on.
    pub fn set(&self, domain: &str, status: u16, body: &str) {
        self.set_typed(domain, status, "text/plain; charset=utf-8", body);
    }

    /// Serves `body` as `content_type` with `status` for `domain` from now on.
    pub fn set_typed(&self, domain: &str, status: u16, content_type: &str, body: &str) {
        let answer = (status, content_type.to_string(), body.to_string());
        self.policies.lock().unwrap().insert(domain.to_string(), answer);
    }

    /// How often the policy of `domain` was asked for.
    pub fn fetches(&self, domain: &str) -> usize {
        self.fetches.lock().unwrap().get(domain).copied().unwrap_or(0)
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
