//! A model check of access: random sequences of deliveries (payments, refunds, lost
//! disputes, subscription states and plan changes, redeliveries, in any order) over three
//! purchases of one email, applied through the ledger against DynamoDB Local, compared with
//! a plain model: Pro iff some purchase is paid, not refunded or lost, and within its period
//! (a paused subscription's without grace); the plan shown is the highest of those giving
//! access, a subscription's being the product of its latest snapshot; the features are
//! those plans' union.
//!
//! `LLMXT_MODEL_CASES` sets the number of cases (default 48; docs/reliability.md records a
//! long run).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use std::collections::BTreeMap;

use llmxt_domain::access::{PlanFeatures, access_summary};
use llmxt_domain::config::PlanCatalog;
use llmxt_domain::email::Email;
use llmxt_domain::events::parse_event;
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::time::parse_rfc3339_seconds;
use llmxt_store::ledger::{Delivery, Origin, apply_delivery};
use llmxt_store::store::Store;
use llmxt_testkit::{dodo_body, fresh_store};
use proptest::prelude::*;
use serde_json::json;

const NOW: i64 = 1_768_067_800;
const GRACE: i64 = 3 * 86_400;
const PERIOD_END: &str = "2026-02-10T17:55:53Z";

/// One event as Dodo would send it; its place in the generated list is its true order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// One-time purchase A or B paid.
    Pay(char),
    /// Its full refund.
    Refund(char),
    /// A lost dispute of it.
    DisputeLost(char),
    /// The subscription's first payment.
    PaySubscription,
    /// Its refund.
    RefundSubscription,
    /// Its lost dispute.
    DisputeLostSubscription,
    /// A subscription snapshot in this status (same paid period), of product `p`
    /// (professional) or `e` (enterprise): any event type, e.g. `plan_changed`.
    Subscription(&'static str, char),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        prop_oneof![Just('a'), Just('b')].prop_map(Event::Pay),
        prop_oneof![Just('a'), Just('b')].prop_map(Event::Refund),
        prop_oneof![Just('a'), Just('b')].prop_map(Event::DisputeLost),
        Just(Event::PaySubscription),
        Just(Event::RefundSubscription),
        Just(Event::DisputeLostSubscription),
        (
            prop_oneof![
                Just("active"),
                Just("on_hold"),
                Just("past_due"),
                Just("paused"),
                Just("cancelled")
            ],
            prop_oneof![Just('p'), Just('e')]
        )
            .prop_map(|(status, product)| Event::Subscription(status, product)),
    ]
}

/// A history in true order (each event at most once; `expired` can only end the
/// subscription's snapshots), and the order deliveries arrive in, with redeliveries.
fn scenario() -> impl Strategy<Value = (Vec<Event>, Vec<usize>)> {
    (prop::collection::vec(event(), 1..9), any::<bool>())
        .prop_map(|(mut events, ends_expired)| {
            let mut seen = Vec::new();
            events.retain(|e| {
                let fresh = !seen.contains(e) || matches!(e, Event::Subscription(..));
                seen.push(*e);
                fresh
            });
            if ends_expired {
                events.push(Event::Subscription("expired", 'p'));
            }
            events
        })
        .prop_flat_map(|events| {
            let n = events.len();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let redeliveries = prop::collection::vec(0..n, 0..4);
            (Just(events), order, redeliveries).prop_map(|(events, mut order, again)| {
                order.extend(again);
                (events, order)
            })
        })
}

/// The plain model: is the email Pro at `t`, with every event delivered, and with which
/// plan (highest giving access)?
fn model_plan(events: &[Event], t: i64) -> Option<&'static str> {
    let has = |e: Event| events.contains(&e);
    let one_time =
        |p: char| has(Event::Pay(p)) && !has(Event::Refund(p)) && !has(Event::DisputeLost(p));
    let snapshots: Vec<(&str, char)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Subscription(status, product) => Some((*status, *product)),
            _ => None,
        })
        .collect();
    let evidence = has(Event::PaySubscription) || !snapshots.is_empty();
    // A refund or dispute reaches the subscription only through its payment.
    let revoked = has(Event::PaySubscription)
        && (has(Event::RefundSubscription) || has(Event::DisputeLostSubscription));
    let period_end = parse_rfc3339_seconds(PERIOD_END).unwrap();
    let within_period = match snapshots.last().map(|(status, _)| *status) {
        None => t < NOW + llmxt_domain::policy::PROVISIONAL_SUBSCRIPTION_SECONDS,
        Some("expired") => false,
        Some("cancelled" | "paused") => t < period_end,
        Some(_) => t < period_end + GRACE,
    };
    let subscription_plan = match snapshots.last() {
        Some((_, 'e')) => "enterprise",
        _ => "professional",
    };
    if evidence && !revoked && within_period {
        Some(subscription_plan)
    } else if one_time('a') || one_time('b') {
        Some("professional")
    } else {
        None
    }
}

fn features() -> PlanFeatures {
    PlanFeatures::new(BTreeMap::from([
        ("professional".to_owned(), vec!["api".to_owned()]),
        (
            "enterprise".to_owned(),
            vec!["api".to_owned(), "sso".to_owned()],
        ),
    ]))
}

/// What the answer says at `t`: the plan when Pro, and the features.
fn answer(plan: Option<&str>) -> (Option<String>, Vec<String>) {
    let features = plan.map_or_else(Vec::new, |p| features().of(p).to_vec());
    (plan.map(str::to_owned), features)
}

fn body(event: Event, case: u32, email: &str) -> String {
    let pay_id = |p: char| format!("pay_{p}_{case}");
    let subscription_id = format!("sub_{case}");
    let payment = |id: String, subscription: bool| {
        dodo_body("payment.succeeded.cli-generator", |v| {
            v["data"]["payment_id"] = json!(id);
            v["data"]["customer"]["email"] = json!(email);
            if subscription {
                v["data"]["subscription_id"] = json!(subscription_id);
            }
        })
    };
    let refund = |id: String| {
        dodo_body("refund.succeeded.cli-generator", |v| {
            v["data"]["payment_id"] = json!(id);
            v["data"]["customer"]["email"] = json!(email);
        })
    };
    let lost = |id: String| {
        dodo_body("dispute.opened.cli-generator", |v| {
            v["type"] = json!("dispute.lost");
            v["data"]["payment_id"] = json!(id);
            v["data"]["dispute_status"] = json!("dispute_lost");
            v["data"]["customer"]["email"] = json!(email);
        })
    };
    match event {
        Event::Pay(p) => payment(pay_id(p), false),
        Event::Refund(p) => refund(pay_id(p)),
        Event::DisputeLost(p) => lost(pay_id(p)),
        Event::PaySubscription => payment(pay_id('s'), true),
        Event::RefundSubscription => refund(pay_id('s')),
        Event::DisputeLostSubscription => lost(pay_id('s')),
        Event::Subscription(status, product) => {
            dodo_body("subscription.active.cli-generator", |v| {
                let event_type = match (status, product) {
                    ("active", 'e') => "plan_changed",
                    ("active", _) => "renewed",
                    (other, _) => other,
                };
                v["type"] = json!(format!("subscription.{event_type}"));
                v["data"]["status"] = json!(status);
                v["data"]["product_id"] = json!(if product == 'e' {
                    "pdt_ent"
                } else {
                    "pdt_test"
                });
                v["data"]["subscription_id"] = json!(subscription_id);
                v["data"]["next_billing_date"] = json!(PERIOD_END);
                v["data"]["customer"]["email"] = json!(email);
            })
        }
    }
}

type Answer = (Option<String>, Vec<String>);

async fn run_case(store: &Store, case: u32, events: &[Event], order: &[usize]) -> (Answer, Answer) {
    let plans =
        PlanCatalog::parse("pdt_test=professional,pdt_ent=enterprise", "professional").unwrap();
    let settings = PolicySettings {
        plans: &plans,
        claim_ttl_seconds: 600,
        grace_seconds: GRACE,
    };
    let email = format!("buyer{case}@example.com");
    for (step, &index) in order.iter().enumerate() {
        let event = parse_event(body(events[index], case, &email).as_bytes()).unwrap();
        let id = format!("msg_{case}_{index}");
        let delivery = Delivery {
            webhook_id: &id,
            origin: Origin::Webhook,
            webhook_timestamp: NOW + index as i64,
            received_at: NOW + step as i64,
        };
        apply_delivery(store, settings, delivery, &event)
            .await
            .unwrap();
    }
    let entitlement = store
        .get_entitlement(&Email::parse(&email).unwrap())
        .await
        .unwrap();
    let at = |t: i64| {
        let summary = access_summary(
            entitlement.iter().flat_map(|e| e.grants.values()),
            t,
            plans.ranking(),
            &features(),
        );
        let plan = summary
            .shown
            .filter(|_| summary.pro)
            .map(|g| g.plan.clone());
        assert_eq!(
            summary.pro,
            entitlement.as_ref().is_some_and(|e| e.is_pro(t))
        );
        (plan, summary.features)
    };
    (at(NOW + 1_000), at(NOW + 60 * 86_400))
}

#[test]
fn stored_access_matches_the_model() {
    let cases = std::env::var("LLMXT_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(fresh_store());
    static CASE: AtomicU32 = AtomicU32::new(0);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((events, order) in scenario())| {
        let case = CASE.fetch_add(1, Ordering::Relaxed);
        let (soon, later) = runtime.block_on(run_case(&store, case, &events, &order));
        prop_assert_eq!(soon, answer(model_plan(&events, NOW + 1_000)), "in the period: {:?} delivered as {:?}", events, order);
        prop_assert_eq!(later, answer(model_plan(&events, NOW + 60 * 86_400)), "after the period: {:?} delivered as {:?}", events, order);
    });
}
