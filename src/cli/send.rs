//! `mailerd send --from ADDR --to ADDR... [--subject S] [--text FILE|-] [--eml FILE]
//! [--server URL] [--key KEY]`: sends one message through the running daemon's HTTP API
//! (`POST /api/v1/messages`) and prints the reply (queue id, each recipient's state).
//!
//! `--eml` reads an existing message: its subject, text, HTML and attachments are sent.
//! Only `http://` servers (the API listens on loopback or behind a TLS proxy).
//! Must not: put the message in the queue itself; the daemon does, through the API.

use std::io::Read;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};

use crate::config::Config;

pub struct SendArgs {
    pub from: String,
    pub to: Vec<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub eml: Option<String>,
    pub server: Option<String>,
    pub key: Option<String>,
}

fn read(path: &str) -> Result<Vec<u8>> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf).context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {path}"))
    }
}

/// The request body for `POST /api/v1/messages`.
pub fn request(args: &SendArgs) -> Result<Value> {
    let mut body = json!({ "from": args.from, "to": args.to });
    let subject = args.subject.clone();
    if let Some(eml) = &args.eml {
        let raw = read(eml)?;
        let msg = MessageParser::default().parse(&raw).ok_or_else(|| anyhow!("{eml}: not a message"))?;
        body["subject"] = json!(subject.or_else(|| msg.subject().map(str::to_string)).unwrap_or_default());
        if let Some(t) = msg.body_text(0) {
            body["text"] = json!(t);
        }
        if let Some(h) = msg.body_html(0).filter(|_| msg.html_body_count() > 0 && msg.text_body_count() > 0) {
            body["html"] = json!(h);
        }
        let files: Vec<Value> = msg
            .attachments()
            .map(|a| {
                json!({
                    "filename": a.attachment_name().unwrap_or("attachment"),
                    "content_type": a.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream"))),
                    "content": base64::engine::general_purpose::STANDARD.encode(a.contents()),
                })
            })
            .collect();
        if !files.is_empty() {
            body["attachments"] = json!(files);
        }
    } else {
        body["subject"] = json!(subject.unwrap_or_default());
        let text = match &args.text {
            Some(p) => String::from_utf8(read(p)?).context("the text is not UTF-8")?,
            None => String::new(),
        };
        body["text"] = json!(text);
    }
    Ok(body)
}

pub async fn send(config: &Config, args: SendArgs) -> Result<i32> {
    let server = match &args.server {
        Some(s) => s.clone(),
        None => match config.listen.http {
            Some(a) => format!("http://{a}"),
            None => bail!("no --server and no listen.http in the configuration"),
        },
    };
    let key = args.key.clone().or_else(|| std::env::var("MAILERD_API_KEY").ok()).ok_or_else(|| {
        anyhow!("no API key: pass --key or set MAILERD_API_KEY (make one with `mailerd apikey create NAME`)")
    })?;
    let body = request(&args)?;
    let (status, reply) = post_json(&server, "/api/v1/messages", &key, &body).await?;
    outln!("{}", serde_json::to_string_pretty(&reply).unwrap_or_else(|_| reply.to_string()))?;
    Ok(if status == 202 { 0 } else { 1 })
}

/// POSTs JSON to `server` + `path` over HTTP/1.1; returns the status and the JSON reply.
async fn post_json(server: &str, path: &str, key: &str, body: &Value) -> Result<(u16, Value)> {
    let authority = server
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{server}: only http:// servers (put TLS in front with a proxy)"))?
        .trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority).await.with_context(|| format!("connecting to {server}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::AUTHORIZATION, format!("Bearer {key}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let resp = sender.send_request(req).await.with_context(|| format!("POST {server}{path}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let reply = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
    Ok((status, reply))
}
