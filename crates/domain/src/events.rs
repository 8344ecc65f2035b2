//! Dodo webhook payloads, parsed permissively.
//!
//! Only the fields the event policy needs are read; unknown fields, nulls and odd types
//! elsewhere are ignored, because a strict schema that rejects a real payload leaves a
//! paying buyer without access. The object's kind comes from `data.payload_type` (falling
//! back to the event type's prefix) and its state from `data`, never from `type` alone.

use serde_json::{Map, Value};

use crate::email::Email;
use crate::time::{parse_rfc3339_micros, parse_rfc3339_seconds};

/// A webhook body that is not a Dodo event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventParseError {
    /// The body is not JSON.
    #[error("body is not valid JSON")]
    NotJson,
    /// JSON, but without a string `type` and an object `data`.
    #[error("body is not a webhook event (needs \"type\" and an object \"data\")")]
    NotAnEvent,
}

/// One parsed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct DodoEvent {
    /// `type`, e.g. `payment.succeeded`.
    pub event_type: String,
    /// `timestamp` in unix microseconds, 0 when absent or unreadable.
    pub timestamp_micros: i64,
    /// The object the event carries, in its state at delivery time.
    pub object: DodoObject,
}

/// The object in `data`.
#[derive(Debug, Clone, PartialEq)]
pub enum DodoObject {
    /// A payment.
    Payment(PaymentSnapshot),
    /// A subscription.
    Subscription(SubscriptionSnapshot),
    /// A refund of a payment.
    Refund(RefundSnapshot),
    /// A dispute of a payment.
    Dispute(DisputeSnapshot),
    /// A kind the policy does not act on (licence keys, checkouts, …).
    Unhandled,
    /// A kind we act on, but missing the id we need; cannot heal on retry.
    Unusable(&'static str),
}

/// A payment's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSnapshot {
    /// `payment_id`
    pub payment_id: String,
    /// `status`, lower-cased (`succeeded`, `failed`, `cancelled`, `processing`, …).
    pub status: String,
    /// `customer.email`, else `metadata.email`.
    pub email: Option<Email>,
    /// An address was given but none is acceptable ([`Email::parse`]).
    pub email_invalid: bool,
    /// `customer.customer_id`.
    pub customer_id: Option<String>,
    /// `metadata.checkout_ref`, set by `/upgrade/checkout`.
    pub checkout_ref: Option<String>,
    /// First `product_cart[].product_id`.
    pub product_id: Option<String>,
    /// `subscription_id` for a subscription's payments, else the first of
    /// `subscription_ids` (a payment may pay several).
    pub subscription_id: Option<String>,
    /// `total_amount` in the smallest currency unit.
    pub total_amount: Option<i64>,
    /// `currency`
    pub currency: Option<String>,
    /// `created_at`, unix seconds.
    pub created_at: Option<i64>,
    /// A succeeded, non-partial refund is listed in `refunds`.
    pub fully_refunded: bool,
    /// A lost or accepted dispute is listed in `disputes`.
    pub dispute_lost: bool,
}

impl PaymentSnapshot {
    /// Whether the payment has gone through.
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }
}

/// A subscription's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    /// `subscription_id`
    pub subscription_id: String,
    /// `status`, lower-cased (`pending`, `active`, `on_hold`, `past_due`, `paused`,
    /// `cancelled`, `expired`, `failed`).
    pub status: String,
    /// `customer.email`, else `metadata.email`.
    pub email: Option<Email>,
    /// An address was given but none is acceptable ([`Email::parse`]).
    pub email_invalid: bool,
    /// `customer.customer_id`.
    pub customer_id: Option<String>,
    /// `product_id`
    pub product_id: Option<String>,
    /// `next_billing_date`, unix seconds: the end of the paid period.
    pub next_billing_date: Option<i64>,
    /// `expires_at`, unix seconds, when Dodo sets one.
    pub expires_at: Option<i64>,
    /// End of the free trial: `created_at` + `trial_period_days`, when there is a trial.
    pub trial_ends_at: Option<i64>,
    /// `created_at`, unix seconds.
    pub created_at: Option<i64>,
    /// `scheduled_change`: a plan change waiting for its date (a downgrade at the next
    /// billing date).
    pub scheduled_change: Option<ScheduledChange>,
    /// `cancel_at_next_billing_date`: the buyer cancelled, effective when the paid period
    /// ends (the status stays `active` until then).
    pub cancel_at_period_end: bool,
}

/// A plan change Dodo has scheduled (`scheduled_change` of a subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledChange {
    /// The product the subscription moves to.
    pub product_id: String,
    /// When, unix seconds.
    pub effective_at: i64,
}

/// A refund's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundSnapshot {
    /// `refund_id`
    pub refund_id: String,
    /// The refunded payment.
    pub payment_id: String,
    /// `status`, lower-cased.
    pub status: String,
    /// `is_partial`; a missing flag counts as partial (no revocation on a guess).
    pub is_partial: bool,
    /// `customer.email`, else `metadata.email`.
    pub email: Option<Email>,
    /// `created_at`, unix seconds: the time access is revoked as of.
    pub created_at: Option<i64>,
}

impl RefundSnapshot {
    /// A completed refund of the whole payment.
    pub fn is_full_and_succeeded(&self) -> bool {
        self.status == "succeeded" && !self.is_partial
    }
}

/// A dispute's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeSnapshot {
    /// `dispute_id`
    pub dispute_id: String,
    /// The disputed payment.
    pub payment_id: String,
    /// `dispute_status`, lower-cased (`dispute_opened`, `dispute_lost`, …).
    pub dispute_status: String,
    /// `customer.email`, else `metadata.email`.
    pub email: Option<Email>,
    /// `created_at`, unix seconds: the time a lost dispute revokes access as of.
    pub created_at: Option<i64>,
}

impl DisputeSnapshot {
    /// The merchant lost (or accepted) the dispute: the money went back.
    pub fn is_lost(&self) -> bool {
        is_lost_dispute_status(&self.dispute_status)
    }
}

fn is_lost_dispute_status(status: &str) -> bool {
    matches!(
        status,
        "dispute_lost" | "dispute_accepted" | "lost" | "accepted"
    )
}

/// Parses a webhook body.
pub fn parse_event(body: &[u8]) -> Result<DodoEvent, EventParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| EventParseError::NotJson)?;
    let (Some(event_type), Some(data)) = (
        value.get("type").and_then(Value::as_str),
        value.get("data").and_then(Value::as_object),
    ) else {
        return Err(EventParseError::NotAnEvent);
    };
    let timestamp_micros = text(value.get("timestamp"))
        .and_then(|t| parse_rfc3339_micros(&t))
        .unwrap_or(0);
    Ok(DodoEvent {
        event_type: event_type.to_owned(),
        timestamp_micros,
        object: parse_object(event_type, data),
    })
}

fn parse_object(event_type: &str, data: &Map<String, Value>) -> DodoObject {
    let kind = text(data.get("payload_type"))
        .map(|k| k.to_ascii_lowercase())
        .unwrap_or_else(|| {
            event_type
                .split('.')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        });
    match kind.as_str() {
        "payment" => parse_payment(data),
        "subscription" => parse_subscription(data),
        "refund" => parse_refund(data),
        "dispute" => parse_dispute(data),
        _ => DodoObject::Unhandled,
    }
}

fn parse_payment(data: &Map<String, Value>) -> DodoObject {
    let Some(payment_id) = text(data.get("payment_id")) else {
        return DodoObject::Unusable("payment without payment_id");
    };
    let product_id = data
        .get("product_cart")
        .and_then(Value::as_array)
        .and_then(|cart| cart.iter().find_map(|item| text(item.get("product_id"))));
    let fully_refunded = list(data.get("refunds")).any(|refund| {
        lower(refund.get("status")).as_deref() == Some("succeeded")
            && refund.get("is_partial").and_then(Value::as_bool) == Some(false)
    });
    let dispute_lost = list(data.get("disputes")).any(|dispute| {
        lower(dispute.get("dispute_status")).is_some_and(|s| is_lost_dispute_status(&s))
    });
    let (email, email_invalid) = email(data);
    let subscription_id = text(data.get("subscription_id"))
        .or_else(|| list(data.get("subscription_ids")).find_map(|id| text(Some(id))));
    DodoObject::Payment(PaymentSnapshot {
        payment_id,
        status: lower(data.get("status")).unwrap_or_default(),
        email,
        email_invalid,
        customer_id: data
            .get("customer")
            .and_then(|c| text(c.get("customer_id"))),
        checkout_ref: data
            .get("metadata")
            .and_then(|m| scalar_text(m.get("checkout_ref"))),
        product_id,
        subscription_id,
        total_amount: integer(data.get("total_amount")),
        currency: text(data.get("currency")),
        created_at: text(data.get("created_at")).and_then(|t| parse_rfc3339_seconds(&t)),
        fully_refunded,
        dispute_lost,
    })
}

fn parse_subscription(data: &Map<String, Value>) -> DodoObject {
    let Some(subscription_id) = text(data.get("subscription_id")) else {
        return DodoObject::Unusable("subscription without subscription_id");
    };
    let date = |field: &str| text(data.get(field)).and_then(|t| parse_rfc3339_seconds(&t));
    let (email, email_invalid) = email(data);
    DodoObject::Subscription(SubscriptionSnapshot {
        subscription_id,
        status: lower(data.get("status")).unwrap_or_default(),
        email,
        email_invalid,
        customer_id: data
            .get("customer")
            .and_then(|c| text(c.get("customer_id"))),
        product_id: text(data.get("product_id")),
        next_billing_date: date("next_billing_date"),
        expires_at: date("expires_at"),
        trial_ends_at: integer(data.get("trial_period_days"))
            .filter(|days| *days > 0)
            .zip(date("created_at"))
            .map(|(days, created)| created.saturating_add(days.saturating_mul(86_400))),
        created_at: date("created_at"),
        cancel_at_period_end: data
            .get("cancel_at_next_billing_date")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        scheduled_change: data.get("scheduled_change").and_then(|change| {
            Some(ScheduledChange {
                product_id: text(change.get("product_id"))?,
                effective_at: text(change.get("effective_at"))
                    .and_then(|t| parse_rfc3339_seconds(&t))?,
            })
        }),
    })
}

fn parse_refund(data: &Map<String, Value>) -> DodoObject {
    let (Some(refund_id), Some(payment_id)) =
        (text(data.get("refund_id")), text(data.get("payment_id")))
    else {
        return DodoObject::Unusable("refund without refund_id or payment_id");
    };
    DodoObject::Refund(RefundSnapshot {
        refund_id,
        payment_id,
        status: lower(data.get("status")).unwrap_or_default(),
        is_partial: data
            .get("is_partial")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        email: email(data).0,
        created_at: text(data.get("created_at")).and_then(|t| parse_rfc3339_seconds(&t)),
    })
}

fn parse_dispute(data: &Map<String, Value>) -> DodoObject {
    let (Some(dispute_id), Some(payment_id)) =
        (text(data.get("dispute_id")), text(data.get("payment_id")))
    else {
        return DodoObject::Unusable("dispute without dispute_id or payment_id");
    };
    DodoObject::Dispute(DisputeSnapshot {
        dispute_id,
        payment_id,
        dispute_status: lower(data.get("dispute_status")).unwrap_or_default(),
        email: email(data).0,
        created_at: text(data.get("created_at")).and_then(|t| parse_rfc3339_seconds(&t)),
    })
}

/// `customer.email`, else `metadata.email`, when it is a valid address; and whether an
/// address was given that is not.
fn email(data: &Map<String, Value>) -> (Option<Email>, bool) {
    let from_customer = data.get("customer").and_then(|c| text(c.get("email")));
    let from_metadata = data.get("metadata").and_then(|m| text(m.get("email")));
    let given: Vec<String> = [from_customer, from_metadata]
        .into_iter()
        .flatten()
        .collect();
    let valid = given.iter().find_map(|raw| Email::parse(raw).ok());
    let invalid = valid.is_none() && !given.is_empty();
    (valid, invalid)
}

/// A metadata value as text: strings trimmed, numbers and booleans written out.
fn scalar_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => text(Some(other)),
    }
}

/// A non-empty string field, trimmed.
fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn lower(value: Option<&Value>) -> Option<String> {
    text(value).map(|s| s.to_ascii_lowercase())
}

/// An integer given as a JSON number or a numeric string.
fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn list(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}
