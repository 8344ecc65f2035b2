//! The real `success-redirect` binary through its real Lambda runtime loop.
#![allow(clippy::unwrap_used)]

use llmxt_testkit::{
    dodo_body, event_file, fresh_store, function_env, invoke_binary, start_failure,
};

const BINARY: &str = env!("CARGO_BIN_EXE_success-redirect");

#[tokio::test]
async fn the_success_event_through_the_runtime_loop() {
    let store = fresh_store().await;
    let event = event_file("success-redirect.json");
    let env = function_env(&store);

    let pending = invoke_binary(BINARY, &env, &[("before-webhook", event.clone())]).await;
    assert_eq!(pending[0]["statusCode"], 200);
    assert!(
        pending[0]["body"]
            .as_str()
            .unwrap()
            .contains("Confirming your payment")
    );

    llmxt_testkit::apply_body(
        &store,
        "msg_runtime",
        &dodo_body("payment.succeeded.cli-generator", |_| {}),
    )
    .await;

    let responses = invoke_binary(
        BINARY,
        &env,
        &[("after-webhook", event.clone()), ("replay", event)],
    )
    .await;
    assert_eq!(responses[0]["statusCode"], 302);
    assert_eq!(
        responses[0]["headers"]["location"],
        "https://pro.example.com/?upgrade=success"
    );
    let cookies = responses[0]["cookies"].as_array().unwrap();
    assert!(
        cookies[0]
            .as_str()
            .unwrap()
            .starts_with("__Host-llmxt_pro="),
        "{cookies:?}"
    );
    assert_eq!(responses[1]["statusCode"], 200);
    assert!(
        responses[1]["body"]
            .as_str()
            .unwrap()
            .contains("https://pro.example.com/upgrade/restore"),
        "{:?}",
        responses[1]
    );
}

#[tokio::test]
async fn refuses_to_start_with_a_weak_cookie_secret() {
    let store = fresh_store().await;
    let mut env = function_env(&store);
    env.retain(|(name, _)| *name != "ENTITLEMENT_SECRET");
    env.push(("ENTITLEMENT_SECRET", "short".to_owned()));
    let (code, stderr) = start_failure(BINARY, &env).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("ENTITLEMENT_SECRET is too weak"),
        "{stderr}"
    );
}
