//! The Dodo stand-in speaks the official SDK's public types: its objects deserialize into
//! the SDK's typed models, its lists page from 0, its errors carry `{"code","message"}`.
#![allow(clippy::unwrap_used)]

use dodopayments::{Client, ClientConfig};
use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY, payment_object, subscription_object};

fn client(stand_in: &DodoStandIn, key: &str) -> Client {
    Client::new(
        ClientConfig::new(stand_in.base_url.clone())
            .with_api_key(key)
            .with_max_retries(0),
    )
    .unwrap()
}

#[tokio::test]
async fn the_sdks_typed_calls_accept_what_the_stand_in_serves() {
    let stand_in = DodoStandIn::for_tests().await;
    stand_in.add_payment(payment_object(
        "pay_1",
        "a@example.com",
        "succeeded",
        "pdt_test",
        Some("sub_1"),
        |_| {},
    ));
    stand_in.add_subscription(subscription_object(
        "sub_1",
        "a@example.com",
        "past_due",
        "pdt_test",
        "2026-02-10T17:55:53Z",
    ));
    let sdk = client(&stand_in, TEST_API_KEY);
    let payment = sdk
        .payments()
        .retrieve()
        .payment_id("pay_1")
        .send()
        .await
        .unwrap();
    assert_eq!(payment.subscription_ids, vec!["sub_1".to_owned()]);
    assert_eq!(payment.metadata["attempt"], serde_json::json!(1));
    assert_eq!(payment.metadata["gift"], serde_json::json!(false));
    let subscription = sdk
        .subscriptions()
        .retrieve()
        .subscription_id("sub_1")
        .send()
        .await
        .unwrap();
    assert!(matches!(
        *subscription.status,
        dodopayments::models::SubscriptionStatus::PastDue
    ));
    let page = sdk
        .payments()
        .list()
        .query(serde_json::json!({"page_number": 0, "page_size": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].payment_id, "pay_1");
}

#[tokio::test]
async fn pages_are_zero_based_of_at_most_100_and_errors_are_code_and_message() {
    let stand_in = DodoStandIn::for_tests().await;
    for i in 0..130 {
        stand_in.add_payment(payment_object(
            &format!("pay_{i:03}"),
            "a@example.com",
            "succeeded",
            "pdt_test",
            None,
            |p| {
                p["created_at"] =
                    serde_json::json!(format!("2026-01-10T17:{:02}:{:02}Z", i / 60, i % 60));
            },
        ));
    }
    let sdk = client(&stand_in, TEST_API_KEY);
    let mut seen = Vec::new();
    for page_number in 0.. {
        let query = serde_json::json!({ "page_number": page_number, "page_size": 100 });
        let page = sdk.payments().list().query(query).send().await.unwrap();
        if page.items.is_empty() {
            break;
        }
        seen.extend(page.items.into_iter().map(|p| p.payment_id));
    }
    assert_eq!(seen.len(), 130);
    assert_eq!(seen[0], "pay_129", "newest first");
    let too_big = sdk
        .payments()
        .list()
        .query(serde_json::json!({"page_size": 101}))
        .send()
        .await;
    assert!(matches!(
        too_big,
        Err(dodopayments::Error::Api { status: 422, .. })
    ));
    let wrong_key = client(&stand_in, "wrong")
        .payments()
        .retrieve()
        .payment_id("pay_000")
        .send()
        .await;
    match wrong_key {
        Err(dodopayments::Error::Api { status, message }) => {
            assert_eq!(status, 401);
            let body: serde_json::Value = serde_json::from_str(&message).unwrap();
            assert_eq!(body["code"], "UNAUTHORIZED");
            assert!(body["message"].is_string());
        }
        other => panic!("{other:?}"),
    }
    let missing = sdk
        .payments()
        .retrieve()
        .payment_id("pay_nope")
        .send()
        .await;
    assert!(matches!(
        missing,
        Err(dodopayments::Error::Api { status: 404, .. })
    ));
}
