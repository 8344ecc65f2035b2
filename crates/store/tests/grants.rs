//! Grants per buyer, against DynamoDB Local: the four ways the single-source model broke
//! (renewal claims, refunds by look-alike buyers, a refund of one purchase ending another,
//! the refund delivery's own email deciding), and items written before grants existed.
#![allow(clippy::unwrap_used)]

use llmxt_domain::config::PlanCatalog;
use llmxt_domain::email::Email;
use llmxt_domain::events::parse_event;
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::records::{Entitlement, source, status};
use llmxt_domain::time::parse_rfc3339_seconds;
use llmxt_store::ledger::{Delivery, Origin, Outcome, apply_delivery};
use llmxt_store::store::{ClaimOutcome, Store};
use llmxt_testkit::{dodo_body, fresh_store};
use serde_json::{Value, json};

const NOW: i64 = 1_768_067_800;
const BUYER: &str = "john.doe@example.com";
const NEXT: &str = "2026-02-10T17:55:53Z";

fn plans() -> PlanCatalog {
    PlanCatalog::parse("pdt_test=professional,pdt_ent=enterprise", "professional").unwrap()
}

async fn deliver_at(store: &Store, id: &str, at: i64, body: &str) -> Outcome {
    let plans = plans();
    let settings = PolicySettings {
        plans: &plans,
        claim_ttl_seconds: 600,
        grace_seconds: 3 * 86_400,
    };
    let event = parse_event(body.as_bytes()).unwrap();
    let delivery = Delivery {
        webhook_id: id,
        origin: Origin::Webhook,
        webhook_timestamp: at,
        received_at: at,
    };
    apply_delivery(store, settings, delivery, &event)
        .await
        .unwrap()
}

async fn entitlement(store: &Store, email: &str) -> Entitlement {
    store
        .get_entitlement(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no entitlement for {email}"))
}

fn payment(id: &str, email: &str, edit: impl FnOnce(&mut Value)) -> String {
    dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(id);
        v["data"]["customer"]["email"] = json!(email);
        edit(v);
    })
}

fn subscription_payment(id: &str, email: &str) -> String {
    payment(id, email, |v| {
        v["data"]["subscription_id"] = json!("sub_test")
    })
}

fn subscription(state: &str, next_billing: &str) -> String {
    dodo_body("subscription.active.cli-generator", |v| {
        v["type"] = json!(format!("subscription.{state}"));
        v["data"]["status"] = json!(state);
        v["data"]["next_billing_date"] = json!(next_billing);
    })
}

fn refund(payment_id: &str, delivery_email: &str) -> String {
    dodo_body("refund.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(payment_id);
        v["data"]["refund_id"] = json!(format!("ref_{payment_id}"));
        v["data"]["customer"]["email"] = json!(delivery_email);
    })
}

fn lost_dispute(payment_id: &str) -> String {
    dodo_body("dispute.opened.cli-generator", |v| {
        v["type"] = json!("dispute.lost");
        v["data"]["payment_id"] = json!(payment_id);
        v["data"]["dispute_status"] = json!("dispute_lost");
    })
}

#[tokio::test]
async fn a_renewal_never_opens_a_claim() {
    let store = fresh_store().await;
    deliver_at(&store, "m1", NOW, &subscription_payment("pay_first", BUYER)).await;
    deliver_at(&store, "m2", NOW + 1, &subscription("active", NEXT)).await;
    assert!(matches!(
        store.redeem_claim("pay_first", NOW + 2).await.unwrap(),
        ClaimOutcome::Redeemed(_)
    ));
    // A month later the renewal is paid: access goes on, but no new claim opens, and the
    // subscription's success link still points at the spent first claim.
    let renewal_at = parse_rfc3339_seconds(NEXT).unwrap();
    deliver_at(
        &store,
        "m3",
        renewal_at,
        &subscription_payment("pay_renewal", BUYER),
    )
    .await;
    let renewal = store.get_payment("pay_renewal").await.unwrap().unwrap();
    assert_eq!(renewal.claim_expires_at, None, "renewals open no claim");
    assert_eq!(
        store
            .redeem_claim("pay_renewal", renewal_at + 1)
            .await
            .unwrap(),
        ClaimOutcome::NoClaim
    );
    assert_eq!(
        store
            .claim_payment_for_subscription("sub_test")
            .await
            .unwrap()
            .as_deref(),
        Some("pay_first")
    );
    assert_eq!(
        store
            .redeem_claim("pay_first", renewal_at + 1)
            .await
            .unwrap(),
        ClaimOutcome::AlreadyClaimed
    );
    assert!(entitlement(&store, BUYER).await.is_pro(renewal_at + 1));
}

#[tokio::test]
async fn a_stranger_refunding_a_purchase_in_the_buyers_name_leaves_the_buyers_own() {
    let store = fresh_store().await;
    deliver_at(&store, "m1", NOW, &payment("pay_buyer", BUYER, |_| {})).await;
    // Someone else pays with the buyer's address, then gets a refund.
    deliver_at(&store, "m2", NOW + 60, &payment("pay_other", BUYER, |_| {})).await;
    deliver_at(&store, "m3", NOW + 120, &refund("pay_other", BUYER)).await;
    let got = entitlement(&store, BUYER).await;
    assert!(
        got.is_pro(NOW + 121),
        "the buyer's own purchase still grants"
    );
    assert_eq!(got.grants["pay_other"].status, status::REVOKED);
    assert_eq!(got.grants["pay_buyer"].status, status::ACTIVE);
    assert_eq!(
        (got.status.as_str(), got.payment_id.as_deref()),
        (status::ACTIVE, Some("pay_buyer"))
    );
    // A lost dispute of the stranger's payment likewise.
    deliver_at(
        &store,
        "m4",
        NOW + 130,
        &payment("pay_third", BUYER, |_| {}),
    )
    .await;
    deliver_at(&store, "m5", NOW + 140, &lost_dispute("pay_third")).await;
    let got = entitlement(&store, BUYER).await;
    assert!(got.is_pro(NOW + 141));
    assert_eq!(got.grants["pay_third"].status, status::REVOKED);
}

/// A buyer with a lifetime purchase (`pay_lifetime`) and an active subscription (`pay_sub`).
async fn lifetime_and_subscription() -> Store {
    let store = fresh_store().await;
    deliver_at(&store, "m1", NOW, &payment("pay_lifetime", BUYER, |_| {})).await;
    deliver_at(
        &store,
        "m2",
        NOW + 10,
        &subscription_payment("pay_sub", BUYER),
    )
    .await;
    deliver_at(&store, "m3", NOW + 11, &subscription("active", NEXT)).await;
    store
}

#[tokio::test]
async fn refunding_a_subscription_payment_keeps_a_lifetime_purchase() {
    let store = lifetime_and_subscription().await;
    deliver_at(&store, "m4", NOW + 20, &refund("pay_sub", BUYER)).await;
    let got = entitlement(&store, BUYER).await;
    assert!(got.is_pro(NOW + 21));
    assert_eq!(got.grants["sub_test"].status, status::REVOKED);
    assert_eq!(got.grants["pay_lifetime"].status, status::ACTIVE);
    assert_eq!(
        (got.source.as_str(), got.expires_at),
        (source::PAYMENT, None)
    );
    // And the other way round: refunding the lifetime purchase keeps the subscription.
    let store = lifetime_and_subscription().await;
    deliver_at(&store, "m4", NOW + 20, &refund("pay_lifetime", BUYER)).await;
    let got = entitlement(&store, BUYER).await;
    assert!(got.is_pro(NOW + 21));
    assert_eq!(got.subscription_id.as_deref(), Some("sub_test"));
}

#[tokio::test]
async fn the_refunded_buyer_is_the_stored_payments_email_not_the_deliverys() {
    let store = fresh_store().await;
    deliver_at(&store, "m1", NOW, &payment("pay_1", BUYER, |_| {})).await;
    deliver_at(
        &store,
        "m2",
        NOW + 1,
        &payment("pay_2", "bystander@example.com", |_| {}),
    )
    .await;
    // The refund delivery names another customer email than the payment was made with.
    deliver_at(
        &store,
        "m3",
        NOW + 10,
        &refund("pay_1", "bystander@example.com"),
    )
    .await;
    let buyer = entitlement(&store, BUYER).await;
    assert!(!buyer.is_pro(NOW + 11), "the refunded buyer loses Pro");
    assert_eq!(buyer.grants["pay_1"].reason.as_deref(), Some("refunded"));
    let bystander = entitlement(&store, "bystander@example.com").await;
    assert!(
        bystander.is_pro(NOW + 11),
        "the delivery's email is not touched"
    );
    assert_eq!(bystander.grants.len(), 1);
}

#[tokio::test]
async fn the_plan_shown_is_the_highest_by_ranking_among_grants_giving_access() {
    let store = fresh_store().await;
    deliver_at(&store, "m1", NOW, &payment("pay_pro", BUYER, |_| {})).await;
    deliver_at(
        &store,
        "m2",
        NOW + 5,
        &payment("pay_ent", BUYER, |v| {
            v["data"]["product_cart"] = json!([{"product_id": "pdt_ent", "quantity": 1}]);
        }),
    )
    .await;
    let got = entitlement(&store, BUYER).await;
    assert_eq!(
        (got.plan.as_str(), got.payment_id.as_deref()),
        ("enterprise", Some("pay_ent"))
    );
    deliver_at(&store, "m3", NOW + 10, &refund("pay_ent", BUYER)).await;
    let got = entitlement(&store, BUYER).await;
    assert_eq!(
        (got.plan.as_str(), got.payment_id.as_deref()),
        ("professional", Some("pay_pro"))
    );
    assert!(got.is_pro(NOW + 11));
}

#[tokio::test]
async fn a_look_alike_address_grants_nothing_to_the_real_one() {
    let store = fresh_store().await;
    // Kelvin sign: Unicode lower-casing would turn it into "kim@example.com".
    let outcome = deliver_at(
        &store,
        "m1",
        NOW,
        &payment("pay_kelvin", "\u{212A}im@example.com", |_| {}),
    )
    .await;
    assert!(matches!(outcome, Outcome::Processed { .. }));
    assert_eq!(
        store
            .get_entitlement(&Email::parse("kim@example.com").unwrap())
            .await
            .unwrap(),
        None
    );
    // Zero-width and bidi characters make the address invalid: stored, flagged, no grant.
    for (id, raw) in [
        ("pay_zw", "ki\u{200B}m@example.com"),
        ("pay_bidi", "kim@exa\u{202E}mple.com"),
    ] {
        let outcome = deliver_at(&store, &format!("m_{id}"), NOW, &payment(id, raw, |_| {})).await;
        assert_eq!(
            outcome,
            Outcome::Processed {
                attention: Some("invalid_email"),
                email: None
            },
            "{raw:?}"
        );
        let stored = store.get_payment(id).await.unwrap().unwrap();
        assert_eq!(
            (stored.email, stored.attention.as_deref()),
            (None, Some("invalid_email"))
        );
        assert_eq!(
            store.redeem_claim(id, NOW + 1).await.unwrap(),
            ClaimOutcome::Pending
        );
    }
    assert_eq!(
        store
            .get_entitlement(&Email::parse("kim@example.com").unwrap())
            .await
            .unwrap(),
        None
    );
}

/// Items in the format written before grants existed (no `grants` attribute).
async fn put_legacy(store: &Store, fields: &[(&str, &str)], expires_at: Option<i64>) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut request = store
        .client()
        .put_item()
        .table_name(&store.config().entitlements_table)
        .item("email", AttributeValue::S(BUYER.to_owned()))
        .item("version", AttributeValue::N("3".to_owned()))
        .item(
            "updated_at",
            AttributeValue::S("2026-01-01T00:00:00Z".to_owned()),
        );
    for (name, value) in fields {
        request = request.item(*name, AttributeValue::S((*value).to_owned()));
    }
    if let Some(expires_at) = expires_at {
        request = request.item("expires_at", AttributeValue::N(expires_at.to_string()));
    }
    request.send().await.unwrap();
}

#[tokio::test]
async fn an_item_written_before_grants_reads_as_one_grant_and_keeps_it() {
    let store = fresh_store().await;
    put_legacy(
        &store,
        &[
            ("status", "active"),
            ("plan", "professional"),
            ("source", "payment"),
            ("payment_id", "pay_old"),
        ],
        None,
    )
    .await;
    let legacy = entitlement(&store, BUYER).await;
    assert_eq!(legacy.grants.len(), 1);
    assert!(legacy.is_pro(NOW));
    // A new purchase adds a grant beside it; refunding the new one leaves the old one.
    deliver_at(&store, "m1", NOW, &payment("pay_new", BUYER, |_| {})).await;
    deliver_at(&store, "m2", NOW + 1, &refund("pay_new", BUYER)).await;
    let got = entitlement(&store, BUYER).await;
    assert_eq!(got.grants.len(), 2);
    assert_eq!(got.grants["pay_old"].status, status::ACTIVE);
    assert!(got.is_pro(NOW + 2));
    // A refund of the old payment (stored before grants too) revokes the old grant.
    deliver_at(&store, "m3", NOW + 3, &refund("pay_old", BUYER)).await;
    assert!(!entitlement(&store, BUYER).await.is_pro(NOW + 4));
}

#[tokio::test]
async fn a_legacy_subscription_item_follows_its_subscription() {
    let store = fresh_store().await;
    put_legacy(
        &store,
        &[
            ("status", "active"),
            ("plan", "professional"),
            ("source", "subscription"),
            ("subscription_id", "sub_test"),
            ("payment_id", "pay_first"),
        ],
        Some(NOW + 86_400),
    )
    .await;
    deliver_at(&store, "m1", NOW, &subscription("expired", NEXT)).await;
    let got = entitlement(&store, BUYER).await;
    assert_eq!(got.grants.len(), 1, "{:?}", got.grants.keys());
    assert_eq!(got.grants["sub_test"].status, status::EXPIRED);
    assert!(!got.is_pro(NOW + 1));
}

#[tokio::test]
async fn a_subscription_past_due_keeps_access_and_unknown_statuses_change_nothing() {
    let store = fresh_store().await;
    deliver_at(&store, "m1", NOW, &subscription("active", NEXT)).await;
    deliver_at(&store, "m2", NOW + 1, &subscription("past_due", NEXT)).await;
    let got = entitlement(&store, BUYER).await;
    assert!(got.is_pro(parse_rfc3339_seconds(NEXT).unwrap() + 86_400));
    assert_eq!(got.grants["sub_test"].reason.as_deref(), Some("past_due"));
    let before = entitlement(&store, BUYER).await;
    deliver_at(
        &store,
        "m3",
        NOW + 2,
        &subscription("paused_by_alien", NEXT),
    )
    .await;
    let after = entitlement(&store, BUYER).await;
    assert_eq!(before.grants, after.grants);
    let recorded = store.get_subscription("sub_test").await.unwrap().unwrap();
    assert_eq!(recorded.status, "paused_by_alien");
}

#[tokio::test]
async fn a_yearly_plan_refunded_before_its_first_snapshot_stays_revoked_for_that_year() {
    let store = fresh_store().await;
    deliver_at(&store, "m1", NOW, &subscription_payment("pay_year", BUYER)).await;
    deliver_at(&store, "m2", NOW + 10, &refund("pay_year", BUYER)).await;
    let year_end = "2027-01-10T17:55:53Z";
    deliver_at(&store, "m3", NOW + 20, &subscription("active", year_end)).await;
    let got = entitlement(&store, BUYER).await;
    assert!(!got.is_pro(NOW + 21), "the refunded year does not grant");
    assert_eq!(
        got.grants["sub_test"].revoked_period_end,
        parse_rfc3339_seconds(year_end)
    );
    // The next year, paid, does.
    deliver_at(
        &store,
        "m4",
        NOW + 30,
        &subscription("active", "2028-01-10T17:55:53Z"),
    )
    .await;
    assert!(entitlement(&store, BUYER).await.is_pro(NOW + 31));
}

fn renewal_payment(id: &str, created_at: &str) -> String {
    payment(id, BUYER, |v| {
        v["data"]["subscription_id"] = json!("sub_test");
        v["data"]["created_at"] = json!(created_at);
    })
}

fn renewed(next_billing: &str) -> String {
    dodo_body("subscription.active.cli-generator", |v| {
        v["type"] = json!("subscription.renewed");
        v["data"]["status"] = json!("active");
        v["data"]["next_billing_date"] = json!(next_billing);
    })
}

/// The first payment refunded before any subscription event told its period, then a paid
/// renewal: the renewal's period grants, the refunded one does not, in either order of the
/// renewal's two deliveries.
#[tokio::test]
async fn a_paid_renewal_grants_after_the_first_payment_was_refunded_before_any_snapshot() {
    let renewal_made = "2026-02-10T17:55:53Z";
    let renewal_end = "2026-03-10T17:55:53Z";
    let at_renewal = parse_rfc3339_seconds(renewal_made).unwrap() + 60;
    for payment_first in [true, false] {
        let store = fresh_store().await;
        deliver_at(&store, "m1", NOW, &subscription_payment("pay_first", BUYER)).await;
        deliver_at(&store, "m2", NOW + 10, &refund("pay_first", BUYER)).await;
        assert!(!entitlement(&store, BUYER).await.is_pro(NOW + 11));
        let deliveries = [
            ("m3", renewal_payment("pay_renewal", renewal_made)),
            ("m4", renewed(renewal_end)),
        ];
        let ordered: Vec<_> = if payment_first {
            deliveries.iter().collect()
        } else {
            deliveries.iter().rev().collect()
        };
        for (offset, (id, body)) in ordered.into_iter().enumerate() {
            deliver_at(&store, id, at_renewal + offset as i64, body).await;
        }
        let got = entitlement(&store, BUYER).await;
        let grant = &got.grants["sub_test"];
        assert!(
            got.is_pro(at_renewal + 10),
            "the renewal paid a new period (payment first: {payment_first}): {grant:?}"
        );
        assert_eq!(grant.status, status::ACTIVE);
        assert_eq!(
            grant.revoked_period_end,
            parse_rfc3339_seconds(renewal_made),
            "the refunded period ended when the renewal was paid"
        );
        // A late snapshot of the refunded period changes nothing.
        deliver_at(
            &store,
            "m5",
            at_renewal + 20,
            &subscription("active", renewal_made),
        )
        .await;
        assert!(entitlement(&store, BUYER).await.is_pro(at_renewal + 21));
    }
}

/// A late delivery of a payment made before the revocation never ends a revoked period.
#[tokio::test]
async fn an_older_payment_delivered_late_does_not_lift_a_revocation() {
    let store = fresh_store().await;
    deliver_at(&store, "m1", NOW, &subscription_payment("pay_first", BUYER)).await;
    deliver_at(&store, "m2", NOW + 10, &refund("pay_first", BUYER)).await;
    // Made before the refund (created_at of the fixture), delivered after it.
    deliver_at(
        &store,
        "m3",
        NOW + 20,
        &payment("pay_early", BUYER, |v| {
            v["data"]["subscription_id"] = json!("sub_test");
        }),
    )
    .await;
    let got = entitlement(&store, BUYER).await;
    assert!(
        got.grants["sub_test"].revoked_period_pending,
        "still pending"
    );
    assert!(!got.is_pro(NOW + 21));
}
