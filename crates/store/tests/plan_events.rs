//! Subscription events of plan changes through the ledger, against DynamoDB Local: the
//! snapshot's product decides the plan whatever the event, in any delivery order; paused,
//! past_due, trials and scheduled changes are recorded and summed up as the answer shows them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use llmxt_domain::access::{BillingState, PlanFeatures, access_summary};
use llmxt_domain::config::PlanCatalog;
use llmxt_domain::email::Email;
use llmxt_domain::events::parse_event;
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::records::Entitlement;
use llmxt_domain::time::{format_rfc3339, parse_rfc3339_seconds};
use llmxt_store::ledger::{Delivery, Origin, Outcome, apply_delivery};
use llmxt_store::store::Store;
use llmxt_testkit::{dodo_body, fresh_store};
use serde_json::{Value, json};

const NOW: i64 = 1_768_067_800;
const GRACE: i64 = 3 * 86_400;
const PERIOD_END: &str = "2026-02-10T17:55:53Z";
const NEXT_PERIOD_END: &str = "2026-03-10T17:55:53Z";

fn plans() -> PlanCatalog {
    PlanCatalog::parse("pdt_test=professional,pdt_ent=enterprise", "professional").unwrap()
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

async fn deliver(store: &Store, id: &str, webhook_timestamp: i64, body: &str) -> Outcome {
    let plans = plans();
    let settings = PolicySettings {
        plans: &plans,
        claim_ttl_seconds: 600,
        grace_seconds: GRACE,
    };
    let delivery = Delivery {
        webhook_id: id,
        origin: Origin::Webhook,
        webhook_timestamp,
        received_at: NOW,
    };
    apply_delivery(
        store,
        settings,
        delivery,
        &parse_event(body.as_bytes()).unwrap(),
    )
    .await
    .unwrap()
}

fn subscription(event: &str, email: &str, product: &str, edit: impl FnOnce(&mut Value)) -> String {
    dodo_body("subscription.active.cli-generator", |v| {
        v["type"] = json!(format!("subscription.{event}"));
        v["data"]["subscription_id"] = json!(format!("sub_{email}"));
        v["data"]["status"] = json!("active");
        v["data"]["product_id"] = json!(product);
        v["data"]["next_billing_date"] = json!(PERIOD_END);
        v["data"]["customer"]["email"] = json!(email);
        edit(v);
    })
}

fn payment(id: &str, email: &str, product: &str) -> String {
    dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(id);
        v["data"]["subscription_id"] = json!(format!("sub_{email}"));
        v["data"]["product_cart"] = json!([{ "product_id": product, "quantity": 1 }]);
        v["data"]["customer"]["email"] = json!(email);
    })
}

async fn stored(store: &Store, email: &str) -> Entitlement {
    store
        .get_entitlement(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap()
}

fn summary(entitlement: &Entitlement, at: i64) -> (String, Vec<String>, BillingState) {
    let summary = access_summary(
        entitlement.grants.values(),
        at,
        plans().ranking(),
        &features(),
    );
    (
        summary.shown.unwrap().plan.clone(),
        summary.features,
        summary.billing.unwrap().state,
    )
}

#[tokio::test]
async fn plan_changed_arriving_before_the_payment_decides_the_plan() {
    let store = fresh_store().await;
    let email = "early@example.com";
    // The upgrade's plan_changed (enterprise) comes before the subscription's first payment
    // (bought as professional), and before an older `updated` snapshot (professional).
    let changed = subscription("plan_changed", email, "pdt_ent", |_| {});
    assert!(matches!(
        deliver(&store, "msg_changed", NOW + 20, &changed).await,
        Outcome::Processed { .. }
    ));
    deliver(
        &store,
        "msg_first_payment",
        NOW,
        &payment("pay_first", email, "pdt_test"),
    )
    .await;
    let older = subscription("updated", email, "pdt_test", |_| {});
    assert_eq!(
        deliver(&store, "msg_older", NOW + 10, &older).await,
        Outcome::Stale
    );
    deliver(
        &store,
        "msg_upgrade_payment",
        NOW + 21,
        &payment("pay_upgrade", email, "pdt_ent"),
    )
    .await;
    // Redelivered: no second effect.
    assert_eq!(
        deliver(&store, "msg_changed", NOW + 20, &changed).await,
        Outcome::Duplicate
    );
    let entitlement = stored(&store, email).await;
    assert_eq!(entitlement.plan, "enterprise");
    assert_eq!(
        summary(&entitlement, NOW + 1),
        (
            "enterprise".to_owned(),
            vec!["api".to_owned(), "sso".to_owned()],
            BillingState::Active
        )
    );
    // The first payment opened the subscription's claim; the upgrade's payment did not.
    let subscription_record = store.get_payment("pay_first").await.unwrap().unwrap();
    assert!(subscription_record.claim_expires_at.is_some());
    let upgrade = store.get_payment("pay_upgrade").await.unwrap().unwrap();
    assert!(upgrade.claim_expires_at.is_none());
}

#[tokio::test]
async fn every_subscription_event_sets_the_plan_from_its_product() {
    let store = fresh_store().await;
    let email = "every@example.com";
    for (n, (event, product, plan)) in [
        ("active", "pdt_test", "professional"),
        ("updated", "pdt_ent", "enterprise"),
        ("renewed", "pdt_test", "professional"),
        ("plan_changed", "pdt_ent", "enterprise"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = subscription(event, email, product, |_| {});
        deliver(&store, &format!("msg_{n}"), NOW + n as i64, &body).await;
        assert_eq!(stored(&store, email).await.plan, plan, "after {event}");
    }
}

#[tokio::test]
async fn a_scheduled_change_is_recorded_then_applied_by_the_renewal() {
    let store = fresh_store().await;
    let email = "scheduled@example.com";
    let effective = parse_rfc3339_seconds(PERIOD_END).unwrap();
    let scheduled = subscription("updated", email, "pdt_ent", |v| {
        v["data"]["scheduled_change"] = json!({
            "id": "spc_1", "addons": [], "created_at": "2026-01-10T17:56:00Z",
            "effective_at": PERIOD_END, "product_id": "pdt_test", "quantity": 1,
            "product_description": null, "product_name": null,
        });
    });
    deliver(&store, "msg_scheduled", NOW, &scheduled).await;
    let grant = stored(&store, email).await.grants["sub_scheduled@example.com"].clone();
    assert_eq!(grant.plan, "enterprise");
    assert_eq!(grant.scheduled_plan.as_deref(), Some("professional"));
    assert_eq!(grant.scheduled_product_id.as_deref(), Some("pdt_test"));
    assert_eq!(grant.scheduled_at, Some(effective));

    let renewed = subscription("renewed", email, "pdt_test", |v| {
        v["data"]["next_billing_date"] = json!(NEXT_PERIOD_END);
        v["data"]["previous_billing_date"] = json!(PERIOD_END);
    });
    deliver(&store, "msg_renewed", NOW + 1, &renewed).await;
    let grant = stored(&store, email).await.grants["sub_scheduled@example.com"].clone();
    assert_eq!(grant.plan, "professional");
    assert_eq!(grant.scheduled_plan, None);
    assert_eq!(grant.scheduled_at, None);
    // The schedule delivered late (older, previous period) changes nothing.
    assert_eq!(
        deliver(&store, "msg_scheduled_again", NOW - 5, &scheduled).await,
        Outcome::Stale
    );
}

#[tokio::test]
async fn paused_past_due_and_trial_states_are_kept() {
    let store = fresh_store().await;
    let email = "states@example.com";
    let end = parse_rfc3339_seconds(PERIOD_END).unwrap();
    let trial = subscription("active", email, "pdt_test", |v| {
        v["data"]["trial_period_days"] = json!(14);
        v["data"]["created_at"] = json!(format_rfc3339(NOW));
    });
    deliver(&store, "msg_trial", NOW, &trial).await;
    let entitlement = stored(&store, email).await;
    assert_eq!(summary(&entitlement, NOW + 1).2, BillingState::Trialing);
    assert_eq!(
        summary(&entitlement, NOW + 15 * 86_400).2,
        BillingState::Active
    );

    let paused = subscription("paused", email, "pdt_test", |v| {
        v["data"]["status"] = json!("paused");
    });
    deliver(&store, "msg_paused", NOW + 1, &paused).await;
    let entitlement = stored(&store, email).await;
    assert_eq!(summary(&entitlement, NOW + 1).2, BillingState::Paused);
    assert!(entitlement.is_pro(end - 1));
    assert!(!entitlement.is_pro(end + 1), "paused: no grace");

    let past_due = subscription("past_due", email, "pdt_test", |v| {
        v["data"]["status"] = json!("past_due");
    });
    deliver(&store, "msg_past_due", NOW + 2, &past_due).await;
    let entitlement = stored(&store, email).await;
    assert_eq!(summary(&entitlement, NOW + 1).2, BillingState::PastDue);
    assert!(
        entitlement.is_pro(end + GRACE - 1),
        "past_due: grace as on_hold"
    );

    // An unknown status is recorded and changes nothing.
    let odd = subscription("odd", email, "pdt_ent", |v| {
        v["data"]["status"] = json!("someday");
    });
    deliver(&store, "msg_odd", NOW + 3, &odd).await;
    let entitlement = stored(&store, email).await;
    assert_eq!(summary(&entitlement, NOW + 1).2, BillingState::PastDue);
    assert_eq!(entitlement.plan, "professional");
}

#[tokio::test]
async fn a_cancellation_at_the_period_end_keeps_access_until_then_and_a_resume_renews_again() {
    let store = fresh_store().await;
    let email = "leaving@example.com";
    let period_end = parse_rfc3339_seconds(PERIOD_END).unwrap();
    deliver(
        &store,
        "msg_active",
        NOW,
        &subscription("active", email, "pdt_test", |_| {}),
    )
    .await;
    deliver(&store, "msg_pay", NOW, &payment("pay_1", email, "pdt_test")).await;
    // The buyer cancels in Dodo's portal: still `active`, `cancel_at_next_billing_date`.
    let cancelled = subscription("updated", email, "pdt_test", |v| {
        v["data"]["cancel_at_next_billing_date"] = json!(true);
    });
    deliver(&store, "msg_cancel", NOW + 10, &cancelled).await;
    let entitlement = stored(&store, email).await;
    let grant = entitlement.grants.values().next().unwrap();
    assert_eq!(grant.expires_at, Some(period_end), "no grace, no renewal");
    assert!(entitlement.is_pro(period_end - 1) && !entitlement.is_pro(period_end));
    let (_, _, state) = summary(&entitlement, NOW + 20);
    assert_eq!(state, BillingState::Cancelled);
    let billing = access_summary(
        entitlement.grants.values(),
        NOW + 20,
        plans().ranking(),
        &features(),
    )
    .billing
    .unwrap();
    assert_eq!(billing.ends_at, Some(period_end));
    // Resumed before the end: active again, renewing, with the grace of an active plan.
    let resumed = subscription("updated", email, "pdt_test", |_| {});
    deliver(&store, "msg_resume", NOW + 30, &resumed).await;
    let entitlement = stored(&store, email).await;
    let grant = entitlement.grants.values().next().unwrap();
    assert_eq!(grant.expires_at, Some(period_end + GRACE));
    let (_, _, state) = summary(&entitlement, NOW + 40);
    assert_eq!(state, BillingState::Active);
}
