//! Manual changes by an operator: grant and revoke, each recorded with who, why and when.
//!
//! How they meet later webhooks:
//! - A manual revoke ends every current grant, marks each payment that granted access
//!   (`access_revoked`) and remembers each subscription's current paid period as revoked, so re-deliveries and later snapshots of
//!   the same purchase never grant again. A new payment, or a subscription renewal into a
//!   new period, does grant again (recorded in the history), so a buyer who pays again is
//!   not ignored.
//! - A manual grant is a grant of its own (`manual#<time>`): refunds and webhooks of any
//!   purchase never touch it, and a later revoke ends it like every other current grant.

use crate::store::{CommitOutcome, Store, StoreError, back_off};
use llmxt_domain::email::Email;
use llmxt_domain::policy::Changes;
use llmxt_domain::records::{
    Entitlement, Grant, MANUAL_GRANT_PREFIX, PaymentRecord, PlanRanking, source, status,
};
use llmxt_domain::time::format_rfc3339;

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

/// Adds a manual grant of `plan` to `email` until `until` (unix seconds; `None` for no end),
/// keyed `manual#<time>`. Other grants are left as they are.
pub async fn grant(
    store: &Store,
    ranking: &PlanRanking,
    email: &Email,
    plan: &str,
    until: Option<i64>,
    reason: &str,
    actor: Actor<'_>,
) -> Result<Entitlement, StoreError> {
    for attempt in 0..MAX_ATTEMPTS {
        let current = store.get_entitlement(email).await?;
        let mut next = current
            .clone()
            .unwrap_or_else(|| Entitlement::new(email.clone()));
        let mut key = format!("{MANUAL_GRANT_PREFIX}{}", format_rfc3339(actor.now));
        let mut n = 1;
        while next.grants.contains_key(&key) {
            n += 1;
            key = format!("{MANUAL_GRANT_PREFIX}{}-{n}", format_rfc3339(actor.now));
        }
        next.grants.insert(
            key.clone(),
            Grant {
                key,
                source: source::MANUAL.to_owned(),
                plan: plan.to_owned(),
                status: status::ACTIVE.to_owned(),
                expires_at: until,
                reason: Some(reason.to_owned()),
                changed_by: Some(actor.by.to_owned()),
                updated_at: actor.now,
                ..Grant::default()
            },
        );
        if let Some(committed) = commit(store, ranking, current.as_ref(), next, actor).await? {
            return Ok(committed);
        }
        back_off(attempt).await;
    }
    Err(StoreError::Contention)
}

/// Ends every current grant of `email`, and the purchases behind them: each granting payment
/// is marked `access_revoked` and each subscription grant remembers the paid period it
/// revoked, so redeliveries and later snapshots of the same purchase never grant again.
pub async fn revoke(
    store: &Store,
    ranking: &PlanRanking,
    email: &Email,
    reason: &str,
    actor: Actor<'_>,
) -> Result<Entitlement, StoreError> {
    for attempt in 0..MAX_ATTEMPTS {
        let Some(current) = store.get_entitlement(email).await? else {
            return Err(StoreError::NotFound(format!(
                "no entitlement for {}",
                email.masked()
            )));
        };
        let mut next = current.clone();
        let mut payments = Vec::new();
        for grant in next.grants.values_mut() {
            if grant.status == status::REVOKED || grant.status == status::EXPIRED {
                continue;
            }
            if let Some(payment_id) = &grant.payment_id
                && let Some(mut payment) = store.get_payment(payment_id).await?
                && payment.access_revoked.is_none()
            {
                payment.access_revoked = Some(format!("manual: {reason}"));
                payment.updated_at = actor.now;
                payments.push(payment);
            }
            if grant.source == source::SUBSCRIPTION {
                let period_end = grant.period_end.or(grant.expires_at).unwrap_or(actor.now);
                grant.revoked_period_end =
                    Some(period_end.max(grant.revoked_period_end.unwrap_or(i64::MIN)));
            }
            grant.status = status::REVOKED.to_owned();
            grant.revoked_at = Some(actor.now);
            grant.reason = Some(reason.to_owned());
            grant.changed_by = Some(actor.by.to_owned());
            grant.updated_at = actor.now;
        }
        // One transaction per attempt; the payments ride along with the entitlement.
        let committed = commit_with(store, ranking, Some(&current), next, payments, actor).await?;
        if let Some(committed) = committed {
            return Ok(committed);
        }
        back_off(attempt).await;
    }
    Err(StoreError::Contention)
}

async fn commit(
    store: &Store,
    ranking: &PlanRanking,
    before: Option<&Entitlement>,
    next: Entitlement,
    actor: Actor<'_>,
) -> Result<Option<Entitlement>, StoreError> {
    commit_with(store, ranking, before, next, Vec::new(), actor).await
}

/// Summarises `next`, records its changed grants and writes it with `payments` in one
/// transaction; `None` when a concurrent writer got there first.
async fn commit_with(
    store: &Store,
    ranking: &PlanRanking,
    before: Option<&Entitlement>,
    mut next: Entitlement,
    payments: Vec<PaymentRecord>,
    actor: Actor<'_>,
) -> Result<Option<Entitlement>, StoreError> {
    next.summarise(actor.now, ranking);
    next.updated_at = actor.now;
    next.record_grant_changes(before, actor.now, actor.by);
    let mut items = vec![Changes {
        entitlement: Some(next.clone()),
        ..Changes::default()
    }];
    items.extend(payments.into_iter().map(|payment| Changes {
        payment: Some(payment),
        ..Changes::default()
    }));
    if store.commit_all(&items).await? == CommitOutcome::Committed {
        next.version += 1;
        return Ok(Some(next));
    }
    Ok(None)
}
