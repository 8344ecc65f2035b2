//! The event policy applied through the store, against DynamoDB Local: every row of the
//! policy table, deduplication, ordering and convergence.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use llmxt_domain::config::PlanCatalog;
use llmxt_domain::email::Email;
use llmxt_domain::events::parse_event;
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::records::{Entitlement, status};
use llmxt_domain::time::parse_rfc3339_seconds;
use llmxt_store::ledger::{Delivery, Origin, Outcome, apply_delivery};
use llmxt_store::store::{ClaimOutcome, Store};
use llmxt_testkit::{dodo_body, fresh_store, table_sizes};
use serde_json::{Value, json};

const NOW: i64 = 1_768_067_800;
const GRACE: i64 = 3 * 86_400;
const BUYER: &str = "john.doe@example.com";

fn plans() -> PlanCatalog {
    PlanCatalog::parse("pdt_test=professional,pdt_ent=enterprise", "starter").unwrap()
}

async fn deliver_at(
    store: &Store,
    id: &str,
    webhook_timestamp: i64,
    now: i64,
    body: &str,
) -> Outcome {
    let plans = plans();
    let settings = PolicySettings {
        plans: &plans,
        claim_ttl_seconds: 600,
        grace_seconds: GRACE,
    };
    let event = parse_event(body.as_bytes()).unwrap();
    let delivery = Delivery {
        webhook_id: id,
        origin: Origin::Webhook,
        webhook_timestamp,
        received_at: now,
    };
    apply_delivery(store, settings, delivery, &event)
        .await
        .unwrap()
}

async fn deliver(store: &Store, id: &str, body: &str) -> Outcome {
    deliver_at(store, id, NOW, NOW, body).await
}

async fn entitlement(store: &Store, email: &str) -> Option<Entitlement> {
    store
        .get_entitlement(&Email::parse(email).unwrap())
        .await
        .unwrap()
}

fn payment(edit: impl FnOnce(&mut Value)) -> String {
    dodo_body("payment.succeeded.cli-generator", edit)
}

fn subscription(status: &str, next_billing: &str, edit: impl FnOnce(&mut Value)) -> String {
    dodo_body("subscription.active.cli-generator", |v| {
        v["type"] = json!(format!("subscription.{status}"));
        v["data"]["status"] = json!(status);
        v["data"]["next_billing_date"] = json!(next_billing);
        edit(v);
    })
}

fn processed() -> Outcome {
    Outcome::Processed {
        attention: None,
        email: Some(Email::parse(BUYER).unwrap()),
    }
}

#[tokio::test]
async fn payment_succeeded_stores_opens_a_claim_and_grants_the_products_plan() {
    let store = fresh_store().await;
    assert_eq!(
        deliver(&store, "msg_1", &payment(|_| {})).await,
        processed()
    );
    let stored = store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(stored.status, "succeeded");
    assert_eq!(stored.claim_expires_at, Some(NOW + 600));
    assert_eq!(stored.plan.as_deref(), Some("professional"));
    assert_eq!(stored.total_amount, Some(400));
    let granted = entitlement(&store, BUYER).await.unwrap();
    assert_eq!(
        (
            granted.status.as_str(),
            granted.plan.as_str(),
            granted.expires_at
        ),
        ("active", "professional", None)
    );
    assert_eq!(granted.payment_id.as_deref(), Some("pay_test"));
    assert!(
        granted.is_pro(NOW + 10 * 365 * 86_400),
        "a one-time purchase does not expire"
    );
}

#[tokio::test]
async fn unknown_products_get_the_default_plan_and_emails_are_normalised() {
    let store = fresh_store().await;
    let body = payment(|v| {
        v["data"]["product_cart"] = json!([{"product_id": "pdt_unknown", "quantity": 1}]);
        v["data"]["customer"]["email"] = json!("  John.DOE@Example.com ");
    });
    deliver(&store, "msg_1", &body).await;
    assert_eq!(entitlement(&store, BUYER).await.unwrap().plan, "starter");
}

#[tokio::test]
async fn metadata_email_is_the_fallback() {
    let store = fresh_store().await;
    let body = payment(|v| {
        v["data"]["customer"] = Value::Null;
        v["data"]["metadata"] =
            json!({"email": "Meta@Example.com", "count": 3, "flag": true, "nested": {"a": null}});
    });
    deliver(&store, "msg_1", &body).await;
    assert!(
        entitlement(&store, "meta@example.com")
            .await
            .unwrap()
            .is_pro(NOW)
    );
}

#[tokio::test]
async fn failed_cancelled_and_processing_payments_store_status_only() {
    for state in ["failed", "cancelled", "processing"] {
        let store = fresh_store().await;
        let body = payment(|v| {
            v["type"] = json!(format!("payment.{state}"));
            v["data"]["status"] = json!(state);
        });
        assert_eq!(
            deliver(&store, "msg_1", &body).await,
            processed(),
            "{state}"
        );
        let stored = store.get_payment("pay_test").await.unwrap().unwrap();
        assert_eq!(stored.status, state);
        assert_eq!(stored.claim_expires_at, None, "{state} opens no claim");
        assert_eq!(
            entitlement(&store, BUYER).await,
            None,
            "{state} grants nothing"
        );
    }
}

#[tokio::test]
async fn status_is_decided_from_data_not_from_the_type() {
    let store = fresh_store().await;
    // A `payment.succeeded` type whose object says failed grants nothing.
    let body = payment(|v| v["data"]["status"] = json!("failed"));
    deliver(&store, "msg_1", &body).await;
    assert_eq!(entitlement(&store, BUYER).await, None);
}

#[tokio::test]
async fn full_refund_revokes_and_partial_refund_does_not() {
    let store = fresh_store().await;
    deliver_at(&store, "msg_1", NOW, NOW, &payment(|_| {})).await;
    let partial = dodo_body("refund.succeeded.cli-generator", |v| {
        v["data"]["is_partial"] = json!(true)
    });
    deliver_at(&store, "msg_2", NOW + 5, NOW + 5, &partial).await;
    assert!(entitlement(&store, BUYER).await.unwrap().is_pro(NOW + 5));

    let full = dodo_body("refund.succeeded.cli-generator", |_| {});
    deliver_at(&store, "msg_3", NOW + 10, NOW + 10, &full).await;
    let revoked = entitlement(&store, BUYER).await.unwrap();
    assert_eq!(
        (revoked.status.as_str(), revoked.reason.as_deref()),
        ("revoked", Some("refunded"))
    );
    // Stored, the summary speaks the original schema (active, cancelled or expired); the
    // grant keeps `revoked`.
    let item = store
        .client()
        .get_item()
        .table_name(&store.config().entitlements_table)
        .key(
            "email",
            aws_sdk_dynamodb::types::AttributeValue::S(BUYER.to_owned()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        item["status"],
        aws_sdk_dynamodb::types::AttributeValue::S("expired".to_owned())
    );
    let stored = store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(stored.refund_status.as_deref(), Some("refunded"));
    // The claim cannot be redeemed for a refunded payment.
    assert_eq!(
        store.redeem_claim("pay_test", NOW + 11).await.unwrap(),
        ClaimOutcome::Failed
    );
}

#[tokio::test]
async fn refund_arriving_before_the_payment_wins() {
    let store = fresh_store().await;
    deliver_at(
        &store,
        "msg_refund",
        NOW + 10,
        NOW,
        &dodo_body("refund.succeeded.cli-generator", |_| {}),
    )
    .await;
    deliver_at(&store, "msg_pay", NOW, NOW, &payment(|_| {})).await;
    assert_eq!(
        entitlement(&store, BUYER).await,
        None,
        "a refunded payment never grants"
    );
    assert_eq!(
        store.redeem_claim("pay_test", NOW).await.unwrap(),
        ClaimOutcome::Failed
    );
}

#[tokio::test]
async fn payment_snapshot_listing_a_full_refund_revokes() {
    let store = fresh_store().await;
    deliver_at(&store, "msg_1", NOW, NOW, &payment(|_| {})).await;
    let refunded = payment(|v| {
        v["type"] = json!("payment.succeeded");
        v["data"]["refunds"] = json!([{"refund_id": "ref_1", "status": "succeeded", "is_partial": false, "amount": 400}]);
    });
    deliver_at(&store, "msg_2", NOW + 1, NOW + 1, &refunded).await;
    assert_eq!(entitlement(&store, BUYER).await.unwrap().status, "revoked");
}

#[tokio::test]
async fn lost_or_accepted_dispute_revokes_and_an_open_one_is_recorded() {
    for (state, revokes) in [
        ("dispute_lost", true),
        ("dispute_accepted", true),
        ("dispute_opened", false),
    ] {
        let store = fresh_store().await;
        deliver_at(&store, "msg_1", NOW, NOW, &payment(|_| {})).await;
        let body = dodo_body("dispute.opened.cli-generator", |v| {
            v["type"] = json!(state.replace('_', "."));
            v["data"]["dispute_status"] = json!(state);
        });
        deliver_at(&store, "msg_2", NOW + 1, NOW + 1, &body).await;
        let stored = store.get_payment("pay_test").await.unwrap().unwrap();
        assert_eq!(stored.dispute_status.as_deref(), Some(state));
        assert_eq!(
            entitlement(&store, BUYER).await.unwrap().status == "revoked",
            revokes,
            "{state}"
        );
    }
}

#[tokio::test]
async fn subscription_states_map_to_access() {
    let next = "2026-02-10T17:55:53.180Z";
    let period_end = parse_rfc3339_seconds(next).unwrap();
    let cases = [
        ("active", status::ACTIVE, Some(period_end + GRACE), true),
        ("on_hold", status::ACTIVE, Some(period_end + GRACE), true),
        ("cancelled", status::CANCELLED, Some(period_end), true),
        ("expired", status::EXPIRED, Some(NOW), false),
        ("failed", status::EXPIRED, Some(NOW), false),
    ];
    for (state, want_status, want_expiry, pro) in cases {
        let store = fresh_store().await;
        deliver(&store, "msg_1", &subscription(state, next, |_| {})).await;
        let got = entitlement(&store, BUYER).await.unwrap();
        assert_eq!(
            (got.status.as_str(), got.expires_at),
            (want_status, want_expiry),
            "{state}"
        );
        assert_eq!(got.is_pro(NOW), pro, "{state}");
        assert_eq!(got.subscription_id.as_deref(), Some("sub_test"));
        assert_eq!(got.plan, "professional");
    }
}

#[tokio::test]
async fn cancelled_subscription_keeps_access_until_the_period_ends() {
    let store = fresh_store().await;
    let next = "2026-02-10T17:55:53.180Z";
    deliver_at(
        &store,
        "msg_1",
        NOW,
        NOW,
        &subscription("active", next, |_| {}),
    )
    .await;
    deliver_at(
        &store,
        "msg_2",
        NOW + 60,
        NOW + 60,
        &subscription("cancelled", next, |_| {}),
    )
    .await;
    let got = entitlement(&store, BUYER).await.unwrap();
    let end = parse_rfc3339_seconds(next).unwrap();
    assert!(got.is_pro(end - 1));
    assert!(!got.is_pro(end));
}

#[tokio::test]
async fn plan_change_follows_the_product() {
    let store = fresh_store().await;
    let next = "2026-02-10T17:55:53.180Z";
    deliver_at(
        &store,
        "msg_1",
        NOW,
        NOW,
        &subscription("active", next, |_| {}),
    )
    .await;
    let upgraded = subscription("active", next, |v| {
        v["type"] = json!("subscription.plan_changed");
        v["data"]["product_id"] = json!("pdt_ent");
    });
    deliver_at(&store, "msg_2", NOW + 1, NOW + 1, &upgraded).await;
    assert_eq!(entitlement(&store, BUYER).await.unwrap().plan, "enterprise");
}

#[tokio::test]
async fn a_delivery_without_email_is_stored_and_flagged() {
    let store = fresh_store().await;
    let body = payment(|v| {
        v["data"]["customer"]["email"] = Value::Null;
    });
    let outcome = deliver(&store, "msg_1", &body).await;
    assert_eq!(
        outcome,
        Outcome::Processed {
            attention: Some("missing_email"),
            email: None
        }
    );
    let stored = store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(stored.attention.as_deref(), Some("missing_email"));
    assert_eq!(stored.claim_expires_at, None);
    assert_eq!(
        table_sizes(&store).await.0,
        0,
        "no entitlement without a buyer"
    );
}

#[tokio::test]
async fn unknown_types_and_unusable_objects_are_ignored_without_writes() {
    let store = fresh_store().await;
    let licence = r#"{"type":"license_key.created","timestamp":"2026-01-10T17:55:53Z","data":{"payload_type":"LicenseKey","id":"lic_1"}}"#;
    assert!(matches!(
        deliver(&store, "msg_1", licence).await,
        Outcome::Ignored(_)
    ));
    let no_id = payment(|v| v["data"]["payment_id"] = Value::Null);
    assert!(matches!(
        deliver(&store, "msg_2", &no_id).await,
        Outcome::Ignored(_)
    ));
    assert_eq!(table_sizes(&store).await, (0, 0));
}

#[tokio::test]
async fn the_same_delivery_twice_has_one_effect() {
    let store = fresh_store().await;
    let body = payment(|_| {});
    assert_eq!(deliver(&store, "msg_1", &body).await, processed());
    let before = store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(
        deliver_at(&store, "msg_1", NOW, NOW + 100, &body).await,
        Outcome::Duplicate
    );
    assert_eq!(
        store.get_payment("pay_test").await.unwrap().unwrap(),
        before
    );
}

#[tokio::test]
async fn twenty_concurrent_copies_of_a_delivery_have_one_effect() {
    let store = Arc::new(fresh_store().await);
    let body = Arc::new(payment(|_| {}));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, body) = (Arc::clone(&store), Arc::clone(&body));
            tokio::spawn(async move { deliver(&store, "msg_same", &body).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|o| **o == processed()).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::Duplicate)
            .count(),
        19,
        "{outcomes:?}"
    );
    // One payment, one delivery record, one entitlement; the claim opened once.
    assert_eq!(table_sizes(&store).await, (1, 2));
    let stored = store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.claim_expires_at),
        (1, Some(NOW + 600))
    );
}

#[tokio::test]
async fn an_older_snapshot_never_overwrites_a_newer_one() {
    let store = fresh_store().await;
    let succeeded = payment(|_| {});
    let processing = payment(|v| {
        v["type"] = json!("payment.processing");
        v["data"]["status"] = json!("processing");
    });
    deliver_at(&store, "msg_new", NOW + 10, NOW, &succeeded).await;
    assert_eq!(
        deliver_at(&store, "msg_old", NOW, NOW, &processing).await,
        Outcome::Stale
    );
    assert_eq!(
        store.get_payment("pay_test").await.unwrap().unwrap().status,
        "succeeded"
    );
    // Same webhook-timestamp: the event timestamp decides.
    let later_event = payment(|v| {
        v["timestamp"] = json!("2026-01-10T17:55:54Z");
        v["data"]["status"] = json!("failed");
    });
    let earlier_event = payment(|v| v["timestamp"] = json!("2026-01-10T17:55:52Z"));
    deliver_at(&store, "msg_a", NOW + 20, NOW, &later_event).await;
    assert_eq!(
        deliver_at(&store, "msg_b", NOW + 20, NOW, &earlier_event).await,
        Outcome::Stale
    );
}

#[tokio::test]
async fn a_subscriptions_first_payment_opens_a_claim_findable_by_subscription_id() {
    let store = fresh_store().await;
    let first_payment = payment(|v| {
        v["data"]["subscription_id"] = json!("sub_test");
        v["data"]["product_cart"] = Value::Null;
    });
    deliver(&store, "msg_1", &first_payment).await;
    assert_eq!(
        store
            .claim_payment_for_subscription("sub_test")
            .await
            .unwrap()
            .as_deref(),
        Some("pay_test")
    );
    let granted = entitlement(&store, BUYER).await.unwrap();
    assert!(granted.is_pro(NOW));
    // The subscription's own event then sets the period.
    let next = "2026-02-10T17:55:53.180Z";
    deliver_at(
        &store,
        "msg_2",
        NOW + 1,
        NOW + 1,
        &subscription("active", next, |_| {}),
    )
    .await;
    let got = entitlement(&store, BUYER).await.unwrap();
    assert_eq!(
        got.expires_at,
        Some(parse_rfc3339_seconds(next).unwrap() + GRACE)
    );
    assert_eq!(
        store
            .claim_payment_for_subscription("sub_test")
            .await
            .unwrap()
            .as_deref(),
        Some("pay_test")
    );
}

#[tokio::test]
async fn refunding_a_subscriptions_payment_revokes_until_a_new_period_is_paid() {
    let store = fresh_store().await;
    let next = "2026-02-10T17:55:53.180Z";
    let first_payment = payment(|v| v["data"]["subscription_id"] = json!("sub_test"));
    deliver_at(&store, "m1", NOW, NOW, &first_payment).await;
    deliver_at(
        &store,
        "m2",
        NOW + 1,
        NOW + 1,
        &subscription("active", next, |_| {}),
    )
    .await;
    deliver_at(
        &store,
        "m3",
        NOW + 2,
        NOW + 2,
        &dodo_body("refund.succeeded.cli-generator", |_| {}),
    )
    .await;
    assert_eq!(entitlement(&store, BUYER).await.unwrap().status, "revoked");
    // Later snapshots of the same (refunded) period do not grant again.
    deliver_at(
        &store,
        "m4",
        NOW + 3,
        NOW + 3,
        &subscription("active", next, |_| {}),
    )
    .await;
    deliver_at(
        &store,
        "m5",
        NOW + 4,
        NOW + 4,
        &subscription("cancelled", next, |_| {}),
    )
    .await;
    assert!(!entitlement(&store, BUYER).await.unwrap().is_pro(NOW + 5));
    // A renewal into a new paid period does.
    deliver_at(
        &store,
        "m6",
        NOW + 5,
        NOW + 5,
        &subscription("active", "2026-03-10T17:55:53Z", |_| {}),
    )
    .await;
    assert!(entitlement(&store, BUYER).await.unwrap().is_pro(NOW + 6));
}

/// A subscription's life as state-at-delivery snapshots, each with its webhook timestamp.
fn subscription_life() -> Vec<(String, i64, String)> {
    let steps = [
        ("active", "2026-02-10T17:55:53Z", "pdt_test"),
        ("active", "2026-03-10T17:55:53Z", "pdt_test"),
        ("on_hold", "2026-03-10T17:55:53Z", "pdt_test"),
        ("active", "2026-04-10T17:55:53Z", "pdt_ent"),
        ("cancelled", "2026-04-10T17:55:53Z", "pdt_ent"),
        ("expired", "2026-04-10T17:55:53Z", "pdt_ent"),
    ];
    steps
        .iter()
        .enumerate()
        .map(|(i, (state, next, product))| {
            let at = NOW + 100 * i64::try_from(i).unwrap();
            let body = subscription(state, next, |v| {
                v["data"]["product_id"] = json!(product);
                v["timestamp"] = json!(llmxt_domain::time::format_rfc3339(at));
            });
            (format!("msg_{i}"), at, body)
        })
        .collect()
}

/// A tiny deterministic shuffle (xorshift), so failures reproduce.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut state = seed | 1;
    let mut out = items.to_vec();
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (u64::try_from(i).unwrap() + 1)).unwrap();
        out.swap(i, j);
    }
    out
}

async fn final_state(
    order: &[(String, i64, String)],
    prefixes: &[usize],
) -> Vec<(String, Option<i64>, String)> {
    let store = fresh_store().await;
    let mut states = Vec::new();
    let last = order.iter().map(|(_, at, _)| *at).max().unwrap();
    for (count, (id, at, body)) in order.iter().enumerate() {
        deliver_at(&store, id, *at, last, body).await;
        if prefixes.contains(&(count + 1)) {
            let got = entitlement(&store, BUYER).await.unwrap();
            states.push((got.status, got.expires_at, got.plan));
        }
    }
    states
}

#[tokio::test]
async fn a_shuffled_subscription_life_converges_to_the_in_order_result() {
    let life = subscription_life();
    let expected = final_state(&life, &[life.len()]).await;
    assert_eq!(expected[0].0, "expired");
    for seed in 1..=12_u64 {
        let order = shuffled(&life, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        assert_eq!(
            final_state(&order, &[life.len()]).await,
            expected,
            "seed {seed}"
        );
        // Redelivering everything again changes nothing.
        let twice: Vec<_> = order.iter().chain(order.iter()).cloned().collect();
        assert_eq!(
            final_state(&twice, &[twice.len()]).await,
            expected,
            "seed {seed}, twice"
        );
    }
}

#[tokio::test]
async fn a_final_payment_status_never_goes_back_to_an_in_between_one() {
    let store = fresh_store().await;
    deliver_at(&store, "msg_paid", NOW, NOW, &payment(|_| {})).await;
    // An old `processing` event retried later carries a newer webhook-timestamp.
    let processing = payment(|v| {
        v["type"] = json!("payment.processing");
        v["data"]["status"] = json!("processing");
        v["timestamp"] = json!("2026-01-10T17:55:50Z");
    });
    assert_eq!(
        deliver_at(&store, "msg_old_retried", NOW + 60, NOW + 60, &processing).await,
        Outcome::Stale
    );
    let stored = store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(stored.status, "succeeded");
    assert!(matches!(
        store.redeem_claim("pay_test", NOW + 61).await.unwrap(),
        ClaimOutcome::Redeemed(_)
    ));
}

#[tokio::test]
async fn an_old_subscription_snapshot_with_a_new_timestamp_is_stale() {
    let store = fresh_store().await;
    let february = subscription("active", "2026-02-10T17:55:53Z", |_| {});
    let march = subscription("active", "2026-03-10T17:55:53Z", |_| {});
    deliver_at(&store, "msg_march", NOW, NOW, &march).await;
    // February's snapshot, retried later under a newer webhook-timestamp.
    assert_eq!(
        deliver_at(&store, "msg_february", NOW + 60, NOW + 60, &february).await,
        Outcome::Stale
    );
    let march_end = parse_rfc3339_seconds("2026-03-10T17:55:53Z").unwrap() + GRACE;
    assert_eq!(
        entitlement(&store, BUYER).await.unwrap().expires_at,
        Some(march_end)
    );
    // Once expired, an older `active` snapshot does not bring the subscription back.
    let expired = subscription("expired", "2026-03-10T17:55:53Z", |_| {});
    deliver_at(&store, "msg_expired", NOW + 120, NOW + 120, &expired).await;
    assert_eq!(
        deliver_at(&store, "msg_march_again", NOW + 180, NOW + 180, &march).await,
        Outcome::Stale
    );
    assert_eq!(entitlement(&store, BUYER).await.unwrap().status, "expired");
}
