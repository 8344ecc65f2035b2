//! Late and reordered deliveries of one subscription's history (payments, renewals, a refund
//! or lost dispute, a plan change, a cancellation): whatever the order and the delays, the
//! access stored ends the same as when every event arrived at once, in order. A refund or
//! lost dispute revokes as of its own time, not as of when it is processed.
//!
//! The policy is pure, so the records live in memory here; the same sequence runs against
//! DynamoDB Local in crates/store/tests/late_events.rs.
#![allow(clippy::unwrap_used)]

use llmxt_domain::config::PlanCatalog;
use llmxt_domain::email::Email;
use llmxt_domain::events::{
    DisputeSnapshot, PaymentSnapshot, RefundSnapshot, SubscriptionSnapshot,
};
use llmxt_domain::policy::{
    Changes, Decision, DeliveryContext, PolicySettings, Stored, decide_dispute, decide_payment,
    decide_refund, decide_subscription,
};
use llmxt_domain::records::{Entitlement, Freshness, PaymentRecord, SubscriptionRecord, status};
use proptest::prelude::*;
use std::collections::BTreeMap;

const T0: i64 = 1_767_225_600; // 2026-01-01
const DAY: i64 = 86_400;
const PERIOD: i64 = 30 * DAY;
const GRACE: i64 = 3 * DAY;
const SUB: &str = "sub_1";

fn buyer() -> Email {
    Email::parse("late@example.com").unwrap()
}

/// One event of the subscription's history, at its own time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// Payment `k` (the first, then renewals) succeeded.
    Pay(u8),
    /// A snapshot of the subscription in period `k`, of product `p` or `e`, in this status.
    Subscription(u8, char, &'static str),
    /// A full refund of payment `k`.
    Refund(u8),
    /// A lost dispute of payment `k`.
    DisputeLost(u8),
}

#[derive(Debug, Clone)]
struct Timed {
    event: Event,
    at: i64,
}

/// The in-memory tables.
#[derive(Default)]
struct Memory {
    payments: BTreeMap<String, PaymentRecord>,
    subscription: Option<SubscriptionRecord>,
    entitlement: Option<Entitlement>,
}

impl Memory {
    fn stored(&self, payment_id: Option<&str>) -> Stored {
        Stored {
            payment: payment_id.and_then(|id| self.payments.get(id).cloned()),
            subscription: self.subscription.clone(),
            entitlement: self.entitlement.clone(),
            credit_pack: None,
        }
    }

    fn write(&mut self, changes: Changes) {
        if let Some(payment) = changes.payment {
            self.payments.insert(payment.payment_id.clone(), payment);
        }
        if let Some(subscription) = changes.subscription {
            self.subscription = Some(subscription);
        }
        if let Some(entitlement) = changes.entitlement {
            self.entitlement = Some(entitlement);
        }
    }

    fn apply(&mut self, settings: PolicySettings<'_>, timed: &Timed, received_at: i64) {
        let id = format!("msg_{:?}", timed.event);
        let delivery = DeliveryContext {
            webhook_id: &id,
            freshness: Freshness {
                webhook_timestamp: received_at,
                event_timestamp_micros: timed.at * 1_000_000,
            },
            now: received_at,
        };
        let payment_id = |k: u8| format!("pay_{k}");
        let decision = match &timed.event {
            Event::Pay(k) => {
                let snapshot = PaymentSnapshot {
                    payment_id: payment_id(*k),
                    status: "succeeded".into(),
                    email: Some(buyer()),
                    email_invalid: false,
                    customer_id: Some("cus_1".into()),
                    checkout_ref: None,
                    product_id: Some("pdt_p".into()),
                    subscription_id: Some(SUB.into()),
                    total_amount: Some(400),
                    currency: Some("USD".into()),
                    created_at: Some(timed.at),
                    fully_refunded: false,
                    dispute_lost: false,
                };
                let stored = self.stored(Some(&snapshot.payment_id));
                decide_payment(settings, delivery, &snapshot, &stored)
            }
            Event::Subscription(k, product, state) => {
                let snapshot = SubscriptionSnapshot {
                    subscription_id: SUB.into(),
                    status: (*state).into(),
                    email: Some(buyer()),
                    email_invalid: false,
                    customer_id: Some("cus_1".into()),
                    product_id: Some(format!("pdt_{product}")),
                    next_billing_date: Some(T0 + (i64::from(*k) + 1) * PERIOD),
                    expires_at: None,
                    trial_ends_at: None,
                    created_at: Some(T0),
                    scheduled_change: None,
                    cancel_at_period_end: false,
                };
                let stored = self.stored(None);
                decide_subscription(settings, delivery, &snapshot, &stored)
            }
            Event::Refund(k) => {
                let snapshot = RefundSnapshot {
                    refund_id: format!("ref_{k}"),
                    payment_id: payment_id(*k),
                    status: "succeeded".into(),
                    is_partial: false,
                    email: Some(buyer()),
                    created_at: Some(timed.at),
                };
                let stored = self.stored(Some(&snapshot.payment_id));
                decide_refund(settings, delivery, &snapshot, &stored)
            }
            Event::DisputeLost(k) => {
                let snapshot = DisputeSnapshot {
                    dispute_id: format!("dis_{k}"),
                    payment_id: payment_id(*k),
                    dispute_status: "dispute_lost".into(),
                    email: Some(buyer()),
                    created_at: Some(timed.at),
                };
                let stored = self.stored(Some(&snapshot.payment_id));
                decide_dispute(settings, delivery, &snapshot, &stored)
            }
        };
        if let Decision::Apply(changes) = decision {
            self.write(*changes);
        }
    }

    /// What access ended as: the subscription grant's status, plan, and end (which means
    /// nothing once revoked).
    fn access(&self) -> Option<(String, Option<i64>, String)> {
        let grant = self.entitlement.as_ref()?.grants.get(SUB)?;
        let end = (grant.status != status::REVOKED).then_some(grant.expires_at);
        Some((grant.status.clone(), end.flatten(), grant.plan.clone()))
    }
}

fn catalog() -> PlanCatalog {
    PlanCatalog::parse("pdt_p=professional,pdt_e=enterprise", "professional").unwrap()
}

/// Applies `events` in the order of their delivery times (`delays` after each event's own
/// time; ties in history order), returning the final records.
fn run(events: &[Timed], delays: &[i64]) -> (Memory, i64) {
    let plans = catalog();
    let settings = PolicySettings {
        plans: &plans,
        claim_ttl_seconds: 600,
        grace_seconds: GRACE,
    };
    let mut order: Vec<(i64, usize)> = events
        .iter()
        .zip(delays)
        .enumerate()
        .map(|(index, (timed, delay))| (timed.at + delay, index))
        .collect();
    order.sort_unstable();
    let mut memory = Memory::default();
    for (received_at, index) in &order {
        memory.apply(settings, &events[*index], *received_at);
    }
    let last = order.last().map_or(T0, |(at, _)| *at);
    (memory, last)
}

/// A subscription's history over `periods` periods: each period's payment and renewal
/// snapshot (of product `products[k]`), optionally one refund or lost dispute of one payment
/// some days into it or later, optionally a cancellation in the last period.
fn history() -> impl Strategy<Value = Vec<Timed>> {
    (
        2u8..=3,
        prop::collection::vec(prop_oneof![Just('p'), Just('e')], 3),
        prop::option::of((0u8..3, 1i64..85, any::<bool>())),
        prop::option::of(1i64..29),
    )
        .prop_map(|(periods, products, revocation, cancel_day)| {
            let mut events = Vec::new();
            for k in 0..periods {
                let start = T0 + i64::from(k) * PERIOD;
                events.push(Timed {
                    event: Event::Pay(k),
                    at: start,
                });
                events.push(Timed {
                    event: Event::Subscription(k, products[usize::from(k)], "active"),
                    at: start + 60,
                });
            }
            let last = periods - 1;
            if let Some(day) = cancel_day {
                events.push(Timed {
                    event: Event::Subscription(last, products[usize::from(last)], "cancelled"),
                    at: T0 + i64::from(last) * PERIOD + day * DAY,
                });
            }
            if let Some((k, day, dispute)) = revocation {
                let k = k.min(last);
                // An hour into its day: never at the very second of a renewal, whose
                // payment and snapshot Dodo sends together.
                let at = (T0 + i64::from(k) * PERIOD + day * DAY + 3_600)
                    .min(T0 + i64::from(periods) * PERIOD - DAY);
                events.push(Timed {
                    event: if dispute {
                        Event::DisputeLost(k)
                    } else {
                        Event::Refund(k)
                    },
                    at,
                });
            }
            events.sort_by_key(|timed| timed.at);
            events
        })
}

fn check(events: &[Timed], delays: &[i64]) -> Result<(), TestCaseError> {
    let (in_order, _) = run(events, &vec![0; events.len()]);
    let (late, last_delivery) = run(events, delays);
    prop_assert_eq!(late.access(), in_order.access());
    let (late_e, in_order_e) = (
        late.entitlement.as_ref().unwrap(),
        in_order.entitlement.as_ref().unwrap(),
    );
    for t in (0..6).map(|i| last_delivery + i * 10 * DAY) {
        prop_assert_eq!(late_e.is_pro(t), in_order_e.is_pro(t), "at {}", t);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("LLMXT_LATE_EVENT_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn the_stored_result_does_not_depend_on_order_or_delay(
        (events, delays) in history().prop_flat_map(|events| {
            let n = events.len();
            (Just(events), prop::collection::vec(prop_oneof![
                3 => Just(0i64),
                2 => 0i64..(2 * DAY),
                2 => 0i64..(40 * DAY),
            ], n))
        })
    ) {
        check(&events, &delays)?;
    }
}

/// The first payment refunded on day 10, delivered on day 31, after the renewal paid on day
/// 30 was applied: the renewed, paid period stays granted.
#[test]
fn a_late_refund_of_the_first_payment_keeps_the_renewed_period() {
    let events = [
        Timed {
            event: Event::Pay(0),
            at: T0,
        },
        Timed {
            event: Event::Subscription(0, 'p', "active"),
            at: T0 + 60,
        },
        Timed {
            event: Event::Refund(0),
            at: T0 + 10 * DAY,
        },
        Timed {
            event: Event::Pay(1),
            at: T0 + PERIOD,
        },
        Timed {
            event: Event::Subscription(1, 'p', "active"),
            at: T0 + PERIOD + 60,
        },
    ];
    // The refund arrives on day 31, after everything else.
    let delays = [0, 0, 21 * DAY, 0, 0];
    let (late, _) = run(&events, &delays);
    let renewed_end = T0 + 2 * PERIOD;
    let entitlement = late.entitlement.as_ref().unwrap();
    assert!(entitlement.is_pro(T0 + 31 * DAY));
    assert!(entitlement.is_pro(renewed_end - 1));
    let grant = &entitlement.grants[SUB];
    assert_eq!(grant.expires_at, Some(renewed_end + GRACE));
    assert_eq!(grant.revoked_at, Some(T0 + 10 * DAY));
    assert_eq!(grant.revoked_period_end, Some(T0 + PERIOD));
    check(&events, &delays).unwrap();
    // In order, the refund revoked days 10 to 30 only.
    let (in_order, _) = run(&events[..3], &[0, 0, 0]);
    assert!(!in_order.entitlement.unwrap().is_pro(T0 + 11 * DAY));
}
