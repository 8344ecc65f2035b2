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

/// One HTTP/1.1 request to the stand-in; the answer's status line, headers and body as text.
async fn raw_request(base_url: &str, method: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let content_type = if path.starts_with("/checkout/") {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {TEST_API_KEY}\r\n\
         content-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

/// Creates a checkout session and pays it on the hosted page; the payment id it returns to.
async fn buy_on_hosted_checkout(stand_in: &DodoStandIn) -> String {
    let created = raw_request(
        &stand_in.base_url,
        "POST",
        "/checkouts",
        r#"{"product_cart":[{"product_id":"pdt_test","quantity":1}],"return_url":"http://localhost/upgrade/success"}"#,
    )
    .await;
    let body = created.split("\r\n\r\n").nth(1).unwrap();
    let session: serde_json::Value = serde_json::from_str(body).unwrap();
    let session_id = session["session_id"].as_str().unwrap();
    let paid = raw_request(
        &stand_in.base_url,
        "POST",
        &format!("/checkout/{session_id}/pay"),
        "email=buyer%40example.com&webhook=lose",
    )
    .await;
    assert!(paid.starts_with("HTTP/1.1 303"), "{paid}");
    let location = paid
        .lines()
        .find_map(|line| line.strip_prefix("location: "))
        .unwrap();
    let query = location.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("payment_id="))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_restarted_stand_in_never_repeats_an_id_and_stamps_purchases_with_the_current_time() {
    let first_run = DodoStandIn::for_tests().await;
    let first = buy_on_hosted_checkout(&first_run).await;
    drop(first_run);
    // Ids carry the run's start in milliseconds: a restart is never within the same one.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second_run = DodoStandIn::for_tests().await;
    let second = buy_on_hosted_checkout(&second_run).await;
    assert_ne!(first, second, "a restart handed out the same payment id");
    assert!(second.starts_with("pay_"), "{second}");

    let sdk = client(&second_run, TEST_API_KEY);
    let payment = sdk
        .payments()
        .retrieve()
        .payment_id(second.as_str())
        .send()
        .await
        .unwrap();
    let created = llmxt_domain::time::parse_rfc3339_seconds(&payment.created_at)
        .unwrap_or_else(|| panic!("created_at {}", payment.created_at));
    let now = llmxt_domain::time::unix_now();
    assert!(
        (now - 60..=now).contains(&created),
        "created_at {} is not the time of the purchase",
        payment.created_at
    );
    // What `llmxt-admin payments --since 24h` and `reconcile --since 72h` ask for.
    let since = llmxt_domain::time::format_rfc3339(now - 86_400);
    let page = sdk
        .payments()
        .list()
        .query(serde_json::json!({ "created_at_gte": since, "page_size": 100 }))
        .send()
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].payment_id, second);
}

#[tokio::test]
async fn the_sdks_change_plan_calls_accept_the_stand_ins_answers() {
    let stand_in = DodoStandIn::for_tests().await;
    stand_in.set_price("pdt_pro", 1000);
    stand_in.set_price("pdt_ent", 3000);
    let (subscription_id, _) = stand_in.subscribe("plan@example.com", "pdt_pro").await;
    let sdk = client(&stand_in, TEST_API_KEY);
    let request = |effective_at: &str| {
        llmxt_dodo::dodo_api::plan_change_request(
            "pdt_ent",
            "difference_immediately",
            effective_at,
            None,
        )
    };
    let preview = sdk
        .subscriptions()
        .preview_change_plan()
        .subscription_id(&subscription_id)
        .body(request("immediately"))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.immediate_charge["summary"]["total_amount"], 2000);
    assert_eq!(preview.new_plan.product_id, "pdt_ent");

    let scheduled = sdk
        .subscriptions()
        .change_plan()
        .subscription_id(&subscription_id)
        .body(request("next_billing_date"))
        .send()
        .await
        .unwrap();
    assert_eq!(scheduled.payment_link, None);
    let subscription = sdk
        .subscriptions()
        .retrieve()
        .subscription_id(&subscription_id)
        .send()
        .await
        .unwrap();
    assert_eq!(subscription.product_id, "pdt_pro", "scheduled, not applied");
    let change = subscription.scheduled_change.unwrap();
    assert_eq!(change.product_id, "pdt_ent");
    assert_eq!(change.effective_at, subscription.next_billing_date);

    let changed = sdk
        .subscriptions()
        .change_plan()
        .subscription_id(&subscription_id)
        .body(request("immediately"))
        .send()
        .await
        .unwrap();
    assert!(changed.payment_id.is_some(), "the difference is charged");
    let charge = sdk
        .payments()
        .retrieve()
        .payment_id(changed.payment_id.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let charged_at = llmxt_domain::time::parse_rfc3339_seconds(&charge.created_at).unwrap();
    assert!(
        (llmxt_domain::time::unix_now() - charged_at).abs() < 60,
        "the plan change's payment is stamped now, so `payments --since 24h` lists it: {}",
        charge.created_at
    );
    let subscription = sdk
        .subscriptions()
        .retrieve()
        .subscription_id(&subscription_id)
        .send()
        .await
        .unwrap();
    assert_eq!(subscription.product_id, "pdt_ent");
    assert!(subscription.scheduled_change.is_none());

    // Bad requests answer as Dodo does.
    let error = sdk
        .subscriptions()
        .change_plan()
        .subscription_id(&subscription_id)
        .body(dodopayments::models::SubscriptionsChangePlanParams::default())
        .send()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("422"), "{error}");
}
