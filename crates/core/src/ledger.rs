//! Applying one verified delivery: read what is stored, decide, commit; retry on conflict.

use crate::email::Email;
use crate::events::{DodoEvent, DodoObject};
use crate::policy::{self, Decision, DeliveryContext, PolicySettings, Stored};
use crate::records::{DeliveryRecord, Freshness};
use crate::store::{CommitOutcome, Store, StoreError};

/// How many times a delivery is re-read and re-decided when concurrent writers interfere.
pub const MAX_COMMIT_ATTEMPTS: u32 = 8;

/// What a delivery did, as answered to Dodo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written. `attention` is set when the operator must look (e.g. no buyer email).
    Processed {
        /// Operator attention flag.
        attention: Option<&'static str>,
        /// The buyer concerned, when known (for logs, masked).
        email: Option<Email>,
    },
    /// This `webhook-id` was already applied.
    Duplicate,
    /// Not an object the policy acts on, or unusable; nothing written.
    Ignored(&'static str),
    /// A newer snapshot of the object is stored; nothing written.
    Stale,
}

impl Outcome {
    /// The word answered in the JSON body.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Processed { .. } => "processed",
            Self::Duplicate => "duplicate",
            Self::Ignored(_) => "ignored",
            Self::Stale => "stale",
        }
    }
}

/// Identifies the delivery being applied.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `webhook-id`.
    pub webhook_id: &'a str,
    /// `webhook-timestamp`, unix seconds.
    pub webhook_timestamp: i64,
    /// When we received it, unix seconds.
    pub received_at: i64,
}

/// Applies a verified, parsed delivery. Only returns `Ok` once the effect is durable (or was
/// already); any storage failure is an `Err`, and nothing is half-written.
pub async fn apply_delivery(
    store: &Store,
    settings: PolicySettings<'_>,
    delivery: Delivery<'_>,
    event: &DodoEvent,
) -> Result<Outcome, StoreError> {
    if let DodoObject::Unhandled = event.object {
        return Ok(Outcome::Ignored("unhandled event type"));
    }
    if let DodoObject::Unusable(reason) = event.object {
        return Ok(Outcome::Ignored(reason));
    }
    let context = DeliveryContext {
        webhook_id: delivery.webhook_id,
        freshness: Freshness {
            webhook_timestamp: delivery.webhook_timestamp,
            event_timestamp_micros: event.timestamp_micros,
        },
        now: delivery.received_at,
    };
    let record = DeliveryRecord {
        webhook_id: delivery.webhook_id.to_owned(),
        event_type: event.event_type.clone(),
        processed_at: delivery.received_at,
        expires_at: delivery.received_at + DeliveryRecord::RETENTION_SECONDS,
    };
    for attempt in 0..MAX_COMMIT_ATTEMPTS {
        if store.delivery_seen(delivery.webhook_id).await? {
            return Ok(Outcome::Duplicate);
        }
        let stored = read_stored(store, &event.object).await?;
        let decision = match &event.object {
            DodoObject::Payment(p) => policy::decide_payment(settings, context, p, &stored),
            DodoObject::Subscription(s) => {
                policy::decide_subscription(settings, context, s, &stored)
            }
            DodoObject::Refund(r) => policy::decide_refund(context, r, &stored),
            DodoObject::Dispute(d) => policy::decide_dispute(context, d, &stored),
            DodoObject::Unhandled | DodoObject::Unusable(_) => Decision::Apply(Box::default()),
        };
        let mut changes = match decision {
            Decision::Stale => return Ok(Outcome::Stale),
            Decision::Apply(changes) => *changes,
        };
        if let Some(entitlement) = changes.entitlement.as_mut() {
            let by = format!("webhook {} {}", event.event_type, delivery.webhook_id);
            let reason = entitlement.reason.clone();
            entitlement.record(delivery.received_at, by, reason);
        }
        match store.commit(Some(&record), &changes).await? {
            CommitOutcome::Committed => {
                let email = policy::buyer(snapshot_email(&event.object), &stored).cloned();
                return Ok(Outcome::Processed {
                    attention: changes.attention,
                    email,
                });
            }
            CommitOutcome::Duplicate => return Ok(Outcome::Duplicate),
            CommitOutcome::Conflict => back_off(attempt).await,
        }
    }
    Err(StoreError::Contention)
}

/// Waits before re-reading after a conflicting writer: 2, 4, … 256 ms.
pub(crate) async fn back_off(attempt: u32) {
    tokio::time::sleep(std::time::Duration::from_millis(2 << attempt.min(7))).await;
}

fn snapshot_email(object: &DodoObject) -> Option<&Email> {
    match object {
        DodoObject::Payment(p) => p.email.as_ref(),
        DodoObject::Subscription(s) => s.email.as_ref(),
        DodoObject::Refund(r) => r.email.as_ref(),
        DodoObject::Dispute(d) => d.email.as_ref(),
        DodoObject::Unhandled | DodoObject::Unusable(_) => None,
    }
}

async fn read_stored(store: &Store, object: &DodoObject) -> Result<Stored, StoreError> {
    let mut stored = Stored::default();
    let (payment_id, subscription_id) = match object {
        DodoObject::Payment(p) => (Some(p.payment_id.as_str()), p.subscription_id.as_deref()),
        DodoObject::Subscription(s) => (None, Some(s.subscription_id.as_str())),
        DodoObject::Refund(r) => (Some(r.payment_id.as_str()), None),
        DodoObject::Dispute(d) => (Some(d.payment_id.as_str()), None),
        DodoObject::Unhandled | DodoObject::Unusable(_) => (None, None),
    };
    if let Some(payment_id) = payment_id {
        stored.payment = store.get_payment(payment_id).await?;
    }
    let subscription_id = subscription_id.map(str::to_owned).or_else(|| {
        stored
            .payment
            .as_ref()
            .and_then(|p| p.subscription_id.clone())
    });
    if let Some(subscription_id) = subscription_id {
        stored.subscription = store.get_subscription(&subscription_id).await?;
    }
    if let Some(email) = policy::buyer(snapshot_email(object), &stored) {
        stored.entitlement = store.get_entitlement(email).await?;
    }
    Ok(stored)
}
