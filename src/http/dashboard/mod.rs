//! The web dashboard under `/dashboard` on `listen.http`: server-rendered HTML pages (overview,
//! queue, a message's journey, suppressions, bounce explorer, checklist) behind a login.
//!
//! Login: a mailbox login (`mailerd user add`, argon2 via `inbound::auth::Authenticator`) whose
//! address is in `[dashboard] admins`; none listed means the dashboard is off (404 page).
//! Logins share SMTP AUTH's failure limiter (per client network and per login, see
//! `inbound::auth`): a blocked attempt gets 429 with `Retry-After` and no password check.
//! Sessions: a random 256-bit id in memory ([`Sessions`]), sent as a cookie `HttpOnly;
//! SameSite=Strict; Path=/dashboard` that expires after 12 h; each session has its own CSRF
//! token, embedded in every form and checked (constant time) on every POST by one extractor,
//! [`Posted`]. The login form itself is protected by a double-submit token in a short-lived
//! cookie.
//! Standards: RFC 6265 (cookies), OWASP CSRF prevention (synchroniser token), RFC 9110.
//! Must not: hold SQL (it calls the store's dashboard queries), render unescaped text, or
//! change anything on a GET.

pub mod html;
pub mod pages;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;
use crate::inbound::auth::Attempt;
use crate::metrics::LoginDoor;

/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const SESSION_COOKIE: &str = "mailerd_session";
const LOGIN_COOKIE: &str = "mailerd_login";
/// Upper bound of live sessions (memory stays bounded whatever happens).
const MAX_SESSIONS: usize = 10_000;

/// A logged-in admin, as the pages see them.
#[derive(Debug, Clone)]
pub struct Admin {
    pub user: String,
    pub csrf: String,
    /// The password is older than `login.password_max_age` (a warning on the overview).
    pub password_due: bool,
}

struct Session {
    admin: Admin,
    expires: Instant,
}

/// The live sessions, by id (kept in memory: a restart logs everyone out).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `user`; returns its id (None when no randomness is available).
    pub fn create(&self, user: &str, password_due: bool) -> Option<String> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut map = self.map.lock().ok()?;
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            // Drop the oldest (the one that expires first).
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session { admin: Admin { user: user.into(), csrf, password_due }, expires: now + SESSION_TTL },
        );
        Some(id)
    }

    /// The admin of a live session.
    pub fn get(&self, id: &str) -> Option<Admin> {
        let mut map = self.map.lock().ok()?;
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.admin.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(id);
        }
    }
}

/// 256 random bits as hex.
fn random_hex() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Equal without revealing where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && !a.is_empty() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age: u64) -> String {
    format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={max_age}")
}

/// An HTML response with the headers every dashboard page carries.
pub fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

fn disabled() -> Response {
    let body = "<h1>The dashboard is off</h1><p>List the mailbox logins allowed in under <code>[dashboard] admins = [\"you@example.com\"]</code> \
                (create a login with <code>mailerd user add</code>) and restart mailerd.</p>";
    html_response(StatusCode::NOT_FOUND, html::page("Dashboard off", "", None, body))
}

/// A page shown for a refused request (bad CSRF token, store error…).
pub fn error_page(status: StatusCode, admin: Option<&Admin>, text: &str) -> Response {
    let body = format!("<h1>{}</h1><p class=\"err\">{}</p>", status.as_u16(), html::esc(text));
    html_response(status, html::page("Error", "", admin.map(|a| (a.user.as_str(), a.csrf.as_str())), &body))
}

fn csrf_forbidden(admin: &Admin) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        Some(admin),
        "This form is stale or was not sent from the dashboard (CSRF token missing or wrong). Reload the page and try again.",
    )
}

/// A form without fields of its own (a button: retry, delete, log out).
#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

/// A posted form with the session's CSRF token (`csrf`) besides its own fields.
#[derive(serde::Deserialize)]
struct WithCsrf<T> {
    csrf: Option<String>,
    #[serde(flatten)]
    fields: T,
}

/// The one door of every dashboard POST but the login: a logged-in admin (else what the
/// [`Admin`] extractor answers) whose form parsed and carries the session's CSRF token (else
/// the 403 page), and the form's own fields.
pub struct Posted<T = NoFields>(pub Admin, pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequest<Arc<AppState>> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        match axum::Form::<WithCsrf<T>>::from_request(Request::from_parts(parts, body), state).await {
            Ok(axum::Form(f)) if f.csrf.as_deref().is_some_and(|t| same_token(t, &admin.csrf)) => {
                Ok(Posted(admin, f.fields))
            }
            _ => Err(csrf_forbidden(&admin)),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        if state.ctx.config.dashboard.admins.is_empty() {
            return Err(disabled());
        }
        let admin = cookie(&parts.headers, SESSION_COOKIE).and_then(|id| state.sessions.get(id));
        match admin {
            // Removed from the config since: out.
            Some(a) if state.ctx.config.dashboard.admins.contains(&a.user) => Ok(a),
            _ => Err(redirect("/dashboard/login", None)),
        }
    }
}

/// The dashboard's routes (full paths, merged into the HTTP router).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dashboard", get(pages::overview))
        .route("/dashboard/", get(pages::overview))
        .route("/dashboard/login", get(login_form).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/queue", get(pages::queue))
        .route("/dashboard/queue/{id}/retry", post(pages::retry))
        .route("/dashboard/queue/{id}/delete", post(pages::delete))
        .route("/dashboard/messages/{id}", get(pages::message))
        .route("/dashboard/suppressions", get(pages::suppressions))
        .route("/dashboard/suppressions/remove", post(pages::unsuppress))
        .route("/dashboard/bounces", get(pages::bounce_form).post(pages::bounce_explore))
        .route("/dashboard/checklist", get(pages::checklist))
        .route("/dashboard/checklist/address", post(pages::check_address))
        .route("/dashboard/checklist/message", post(pages::check_message))
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let Some(token) = random_hex() else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, None, "no randomness available");
    };
    let error = error.map(|e| format!("<p class=\"err\" id=\"login-error\">{}</p>", html::esc(e))).unwrap_or_default();
    let body = format!(
        "<div class=\"box\" style=\"max-width:26em;margin:3em auto\"><h1>Log in</h1>{error}\
         <form method=\"post\" action=\"/dashboard/login\">{}\
         <p><label>Address<br><input name=\"user\" id=\"user\" type=\"email\" autocomplete=\"username\" required style=\"width:100%\"></label></p>\
         <p><label>Password<br><input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required style=\"width:100%\"></label></p>\
         <p><button id=\"login\">Log in</button></p></form>\
         <p class=\"muted\">A mailbox login listed in <code>[dashboard] admins</code>.</p></div>",
        html::csrf_field(&token)
    );
    let mut r = html_response(status, html::page("Log in", "", None, &body));
    if let Ok(v) = HeaderValue::from_str(&set_cookie(LOGIN_COOKIE, &token, 1800)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The answer to a login attempt the failure limiter refused: 429, `Retry-After`, no check.
fn throttled_page(retry_after: Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let body = format!(
        "<div class=\"box\" style=\"max-width:26em;margin:3em auto\"><h1>Try again later</h1>\
         <p class=\"err\" id=\"throttled\">Too many failed logins from your network or for this address. \
         Try again later (in about {} min).</p></div>",
        secs.div_ceil(60)
    );
    let mut r = html_response(StatusCode::TOO_MANY_REQUESTS, html::page("Try again later", "", None, &body));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

async fn login_form(State(state): State<Arc<AppState>>) -> Response {
    if state.ctx.config.dashboard.admins.is_empty() {
        return disabled();
    }
    login_page(StatusCode::OK, None)
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    csrf: Option<String>,
}

async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let admins = &state.ctx.config.dashboard.admins;
    if admins.is_empty() {
        return disabled();
    }
    let Ok(axum::Form(form)) = form else {
        return login_page(StatusCode::BAD_REQUEST, Some("The form could not be read."));
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !form.csrf.as_deref().is_some_and(|t| same_token(t, expected)) {
        return error_page(
            StatusCode::FORBIDDEN,
            None,
            "The login form is stale or was not sent from this site (CSRF token missing or wrong). Reload it and try again.",
        );
    }
    // Every check costs one argon2 verification, whether the user exists or not; the limiter
    // shared with SMTP AUTH decides first whether there is one.
    let user = form.user.trim();
    let attempt = state.ctx.auth.attempt(LoginDoor::Dashboard, peer.ip(), user, &form.password).await;
    match attempt {
        Attempt::Throttled { retry_after } => {
            tracing::info!(client = %peer.ip(), login = ?user, "dashboard login throttled");
            throttled_page(retry_after)
        }
        Attempt::Accepted(g) if admins.contains(&g.user) => match state.sessions.create(&g.user, g.password_due) {
            Some(id) => {
                tracing::info!(user = %g.user, "dashboard login");
                redirect("/dashboard/", Some(set_cookie(SESSION_COOKIE, &id, SESSION_TTL.as_secs())))
            }
            None => error_page(StatusCode::SERVICE_UNAVAILABLE, None, "no randomness available"),
        },
        Attempt::Accepted(_) | Attempt::Refused => {
            tracing::info!(user = %user, "dashboard login refused");
            login_page(StatusCode::UNAUTHORIZED, Some("Wrong address or password, or not a dashboard admin."))
        }
    }
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap, _: Posted) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        state.sessions.remove(id);
    }
    redirect("/dashboard/login", Some(set_cookie(SESSION_COOKIE, "", 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_tokens() {
        let s = Sessions::default();
        let id = s.create("admin@local.test", false).unwrap();
        assert_eq!(id.len(), 64);
        let a = s.get(&id).unwrap();
        assert_eq!(a.user, "admin@local.test");
        assert_eq!(a.csrf.len(), 64);
        assert!(same_token(&a.csrf, &a.csrf.clone()) && !same_token(&a.csrf, "") && !same_token("", ""));
        s.remove(&id);
        assert!(s.get(&id).is_none());
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; mailerd_session=xyz"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
    }
}
