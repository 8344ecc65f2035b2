//! `GET /upgrade/success`: where Dodo sends the buyer after checkout. The query only says
//! which purchase to look at; access comes from the stored, verified payment, whose one-time
//! claim is redeemed atomically before the cookie is set. When nothing is stored yet and
//! Dodo's API is configured, the purchase is confirmed through the API first.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, Grant, MANUAL_GRANT_PREFIX, source, status};
use llmxt_domain::token::Session;
use llmxt_http::{
    ApiError, json_response, presented_tokens, query_param, redirect, wants_json, with_cookie,
};
use llmxt_store::store::{ClaimOutcome, StoreError};
use serde_json::json;

use llmxt_dodo::confirm::{Confirm, Confirmation};

use crate::pages::{Page, message_with_sign_in, sign_in_page};
use crate::{SuccessDeps, budget, words};

/// Seconds between the pending page's automatic retries.
pub const RETRY_SECONDS: u32 = 2;
/// Retries before the pending page stops and explains (about a minute).
pub const MAX_ATTEMPTS: u32 = 30;
/// Email used by dev mode when the link names none.
pub const DEV_MODE_EMAIL: &str = "dev@example.com";

/// Which purchase the buyer came back from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reference {
    Payment(String),
    Subscription(String),
}

impl Reference {
    fn query(&self) -> String {
        match self {
            Self::Payment(id) => format!("payment_id={id}"),
            Self::Subscription(id) => format!("subscription_id={id}"),
        }
    }
}

/// Dodo ids are short ASCII tokens (`pay_…`, `sub_…`); anything else is not ours.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What the request says: the purchase, which poll of the pending page this is, whether it
/// is a prefetch, the checkout bindings the browser presents and the status Dodo reported.
#[derive(Debug, Clone)]
struct Visit {
    reference: Reference,
    attempt: u32,
    prefetch: bool,
    binding: Vec<String>,
    reported_status: String,
    client_ip: String,
}

impl Visit {
    fn read(deps: &SuccessDeps, request: &Request) -> Option<Self> {
        let reference = match query_param(request, "payment_id") {
            Some(id) => valid_id(&id).then_some(Reference::Payment(id))?,
            None => query_param(request, "subscription_id")
                .filter(|id| valid_id(id))
                .map(Reference::Subscription)?,
        };
        Some(Self {
            reference,
            attempt: query_param(request, "attempt")
                .and_then(|a| a.parse::<u32>().ok())
                .unwrap_or(0)
                .min(MAX_ATTEMPTS),
            prefetch: llmxt_http::is_prefetch(request),
            binding: crate::checkout::presented_refs(request),
            reported_status: query_param(request, "status").unwrap_or_default(),
            client_ip: crate::client::client_ip(deps, request),
        })
    }
}

/// Whether the pending page's visit number `attempt` asks Dodo's API: the first visit and
/// one about half a minute later, not every poll (the store also caps look-ups per id).
pub fn asks_on(attempt: u32) -> bool {
    attempt == 0 || attempt == MAX_ATTEMPTS / 2
}

/// Why a claim gives no cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unredeemable {
    AlreadyClaimed,
    Renewal,
    Credits,
    OtherBrowser,
    Expired,
    Failed,
}

impl Unredeemable {
    fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyClaimed => "already_claimed",
            Self::Renewal => "renewal",
            Self::Credits => "credits",
            Self::OtherBrowser => "other_browser",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }
}

/// What the visit ends in, decided from the visit and the claim alone.
#[derive(Debug)]
enum Outcome {
    /// A prefetch: the claim was not touched.
    Continue,
    /// The claim was redeemed: a purchase cookie for this grant.
    Cookie {
        email: Email,
        plan: String,
        grant_key: String,
        payment_id: String,
        checkout_ref: Option<String>,
    },
    /// No cookie, and the page says why.
    Unredeemable(Unredeemable),
    /// Not confirmed yet (`503` when the store could not be read).
    Pending(StatusCode),
}

/// Decides the outcome: pure, from what the request said and what redeeming gave (`None`
/// for a prefetch, which does not redeem).
fn decide(
    visit: &Visit,
    claim: Option<Result<ClaimOutcome, StoreError>>,
    default_plan: &str,
) -> Outcome {
    let Some(claim) = claim else {
        return Outcome::Continue;
    };
    match claim {
        Ok(ClaimOutcome::Redeemed(payment)) => match payment.email.clone() {
            Some(email) => Outcome::Cookie {
                email,
                plan: payment
                    .plan
                    .clone()
                    .unwrap_or_else(|| default_plan.to_owned()),
                grant_key: payment.grant_key().to_owned(),
                payment_id: payment.payment_id.clone(),
                checkout_ref: payment.checkout_ref.clone(),
            },
            None => Outcome::Unredeemable(Unredeemable::Failed),
        },
        Ok(ClaimOutcome::AlreadyClaimed) => Outcome::Unredeemable(Unredeemable::AlreadyClaimed),
        Ok(ClaimOutcome::Expired) => Outcome::Unredeemable(Unredeemable::Expired),
        Ok(ClaimOutcome::Failed) => Outcome::Unredeemable(Unredeemable::Failed),
        Ok(ClaimOutcome::BoundElsewhere) => Outcome::Unredeemable(Unredeemable::OtherBrowser),
        Ok(ClaimOutcome::NoClaim) => Outcome::Unredeemable(Unredeemable::Renewal),
        Ok(ClaimOutcome::Credits) => Outcome::Unredeemable(Unredeemable::Credits),
        Ok(ClaimOutcome::Pending | ClaimOutcome::NotStored)
            if matches!(visit.reported_status.as_str(), "failed" | "cancelled") =>
        {
            Outcome::Unredeemable(Unredeemable::Failed)
        }
        Ok(ClaimOutcome::Pending | ClaimOutcome::NotStored) => Outcome::Pending(StatusCode::OK),
        Err(error) => {
            tracing::error!(error = %error, reference = visit.reference.query(), "success redirect could not read the payment");
            Outcome::Pending(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

/// Handles `GET /upgrade/success` received at `now` (unix seconds): read the visit, redeem
/// its claim (confirming through Dodo's API when nothing is stored), decide, render.
pub async fn handle(deps: &SuccessDeps, request: Request, now: i64) -> Response<Body> {
    // A POST is the answer to "Switch to the account that just paid?" ([`switch_prompt`]).
    let switching = match *request.method() {
        Method::GET | Method::HEAD => false,
        Method::POST => true,
        _ => return ApiError::MethodNotAllowed("GET, HEAD, POST").into_response(),
    };
    if deps.config.allow_unverified && !switching {
        return dev_mode_grant(deps, &request, now).await;
    }
    let Some(visit) = Visit::read(deps, &request) else {
        tracing::info!(outcome = "invalid_link", "success redirect");
        return invalid_link(deps);
    };
    if switching && !crate::client::same_origin_form(deps, &request) {
        tracing::warn!(
            outcome = "cross_site_refused",
            "success: cross-site switch refused"
        );
        return switch_prompt(deps, &visit, StatusCode::FORBIDDEN);
    }
    if !switching
        && !visit.prefetch
        && another_email_would_be_replaced(deps, &request, &visit, now).await
    {
        tracing::info!(
            outcome = "switch_prompt",
            reference = visit.reference.query(),
            "success redirect"
        );
        return switch_prompt(deps, &visit, StatusCode::OK);
    }
    let claim = if visit.prefetch {
        None
    } else {
        Some(redeem(deps, &visit, now).await)
    };
    let outcome = decide(&visit, claim, deps.config.plans.default_plan());
    if matches!(outcome, Outcome::Unredeemable(Unredeemable::Failed)) {
        let failure = failure_of(deps, &visit).await;
        tracing::info!(
            outcome = failure.as_str(),
            reference = visit.reference.query(),
            "success redirect"
        );
        return failed_page(deps, &failure);
    }
    render(deps, &request, &visit, outcome, now)
}

/// Login CSRF: a cross-site navigation to someone else's success link must not silently
/// replace this browser's sign-in with theirs. Whether this visit would: the browser holds a
/// valid cookie of another email (and none of the purchase's), and the purchase's checkout was
/// not started in this browser (its binding is not among the browser's). Reads the payment
/// only when a cookie is held; a purchase not stored yet (a late or lost webhook) is first
/// confirmed through Dodo's API, as the redemption would, so that path asks too.
async fn another_email_would_be_replaced(
    deps: &SuccessDeps,
    request: &Request,
    visit: &Visit,
    now: i64,
) -> bool {
    let (held, _) = presented_tokens(request, &deps.cookies, now);
    if held.is_empty() {
        return false;
    }
    let payment_id = match &visit.reference {
        Reference::Payment(id) => Some(id.clone()),
        Reference::Subscription(id) => match deps.store.claim_payment_for_subscription(id).await {
            Ok(Some(payment_id)) => Some(payment_id),
            Ok(None) => confirm_through_api(deps, visit, Lookup::Subscription(id), now).await,
            Err(_) => None,
        },
    };
    let Some(payment_id) = payment_id else {
        return false;
    };
    let payment = match deps.store.get_payment(&payment_id).await {
        Ok(Some(payment)) => payment,
        Ok(None) => {
            let Some(id) =
                confirm_through_api(deps, visit, Lookup::Payment(&payment_id), now).await
            else {
                return false;
            };
            let Ok(Some(payment)) = deps.store.get_payment(&id).await else {
                return false;
            };
            payment
        }
        Err(_) => return false,
    };
    let Some(email) = payment.email.as_ref() else {
        return false;
    };
    let bound_here = payment
        .checkout_ref
        .as_ref()
        .is_some_and(|reference| visit.binding.contains(reference));
    let claim_open = payment.claim_redeemed_at.is_none()
        && payment.claim_expires_at.is_some_and(|until| until > now);
    !bound_here
        && claim_open
        && held
            .iter()
            .all(|presented| presented.token.claims.email != email.as_str())
}

/// "Switch to the account that just paid?": the claim stays open until the buyer confirms
/// with a same-origin POST of the same link.
fn switch_prompt(deps: &SuccessDeps, visit: &Visit, status: StatusCode) -> Response<Body> {
    let action = format!("/upgrade/success?{}", visit.reference.query());
    Page::new(words::SWITCH_TITLE)
        .text(words::SWITCH_TEXT)
        .primary_post("switch", &action, &[("switch", "1")], words::SWITCH_BUTTON)
        .link("stay", deps.config.site_url.as_str(), words::STAY_SIGNED_IN)
        .respond(deps, status)
}

/// Why a payment gives no access, and the checkout to try again with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Declined or failed: try again.
    Failed { retry: String },
    /// The buyer or Dodo cancelled before paying: try again.
    Cancelled { retry: String },
    /// Refunded, or reversed by the bank.
    Refunded,
}

impl Failure {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Failed { .. } => "failed",
            Self::Cancelled { .. } => "cancelled",
            Self::Refunded => "refunded",
        }
    }
}

/// Reads the stored payment (when the visit names one) to tell a failed payment from a
/// cancelled or refunded one, and to offer a new checkout of the same product.
async fn failure_of(deps: &SuccessDeps, visit: &Visit) -> Failure {
    let stored = match &visit.reference {
        Reference::Payment(id) => deps.store.get_payment(id).await.unwrap_or_else(|error| {
            tracing::warn!(error = %error, "success redirect: could not read the failed payment");
            None
        }),
        Reference::Subscription(_) => None,
    };
    let refunded = stored
        .as_ref()
        .is_some_and(|p| p.refund_status.is_some() || p.access_revoked.is_some());
    if refunded {
        return Failure::Refunded;
    }
    let retry = match stored
        .as_ref()
        .and_then(|p| p.product_id.as_deref())
        .filter(|product| deps.config.plans.sells(product))
    {
        Some(product) => format!(
            "{}/upgrade/checkout?product={}",
            deps.config.site_url.origin(),
            form_urlencoded::byte_serialize(product.as_bytes()).collect::<String>()
        ),
        None => deps
            .config
            .checkout_url
            .clone()
            .unwrap_or_else(|| deps.config.site_url.as_str().to_owned()),
    };
    let status = stored
        .as_ref()
        .map_or(visit.reported_status.as_str(), |p| p.status.as_str());
    if status == "cancelled" {
        Failure::Cancelled { retry }
    } else {
        Failure::Failed { retry }
    }
}

/// A payment that gives no access: its own words; failed and cancelled lead with Try again,
/// then the sign-in link for a buyer who believes they paid. The footer carries the support
/// line.
fn failed_page(deps: &SuccessDeps, failure: &Failure) -> Response<Body> {
    let (title, text, retry) = match failure {
        Failure::Failed { retry } => (words::FAILED_TITLE, words::FAILED_TEXT, Some(retry)),
        Failure::Cancelled { retry } => {
            (words::CANCELLED_TITLE, words::CANCELLED_TEXT, Some(retry))
        }
        Failure::Refunded => (words::REFUNDED_TITLE, words::REFUNDED_TEXT, None),
    };
    let page = Page::new(title).text(text);
    let page = match retry {
        Some(retry) => page.primary("try-again", retry, words::TRY_AGAIN).link(
            "sign-in",
            &crate::pages::restore_url(deps),
            words::PAID_SIGN_IN,
        ),
        None => page.primary("home", deps.config.site_url.as_str(), words::GO_TO_SITE),
    };
    page.respond(deps, StatusCode::OK)
}

/// Renders the outcome, once.
fn render(
    deps: &SuccessDeps,
    request: &Request,
    visit: &Visit,
    outcome: Outcome,
    now: i64,
) -> Response<Body> {
    let reference = visit.reference.query();
    match outcome {
        Outcome::Continue => {
            tracing::info!(
                outcome = "prefetch",
                reference,
                "success redirect: not redeemed"
            );
            continue_page(deps, &visit.reference)
        }
        Outcome::Cookie {
            email,
            plan,
            grant_key,
            payment_id,
            checkout_ref,
        } => {
            tracing::info!(outcome = "success", payment_id, email = %email, "success redirect");
            let mut response = purchase_cookie(deps, request, &email, &plan, &grant_key, now);
            // The redeemed checkout's binding is spent: the browser forgets it.
            if let Some(cookie) =
                crate::checkout::after_redemption(request, checkout_ref.as_deref())
            {
                llmxt_http::add_set_cookie(response.headers_mut(), &cookie);
            }
            response
        }
        Outcome::Unredeemable(why) => {
            tracing::info!(outcome = why.as_str(), reference, "success redirect");
            unredeemable(deps, why)
        }
        Outcome::Pending(status) => {
            tracing::info!(
                outcome = "pending",
                reference,
                attempt = visit.attempt,
                "success redirect"
            );
            pending(deps, request, &visit.reference, visit.attempt, status)
        }
    }
}

fn invalid_link(deps: &SuccessDeps) -> Response<Body> {
    Page::new(words::INVALID_LINK_TITLE)
        .text(words::INVALID_LINK_TEXT)
        .support(&deps.shell, words::INVALID_LINK_SUPPORT)
        .link("home", deps.config.site_url.as_str(), words::GO_TO_SITE)
        .respond(deps, StatusCode::BAD_REQUEST)
}

/// The page a prefetch gets: it leaves the claim open and, when a browser shows it, goes on
/// to the same link as a real visit.
fn continue_page(deps: &SuccessDeps, reference: &Reference) -> Response<Body> {
    Page::new(words::CONTINUE_TITLE)
        .text(words::CONTINUE_TEXT)
        .retry_after(&format!("?{}", reference.query()), 1, words::CONTINUE)
        .respond(deps, StatusCode::OK)
}

/// Redeems the purchase's claim; when nothing is stored for it, confirms the purchase
/// through Dodo's API first (when this visit may ask).
async fn redeem(deps: &SuccessDeps, visit: &Visit, now: i64) -> Result<ClaimOutcome, StoreError> {
    let binding = visit.binding.as_slice();
    let payment_id = match &visit.reference {
        Reference::Payment(id) => id.clone(),
        Reference::Subscription(id) => match deps.store.claim_payment_for_subscription(id).await? {
            Some(payment_id) => payment_id,
            None => match confirm_through_api(deps, visit, Lookup::Subscription(id), now).await {
                Some(payment_id) => payment_id,
                None => return Ok(ClaimOutcome::NotStored),
            },
        },
    };
    match deps
        .store
        .redeem_claim_bound(&payment_id, now, binding)
        .await?
    {
        ClaimOutcome::NotStored => {
            match confirm_through_api(deps, visit, Lookup::Payment(&payment_id), now).await {
                Some(id) => deps.store.redeem_claim_bound(&id, now, binding).await,
                None => Ok(ClaimOutcome::NotStored),
            }
        }
        outcome => Ok(outcome),
    }
}

/// What to ask Dodo about.
#[derive(Debug, Clone, Copy)]
enum Lookup<'a> {
    Payment(&'a str),
    Subscription(&'a str),
}

/// Asks Dodo's API about a purchase nothing is stored for, when configured, when this visit
/// may ask ([`asks_on`]) and within the look-up budget; the payment id whose claim is now
/// stored, if any. An id Dodo does not know is remembered, so it is not asked again soon.
async fn confirm_through_api(
    deps: &SuccessDeps,
    visit: &Visit,
    lookup: Lookup<'_>,
    now: i64,
) -> Option<String> {
    if !asks_on(visit.attempt) {
        return None;
    }
    let api = deps.dodo.as_deref()?;
    // The first call is charged here; a subscription's two further calls (the list of its
    // payments, the first of them) only when they are made.
    let id = match lookup {
        Lookup::Payment(id) | Lookup::Subscription(id) => id,
    };
    if !budget::may_look_up(deps, id, &visit.client_ip, now).await {
        return None;
    }
    let confirm = Confirm {
        api,
        store: &deps.store,
        plans: &deps.config.plans,
        claim_ttl_seconds: deps.config.claim_ttl_seconds,
        grace_seconds: deps.config.grace_seconds,
        binding: &visit.binding,
        now,
    };
    let confirmation = match lookup {
        Lookup::Payment(id) => confirm.payment(id).await,
        Lookup::Subscription(id) => {
            confirm
                .subscription(id, &budget::LookupBudget { deps, now })
                .await
        }
    };
    match confirmation {
        Confirmation::Applied(payment_id) => Some(payment_id),
        Confirmation::NotFound(id) => {
            budget::remember_not_found(deps, &id, now).await;
            None
        }
        Confirmation::NoAnswer => None,
    }
}

/// A redeemed claim proves this purchase, not the mailbox: the cookie covers the claimed
/// grant only, joined with what a valid cookie of the same email in this browser already
/// covers (an account cookie stays one). The joined session keeps the earliest `auth_time`.
fn purchase_cookie(
    deps: &SuccessDeps,
    request: &Request,
    email: &Email,
    plan: &str,
    grant_key: &str,
    now: i64,
) -> Response<Body> {
    let claimed = Session::purchase(grant_key, now);
    let ranking = deps.config.plans.ranking();
    let (held, _) = presented_tokens(request, &deps.cookies, now);
    let (session, plan) = held
        .iter()
        .filter(|presented| presented.token.claims.email == email.as_str())
        .filter_map(|presented| {
            let session = presented.token.claims.session()?;
            (deps.cookies.session_end(&session) > now)
                .then_some((session, presented.token.claims.plan.as_str()))
        })
        .fold(
            (claimed.clone(), plan),
            |(merged, plan), (held, held_plan)| {
                let session = Session {
                    scope: held.scope.merge(&merged.scope),
                    auth_time: merged.auth_time.min(held.auth_time),
                };
                let plan = if ranking.rank(held_plan) > ranking.rank(plan) {
                    held_plan
                } else {
                    plan
                };
                (session, plan)
            },
        );
    let cookie = deps
        .cookies
        .issue(email, plan, &session, now)
        .or_else(|| deps.cookies.issue(email, plan, &claimed, now));
    with_cookie(
        redirect(&deps.config.site_url.with_upgrade_outcome("success"), None),
        cookie.as_ref(),
    )
}

/// The claim cannot give a cookie: the page says why and offers the email sign-in link (a
/// buyer whose claim was spent by another tab, or who came back too late, restores access
/// that way).
fn unredeemable(deps: &SuccessDeps, why: Unredeemable) -> Response<Body> {
    let (title, text) = match why {
        Unredeemable::AlreadyClaimed => (words::LINK_USED_TITLE, words::LINK_USED_TEXT),
        Unredeemable::Renewal => (words::RENEWED_TITLE, words::RENEWED_TEXT),
        Unredeemable::Credits => (words::CREDITS_ADDED_TITLE, words::CREDITS_ADDED_TEXT),
        Unredeemable::OtherBrowser => (words::OTHER_BROWSER_TITLE, words::OTHER_BROWSER_TEXT),
        Unredeemable::Expired => (words::LINK_EXPIRED_TITLE, words::LINK_EXPIRED_TEXT),
        Unredeemable::Failed => (words::FAILED_TITLE, words::FAILED_TEXT),
    };
    message_with_sign_in(deps, StatusCode::OK, title, text)
}

fn pending(
    deps: &SuccessDeps,
    request: &Request,
    reference: &Reference,
    attempt: u32,
    status: StatusCode,
) -> Response<Body> {
    if wants_json(request) {
        let code = if status == StatusCode::OK {
            StatusCode::ACCEPTED
        } else {
            status
        };
        return json_response(
            code,
            &json!({ "status": "pending", "retry_after": RETRY_SECONDS }),
        );
    }
    if attempt >= MAX_ATTEMPTS {
        return sign_in_page(
            deps,
            words::PENDING_TIMEOUT_TITLE,
            words::PENDING_TIMEOUT_TEXT,
        )
        .support(deps.shell.as_ref(), words::PENDING_TIMEOUT_SUPPORT)
        .respond(deps, StatusCode::OK);
    }
    let next = format!("?{}&attempt={}", reference.query(), attempt + 1);
    Page::new(words::PENDING_TITLE)
        .text(words::PENDING_TEXT)
        .retry_after(&next, RETRY_SECONDS, words::CHECK_AGAIN)
        .respond(deps, status)
}

/// Dev mode (`ENTITLEMENT_ALLOW_UNVERIFIED=true`): grants without any payment, so a site can
/// be developed without Dodo. Warns at every use.
async fn dev_mode_grant(deps: &SuccessDeps, request: &Request, now: i64) -> Response<Body> {
    let email = query_param(request, "email")
        .and_then(|raw| Email::parse(&raw).ok())
        .or_else(|| Email::parse(DEV_MODE_EMAIL).ok());
    let Some(email) = email else {
        return ApiError::Internal.into_response();
    };
    let plan = deps.config.plans.default_plan().to_owned();
    tracing::warn!(email = %email, "ENTITLEMENT_ALLOW_UNVERIFIED=true: granting Pro without a payment (never enable this in production)");
    let expires_at = now + deps.config.cookie.lifetime_seconds;
    let recorded = match deps.store.get_entitlement(&email).await {
        Ok(current) => {
            let mut next = current
                .clone()
                .unwrap_or_else(|| Entitlement::new(email.clone()));
            let key = format!("{MANUAL_GRANT_PREFIX}dev-mode");
            next.grants.insert(
                key.clone(),
                Grant {
                    key,
                    source: source::MANUAL.to_owned(),
                    plan: plan.clone(),
                    status: status::ACTIVE.to_owned(),
                    expires_at: Some(expires_at),
                    reason: Some("dev mode (ENTITLEMENT_ALLOW_UNVERIFIED)".to_owned()),
                    changed_by: Some("success-redirect".to_owned()),
                    updated_at: now,
                    ..Grant::default()
                },
            );
            next.summarise(now, deps.config.plans.ranking());
            next.updated_at = now;
            next.record_grant_changes(current.as_ref(), now, "success-redirect (dev mode)");
            deps.store.put_entitlement(&next).await.map(|_| ())
        }
        Err(error) => Err(error),
    };
    if let Err(error) = recorded {
        tracing::warn!(error = %error, "dev mode could not record the entitlement; the cookie alone is set");
    }
    let cookie = deps
        .cookies
        .issue(&email, &plan, &Session::account(now), now);
    with_cookie(
        redirect(&deps.config.site_url.with_upgrade_outcome("success"), None),
        cookie.as_ref(),
    )
}
