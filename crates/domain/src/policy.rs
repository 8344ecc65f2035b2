//! The event policy: given a Dodo snapshot and what is stored, what changes.
//!
//! Pure functions, no I/O. The caller reads the records, asks for a [`Decision`], and writes
//! the changed records in one transaction guarded by their versions.
//!
//! Access lives in *grants* on the buyer's entitlement, one per purchase (keyed by the
//! payment id of a one-time payment, the subscription id of a subscription, or `manual#…`).
//! Each delivery touches only the grant of its own purchase; the entitlement's top-level
//! fields are then recomputed from all grants ([`Entitlement::summarise`]).
//!
//! | delivery | payments table | grant |
//! |---|---|---|
//! | payment `succeeded` (one-time) | upsert, open a one-time claim | the payment's grant: active, no end |
//! | payment `succeeded` (subscription) | upsert; the **first** payment opens the claim | the subscription's grant, created active if absent |
//! | payment failed / cancelled / processing | upsert status | unchanged |
//! | full refund succeeded (event or `refunds` in a snapshot) | mark refunded | revoke the payment's own grant |
//! | dispute lost / accepted | mark disputed | revoke the payment's own grant |
//! | subscription `active` | — | active until `next_billing_date` + grace |
//! | subscription `on_hold` / `past_due` | — | active until `next_billing_date` + grace |
//! | subscription `paused` | — | active until `next_billing_date` (no grace); `unpaused` sends `active` |
//! | subscription `cancelled` | — | cancelled, access until `next_billing_date` |
//! | subscription `active`, `cancel_at_next_billing_date` | — | cancelled, access until `next_billing_date` |
//! | subscription `expired` / `failed` | — | expired, no access |
//! | subscription in another status | recorded | unchanged |
//!
//! Every subscription snapshot that changes the grant (`active`, `renewed`, `updated`,
//! `plan_changed`, …) sets its plan from the snapshot's `product_id`, records Dodo's status
//! (the billing state shown), the trial's end, and the `scheduled_change` (or clears it).
//!
//! The buyer of a refund or dispute is the stored payment's email (the delivery's own email
//! only when no payment is stored); likewise a stored subscription's email wins over a
//! snapshot's.
//!
//! Erased records (`erased_as`, see [`crate::privacy`]) have no buyer: their snapshots update
//! the payment or subscription (status, refund, dispute) and never bring an email back or
//! touch an entitlement; a new payment of an erased subscription is recorded erased too.

use crate::config::PlanCatalog;
use crate::credits::CreditPack;
use crate::email::Email;
use crate::events::{DisputeSnapshot, PaymentSnapshot, RefundSnapshot, SubscriptionSnapshot};
use crate::records::{
    Entitlement, Freshness, Grant, PaymentRecord, PlanRanking, SubscriptionRecord, source, status,
};

/// Access granted by a subscription's payment before the subscription's own event says
/// how long the period is (the subscription event, sent at the same time, replaces it).
pub const PROVISIONAL_SUBSCRIPTION_SECONDS: i64 = 31 * 86_400;

/// How early before the end of its period a subscription's renewal payment may be made.
pub const RENEWAL_WINDOW_SECONDS: i64 = 86_400;

/// Attention flag for a delivery that names no buyer.
pub const MISSING_EMAIL: &str = "missing_email";

/// Attention flag for a delivery whose buyer address is not acceptable (control, zero-width
/// or bidi-override characters, or malformed).
pub const INVALID_EMAIL: &str = "invalid_email";

/// Settings the policy needs.
#[derive(Debug, Clone, Copy)]
pub struct PolicySettings<'a> {
    /// Product → plan, and the order of plans.
    pub plans: &'a PlanCatalog,
    /// How long a claim stays open.
    pub claim_ttl_seconds: i64,
    /// Access kept past a subscription's paid period.
    pub grace_seconds: i64,
}

impl PolicySettings<'_> {
    fn ranking(&self) -> &PlanRanking {
        self.plans.ranking()
    }
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
    /// The credit pack the payment bought, when it is a credit product's and one is stored.
    pub credit_pack: Option<CreditPack>,
}

/// Records to write; `None` means unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New payment state.
    pub payment: Option<PaymentRecord>,
    /// New subscription state.
    pub subscription: Option<SubscriptionRecord>,
    /// New entitlement state (grants changed and summary recomputed).
    pub entitlement: Option<Entitlement>,
    /// Something the operator must look at (e.g. [`MISSING_EMAIL`]).
    pub attention: Option<&'static str>,
    /// A credit pack added or removed.
    pub credits: Option<CreditChange>,
}

/// A change to a buyer's credit packs, written in the same transaction as the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditChange {
    /// Store `pack` (on the condition that no pack of that id is stored). A pack refunded
    /// before its payment was known is stored already removed, so it is never added later.
    Add {
        /// The buyer.
        email: Email,
        /// The meter it tops up.
        meter: String,
        /// The pack.
        pack: CreditPack,
    },
    /// Remove what is left of the stored pack `pack_id` (on the condition that it was not
    /// removed before); what had been used stays recorded.
    Remove {
        /// The buyer.
        email: Email,
        /// The meter.
        meter: String,
        /// The pack (its payment id).
        pack_id: String,
        /// When access to it ended (the refund's or dispute's time).
        at: i64,
        /// `refunded` or `dispute_lost`.
        reason: String,
    },
}

/// The outcome of applying a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A newer snapshot of the object is already stored; nothing changes.
    Stale,
    /// Write these changes.
    Apply(Box<Changes>),
}

/// The buyer a delivery concerns: the stored payment's or subscription's email, else the
/// delivery's own.
pub fn buyer<'a>(snapshot_email: Option<&'a Email>, stored: &'a Stored) -> Option<&'a Email> {
    if erased_as(stored).is_some() {
        return None;
    }
    stored
        .payment
        .as_ref()
        .and_then(|p| p.email.as_ref())
        .or_else(|| stored.subscription.as_ref().and_then(|s| s.email.as_ref()))
        .or(snapshot_email)
}

/// The pseudonym when the records a delivery concerns were erased: its stored payment, or
/// (for a payment not stored yet) its stored subscription.
fn erased_as(stored: &Stored) -> Option<&String> {
    match &stored.payment {
        Some(payment) => payment.erased_as.as_ref(),
        None => stored
            .subscription
            .as_ref()
            .and_then(|s| s.erased_as.as_ref()),
    }
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
    payment.erased_as = erased_as(stored).cloned();
    if payment.erased_as.is_none() {
        payment.email = payment.email.or_else(|| snapshot.email.clone());
    }
    payment.product_id = snapshot.product_id.clone().or(payment.product_id);
    payment.plan = Some(
        settings
            .plans
            .plan_for(payment.product_id.as_deref())
            .to_owned(),
    );
    payment.subscription_id = payment
        .subscription_id
        .or_else(|| snapshot.subscription_id.clone());
    payment.customer_id = snapshot.customer_id.clone().or(payment.customer_id);
    payment.checkout_ref = payment
        .checkout_ref
        .or_else(|| snapshot.checkout_ref.clone());
    if payment.erased_as.is_some() {
        // Nothing that names or finds an erased buyer comes back.
        payment.customer_id = None;
        payment.checkout_ref = None;
    }
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
    let flag = match (&email, snapshot.succeeded(), snapshot.email_invalid) {
        _ if payment.erased_as.is_some() => None,
        (None, true, true) => Some(INVALID_EMAIL),
        (None, true, false) => Some(MISSING_EMAIL),
        _ => None,
    };
    payment.attention = flag.map(str::to_owned);
    changes.attention = flag;

    let credit_product = settings
        .plans
        .credits()
        .sells(payment.product_id.as_deref().unwrap_or_default());
    if credit_product {
        // Credits only: never a plan, whatever DEFAULT_PLAN says.
        payment.plan = None;
    }
    if payment.access_revoked.is_some() {
        let at = *payment.access_revoked_at.get_or_insert(now);
        revoke_own_grant(settings, &payment, stored, delivery, at, &mut changes);
    } else if credit_product {
        if let (Some(email), true) = (&email, snapshot.succeeded()) {
            changes.credits = add_pack(settings, &payment, email, stored, None, now);
        }
    } else if let (Some(email), true) = (email, snapshot.succeeded()) {
        let opens_claim = match &payment.subscription_id {
            None => true,
            // Only the subscription's first payment: renewals never open a claim.
            Some(_) => stored.subscription.as_ref().is_none_or(|s| {
                s.claim_payment_id.is_none()
                    || s.claim_payment_id.as_deref() == Some(&payment.payment_id)
            }),
        };
        if opens_claim && payment.claim_expires_at.is_none() {
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
        let mut entitlement = entitlement_of(stored, &email);
        let key = payment.grant_key().to_owned();
        if let std::collections::btree_map::Entry::Vacant(slot) =
            entitlement.grants.entry(key.clone())
        {
            let grant = match &payment.subscription_id {
                None => Grant {
                    key: key.clone(),
                    source: source::PAYMENT.to_owned(),
                    expires_at: None,
                    ..grant_from_payment(&payment, now)
                },
                Some(subscription_id) => {
                    let paid_until = stored
                        .subscription
                        .as_ref()
                        .and_then(|s| s.next_billing_date)
                        .filter(|end| *end > now);
                    Grant {
                        key: key.clone(),
                        source: source::SUBSCRIPTION.to_owned(),
                        subscription_id: Some(subscription_id.clone()),
                        expires_at: Some(
                            paid_until.map_or(now + PROVISIONAL_SUBSCRIPTION_SECONDS, |end| {
                                end.saturating_add(settings.grace_seconds)
                            }),
                        ),
                        period_end: paid_until,
                        ..grant_from_payment(&payment, now)
                    }
                }
            };
            slot.insert(grant);
            changes.entitlement = Some(finish(settings, entitlement, now));
        } else if let Some(grant) = entitlement.grants.get_mut(&key)
            && (later_payment_ends_revoked_period(settings, grant, &payment, stored, now)
                || renewal_was_the_revoked_period(grant, &payment, stored, now))
        {
            changes.entitlement = Some(finish(settings, entitlement, now));
        }
    }
    if let (Some(subscription_id), true) = (&payment.subscription_id, snapshot.succeeded()) {
        let opened = changes.subscription.is_some();
        let mut subscription = changes
            .subscription
            .take()
            .or_else(|| stored.subscription.clone())
            .unwrap_or_else(|| new_subscription(subscription_id, now));
        if subscription.record_payment(payment.created_at) || opened {
            subscription.updated_at = now;
            changes.subscription = Some(subscription);
        }
    }
    changes.payment = Some(payment);
    Decision::Apply(Box::new(changes))
}

fn grant_from_payment(payment: &PaymentRecord, now: i64) -> Grant {
    Grant {
        plan: payment.plan.clone().unwrap_or_default(),
        status: status::ACTIVE.to_owned(),
        payment_id: Some(payment.payment_id.clone()),
        product_id: payment.product_id.clone(),
        customer_id: payment.customer_id.clone(),
        updated_at: now,
        ..Grant::default()
    }
}

/// A subscription's grant was revoked (its first payment refunded, say), and now another
/// payment of the subscription, made after the revocation, succeeded: the revoked period
/// ended when that payment was made, so the period it pays grants again. When the stored
/// subscription already reports such a period, access returns now; otherwise with the next
/// snapshot. Returns whether the grant changed.
fn later_payment_ends_revoked_period(
    settings: PolicySettings<'_>,
    grant: &mut Grant,
    payment: &PaymentRecord,
    stored: &Stored,
    now: i64,
) -> bool {
    let made = payment.created_at;
    let later = grant.status == status::REVOKED
        && payment.subscription_id.is_some()
        && grant.payment_id.as_deref() != Some(payment.payment_id.as_str())
        && grant.revoked_at.is_some_and(|revoked_at| made > revoked_at);
    let revoked_through = if grant.revoked_period_pending {
        made
    } else {
        grant.revoked_period_end.map_or(made, |end| end.min(made))
    };
    if !later
        || (!grant.revoked_period_pending && grant.revoked_period_end == Some(revoked_through))
    {
        return false;
    }
    grant.revoked_period_pending = false;
    grant.revoked_period_end = Some(revoked_through);
    // The stored subscription's state over a period paid beyond the revoked one, even one
    // already over: the grant ends as it would have, had the deliveries come in order.
    let paid = stored.subscription.as_ref().and_then(|s| {
        let end = s.next_billing_date.filter(|end| *end > revoked_through)?;
        let target = subscription_target(
            &s.status,
            Some(end),
            None,
            end.saturating_add(settings.grace_seconds),
            now,
        )?;
        Some((end, target))
    });
    if let Some((end, (state, expires_at, reason))) = paid
        && matches!(state, status::ACTIVE | status::CANCELLED)
    {
        grant.status = state.to_owned();
        grant.expires_at = expires_at;
        grant.period_end = Some(end);
        grant.reason = reason.map(str::to_owned);
    }
    grant.updated_at = now;
    true
}

/// A refund or lost dispute was applied before this renewal payment, made before it, was
/// known: the period in force at the revocation was not the one recorded (which had already
/// ended) but the one this payment began. That period is revoked: up to the stored
/// subscription's period end when it is known, else the next snapshot's. Returns whether the
/// grant changed.
fn renewal_was_the_revoked_period(
    grant: &mut Grant,
    payment: &PaymentRecord,
    stored: &Stored,
    now: i64,
) -> bool {
    let (Some(revoked_at), Some(revoked_end)) = (grant.revoked_at, grant.revoked_period_end) else {
        return false;
    };
    let made = payment.created_at;
    let applies = payment.subscription_id.is_some()
        && grant.payment_id.as_deref() != Some(payment.payment_id.as_str())
        && !grant.revoked_period_pending
        && made <= revoked_at
        && revoked_end <= revoked_at
        && made.saturating_add(RENEWAL_WINDOW_SECONDS) >= revoked_end;
    if !applies {
        return false;
    }
    let subscription = stored.subscription.as_ref();
    let ended_by_payment = subscription.and_then(|s| s.paid_after(revoked_at));
    let end = ended_by_payment.or_else(|| {
        subscription
            .and_then(|s| s.next_billing_date)
            .filter(|end| *end > revoked_at)
    });
    match end {
        Some(end) => grant.revoked_period_end = Some(end),
        None => grant.revoked_period_pending = true,
    }
    // A later payment ended that period, and the grant already stands on a period after it.
    let later_period_in_force = ended_by_payment.is_some()
        && grant.status != status::REVOKED
        && grant
            .period_end
            .zip(end)
            .is_some_and(|(paid, revoked)| paid > revoked);
    if !later_period_in_force && grant.status != status::REVOKED {
        grant.status = status::REVOKED.to_owned();
        grant.reason = Some("revoked".to_owned());
    }
    grant.updated_at = now;
    true
}

/// The stored entitlement when it is `email`'s, else a blank one.
/// A succeeded payment of a credit product adds its pack, once. `removed` stores it removed
/// (a refund or lost dispute known before the payment was).
fn add_pack(
    settings: PolicySettings<'_>,
    payment: &PaymentRecord,
    email: &Email,
    stored: &Stored,
    removed: Option<(i64, String)>,
    now: i64,
) -> Option<CreditChange> {
    let product = settings
        .plans
        .credits()
        .pack(payment.product_id.as_deref())?;
    if stored.credit_pack.is_some() {
        return None;
    }
    let bought = if payment.created_at > 0 {
        payment.created_at
    } else {
        now
    };
    let mut pack = CreditPack {
        id: payment.payment_id.clone(),
        granted: product.amount,
        left: product.amount,
        added_at: now,
        expires_at: bought.saturating_add(settings.plans.credits().lifetime_seconds),
        ..CreditPack::default()
    };
    if let Some((at, reason)) = removed {
        pack.left = 0;
        pack.removed_at = Some(at);
        pack.removed_left = Some(product.amount);
        pack.note = Some(reason);
    }
    Some(CreditChange::Add {
        email: email.clone(),
        meter: product.meter.clone(),
        pack,
    })
}

/// A refund or lost dispute of a credit product's payment removes what is left of its pack.
fn remove_pack(
    settings: PolicySettings<'_>,
    payment: &PaymentRecord,
    email: &Email,
    stored: &Stored,
    at: i64,
    reason: String,
    now: i64,
) -> Option<CreditChange> {
    let product = settings
        .plans
        .credits()
        .pack(payment.product_id.as_deref())?;
    match &stored.credit_pack {
        None => add_pack(settings, payment, email, stored, Some((at, reason)), now),
        Some(pack) if pack.removed_at.is_some() => None,
        Some(pack) => Some(CreditChange::Remove {
            email: email.clone(),
            meter: product.meter.clone(),
            pack_id: pack.id.clone(),
            at,
            reason,
        }),
    }
}

fn entitlement_of(stored: &Stored, email: &Email) -> Entitlement {
    stored
        .entitlement
        .as_ref()
        .filter(|e| &e.email == email)
        .cloned()
        .unwrap_or_else(|| Entitlement::new(email.clone()))
}

fn finish(settings: PolicySettings<'_>, mut entitlement: Entitlement, now: i64) -> Entitlement {
    entitlement.summarise(now, settings.ranking());
    entitlement.updated_at = now;
    entitlement
}

/// Applies a refund. Only a succeeded refund of the whole payment changes anything.
pub fn decide_refund(
    settings: PolicySettings<'_>,
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
    if payment.erased_as.is_none() {
        payment.email = payment.email.or_else(|| snapshot.email.clone());
    }
    payment.refund_status = Some("refunded".to_owned());
    payment.refund_id = Some(snapshot.refund_id.clone());
    payment
        .access_revoked
        .get_or_insert_with(|| "refunded".to_owned());
    touch_payment(&mut payment, delivery);
    let mut changes = Changes::default();
    let at = revocation_time(&mut payment, snapshot.created_at, delivery.now);
    revoke_own_grant(settings, &payment, stored, delivery, at, &mut changes);
    changes.payment = Some(payment);
    Decision::Apply(Box::new(changes))
}

/// Applies a dispute. A lost or accepted dispute revokes; others are recorded.
pub fn decide_dispute(
    settings: PolicySettings<'_>,
    delivery: DeliveryContext<'_>,
    snapshot: &DisputeSnapshot,
    stored: &Stored,
) -> Decision {
    let mut payment = stored
        .payment
        .clone()
        .unwrap_or_else(|| new_payment(&snapshot.payment_id, delivery.now));
    if payment.erased_as.is_none() {
        payment.email = payment.email.or_else(|| snapshot.email.clone());
    }
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
        let at = revocation_time(&mut payment, snapshot.created_at, delivery.now);
        revoke_own_grant(settings, &payment, stored, delivery, at, &mut changes);
    }
    touch_payment(&mut payment, delivery);
    changes.payment = Some(payment);
    Decision::Apply(Box::new(changes))
}

/// The time a refund or lost dispute revokes as of: the earliest known (its own `created_at`,
/// else when it was processed), kept on the payment for deliveries applied later.
fn revocation_time(payment: &mut PaymentRecord, event_at: Option<i64>, now: i64) -> i64 {
    let at = event_at.unwrap_or(now).min(now);
    let at = payment.access_revoked_at.map_or(at, |known| known.min(at));
    payment.access_revoked_at = Some(at);
    at
}

/// Revokes the grant of this payment's own purchase (its subscription's grant for a
/// subscription payment), on the payment's buyer only, as of `at` (the refund's or
/// dispute's own time, however late it is delivered). A subscription's grant remembers the
/// paid period in force at `at`, so later snapshots of that period never grant again; when
/// a payment of the subscription made after `at` already paid a later period, that period
/// stays granted.
fn revoke_own_grant(
    settings: PolicySettings<'_>,
    payment: &PaymentRecord,
    stored: &Stored,
    delivery: DeliveryContext<'_>,
    at: i64,
    changes: &mut Changes,
) {
    let Some(email) = &payment.email else {
        return;
    };
    let reason = payment
        .access_revoked
        .clone()
        .unwrap_or_else(|| "revoked".to_owned());
    let now = delivery.now;
    let at = at.min(now);
    if settings
        .plans
        .credits()
        .sells(payment.product_id.as_deref().unwrap_or_default())
    {
        changes.credits = remove_pack(settings, payment, email, stored, at, reason, now);
        return;
    }
    let key = payment.grant_key().to_owned();
    let mut entitlement = entitlement_of(stored, email);
    let existing = entitlement.grants.get(&key).cloned();
    // A one-time payment that never granted has nothing to revoke; a subscription's grant is
    // created revoked, to remember the paid period that must not grant again.
    if existing.is_none() && payment.subscription_id.is_none() {
        return;
    }
    let mut grant = existing.clone().unwrap_or_else(|| Grant {
        key: key.clone(),
        source: if payment.subscription_id.is_some() {
            source::SUBSCRIPTION.to_owned()
        } else {
            source::PAYMENT.to_owned()
        },
        subscription_id: payment.subscription_id.clone(),
        expires_at: payment
            .subscription_id
            .as_ref()
            .map(|_| now + PROVISIONAL_SUBSCRIPTION_SECONDS),
        ..grant_from_payment(payment, now)
    });
    let mut later_period_in_force = false;
    if payment.subscription_id.is_some() {
        // The payments known, this one included (it may be applied in this very delivery).
        let mut known = stored.subscription.clone();
        if payment.status == "succeeded" {
            known
                .get_or_insert_with(SubscriptionRecord::default)
                .record_payment(payment.created_at);
        }
        let subscription = known.as_ref();
        let ended_by_payment = subscription.and_then(|s| s.paid_after(at));
        let known_end = subscription
            .and_then(|s| s.next_billing_date)
            .or(grant.period_end);
        // The period known ended before `at`, and a renewal paid since began the period in
        // force at `at`, whose end its snapshot (not applied yet) will tell.
        let renewed_since = known_end.is_some_and(|end| {
            end <= at
                && subscription.is_some_and(|s| {
                    s.paid_at
                        .iter()
                        .any(|paid| *paid <= at && *paid + RENEWAL_WINDOW_SECONDS >= end)
                })
        });
        let period_end = ended_by_payment.or(known_end.filter(|_| !renewed_since));
        match period_end {
            Some(end) => {
                let revoked_end = end.max(grant.revoked_period_end.unwrap_or(end));
                grant.revoked_period_end = Some(revoked_end);
                later_period_in_force = ended_by_payment.is_some()
                    && grant.status != status::REVOKED
                    && grant.period_end.is_some_and(|paid| paid > revoked_end);
            }
            None => grant.revoked_period_pending = true,
        }
    }
    if later_period_in_force {
        if grant.revoked_at.is_none_or(|revoked| revoked < at) {
            grant.revoked_at = Some(at);
        }
    } else if grant.status != status::REVOKED {
        grant.status = status::REVOKED.to_owned();
        grant.reason = Some(reason);
        grant.revoked_at = Some(at);
        grant.updated_at = now;
    }
    if existing.as_ref() != Some(&grant) {
        entitlement.grants.insert(key, grant);
        changes.entitlement = Some(finish(settings, entitlement, now));
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
    if subscription.erased_as.is_none() {
        subscription.email = subscription.email.or_else(|| snapshot.email.clone());
    }
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
    // Cancelled at the period's end (`cancel_at_next_billing_date`): Dodo still says
    // `active`, but the period is paid until then and not renewed; resuming clears it.
    let state = if snapshot.status == "active" && snapshot.cancel_at_period_end {
        "cancelled"
    } else {
        snapshot.status.as_str()
    };
    let credit_product = settings
        .plans
        .credits()
        .sells(subscription.product_id.as_deref().unwrap_or_default());
    let target = subscription_target(state, paid_until, snapshot.expires_at, with_grace, now)
        .filter(|_| !credit_product);

    match (subscription.email.clone(), target) {
        (None, Some(_)) if subscription.erased_as.is_some() => {}
        (None, Some(_)) => {
            changes.attention = Some(if snapshot.email_invalid {
                INVALID_EMAIL
            } else {
                MISSING_EMAIL
            });
        }
        (Some(email), Some((new_status, expires_at, reason))) => {
            let mut entitlement = entitlement_of(stored, &email);
            let key = subscription.subscription_id.clone();
            let existing = entitlement.grants.get(&key).cloned();
            let mut grant = existing.clone().unwrap_or_else(|| Grant {
                key: key.clone(),
                source: source::SUBSCRIPTION.to_owned(),
                subscription_id: Some(key.clone()),
                payment_id: subscription.claim_payment_id.clone(),
                ..Grant::default()
            });
            // After a refund, lost dispute or operator revoke, only a newly paid period
            // grants again. Revoked before any period was known: this snapshot's period is
            // the revoked one.
            // The period in force at the revocation ends after it: a snapshot of an earlier
            // period (delivered late) leaves the question open.
            if grant.revoked_period_pending
                && let Some(end) = paid_until
                && grant.revoked_at.is_none_or(|revoked_at| end > revoked_at)
            {
                grant.revoked_period_pending = false;
                grant.revoked_period_end = Some(end.max(grant.revoked_period_end.unwrap_or(end)));
            }
            let revoked_end = grant
                .revoked_period_end
                .max(subscription.revoked_period_end);
            let period_was_revoked = grant.revoked_period_pending
                || revoked_end
                    .is_some_and(|revoked_end| paid_until.is_none_or(|end| end <= revoked_end));
            // Whether it would grant, however late it is applied (the result must not
            // depend on when a delivery arrives).
            let grants_access = matches!(new_status, status::ACTIVE | status::CANCELLED);
            if !(grants_access && period_was_revoked) {
                grant.status = new_status.to_owned();
                grant.expires_at = expires_at;
                grant.reason = reason.map(str::to_owned);
                grant.changed_by = None;
            }
            grant.period_end = paid_until;
            grant.product_id = subscription.product_id.clone();
            grant.customer_id = snapshot.customer_id.clone().or(grant.customer_id);
            grant.plan = settings
                .plans
                .plan_for(subscription.product_id.as_deref())
                .to_owned();
            grant.subscription_status = Some(snapshot.status.clone());
            grant.trial_ends_at = snapshot.trial_ends_at;
            let scheduled = snapshot.scheduled_change.as_ref();
            grant.scheduled_product_id = scheduled.map(|c| c.product_id.clone());
            grant.scheduled_plan =
                scheduled.map(|c| settings.plans.plan_for(Some(&c.product_id)).to_owned());
            grant.scheduled_at = scheduled.map(|c| c.effective_at);
            if existing.as_ref() != Some(&grant) {
                grant.updated_at = now;
                entitlement.grants.insert(key, grant);
                changes.entitlement = Some(finish(settings, entitlement, now));
            }
        }
        (_, None) => {}
    }
    changes.subscription = Some(subscription);
    Decision::Apply(Box::new(changes))
}

/// What a subscription in Dodo's `state` makes of its grant: status, end of access, reason.
fn subscription_target(
    state: &str,
    paid_until: Option<i64>,
    expires_at: Option<i64>,
    with_grace: i64,
    now: i64,
) -> Option<(&'static str, Option<i64>, Option<&str>)> {
    match state {
        "active" => Some((status::ACTIVE, Some(with_grace), None)),
        "on_hold" | "past_due" => Some((status::ACTIVE, Some(with_grace), Some(state))),
        "paused" => Some((
            status::ACTIVE,
            Some(paid_until.unwrap_or(now)),
            Some("paused"),
        )),
        "cancelled" => Some((
            status::CANCELLED,
            Some(paid_until.or(expires_at).unwrap_or(now)),
            Some("cancelled"),
        )),
        "expired" | "failed" => Some((
            status::EXPIRED,
            Some(expires_at.unwrap_or(now).min(now)),
            Some(state),
        )),
        _ => None,
    }
}

/// `succeeded`, `failed` and `cancelled` are where a payment ends.
fn is_final_payment_status(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled")
}

/// Whether `incoming` was taken before the snapshot `stored`: by the events' own timestamps
/// when both carry one (a retry of an old event is delivered with a new `webhook-timestamp`),
/// else by the deliveries' `webhook-timestamp`.
fn is_stale(stored: Option<Freshness>, incoming: Freshness) -> bool {
    stored.is_some_and(|stored| {
        if stored.event_timestamp_micros > 0 && incoming.event_timestamp_micros > 0 {
            (stored.event_timestamp_micros, stored.webhook_timestamp)
                > (incoming.event_timestamp_micros, incoming.webhook_timestamp)
        } else {
            stored > incoming
        }
    })
}

/// A payment not stored yet, first seen at `now`.
pub fn new_payment(payment_id: &str, now: i64) -> PaymentRecord {
    PaymentRecord {
        payment_id: payment_id.to_owned(),
        status: "unknown".to_owned(),
        created_at: now,
        ..PaymentRecord::default()
    }
}

/// A subscription not stored yet, first seen at `now`.
pub fn new_subscription(subscription_id: &str, now: i64) -> SubscriptionRecord {
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
