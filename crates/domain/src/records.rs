//! What is stored, as plain Rust types (`llmxt-store` maps them to DynamoDB items).
//!
//! The payments table holds several kinds of item, told apart by their key:
//! `pay_…` (a payment, indexed by `email-index`), `subscription#sub_…` (a subscription's
//! freshness and the payment holding its claim), and `webhook#msg_…` (a delivery, for
//! deduplication, removed by DynamoDB's TTL); sign-in tokens, counters and erasure receipts
//! (`restore#…`, `limit#…`, `erasure#…`) live there too. Only payments carry an `email`
//! attribute, so the sparse `email-index` lists payments only. Every record carries a
//! `version` that each writer bumps, so read-decide-write cycles never lose an update.

use std::collections::BTreeMap;

use crate::email::Email;

/// Key prefix of subscription items in the payments table.
pub const SUBSCRIPTION_KEY_PREFIX: &str = "subscription#";
/// Key prefix of delivery (deduplication) items in the payments table.
pub const DELIVERY_KEY_PREFIX: &str = "webhook#";
/// Name of the TTL attribute in the payments table.
pub const TTL_ATTRIBUTE: &str = "ttl";
/// Key prefix of restore-link tokens in the payments table (`restore#<sha256 hex>`).
pub const RESTORE_TOKEN_PREFIX: &str = "restore#";
/// Key prefix of rate-limit counters in the payments table (`limit#<scope>#<key>#<window>`).
pub const RATE_LIMIT_PREFIX: &str = "limit#";

/// A stored item could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored item is missing or has a bad {attribute}")]
pub struct CorruptItem {
    /// The attribute at fault.
    pub attribute: &'static str,
}

/// Orders snapshots of one object: the delivery's `webhook-timestamp`, then the event's own
/// `timestamp`. Stored as a zero-padded string, so it also sorts in DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Freshness {
    /// `webhook-timestamp`, unix seconds.
    pub webhook_timestamp: i64,
    /// The event's `timestamp`, unix microseconds (0 when absent).
    pub event_timestamp_micros: i64,
}

impl Freshness {
    /// The stored form: zero-padded, so it sorts as text too.
    pub fn encode(self) -> String {
        format!(
            "{:012}.{:019}",
            self.webhook_timestamp.max(0),
            self.event_timestamp_micros.max(0)
        )
    }

    /// Reads the stored form back.
    pub fn decode(text: &str) -> Option<Self> {
        let (webhook, event) = text.split_once('.')?;
        Some(Self {
            webhook_timestamp: webhook.parse().ok()?,
            event_timestamp_micros: event.parse().ok()?,
        })
    }
}

/// A payment as last reported by Dodo, with its claim and refund/dispute state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaymentRecord {
    /// `payment_id` (partition key).
    pub payment_id: String,
    /// The buyer, when Dodo told us.
    pub email: Option<Email>,
    /// Dodo's status (`succeeded`, `failed`, …), or `unknown` before any payment event.
    pub status: String,
    /// The product bought.
    pub product_id: Option<String>,
    /// The plan the product maps to.
    pub plan: Option<String>,
    /// The subscription this payment belongs to (the first, when it pays several).
    pub subscription_id: Option<String>,
    /// Dodo's customer (`data.customer.customer_id`), for the billing portal.
    pub customer_id: Option<String>,
    /// `metadata.checkout_ref`: binds the claim to the browser that started the checkout.
    pub checkout_ref: Option<String>,
    /// Amount in the smallest currency unit.
    pub total_amount: Option<i64>,
    /// Currency code.
    pub currency: Option<String>,
    /// When the payment was created (unix seconds; `email-index` sort key as RFC 3339).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
    /// Freshness of the last applied payment snapshot.
    pub freshness: Option<Freshness>,
    /// When the one-time claim closes (unix seconds); absent until the payment succeeds.
    pub claim_expires_at: Option<i64>,
    /// When the claim was redeemed (unix seconds).
    pub claim_redeemed_at: Option<i64>,
    /// `refunded` once a full refund succeeded.
    pub refund_status: Option<String>,
    /// The refund that refunded it.
    pub refund_id: Option<String>,
    /// Latest dispute status (`dispute_opened`, `dispute_lost`, …).
    pub dispute_status: Option<String>,
    /// Freshness of the delivery that set `dispute_status`.
    pub dispute_freshness: Option<Freshness>,
    /// Set (to the reason) when this payment must no longer grant access.
    pub access_revoked: Option<String>,
    /// The time access is revoked as of: the refund's or lost dispute's own `created_at`.
    pub access_revoked_at: Option<i64>,
    /// Something an operator must look at, e.g. `missing_email`.
    pub attention: Option<String>,
    /// The `webhook-id` that last changed it.
    pub last_webhook_id: Option<String>,
    /// Set when the buyer's data was erased (`llmxt-admin forget`): the pseudonym that
    /// replaced the email. Later snapshots never bring an email back.
    pub erased_as: Option<String>,
    /// Optimistic-concurrency version, bumped by every write.
    pub version: i64,
}

impl PaymentRecord {
    /// The grant this payment belongs to: its subscription's, else its own.
    pub fn grant_key(&self) -> &str {
        self.subscription_id.as_deref().unwrap_or(&self.payment_id)
    }
}

/// A subscription's latest state, kept for ordering its snapshots and to find its claim.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriptionRecord {
    /// `subscription_id`.
    pub subscription_id: String,
    /// The buyer, when known (stored as `customer_email`, outside `email-index`).
    pub email: Option<Email>,
    /// Dodo's status, or `unknown` before any subscription event.
    pub status: String,
    /// The subscribed product.
    pub product_id: Option<String>,
    /// End of the paid period (unix seconds).
    pub next_billing_date: Option<i64>,
    /// Freshness of the last applied subscription snapshot.
    pub freshness: Option<Freshness>,
    /// The payment whose one-time claim `/upgrade/success?subscription_id=` redeems.
    pub claim_payment_id: Option<String>,
    /// Set when a refund or lost dispute revoked access: the end of the paid period that was
    /// revoked. Only a snapshot paid beyond it grants again.
    pub revoked_period_end: Option<i64>,
    /// Set when the buyer's data was erased: the pseudonym that replaced the email.
    pub erased_as: Option<String>,
    /// When each succeeded payment of the subscription was made (unix seconds, ascending, the
    /// last [`MAX_PAID_AT`]): a refund or lost dispute revokes the period in force at its own
    /// time, which a payment made after it ended.
    pub paid_at: Vec<i64>,
    /// Last change (unix seconds).
    pub updated_at: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// Payment times kept on a subscription record.
pub const MAX_PAID_AT: usize = 48;

impl SubscriptionRecord {
    /// Records a succeeded payment made at `at`; whether it was new.
    pub fn record_payment(&mut self, at: i64) -> bool {
        if self.paid_at.contains(&at) {
            return false;
        }
        self.paid_at.push(at);
        self.paid_at.sort_unstable();
        if self.paid_at.len() > MAX_PAID_AT {
            let excess = self.paid_at.len() - MAX_PAID_AT;
            self.paid_at.drain(..excess);
        }
        true
    }

    /// The first payment made after `at`: when the period in force at `at` ended.
    pub fn paid_after(&self, at: i64) -> Option<i64> {
        self.paid_at.iter().copied().find(|paid| *paid > at)
    }

    /// The payments-table key of a subscription.
    pub fn key(subscription_id: &str) -> String {
        format!("{SUBSCRIPTION_KEY_PREFIX}{subscription_id}")
    }
}

/// Entitlement and grant states.
pub mod status {
    /// Paid and in force.
    pub const ACTIVE: &str = "active";
    /// Cancelled, but paid until `expires_at`.
    pub const CANCELLED: &str = "cancelled";
    /// Ended (subscription expired or failed).
    pub const EXPIRED: &str = "expired";
    /// Taken away (refund, lost dispute, operator).
    pub const REVOKED: &str = "revoked";

    /// Whether `state` is one of these (anything else gives no Pro).
    pub fn is_known(state: &str) -> bool {
        matches!(state, ACTIVE | CANCELLED | EXPIRED | REVOKED)
    }

    /// The state as the original schema's top-level `status` spells it (`active`,
    /// `cancelled` or `expired`): access taken away has ended, so `revoked` is `expired`
    /// there. Grants keep `revoked`.
    pub fn in_original_schema(state: &str) -> &str {
        if state == REVOKED { EXPIRED } else { state }
    }
}

/// The plan that never gives Pro, whatever its status (the original system's `free`).
pub const FREE_PLAN: &str = "free";

/// What granted access.
pub mod source {
    /// A one-time payment.
    pub const PAYMENT: &str = "payment";
    /// A subscription.
    pub const SUBSCRIPTION: &str = "subscription";
    /// An operator.
    pub const MANUAL: &str = "manual";
}

/// Key prefix of grants made by hand (`manual#…`).
pub const MANUAL_GRANT_PREFIX: &str = "manual#";

/// One change of an entitlement, kept on the item as its audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// When (unix seconds).
    pub at: i64,
    /// Who: an operator, or `webhook <event type> <webhook-id>`.
    pub by: String,
    /// The grant that changed (its key), when one did.
    pub grant: Option<String>,
    /// The status it was set to.
    pub status: String,
    /// Why.
    pub reason: Option<String>,
}

/// Most recent changes kept on an entitlement.
pub const MAX_HISTORY: usize = 50;

/// Order of plans, lowest first (`PLAN_RANKING`): picks the plan shown when several grants
/// give access. Plans it does not list rank below every listed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRanking(Vec<String>);

impl PlanRanking {
    /// The default order: `free,professional,enterprise`.
    pub fn standard() -> Self {
        Self(
            ["free", "professional", "enterprise"]
                .map(str::to_owned)
                .to_vec(),
        )
    }

    /// A ranking from plan names, lowest first.
    pub fn new(plans: Vec<String>) -> Self {
        Self(plans)
    }

    /// The plans, lowest first.
    pub fn plans(&self) -> &[String] {
        &self.0
    }

    /// Whether `plan` is a configured paid plan: listed here, and not [`FREE_PLAN`]. Only
    /// those give Pro; a stored `gold` (an import, a hand edit, another system) does not.
    pub fn is_paid(&self, plan: &str) -> bool {
        plan != FREE_PLAN && self.0.iter().any(|p| p == plan)
    }

    /// Position of `plan`: higher is better; unlisted plans are lowest.
    pub fn rank(&self, plan: &str) -> i64 {
        self.0
            .iter()
            .position(|p| p == plan)
            .map_or(-1, |i| i as i64)
    }
}

impl Default for PlanRanking {
    fn default() -> Self {
        Self::standard()
    }
}

/// One source of access for an email: a one-time payment, a subscription, or an operator's
/// grant, keyed by what granted it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// What granted it: a payment id, a subscription id, or `manual#…`.
    pub key: String,
    /// One of [`source`].
    pub source: String,
    /// The plan (`professional`, …).
    pub plan: String,
    /// One of [`status`].
    pub status: String,
    /// End of access (unix seconds); `None` for a lifetime purchase.
    pub expires_at: Option<i64>,
    /// The payment that granted it (for a subscription: its first payment).
    pub payment_id: Option<String>,
    /// The subscription that granted it.
    pub subscription_id: Option<String>,
    /// The product bought.
    pub product_id: Option<String>,
    /// Dodo's customer (`customer.customer_id`), for the billing portal.
    pub customer_id: Option<String>,
    /// For a subscription: end of the paid period last reported (without grace).
    pub period_end: Option<i64>,
    /// For a subscription: a refund, lost dispute or operator revoked access up to this
    /// paid-period end; only a period paid beyond it grants again.
    pub revoked_period_end: Option<i64>,
    /// For a subscription revoked before any snapshot said how long its period is: the next
    /// snapshot's period is the revoked one, unless a later payment of the subscription came
    /// first (then the revoked period ended when that payment was made).
    pub revoked_period_pending: bool,
    /// When a refund, lost dispute or operator last revoked it (unix seconds).
    pub revoked_at: Option<i64>,
    /// Why it is in this state (`refunded`, `on_hold`, an operator's words, …).
    pub reason: Option<String>,
    /// Who changed it by hand, for manual changes.
    pub changed_by: Option<String>,
    /// Last change (unix seconds).
    pub updated_at: i64,
    /// For a subscription: Dodo's status in the last snapshot applied (`active`, `paused`,
    /// `past_due`, …), which the billing state shows.
    pub subscription_status: Option<String>,
    /// For a subscription in its free trial: when the trial ends (unix seconds).
    pub trial_ends_at: Option<i64>,
    /// For a subscription: the plan a scheduled change moves it to.
    pub scheduled_plan: Option<String>,
    /// The product of that scheduled change.
    pub scheduled_product_id: Option<String>,
    /// When that scheduled change takes effect (unix seconds).
    pub scheduled_at: Option<i64>,
}

impl Grant {
    /// Whether this grant is in force at `now`: `active` or `cancelled`, not past
    /// `expires_at`, on a plan (not empty, not [`FREE_PLAN`]). It gives Pro only on a
    /// configured paid plan ([`Grant::gives_pro`]).
    pub fn gives_access(&self, now: i64) -> bool {
        matches!(self.status.as_str(), status::ACTIVE | status::CANCELLED)
            && !self.plan.is_empty()
            && self.plan != FREE_PLAN
            && self.expires_at.is_none_or(|expires| expires > now)
    }

    /// Whether this grant gives Pro at `now`: in force ([`Grant::gives_access`]) and on a
    /// plan `ranking` lists ([`PlanRanking::is_paid`]).
    pub fn gives_pro(&self, now: i64, ranking: &PlanRanking) -> bool {
        self.gives_access(now) && ranking.is_paid(&self.plan)
    }
}

/// Whether an email has Pro, and why: every grant it holds, plus a summary of them in the
/// seed's top-level fields (recomputed by [`Entitlement::summarise`] before each write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    /// Partition key.
    pub email: Email,
    /// Every grant, by key.
    pub grants: BTreeMap<String, Grant>,
    /// Summary: one of [`status`].
    pub status: String,
    /// Summary: the plan (`professional`, …).
    pub plan: String,
    /// Summary: end of access (unix seconds); `None` for a lifetime purchase.
    pub expires_at: Option<i64>,
    /// Summary: one of [`source`].
    pub source: String,
    /// Summary: the payment that granted it.
    pub payment_id: Option<String>,
    /// Summary: the subscription that granted it.
    pub subscription_id: Option<String>,
    /// Summary: the product bought.
    pub product_id: Option<String>,
    /// Summary: why it is in this state.
    pub reason: Option<String>,
    /// Summary: who changed it by hand, for manual changes.
    pub changed_by: Option<String>,
    /// Last change (unix seconds).
    pub updated_at: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// The last [`MAX_HISTORY`] changes, oldest first.
    pub history: Vec<Change>,
}

impl Entitlement {
    /// A blank entitlement for `email`, with no grant.
    pub fn new(email: Email) -> Self {
        Self {
            email,
            grants: BTreeMap::new(),
            status: String::new(),
            plan: String::new(),
            expires_at: None,
            source: String::new(),
            payment_id: None,
            subscription_id: None,
            product_id: None,
            reason: None,
            changed_by: None,
            updated_at: 0,
            version: 0,
            history: Vec::new(),
        }
    }

    /// Appends a change to the history (dropping the oldest beyond [`MAX_HISTORY`]).
    pub fn record(&mut self, change: Change) {
        self.history.push(change);
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
        }
    }

    /// Records one history entry for every grant that differs from `before` (added or
    /// changed), attributed to `by`.
    pub fn record_grant_changes(&mut self, before: Option<&Entitlement>, at: i64, by: &str) {
        let changed: Vec<Change> = self
            .grants
            .values()
            .filter(|grant| before.and_then(|b| b.grants.get(&grant.key)) != Some(*grant))
            .map(|grant| Change {
                at,
                by: by.to_owned(),
                grant: Some(grant.key.clone()),
                status: grant.status.clone(),
                reason: grant.reason.clone(),
            })
            .collect();
        for change in changed {
            self.record(change);
        }
    }

    /// Some grant is in force at `now` ([`Grant::gives_access`]), whatever its plan: what
    /// is stored. Whether that is Pro here is [`Entitlement::has_pro`].
    pub fn is_pro(&self, now: i64) -> bool {
        self.grants.values().any(|grant| grant.gives_access(now))
    }

    /// Pro access: some grant gives Pro at `now` ([`Grant::gives_pro`]: in force, on a
    /// configured paid plan).
    pub fn has_pro(&self, now: i64, ranking: &PlanRanking) -> bool {
        self.grants
            .values()
            .any(|grant| grant.gives_pro(now, ranking))
    }

    /// The plans of grants in force at `now` that `ranking` does not list as paid: they give
    /// no Pro, and a reader logs them once per item read.
    pub fn unpaid_plans_in_force(&self, now: i64, ranking: &PlanRanking) -> Vec<&str> {
        self.grants
            .values()
            .filter(|grant| grant.gives_access(now) && !ranking.is_paid(&grant.plan))
            .map(|grant| grant.plan.as_str())
            .collect()
    }

    /// The grant that decides what is shown at `now`: among grants giving Pro, the
    /// highest plan by `ranking`, then the latest expiry (lifetime last of all).
    pub fn best_grant(&self, now: i64, ranking: &PlanRanking) -> Option<&Grant> {
        self.grants
            .values()
            .filter(|grant| grant.gives_pro(now, ranking))
            .max_by_key(|grant| {
                (
                    ranking.rank(&grant.plan),
                    grant.expires_at.map_or(i64::MAX, |end| end),
                )
            })
    }

    /// Dodo's customer id for the billing portal: the best grant's, else the most recently
    /// changed grant's that knows one.
    pub fn customer_id(&self, now: i64, ranking: &PlanRanking) -> Option<&str> {
        self.best_grant(now, ranking)
            .and_then(|g| g.customer_id.as_deref())
            .or_else(|| {
                self.grants
                    .values()
                    .filter(|g| g.customer_id.is_some())
                    .max_by_key(|g| g.updated_at)
                    .and_then(|g| g.customer_id.as_deref())
            })
    }

    /// What a cookie covering `grant_keys` sees of this item (`None`: every grant, an account
    /// cookie): only those grants, summarised again at `now`. Nothing of the other grants
    /// shows through, not even the summary.
    pub fn within_scope(
        &self,
        grant_keys: Option<&[String]>,
        now: i64,
        ranking: &PlanRanking,
    ) -> Entitlement {
        let Some(keys) = grant_keys else {
            return self.clone();
        };
        let mut scoped = Entitlement::new(self.email.clone());
        scoped.grants = self
            .grants
            .iter()
            .filter(|(key, _)| keys.contains(key))
            .map(|(key, grant)| (key.clone(), grant.clone()))
            .collect();
        scoped.version = self.version;
        scoped.summarise(now, ranking);
        scoped
    }

    /// The grants a billing account is about: every grant but manual ones (an operator's
    /// grant is not in Dodo's customer portal).
    pub fn billed_grant_keys(&self) -> impl Iterator<Item = &str> {
        self.grants
            .values()
            .filter(|grant| {
                grant.source != source::MANUAL && !grant.key.starts_with(MANUAL_GRANT_PREFIX)
            })
            .map(|grant| grant.key.as_str())
    }

    /// Recomputes the top-level fields from the grants: the best grant at `now`, or, when
    /// none gives access, the most recently changed one.
    pub fn summarise(&mut self, now: i64, ranking: &PlanRanking) {
        let shown = self.best_grant(now, ranking).cloned().or_else(|| {
            self.grants
                .values()
                .max_by_key(|grant| grant.updated_at)
                .cloned()
        });
        let Some(grant) = shown else {
            return;
        };
        self.status = grant.status;
        self.plan = grant.plan;
        self.expires_at = grant.expires_at;
        self.source = grant.source;
        self.payment_id = grant.payment_id;
        self.subscription_id = grant.subscription_id;
        self.product_id = grant.product_id;
        self.reason = grant.reason;
        self.changed_by = grant.changed_by;
        self.updated_at = self.updated_at.max(grant.updated_at);
    }

    /// The grant the summary describes (as [`Entitlement::summarise`] copied it), if one
    /// matches: same source, plan, payment, subscription, product and end.
    pub fn summary_grant(&self) -> Option<&Grant> {
        self.grants.values().find(|grant| {
            grant.source == self.source
                && grant.plan == self.plan
                && grant.payment_id == self.payment_id
                && grant.subscription_id == self.subscription_id
                && grant.product_id == self.product_id
                && grant.expires_at == self.expires_at
        })
    }

    /// The one grant an item in the seed's format (no `grants`) stands for.
    pub fn legacy_grant(&self) -> Grant {
        let key = match (
            self.source.as_str(),
            &self.subscription_id,
            &self.payment_id,
        ) {
            (source::SUBSCRIPTION, Some(subscription_id), _) => subscription_id.clone(),
            (source::MANUAL, _, _) | (_, _, None) => format!("{MANUAL_GRANT_PREFIX}legacy"),
            (_, _, Some(payment_id)) => payment_id.clone(),
        };
        Grant {
            key,
            source: self.source.clone(),
            plan: self.plan.clone(),
            status: self.status.clone(),
            expires_at: self.expires_at,
            payment_id: self.payment_id.clone(),
            subscription_id: self.subscription_id.clone(),
            product_id: self.product_id.clone(),
            customer_id: None,
            period_end: None,
            revoked_period_end: None,
            revoked_period_pending: false,
            revoked_at: None,
            reason: self.reason.clone(),
            changed_by: self.changed_by.clone(),
            updated_at: self.updated_at,
            ..Grant::default()
        }
    }
}

/// A processed delivery, kept at least 7 days to recognise redeliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `webhook-id`.
    pub webhook_id: String,
    /// Event type.
    pub event_type: String,
    /// When it was processed (unix seconds).
    pub processed_at: i64,
    /// When DynamoDB may delete it (unix seconds, the TTL attribute).
    pub expires_at: i64,
}

impl DeliveryRecord {
    /// How long a delivery is remembered: 8 days, over Dodo's ~27 h of retries and the
    /// 7 days promised.
    pub const RETENTION_SECONDS: i64 = 8 * 86_400;

    /// The payments-table key of a delivery.
    pub fn key(webhook_id: &str) -> String {
        format!("{DELIVERY_KEY_PREFIX}{webhook_id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_orders_by_webhook_then_event_time_and_round_trips() {
        let a = Freshness {
            webhook_timestamp: 100,
            event_timestamp_micros: 900,
        };
        let b = Freshness {
            webhook_timestamp: 101,
            event_timestamp_micros: 1,
        };
        let c = Freshness {
            webhook_timestamp: 101,
            event_timestamp_micros: 2,
        };
        assert!(a < b && b < c);
        assert!(a.encode() < b.encode() && b.encode() < c.encode());
        assert_eq!(Freshness::decode(&c.encode()), Some(c));
    }

    #[test]
    fn history_keeps_the_most_recent_changes() {
        let mut entitlement = Entitlement::new(Email::parse("a@b.co").expect("valid"));
        for at in 0..(MAX_HISTORY as i64 + 5) {
            entitlement.record(Change {
                at,
                by: "webhook".into(),
                grant: None,
                status: status::ACTIVE.into(),
                reason: None,
            });
        }
        assert_eq!(entitlement.history.len(), MAX_HISTORY);
        assert_eq!(entitlement.history[0].at, 5);
    }

    fn grant(key: &str, plan: &str, state: &str, expires_at: Option<i64>) -> Grant {
        Grant {
            key: key.into(),
            source: source::PAYMENT.into(),
            plan: plan.into(),
            status: state.into(),
            expires_at,
            payment_id: Some(key.into()),
            ..Grant::default()
        }
    }

    #[test]
    fn a_grant_gives_access_when_active_or_cancelled_and_unexpired() {
        let mut g = grant("pay_1", "professional", status::ACTIVE, None);
        assert!(g.gives_access(100));
        g.expires_at = Some(100);
        assert!(!g.gives_access(100));
        assert!(g.gives_access(99));
        g.status = status::CANCELLED.into();
        assert!(g.gives_access(99));
        g.status = status::REVOKED.into();
        assert!(!g.gives_access(99));
        g.status = status::EXPIRED.into();
        assert!(!g.gives_access(99));
    }

    #[test]
    fn summary_picks_the_highest_plan_then_the_latest_expiry() {
        let ranking = PlanRanking::standard();
        let mut e = Entitlement::new(Email::parse("a@b.co").expect("valid"));
        for g in [
            grant("pay_life", "professional", status::ACTIVE, None),
            grant("sub_ent", "enterprise", status::ACTIVE, Some(500)),
            grant("sub_ent_short", "enterprise", status::CANCELLED, Some(300)),
            grant("pay_refunded", "enterprise", status::REVOKED, None),
        ] {
            e.grants.insert(g.key.clone(), g);
        }
        assert!(e.is_pro(100));
        e.summarise(100, &ranking);
        assert_eq!((e.plan.as_str(), e.expires_at), ("enterprise", Some(500)));
        assert_eq!(e.payment_id.as_deref(), Some("sub_ent"));
        // Once the enterprise grants end, the lifetime one is what remains.
        e.summarise(600, &ranking);
        assert_eq!((e.plan.as_str(), e.expires_at), ("professional", None));
        assert!(e.is_pro(10_000));
        // Without access, the summary shows the most recently changed grant.
        for g in e.grants.values_mut() {
            g.status = status::REVOKED.into();
        }
        e.grants.get_mut("sub_ent").expect("grant").updated_at = 50;
        e.summarise(600, &ranking);
        assert!(!e.is_pro(600));
        assert_eq!(e.status, status::REVOKED);
        assert_eq!(e.payment_id.as_deref(), Some("sub_ent"));
    }
}
