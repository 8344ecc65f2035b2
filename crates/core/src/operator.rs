//! Manual changes by an operator: grant and revoke, each recorded with who, why and when.
//!
//! How they meet later webhooks:
//! - A manual revoke also marks the payment that granted access (`access_revoked`) and the
//!   subscription's current paid period as revoked, so re-deliveries and later snapshots of
//!   the same purchase never grant again. A new payment, or a subscription renewal into a
//!   new period, does grant again (recorded in the history), so a buyer who pays again is
//!   not ignored.
//! - A manual grant stands alone (`source = manual`, no payment): refunds of earlier payments
//!   do not revoke it, and webhooks replace it only when they give more access.

use crate::email::Email;
use crate::ledger::back_off;
use crate::policy::Changes;
use crate::records::{Entitlement, source, status};
use crate::store::{CommitOutcome, Store, StoreError};

/// Attempts before giving up when webhooks keep changing the same records.
const MAX_ATTEMPTS: u32 = 8;

/// Who is making a manual change, and when.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The operator's name.
    pub by: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// Grants `plan` to `email` until `until` (unix seconds; `None` for no end).
pub async fn grant(
    store: &Store,
    email: &Email,
    plan: &str,
    until: Option<i64>,
    reason: &str,
    actor: Actor<'_>,
) -> Result<Entitlement, StoreError> {
    for attempt in 0..MAX_ATTEMPTS {
        let current = store.get_entitlement(email).await?;
        let mut next = current.unwrap_or_else(|| Entitlement::new(email.clone()));
        next.status = status::ACTIVE.to_owned();
        next.plan = plan.to_owned();
        next.expires_at = until;
        next.source = source::MANUAL.to_owned();
        next.payment_id = None;
        next.subscription_id = None;
        next.reason = Some(reason.to_owned());
        next.changed_by = Some(actor.by.to_owned());
        next.updated_at = actor.now;
        next.record(actor.now, actor.by, Some(reason.to_owned()));
        let changes = Changes {
            entitlement: Some(next.clone()),
            ..Changes::default()
        };
        if store.commit(None, &changes).await? == CommitOutcome::Committed {
            next.version += 1;
            return Ok(next);
        }
        back_off(attempt).await;
    }
    Err(StoreError::Contention)
}

/// Revokes `email`'s access, and the purchase that granted it.
pub async fn revoke(
    store: &Store,
    email: &Email,
    reason: &str,
    actor: Actor<'_>,
) -> Result<Entitlement, StoreError> {
    for attempt in 0..MAX_ATTEMPTS {
        let Some(mut next) = store.get_entitlement(email).await? else {
            return Err(StoreError::NotFound(format!(
                "no entitlement for {}",
                email.masked()
            )));
        };
        let mut changes = Changes::default();
        if let Some(payment_id) = &next.payment_id
            && let Some(mut payment) = store.get_payment(payment_id).await?
        {
            payment.access_revoked = Some(format!("manual: {reason}"));
            payment.updated_at = actor.now;
            changes.payment = Some(payment);
        }
        if let Some(subscription_id) = &next.subscription_id
            && let Some(mut subscription) = store.get_subscription(subscription_id).await?
        {
            let period_end = subscription
                .next_billing_date
                .or(next.expires_at)
                .unwrap_or(actor.now);
            subscription.revoked_period_end =
                Some(period_end.max(subscription.revoked_period_end.unwrap_or(i64::MIN)));
            subscription.updated_at = actor.now;
            changes.subscription = Some(subscription);
        }
        next.status = status::REVOKED.to_owned();
        next.reason = Some(reason.to_owned());
        next.changed_by = Some(actor.by.to_owned());
        next.updated_at = actor.now;
        next.record(actor.now, actor.by, Some(reason.to_owned()));
        changes.entitlement = Some(next.clone());
        if store.commit(None, &changes).await? == CommitOutcome::Committed {
            next.version += 1;
            return Ok(next);
        }
        back_off(attempt).await;
    }
    Err(StoreError::Contention)
}
