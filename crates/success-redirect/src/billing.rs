//! `GET /upgrade/billing`: Dodo's customer portal for the buyer named by a valid **account**
//! cookie (from a sign-in link, which proves the mailbox). Dodo attaches a checkout to the
//! customer with the typed email without verifying it, so a purchase cookie proves nothing
//! about who owns that customer's portal: it gets the sign-in offer. The customer id comes
//! from the buyer's stored grants, never from the request. The portal opens only while a
//! grant gives access or was revoked (refunded) within [`REVOKED_BILLING_SECONDS`]; portal
//! sessions are counted per cookie subject ([`PORTALS_PER_HOUR_PER_SUBJECT`]) and in the
//! look-up budget, and a customer's link is reused while Dodo keeps it valid.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use llmxt_domain::email::Email;
use llmxt_domain::records::Entitlement;
use llmxt_http::{ApiError, presented_tokens, see_other};

use crate::budget::{Pool, count_per_subject_hour, take_api_calls};
use crate::pages::{
    Page, message_page, message_with_sign_in, restore_url, several_accounts, too_many,
    until_window_end,
};
use crate::{SuccessDeps, words};

/// How long after a refund (or other revocation) the portal still opens, for invoices and
/// the refund itself.
pub const REVOKED_BILLING_SECONDS: i64 = 30 * 86_400;
/// Portal sessions one cookie subject may open an hour (cached links do not count).
pub const PORTALS_PER_HOUR_PER_SUBJECT: i64 = 5;
/// How long a portal link is reused: Dodo keeps a portal session valid 24 hours; an hour's
/// margin.
pub const PORTAL_LINK_SECONDS: i64 = 23 * 3600;

/// Whether the email's grants open the portal at `now`: one gives access, or one was revoked
/// within [`REVOKED_BILLING_SECONDS`].
pub fn opens_billing(entitlement: &Entitlement, now: i64) -> bool {
    entitlement.grants.values().any(|grant| {
        grant.gives_access(now)
            || grant
                .revoked_at
                .is_some_and(|at| now - at <= REVOKED_BILLING_SECONDS)
    })
}

/// Handles `/upgrade/billing`.
pub async fn handle(deps: &SuccessDeps, request: Request, now: i64) -> Response<Body> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::MethodNotAllowed("GET, HEAD").into_response();
    }
    let (valid, _) = presented_tokens(&request, &deps.cookies, now);
    if valid.is_empty() {
        return sign_in_first(deps);
    }
    if llmxt_http::several_emails(&valid) {
        return several_accounts(deps, "billing");
    }
    // Only an account cookie proves the mailbox, and so the portal of its email.
    let Some(email) = valid
        .iter()
        .find(|presented| presented.token.claims.grants.is_none())
        .and_then(|presented| Email::parse(&presented.token.claims.email).ok())
    else {
        tracing::info!(outcome = "needs_sign_in", "billing");
        return message_with_sign_in(
            deps,
            StatusCode::OK,
            words::BILLING_SIGN_IN_TITLE,
            words::BILLING_PURCHASE_ONLY_TEXT,
        );
    };
    // A link checker or prefetch must not open portal sessions.
    if llmxt_http::is_prefetch(&request) {
        return Page::new(words::BILLING_TITLE)
            .text(words::BILLING_OPENING)
            .respond(deps, StatusCode::OK);
    }
    let Some(api) = &deps.dodo else {
        return Page::new(words::BILLING_UNAVAILABLE_TITLE)
            .text(words::BILLING_UNAVAILABLE_TEXT)
            .support(&deps.shell, words::BILLING_UNAVAILABLE_SUPPORT)
            .respond(deps, StatusCode::SERVICE_UNAVAILABLE);
    };
    let entitlement = match deps.store.get_entitlement(&email).await {
        Ok(entitlement) => entitlement,
        Err(error) => {
            tracing::error!(email = %email, error = %error, "billing: could not read the entitlement");
            return ApiError::Unavailable.into_response();
        }
    };
    if !entitlement.as_ref().is_some_and(|e| opens_billing(e, now)) {
        tracing::info!(email = %email, outcome = "no_current_purchase", "billing");
        return message_page(
            deps,
            StatusCode::OK,
            words::BILLING_NOTHING_TITLE,
            words::BILLING_NOTHING_TEXT,
        );
    }
    let customer_id = entitlement
        .as_ref()
        .and_then(|e| e.customer_id(now, deps.config.plans.ranking()))
        .map(str::to_owned);
    let Some(customer_id) = customer_id else {
        tracing::info!(email = %email, outcome = "no_customer", "billing");
        return message_page(
            deps,
            StatusCode::OK,
            words::BILLING_NO_ACCOUNT_TITLE,
            words::BILLING_NO_ACCOUNT_TEXT,
        );
    };
    if let Some(link) = deps.portal_links.get(&customer_id, now) {
        tracing::info!(email = %email, outcome = "portal", cached = true, "billing");
        return see_other(&link, None);
    }
    let per_subject = count_per_subject_hour(deps, "billing", &email, now).await;
    if per_subject.is_none_or(|count| count > PORTALS_PER_HOUR_PER_SUBJECT) {
        tracing::warn!(email = %email, budget = "portals_per_hour_per_subject", outcome = "over_budget", "billing");
        return busy(deps, until_window_end(now, 3600));
    }
    if !take_api_calls(deps, Pool::Other, "billing", 1, now).await {
        return busy(deps, until_window_end(now, 60));
    }
    match api
        .customer_portal(&customer_id, deps.config.site_url.as_str())
        .await
    {
        Ok(link) if link.starts_with("https://") || link.starts_with("http://") => {
            tracing::info!(email = %email, outcome = "portal", cached = false, "billing");
            deps.portal_links
                .put(customer_id, link.clone(), now + PORTAL_LINK_SECONDS, now);
            see_other(&link, None)
        }
        Ok(_) | Err(_) => {
            tracing::error!(email = %email, "billing: Dodo could not open the customer portal");
            message_page(
                deps,
                StatusCode::BAD_GATEWAY,
                words::BILLING_DOWN_TITLE,
                words::BILLING_DOWN_TEXT,
            )
        }
    }
}

/// Over a budget: no portal session was opened; the page and `Retry-After` say when to retry.
fn busy(deps: &SuccessDeps, retry_seconds: i64) -> Response<Body> {
    let page = Page::new(words::BILLING_BUSY_TITLE)
        .text(&words::billing_busy_text(&words::wait(retry_seconds)));
    too_many(deps, page, retry_seconds)
}

/// No valid cookie in this browser: say why billing cannot open here and offer the sign-in
/// link (which sets the cookie), instead of silently landing on the restore form.
fn sign_in_first(deps: &SuccessDeps) -> Response<Body> {
    tracing::info!(outcome = "no_cookie", "billing");
    Page::new(words::BILLING_SIGN_IN_TITLE)
        .text(words::BILLING_SIGNED_OUT_TEXT)
        .primary("sign-in", &restore_url(deps), words::GET_SIGN_IN_LINK)
        .respond(deps, StatusCode::OK)
}
