//! A headless Chromium driven through chromedriver with plain WebDriver JSON, for the tests
//! that click through pages as a person would (the dashboard, the unsubscribe page).
//! Screenshots go to target/dashboard-screenshots/.
//!
//! Must not: open any page outside 127.0.0.0/8, or skip when CI is set.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver child process and one WebDriver session on it.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    pub shots: PathBuf,
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
    pub async fn start() -> Option<Browser> {
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

    pub async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = wd_call(self.addr, method, &format!("/session/{}{path}", self.session), body).await;
        assert!(v["value"].get("error").is_none(), "{method} {path}: {v}");
        v["value"].clone()
    }

    pub async fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// The element `css` selects, waiting up to 20 s for it: a click that submits a form
    /// returns before the next page has loaded (slowly on a loaded machine).
    pub async fn find(&self, css: &str) -> String {
        let path = format!("/session/{}/element", self.session);
        let query = json!({"using": "css selector", "value": css});
        for _ in 0..200 {
            let v = wd_call(self.addr, "POST", &path, Some(query.clone())).await;
            if v["value"]["error"] != "no such element" {
                assert!(v["value"].get("error").is_none(), "POST /element: {v}");
                return v["value"][ELEMENT].as_str().unwrap_or_else(|| panic!("element {css}: {v}")).to_string();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.cmd("POST", "/element", Some(query)).await[ELEMENT].as_str().unwrap_or("").to_string()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text }))).await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({}))).await;
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd("GET", &format!("/element/{e}/text"), None).await.as_str().unwrap_or("").to_string()
    }

    pub async fn source(&self) -> String {
        self.cmd("GET", "/source", None).await.as_str().unwrap_or("").to_string()
    }

    pub async fn title(&self) -> String {
        self.cmd("GET", "/title", None).await.as_str().unwrap_or("").to_string()
    }

    /// The title once the page has left one titled `from` (a click that submits a form returns
    /// before the next page loads; waits up to 20 s).
    pub async fn title_after(&self, from: &str) -> String {
        for _ in 0..200 {
            let t = self.title().await;
            if !t.starts_with(from) {
                return t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.title().await
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    pub async fn quit(self) {
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
