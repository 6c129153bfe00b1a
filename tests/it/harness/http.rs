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
}

/// One request; `body` is sent with `content_type` when given.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> Response {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the API");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let (ct, bytes) = body.unwrap_or(("application/json", Vec::new()));
    let req = req.header("content-type", ct).body(Full::new(Bytes::from(bytes))).expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Response { status, content_type, json, text }
}

pub async fn post_json(addr: SocketAddr, path: &str, key: Option<&str>, body: &Value) -> Response {
    request(addr, "POST", path, key, Some(("application/json", body.to_string().into_bytes()))).await
}

pub async fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> Response {
    request(addr, "GET", path, key, None).await
}
