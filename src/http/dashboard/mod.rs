//! The web dashboard under `/dashboard` on `listen.http`: server-rendered HTML pages (overview,
//! queue, a message's journey, suppressions, bounce explorer, checklist) behind a login.
//!
//! Login: a mailbox login (`mailerd user add`, argon2 via `inbound::auth::Authenticator`) whose
//! address is in `[dashboard] admins`; none listed means the dashboard is off (404 page).
//! Logins share SMTP AUTH's failure limiter (per client network and per login, see
//! `inbound::auth`): a blocked attempt gets 429 with `Retry-After` and no password check.
//! Second factor (`two_factor`): a login with one is parked after its password (a random id in
//! a short-lived cookie, [`PENDING_TTL`]) until a code is right; with `dashboard.require_2fa`
//! an admin without one gets a session that opens only enrolment.
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
pub mod two_factor;

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
use crate::store::TotpSecret;

/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const SESSION_COOKIE: &str = "mailerd_session";
const LOGIN_COOKIE: &str = "mailerd_login";
/// The cookie of a login waiting for its second factor.
const PENDING_COOKIE: &str = "mailerd_2fa";
/// How long a right password waits for its second factor.
pub const PENDING_TTL: Duration = Duration::from_secs(300);
/// Upper bound of live sessions (memory stays bounded whatever happens).
const MAX_SESSIONS: usize = 10_000;

/// A logged-in admin, as the pages see them.
#[derive(Debug, Clone)]
pub struct Admin {
    pub user: String,
    pub csrf: String,
    /// The password is older than `login.password_max_age` (a warning on the overview).
    pub password_due: bool,
    /// `dashboard.require_2fa` and no second factor yet: only enrolment is open.
    pub must_enrol: bool,
}

struct Session {
    admin: Admin,
    expires: Instant,
    /// The secret shown on the enrolment page, until a code of it confirms it.
    enrolling: Option<TotpSecret>,
}

/// A login whose password was right and whose second factor is awaited.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub user: String,
    pub password_due: bool,
    pub csrf: String,
}

/// The live sessions, by id (kept in memory: a restart logs everyone out), and the logins
/// waiting for their second factor.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    pending: Mutex<HashMap<String, (PendingLogin, Instant)>>,
}

/// Inserts into a bounded map of expiring entries: expired ones go first, then the one that
/// expires first.
fn insert_bounded<V>(map: &mut HashMap<String, V>, id: String, value: V, expires: impl Fn(&V) -> Instant) {
    let now = Instant::now();
    map.retain(|_, v| expires(v) > now);
    if map.len() >= MAX_SESSIONS
        && let Some(oldest) = map.iter().min_by_key(|(_, v)| expires(v)).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(id, value);
}

impl Sessions {
    /// Starts a session for `user`; returns its id (None when no randomness is available).
    pub fn create(&self, user: &str, password_due: bool, must_enrol: bool) -> Option<String> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut map = self.map.lock().ok()?;
        let admin = Admin { user: user.into(), csrf, password_due, must_enrol };
        let session = Session { admin, expires: Instant::now() + SESSION_TTL, enrolling: None };
        insert_bounded(&mut map, id.clone(), session, |s| s.expires);
        Some(id)
    }

    /// Parks a login whose second factor is awaited (for [`PENDING_TTL`]); returns its id.
    pub fn park(&self, user: &str, password_due: bool) -> Option<String> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut map = self.pending.lock().ok()?;
        let login = PendingLogin { user: user.into(), password_due, csrf };
        insert_bounded(&mut map, id.clone(), (login, Instant::now() + PENDING_TTL), |(_, at)| *at);
        Some(id)
    }

    /// A parked login, unexpired.
    pub fn parked(&self, id: &str) -> Option<PendingLogin> {
        let map = self.pending.lock().ok()?;
        map.get(id).filter(|(_, at)| *at > Instant::now()).map(|(p, _)| p.clone())
    }

    pub fn unpark(&self, id: &str) {
        if let Ok(mut map) = self.pending.lock() {
            map.remove(id);
        }
    }

    /// The enrolment secret of a session, made on first ask and kept until enrolment ends.
    pub fn enrolling(&self, id: &str) -> Option<TotpSecret> {
        let mut map = self.map.lock().ok()?;
        let s = map.get_mut(id)?;
        if s.enrolling.is_none() {
            s.enrolling = crate::inbound::totp::new_secret();
        }
        s.enrolling.clone()
    }

    /// Ends enrolment of a session (enrolled, or not needed); `must_enrol` is the new state.
    pub fn enrolled(&self, id: &str, must_enrol: bool) {
        if let Ok(mut map) = self.map.lock()
            && let Some(s) = map.get_mut(id)
        {
            s.enrolling = None;
            s.admin.must_enrol = must_enrol;
        }
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

/// The id of the request's session (its cookie).
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
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
            Some(a) if state.ctx.config.dashboard.admins.contains(&a.user) => {
                let path = parts.uri.path();
                if a.must_enrol && !path.starts_with("/dashboard/2fa") && path != "/dashboard/logout" {
                    return Err(redirect("/dashboard/2fa", None));
                }
                Ok(a)
            }
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
        .route("/dashboard/login/code", get(two_factor::code_form).post(two_factor::code))
        .route("/dashboard/2fa", get(two_factor::status))
        .route("/dashboard/2fa/enable", post(two_factor::enable))
        .route("/dashboard/2fa/disable", post(two_factor::disable))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/queue", get(pages::queue))
        .route("/dashboard/queue/{id}/retry", post(pages::retry))
        .route("/dashboard/queue/{id}/delete", post(pages::delete))
        .route("/dashboard/messages/{id}", get(pages::message))
        .route("/dashboard/suppressions", get(pages::suppressions))
        .route("/dashboard/suppressions/remove", post(pages::unsuppress))
        .route("/dashboard/accounts", get(pages::accounts))
        .route("/dashboard/accounts/resume", post(pages::resume))
        .route("/dashboard/bounces", get(pages::bounce_form).post(pages::bounce_explore))
        .route("/dashboard/bounces/train", post(pages::bounce_train))
        .route("/dashboard/checklist", get(pages::checklist))
        .route("/dashboard/checklist/address", post(pages::check_address))
        .route("/dashboard/checklist/message", post(pages::check_message))
        .route("/dashboard/readiness", get(pages::readiness))
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
        Attempt::Accepted(g) if admins.contains(&g.user) => {
            let enrolled = match state.ctx.store.second_factor(&g.user).await {
                Ok(f) => f.is_some(),
                Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, None, &format!("store: {e}")),
            };
            if enrolled {
                // The password was right; the session waits for the second factor.
                return match state.sessions.park(&g.user, g.password_due) {
                    Some(id) => {
                        redirect("/dashboard/login/code", Some(set_cookie(PENDING_COOKIE, &id, PENDING_TTL.as_secs())))
                    }
                    None => error_page(StatusCode::SERVICE_UNAVAILABLE, None, "no randomness available"),
                };
            }
            let must_enrol = state.ctx.config.dashboard.require_2fa;
            start_session(&state, &g.user, g.password_due, must_enrol)
        }
        Attempt::Accepted(_) | Attempt::Refused => {
            tracing::info!(user = %user, "dashboard login refused");
            login_page(StatusCode::UNAUTHORIZED, Some("Wrong address or password, or not a dashboard admin."))
        }
        Attempt::Unavailable => {
            error_page(StatusCode::SERVICE_UNAVAILABLE, None, "The password cannot be checked now; try again later.")
        }
    }
}

/// Starts a session after a complete login: to the overview, or to enrolment first.
fn start_session(state: &AppState, user: &str, password_due: bool, must_enrol: bool) -> Response {
    match state.sessions.create(user, password_due, must_enrol) {
        Some(id) => {
            tracing::info!(user = %user, "dashboard login");
            let to = if must_enrol { "/dashboard/2fa" } else { "/dashboard/" };
            redirect(to, Some(set_cookie(SESSION_COOKIE, &id, SESSION_TTL.as_secs())))
        }
        None => error_page(StatusCode::SERVICE_UNAVAILABLE, None, "no randomness available"),
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
        let id = s.create("admin@local.test", false, false).unwrap();
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
