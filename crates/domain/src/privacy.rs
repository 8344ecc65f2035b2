//! A buyer's data on request: the pure parts of export and erasure.
//!
//! Erasing an address (`llmxt-admin forget`) deletes its entitlement and every restore record
//! (sign-in tokens, per-email counters), and keeps each payment for the accounts with the
//! email replaced by a *pseudonym*: a keyed hash of the address under `PRIVACY_KEY`. The same
//! address always gives the same pseudonym, so an erasure receipt (pseudonym, when, who, why;
//! never the address) is found again from the address, and nobody without the key can go
//! from a pseudonym back to an address by trying candidates.

use crate::config::{ConfigError, Env, MIN_SIGNING_SECRET_BYTES};
use crate::crypto::{hex_encode, hmac_sha256};
use crate::email::Email;
use crate::records::{Entitlement, PaymentRecord, RATE_LIMIT_PREFIX, SubscriptionRecord, source};
use crate::secret::Secret;

/// The variable holding the pseudonym key.
pub const PRIVACY_KEY_VARIABLE: &str = "PRIVACY_KEY";

/// Key prefix of erasure receipts in the payments table (`erasure#<pseudonym>`).
pub const ERASURE_PREFIX: &str = "erasure#";

/// Prefix of every pseudonym, so an erased payment is recognisable at a glance.
pub const PSEUDONYM_PREFIX: &str = "erased_";

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
    let mac = hmac_sha256(key, &[b"llmxt counter\n", email.as_str().as_bytes()]);
    format!("{RATE_LIMIT_PREFIX}email#{}#", hex_encode(&mac[..16]))
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
}

impl ErasurePlan {
    /// Nothing left to erase (a second `forget`).
    pub fn is_empty(&self) -> bool {
        self.entitlement.is_none()
            && self.payments.is_empty()
            && self.subscriptions.is_empty()
            && self.restore_keys.is_empty()
    }
}

/// Decides the erasure of what was `found` for one address.
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
        };
        let request = ErasureRequest {
            by: "alice",
            reason: "ticket 42",
            now: 500,
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

        let after = Found {
            subscriptions: plan.subscriptions.clone(),
            receipt: Some(plan.receipt.clone()),
            ..Found::default()
        };
        assert!(plan_erasure(&after, "erased_x", request).is_empty());
    }
}
