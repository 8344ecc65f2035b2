//! `/upgrade/plan`: a subscriber moves to another plan through Dodo.
//!
//! - `GET ?product=pdt_…[&subscription=sub_…]`: for a buyer whose cookie covers an active
//!   subscription grant, Dodo's change-plan preview (the new plan, what is charged now, from
//!   when) and a **Confirm** button. Several such subscriptions: the buyer chooses one. A
//!   lifetime buyer is offered a new checkout instead. `HEAD` and prefetches ask Dodo nothing.
//! - `POST` (same-origin, form-urlencoded `product`, `subscription`): asks Dodo to change the
//!   plan. A higher plan by `PLAN_RANKING` takes effect immediately, billed per
//!   `PLAN_CHANGE_PRORATION`; a lower one at the next billing date (scheduled). A
//!   `payment_link` in Dodo's answer is followed (it returns here with `changed=1`).
//! - The grant's plan changes only from what Dodo says: its webhook, or the read of the
//!   subscription this page makes after the change (and on `changed=1`), applied through the
//!   ledger. Never from the request alone.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use llmxt_dodo::dodo_api::{CardOnFile, RecurringPrice};
use llmxt_dodo::dodo_api::{DodoApi, apply_api_object, plan_change_request};
use llmxt_domain::email::Email;
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::records::{Entitlement, Grant, source, status};
use llmxt_domain::token::Scope;
use llmxt_http::{ApiError, body_bytes, presented_tokens, query_param, see_other};

use crate::SuccessDeps;
use crate::budget::{Pool, count_per_subject_hour, take_api_calls};
use crate::html::escape_html;
use crate::pages::{
    Page, message_page, message_with_sign_in, several_accounts, too_many, until_window_end,
};
use crate::restore::{field, form_fields};
use crate::words;

/// Largest form body read.
pub const MAX_FORM_BYTES: usize = 4096;

/// Handles `/upgrade/plan` received at `now` (unix seconds).
pub async fn handle(deps: &SuccessDeps, request: Request, now: i64) -> Response<Body> {
    let posted = match *request.method() {
        Method::GET | Method::HEAD => false,
        Method::POST => true,
        _ => return ApiError::MethodNotAllowed("GET, HEAD, POST").into_response(),
    };
    let form = if posted {
        if let Some(refusal) = refuse_cross_site(deps, &request) {
            return refusal;
        }
        form_fields(body_bytes(&request))
    } else {
        Vec::new()
    };
    let param = |name: &str| {
        if posted {
            field(&form, name)
        } else {
            query_param(&request, name)
        }
    };
    // Who is asking comes before what: without a cookie there is nothing to change.
    // An account cookie first: it covers every grant of the email.
    let (mut valid, _) = presented_tokens(&request, &deps.cookies, now);
    if llmxt_http::several_emails(&valid) {
        return several_accounts(deps, "plan");
    }
    valid.sort_by_key(|presented| presented.token.claims.grants.is_some());
    let Some((email, scope)) = valid.first().and_then(|presented| {
        let claims = &presented.token.claims;
        Some((Email::parse(&claims.email).ok()?, claims.scope()))
    }) else {
        tracing::info!(outcome = "no_cookie", "plan change");
        return message_with_sign_in(
            deps,
            StatusCode::OK,
            words::SIGN_IN_TO_CHANGE_TITLE,
            words::SIGN_IN_TO_CHANGE_TEXT,
        );
    };
    let Some(product) = param("product").filter(|p| deps.config.plans.lists(p)) else {
        return message_page(
            deps,
            StatusCode::BAD_REQUEST,
            words::UNKNOWN_PLAN_TITLE,
            words::UNKNOWN_PLAN_TEXT,
        );
    };
    let entitlement = match deps.store.get_entitlement(&email).await {
        Ok(entitlement) => entitlement,
        Err(error) => {
            tracing::error!(email = %email, error = %error, "plan: could not read the entitlement");
            return ApiError::Unavailable.into_response();
        }
    };
    let in_scope: Vec<&Grant> = grants_in_scope(entitlement.as_ref(), &scope).collect();
    let changeable: Vec<&Grant> = in_scope
        .iter()
        .copied()
        .filter(|g| is_changeable(g, now))
        .collect();
    let requested = param("subscription");
    let chosen = match &requested {
        Some(id) => changeable.iter().copied().find(|g| &g.key == id),
        None if changeable.len() == 1 => changeable.first().copied(),
        None if changeable.len() > 1 => return choose_page(deps, &product, &changeable),
        None => None,
    };
    let Some(grant) = chosen else {
        // Naming a subscription this cookie cannot change is refused, whatever else it covers.
        let lifetime = requested.is_none()
            && in_scope
                .iter()
                .any(|g| g.gives_access(now) && g.source != source::SUBSCRIPTION);
        tracing::info!(email = %email, outcome = if lifetime { "lifetime" } else { "not_covered" }, "plan change");
        return if lifetime {
            lifetime_page(deps, &product)
        } else {
            message_with_sign_in(
                deps,
                StatusCode::FORBIDDEN,
                words::NO_SUBSCRIPTION_TITLE,
                words::NO_SUBSCRIPTION_TEXT,
            )
        };
    };
    let Some(api) = deps.dodo.as_deref() else {
        return message_page(
            deps,
            StatusCode::SERVICE_UNAVAILABLE,
            words::PLAN_UNAVAILABLE_TITLE,
            words::PLAN_UNAVAILABLE_TEXT,
        );
    };
    let subscription_id = grant.key.clone();
    let prefetch = llmxt_http::is_prefetch(&request);
    if !posted && query_param(&request, "changed").is_some() {
        if prefetch {
            return Page::new(words::PLAN_CHANGE_TITLE)
                .text(words::PLAN_CHECKING)
                .respond(deps, StatusCode::OK);
        }
        if let Some(busy) = over_budget(deps, &email, 1, now).await {
            return busy;
        }
        read_back(deps, api, &subscription_id, now).await;
        return see_other(
            &deps.config.site_url.with_upgrade_outcome("plan_changed"),
            None,
        );
    }
    if grant.product_id.as_deref() == Some(product.as_str()) {
        return Page::new(words::ON_THIS_PLAN_TITLE)
            .html(&format!(
                "<p>{}</p>",
                words::already_on(&escape_html(&deps.config.plans.display_name(&grant.plan)))
            ))
            .primary("home", deps.config.site_url.as_str(), words::GO_TO_SITE)
            .respond(deps, StatusCode::OK);
    }
    let target_plan = deps.config.plans.plan_for(Some(&product)).to_owned();
    let ranking = deps.config.plans.ranking();
    let downgrade = ranking.rank(&target_plan) < ranking.rank(&grant.plan);
    let effective_at = if downgrade {
        "next_billing_date"
    } else {
        "immediately"
    };
    let return_url = format!(
        "{}/upgrade/plan?product={}&subscription={}&changed=1",
        deps.config.site_url.origin(),
        encode(&product),
        encode(&subscription_id)
    );
    let change = plan_change_request(
        &product,
        &deps.config.plan_change_proration,
        effective_at,
        Some(&return_url),
    );
    if !posted {
        if prefetch {
            return Page::new(words::CHANGE_PLAN_PREFETCH_TITLE)
                .text(words::PLAN_PREPARING)
                .respond(deps, StatusCode::OK);
        }
        let cache_key = format!("{subscription_id}\n{product}");
        if let Some(shown) = deps.previews.get(&cache_key, now) {
            tracing::info!(email = %email, subscription = %subscription_id, downgrade, outcome = "preview", cached = true, "plan change");
            return confirm_page(deps, &product, grant, &target_plan, downgrade, &shown);
        }
        if let Some(busy) = over_budget(deps, &email, 1, now).await {
            return busy;
        }
        return match api.preview_change_plan(&subscription_id, &change).await {
            Ok(preview) => {
                tracing::info!(email = %email, subscription = %subscription_id, downgrade, outcome = "preview", cached = false, "plan change");
                let card = card_on_file(deps, api, &preview, now).await;
                // A scheduled change's preview still describes the current product: the new
                // price is the product's own.
                let new_price = match preview.new_price(&product) {
                    Some(price) => Some(price),
                    None if downgrade => recurring_price(deps, api, &product, now).await,
                    None => None,
                };
                let shown = ShownPreview {
                    preview,
                    card,
                    new_price,
                };
                deps.previews
                    .put(cache_key, shown.clone(), now + PREVIEW_SECONDS, now);
                confirm_page(deps, &product, grant, &target_plan, downgrade, &shown)
            }
            Err(error) => {
                tracing::error!(email = %email, subscription = %subscription_id, error = %error, "plan: Dodo's preview failed");
                provider_error(deps)
            }
        };
    }
    // The change; the read-back that follows it is counted when it is made.
    if let Some(busy) = over_budget(deps, &email, 1, now).await {
        return busy;
    }
    let answer = match api.change_plan(&subscription_id, &change).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::error!(email = %email, subscription = %subscription_id, error = %error, "plan: Dodo refused the change");
            return provider_error(deps);
        }
    };
    if let Some(link) = answer
        .payment_link
        .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
    {
        tracing::info!(email = %email, subscription = %subscription_id, outcome = "payment_link", "plan change");
        return see_other(&link, None);
    }
    tracing::info!(email = %email, subscription = %subscription_id, downgrade, outcome = "requested", "plan change");
    if take_api_calls(deps, Pool::Other, "plan", 1, now).await {
        read_back(deps, api, &subscription_id, now).await;
    }
    let outcome = if downgrade {
        "plan_scheduled"
    } else {
        "plan_changed"
    };
    see_other(&deps.config.site_url.with_upgrade_outcome(outcome), None)
}

/// How long a change-plan preview is reused for the same subscription and product.
pub const PREVIEW_SECONDS: i64 = 60;
/// Requests to Dodo about plan changes one cookie subject may cause an hour (cached previews
/// do not count).
pub const PLAN_CALLS_PER_HOUR_PER_SUBJECT: i64 = 30;

/// Counts a request that is about to make `calls` calls to Dodo, per cookie subject and in
/// the look-up budget; the busy page when over either.
async fn over_budget(
    deps: &SuccessDeps,
    email: &Email,
    calls: i64,
    now: i64,
) -> Option<Response<Body>> {
    let per_subject = count_per_subject_hour(deps, "plan", email, now).await;
    let retry = if per_subject.is_none_or(|count| count > PLAN_CALLS_PER_HOUR_PER_SUBJECT) {
        tracing::warn!(email = %email, budget = "plan_calls_per_hour_per_subject", outcome = "over_budget", "plan change");
        until_window_end(now, 3600)
    } else if !take_api_calls(deps, Pool::Other, "plan", calls, now).await {
        until_window_end(now, 60)
    } else {
        return None;
    };
    let page = Page::new(words::PLAN_BUSY_TITLE).text(&words::plan_busy_text(&words::wait(retry)));
    Some(too_many(deps, page, retry))
}

/// The grants this browser's cookie covers: a purchase cookie's own, an account cookie's all.
fn grants_in_scope<'a>(
    entitlement: Option<&'a Entitlement>,
    scope: &'a Scope,
) -> impl Iterator<Item = &'a Grant> {
    entitlement
        .into_iter()
        .flat_map(|e| e.grants.values())
        .filter(|grant| scope.covers(&grant.key))
}

/// A subscription Dodo lets change plan: in force and `active` (not paused, on hold or
/// cancelled).
fn is_changeable(grant: &Grant, now: i64) -> bool {
    grant.source == source::SUBSCRIPTION
        && grant.status == status::ACTIVE
        && grant.gives_access(now)
        && grant
            .subscription_status
            .as_deref()
            .is_none_or(|s| s == "active")
}

/// Applies Dodo's current subscription through the ledger, so the page that follows shows
/// what Dodo has done; the webhook does the same whenever it lands.
async fn read_back(deps: &SuccessDeps, api: &DodoApi, subscription_id: &str, now: i64) {
    let object = match api.subscription(subscription_id).await {
        Ok(object) => object,
        Err(error) => {
            tracing::warn!(subscription = %subscription_id, error = %error, "plan: could not read the subscription back; the webhook will apply the change");
            return;
        }
    };
    let settings = PolicySettings {
        plans: &deps.config.plans,
        claim_ttl_seconds: deps.config.claim_ttl_seconds,
        grace_seconds: deps.config.grace_seconds,
    };
    let read_id = format!("api:subscription:{subscription_id}:{now}");
    match apply_api_object(&deps.store, settings, "subscription", object, &read_id, now).await {
        Ok(outcome) => {
            tracing::info!(subscription = %subscription_id, outcome = outcome.as_str(), "plan: subscription read back")
        }
        Err(error) => {
            tracing::warn!(subscription = %subscription_id, error = %error, "plan: could not apply the subscription read back")
        }
    }
}

/// POSTs must be form-urlencoded and come from this site.
fn refuse_cross_site(deps: &SuccessDeps, request: &Request) -> Option<Response<Body>> {
    if body_bytes(request).len() > MAX_FORM_BYTES {
        return Some(ApiError::PayloadTooLarge.into_response());
    }
    if crate::client::same_origin_form(deps, request) {
        return None;
    }
    tracing::warn!(
        outcome = "cross_site_refused",
        "plan: cross-site or non-form POST refused"
    );
    Some(message_page(
        deps,
        StatusCode::FORBIDDEN,
        words::PLAN_REFUSED_TITLE,
        words::PLAN_REFUSED_TEXT,
    ))
}

/// What a plan-change page showed, kept for a minute per subscription and product.
#[derive(Debug, Clone)]
pub struct ShownPreview {
    /// Dodo's preview of the change.
    pub preview: llmxt_dodo::dodo_api::PlanChangePreview,
    /// The card on file, when Dodo reported it.
    pub card: Option<CardOnFile>,
    /// What the new plan costs each period, when known.
    pub new_price: Option<RecurringPrice>,
}

/// The product's recurring price, when the call fits the budget and Dodo answers.
async fn recurring_price(
    deps: &SuccessDeps,
    api: &DodoApi,
    product: &str,
    now: i64,
) -> Option<RecurringPrice> {
    if !take_api_calls(deps, Pool::Other, "plan", 1, now).await {
        return None;
    }
    match api.recurring_price(product).await {
        Ok(price) => price,
        Err(error) => {
            tracing::warn!(error = %error, "plan: could not read the new plan's price");
            None
        }
    }
}

/// The card Dodo charges, when it reports one and the call fits the budget (counted like
/// every other call); the page is shown without it otherwise.
async fn card_on_file(
    deps: &SuccessDeps,
    api: &DodoApi,
    preview: &llmxt_dodo::dodo_api::PlanChangePreview,
    now: i64,
) -> Option<CardOnFile> {
    let (customer, method) = (
        preview.customer_id.as_deref()?,
        preview.payment_method_id.as_deref()?,
    );
    if !take_api_calls(deps, Pool::Other, "plan", 1, now).await {
        return None;
    }
    match api.card_on_file(customer, method).await {
        Ok(card) => card,
        Err(error) => {
            tracing::warn!(error = %error, "plan: could not read the card on file");
            None
        }
    }
}

/// The summary a buyer confirms: current → new plan by name, the amount due today, the new
/// recurring price, the card, and a button naming what happens; Cancel goes back to the site.
fn confirm_page(
    deps: &SuccessDeps,
    product: &str,
    grant: &Grant,
    target_plan: &str,
    downgrade: bool,
    shown: &ShownPreview,
) -> Response<Body> {
    let (preview, card) = (&shown.preview, shown.card.as_ref());
    let plans = &deps.config.plans;
    let current = escape_html(&plans.display_name(&grant.plan));
    let new = escape_html(&plans.display_name(target_plan));
    let charged = words::money(preview.charged_now, &preview.currency);
    let scheduled = downgrade.then(|| grant.period_end.or(preview.next_billing_date));
    let mut rows = format!(
        "<dt>{}</dt> <dd id=\"charged-now\">{}</dd> ",
        words::DUE_TODAY,
        escape_html(&charged)
    );
    // The new plan's price, from when it is first charged: the next billing date, which is
    // also when a scheduled downgrade happens.
    if let Some(price) = &shown.new_price {
        let (amount, currency) = (price.amount, price.currency.as_str());
        let period = words::period(&price.interval, price.interval_count);
        let from = scheduled
            .unwrap_or(preview.next_billing_date)
            .map(|at| words::date_html("renews", at));
        rows.push_str(&format!(
            "<dt>{}</dt> <dd id=\"recurring\">{}</dd> ",
            words::THEN,
            words::then_price(
                &escape_html(&words::money(amount, currency)),
                &period,
                from.as_deref()
            )
        ));
    }
    if let Some(card) = card {
        rows.push_str(&format!(
            "<dt>{}</dt> <dd id=\"card\">{}</dd> ",
            words::CARD,
            escape_html(&words::card_line(&card.network, &card.last_four))
        ));
    }
    let (when, button) = match scheduled {
        Some(Some(at)) => (
            words::scheduled_until(Some(&words::date_html("effective", at)), &current),
            words::change_button(None, Some(&llmxt_domain::time::format_date(at))),
        ),
        Some(None) => (
            words::scheduled_until(None, &current),
            words::SWITCH_AT_NEXT_BILLING.to_owned(),
        ),
        None => (
            words::starts_now(&new),
            words::change_button((preview.charged_now > 0).then_some(charged.as_str()), None),
        ),
    };
    Page::new(words::CHANGE_PLAN_TITLE)
        .html(&format!(
            "<p class=\"change\"><strong id=\"current-plan\">{current}</strong> → <strong id=\"new-plan\">{new}</strong></p>\
             <dl class=\"summary\">{rows}</dl><p id=\"when\">{when}</p>"
        ))
        .primary_post(
            "confirm",
            "/upgrade/plan",
            &[("product", product), ("subscription", &grant.key)],
            &button,
        )
        .link("cancel", deps.config.site_url.as_str(), words::CANCEL)
        .respond(deps, StatusCode::OK)
}

fn choose_page(deps: &SuccessDeps, product: &str, grants: &[&Grant]) -> Response<Body> {
    let items: String = grants
        .iter()
        .map(|g| {
            format!(
                "<li><a href=\"/upgrade/plan?product={}&amp;subscription={}\">{}</a></li>",
                escape_html(&encode(product)),
                escape_html(&encode(&g.key)),
                escape_html(&words::subscription_choice(
                    &deps.config.plans.display_name(&g.plan),
                    &g.key
                )),
            )
        })
        .collect();
    Page::new(words::CHOOSE_TITLE)
        .html(&format!(
            "<p>{}</p><ul id=\"subscriptions\">{items}</ul>",
            words::CHOOSE_TEXT
        ))
        .respond(deps, StatusCode::OK)
}

fn lifetime_page(deps: &SuccessDeps, product: &str) -> Response<Body> {
    let checkout = format!("/upgrade/checkout?product={}", encode(product));
    let site = escape_html(deps.config.site_url.as_str());
    let plans = &deps.config.plans;
    let name = plans.display_name(plans.plan_for(Some(product)));
    Page::new(words::LIFETIME_TITLE)
        .html(&format!(
            "<p>{}</p><p><a id=\"checkout\" href=\"{}\">{}</a> · <a href=\"{site}\">{}</a></p>",
            escape_html(&words::lifetime_text(&name)),
            escape_html(&checkout),
            escape_html(&words::buy_plan(&name)),
            words::BACK_TO_SITE,
        ))
        .respond(deps, StatusCode::OK)
}

fn provider_error(deps: &SuccessDeps) -> Response<Body> {
    message_page(
        deps,
        StatusCode::BAD_GATEWAY,
        words::PLAN_DOWN_TITLE,
        words::PLAN_DOWN_TEXT,
    )
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
