//! A buyer's data on request: the pure parts of export and erasure.
//!
//! Erasing an address (`llmxt-admin forget`) deletes its entitlement and every restore record
//! (sign-in tokens, per-email counters), and keeps each payment for the accounts with the
//! email replaced by a *pseudonym*: a keyed hash of the address under `PRIVACY_KEY`. The same
//! address always gives the same pseudonym, so an erasure receipt (pseudonym, when, who, why;
//! never the address) is found again from the address, and nobody without the key can go
//! from a pseudonym back to an address by trying candidates.
//!
//! `forget` also leaves a *tombstone* the functions can find from the address alone: keyed by
//! [`keyed_digest`] under each `ENTITLEMENT_SECRET` key (which the functions hold; they never
//! hold `PRIVACY_KEY`), holding the erasure time and the pseudonym. A late first delivery, or
//! a success page confirming through Dodo's API, of a payment or subscription created before
//! that time is then stored pseudonymised and grants nothing ([`apply_tombstone`]).

use crate::config::{ConfigError, Env, MIN_SIGNING_SECRET_BYTES};
use crate::crypto::{hex_encode, hmac_sha256};
use crate::email::Email;
use crate::events::DodoObject;
use crate::policy::{Stored, new_payment, new_subscription};
use crate::records::{Entitlement, PaymentRecord, RATE_LIMIT_PREFIX, SubscriptionRecord, source};
use crate::secret::Secret;

/// The variable holding the pseudonym key.
pub const PRIVACY_KEY_VARIABLE: &str = "PRIVACY_KEY";

/// Key prefix of erasure receipts in the payments table (`erasure#<pseudonym>`).
pub const ERASURE_PREFIX: &str = "erasure#";

/// Prefix of every pseudonym, so an erased payment is recognisable at a glance.
pub const PSEUDONYM_PREFIX: &str = "erased_";

/// Key prefix of erasure tombstones in the payments table (`tombstone#<keyed digest>`).
pub const TOMBSTONE_PREFIX: &str = "tombstone#";

/// The one way a per-address (or per-client-IP) key is derived: the first 128 bits, in hex,
/// of HMAC-SHA256(`key`, `label` + `"\n"` + `text`). Keyed, so a table read or a backup cannot
/// be matched against a list of candidates; the label keeps each use's digests apart.
pub fn keyed_digest(key: &[u8], label: &str, text: &str) -> String {
    let mac = hmac_sha256(key, &[label.as_bytes(), b"\n", text.as_bytes()]);
    hex_encode(&mac[..16])
}

/// `PRIVACY_KEY`: the key of the pseudonyms. `Debug` never shows it.
#[derive(Debug, Clone)]
pub struct PrivacyKey(Secret);

impl PrivacyKey {
    /// A key of at least [`MIN_SIGNING_SECRET_BYTES`] bytes.
    pub fn new(key: &str) -> Result<Self, ConfigError> {
        if key.len() < MIN_SIGNING_SECRET_BYTES {
            return Err(ConfigError {
                variable: PRIVACY_KEY_VARIABLE,
                problem: format!(
                    "is too weak: use at least {MIN_SIGNING_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`), and keep it: the same key finds the receipts later"
                ),
            });
        }
        Ok(Self(Secret::new(key.as_bytes().to_vec())))
    }

    /// Reads `PRIVACY_KEY`; required.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.optional(PRIVACY_KEY_VARIABLE) {
            Some(key) => Self::new(&key),
            None => Err(ConfigError {
                variable: PRIVACY_KEY_VARIABLE,
                problem: "is required to erase an address (at least 32 bytes, e.g. `openssl rand -hex 32`; keep it with your other secrets)".to_owned(),
            }),
        }
    }

    /// Reads `PRIVACY_KEY` when set (export and show use it to find receipts).
    pub fn optional_from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        match env.optional(PRIVACY_KEY_VARIABLE) {
            Some(key) => Self::new(&key).map(Some),
            None => Ok(None),
        }
    }

    /// The pseudonym of `email`: `erased_` + the first 128 bits of
    /// HMAC-SHA256(key, `"erasure\n" + email`) in hex.
    pub fn pseudonym(&self, email: &Email) -> String {
        let mac = hmac_sha256(self.0.expose(), &[b"erasure\n", email.as_str().as_bytes()]);
        format!("{PSEUDONYM_PREFIX}{}", hex_encode(&mac[..16]))
    }
}

/// The payment as kept after erasure: the email is replaced by `pseudonym`; what names or
/// finds the buyer (Dodo's customer id, the checkout binding, an attention flag about the
/// address) is dropped; id, amount, currency, status, product, plan, dates, claim, refund and
/// dispute state are kept.
pub fn erase_payment(payment: &PaymentRecord, pseudonym: &str, now: i64) -> PaymentRecord {
    PaymentRecord {
        email: None,
        customer_id: None,
        checkout_ref: None,
        attention: None,
        erased_as: Some(pseudonym.to_owned()),
        updated_at: now,
        ..payment.clone()
    }
}

/// The subscription record as kept after erasure: no email, marked with `pseudonym`.
pub fn erase_subscription(
    subscription: &SubscriptionRecord,
    pseudonym: &str,
    now: i64,
) -> SubscriptionRecord {
    SubscriptionRecord {
        email: None,
        erased_as: Some(pseudonym.to_owned()),
        updated_at: now,
        ..subscription.clone()
    }
}

/// The key prefix of `email`'s per-address counters (sign-in links, portal sessions, plan
/// calls) under `key`, one of the `ENTITLEMENT_SECRET` keys the functions sign with:
/// `limit#email#<first 128 bits of HMAC-SHA256(key, "llmxt counter\n" + email), hex>#`.
/// Keyed, so a table read (or a backup) cannot be matched against a list of addresses; the
/// operator tools find an address's counters under every configured key (a rotation keeps the
/// old one for a while).
pub fn email_counter_prefix(key: &[u8], email: &Email) -> String {
    let digest = keyed_digest(key, "llmxt counter", email.as_str());
    format!("{RATE_LIMIT_PREFIX}email#{digest}#")
}

/// What the functions know of an address's erasure, found from the address alone: when it
/// was last erased and the pseudonym its records were given. Never holds the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// Its payments-table key ([`Tombstone::key`]).
    pub key: String,
    /// The pseudonym `forget` gave the address ([`PrivacyKey::pseudonym`]).
    pub pseudonym: String,
    /// When the address was last erased (unix seconds).
    pub erased_at: i64,
}

impl Tombstone {
    /// The key of `email`'s tombstone under `key`, one of the `ENTITLEMENT_SECRET` keys:
    /// `tombstone#<keyed_digest(key, "llmxt erasure", email)>`.
    pub fn key(key: &[u8], email: &Email) -> String {
        format!(
            "{TOMBSTONE_PREFIX}{}",
            keyed_digest(key, "llmxt erasure", email.as_str())
        )
    }

    /// Whether an object created at `created_at` predates the erasure (an unknown creation
    /// time counts as before: erasure errs on the side of the buyer's request).
    pub fn covers(&self, created_at: Option<i64>) -> bool {
        created_at.is_none_or(|created| created <= self.erased_at)
    }
}

/// Applies `tombstone`, found for `email` (the address a snapshot names), to what is stored
/// before the policy decides: when the object was created before the erasure, its record is
/// pseudonymised as `forget` does ([`erase_payment`], [`erase_subscription`]; a blank one when
/// it is not stored yet), so the policy keeps it under the pseudonym, without the address or
/// Dodo's customer id, and grants nothing. A refund or dispute counts as created with its
/// payment (before the erasure when that payment is not stored). A record already erased, or
/// stored for another address, is left as it is. Returns whether anything was pseudonymised.
pub fn apply_tombstone(
    stored: &mut Stored,
    object: &DodoObject,
    email: &Email,
    tombstone: &Tombstone,
    now: i64,
) -> bool {
    let pseudonym = tombstone.pseudonym.as_str();
    // The payment concerned and when it was created: a refund's or dispute's payment counts
    // as created when it was stored, or before the erasure when it is not stored yet.
    let stored_created = stored.payment.as_ref().map(|p| p.created_at);
    let payment = match object {
        DodoObject::Payment(p) => Some((&p.payment_id, p.created_at)),
        DodoObject::Refund(r) => Some((&r.payment_id, stored_created)),
        DodoObject::Dispute(d) => Some((&d.payment_id, stored_created)),
        DodoObject::Subscription(_) | DodoObject::Unhandled | DodoObject::Unusable(_) => None,
    };
    let ours = |erased_as: &Option<String>, owner: Option<&Email>| {
        erased_as.is_none() && owner.is_none_or(|e| e == email)
    };
    if let Some((payment_id, created_at)) = payment {
        let untouched = stored
            .payment
            .as_ref()
            .is_none_or(|p| ours(&p.erased_as, p.email.as_ref()));
        if !untouched || !tombstone.covers(created_at) {
            return false;
        }
        let payment = stored
            .payment
            .clone()
            .unwrap_or_else(|| new_payment(payment_id, now));
        stored.payment = Some(erase_payment(&payment, pseudonym, now));
        return true;
    }
    let DodoObject::Subscription(snapshot) = object else {
        return false;
    };
    let untouched = stored
        .subscription
        .as_ref()
        .is_none_or(|s| ours(&s.erased_as, s.email.as_ref()));
    if !untouched || !tombstone.covers(snapshot.created_at) {
        return false;
    }
    let subscription = stored
        .subscription
        .clone()
        .unwrap_or_else(|| new_subscription(&snapshot.subscription_id, now));
    stored.subscription = Some(erase_subscription(&subscription, pseudonym, now));
    true
}

/// A restore record of an address: a sign-in token or a rate-limit counter. Only metadata is
/// read; a token's value is never stored, and its hash is not shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRecord {
    /// The item's key (for deletion; not shown for tokens).
    pub key: String,
    /// `restore_token` or `rate_limit`.
    pub kind: &'static str,
    /// A token's expiry, or a counter's window end (unix seconds).
    pub expires_at: Option<i64>,
    /// When a token was used.
    pub used_at: Option<i64>,
    /// A counter's count.
    pub count: Option<i64>,
    /// When DynamoDB's TTL may delete it (unix seconds).
    pub ttl: Option<i64>,
}

/// One erasure of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// When (unix seconds).
    pub at: i64,
    /// The operator.
    pub by: String,
    /// Why (the request's reference, never the address).
    pub reason: String,
    /// Payments pseudonymised.
    pub payment_ids: Vec<String>,
    /// Subscription records pseudonymised.
    pub subscription_ids: Vec<String>,
    /// Whether an entitlement was deleted.
    pub entitlement_deleted: bool,
    /// Restore tokens and counters deleted.
    pub restore_records_deleted: usize,
}

/// Every erasure of one address, kept under its pseudonym; never holds the address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErasureReceipt {
    /// The pseudonym of the erased address.
    pub pseudonym: String,
    /// The erasures, oldest first.
    pub erasures: Vec<Erasure>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl ErasureReceipt {
    /// The payments-table key of a pseudonym's receipt.
    pub fn key(pseudonym: &str) -> String {
        format!("{ERASURE_PREFIX}{pseudonym}")
    }

    /// When the address was last erased.
    pub fn last_erased_at(&self) -> Option<i64> {
        self.erasures.iter().map(|e| e.at).max()
    }
}

/// Everything stored about one address, as read for export or erasure.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The entitlement (grants and operator history).
    pub entitlement: Option<Entitlement>,
    /// Payments carrying the address (from `email-index`).
    pub payments: Vec<PaymentRecord>,
    /// Subscription records naming the address, or pointed to by its grants and payments.
    pub subscriptions: Vec<SubscriptionRecord>,
    /// Sign-in tokens and rate-limit counters of the address.
    pub restore_records: Vec<RestoreRecord>,
    /// The address's erasure receipt, when there is one.
    pub receipt: Option<ErasureReceipt>,
    /// The address's tombstones found under the keys asked for.
    pub tombstones: Vec<Tombstone>,
}

/// Who erases, why and when.
#[derive(Debug, Clone, Copy)]
pub struct ErasureRequest<'a> {
    /// The operator.
    pub by: &'a str,
    /// The request's reference.
    pub reason: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// The address's tombstone keys ([`Tombstone::key`]), one per `ENTITLEMENT_SECRET` key.
    pub tombstone_keys: &'a [String],
}

/// What `forget` writes, decided before anything is written.
#[derive(Debug, Clone)]
pub struct ErasurePlan {
    /// The pseudonym of the address.
    pub pseudonym: String,
    /// The entitlement to delete (its version guards the delete).
    pub entitlement: Option<Entitlement>,
    /// Payments as they will be kept (versions as read).
    pub payments: Vec<PaymentRecord>,
    /// Subscription records as they will be kept (versions as read).
    pub subscriptions: Vec<SubscriptionRecord>,
    /// Keys of the restore tokens and counters to delete.
    pub restore_keys: Vec<String>,
    /// The receipt with this erasure appended (version as read).
    pub receipt: ErasureReceipt,
    /// Subscriptions that still give access: the merchant should cancel them at Dodo, or
    /// their renewals are recorded under the pseudonym only.
    pub live_subscriptions: Vec<String>,
    /// Tombstones to write (each replaces the one under its key).
    pub tombstones: Vec<Tombstone>,
}

impl ErasurePlan {
    /// Nothing left to erase (a second `forget`).
    pub fn is_empty(&self) -> bool {
        self.entitlement.is_none()
            && self.payments.is_empty()
            && self.subscriptions.is_empty()
            && self.restore_keys.is_empty()
            && self.tombstones.is_empty()
    }
}

/// Decides the erasure of what was `found` for one address. Its tombstones say it was erased
/// now; when nothing else is left to erase (a second run), only the tombstones missing under a
/// key are written, with the time already recorded under another key (or now).
pub fn plan_erasure(found: &Found, pseudonym: &str, request: ErasureRequest<'_>) -> ErasurePlan {
    let now = request.now;
    let payments: Vec<PaymentRecord> = found
        .payments
        .iter()
        .map(|p| erase_payment(p, pseudonym, now))
        .collect();
    let subscriptions: Vec<SubscriptionRecord> = found
        .subscriptions
        .iter()
        .filter(|s| s.erased_as.is_none() || s.email.is_some())
        .map(|s| erase_subscription(s, pseudonym, now))
        .collect();
    let live_subscriptions = found
        .entitlement
        .iter()
        .flat_map(|e| e.grants.values())
        .filter(|g| g.source == source::SUBSCRIPTION && g.gives_access(now))
        .map(|g| g.key.clone())
        .collect();
    let restore_keys: Vec<String> = found
        .restore_records
        .iter()
        .map(|r| r.key.clone())
        .collect();
    let nothing_else = found.entitlement.is_none()
        && payments.is_empty()
        && subscriptions.is_empty()
        && restore_keys.is_empty();
    let erased_at = if nothing_else {
        found
            .tombstones
            .iter()
            .map(|t| t.erased_at)
            .max()
            .unwrap_or(now)
    } else {
        now
    };
    let tombstones = request
        .tombstone_keys
        .iter()
        .filter(|key| !nothing_else || !found.tombstones.iter().any(|t| &t.key == *key))
        .map(|key| Tombstone {
            key: key.clone(),
            pseudonym: pseudonym.to_owned(),
            erased_at,
        })
        .collect();
    let mut receipt = found.receipt.clone().unwrap_or_else(|| ErasureReceipt {
        pseudonym: pseudonym.to_owned(),
        ..ErasureReceipt::default()
    });
    receipt.erasures.push(Erasure {
        at: now,
        by: request.by.to_owned(),
        reason: request.reason.to_owned(),
        payment_ids: payments.iter().map(|p| p.payment_id.clone()).collect(),
        subscription_ids: subscriptions
            .iter()
            .map(|s| s.subscription_id.clone())
            .collect(),
        entitlement_deleted: found.entitlement.is_some(),
        restore_records_deleted: restore_keys.len(),
    });
    ErasurePlan {
        pseudonym: pseudonym.to_owned(),
        entitlement: found.entitlement.clone(),
        payments,
        subscriptions,
        restore_keys,
        receipt,
        live_subscriptions,
        tombstones,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Grant, status};

    fn key() -> PrivacyKey {
        PrivacyKey::new("0123456789abcdef0123456789abcdef").expect("long enough")
    }

    fn email(text: &str) -> Email {
        Email::parse(text).expect("valid")
    }

    #[test]
    fn a_pseudonym_is_stable_keyed_and_hides_the_address() {
        let a = key().pseudonym(&email("Buyer@Example.com"));
        assert_eq!(a, key().pseudonym(&email("buyer@example.com")));
        assert!(a.starts_with(PSEUDONYM_PREFIX) && a.len() == PSEUDONYM_PREFIX.len() + 32);
        assert!(!a.contains("buyer"));
        assert_ne!(a, key().pseudonym(&email("other@example.com")));
        let other_key = PrivacyKey::new("another key of at least thirty-two bytes").expect("ok");
        assert_ne!(a, other_key.pseudonym(&email("buyer@example.com")));
    }

    #[test]
    fn a_short_or_missing_key_is_one_clear_line() {
        let short = PrivacyKey::new("short").expect_err("too weak").to_string();
        assert!(short.starts_with("configuration error: PRIVACY_KEY is too weak"));
        let missing = PrivacyKey::from_env(&Env::from_pairs([("X", "y")]))
            .expect_err("required")
            .to_string();
        assert!(missing.starts_with("configuration error: PRIVACY_KEY is required"));
        assert!(!short.contains('\n') && !missing.contains('\n'));
        assert!(!format!("{:?}", key()).contains("0123456789"));
    }

    #[test]
    fn an_erased_payment_keeps_the_money_and_loses_the_buyer() {
        let payment = PaymentRecord {
            payment_id: "pay_1".into(),
            email: Some(email("buyer@example.com")),
            status: "succeeded".into(),
            product_id: Some("pdt_1".into()),
            customer_id: Some("cus_1".into()),
            checkout_ref: Some("ref".into()),
            total_amount: Some(1999),
            currency: Some("EUR".into()),
            created_at: 100,
            refund_status: Some("refunded".into()),
            refund_id: Some("ref_1".into()),
            version: 4,
            ..PaymentRecord::default()
        };
        let kept = erase_payment(&payment, "erased_x", 200);
        assert_eq!(
            (
                kept.email.as_ref(),
                kept.customer_id.as_deref(),
                kept.checkout_ref.as_deref()
            ),
            (None, None, None)
        );
        assert_eq!(kept.erased_as.as_deref(), Some("erased_x"));
        assert_eq!(
            (
                kept.payment_id.as_str(),
                kept.total_amount,
                kept.currency.as_deref(),
                kept.status.as_str(),
                kept.product_id.as_deref(),
                kept.created_at,
                kept.refund_id.as_deref(),
                kept.version
            ),
            (
                "pay_1",
                Some(1999),
                Some("EUR"),
                "succeeded",
                Some("pdt_1"),
                100,
                Some("ref_1"),
                4
            )
        );
        assert!(kept.email.is_none() && kept.customer_id.is_none());
    }

    #[test]
    fn a_plan_lists_everything_and_a_second_one_nothing() {
        let buyer = email("buyer@example.com");
        let mut entitlement = Entitlement::new(buyer.clone());
        entitlement.grants.insert(
            "sub_1".into(),
            Grant {
                key: "sub_1".into(),
                source: source::SUBSCRIPTION.into(),
                plan: "professional".into(),
                status: status::ACTIVE.into(),
                expires_at: Some(1_000),
                ..Grant::default()
            },
        );
        let found = Found {
            entitlement: Some(entitlement),
            payments: vec![PaymentRecord {
                payment_id: "pay_1".into(),
                email: Some(buyer.clone()),
                ..PaymentRecord::default()
            }],
            subscriptions: vec![SubscriptionRecord {
                subscription_id: "sub_1".into(),
                email: Some(buyer),
                ..SubscriptionRecord::default()
            }],
            restore_records: vec![RestoreRecord {
                key: "limit#email#abc#3600".into(),
                kind: "rate_limit",
                expires_at: Some(3600),
                used_at: None,
                count: Some(1),
                ttl: None,
            }],
            receipt: None,
            tombstones: Vec::new(),
        };
        let keys = ["tombstone#new".to_owned(), "tombstone#old".to_owned()];
        let request = ErasureRequest {
            by: "alice",
            reason: "ticket 42",
            now: 500,
            tombstone_keys: &keys,
        };
        let plan = plan_erasure(&found, "erased_x", request);
        assert!(!plan.is_empty());
        assert_eq!(plan.live_subscriptions, ["sub_1"]);
        let entry = &plan.receipt.erasures[0];
        assert_eq!(
            (
                entry.payment_ids.as_slice(),
                entry.subscription_ids.as_slice()
            ),
            (&["pay_1".to_owned()][..], &["sub_1".to_owned()][..])
        );
        assert!(entry.entitlement_deleted && entry.restore_records_deleted == 1);
        let receipt = format!("{:?}", plan.receipt);
        assert!(!receipt.contains("buyer@"), "{receipt}");

        assert_eq!(
            plan.tombstones
                .iter()
                .map(|t| (t.key.as_str(), t.pseudonym.as_str(), t.erased_at))
                .collect::<Vec<_>>(),
            [
                ("tombstone#new", "erased_x", 500),
                ("tombstone#old", "erased_x", 500)
            ]
        );

        let after = Found {
            subscriptions: plan.subscriptions.clone(),
            receipt: Some(plan.receipt.clone()),
            tombstones: plan.tombstones.clone(),
            ..Found::default()
        };
        let later = ErasureRequest {
            now: 900,
            ..request
        };
        assert!(plan_erasure(&after, "erased_x", later).is_empty());
        // After a rotation, a second run writes the tombstone under the new key only, with
        // the erasure time already recorded.
        let rotated = Found {
            tombstones: plan.tombstones[1..].to_vec(),
            ..after
        };
        let again = plan_erasure(&rotated, "erased_x", later);
        assert_eq!(
            again
                .tombstones
                .iter()
                .map(|t| (t.key.as_str(), t.erased_at))
                .collect::<Vec<_>>(),
            [("tombstone#new", 500)]
        );
    }

    #[test]
    fn an_erasure_with_nothing_stored_still_leaves_a_tombstone() {
        let keys = ["tombstone#k".to_owned()];
        let request = ErasureRequest {
            by: "alice",
            reason: "ticket 43",
            now: 700,
            tombstone_keys: &keys,
        };
        let plan = plan_erasure(&Found::default(), "erased_x", request);
        assert!(!plan.is_empty());
        assert_eq!(plan.tombstones[0].erased_at, 700);
    }

    #[test]
    fn tombstone_keys_are_keyed_digests_never_the_address_or_a_bare_hash() {
        let buyer = email("Buyer@Example.com");
        let a = Tombstone::key(b"0123456789abcdef0123456789abcdef", &buyer);
        assert!(a.starts_with(TOMBSTONE_PREFIX) && a.len() == TOMBSTONE_PREFIX.len() + 32);
        assert!(!a.contains("buyer"));
        assert_eq!(
            a,
            Tombstone::key(
                b"0123456789abcdef0123456789abcdef",
                &email("buyer@example.com")
            )
        );
        assert_ne!(
            a,
            Tombstone::key(b"another key, 32 bytes or longer!", &buyer)
        );
        use sha2::Digest;
        let bare = hex_encode(&sha2::Sha256::digest(buyer.as_str().as_bytes()));
        assert!(!bare.contains(a.trim_start_matches(TOMBSTONE_PREFIX)));
        // Counters and tombstones of one address under one key are unrelated.
        let counter = email_counter_prefix(b"0123456789abcdef0123456789abcdef", &buyer);
        assert!(!counter.contains(a.trim_start_matches(TOMBSTONE_PREFIX)));
    }

    fn tombstone(erased_at: i64) -> Tombstone {
        Tombstone {
            key: "tombstone#k".into(),
            pseudonym: "erased_x".into(),
            erased_at,
        }
    }

    fn payment_event(created_at: Option<i64>) -> DodoObject {
        DodoObject::Payment(crate::events::PaymentSnapshot {
            payment_id: "pay_1".into(),
            status: "succeeded".into(),
            email: Some(email("buyer@example.com")),
            email_invalid: false,
            product_id: Some("pdt_1".into()),
            subscription_id: None,
            customer_id: Some("cus_1".into()),
            checkout_ref: None,
            total_amount: Some(100),
            currency: Some("USD".into()),
            created_at,
            fully_refunded: false,
            dispute_lost: false,
        })
    }

    #[test]
    fn a_tombstone_pseudonymises_only_what_was_created_before_it() {
        let buyer = email("buyer@example.com");
        let mut stored = Stored::default();
        assert!(apply_tombstone(
            &mut stored,
            &payment_event(Some(100)),
            &buyer,
            &tombstone(200),
            300
        ));
        let payment = stored.payment.expect("a blank erased payment");
        assert_eq!(
            (
                payment.payment_id.as_str(),
                payment.erased_as.as_deref(),
                payment.email.as_ref(),
                payment.version
            ),
            ("pay_1", Some("erased_x"), None, 0)
        );

        let mut stored = Stored::default();
        assert!(!apply_tombstone(
            &mut stored,
            &payment_event(Some(201)),
            &buyer,
            &tombstone(200),
            300
        ));
        assert!(stored.payment.is_none(), "bought again after the erasure");

        // Another address's stored payment is not erased by this address's tombstone.
        let mut stored = Stored {
            payment: Some(PaymentRecord {
                payment_id: "pay_1".into(),
                email: Some(email("other@example.com")),
                ..PaymentRecord::default()
            }),
            ..Stored::default()
        };
        assert!(!apply_tombstone(
            &mut stored,
            &payment_event(None),
            &buyer,
            &tombstone(200),
            300
        ));
    }

    #[test]
    fn a_refund_goes_with_its_payment_and_a_subscription_with_its_creation() {
        let buyer = email("buyer@example.com");
        let refund = DodoObject::Refund(crate::events::RefundSnapshot {
            refund_id: "ref_1".into(),
            payment_id: "pay_1".into(),
            status: "succeeded".into(),
            is_partial: false,
            email: Some(buyer.clone()),
            created_at: Some(250),
        });
        // Its payment not stored: counted as before the erasure.
        let mut stored = Stored::default();
        assert!(apply_tombstone(
            &mut stored,
            &refund,
            &buyer,
            &tombstone(200),
            300
        ));
        assert_eq!(
            stored.payment.and_then(|p| p.erased_as).as_deref(),
            Some("erased_x")
        );
        // Its payment stored, made after the erasure: a new purchase, left alone.
        let mut stored = Stored {
            payment: Some(PaymentRecord {
                payment_id: "pay_1".into(),
                email: Some(buyer.clone()),
                created_at: 220,
                ..PaymentRecord::default()
            }),
            ..Stored::default()
        };
        assert!(!apply_tombstone(
            &mut stored,
            &refund,
            &buyer,
            &tombstone(200),
            300
        ));

        let subscription = |created_at| {
            DodoObject::Subscription(crate::events::SubscriptionSnapshot {
                subscription_id: "sub_1".into(),
                status: "active".into(),
                email: Some(buyer.clone()),
                email_invalid: false,
                customer_id: Some("cus_1".into()),
                product_id: None,
                next_billing_date: None,
                expires_at: None,
                trial_ends_at: None,
                created_at,
                scheduled_change: None,
                cancel_at_period_end: false,
            })
        };
        let mut stored = Stored::default();
        assert!(apply_tombstone(
            &mut stored,
            &subscription(Some(150)),
            &buyer,
            &tombstone(200),
            300
        ));
        let kept = stored.subscription.expect("a blank erased subscription");
        assert_eq!(
            (kept.email.as_ref(), kept.erased_as.as_deref(), kept.version),
            (None, Some("erased_x"), 0)
        );
        let mut stored = Stored::default();
        assert!(!apply_tombstone(
            &mut stored,
            &subscription(Some(201)),
            &buyer,
            &tombstone(200),
            300
        ));
    }
}
