//! The real `entitlement` binary through its real Lambda runtime loop.
#![allow(clippy::unwrap_used)]

use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, source, status};
use llmxt_domain::time::unix_now;
use llmxt_testkit::{
    event_file, fresh_store, function_env, invoke_binary, sample_events_at, start_failure,
};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_entitlement");

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn entitlement_events_through_the_runtime_loop() {
    let store = fresh_store().await;
    let granted = Entitlement {
        status: status::ACTIVE.to_owned(),
        plan: "professional".to_owned(),
        source: source::PAYMENT.to_owned(),
        ..Entitlement::new(Email::parse("john.doe@example.com").unwrap())
    };
    store.put_entitlement(&granted).await.unwrap();
    let fresh = sample_events_at(unix_now());
    let pick = |name: &str| {
        fresh
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .to_string()
    };
    let events = [
        ("cookie", pick("entitlement-cookie.json")),
        ("signed-email", pick("entitlement-email-signed.json")),
        (
            "committed-signed-email",
            event_file("entitlement-email-signed.json"),
        ),
    ];
    let responses = invoke_binary(BINARY, &function_env(&store), &events).await;
    assert_eq!(responses[0]["statusCode"], 200);
    assert_eq!(body(&responses[0])["pro"], json!(true));
    assert_eq!(body(&responses[0])["source"], json!("database"));
    assert_eq!(responses[0]["headers"]["cache-control"], "no-store");
    assert_eq!(body(&responses[1])["pro"], json!(true));
    // Signed at a fixed time: outside the ±300 s window against the real clock.
    assert_eq!(responses[2]["statusCode"], 401);
}

#[tokio::test]
async fn refuses_to_start_when_signing_is_required_but_no_secret_is_set() {
    let store = fresh_store().await;
    let mut env = function_env(&store);
    env.retain(|(name, _)| !matches!(*name, "HMAC_SECRET" | "REQUIRE_HMAC_SIGNATURE"));
    let (code, stderr) = start_failure(BINARY, &env).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("HMAC_SECRET is required while REQUIRE_HMAC_SIGNATURE=true"),
        "{stderr}"
    );
}
