//! Confirming a purchase through Dodo's API when the buyer is back before the webhook: the
//! answer is applied through the same ledger and policy as a delivery (recorded as coming
//! from the API, its freshness the time of the read), so the webhook that arrives later
//! changes nothing further.

use std::time::Duration;

use llmxt_dodo::dodo_api::{DodoApiError, apply_api_object, payment_status};
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::time::parse_rfc3339_seconds;
use serde_json::Value;

use crate::{SuccessDeps, budget};

/// How long the success page waits for Dodo's API, all calls included.
pub const API_BUDGET: Duration = Duration::from_secs(2);

/// Whether the pending page's visit number `attempt` asks Dodo's API: the first visit and
/// one about half a minute later, not every poll (the store also caps look-ups per id).
pub fn asks_on(attempt: u32) -> bool {
    attempt == 0 || attempt == crate::success::MAX_ATTEMPTS / 2
}

/// What asking the API gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Applied; the claim (if any) is now stored under this payment id.
    Applied(String),
    /// Dodo does not know it, has no final answer yet, or could not be asked in time.
    NoAnswer,
}

/// Asks Dodo about a payment and applies a final answer (succeeded, failed, cancelled).
/// `binding` is the checkout bindings this browser presents.
pub async fn payment(
    deps: &SuccessDeps,
    payment_id: &str,
    binding: &[String],
    now: i64,
) -> Confirmation {
    let Some(api) = &deps.dodo else {
        return Confirmation::NoAnswer;
    };
    if !budget::may_look_up(deps, payment_id, 1, now).await {
        return Confirmation::NoAnswer;
    }
    within_budget(async {
        let object = answer(deps, api.payment(payment_id).await, payment_id, now).await?;
        apply_payment(deps, object, binding, now).await
    })
    .await
}

/// Asks Dodo about a subscription and its first payment, and applies both.
pub async fn subscription(
    deps: &SuccessDeps,
    subscription_id: &str,
    binding: &[String],
    now: i64,
) -> Confirmation {
    let Some(api) = &deps.dodo else {
        return Confirmation::NoAnswer;
    };
    // The subscription, the list of its payments, and the first of them.
    if !budget::may_look_up(deps, subscription_id, 3, now).await {
        return Confirmation::NoAnswer;
    }
    within_budget(async {
        let object = answer(
            deps,
            api.subscription(subscription_id).await,
            subscription_id,
            now,
        )
        .await?;
        apply(
            deps,
            "subscription",
            subscription_id,
            object,
            deps.config.claim_ttl_seconds,
            now,
        )
        .await?;
        let first = answer(
            deps,
            api.first_payment_of(subscription_id).await,
            subscription_id,
            now,
        )
        .await??;
        apply_payment(deps, first, binding, now).await
    })
    .await
}

/// How long a claim opened through the API stays open. A success link is public (it is in
/// the browser's history and the return URL), so confirming an old payment through it must
/// not open a fresh claim: unless the payment's checkout is bound to this browser, the claim
/// closes `CLAIM_TTL_SECONDS` after the payment was created, as it would have after a prompt
/// webhook, and an older payment gets the page with the sign-in link.
pub fn claim_ttl(object: &Value, binding: &[String], ttl: i64, now: i64) -> i64 {
    let bound_here = object
        .pointer("/metadata/checkout_ref")
        .and_then(Value::as_str)
        .is_some_and(|reference| binding.iter().any(|r| r == reference));
    if bound_here {
        return ttl;
    }
    let created_at = object
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_seconds);
    created_at.map_or(0, |created| (created + ttl - now).clamp(0, ttl))
}

async fn within_budget(
    work: impl std::future::Future<Output = Option<Confirmation>>,
) -> Confirmation {
    tokio::time::timeout(API_BUDGET, work)
        .await
        .ok()
        .flatten()
        .unwrap_or(Confirmation::NoAnswer)
}

async fn answer<T>(
    deps: &SuccessDeps,
    result: Result<T, DodoApiError>,
    id: &str,
    now: i64,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(DodoApiError::NotFound) => {
            tracing::info!(id, "Dodo's API does not know this purchase (yet)");
            budget::remember_not_found(deps, id, now).await;
            None
        }
        Err(error) => {
            tracing::warn!(id, error = %error, "Dodo's API could not confirm the purchase");
            None
        }
    }
}

async fn apply_payment(
    deps: &SuccessDeps,
    object: Value,
    binding: &[String],
    now: i64,
) -> Option<Confirmation> {
    let payment_id = object.get("payment_id")?.as_str()?.to_owned();
    if !matches!(
        payment_status(&object).as_str(),
        "succeeded" | "failed" | "cancelled"
    ) {
        return None;
    }
    let ttl = claim_ttl(&object, binding, deps.config.claim_ttl_seconds, now);
    apply(deps, "payment", &payment_id, object, ttl, now).await?;
    Some(Confirmation::Applied(payment_id))
}

async fn apply(
    deps: &SuccessDeps,
    kind: &str,
    id: &str,
    object: Value,
    claim_ttl_seconds: i64,
    now: i64,
) -> Option<()> {
    let settings = PolicySettings {
        plans: &deps.config.plans,
        claim_ttl_seconds,
        grace_seconds: deps.config.grace_seconds,
    };
    let read_id = format!("api:{kind}:{id}:{now}");
    match apply_api_object(&deps.store, settings, kind, object, &read_id, now).await {
        Ok(outcome) => {
            tracing::info!(
                id,
                kind,
                outcome = outcome.as_str(),
                "purchase confirmed through Dodo's API"
            );
            Some(())
        }
        Err(error) => {
            tracing::error!(id, kind, error = %error, "could not store what Dodo's API answered");
            None
        }
    }
}
