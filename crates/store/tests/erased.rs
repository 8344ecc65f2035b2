//! The policy on erased records (pure, no database): snapshots of an erased payment or
//! subscription update it without bringing the address back, touching an entitlement or
//! flagging a missing email; a new payment of an erased subscription is recorded erased.
#![allow(clippy::unwrap_used)]

use llmxt_domain::config::PlanCatalog;
use llmxt_domain::email::Email;
use llmxt_domain::events::{DodoObject, parse_event};
use llmxt_domain::policy::{
    self, Changes, Decision, DeliveryContext, PolicySettings, Stored, buyer,
};
use llmxt_domain::privacy::{erase_payment, erase_subscription};
use llmxt_domain::records::{Freshness, PaymentRecord, SubscriptionRecord};
use llmxt_testkit::dodo_body;
use serde_json::json;

const NOW: i64 = 1_768_067_800;
const BUYER: &str = "john.doe@example.com";

fn decide(body: &str, stored: &Stored) -> Changes {
    let plans = PlanCatalog::parse("pdt_test=professional", "professional").unwrap();
    let settings = PolicySettings {
        plans: &plans,
        claim_ttl_seconds: 600,
        grace_seconds: 0,
    };
    let context = DeliveryContext {
        webhook_id: "msg_late",
        freshness: Freshness {
            webhook_timestamp: NOW,
            event_timestamp_micros: 0,
        },
        now: NOW,
    };
    let event = parse_event(body.as_bytes()).unwrap();
    let decision = match &event.object {
        DodoObject::Payment(p) => policy::decide_payment(settings, context, p, stored),
        DodoObject::Refund(r) => policy::decide_refund(settings, context, r, stored),
        DodoObject::Dispute(d) => policy::decide_dispute(settings, context, d, stored),
        DodoObject::Subscription(s) => policy::decide_subscription(settings, context, s, stored),
        other => panic!("unexpected {other:?}"),
    };
    match decision {
        Decision::Apply(changes) => *changes,
        Decision::Stale => panic!("stale"),
    }
}

fn erased_payment(subscription_id: Option<&str>) -> PaymentRecord {
    let payment = PaymentRecord {
        payment_id: "pay_test".into(),
        email: Some(Email::parse(BUYER).unwrap()),
        status: "succeeded".into(),
        subscription_id: subscription_id.map(str::to_owned),
        total_amount: Some(400),
        currency: Some("USD".into()),
        version: 2,
        ..PaymentRecord::default()
    };
    erase_payment(&payment, "erased_0123", NOW - 60)
}

fn assert_no_address(changes: &Changes) {
    assert!(changes.entitlement.is_none(), "{changes:?}");
    assert!(changes.attention.is_none(), "{changes:?}");
    if let Some(payment) = &changes.payment {
        assert_eq!(
            (
                payment.customer_id.as_deref(),
                payment.checkout_ref.as_deref()
            ),
            (None, None),
            "nothing that finds the buyer at Dodo or in a browser"
        );
    }
    // Nothing written names the buyer: no email on either record.
    assert!(changes.payment.as_ref().is_none_or(|p| p.email.is_none()));
    assert!(
        changes
            .subscription
            .as_ref()
            .is_none_or(|s| s.email.is_none())
    );
}

#[test]
fn a_late_refund_of_an_erased_payment_is_recorded_without_the_address() {
    let stored = Stored {
        payment: Some(erased_payment(None)),
        ..Stored::default()
    };
    assert_eq!(buyer(Email::parse(BUYER).ok().as_ref(), &stored), None);
    let changes = decide(
        &dodo_body("refund.succeeded.cli-generator", |_| {}),
        &stored,
    );
    assert_no_address(&changes);
    let payment = changes.payment.unwrap();
    assert_eq!(payment.refund_status.as_deref(), Some("refunded"));
    assert_eq!(payment.erased_as.as_deref(), Some("erased_0123"));
    assert_eq!(
        (payment.total_amount, payment.currency.as_deref()),
        (Some(400), Some("USD"))
    );

    let dispute = decide(
        &dodo_body("dispute.opened.cli-generator", |v| {
            v["data"]["dispute_status"] = json!("dispute_lost");
        }),
        &stored,
    );
    assert_no_address(&dispute);
}

#[test]
fn a_redelivered_payment_of_an_erased_buyer_stays_erased() {
    let stored = Stored {
        payment: Some(erased_payment(None)),
        ..Stored::default()
    };
    let changes = decide(
        &dodo_body("payment.succeeded.cli-generator", |_| {}),
        &stored,
    );
    assert_no_address(&changes);
    assert!(changes.payment.unwrap().email.is_none());
}

#[test]
fn an_erased_subscriptions_snapshots_and_renewals_stay_erased() {
    let subscription = erase_subscription(
        &SubscriptionRecord {
            subscription_id: "sub_test".into(),
            email: Some(Email::parse(BUYER).unwrap()),
            status: "active".into(),
            ..SubscriptionRecord::default()
        },
        "erased_0123",
        NOW - 60,
    );
    let stored = Stored {
        subscription: Some(subscription),
        ..Stored::default()
    };
    let snapshot = decide(
        &dodo_body("subscription.active.cli-generator", |v| {
            v["data"]["next_billing_date"] = json!("2099-01-01T00:00:00Z");
        }),
        &stored,
    );
    assert_no_address(&snapshot);
    assert_eq!(snapshot.subscription.unwrap().status, "active");

    let renewal = decide(
        &dodo_body("payment.succeeded.cli-generator", |v| {
            v["data"]["payment_id"] = json!("pay_renewal");
            v["data"]["subscription_id"] = json!("sub_test");
        }),
        &stored,
    );
    assert_no_address(&renewal);
    assert_eq!(
        renewal.payment.unwrap().erased_as.as_deref(),
        Some("erased_0123")
    );
}
