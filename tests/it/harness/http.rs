//! A minimal HTTP/1.1 client for the API tests (hyper over a loopback TCP connection).

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub json: Value,
    pub text: String,
    pub headers: hyper::HeaderMap,
}

impl Response {
    /// A response header's value, when there is one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request; `body` is sent with `content_type` when given.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> Response {
    request_with(addr, method, path, key, &[], body).await
}

/// One request with extra request headers.
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> Response {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the API");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let (ct, bytes) = body.unwrap_or(("application/json", Vec::new()));
    let req = req.header("content-type", ct).body(Full::new(Bytes::from(bytes))).expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Response { status, content_type, json, text, headers }
}

pub async fn post_json(addr: SocketAddr, path: &str, key: Option<&str>, body: &Value) -> Response {
    request(addr, "POST", path, key, Some(("application/json", body.to_string().into_bytes()))).await
}

pub async fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> Response {
    request(addr, "GET", path, key, None).await
}

/// An HTML page's answer: status, headers (cookies) and text.
pub struct Page {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub text: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let at = self.text.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        self.text[at..].split('"').next().unwrap().to_string()
    }
}

/// One request with an optional cookie header and form body, from the loopback address
/// `from` when given (redirects are not followed).
pub async fn form_call(
    addr: SocketAddr,
    from: Option<std::net::IpAddr>,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> Page {
    let stream = match from {
        Some(ip) => super::smtp::connect_from(ip, addr).await.expect("connect"),
        None => tokio::net::TcpStream::connect(addr).await.expect("connect"),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let body = match form {
        Some(fields) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
        }
        None => String::new(),
    };
    let resp = sender.send_request(req.body(Full::new(Bytes::from(body))).expect("request")).await.expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Page { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
}

/// Percent-encodes a form value.
fn enc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// `name=value` of a Set-Cookie header.
pub fn pair_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").trim().to_string()
}

/// The bodies a webhook receiver was sent, in order.
pub type Hooked = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A webhook receiver on 127.0.0.1 (`POST /hook`) that answers 204 and keeps every body.
pub async fn webhook_receiver() -> (SocketAddr, Hooked) {
    let seen: Hooked = Hooked::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}
