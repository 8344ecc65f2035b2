//! Usage limits: what each plan may spend per period (`PLAN_LIMITS`), which period a grant's
//! usage counts in, the balance of a period from its stored counters and holds, and the
//! validation of the usage API's requests. Pure code; `llmxt-store` keeps the counters.
//!
//! A period's usage is kept as two counters and a set of holds. `spent` is everything ever
//! reserved in the period minus what commits and releases gave back; `used` is what commits
//! kept. A hold not committed in time stays in `spent`, and every reserve subtracts the holds
//! it sees expired, so a crashed caller's hold goes back to the balance with no background
//! process and no write having to remove it.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::{Date, Month, OffsetDateTime, Time};

use crate::env::{ConfigError, Env, is_token};
use crate::records::{Grant, source};

/// Largest amount one request may reserve, commit or consume.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// Longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 200;
/// Hold lifetime when the request names none.
pub const DEFAULT_HOLD_SECONDS: i64 = 300;
/// Longest hold a request may ask for.
pub const MAX_HOLD_SECONDS: i64 = 3_600;
/// How long an idempotency key (a hold, and then its outcome) is remembered.
pub const IDEMPOTENCY_SECONDS: i64 = 86_400;

/// How often an allowance starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The UTC day.
    Day,
    /// The subscription's billing period, or else the UTC calendar month.
    Month,
}

/// One meter's allowance on one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterLimit {
    /// Allowance per period; `None` = unlimited.
    pub amount: Option<i64>,
    /// The period it is counted over.
    pub period: Period,
}

/// `PLAN_LIMITS`: plan → meter → allowance. A meter a plan does not list is not available
/// to it; a plan not listed has no limits at all (and no meters).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanLimits(BTreeMap<String, BTreeMap<String, MeterLimit>>);

const VARIABLE: &str = "PLAN_LIMITS";

impl PlanLimits {
    /// Parses `professional=requests:1000/month+tokens:200000/month,enterprise=tokens:unlimited`
    /// (an `unlimited` meter has no period; `/month` is accepted and ignored).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut plans: BTreeMap<String, BTreeMap<String, MeterLimit>> = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let malformed = || {
                ConfigError::new(
                    VARIABLE,
                    format!(
                        "has a malformed entry {entry:?}; expected plan=meter:amount/period+meter:unlimited (period day or month)"
                    ),
                )
            };
            let (plan, meters) = entry.split_once('=').ok_or_else(malformed)?;
            let plan = plan.trim();
            if !is_token(plan) {
                return Err(malformed());
            }
            let mut limits = BTreeMap::new();
            for meter in meters.split('+').map(str::trim) {
                let (name, limit) = meter.split_once(':').ok_or_else(malformed)?;
                let name = name.trim();
                if !is_token(name) {
                    return Err(malformed());
                }
                let limit = parse_limit(limit.trim()).ok_or_else(malformed)?;
                if limits.insert(name.to_owned(), limit).is_some() {
                    return Err(ConfigError::new(
                        VARIABLE,
                        format!("names meter {name:?} twice for plan {plan:?}"),
                    ));
                }
            }
            if plans.insert(plan.to_owned(), limits).is_some() {
                return Err(ConfigError::new(
                    VARIABLE,
                    format!("names plan {plan:?} twice"),
                ));
            }
        }
        Ok(Self(plans))
    }

    /// Reads `PLAN_LIMITS` (empty when unset: no plan has limits).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Self::parse(&env.optional(VARIABLE).unwrap_or_default())
    }

    /// The meters of `plan`, when it has limits.
    pub fn meters(&self, plan: &str) -> Option<&BTreeMap<String, MeterLimit>> {
        self.0.get(plan)
    }

    /// Whether no plan has limits.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_limit(text: &str) -> Option<MeterLimit> {
    let (amount, period) = match text.split_once('/') {
        Some((amount, period)) => (amount.trim(), Some(period.trim())),
        None => (text, None),
    };
    let period = match period {
        Some("day") => Period::Day,
        Some("month") => Period::Month,
        None if amount == "unlimited" => Period::Month,
        _ => return None,
    };
    let amount = if amount == "unlimited" {
        None
    } else {
        let value: i64 = amount.parse().ok()?;
        if !(0..=MAX_AMOUNT).contains(&value) || amount.starts_with('+') {
            return None;
        }
        Some(value)
    };
    Some(MeterLimit { amount, period })
}

fn utc(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn midnight(date: Date) -> i64 {
    date.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp()
}

/// When the period counting usage at `now` ends (its `resets_at`), for usage counted against
/// `grant`: the next UTC midnight for `day`; for `month`, the end of a subscription's current
/// billing period when known and still ahead, else the first instant of the next UTC month.
pub fn resets_at(period: Period, grant: &Grant, now: i64) -> i64 {
    let today = utc(now).date();
    match period {
        Period::Day => midnight(today.next_day().unwrap_or(today)),
        Period::Month => {
            let subscription =
                grant.source == source::SUBSCRIPTION || grant.subscription_id.is_some();
            if let Some(end) = grant.period_end.filter(|end| subscription && *end > now) {
                return end;
            }
            let (year, month) = match today.month() {
                Month::December => (today.year() + 1, Month::January),
                month => (today.year(), month.next()),
            };
            Date::from_calendar_date(year, month, 1).map_or(now, midnight)
        }
    }
}

/// A period of one grant's usage: where its counters live in the buyer's usage item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// The grant the usage counts against (the best grant in the request's scope).
    pub grant: String,
    /// When the period ends (unix seconds).
    pub resets_at: i64,
}

impl Bucket {
    /// The stored name: `<resets_at>#<grant key>`.
    pub fn id(&self) -> String {
        format!("{}#{}", self.resets_at, self.grant)
    }

    /// Reads [`Bucket::id`] back.
    pub fn from_id(id: &str) -> Option<Self> {
        let (resets_at, grant) = id.split_once('#')?;
        Some(Self {
            grant: grant.to_owned(),
            resets_at: resets_at.parse().ok()?,
        })
    }
}

/// What became of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HoldState {
    /// Reserved; counts against the balance until committed, released or expired.
    #[default]
    Live,
    /// Committed: what it kept is in `used`.
    Committed,
    /// Released: all of it went back.
    Released,
}

impl HoldState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Committed => "committed",
            Self::Released => "released",
        }
    }

    /// Reads the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "live" => Some(Self::Live),
            "committed" => Some(Self::Committed),
            "released" => Some(Self::Released),
            _ => None,
        }
    }
}

/// One reservation, remembered under its idempotency key for [`IDEMPOTENCY_SECONDS`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hold {
    /// [`hold_id`] of the idempotency key.
    pub id: String,
    /// [`Bucket::id`] of the period it counts in.
    pub bucket: String,
    /// Reserved.
    pub amount: i64,
    /// Kept by the commit.
    pub committed: i64,
    /// When it was made (unix seconds).
    pub created_at: i64,
    /// When it stops being committable (unix seconds).
    pub expires_at: i64,
    /// What became of it.
    pub state: HoldState,
    /// `remaining` in the answer that granted it (repeated to a repeated key).
    pub remaining: Option<i64>,
    /// Units drawn from credit packs, by pack, in the order drawn (the rest of `amount`
    /// comes from the period's allowance).
    pub draws: Vec<(String, i64)>,
}

impl Hold {
    /// Units drawn from credit packs.
    pub fn drawn(&self) -> i64 {
        self.draws.iter().map(|(_, amount)| amount).sum()
    }

    /// Units drawn from `pack`.
    pub fn drawn_from(&self, pack: &str) -> i64 {
        self.draws
            .iter()
            .filter(|(id, _)| id == pack)
            .map(|(_, amount)| amount)
            .sum()
    }

    /// Units taken from the period's allowance.
    pub fn from_allowance(&self) -> i64 {
        self.amount - self.drawn()
    }

    /// Live and at or past its end: a reserve counts it as returned. It is back in the
    /// balance the second it ends, as the API promises, the second commits and releases are
    /// refused ([`Hold::open`]), so one clock never sees a hold both open and returned.
    pub fn lapsed(&self, now: i64) -> bool {
        self.state == HoldState::Live && self.expires_at <= now
    }

    /// Live and still committable or releasable at `now`.
    pub fn open(&self, now: i64) -> bool {
        self.state == HoldState::Live && self.expires_at > now
    }

    /// Whether a write may delete it: settled and older than the idempotency window, or
    /// counted in a period that has ended (whatever its state: its counters are gone too).
    /// A live hold that drew credits is kept: until it is settled its draws go back to their
    /// packs only by being counted as lapsed.
    pub fn prunable(&self, now: i64) -> bool {
        let settled = self.state != HoldState::Live;
        if !settled && !self.draws.is_empty() {
            return false;
        }
        let bucket_over = Bucket::from_id(&self.bucket).is_none_or(|b| b.resets_at <= now);
        bucket_over || (settled && self.created_at + IDEMPOTENCY_SECONDS <= now)
    }
}

/// A period's counters as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Reserved minus what was given back.
    pub spent: i64,
    /// Kept by commits.
    pub used: i64,
}

/// A period's balance at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// The allowance; `None` = unlimited.
    pub limit: Option<i64>,
    /// Kept by commits.
    pub used: i64,
    /// Held by live, unexpired holds.
    pub reserved: i64,
    /// Held by holds that lapsed: in `spent`, but back in the balance.
    pub lapsed: i64,
    /// What may still be reserved; `None` = unlimited.
    pub remaining: Option<i64>,
}

/// The balance of a period from its counters and the holds counted in it.
pub fn balance<'a>(
    limit: Option<i64>,
    counters: Counters,
    holds: impl IntoIterator<Item = &'a Hold>,
    now: i64,
) -> Balance {
    let lapsed: i64 = holds
        .into_iter()
        .filter(|hold| hold.lapsed(now))
        .map(Hold::from_allowance)
        .sum();
    let reserved = (counters.spent - counters.used - lapsed).max(0);
    let remaining = limit.map(|limit| (limit - counters.used - reserved).max(0));
    Balance {
        limit,
        used: counters.used,
        reserved,
        lapsed,
        remaining,
    }
}

/// The largest `spent` a conditional write may find for `amount` to fit the allowance:
/// `limit - amount + lapsed` (`lapsed` as read, which only grows until the period ends).
pub fn spent_ceiling(limit: i64, amount: i64, lapsed: i64) -> i64 {
    limit - amount + lapsed
}

/// The stored id of a hold made under `idempotency_key`: hex SHA-256, 128 bits.
pub fn hold_id(idempotency_key: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// What a `reservation` string names: everything a commit or release needs to write in one
/// request. The stored hold is the authority (every field is checked by the write's
/// condition), so the string only has to be opaque, not secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The buyer (normalised email).
    #[serde(rename = "e")]
    pub email: String,
    /// The meter.
    #[serde(rename = "m")]
    pub meter: String,
    /// [`Bucket::id`].
    #[serde(rename = "b")]
    pub bucket: String,
    /// [`hold_id`].
    #[serde(rename = "h")]
    pub hold: String,
    /// Reserved.
    #[serde(rename = "a")]
    pub amount: i64,
    /// Units drawn from credit packs, in the order drawn ([`Hold::draws`]).
    #[serde(rename = "k", default, skip_serializing_if = "Vec::is_empty")]
    pub draws: Vec<(String, i64)>,
}

impl Reservation {
    /// The opaque string handed to the caller (`r1.` + base64url JSON).
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("r1.{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Reads [`Reservation::encode`] back; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let payload = text.strip_prefix("r1.")?;
        if payload.len() > 2_000 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let reservation: Self = serde_json::from_slice(&bytes).ok()?;
        let drawn: i64 = reservation.draws.iter().map(|(_, amount)| *amount).sum();
        let sound = reservation.amount > 0
            && reservation.amount <= MAX_AMOUNT
            && reservation.draws.len() <= 16
            && reservation.draws.iter().all(|(_, amount)| *amount > 0)
            && drawn <= reservation.amount;
        sound.then_some(reservation)
    }
}

/// A validated `reserve` or `consume` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The meter.
    pub meter: String,
    /// How much.
    pub amount: i64,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// How long the hold lasts (ignored by `consume`).
    pub hold_seconds: i64,
}

/// Reads an integer from `least` up to [`MAX_AMOUNT`].
fn amount_field(
    body: &Value,
    field: &'static str,
    least: i64,
    message: &'static str,
) -> Result<Option<i64>, &'static str> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .filter(|amount| (least..=MAX_AMOUNT).contains(amount))
            .map(Some)
            .ok_or(message),
    }
}

/// Validates a `reserve` (or `consume`) body. The error names the field.
pub fn parse_reserve(body: &Value) -> Result<ReserveRequest, &'static str> {
    let meter = match body.get("meter") {
        Some(Value::String(meter)) if is_token(meter) && meter.len() <= 64 => meter.clone(),
        Some(_) => return Err("meter must be a meter name (letters, digits, _ - .)"),
        None => return Err("meter is required"),
    };
    let amount = amount_field(
        body,
        "amount",
        1,
        "amount must be a positive integer up to 10^12",
    )?
    .ok_or("amount is required")?;
    let idempotency_key = match body.get("idempotency_key") {
        Some(Value::String(key)) if !key.is_empty() && key.len() <= MAX_KEY_BYTES => key.clone(),
        Some(Value::String(key)) if key.is_empty() => {
            return Err("idempotency_key must not be empty");
        }
        Some(Value::String(_)) => return Err("idempotency_key must be at most 200 bytes"),
        Some(_) => return Err("idempotency_key must be a string"),
        None => return Err("idempotency_key is required"),
    };
    let hold_seconds = match body.get("hold_seconds") {
        None | Some(Value::Null) => DEFAULT_HOLD_SECONDS,
        Some(value) => value
            .as_i64()
            .filter(|s| (1..=MAX_HOLD_SECONDS).contains(s))
            .ok_or("hold_seconds must be an integer from 1 to 3600")?,
    };
    Ok(ReserveRequest {
        meter,
        amount,
        idempotency_key,
        hold_seconds,
    })
}

/// A validated `commit` or `release` body: the reservation, and for a commit the amount kept
/// (all of it when absent; never more than reserved).
pub fn parse_settle(body: &Value, commit: bool) -> Result<(Reservation, i64), &'static str> {
    let reservation = match body.get("reservation") {
        Some(Value::String(text)) => {
            Reservation::decode(text).ok_or("reservation is not a reservation this API issued")?
        }
        Some(_) => return Err("reservation must be a string"),
        None => return Err("reservation is required"),
    };
    let amount = if commit {
        // Zero is a commit of nothing: the work ran and used none of it.
        amount_field(
            body,
            "amount",
            0,
            "amount must be an integer from 0 up to the reserved amount",
        )?
        .unwrap_or(reservation.amount)
    } else {
        0
    };
    if amount > reservation.amount {
        return Err("amount must not exceed the reserved amount");
    }
    Ok((reservation, amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> i64 {
        crate::time::parse_rfc3339_seconds(text).expect("time")
    }

    #[test]
    fn plan_limits_parse_meters_periods_and_unlimited() {
        let limits = PlanLimits::parse(
            "professional=requests:1000/month+tokens:200000/month, enterprise=requests:20000/day+tokens:unlimited",
        )
        .expect("valid");
        let pro = limits.meters("professional").expect("pro");
        assert_eq!(
            pro["requests"],
            MeterLimit {
                amount: Some(1000),
                period: Period::Month
            }
        );
        let enterprise = limits.meters("enterprise").expect("enterprise");
        assert_eq!(enterprise["requests"].period, Period::Day);
        assert_eq!(enterprise["tokens"].amount, None);
        assert!(limits.meters("free").is_none());
        assert!(PlanLimits::parse("").expect("empty").is_empty());
    }

    #[test]
    fn bad_plan_limits_name_the_variable() {
        for bad in [
            "professional",
            "professional=requests",
            "professional=requests:10/week",
            "professional=requests:-1/month",
            "professional=requests:ten/month",
            "professional=requests:10/month+requests:20/month",
            "pro=a:1/day,pro=a:2/day",
            "pro fessional=a:1/day",
            "pro=a:10000000000001/day",
        ] {
            let error = PlanLimits::parse(bad).expect_err(bad);
            assert_eq!(error.variable, "PLAN_LIMITS", "{bad}");
        }
    }

    #[test]
    fn periods_are_utc_days_months_or_the_billing_period() {
        let now = at("2026-12-07T03:00:00Z");
        let one_time = Grant {
            source: source::PAYMENT.to_owned(),
            ..Grant::default()
        };
        assert_eq!(
            resets_at(Period::Day, &one_time, now),
            at("2026-12-08T00:00:00Z")
        );
        assert_eq!(
            resets_at(Period::Month, &one_time, now),
            at("2027-01-01T00:00:00Z")
        );
        let subscription = Grant {
            source: source::SUBSCRIPTION.to_owned(),
            subscription_id: Some("sub_1".to_owned()),
            period_end: Some(at("2026-12-19T10:00:00Z")),
            ..Grant::default()
        };
        assert_eq!(
            resets_at(Period::Month, &subscription, now),
            at("2026-12-19T10:00:00Z")
        );
        // Renewed: the period end moved, so does the bucket.
        let renewed = Grant {
            period_end: Some(at("2027-01-19T10:00:00Z")),
            ..subscription.clone()
        };
        assert_ne!(
            resets_at(Period::Month, &renewed, now),
            resets_at(Period::Month, &subscription, now)
        );
        // A period already over (grace) falls back to the calendar month.
        assert_eq!(
            resets_at(Period::Month, &subscription, at("2026-12-20T00:00:00Z")),
            at("2027-01-01T00:00:00Z")
        );
    }

    fn hold(amount: i64, expires_at: i64, state: HoldState) -> Hold {
        Hold {
            id: "h".into(),
            bucket: "9999999999#g".into(),
            amount,
            committed: 0,
            created_at: 0,
            expires_at,
            state,
            remaining: None,
            draws: Vec::new(),
        }
    }

    #[test]
    fn lapsed_holds_go_back_to_the_balance_when_they_end() {
        let holds = [
            hold(10, 100, HoldState::Live),
            hold(5, 1_000, HoldState::Live),
            hold(7, 50, HoldState::Committed),
        ];
        let counters = Counters { spent: 22, used: 7 };
        let during = balance(Some(100), counters, &holds, 99);
        assert_eq!((during.reserved, during.remaining), (15, Some(78)));
        let after = balance(Some(100), counters, &holds, 100);
        assert_eq!(after.lapsed, 10);
        assert_eq!((after.reserved, after.remaining), (5, Some(88)));
        assert_eq!(spent_ceiling(100, 88, after.lapsed), 22);
        assert!(!holds[0].open(100));
        assert!(holds[1].open(100));
    }

    #[test]
    fn reservations_round_trip_and_forgeries_are_refused() {
        let reservation = Reservation {
            email: "a@example.com".into(),
            meter: "tokens".into(),
            bucket: "1767225600#pay_1".into(),
            hold: hold_id("key-1"),
            amount: 40,
            draws: Vec::new(),
        };
        let text = reservation.encode();
        assert_eq!(Reservation::decode(&text), Some(reservation));
        assert_eq!(Reservation::decode("r1.!!"), None);
        assert_eq!(Reservation::decode("pay_1"), None);
        assert_ne!(hold_id("key-1"), hold_id("key-2"));
        assert_eq!(hold_id("key-1").len(), 32);
    }

    #[test]
    fn reserve_bodies_are_validated_field_by_field() {
        let ok = parse_reserve(&json!({"meter": "tokens", "amount": 5, "idempotency_key": "k"}))
            .expect("valid");
        assert_eq!(ok.hold_seconds, DEFAULT_HOLD_SECONDS);
        let cases = [
            (json!({"amount": 5, "idempotency_key": "k"}), "meter"),
            (json!({"meter": "tokens", "idempotency_key": "k"}), "amount"),
            (
                json!({"meter": "tokens", "amount": 0, "idempotency_key": "k"}),
                "amount",
            ),
            (
                json!({"meter": "tokens", "amount": 1.5, "idempotency_key": "k"}),
                "amount",
            ),
            (
                json!({"meter": "tokens", "amount": "5", "idempotency_key": "k"}),
                "amount",
            ),
            (
                json!({"meter": "tokens", "amount": 1_000_000_000_001_i64, "idempotency_key": "k"}),
                "amount",
            ),
            (json!({"meter": "tokens", "amount": 5}), "idempotency_key"),
            (
                json!({"meter": "tokens", "amount": 5, "idempotency_key": "k".repeat(201)}),
                "idempotency_key",
            ),
            (
                json!({"meter": "tokens", "amount": 5, "idempotency_key": "k", "hold_seconds": 3601}),
                "hold_seconds",
            ),
            (
                json!({"meter": "tokens", "amount": 5, "idempotency_key": "k", "hold_seconds": 0}),
                "hold_seconds",
            ),
        ];
        for (body, field) in cases {
            let message = parse_reserve(&body).expect_err(&body.to_string());
            assert!(message.starts_with(field), "{body} → {message}");
        }
        assert!(parse_reserve(&json!({"meter": "tokens", "amount": MAX_AMOUNT, "idempotency_key": "k".repeat(200)})).is_ok());
    }

    #[test]
    fn commits_never_keep_more_than_was_reserved() {
        let reservation = Reservation {
            email: "a@example.com".into(),
            meter: "tokens".into(),
            bucket: "1#g".into(),
            hold: "h".into(),
            amount: 40,
            draws: Vec::new(),
        };
        let text = reservation.encode();
        assert_eq!(
            parse_settle(&json!({"reservation": text}), true)
                .expect("all")
                .1,
            40
        );
        assert_eq!(
            parse_settle(&json!({"reservation": text, "amount": 12}), true)
                .expect("part")
                .1,
            12
        );
        assert!(parse_settle(&json!({"reservation": text, "amount": 41}), true).is_err());
        assert_eq!(
            parse_settle(&json!({"reservation": text, "amount": 0}), true)
                .expect("nothing used")
                .1,
            0
        );
        assert!(parse_settle(&json!({"reservation": text, "amount": -1}), true).is_err());
        assert!(parse_settle(&json!({}), false).is_err());
    }
}
