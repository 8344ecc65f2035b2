//! Confirming a purchase through Dodo's API when the buyer is back before the webhook: the
//! answer is applied through the same ledger and policy as a delivery (recorded as coming
//! from the API, its freshness the time of the read), so the webhook that arrives later
//! changes nothing further.
//!
//! Budgets are the caller's: this module asks Dodo and applies, and says which ids Dodo did
//! not know so the caller can remember them.

use std::time::Duration;

use llmxt_domain::config::PlanCatalog;
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::time::parse_rfc3339_seconds;
use llmxt_store::store::Store;
use serde_json::Value;

use crate::dodo_api::{DodoApi, DodoApiError, apply_api_object, payment_status};

/// How long a confirmation waits for Dodo's API, all calls included.
pub const API_BUDGET: Duration = Duration::from_secs(2);

/// Charges the calls a confirmation makes after its first, as they are made: `take` answers
/// whether `calls` more may be made now (the caller's budget), and the confirmation stops
/// there when it says no. A subscription Dodo does not know thus costs one call, not three.
pub trait CallBudget {
    /// Takes `calls` from the budget; `false` when over it.
    fn take(&self, calls: i64) -> impl std::future::Future<Output = bool> + Send;
}

/// A budget that always allows (operator tools, tests).
#[derive(Debug, Clone, Copy)]
pub struct Unbudgeted;

impl CallBudget for Unbudgeted {
    fn take(&self, _calls: i64) -> impl std::future::Future<Output = bool> + Send {
        std::future::ready(true)
    }
}

/// Everything one confirmation needs.
#[derive(Debug, Clone, Copy)]
pub struct Confirm<'a> {
    /// Dodo's API.
    pub api: &'a DodoApi,
    /// Where the answer is applied.
    pub store: &'a Store,
    /// Product → plan.
    pub plans: &'a PlanCatalog,
    /// `CLAIM_TTL_SECONDS`.
    pub claim_ttl_seconds: i64,
    /// `SUBSCRIPTION_GRACE_SECONDS`.
    pub grace_seconds: i64,
    /// The checkout bindings this browser presents.
    pub binding: &'a [String],
    /// Unix seconds.
    pub now: i64,
}

/// What asking the API gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Applied; the claim (if any) is now stored under this payment id.
    Applied(String),
    /// Dodo answered 404 for this id.
    NotFound(String),
    /// Dodo has no final answer yet, or could not be asked or stored in time.
    NoAnswer,
}

impl Confirm<'_> {
    /// Asks Dodo about a payment and applies a final answer (succeeded, failed, cancelled).
    /// A subscription's payment brings its subscription's snapshot too (status, period, next
    /// billing date), so the purchase ends as if its webhooks had arrived.
    pub async fn payment(&self, payment_id: &str) -> Confirmation {
        within_budget(async {
            let object = match self.api.payment(payment_id).await {
                Ok(object) => object,
                Err(error) => return Some(unanswered(error, payment_id)),
            };
            let subscription_id = object
                .get("subscription_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let confirmed = self.apply_payment(object).await;
            if let (Some(Confirmation::Applied(_)), Some(subscription_id)) =
                (&confirmed, subscription_id)
            {
                match self.api.subscription(&subscription_id).await {
                    Ok(snapshot) => {
                        self.apply(
                            "subscription",
                            &subscription_id,
                            snapshot,
                            self.claim_ttl_seconds,
                        )
                        .await;
                    }
                    Err(error) => tracing::warn!(
                        subscription_id,
                        error = %error,
                        "payment confirmed, but its subscription could not be read; its webhook or reconcile will bring it"
                    ),
                }
            }
            confirmed
        })
        .await
    }

    /// Asks Dodo about a subscription and its first payment, and applies both. The first call
    /// is the caller's to have charged; each further one (the list of its payments, the first
    /// of them) is taken from `budget` just before it is made.
    pub async fn subscription(
        &self,
        subscription_id: &str,
        budget: &impl CallBudget,
    ) -> Confirmation {
        within_budget(async {
            let object = match self.api.subscription(subscription_id).await {
                Ok(object) => object,
                Err(error) => return Some(unanswered(error, subscription_id)),
            };
            self.apply(
                "subscription",
                subscription_id,
                object,
                self.claim_ttl_seconds,
            )
            .await?;
            if !budget.take(1).await {
                return None;
            }
            let first_id = match self.api.first_payment_id_of(subscription_id).await {
                Ok(Some(first_id)) => first_id,
                Ok(None) => return None,
                Err(error) => return Some(unanswered(error, subscription_id)),
            };
            if !budget.take(1).await {
                return None;
            }
            let first = match self.api.payment(&first_id).await {
                Ok(first) => first,
                Err(error) => return Some(unanswered(error, &first_id)),
            };
            self.apply_payment(first).await
        })
        .await
    }

    async fn apply_payment(&self, object: Value) -> Option<Confirmation> {
        let payment_id = object.get("payment_id")?.as_str()?.to_owned();
        if !matches!(
            payment_status(&object).as_str(),
            "succeeded" | "failed" | "cancelled"
        ) {
            return None;
        }
        let ttl = claim_ttl(&object, self.binding, self.claim_ttl_seconds, self.now);
        self.apply("payment", &payment_id, object, ttl).await?;
        Some(Confirmation::Applied(payment_id))
    }

    async fn apply(
        &self,
        kind: &str,
        id: &str,
        object: Value,
        claim_ttl_seconds: i64,
    ) -> Option<()> {
        let settings = PolicySettings {
            plans: self.plans,
            claim_ttl_seconds,
            grace_seconds: self.grace_seconds,
        };
        let read_id = format!("api:{kind}:{id}:{}", self.now);
        match apply_api_object(self.store, settings, kind, object, &read_id, self.now).await {
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

fn unanswered(error: DodoApiError, id: &str) -> Confirmation {
    match error {
        DodoApiError::NotFound => {
            tracing::info!(id, "Dodo's API does not know this purchase (yet)");
            Confirmation::NotFound(id.to_owned())
        }
        error => {
            tracing::warn!(id, error = %error, "Dodo's API could not confirm the purchase");
            Confirmation::NoAnswer
        }
    }
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
