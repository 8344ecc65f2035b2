//! Applying one verified delivery: read what is stored, decide, commit; retry on conflict.

use crate::store::{CommitOutcome, RecordKeys, Store, StoreError, back_off};
use llmxt_domain::email::Email;
use llmxt_domain::events::{DodoEvent, DodoObject};
use llmxt_domain::policy::{self, Decision, DeliveryContext, PolicySettings, Stored};
use llmxt_domain::privacy::{Tombstone, apply_tombstone};
use llmxt_domain::records::{DeliveryRecord, Freshness};

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

/// Where a snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// A signed webhook delivery.
    #[default]
    Webhook,
    /// A read of Dodo's API (success page confirmation, reconcile).
    Api,
}

impl Origin {
    /// `webhook` or `api`, as recorded in histories.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Api => "api",
        }
    }
}

/// Identifies the delivery being applied.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `webhook-id` (for a read of the API: an id naming that read).
    pub webhook_id: &'a str,
    /// Where the snapshot came from.
    pub origin: Origin,
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
    let origin = delivery.origin;
    for attempt in 0..MAX_COMMIT_ATTEMPTS {
        let read = read_stored(
            store,
            settings,
            delivery.webhook_id,
            &event.object,
            context.now,
        );
        let Some(stored) = read.await? else {
            return Ok(Outcome::Duplicate);
        };
        let decision = match &event.object {
            DodoObject::Payment(p) => policy::decide_payment(settings, context, p, &stored),
            DodoObject::Subscription(s) => {
                policy::decide_subscription(settings, context, s, &stored)
            }
            DodoObject::Refund(r) => policy::decide_refund(settings, context, r, &stored),
            DodoObject::Dispute(d) => policy::decide_dispute(settings, context, d, &stored),
            DodoObject::Unhandled | DodoObject::Unusable(_) => Decision::Apply(Box::default()),
        };
        let mut changes = match decision {
            Decision::Stale => return Ok(Outcome::Stale),
            Decision::Apply(changes) => *changes,
        };
        if let Some(entitlement) = changes.entitlement.as_mut() {
            let by = format!(
                "{} {} {}",
                origin.as_str(),
                event.event_type,
                delivery.webhook_id
            );
            let before = stored
                .entitlement
                .as_ref()
                .filter(|e| e.email == entitlement.email);
            entitlement.record_grant_changes(before, delivery.received_at, &by);
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

/// The stored pack of a credit product's payment (one more read, for credit products only).
async fn read_credit_pack(
    store: &Store,
    settings: PolicySettings<'_>,
    object: &DodoObject,
    stored: &Stored,
    buyer: Option<&Email>,
) -> Result<Option<llmxt_domain::credits::CreditPack>, StoreError> {
    let (payment_id, product_id) = match object {
        DodoObject::Payment(p) => (
            p.payment_id.as_str(),
            p.product_id.as_deref().or(stored
                .payment
                .as_ref()
                .and_then(|s| s.product_id.as_deref())),
        ),
        DodoObject::Refund(r) => (
            r.payment_id.as_str(),
            stored
                .payment
                .as_ref()
                .and_then(|s| s.product_id.as_deref()),
        ),
        DodoObject::Dispute(d) => (
            d.payment_id.as_str(),
            stored
                .payment
                .as_ref()
                .and_then(|s| s.product_id.as_deref()),
        ),
        _ => return Ok(None),
    };
    let (Some(pack), Some(email)) = (settings.plans.credits().pack(product_id), buyer) else {
        return Ok(None);
    };
    store.credit_pack(email, &pack.meter, payment_id).await
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

/// An object created before its address was erased (`llmxt-admin forget`) is applied
/// pseudonymised: no address, no customer id, no entitlement (issue 34, item 6).
fn erase_if_tombstoned(
    stored: &mut Stored,
    object: &DodoObject,
    email: Option<&Email>,
    tombstone: Option<&Tombstone>,
    now: i64,
) {
    if let (Some(email), Some(tombstone)) = (email, tombstone)
        && apply_tombstone(stored, object, email, tombstone, now)
    {
        tracing::info!(
            pseudonym = tombstone.pseudonym,
            "delivery for an erased address: stored under the pseudonym"
        );
    }
}

/// Reads what a delivery needs in one batched request: its deduplication record, the
/// payment, the subscription, the entitlement of the email the delivery names and that
/// email's erasure tombstones. Only when
/// the stored records point elsewhere (a refund whose stored payment has another buyer, or
/// belongs to a subscription the delivery does not name) is a second read needed.
/// `None` when the delivery was already committed.
async fn read_stored(
    store: &Store,
    settings: PolicySettings<'_>,
    webhook_id: &str,
    object: &DodoObject,
    now: i64,
) -> Result<Option<Stored>, StoreError> {
    let (payment_id, subscription_id) = match object {
        DodoObject::Payment(p) => (Some(p.payment_id.as_str()), p.subscription_id.as_deref()),
        DodoObject::Subscription(s) => (None, Some(s.subscription_id.as_str())),
        DodoObject::Refund(r) => (Some(r.payment_id.as_str()), None),
        DodoObject::Dispute(d) => (Some(d.payment_id.as_str()), None),
        DodoObject::Unhandled | DodoObject::Unusable(_) => (None, None),
    };
    let snapshot_email = snapshot_email(object);
    let tombstones = snapshot_email.map_or_else(Vec::new, |e| store.tombstone_keys(e));
    let first = store
        .read_records(RecordKeys {
            webhook_id: Some(webhook_id),
            payment_id,
            subscription_id,
            email: snapshot_email,
            tombstones: &tombstones,
        })
        .await?;
    if first.delivery_seen {
        return Ok(None);
    }
    let mut stored = Stored {
        payment: first.payment,
        subscription: first.subscription,
        entitlement: first.entitlement,
        credit_pack: None,
    };
    erase_if_tombstoned(
        &mut stored,
        object,
        snapshot_email,
        first.tombstone.as_ref(),
        now,
    );
    // A refund or dispute of a subscription's payment needs the subscription too: its
    // payments tell which period was in force when the money went back.
    let needs_subscription = matches!(
        object,
        DodoObject::Payment(_) | DodoObject::Refund(_) | DodoObject::Dispute(_)
    ) && subscription_id.is_none()
        && stored
            .payment
            .as_ref()
            .is_some_and(|p| p.subscription_id.is_some());
    let subscription_id = needs_subscription
        .then(|| {
            stored
                .payment
                .as_ref()
                .and_then(|p| p.subscription_id.clone())
        })
        .flatten();
    let buyer = policy::buyer(snapshot_email, &stored).cloned();
    let needs_entitlement = buyer.is_some() && buyer.as_ref() != snapshot_email;
    if subscription_id.is_some() || needs_entitlement {
        let second = store
            .read_records(RecordKeys {
                subscription_id: subscription_id.as_deref(),
                email: buyer.as_ref().filter(|_| needs_entitlement),
                ..RecordKeys::default()
            })
            .await?;
        if subscription_id.is_some() {
            stored.subscription = second.subscription;
        }
        if needs_entitlement {
            stored.entitlement = second.entitlement;
        }
    }
    stored.credit_pack = read_credit_pack(store, settings, object, &stored, buyer.as_ref()).await?;
    Ok(Some(stored))
}
