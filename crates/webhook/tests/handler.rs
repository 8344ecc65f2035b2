//! The webhook handler in-process, fed API Gateway events, against DynamoDB Local.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use lambda_http::http::StatusCode;
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_testkit::{
    EVENTS_TIME, TEST_ENTITLEMENT_SECRET, TEST_WEBHOOK_SECRET, dodo_body, event_file, fresh_store,
    request_from_event, response_json, table_sizes, webhook_event,
};
use serde_json::json;
use webhook::config::WebhookConfig;
use webhook::{MAX_BODY_BYTES, WebhookDeps, handle};

fn config() -> WebhookConfig {
    WebhookConfig::from_env(&Env::from_pairs([
        ("DODO_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET),
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("PRODUCT_PLANS", "pdt_test=professional"),
    ]))
    .unwrap()
}

async fn deps() -> WebhookDeps {
    WebhookDeps {
        config: config(),
        store: fresh_store().await,
    }
}

async fn send(deps: &WebhookDeps, event: &str, now: i64) -> (StatusCode, serde_json::Value) {
    let response = handle(deps, request_from_event(event), now).await;
    (response.status(), response_json(&response))
}

async fn send_file(deps: &WebhookDeps, name: &str) -> (StatusCode, serde_json::Value) {
    send(deps, &event_file(name), EVENTS_TIME + 10).await
}

fn buyer() -> Email {
    Email::parse("john.doe@example.com").unwrap()
}

#[tokio::test]
async fn sample_events_give_their_documented_outcomes() {
    let deps = deps().await;
    assert_eq!(
        send_file(&deps, "webhook-payment-succeeded.json").await,
        (StatusCode::OK, json!({"outcome": "processed"}))
    );
    assert_eq!(
        send_file(&deps, "webhook-payment-succeeded.json").await,
        (StatusCode::OK, json!({"outcome": "duplicate"}))
    );
    assert!(
        deps.store
            .get_entitlement(&buyer())
            .await
            .unwrap()
            .unwrap()
            .is_pro(EVENTS_TIME)
    );
    assert_eq!(
        send_file(&deps, "webhook-subscription-active.json").await,
        (StatusCode::OK, json!({"outcome": "processed"}))
    );
    assert_eq!(
        send_file(&deps, "webhook-refund-succeeded.json").await,
        (StatusCode::OK, json!({"outcome": "processed"}))
    );
    let payment = deps.store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(payment.refund_status.as_deref(), Some("refunded"));
}

#[tokio::test]
async fn bad_signature_and_stale_timestamp_are_401_and_write_nothing() {
    let deps = deps().await;
    for name in ["webhook-bad-signature.json", "webhook-stale-timestamp.json"] {
        let (status, body) = send_file(&deps, name).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(body, json!({"error": "invalid webhook signature"}));
    }
    let body = dodo_body("payment.succeeded.cli-generator", |_| {});
    let mut unsigned = webhook_event("msg_x", EVENTS_TIME, &body, None);
    unsigned["headers"]
        .as_object_mut()
        .unwrap()
        .remove("webhook-signature");
    assert_eq!(
        send(&deps, &unsigned.to_string(), EVENTS_TIME).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Signed for another body.
    let other = webhook_event(
        "msg_y",
        EVENTS_TIME,
        &body.replace("pay_test", "pay_evil"),
        Some(llmxt_testkit::sign_webhook("msg_y", EVENTS_TIME, &body)),
    );
    assert_eq!(
        send(&deps, &other.to_string(), EVENTS_TIME).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(table_sizes(&deps.store).await, (0, 0));
}

#[tokio::test]
async fn other_methods_are_405() {
    let deps = deps().await;
    let mut event = webhook_event(
        "msg_1",
        EVENTS_TIME,
        &dodo_body("payment.succeeded.cli-generator", |_| {}),
        None,
    );
    event["requestContext"]["http"]["method"] = json!("GET");
    let response = handle(&deps, request_from_event(&event.to_string()), EVENTS_TIME).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(table_sizes(&deps.store).await, (0, 0));
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_even_when_signed() {
    let deps = deps().await;
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["padding"] = json!("x".repeat(MAX_BODY_BYTES))
    });
    let event = webhook_event("msg_big", EVENTS_TIME, &body, None);
    assert_eq!(
        send(&deps, &event.to_string(), EVENTS_TIME).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "request body too large"})
        )
    );
    assert_eq!(table_sizes(&deps.store).await, (0, 0));
}

#[tokio::test]
async fn a_signed_body_that_is_not_an_event_is_400() {
    let deps = deps().await;
    for (i, body) in [
        "not json",
        "[]",
        r#"{"type":"payment.succeeded"}"#,
        r#"{"data":{}}"#,
        r#"{"type":1,"data":{}}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let event = webhook_event(&format!("msg_{i}"), EVENTS_TIME, body, None);
        let (status, answer) = send(&deps, &event.to_string(), EVENTS_TIME).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer, json!({"error": "body is not a JSON webhook event"}));
    }
    assert_eq!(table_sizes(&deps.store).await, (0, 0));
}

#[tokio::test]
async fn unknown_event_types_are_200_ignored() {
    let deps = deps().await;
    let body = r#"{"business_id":"bus_1","type":"license_key.created","timestamp":"2026-01-10T17:55:53Z","data":{"payload_type":"LicenseKey","id":"lic_1","extra":[1,null,{"x":true}]}}"#;
    let event = webhook_event("msg_lic", EVENTS_TIME, body, None);
    assert_eq!(
        send(&deps, &event.to_string(), EVENTS_TIME).await,
        (StatusCode::OK, json!({"outcome": "ignored"}))
    );
    assert_eq!(table_sizes(&deps.store).await, (0, 0));
}

#[tokio::test]
async fn real_shaped_payloads_with_extra_fields_and_nulls_are_accepted() {
    let deps = deps().await;
    let body = dodo_body("subscription.active.cli-generator", |v| {
        let data = v["data"].as_object_mut().unwrap();
        for (key, value) in [
            ("brand_id", json!("bus_test")),
            ("credit_entitlement_cart", json!([])),
            ("meter_credit_entitlement_cart", json!(null)),
            ("payment_method_id", json!(null)),
            ("tax_id", json!(null)),
            (
                "custom_field_responses",
                json!([{"key": "seats", "value": 3}]),
            ),
            ("discounts", json!(null)),
            (
                "scheduled_change",
                json!({"product_id": "pdt_other", "at": null}),
            ),
            ("paused_at", json!(null)),
        ] {
            data.insert(key.to_owned(), value);
        }
        v["data"]["customer"]["metadata"] = json!({"signup": 12, "beta": true, "tags": ["a"]});
        v["data"]["metadata"] = json!({"plan_hint": 3, "email": null});
    });
    let event = webhook_event("msg_real", EVENTS_TIME, &body, None);
    assert_eq!(
        send(&deps, &event.to_string(), EVENTS_TIME).await,
        (StatusCode::OK, json!({"outcome": "processed"}))
    );
    assert!(
        deps.store
            .get_entitlement(&buyer())
            .await
            .unwrap()
            .unwrap()
            .is_pro(EVENTS_TIME)
    );
}

#[tokio::test]
async fn a_delivery_without_email_is_200_with_attention() {
    let deps = deps().await;
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["customer"]["email"] = json!("")
    });
    let event = webhook_event("msg_anon", EVENTS_TIME, &body, None);
    assert_eq!(
        send(&deps, &event.to_string(), EVENTS_TIME).await,
        (
            StatusCode::OK,
            json!({"outcome": "processed", "attention": "missing_email"})
        )
    );
    assert_eq!(
        table_sizes(&deps.store).await,
        (0, 2),
        "payment and delivery stored, no entitlement"
    );
}

#[tokio::test]
async fn twenty_concurrent_deliveries_of_one_event_have_one_effect() {
    let deps = Arc::new(deps().await);
    let event = Arc::new(event_file("webhook-payment-succeeded.json"));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (deps, event) = (Arc::clone(&deps), Arc::clone(&event));
            tokio::spawn(async move { send(&deps, &event, EVENTS_TIME).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        outcomes.push(body["outcome"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        outcomes.iter().filter(|o| *o == "processed").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(table_sizes(&deps.store).await, (1, 2));
}

#[tokio::test]
async fn unreachable_storage_is_503_so_dodo_retries() {
    let deps = WebhookDeps {
        config: config(),
        store: llmxt_testkit::unreachable_store(std::time::Duration::from_millis(500)).await,
    };
    let (status, body) = send_file(&deps, "webhook-payment-succeeded.json").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "temporarily unavailable, retry later"})
        )
    );
}

#[tokio::test]
async fn a_transaction_failing_half_way_writes_nothing_and_is_5xx() {
    let deps = deps().await;
    // The entitlements table disappears: the payment must not be written alone.
    let entitlements = deps.store.config().entitlements_table.clone();
    deps.store
        .client()
        .delete_table()
        .table_name(&entitlements)
        .send()
        .await
        .unwrap();
    let (status, _) = send_file(&deps, "webhook-payment-succeeded.json").await;
    assert!(status.is_server_error(), "{status}");
    let payments = deps.store.config().payments_table.clone();
    assert!(
        llmxt_testkit::scan_all(&deps.store, &payments)
            .await
            .is_empty()
    );
    // Once the table is back, Dodo's retry is applied in full.
    deps.store.create_tables().await.unwrap();
    assert_eq!(
        send_file(&deps, "webhook-payment-succeeded.json").await,
        (StatusCode::OK, json!({"outcome": "processed"}))
    );
    assert_eq!(table_sizes(&deps.store).await, (1, 2));
}

#[tokio::test]
async fn oversized_headers_are_rejected_and_write_nothing() {
    // Even correctly signed, a 64 KiB webhook-id (a database key) is refused.
    let deps = deps().await;
    let body = dodo_body("payment.succeeded.cli-generator", |_| {});
    let huge_signature = format!("v1,{}", "A".repeat(64 * 1024));
    let event = webhook_event("msg_huge", EVENTS_TIME, &body, Some(huge_signature));
    assert_eq!(
        send(&deps, &event.to_string(), EVENTS_TIME).await.0,
        StatusCode::UNAUTHORIZED
    );
    let many = (0..2000)
        .map(|i| format!("v1,{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let event = webhook_event("msg_many", EVENTS_TIME, &body, Some(many));
    assert_eq!(
        send(&deps, &event.to_string(), EVENTS_TIME).await.0,
        StatusCode::UNAUTHORIZED
    );
    let long_id = "m".repeat(64 * 1024);
    let event = webhook_event(&long_id, EVENTS_TIME, &body, None);
    assert_eq!(
        send(&deps, &event.to_string(), EVENTS_TIME).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(table_sizes(&deps.store).await, (0, 0));
}
