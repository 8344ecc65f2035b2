//! The real `webhook` binary through its real Lambda runtime loop (a local Runtime API),
//! fed the `events/` deliveries re-signed for the current time.
#![allow(clippy::unwrap_used)]

use llmxt_domain::time::unix_now;
use llmxt_testkit::{
    event_file, fresh_store, function_env, invoke_binary, sample_events_at, start_failure,
};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_webhook");

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn sample_deliveries_through_the_runtime_loop() {
    let store = fresh_store().await;
    let events: Vec<(&str, String)> = sample_events_at(unix_now())
        .into_iter()
        .filter(|(name, _)| name.starts_with("webhook-"))
        .map(|(name, event)| (name, event.to_string()))
        .chain([(
            "committed-file",
            event_file("webhook-payment-succeeded.json"),
        )])
        .collect();
    let responses = invoke_binary(BINARY, &function_env(&store), &events).await;
    let got: Vec<(&str, i64, Value)> = events
        .iter()
        .zip(&responses)
        .map(|((name, _), response)| {
            (
                *name,
                response["statusCode"].as_i64().unwrap(),
                body(response),
            )
        })
        .collect();
    let processed = json!({"outcome": "processed"});
    let unauthorized = json!({"error": "invalid webhook signature"});
    assert_eq!(
        got,
        vec![
            ("webhook-payment-succeeded.json", 200, processed.clone()),
            ("webhook-subscription-active.json", 200, processed.clone()),
            ("webhook-refund-succeeded.json", 200, processed),
            ("webhook-bad-signature.json", 401, unauthorized.clone()),
            ("webhook-stale-timestamp.json", 401, unauthorized.clone()),
            // The committed files are signed at a fixed time: against the real clock they are stale.
            ("committed-file", 401, unauthorized),
        ]
    );
    let payment = store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(payment.refund_status.as_deref(), Some("refunded"));
}

#[tokio::test]
async fn refuses_to_start_without_a_usable_secret() {
    let store = fresh_store().await;
    let mut env = function_env(&store);
    env.retain(|(name, _)| *name != "DODO_WEBHOOK_SECRET");
    let (code, stderr) = start_failure(BINARY, &env).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("DODO_WEBHOOK_SECRET is required"),
        "{stderr}"
    );
    env.push(("DODO_WEBHOOK_SECRET", "not-a-whsec-secret".to_owned()));
    let (code, stderr) = start_failure(BINARY, &env).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("DODO_WEBHOOK_SECRET must start with \"whsec_\""),
        "{stderr}"
    );
}
