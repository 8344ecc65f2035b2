//! The event policy: given a Dodo snapshot and what is stored, what changes.
//!
//! Pure functions, no I/O. The caller reads the records, asks for a [`Decision`], and writes
//! the changed records in one transaction guarded by their versions.
//!
//! | delivery | payments table | entitlement |
//! |---|---|---|
//! | payment `succeeded` | upsert, open a one-time claim | active, plan from the product |
//! | payment failed / cancelled / processing | upsert status | unchanged |
//! | full refund succeeded (event or `refunds` in a snapshot) | mark refunded | revoke what that payment granted |
//! | dispute lost / accepted | mark disputed | revoke what that payment granted |
//! | subscription `active` | — | active until `next_billing_date` + grace |
//! | subscription `on_hold` | — | active until `next_billing_date` + grace |
//! | subscription `cancelled` | — | cancelled, access until `next_billing_date` |
//! | subscription `expired` / `failed` | — | expired, no access |

use crate::config::PlanCatalog;
use crate::email::Email;
use crate::events::{DisputeSnapshot, PaymentSnapshot, RefundSnapshot, SubscriptionSnapshot};
use crate::records::{Entitlement, Freshness, PaymentRecord, SubscriptionRecord, source, status};

/// Access granted by a subscription's payment before the subscription's own event says
/// how long the period is (the subscription event, sent at the same time, replaces it).
pub const PROVISIONAL_SUBSCRIPTION_SECONDS: i64 = 31 * 86_400;

/// Attention flag for a delivery that names no buyer.
pub const MISSING_EMAIL: &str = "missing_email";

/// Settings the policy needs.
#[derive(Debug, Clone, Copy)]
pub struct PolicySettings<'a> {
    /// Product → plan.
    pub plans: &'a PlanCatalog,
    /// How long a claim stays open.
    pub claim_ttl_seconds: i64,
    /// Access kept past a subscription's paid period.
    pub grace_seconds: i64,
}

/// The delivery being applied.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryContext<'a> {
    /// `webhook-id`.
    pub webhook_id: &'a str,
    /// Its place in the object's history.
    pub freshness: Freshness,
    /// When we received it (unix seconds).
    pub now: i64,
}

/// What is stored before the delivery is applied.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The payment the delivery is about (or whose refund/dispute it is).
    pub payment: Option<PaymentRecord>,
    /// The subscription concerned.
    pub subscription: Option<SubscriptionRecord>,
    /// The buyer's entitlement.
    pub entitlement: Option<Entitlement>,
}

/// Records to write; `None` means unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New payment state.
    pub payment: Option<PaymentRecord>,
    /// New subscription state.
    pub subscription: Option<SubscriptionRecord>,
    /// New entitlement state.
    pub entitlement: Option<Entitlement>,
    /// Something the operator must look at (e.g. [`MISSING_EMAIL`]).
    pub attention: Option<&'static str>,
}

/// The outcome of applying a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A newer snapshot of the object is already stored; nothing changes.
    Stale,
    /// Write these changes.
    Apply(Box<Changes>),
}

/// The buyer to whom a delivery's entitlement change applies.
pub fn buyer<'a>(snapshot_email: Option<&'a Email>, stored: &'a Stored) -> Option<&'a Email> {
    snapshot_email
        .or_else(|| stored.payment.as_ref().and_then(|p| p.email.as_ref()))
        .or_else(|| stored.subscription.as_ref().and_then(|s| s.email.as_ref()))
}

/// Applies a payment snapshot.
pub fn decide_payment(
    settings: PolicySettings<'_>,
    delivery: DeliveryContext<'_>,
    snapshot: &PaymentSnapshot,
    stored: &Stored,
) -> Decision {
    if is_stale(
        stored.payment.as_ref().and_then(|p| p.freshness),
        delivery.freshness,
    ) {
        return Decision::Stale;
    }
    // A payment that reached a final status never goes back to an in-between one: such a
    // snapshot was taken earlier, whatever its delivery's timestamp (a retried delivery of an
    // old event can carry a new one).
    let regresses = stored.payment.as_ref().is_some_and(|p| {
        is_final_payment_status(&p.status) && !is_final_payment_status(&snapshot.status)
    });
    if regresses {
        return Decision::Stale;
    }
    let now = delivery.now;
    let mut payment = stored
        .payment
        .clone()
        .unwrap_or_else(|| new_payment(&snapshot.payment_id, now));
    payment.status = snapshot.status.clone();
    payment.email = snapshot.email.clone().or(payment.email);
    payment.product_id = snapshot.product_id.clone().or(payment.product_id);
    payment.plan = Some(
        settings
            .plans
            .plan_for(payment.product_id.as_deref())
            .to_owned(),
    );
    payment.subscription_id = snapshot.subscription_id.clone().or(payment.subscription_id);
    payment.total_amount = snapshot.total_amount.or(payment.total_amount);
    payment.currency = snapshot.currency.clone().or(payment.currency);
    if let Some(created_at) = snapshot.created_at {
        payment.created_at = created_at;
    }
    payment.freshness = Some(delivery.freshness);
    touch_payment(&mut payment, delivery);
    if snapshot.fully_refunded {
        payment.refund_status = Some("refunded".to_owned());
        payment
            .access_revoked
            .get_or_insert_with(|| "refunded".to_owned());
    }
    if snapshot.dispute_lost {
        payment.dispute_status = Some("dispute_lost".to_owned());
        payment
            .access_revoked
            .get_or_insert_with(|| "dispute_lost".to_owned());
    }

    let mut changes = Changes::default();
    let email = payment.email.clone();
    payment.attention = match (&email, snapshot.succeeded()) {
        (None, true) => Some(MISSING_EMAIL.to_owned()),
        _ => None,
    };
    changes.attention = payment.attention.as_ref().map(|_| MISSING_EMAIL);

    if payment.access_revoked.is_some() {
        revoke_granted_by(&payment, stored, delivery, &mut changes);
    } else if let (Some(email), true) = (email, snapshot.succeeded()) {
        if payment.claim_expires_at.is_none() {
            payment.claim_expires_at = Some(now + settings.claim_ttl_seconds);
            if let Some(subscription_id) = &payment.subscription_id {
                let mut subscription = stored
                    .subscription
                    .clone()
                    .unwrap_or_else(|| new_subscription(subscription_id, now));
                subscription.claim_payment_id = Some(payment.payment_id.clone());
                subscription.email = subscription.email.or_else(|| Some(email.clone()));
                subscription.updated_at = now;
                changes.subscription = Some(subscription);
            }
        }
        changes.entitlement = grant_from_payment(&payment, &email, stored, delivery);
    }
    changes.payment = Some(payment);
    Decision::Apply(Box::new(changes))
}

fn grant_from_payment(
    payment: &PaymentRecord,
    email: &Email,
    stored: &Stored,
    delivery: DeliveryContext<'_>,
) -> Option<Entitlement> {
    let now = delivery.now;
    let current = stored.entitlement.as_ref().filter(|e| &e.email == email);
    let plan = payment.plan.clone().unwrap_or_default();
    let mut granted = current
        .cloned()
        .unwrap_or_else(|| Entitlement::new(email.clone()));
    match &payment.subscription_id {
        Some(subscription_id) => {
            let owned_by_subscription = current.is_some_and(|e| {
                e.source == source::SUBSCRIPTION
                    && e.subscription_id.as_ref() == Some(subscription_id)
            });
            let provisional_end = now + PROVISIONAL_SUBSCRIPTION_SECONDS;
            let already_covered = current.is_some_and(|e| {
                e.is_pro(now) && e.expires_at.is_none_or(|end| end >= provisional_end)
            });
            if owned_by_subscription || already_covered {
                return None;
            }
            granted.source = source::SUBSCRIPTION.to_owned();
            granted.subscription_id = Some(subscription_id.clone());
            granted.expires_at = Some(provisional_end);
        }
        None => {
            granted.source = source::PAYMENT.to_owned();
            granted.subscription_id = None;
            granted.expires_at = None;
        }
    }
    granted.status = status::ACTIVE.to_owned();
    granted.plan = plan;
    granted.payment_id = Some(payment.payment_id.clone());
    granted.product_id = payment.product_id.clone();
    granted.reason = None;
    granted.changed_by = None;
    granted.updated_at = now;
    Some(granted)
}

/// Applies a refund. Only a succeeded refund of the whole payment changes anything.
pub fn decide_refund(
    delivery: DeliveryContext<'_>,
    snapshot: &RefundSnapshot,
    stored: &Stored,
) -> Decision {
    if !snapshot.is_full_and_succeeded() {
        return Decision::Apply(Box::default());
    }
    let mut payment = stored
        .payment
        .clone()
        .unwrap_or_else(|| new_payment(&snapshot.payment_id, delivery.now));
    payment.email = payment.email.or_else(|| snapshot.email.clone());
    payment.refund_status = Some("refunded".to_owned());
    payment.refund_id = Some(snapshot.refund_id.clone());
    payment
        .access_revoked
        .get_or_insert_with(|| "refunded".to_owned());
    touch_payment(&mut payment, delivery);
    let mut changes = Changes::default();
    revoke_granted_by(&payment, stored, delivery, &mut changes);
    changes.payment = Some(payment);
    Decision::Apply(Box::new(changes))
}

/// Applies a dispute. A lost or accepted dispute revokes; others are recorded.
pub fn decide_dispute(
    delivery: DeliveryContext<'_>,
    snapshot: &DisputeSnapshot,
    stored: &Stored,
) -> Decision {
    let mut payment = stored
        .payment
        .clone()
        .unwrap_or_else(|| new_payment(&snapshot.payment_id, delivery.now));
    payment.email = payment.email.or_else(|| snapshot.email.clone());
    let already_lost = payment.access_revoked.as_deref() == Some("dispute_lost");
    let fresher = !is_stale(payment.dispute_freshness, delivery.freshness);
    if snapshot.is_lost() || (fresher && !already_lost) {
        payment.dispute_status = Some(snapshot.dispute_status.clone());
        payment.dispute_freshness = Some(
            delivery
                .freshness
                .max(payment.dispute_freshness.unwrap_or_default()),
        );
    }
    let mut changes = Changes::default();
    if snapshot.is_lost() {
        payment
            .access_revoked
            .get_or_insert_with(|| "dispute_lost".to_owned());
        revoke_granted_by(&payment, stored, delivery, &mut changes);
    }
    touch_payment(&mut payment, delivery);
    changes.payment = Some(payment);
    Decision::Apply(Box::new(changes))
}

/// Revokes the entitlement when this payment (or its subscription) granted it, and stops the
/// subscription from granting the revoked period again.
fn revoke_granted_by(
    payment: &PaymentRecord,
    stored: &Stored,
    delivery: DeliveryContext<'_>,
    changes: &mut Changes,
) {
    let reason = payment
        .access_revoked
        .clone()
        .unwrap_or_else(|| "revoked".to_owned());
    if let Some(subscription_id) = &payment.subscription_id {
        let mut subscription = changes
            .subscription
            .clone()
            .or_else(|| stored.subscription.clone())
            .unwrap_or_else(|| new_subscription(subscription_id, delivery.now));
        let period_end = subscription.next_billing_date.unwrap_or(delivery.now);
        subscription.revoked_period_end =
            Some(period_end.max(subscription.revoked_period_end.unwrap_or(i64::MIN)));
        subscription.updated_at = delivery.now;
        changes.subscription = Some(subscription);
    }
    let Some(current) = &stored.entitlement else {
        return;
    };
    let granted_by_payment = current.payment_id.as_ref() == Some(&payment.payment_id);
    let granted_by_subscription = payment.subscription_id.is_some()
        && current.source == source::SUBSCRIPTION
        && current.subscription_id == payment.subscription_id;
    let belongs_to_buyer = payment
        .email
        .as_ref()
        .is_none_or(|email| email == &current.email);
    if (granted_by_payment || granted_by_subscription)
        && belongs_to_buyer
        && current.status != status::REVOKED
    {
        let mut revoked = current.clone();
        revoked.status = status::REVOKED.to_owned();
        revoked.reason = Some(reason);
        revoked.updated_at = delivery.now;
        changes.entitlement = Some(revoked);
    }
}

/// Applies a subscription snapshot.
pub fn decide_subscription(
    settings: PolicySettings<'_>,
    delivery: DeliveryContext<'_>,
    snapshot: &SubscriptionSnapshot,
    stored: &Stored,
) -> Decision {
    if is_stale(
        stored.subscription.as_ref().and_then(|s| s.freshness),
        delivery.freshness,
    ) {
        return Decision::Stale;
    }
    // Snapshots taken earlier, whatever their delivery's timestamp: one from before the
    // paid period moved on, or anything after the subscription ended for good.
    let taken_earlier = stored.subscription.as_ref().is_some_and(|s| {
        let period_moved_on = matches!(
            (s.next_billing_date, snapshot.next_billing_date),
            (Some(stored_end), Some(snapshot_end)) if snapshot_end < stored_end
        );
        let ended =
            matches!(s.status.as_str(), "expired" | "failed") && s.status != snapshot.status;
        period_moved_on || ended
    });
    if taken_earlier {
        return Decision::Stale;
    }
    let now = delivery.now;
    let mut subscription = stored
        .subscription
        .clone()
        .unwrap_or_else(|| new_subscription(&snapshot.subscription_id, now));
    subscription.status = snapshot.status.clone();
    subscription.email = snapshot.email.clone().or(subscription.email);
    subscription.product_id = snapshot.product_id.clone().or(subscription.product_id);
    subscription.next_billing_date = snapshot
        .next_billing_date
        .or(subscription.next_billing_date);
    subscription.freshness = Some(delivery.freshness);
    subscription.updated_at = now;

    let mut changes = Changes::default();
    let paid_until = subscription.next_billing_date;
    let with_grace = paid_until
        .unwrap_or(now + PROVISIONAL_SUBSCRIPTION_SECONDS)
        .saturating_add(settings.grace_seconds);
    let target: Option<(&str, Option<i64>, Option<&str>)> = match snapshot.status.as_str() {
        "active" => Some((status::ACTIVE, Some(with_grace), None)),
        "on_hold" => Some((status::ACTIVE, Some(with_grace), Some("on_hold"))),
        "cancelled" => Some((
            status::CANCELLED,
            Some(paid_until.or(snapshot.expires_at).unwrap_or(now)),
            Some("cancelled"),
        )),
        "expired" | "failed" => Some((
            status::EXPIRED,
            Some(snapshot.expires_at.unwrap_or(now).min(now)),
            Some(snapshot.status.as_str()),
        )),
        _ => None,
    };

    match (subscription.email.clone(), target) {
        (None, Some(_)) => changes.attention = Some(MISSING_EMAIL),
        (Some(email), Some((new_status, expires_at, reason))) => {
            let current = stored.entitlement.as_ref().filter(|e| e.email == email);
            let mut next = current.cloned().unwrap_or_else(|| Entitlement::new(email));
            next.status = new_status.to_owned();
            next.expires_at = expires_at;
            next.reason = reason.map(str::to_owned);
            next.source = source::SUBSCRIPTION.to_owned();
            next.subscription_id = Some(subscription.subscription_id.clone());
            next.product_id = subscription.product_id.clone();
            next.plan = settings
                .plans
                .plan_for(subscription.product_id.as_deref())
                .to_owned();
            next.changed_by = None;
            next.updated_at = now;
            if current
                .is_none_or(|c| c.payment_id.is_some() && c.subscription_id != next.subscription_id)
            {
                next.payment_id = subscription.claim_payment_id.clone();
            }
            let owned = current.is_some_and(|c| {
                c.source == source::SUBSCRIPTION && c.subscription_id == next.subscription_id
            });
            let better_than_current = current.is_none_or(|c| {
                !c.is_pro(now)
                    || c.expires_at
                        .is_some_and(|end| next.expires_at.is_some_and(|n| n > end))
            });
            // After a refund or lost dispute, only a newly paid period grants again.
            let period_was_revoked = subscription
                .revoked_period_end
                .is_some_and(|revoked_end| paid_until.is_none_or(|end| end <= revoked_end));
            let apply = if next.is_pro(now) {
                !period_was_revoked && (owned || better_than_current)
            } else {
                owned || current.is_none()
            };
            if apply {
                changes.entitlement = Some(next);
            }
        }
        (_, None) => {}
    }
    changes.subscription = Some(subscription);
    Decision::Apply(Box::new(changes))
}

/// `succeeded`, `failed` and `cancelled` are where a payment ends.
fn is_final_payment_status(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled")
}

fn is_stale(stored: Option<Freshness>, incoming: Freshness) -> bool {
    stored.is_some_and(|stored| stored > incoming)
}

fn new_payment(payment_id: &str, now: i64) -> PaymentRecord {
    PaymentRecord {
        payment_id: payment_id.to_owned(),
        status: "unknown".to_owned(),
        created_at: now,
        ..PaymentRecord::default()
    }
}

fn new_subscription(subscription_id: &str, now: i64) -> SubscriptionRecord {
    SubscriptionRecord {
        subscription_id: subscription_id.to_owned(),
        status: "unknown".to_owned(),
        updated_at: now,
        ..SubscriptionRecord::default()
    }
}

fn touch_payment(payment: &mut PaymentRecord, delivery: DeliveryContext<'_>) {
    payment.updated_at = delivery.now;
    payment.last_webhook_id = Some(delivery.webhook_id.to_owned());
}
