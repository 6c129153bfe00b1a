//! The dashboard's second factor: the code step of a login whose password was right
//! (`/dashboard/login/code`), and enrolment (`/dashboard/2fa`: the otpauth URI, its QR code
//! as inline SVG rendered here, a code to confirm, then the recovery codes shown once) and
//! removal (a current code required). With `dashboard.require_2fa`, an admin without a second
//! factor is sent to enrolment and sees nothing else until it is done.
//! Codes are checked by `inbound::auth::Authenticator::second_factor`, so wrong codes count in
//! the login limiter like wrong passwords.
//! Standards: RFC 6238 (TOTP), the otpauth Key Uri Format.
//! Must not: show a secret or recovery code outside the enrolment that made it, or change
//! anything on a GET but the session's enrolment secret (made once, shown until confirmed).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::{
    Admin, PENDING_COOKIE, Posted, cookie, error_page, html, html_response, redirect, set_cookie, start_session,
    throttled_page,
};
use crate::http::AppState;
use crate::inbound::auth::{FactorAttempt, FactorUsed};
use crate::inbound::totp;
use crate::metrics::LoginDoor;
use crate::store::{SecondFactor, TotpSecret};
use crate::time::Timestamp;

/// A form with a code (TOTP or recovery code).
#[derive(Debug, serde::Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The code step's form: the code and the parked login's token.
#[derive(Debug, serde::Deserialize)]
pub struct PendingCodeForm {
    #[serde(default)]
    code: String,
    csrf: Option<String>,
}

/// The code step of a login (pure).
pub fn render_code_form(csrf: &str, error: Option<&str>) -> String {
    let error = error.map(|e| format!("<p class=\"err\" id=\"code-error\">{}</p>", html::esc(e))).unwrap_or_default();
    format!(
        "<div class=\"box\" style=\"max-width:26em;margin:3em auto\"><h1>Second factor</h1>{error}\
         <form method=\"post\" action=\"/dashboard/login/code\">{}\
         <p><label>Code from your authenticator app, or a recovery code<br>\
         <input name=\"code\" id=\"code\" autocomplete=\"one-time-code\" inputmode=\"numeric\" required autofocus style=\"width:100%\"></label></p>\
         <p><button id=\"verify\">Verify</button></p></form></div>",
        html::csrf_field(csrf)
    )
}

/// The enrolment page for `user` with the secret it is shown (pure).
pub fn render_enrol(admin: &Admin, secret: &TotpSecret, error: Option<&str>) -> String {
    let uri = totp::otpauth_uri(secret, &admin.user).unwrap_or_default();
    let qr = totp::qr_svg(&uri).unwrap_or_default();
    let error = error.map(|e| format!("<p class=\"err\" id=\"enrol-error\">{}</p>", html::esc(e))).unwrap_or_default();
    let required = if admin.must_enrol {
        "<p class=\"err\" id=\"enrol-required\">Dashboard admins must use a second factor \
         (<code>dashboard.require_2fa</code>): set it up to continue.</p>"
    } else {
        ""
    };
    format!(
        "<h1>Two-factor authentication</h1>{required}{error}<div class=\"box\">\
         <p>1. Scan this code with an authenticator app (TOTP: 6 digits every 30 seconds).</p>\
         <div id=\"qr\" style=\"width:220px\">{qr}</div>\
         <p>Or enter the key by hand: <code id=\"secret\">{}</code></p>\
         <p class=\"muted\">URI: <code id=\"otpauth\">{}</code></p>\
         <form method=\"post\" action=\"/dashboard/2fa/enable\">{}\
         <p><label>2. The code the app shows now<br>\
         <input name=\"code\" id=\"code\" autocomplete=\"one-time-code\" inputmode=\"numeric\" required></label></p>\
         <p><button id=\"enable\">Turn on</button></p></form></div>",
        html::esc(&totp::base32(secret)),
        html::esc(&uri),
        html::csrf_field(&admin.csrf),
    )
}

/// The recovery codes, shown once after enrolment (pure).
pub fn render_recovery_codes(codes: &[String]) -> String {
    let items: String = codes.iter().map(|c| format!("<li><code>{}</code></li>", html::esc(c))).collect();
    format!(
        "<h1>Two-factor authentication is on</h1><div class=\"box\">\
         <p>Recovery codes: each logs you in once without the app. Keep them somewhere safe; \
         they are shown only now.</p><ol id=\"recovery-codes\">{items}</ol>\
         <p><a href=\"/dashboard/\" id=\"continue\">Continue to the dashboard</a></p></div>"
    )
}

/// The state of an enrolled login, with the form that removes the factor (pure).
pub fn render_enabled(admin: &Admin, factor: &SecondFactor, error: Option<&str>) -> String {
    let left = factor.recovery_codes.iter().filter(|c| c.used_at.is_none()).count();
    let error =
        error.map(|e| format!("<p class=\"err\" id=\"disable-error\">{}</p>", html::esc(e))).unwrap_or_default();
    format!(
        "<h1>Two-factor authentication</h1>{error}<div class=\"box\">\
         <p id=\"enabled\">On since {} ({left} of {} recovery codes unused).</p>\
         <form method=\"post\" action=\"/dashboard/2fa/disable\">{}\
         <p><label>A current code to turn it off<br><input name=\"code\" id=\"code\" autocomplete=\"one-time-code\" required></label></p>\
         <p><button class=\"danger\" id=\"disable\">Turn off</button></p></form></div>",
        html::esc(&factor.enabled_at.iso8601()),
        factor.recovery_codes.len(),
        html::csrf_field(&admin.csrf),
    )
}

fn page(admin: &Admin, status: StatusCode, body: &str) -> Response {
    html_response(status, html::page("Two-factor", "/dashboard/2fa", Some((&admin.user, &admin.csrf)), body))
}

fn code_page(status: StatusCode, csrf: &str, error: Option<&str>) -> Response {
    html_response(status, html::page("Second factor", "", None, &render_code_form(csrf, error)))
}

fn store_error(admin: Option<&Admin>, e: impl std::fmt::Display) -> Response {
    error_page(StatusCode::SERVICE_UNAVAILABLE, admin, &format!("store: {e}"))
}

pub async fn code_form(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match cookie(&headers, PENDING_COOKIE).and_then(|id| state.sessions.parked(id)) {
        Some(p) => code_page(StatusCode::OK, &p.csrf, None),
        None => redirect("/dashboard/login", None),
    }
}

pub async fn code(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<axum::Form<PendingCodeForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some((id, parked)) =
        cookie(&headers, PENDING_COOKIE).and_then(|id| state.sessions.parked(id).map(|p| (id.to_string(), p)))
    else {
        return redirect("/dashboard/login", None);
    };
    let Ok(axum::Form(form)) = form else {
        return code_page(StatusCode::BAD_REQUEST, &parked.csrf, Some("The form could not be read."));
    };
    if !form.csrf.as_deref().is_some_and(|t| super::same_token(t, &parked.csrf)) {
        return error_page(
            StatusCode::FORBIDDEN,
            None,
            "The form is stale (CSRF token missing or wrong). Log in again.",
        );
    }
    let attempt = state.ctx.auth.second_factor(LoginDoor::Dashboard, peer.ip(), &parked.user, &form.code, None).await;
    match attempt {
        FactorAttempt::Accepted(used) => {
            state.sessions.unpark(&id);
            if used == FactorUsed::RecoveryCode {
                tracing::warn!(user = %parked.user, "dashboard login with a recovery code");
            }
            let mut r = start_session(&state, &parked.user, parked.password_due, false);
            if let Ok(v) = HeaderValue::from_str(&set_cookie(PENDING_COOKIE, "", 0)) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        FactorAttempt::Refused => {
            tracing::info!(user = %parked.user, client = %peer.ip(), "dashboard second factor refused");
            code_page(StatusCode::UNAUTHORIZED, &parked.csrf, Some("Wrong or already used code."))
        }
        FactorAttempt::Throttled { retry_after } => {
            tracing::info!(client = %peer.ip(), user = %parked.user, "dashboard second factor throttled");
            throttled_page(retry_after)
        }
    }
}

pub async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap, admin: Admin) -> Response {
    match state.ctx.store.second_factor(&admin.user).await {
        Ok(Some(factor)) => page(&admin, StatusCode::OK, &render_enabled(&admin, &factor, None)),
        Ok(None) => match super::session_id(&headers).and_then(|id| state.sessions.enrolling(id)) {
            Some(secret) => page(&admin, StatusCode::OK, &render_enrol(&admin, &secret, None)),
            None => error_page(StatusCode::SERVICE_UNAVAILABLE, Some(&admin), "no randomness available"),
        },
        Err(e) => store_error(Some(&admin), e),
    }
}

pub async fn enable(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Posted(admin, form): Posted<CodeForm>,
) -> Response {
    let Some(id) = super::session_id(&headers).map(str::to_string) else {
        return redirect("/dashboard/login", None);
    };
    match state.ctx.store.second_factor(&admin.user).await {
        Ok(Some(_)) => return redirect("/dashboard/2fa", None),
        Ok(None) => {}
        Err(e) => return store_error(Some(&admin), e),
    }
    let Some(secret) = state.sessions.enrolling(&id) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(&admin), "no randomness available");
    };
    let auth = &state.ctx.auth;
    let step = match auth.second_factor(LoginDoor::Dashboard, peer.ip(), &admin.user, &form.code, Some(&secret)).await {
        FactorAttempt::Accepted(FactorUsed::Totp(step)) => step,
        FactorAttempt::Accepted(FactorUsed::RecoveryCode) | FactorAttempt::Refused => {
            let error = "That code does not match: check the app's clock and enter the code it shows now.";
            return page(&admin, StatusCode::BAD_REQUEST, &render_enrol(&admin, &secret, Some(error)));
        }
        FactorAttempt::Throttled { retry_after } => return throttled_page(retry_after),
    };
    let Some((codes, hashes)) = totp::recovery_codes() else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(&admin), "no randomness available");
    };
    let store = &state.ctx.store;
    if let Err(e) = store.enable_second_factor(&admin.user, &secret, &hashes, Timestamp::now()).await {
        return store_error(Some(&admin), e);
    }
    // The code that confirmed enrolment does not log in again.
    if let Err(e) = store.use_totp_step(&admin.user, step).await {
        return store_error(Some(&admin), e);
    }
    state.sessions.enrolled(&id, false);
    tracing::info!(user = %admin.user, "second factor enabled (dashboard)");
    let admin = Admin { must_enrol: false, ..admin };
    page(&admin, StatusCode::OK, &render_recovery_codes(&codes))
}

pub async fn disable(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Posted(admin, form): Posted<CodeForm>,
) -> Response {
    let factor = match state.ctx.store.second_factor(&admin.user).await {
        Ok(Some(f)) => f,
        Ok(None) => return redirect("/dashboard/2fa", None),
        Err(e) => return store_error(Some(&admin), e),
    };
    match state.ctx.auth.second_factor(LoginDoor::Dashboard, peer.ip(), &admin.user, &form.code, None).await {
        FactorAttempt::Accepted(_) => {}
        FactorAttempt::Refused => {
            let body = render_enabled(&admin, &factor, Some("Wrong or already used code."));
            return page(&admin, StatusCode::UNAUTHORIZED, &body);
        }
        FactorAttempt::Throttled { retry_after } => return throttled_page(retry_after),
    }
    if let Err(e) = state.ctx.store.disable_second_factor(&admin.user).await {
        return store_error(Some(&admin), e);
    }
    if let Some(id) = super::session_id(&headers) {
        state.sessions.enrolled(id, state.ctx.config.dashboard.require_2fa);
    }
    tracing::info!(user = %admin.user, "second factor disabled (dashboard)");
    redirect("/dashboard/2fa", None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RecoveryCode;

    fn admin() -> Admin {
        Admin { user: "admin@local.test".into(), csrf: "tok".into(), password_due: false, must_enrol: true }
    }

    #[test]
    fn enrolment_shows_the_uri_the_key_and_a_qr_code() {
        let secret = TotpSecret(vec![7; 20]);
        let body = render_enrol(&admin(), &secret, Some("<bad>"));
        assert!(body.contains(&format!("otpauth://totp/mailerd:admin%40local.test?secret={}", totp::base32(&secret))));
        assert!(body.contains("<svg") && body.contains("id=\"enrol-required\""));
        assert!(body.contains("&lt;bad&gt;") && !body.contains("<bad>"));
        assert!(body.contains("name=\"csrf\" value=\"tok\""));
    }

    #[test]
    fn enabled_counts_unused_recovery_codes() {
        let factor = SecondFactor {
            address: "admin@local.test".into(),
            secret: TotpSecret(vec![1; 20]),
            enabled_at: Timestamp(0),
            last_step: None,
            recovery_codes: vec![
                RecoveryCode { hash: "a".into(), used_at: None },
                RecoveryCode { hash: "b".into(), used_at: Some(Timestamp(5)) },
            ],
        };
        let body = render_enabled(&admin(), &factor, None);
        assert!(body.contains("On since 1970-01-01T00:00:00Z (1 of 2 recovery codes unused)"), "{body}");
        let codes = render_recovery_codes(&["abcd-efgh".into()]);
        assert!(codes.contains("<li><code>abcd-efgh</code></li>"));
    }
}
