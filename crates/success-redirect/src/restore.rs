//! `/upgrade/restore`: Pro on any device, by a one-time sign-in link sent to the purchase
//! email.
//!
//! - `GET` (no token): a form with one `email` field.
//! - `POST` with `email`: the same answer whatever the address. Limits are checked in an
//!   order that reveals nothing: the client IP first (20 an hour; an IP over it is told so
//!   and its request does not count against the address), then the address *from this IP*
//!   (3 requests an hour, whether or not it has a purchase; over it the page says so: one
//!   network cannot lock a buyer out of sign-in links), then, only for an address about to be
//!   sent a link, the emails sent to the address ([`EMAILS_PER_ADDRESS_PER_HOUR`]) and the
//!   site-wide `RESTORE_EMAILS_PER_HOUR` (over either, nothing is sent and the answer is the
//!   same neutral page). A request that got past the per-address limit is answered the
//!   neutral page no sooner than [`SuccessDeps::restore_floor`] after it arrived; only when
//!   the address has Pro now is a 32-byte random token stored, as its SHA-256, for 15
//!   minutes, and the link `SITE_ORIGIN/upgrade/restore?token=…` sent with SES. The new
//!   link replaces the address's earlier open one, which stops working.
//! - Every `POST` must be a same-origin form post ([`crate::client::same_origin_form`]),
//!   else `403`.
//! - `GET` with `token`: a page with one button; changes nothing (mail scanners open links).
//! - `POST` with `token`: redeems the token once (its expiry is part of the condition),
//!   re-checks Pro, sets the cookie, `303` to `SITE?upgrade=restored`. Any failure: one
//!   generic "link invalid or expired" page with the form.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use llmxt_domain::crypto::hex_encode;
use llmxt_domain::email::Email;
use llmxt_domain::token::Session;
use llmxt_http::{ApiError, body_bytes, query_param, see_other, with_cookie};
use sha2::{Digest, Sha256};

use crate::mail::SignInEmail;
use crate::pages::{self, FormMessage, Page};
use crate::{SuccessDeps, words};

/// How long a sign-in link works.
pub const TOKEN_LIFETIME_SECONDS: i64 = 15 * 60;
/// Link requests for one email address from one client IP per hour (paid or not).
pub const LINKS_PER_EMAIL_PER_HOUR: i64 = 3;
/// Sign-in emails sent to one address per hour: well above what one client IP may ask for
/// ([`LINKS_PER_EMAIL_PER_HOUR`]), so one network cannot use up a buyer's sign-in emails.
pub const EMAILS_PER_ADDRESS_PER_HOUR: i64 = 10;
/// Link requests a client IP ([`crate::client::client_ip`]) may make per hour.
pub const REQUESTS_PER_IP_PER_HOUR: i64 = 20;
/// Largest form body read.
pub const MAX_FORM_BYTES: usize = 4096;

/// Handles `/upgrade/restore` received at `now` (unix seconds).
pub async fn handle(deps: &SuccessDeps, request: Request, now: i64) -> Response<Body> {
    let arrived = tokio::time::Instant::now();
    match *request.method() {
        Method::GET | Method::HEAD => match query_param(&request, "token") {
            Some(token) if valid_token(&token) => {
                match signed_in_again(deps, &request, &token, now).await {
                    Some(page) => page,
                    None => confirm_page(deps, &token),
                }
            }
            Some(_) => invalid_link(deps),
            None => form_page(deps, StatusCode::OK, None),
        },
        Method::POST => {
            if body_bytes(&request).len() > MAX_FORM_BYTES {
                return ApiError::PayloadTooLarge.into_response();
            }
            if !crate::client::same_origin_form(deps, &request) {
                tracing::warn!(
                    outcome = "cross_site_refused",
                    origin = llmxt_http::header(&request, "origin")
                        .map(llmxt_http::loggable)
                        .unwrap_or_default(),
                    "restore post refused"
                );
                return Page::new(words::CROSS_SITE_TITLE)
                    .alert(words::CROSS_SITE_ALERT)
                    .primary(
                        "restore",
                        &pages::restore_url(deps),
                        words::OPEN_SIGN_IN_PAGE,
                    )
                    .respond(deps, StatusCode::FORBIDDEN);
            }
            let form = form_fields(body_bytes(&request));
            if let Some(token) = field(&form, "token") {
                if let Some(page) = signed_in_again(deps, &request, &token, now).await {
                    return page;
                }
                return redeem(deps, &token, now).await;
            }
            match request_link(deps, &request, field(&form, "email"), now).await {
                Answer::Limited(response) => response,
                Answer::Neutral(response) => {
                    // Past this point the work depends on whether the address has a purchase.
                    tokio::time::sleep_until(arrived + deps.restore_floor).await;
                    if arrived.elapsed() > deps.restore_floor + FLOOR_SLACK {
                        tracing::warn!(
                            elapsed_ms = arrived.elapsed().as_millis() as u64,
                            outcome = "restore_floor_exceeded",
                            "a sign-in link request took longer than the answer floor"
                        );
                    }
                    response
                }
            }
        }
        _ => ApiError::MethodNotAllowed("GET, POST").into_response(),
    }
}

/// A link request's answer: one whose timing reveals nothing already, or the neutral page
/// that must wait for the floor.
enum Answer {
    Limited(Response<Body>),
    Neutral(Response<Body>),
}

/// How much past the floor an answer may be before it is logged as too slow.
const FLOOR_SLACK: std::time::Duration = std::time::Duration::from_millis(50);

async fn request_link(
    deps: &SuccessDeps,
    request: &Request,
    raw_email: Option<String>,
    now: i64,
) -> Answer {
    let sent = words::restore_sent(TOKEN_LIFETIME_SECONDS / 60);
    let neutral = || Answer::Neutral(form_page(deps, StatusCode::OK, Some(&sent)));
    let Some(mailer) = &deps.mailer else {
        return neutral();
    };
    let window_end = (now / 3600 + 1) * 3600;
    let ip = crate::client::client_ip(deps, request);
    let Some(ip_count) =
        crate::budget::count_per_ip_hour(deps, "ip", &ip, now, crate::budget::InOutage::Refuse)
            .await
    else {
        return neutral();
    };
    if ip_count > REQUESTS_PER_IP_PER_HOUR {
        tracing::warn!(
            ip_count,
            outcome = "rate_limited",
            limit = "ip",
            "restore link requested"
        );
        return Answer::Limited(limited_page(deps, words::too_many_links_from_network, now));
    }
    let Some(email) = raw_email.and_then(|raw| Email::parse(&raw).ok()) else {
        tracing::info!(outcome = "malformed_email", "restore link requested");
        return neutral();
    };
    let email_key = email_counter(deps, &email);
    let email_count = match deps
        .store
        .count_in_window(
            &format!(
                "{email_key}#ip#{}",
                crate::budget::client_ip_digest(deps, &ip)
            ),
            window_end,
        )
        .await
    {
        Ok(count) => count,
        Err(error) => {
            tracing::error!(error = %error, "restore: could not count the request; nothing sent");
            return neutral();
        }
    };
    if email_count > LINKS_PER_EMAIL_PER_HOUR {
        tracing::warn!(email = %email, email_count, outcome = "rate_limited", limit = "email", "restore link requested");
        return Answer::Limited(limited_page(deps, words::too_many_links_for_address, now));
    }
    let has_pro = match deps.store.get_entitlement(&email).await {
        Ok(entitlement) => entitlement.is_some_and(|e| e.has_pro(now, deps.config.plans.ranking())),
        Err(error) => {
            tracing::error!(email = %email, error = %error, "restore: could not read the entitlement; nothing sent");
            return neutral();
        }
    };
    if !has_pro {
        tracing::info!(email = %email, outcome = "not_pro", "restore link requested");
        return neutral();
    }
    match deps
        .store
        .count_in_window(&format!("{email_key}#sent"), window_end)
        .await
    {
        Ok(sent) if sent <= EMAILS_PER_ADDRESS_PER_HOUR => {}
        Ok(sent) => {
            tracing::warn!(email = %email, sent, outcome = "rate_limited", limit = "emails_sent", "restore: this address was sent enough links this hour; nothing sent");
            return neutral();
        }
        Err(error) => {
            tracing::error!(email = %email, error = %error, "restore: could not count the email; nothing sent");
            return neutral();
        }
    }
    match deps
        .store
        .count_in_window("restore_emails", window_end)
        .await
    {
        Ok(sent) if sent <= deps.config.limits.restore_emails_per_hour => {}
        Ok(sent) => {
            tracing::warn!(
                email = %email,
                sent,
                budget = "restore_emails_per_hour",
                outcome = "over_budget",
                "sign-in emails for this hour spent site-wide: nothing sent"
            );
            return neutral();
        }
        Err(error) => {
            tracing::error!(email = %email, error = %error, "restore: could not count the email; nothing sent");
            return neutral();
        }
    }
    let mut bytes = [0_u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        tracing::error!("restore: no randomness; nothing sent");
        return neutral();
    }
    let token = URL_SAFE_NO_PAD.encode(bytes);
    if let Err(error) = deps
        .store
        .put_restore_token(&digest(&token), &email, now + TOKEN_LIFETIME_SECONDS)
        .await
    {
        tracing::error!(email = %email, error = %error, "restore: could not store the token; nothing sent");
        return neutral();
    }
    // This link replaces the address's earlier open one.
    if let Err(error) = deps
        .store
        .set_latest_restore(
            &format!("{email_key}#latest"),
            &digest(&token),
            now + TOKEN_LIFETIME_SECONDS,
        )
        .await
    {
        tracing::error!(email = %email, error = %error, "restore: could not record the open link; nothing sent");
        return neutral();
    }
    let origin = deps.config.site_url.origin();
    let link = format!("{origin}/upgrade/restore?token={token}");
    let site = origin.split("://").nth(1).unwrap_or(origin);
    let started = std::time::Instant::now();
    let sent = mailer
        .send(SignInEmail {
            to: &email,
            site,
            link: &link,
            valid_minutes: TOKEN_LIFETIME_SECONDS / 60,
        })
        .await;
    let ses_ms = started.elapsed().as_millis() as u64;
    match sent {
        Ok(()) => {
            tracing::info!(email = %email, ses_ms, outcome = "sent", "restore link requested")
        }
        Err(error) => {
            tracing::error!(email = %email, ses_ms, error = %error, outcome = "ses_failed", "restore: SES did not send the sign-in link")
        }
    }
    neutral()
}

/// The answer over a limit: the same for every address, so it reveals nothing about
/// purchases.
/// `Retry-After` and the text give the true wait: until the hour's window ends.
fn limited_page(deps: &SuccessDeps, text: fn(&str) -> String, now: i64) -> Response<Body> {
    let retry = pages::until_window_end(now, 3600);
    let text = text(&words::wait(retry));
    let mut response = pages::restore_form(
        deps,
        StatusCode::TOO_MANY_REQUESTS,
        Some(FormMessage::Error(&text)),
    );
    if let Ok(value) = lambda_http::http::HeaderValue::from_str(&retry.to_string()) {
        response
            .headers_mut()
            .insert(lambda_http::http::header::RETRY_AFTER, value);
    }
    response
}

async fn redeem(deps: &SuccessDeps, token: &str, now: i64) -> Response<Body> {
    if !valid_token(token) {
        return invalid_link(deps);
    }
    let email = match deps.store.redeem_restore_token(&digest(token), now).await {
        Ok(Some(email)) => email,
        Ok(None) => {
            tracing::info!(outcome = "invalid_or_expired", "restore link redeemed");
            return invalid_link(deps);
        }
        Err(error) => {
            tracing::error!(error = %error, "restore: could not redeem the token");
            return invalid_link(deps);
        }
    };
    // A later link for the address replaced this one.
    match deps
        .store
        .latest_restore(&format!("{}#latest", email_counter(deps, &email)))
        .await
    {
        Ok(Some(latest)) if latest == digest(token) => {}
        Ok(_) => {
            tracing::info!(email = %email, outcome = "replaced", "restore link redeemed");
            return invalid_link(deps);
        }
        Err(error) => {
            tracing::error!(email = %email, error = %error, "restore: could not read the open link");
            return invalid_link(deps);
        }
    }
    let entitlement = match deps.store.get_entitlement(&email).await {
        Ok(entitlement) => entitlement,
        Err(error) => {
            tracing::error!(email = %email, error = %error, "restore: could not re-check Pro");
            return invalid_link(deps);
        }
    };
    let Some(grant) = entitlement
        .as_ref()
        .and_then(|e| e.best_grant(now, deps.config.plans.ranking()))
    else {
        tracing::info!(email = %email, outcome = "not_pro", "restore link redeemed");
        return invalid_link(deps);
    };
    // The link proved the mailbox: an account cookie, covering every grant of the email.
    let Some(cookie) = deps
        .cookies
        .issue(&email, &grant.plan, &Session::account(now), now)
    else {
        return invalid_link(deps);
    };
    tracing::info!(email = %email, outcome = "restored", "restore link redeemed");
    with_cookie(
        see_other(&deps.config.site_url.with_upgrade_outcome("restored"), None),
        Some(&cookie),
    )
}

/// A used link opened again in the browser it signed in: a valid cookie for the email the
/// link was sent to. Such a browser is told it is signed in, not that the link is invalid.
/// Reads the store only when the browser presents a valid cookie.
async fn signed_in_again(
    deps: &SuccessDeps,
    request: &Request,
    token: &str,
    now: i64,
) -> Option<Response<Body>> {
    if !valid_token(token) {
        return None;
    }
    let (valid, _) = llmxt_http::presented_tokens(request, &deps.cookies, now);
    if valid.is_empty() {
        return None;
    }
    let email = match deps
        .store
        .used_restore_token_email(&digest(token), now)
        .await
    {
        Ok(email) => email?,
        Err(error) => {
            tracing::warn!(error = %error, "restore: could not read the used token");
            return None;
        }
    };
    let same = valid
        .iter()
        .any(|presented| Email::parse(&presented.token.claims.email).is_ok_and(|e| e == email));
    if !same {
        return None;
    }
    tracing::info!(email = %email, outcome = "already_signed_in", "restore link reopened");
    Some(
        Page::new(words::SIGNED_IN_TITLE)
            .text(&words::signed_in_text(email.as_str()))
            .primary("home", deps.config.site_url.as_str(), words::GO_TO_SITE)
            .respond(deps, StatusCode::OK),
    )
}

/// A token as we issue them: 32 bytes, base64url without padding.
fn valid_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn email_counter(deps: &SuccessDeps, email: &Email) -> String {
    crate::budget::email_counter(deps, email)
}

/// A sign-in token's key: the SHA-256 of the random token (never of an address).
fn digest(text: &str) -> String {
    hex_encode(&Sha256::digest(text.as_bytes()))
}

pub(crate) fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A field given exactly once.
pub(crate) fn field(form: &[(String, String)], name: &str) -> Option<String> {
    let mut values = form.iter().filter(|(k, _)| k == name);
    match (values.next(), values.next()) {
        (Some((_, value)), None) => Some(value.clone()),
        _ => None,
    }
}

/// The restore form (or, without a sender, the page saying restore is not enabled), with an
/// optional neutral notice above it.
fn form_page(deps: &SuccessDeps, status: StatusCode, notice: Option<&str>) -> Response<Body> {
    pages::restore_form(deps, status, notice.map(FormMessage::Notice))
}

fn confirm_page(deps: &SuccessDeps, token: &str) -> Response<Body> {
    Page::new(words::SIGN_IN_HERE_TITLE)
        .text(words::SIGN_IN_HERE_TEXT)
        .primary_post(
            "sign-in",
            "/upgrade/restore",
            &[("token", token)],
            words::SIGN_IN,
        )
        .respond(deps, StatusCode::OK)
}

fn invalid_link(deps: &SuccessDeps) -> Response<Body> {
    pages::restore_form(
        deps,
        StatusCode::BAD_REQUEST,
        Some(FormMessage::Error(words::SIGN_IN_LINK_INVALID)),
    )
}
