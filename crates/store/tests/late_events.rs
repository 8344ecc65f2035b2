//! A late refund against DynamoDB Local, through the ledger: a subscription's first payment
//! refunded on day 10 but delivered on day 31, after the renewal paid on day 30 was applied,
//! keeps the renewed, paid period. (The property test over orders and delays is
//! crates/domain/tests/late_events.rs.)
#![allow(clippy::unwrap_used)]

use llmxt_domain::config::PlanCatalog;
use llmxt_domain::email::Email;
use llmxt_domain::events::parse_event;
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::time::format_rfc3339;
use llmxt_store::ledger::{Delivery, Origin, apply_delivery};
use llmxt_testkit::{dodo_body, fresh_store};
use serde_json::json;

const T0: i64 = 1_767_225_600; // 2026-01-01
const DAY: i64 = 86_400;
const EMAIL: &str = "late-refund@example.com";

fn payment(id: &str, at: i64) -> String {
    dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(id);
        v["data"]["subscription_id"] = json!("sub_late");
        v["data"]["customer"]["email"] = json!(EMAIL);
        v["data"]["created_at"] = json!(format_rfc3339(at));
        v["timestamp"] = json!(format_rfc3339(at));
    })
}

fn renewed(at: i64, next_billing: i64) -> String {
    dodo_body("subscription.active.cli-generator", |v| {
        v["type"] = json!("subscription.renewed");
        v["data"]["status"] = json!("active");
        v["data"]["product_id"] = json!("pdt_test");
        v["data"]["subscription_id"] = json!("sub_late");
        v["data"]["next_billing_date"] = json!(format_rfc3339(next_billing));
        v["data"]["customer"]["email"] = json!(EMAIL);
        v["timestamp"] = json!(format_rfc3339(at));
    })
}

fn refund(payment_id: &str, at: i64) -> String {
    dodo_body("refund.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(payment_id);
        v["data"]["customer"]["email"] = json!(EMAIL);
        v["data"]["created_at"] = json!(format_rfc3339(at));
        v["timestamp"] = json!(format_rfc3339(at));
    })
}

#[tokio::test]
async fn a_first_payment_refunded_on_day_10_delivered_on_day_31_keeps_the_renewed_period() {
    let store = fresh_store().await;
    let plans = PlanCatalog::parse("pdt_test=professional", "professional").unwrap();
    let settings = PolicySettings {
        plans: &plans,
        claim_ttl_seconds: 600,
        grace_seconds: 3 * DAY,
    };
    let deliveries = [
        (payment("pay_first", T0), T0),
        (renewed(T0 + 60, T0 + 30 * DAY), T0 + 60),
        (payment("pay_renewal", T0 + 30 * DAY), T0 + 30 * DAY),
        (
            renewed(T0 + 30 * DAY + 60, T0 + 60 * DAY),
            T0 + 30 * DAY + 60,
        ),
        // Made on day 10, delivered on day 31.
        (refund("pay_first", T0 + 10 * DAY), T0 + 31 * DAY),
    ];
    for (index, (body, received_at)) in deliveries.iter().enumerate() {
        let id = format!("msg_{index}");
        let delivery = Delivery {
            webhook_id: &id,
            origin: Origin::Webhook,
            webhook_timestamp: *received_at,
            received_at: *received_at,
        };
        apply_delivery(
            &store,
            settings,
            delivery,
            &parse_event(body.as_bytes()).unwrap(),
        )
        .await
        .unwrap();
    }
    let entitlement = store
        .get_entitlement(&Email::parse(EMAIL).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(entitlement.is_pro(T0 + 31 * DAY));
    assert!(entitlement.is_pro(T0 + 60 * DAY));
    let grant = &entitlement.grants["sub_late"];
    assert_eq!(grant.status, "active");
    assert_eq!(grant.revoked_at, Some(T0 + 10 * DAY));
    assert_eq!(grant.revoked_period_end, Some(T0 + 30 * DAY));
    let refunded = store.get_payment("pay_first").await.unwrap().unwrap();
    assert_eq!(refunded.access_revoked.as_deref(), Some("refunded"));
    assert_eq!(refunded.access_revoked_at, Some(T0 + 10 * DAY));
}
