//! `GET /upgrade/checkout?product=pdt_…[&email=…&expires=…&sig=…]`: creates a Dodo Checkout
//! Session bound to this browser and sends the buyer to it. The email is prefilled only when
//! the site's server signed the link.
//!
//! A random nonce goes into the `__Host-llmxt_checkout` cookie (HttpOnly, Secure, Lax, one
//! day) and its SHA-256 (base64url) into the session's `metadata.checkout_ref`; Dodo copies
//! the metadata onto the payment, so only this browser can redeem the purchase's claim on
//! `/upgrade/success`. The cookie keeps this browser's [`CHECKOUT_REFS_KEPT`] most recent
//! nonces (dot-separated, newest first), so a second tab does not unbind the first.
//! Sessions are created within `CHECKOUTS_PER_HOUR_PER_IP` and the site-wide Dodo API budget;
//! nothing but those counters is stored here. A database outage does not stop sales: both are
//! then counted in this instance's memory ([`crate::budget::InOutage::CountInMemory`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use llmxt_domain::email::Email;
use llmxt_domain::request_signature::verify_checkout_link;
use llmxt_http::{ApiError, query_param, redirect};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::pages::{Page, message_page, too_many, until_window_end};
use crate::{SuccessDeps, words};

/// The cookie holding the checkout nonce.
pub const CHECKOUT_COOKIE: &str = "__Host-llmxt_checkout";
/// How long the checkout cookie lives.
pub const CHECKOUT_COOKIE_SECONDS: i64 = 86_400;

/// Checkouts a browser's cookie remembers; any of them binds.
pub const CHECKOUT_REFS_KEPT: usize = 5;

/// The binding a payment carries for a browser's nonce: base64url SHA-256.
pub fn checkout_ref(nonce: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(nonce.as_bytes()))
}

/// The nonces this request's checkout cookie holds (as we issue them), newest first, at
/// most [`CHECKOUT_REFS_KEPT`].
fn presented_nonces(request: &Request) -> Vec<&str> {
    let mut nonces: Vec<&str> = Vec::new();
    for value in llmxt_http::cookies(request, CHECKOUT_COOKIE) {
        for nonce in value.split('.') {
            let ours = nonce.len() == 43
                && nonce
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ours && !nonces.contains(&nonce) && nonces.len() < CHECKOUT_REFS_KEPT {
                nonces.push(nonce);
            }
        }
    }
    nonces
}

/// The bindings this request presents, from its checkout cookie.
pub fn presented_refs(request: &Request) -> Vec<String> {
    presented_nonces(request)
        .into_iter()
        .map(checkout_ref)
        .collect()
}

/// The `Set-Cookie` that keeps a browser's checkout cookie once the checkout bound to
/// `redeemed_ref` has given its cookie: the other checkouts it remembers stay, and with none
/// left the cookie is cleared. `None` when the request presented no checkout cookie.
pub fn after_redemption(request: &Request, redeemed_ref: Option<&str>) -> Option<String> {
    let nonces = presented_nonces(request);
    if nonces.is_empty() {
        return None;
    }
    let kept: Vec<&str> = nonces
        .into_iter()
        .filter(|nonce| Some(checkout_ref(nonce).as_str()) != redeemed_ref)
        .collect();
    Some(checkout_cookie(&kept.join(".")))
}

/// The checkout cookie holding `value` (the nonces, newest first); an empty value clears it.
fn checkout_cookie(value: &str) -> String {
    let max_age = if value.is_empty() {
        0
    } else {
        CHECKOUT_COOKIE_SECONDS
    };
    format!("{CHECKOUT_COOKIE}={value}; Max-Age={max_age}; Path=/; HttpOnly; Secure; SameSite=Lax")
}

/// Handles `/upgrade/checkout`.
pub async fn handle(deps: &SuccessDeps, request: Request, now: i64) -> Response<Body> {
    if request.method() != Method::GET {
        return ApiError::MethodNotAllowed("GET").into_response();
    }
    let Some(product) = query_param(&request, "product").filter(|p| deps.config.plans.sells(p))
    else {
        return message_page(
            deps,
            StatusCode::BAD_REQUEST,
            words::UNKNOWN_PRODUCT_TITLE,
            words::UNKNOWN_PRODUCT_TEXT,
        );
    };
    let email = match query_param(&request, "email") {
        None => None,
        Some(raw) => match Email::parse(&raw) {
            Ok(email) => signed_email(deps, &request, &product, email, now),
            Err(_) => {
                return message_page(
                    deps,
                    StatusCode::BAD_REQUEST,
                    words::BAD_EMAIL_TITLE,
                    words::BAD_EMAIL_TEXT,
                );
            }
        },
    };
    let (valid, _) = llmxt_http::presented_tokens(&request, &deps.cookies, now);
    if llmxt_http::several_emails(&valid) {
        return crate::pages::several_accounts(deps, "checkout");
    }
    if query_param(&request, "anyway").is_none()
        && let Some(page) = already_has(deps, &request, &product, now).await
    {
        return page;
    }
    let Some(api) = &deps.dodo else {
        // Without an API key, the static checkout link (unbound claims) still works.
        return match &deps.config.checkout_url {
            Some(url) => redirect(url, None),
            None => message_page(
                deps,
                StatusCode::SERVICE_UNAVAILABLE,
                words::CHECKOUT_UNAVAILABLE_TITLE,
                words::CHECKOUT_UNAVAILABLE_TEXT,
            ),
        };
    };
    // A prefetch must not create sessions.
    if llmxt_http::is_prefetch(&request) {
        return Page::new(words::CHECKOUT_TITLE)
            .text(words::CHECKOUT_OPENING)
            .respond(deps, StatusCode::OK);
    }
    let client_ip = crate::client::client_ip(deps, &request);
    let within_ip_limit = crate::budget::count_per_ip_hour(
        deps,
        "checkout_ip",
        &client_ip,
        now,
        crate::budget::InOutage::CountInMemory,
    )
    .await
    .is_some_and(|count| {
        let within = count <= deps.config.limits.checkouts_per_hour_per_ip;
        if !within {
            tracing::warn!(
                route = "checkout",
                budget = "checkouts_per_hour_per_ip",
                count,
                outcome = "over_budget",
                "checkout sessions per IP spent for this hour: no call made"
            );
        }
        within
    });
    if !within_ip_limit {
        return busy_page(deps, &product, until_window_end(now, 3600));
    }
    if !crate::budget::take_api_calls(deps, crate::budget::Pool::Checkout, "checkout", 1, now).await
    {
        return busy_page(deps, &product, until_window_end(now, 60));
    }
    let mut bytes = [0_u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        return retry_page(deps, &product);
    }
    let nonce = URL_SAFE_NO_PAD.encode(bytes);
    let kept: Vec<&str> = std::iter::once(nonce.as_str())
        .chain(presented_nonces(&request))
        .take(CHECKOUT_REFS_KEPT)
        .collect();
    let cookie_value = kept.join(".");
    let origin = deps.config.site_url.origin();
    let mut body = json!({
        "product_cart": [{ "product_id": product, "quantity": 1 }],
        "return_url": format!("{origin}/upgrade/success"),
        "metadata": { "checkout_ref": checkout_ref(&nonce) },
    });
    if let Some(email) = &email {
        body["customer"] = json!({ "email": email.as_str() });
    }
    let session = api.create_checkout(&body).await;
    match session {
        Ok(url) if url.starts_with("https://") || url.starts_with("http://") => {
            tracing::info!(product, outcome = "session_created", "checkout");
            let mut response = redirect(&url, Some(&checkout_cookie(&cookie_value)));
            *response.status_mut() = StatusCode::SEE_OTHER;
            response
        }
        Ok(_) => {
            tracing::error!(
                product,
                "checkout: Dodo's session has no usable checkout_url"
            );
            retry_page(deps, &product)
        }
        Err(error) => {
            tracing::error!(product, error = %error, "checkout: Dodo could not create a session");
            retry_page(deps, &product)
        }
    }
}

/// The `email` to prefill, only when the site's server signed the link (`expires`, `sig`):
/// Dodo does not verify the address typed at checkout, so an unsigned one would let anyone
/// buy in another person's name. Otherwise it is ignored (the buyer types it at Dodo).
fn signed_email(
    deps: &SuccessDeps,
    request: &Request,
    product: &str,
    email: Email,
    now: i64,
) -> Option<Email> {
    let Some(secret) = &deps.config.hmac_secret else {
        tracing::info!(
            product,
            outcome = "prefill_ignored",
            reason = "HMAC_SECRET not set",
            "checkout"
        );
        return None;
    };
    let expires = query_param(request, "expires");
    let sig = query_param(request, "sig");
    match verify_checkout_link(
        secret,
        product,
        &email,
        expires.as_deref(),
        sig.as_deref(),
        now,
    ) {
        Ok(()) => Some(email),
        Err(error) => {
            tracing::info!(product, outcome = "prefill_ignored", reason = %error, "checkout");
            None
        }
    }
}

/// Over a budget: nothing was asked of Dodo and nothing is stored; the page and
/// `Retry-After` say when the budget that was spent opens again (`retry_seconds`).
fn busy_page(deps: &SuccessDeps, product: &str, retry_seconds: i64) -> Response<Body> {
    let retry = format!(
        "{}/upgrade/checkout?product={product}",
        deps.config.site_url.origin()
    );
    let page = Page::new(words::CHECKOUT_BUSY_TITLE)
        .text(&words::checkout_busy_text(&words::wait(retry_seconds)))
        .primary("retry", &retry, words::TRY_AGAIN);
    too_many(deps, page, retry_seconds)
}

fn retry_page(deps: &SuccessDeps, product: &str) -> Response<Body> {
    let retry = format!(
        "{}/upgrade/checkout?product={product}",
        deps.config.site_url.origin()
    );
    Page::new(words::CHECKOUT_DOWN_TITLE)
        .text(words::CHECKOUT_DOWN_TEXT)
        .primary("retry", &retry, words::TRY_AGAIN)
        .respond(deps, StatusCode::BAD_GATEWAY)
}

/// A buyer whose valid cookie names someone the database already gives the product's plan
/// (or a higher one, by `PLAN_RANKING`) is told so before paying twice: the page offers Manage
/// billing, and "Buy anyway" (the same link with `anyway=1`) for a deliberate second purchase.
/// The database decides over the grants the cookie covers, as `/api/entitlement` does, so a
/// refunded or expired purchase does not block a new one; if it cannot be read, the checkout
/// goes ahead.
async fn already_has(
    deps: &SuccessDeps,
    request: &Request,
    product: &str,
    now: i64,
) -> Option<Response<Body>> {
    // A credit pack tops up whatever plan the buyer has: never "you already have it".
    if deps.config.plans.credits().sells(product) {
        return None;
    }
    // An account cookie first (it sees every grant of the email).
    let (mut valid, _) = llmxt_http::presented_tokens(request, &deps.cookies, now);
    valid.sort_by_key(|presented| presented.token.claims.grants.is_some());
    let claims = &valid.first()?.token.claims;
    let email = Email::parse(&claims.email).ok()?;
    let entitlement = match deps.store.get_entitlement(&email).await {
        Ok(entitlement) => entitlement?,
        Err(error) => {
            if error.is_transient() {
                // Its counts need not wait for the database again.
                deps.memory_counters.note_failure(now);
            }
            tracing::warn!(email = %email, error = %error, "checkout: could not read the entitlement; going ahead");
            return None;
        }
    };
    let ranking = deps.config.plans.ranking();
    // What this cookie covers, as `/api/entitlement` answers it.
    let seen = entitlement.within_scope(claims.scope().grant_keys(), now, ranking);
    let grant = seen.best_grant(now, ranking)?;
    let wanted = deps.config.plans.plan_for(Some(product));
    if ranking.rank(&grant.plan) < ranking.rank(wanted) {
        return None;
    }
    tracing::info!(email = %email, product, plan = grant.plan, outcome = "already_has_plan", "checkout");
    let query = request.uri().query().unwrap_or_default();
    let anyway = format!("?{query}&anyway=1");
    let origin = deps.config.site_url.origin();
    let name = deps.config.plans.display_name(&grant.plan);
    Some(
        Page::new(&words::already_have_title(&name))
            .text(&words::already_have_text(email.as_str(), &name))
            .primary(
                "billing",
                &format!("{origin}/upgrade/billing"),
                words::MANAGE_BILLING,
            )
            .link("buy-anyway", &anyway, words::BUY_ANYWAY)
            .respond(deps, StatusCode::OK),
    )
}
