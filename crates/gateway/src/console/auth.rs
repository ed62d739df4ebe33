//! Who may use the console: a sign-in with one of `ops.console_keys`, a session kept in the
//! store (under a digest of its id, with a TTL, and an expiry checked against the gateway's
//! clock so that tests can move time), a CSRF token per session on every form, and at most
//! [`FAILURES_PER_MINUTE`] failed sign-ins per minute per client address.
//!
//! The session cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's
//! page sends it) and `Secure` when `public_url` is https; its path is `/console`.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::render::{self, Chrome};
pub use super::session::Session;
use crate::configuration::ConsoleKey;
use crate::state::AppState;
use crate::store::console::ConsoleSlot;

pub const SESSION_COOKIE: &str = "console_session";
/// The sign-in form's CSRF token, before there is a session (a double-submit cookie).
pub const SIGN_IN_COOKIE: &str = "console_sign_in";
/// Failed sign-ins answered per minute per client address; more get 429.
pub const FAILURES_PER_MINUTE: u64 = 10;

/// 32 random bytes from aws-lc-rs, in hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system's random source failing is not something a page can recover from; a token
    // of zeros would be guessable, so answer an error instead (the caller maps it).
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return String::new();
    }
    hex::encode(bytes)
}

/// What the store keys a session by: the digest of its id, so that a copy of the store holds no
/// usable cookie.
fn session_digest(id: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes()).as_ref())
}

/// Constant-time equality of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// The console key `offered` is, compared in constant time against every configured key.
fn key_of(keys: &[ConsoleKey], offered: &str) -> Option<String> {
    let mut found = None;
    for key in keys {
        let ok = aws_lc_rs::constant_time::verify_slices_are_equal(
            key.key.expose_secret().as_bytes(),
            offered.as_bytes(),
        )
        .is_ok();
        if ok && found.is_none() {
            found = Some(key.label.clone());
        }
    }
    found
}

fn secure(state: &AppState) -> bool {
    state.public_url().starts_with("https://")
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, path `/console`, `Secure` over https.
/// The values are hex tokens (or empty, to remove a cookie), so they need no quoting.
fn cookie(state: &AppState, name: &str, value: &str, max_age_s: u64) -> header::HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/console; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}"
    );
    header::HeaderValue::from_str(&text)
        .unwrap_or_else(|_| header::HeaderValue::from_static("console_invalid=; Max-Age=0"))
}

fn set_cookie(res: &mut HttpResponse, value: header::HeaderValue) {
    res.headers_mut().append(header::SET_COOKIE, value);
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie_of(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_owned())
}

fn session_ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.ops.console_session_ttl_s)
}

/// Why a request has no session.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie: never signed in (or signed out).
    Absent,
    /// A cookie naming no live session: expired, signed out elsewhere, or forged.
    Ended,
    /// The store did not answer.
    Unavailable,
}

/// The request's session, if it has a live one.
pub async fn session_of(state: &AppState, req: &HttpRequest) -> Result<Session, NoSession> {
    let Some(id) = cookie_of(req, SESSION_COOKIE) else {
        return Err(NoSession::Absent);
    };
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoSession::Ended);
    }
    let digest = session_digest(&id);
    let store = state.flows.store.as_ref();
    let raw = store
        .console_get(ConsoleSlot::Session(&digest))
        .await
        .map_err(|_| NoSession::Unavailable)?;
    let Some(session) = raw.and_then(|r| serde_json::from_str::<Session>(&r).ok()) else {
        return Err(NoSession::Ended);
    };
    if session.expires_at <= state.flows.clock.now() {
        let _ = store.console_delete(ConsoleSlot::Session(&digest)).await;
        return Err(NoSession::Ended);
    }
    Ok(session)
}

/// The answer to a request without a session: the sign-in page (401), saying why when a
/// session ended; nothing the request asked for was done.
pub fn sign_in_required(state: &AppState, why: NoSession) -> HttpResponse {
    match why {
        NoSession::Unavailable => render::unavailable(Chrome::new("Console", "")),
        NoSession::Absent => sign_in_page(state, StatusCode::UNAUTHORIZED, None),
        NoSession::Ended => sign_in_page(
            state,
            StatusCode::UNAUTHORIZED,
            Some("Your session has ended or is not valid. Nothing was done; sign in again."),
        ),
    }
}

/// A request's session, or the answer to give without one. Handlers start with it.
pub async fn require(state: &AppState, req: &HttpRequest) -> Result<Session, HttpResponse> {
    session_of(state, req)
        .await
        .map_err(|why| sign_in_required(state, why))
}

/// A form's CSRF token checked against the session's (constant time): the answer to give when
/// it is missing or wrong. Nothing is done then.
pub fn check_csrf(session: &Session, offered: Option<&str>) -> Result<(), HttpResponse> {
    if offered.is_some_and(|t| same_token(t, &session.csrf)) {
        return Ok(());
    }
    Err(render::message(
        StatusCode::FORBIDDEN,
        Chrome::new("Form expired", "").signed_in(session),
        "This form could not be accepted",
        "The form was missing its security token, or it came from an old page. Nothing was done: go back, reload the page and try again.",
        Some(("/console", "Back to the overview")),
    ))
}

#[derive(Template)]
#[template(path = "console_sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    message: Option<String>,
    csrf: String,
}

fn sign_in_page(state: &AppState, status: StatusCode, message: Option<&str>) -> HttpResponse {
    let csrf = random_token();
    let mut res = render::html(
        status,
        &SignInPage {
            chrome: Chrome::new("Sign in", ""),
            message: message.map(str::to_owned),
            csrf: csrf.clone(),
        },
    );
    set_cookie(&mut res, cookie(state, SIGN_IN_COOKIE, &csrf, 3_600));
    res
}

/// `GET /console/sign-in`.
pub async fn sign_in_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if session_of(&state, &req).await.is_ok() {
        return see_other("/console");
    }
    sign_in_page(&state, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf_token: String,
}

fn client_of(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `POST /console/sign-in`: a key that matches starts a session; one that does not answers
/// the form again (401), counted against the client address.
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Option<web::Form<SignInForm>>,
) -> HttpResponse {
    let store = state.flows.store.as_ref();
    let now = state.flows.clock.now();
    let client = client_of(&req);
    let minute = now.timestamp().div_euclid(60);
    let failures = ConsoleSlot::SignInFailures {
        client: &client,
        minute,
    };
    match store.console_counted(failures).await {
        Ok(n) if n >= FAILURES_PER_MINUTE => {
            let mut res = render::message(
                StatusCode::TOO_MANY_REQUESTS,
                Chrome::new("Too many attempts", ""),
                "Too many failed sign-ins",
                "There were too many failed sign-ins from your address in the last minute. Wait a minute, then try again with the right key.",
                Some(("/console/sign-in", "Back to sign-in")),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
            return res;
        }
        Ok(_) => {}
        Err(_) => return render::unavailable(Chrome::new("Sign in", "")),
    }
    let Some(form) = form else {
        return sign_in_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some("The sign-in form was incomplete. Enter your console key and try again."),
        );
    };
    let expected = cookie_of(&req, SIGN_IN_COOKIE);
    if !expected.is_some_and(|e| same_token(&e, &form.csrf_token)) {
        return sign_in_page(
            &state,
            StatusCode::FORBIDDEN,
            Some(
                "This sign-in form had expired or was not ours. Nothing was done; try again on this page.",
            ),
        );
    }
    let keys = state.settings.ops.console_keys();
    let Some(label) = key_of(&keys, form.key.trim()) else {
        let _ = store
            .console_count(failures, Duration::from_secs(120))
            .await;
        tracing::info!(client = %client, "a console sign-in failed");
        return sign_in_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("That key is not a console key. Check it and try again."),
        );
    };
    let id = random_token();
    let csrf = random_token();
    if id.is_empty() || csrf.is_empty() {
        return render::unavailable(Chrome::new("Sign in", ""));
    }
    let ttl = session_ttl(&state);
    let session = Session {
        label: label.clone(),
        csrf,
        expires_at: now + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::hours(8)),
    };
    let Ok(json) = serde_json::to_string(&session) else {
        return render::unavailable(Chrome::new("Sign in", ""));
    };
    if store
        .console_put(ConsoleSlot::Session(&session_digest(&id)), &json, ttl)
        .await
        .is_err()
    {
        return render::unavailable(Chrome::new("Sign in", ""));
    }
    tracing::info!(console_key = %label, "signed in to the console");
    let mut res = see_other("/console");
    set_cookie(&mut res, cookie(&state, SESSION_COOKIE, &id, ttl.as_secs()));
    set_cookie(&mut res, cookie(&state, SIGN_IN_COOKIE, "", 0));
    res
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf_token: Option<String>,
}

/// `POST /console/sign-out`: ends the session (with its CSRF token, so that no other page can
/// sign an operator out).
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Option<web::Form<CsrfOnly>>,
) -> HttpResponse {
    let session = match require(&state, &req).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    if let Err(res) = check_csrf(
        &session,
        form.as_ref().and_then(|f| f.csrf_token.as_deref()),
    ) {
        return res;
    }
    if let Some(id) = cookie_of(&req, SESSION_COOKIE) {
        let _ = state
            .flows
            .store
            .console_delete(ConsoleSlot::Session(&session_digest(&id)))
            .await;
    }
    let mut res = see_other("/console/sign-in");
    set_cookie(&mut res, cookie(&state, SESSION_COOKIE, "", 0));
    res
}

/// 303 to a console path.
pub fn see_other(path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, path))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[..63]));
        assert!(!same_token("", ""));
    }

    #[test]
    fn a_key_is_found_by_its_secret_only() {
        let keys = vec![
            ConsoleKey::parse("alice:0123456789abcdef01234567").unwrap(),
            ConsoleKey::parse("bob:abcdefabcdefabcdefabcdefab").unwrap(),
        ];
        assert_eq!(
            key_of(&keys, "abcdefabcdefabcdefabcdefab").as_deref(),
            Some("bob")
        );
        assert_eq!(key_of(&keys, "alice"), None);
        assert_eq!(key_of(&keys, ""), None);
    }
}
