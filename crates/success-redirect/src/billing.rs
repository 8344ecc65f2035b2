//! `GET /upgrade/billing`: Dodo's customer portal for the buyer named by a valid cookie. The
//! customer id comes from the buyer's stored grants, never from the request. A purchase
//! cookie opens it only when it covers every purchase of the email; otherwise the page offers
//! the sign-in link, whose account cookie opens it.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use llmxt_domain::email::Email;
use llmxt_http::{ApiError, presented_tokens, redirect};

use crate::SuccessDeps;
use crate::pages::{Page, message_page, message_with_sign_in, restore_url};

/// Handles `/upgrade/billing`.
pub async fn handle(deps: &SuccessDeps, request: Request, now: i64) -> Response<Body> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::MethodNotAllowed("GET, HEAD").into_response();
    }
    // An account cookie first: it proves the mailbox, so it may open the email's portal.
    let (mut valid, _) = presented_tokens(&request, deps.cookies.signer(), now);
    valid.sort_by_key(|presented| presented.token.claims.grants.is_some());
    let Some((email, scope)) = valid.first().and_then(|presented| {
        let claims = &presented.token.claims;
        Some((Email::parse(&claims.email).ok()?, claims.scope()))
    }) else {
        return sign_in_first(deps);
    };
    // A link checker or prefetch must not open portal sessions.
    if llmxt_http::is_prefetch(&request) {
        return Page::new("Billing")
            .text("Opening the billing portal…")
            .respond(deps, StatusCode::OK);
    }
    let Some(api) = &deps.dodo else {
        return Page::new("Billing is not available here")
            .text("This site has not connected its billing portal.")
            .support(&deps.shell, "For invoices or to cancel,")
            .respond(deps, StatusCode::SERVICE_UNAVAILABLE);
    };
    let entitlement = match deps.store.get_entitlement(&email).await {
        Ok(entitlement) => entitlement,
        Err(error) => {
            tracing::error!(email = %email, error = %error, "billing: could not read the entitlement");
            return ApiError::Unavailable.into_response();
        }
    };
    // Dodo's portal shows everything of a customer: a purchase cookie opens it only when it
    // covers every purchase of the email.
    let uncovered = entitlement
        .as_ref()
        .is_some_and(|e| e.billed_grant_keys().any(|key| !scope.covers(key)));
    if uncovered {
        tracing::info!(email = %email, outcome = "needs_sign_in", "billing");
        return message_with_sign_in(
            deps,
            StatusCode::OK,
            "Sign in to manage billing",
            "This browser has access through one purchase, but the billing portal shows every \
             purchase and subscription of your email address. To open it, ask for a sign-in \
             link: we send it to the email address you paid with.",
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
            "No billing account",
            "Your access was not bought through our checkout (for example, it was granted by support), so there are no invoices or subscription to manage here.",
        );
    };
    match api
        .customer_portal(&customer_id, deps.config.site_url.as_str())
        .await
    {
        Ok(link) if link.starts_with("https://") || link.starts_with("http://") => {
            tracing::info!(email = %email, outcome = "portal", "billing");
            let mut response = redirect(&link, None);
            *response.status_mut() = StatusCode::SEE_OTHER;
            response
        }
        Ok(_) | Err(_) => {
            tracing::error!(email = %email, "billing: Dodo could not open the customer portal");
            message_page(
                deps,
                StatusCode::BAD_GATEWAY,
                "The billing portal could not be opened",
                "Our payment provider did not answer. Please try again in a moment.",
            )
        }
    }
}

/// No valid cookie in this browser: say why billing cannot open here and offer the sign-in
/// link (which sets the cookie), instead of silently landing on the restore form.
fn sign_in_first(deps: &SuccessDeps) -> Response<Body> {
    tracing::info!(outcome = "no_cookie", "billing");
    Page::new("Sign in to manage billing")
        .text(
            "Invoices and your subscription are managed from a browser where you have access, \
             and this browser is not signed in. Ask for a sign-in link: we send it to the email \
             address you paid with. Then open Manage billing again.",
        )
        .primary("sign-in", &restore_url(deps), "Get a sign-in link by email")
        .respond(deps, StatusCode::OK)
}
