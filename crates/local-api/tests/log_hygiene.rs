//! Logs captured across every path of the three handlers contain no secret, signature,
//! token or full email.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use llmxt_domain::config::Env;
use llmxt_domain::request_signature::{SignedRequest, sign};
use llmxt_domain::time::unix_now;
use llmxt_testkit::{
    ApiGatewayEvent, TEST_ENTITLEMENT_SECRET, TEST_HMAC_SECRET, TEST_WEBHOOK_SECRET, dodo_body,
    fresh_store, function_env, hmac_secret, request_from_event, sign_webhook, webhook_event,
};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_never_carry_secrets_tokens_signatures_or_full_emails() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Everything our own crates log, at every level; other crates (the AWS SDK) at the level
    // the functions are deployed with (INFO): the SDK's own TRACE output includes request
    // bodies and must never be enabled in production.
    use tracing_subscriber::layer::SubscriberExt;
    let ours = tracing::Level::TRACE;
    let targets = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::INFO)
        .with_targets(
            [
                "webhook",
                "success_redirect",
                "entitlement",
                "llmxt_domain",
                "llmxt_store",
                "llmxt_dodo",
                "llmxt_http",
                "local_api",
            ]
            .map(|t| (t, ours)),
        );
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(move || writer.clone());
    let subscriber =
        tracing_subscriber::registry().with(tracing_subscriber::Layer::with_filter(layer, targets));
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = fresh_store().await;
    let mut env = function_env(&store);
    env.push((
        "NEXT_PUBLIC_CHECKOUT_URL",
        "https://checkout.example.com/buy".to_owned(),
    ));
    let env = Env::from_pairs(env.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let api = local_api::LocalApi::from_env(&env).await.unwrap();
    let now = unix_now();
    let mut secrets_seen: Vec<String> = vec![
        TEST_WEBHOOK_SECRET.to_owned(),
        TEST_WEBHOOK_SECRET.trim_start_matches("whsec_").to_owned(),
        TEST_ENTITLEMENT_SECRET.to_owned(),
        TEST_HMAC_SECRET.to_owned(),
        "john.doe@example.com".to_owned(),
        "ohn.doe".to_owned(),
    ];
    let call = |event: serde_json::Value| {
        let api = &api;
        async move { api.route(request_from_event(&event.to_string())).await }
    };

    // Webhook: good, duplicate, bad signature, no email, not an event, unknown type.
    let body = dodo_body("payment.succeeded.cli-generator", |_| {});
    let signature = sign_webhook("msg_log_1", now, &body);
    secrets_seen.push(signature.trim_start_matches("v1,").to_owned());
    call(webhook_event(
        "msg_log_1",
        now,
        &body,
        Some(signature.clone()),
    ))
    .await;
    call(webhook_event("msg_log_1", now, &body, Some(signature))).await;
    call(webhook_event(
        "msg_log_2",
        now,
        &body,
        Some("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned()),
    ))
    .await;
    let anonymous = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = serde_json::json!("pay_anon");
        v["data"]["customer"]["email"] = serde_json::json!(null);
    });
    call(webhook_event("msg_log_3", now, &anonymous, None)).await;
    call(webhook_event("msg_log_4", now, "not json", None)).await;
    call(webhook_event(
        "msg_log_5",
        now,
        r#"{"type":"x.y","data":{}}"#,
        None,
    ))
    .await;

    // An unauthenticated webhook-id far over the limit, trying to forge a JSON field: logged
    // truncated, never whole.
    let flood = format!("msg_flood\",\"forged\":true,{}", "x".repeat(8_000));
    call(webhook_event(
        &flood,
        now,
        &body,
        Some("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned()),
    ))
    .await;
    secrets_seen.push("x".repeat(100));

    // Success redirect: cookie issued, then replay.
    let success = ApiGatewayEvent {
        method: "GET",
        path: "/upgrade/success",
        query: "payment_id=pay_test",
        headers: vec![],
        cookies: vec![],
        body: None,
    };
    let response = call(success.to_json()).await;
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let token = set_cookie
        .trim_start_matches("__Host-llmxt_pro=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    secrets_seen.push(token.clone());
    secrets_seen.push(token.rsplit('.').next().unwrap().to_owned());
    call(success.to_json()).await;

    // Entitlement: valid cookie, tampered cookie, signed email lookup, bad signature.
    let cookie_request = |cookie: String| {
        ApiGatewayEvent {
            method: "GET",
            path: "/api/entitlement",
            query: "",
            headers: vec![],
            cookies: vec![format!("__Host-llmxt_pro={cookie}")],
            body: None,
        }
        .to_json()
    };
    call(cookie_request(token.clone())).await;
    call(cookie_request(format!("{token}x"))).await;
    let path = "/api/entitlement?email=john.doe%40example.com";
    let request_signature = sign(
        &hmac_secret(),
        now,
        SignedRequest {
            method: "GET",
            path_and_query: path,
            body: b"",
        },
    );
    secrets_seen.push(request_signature.trim_start_matches("v1=").to_owned());
    let signed = ApiGatewayEvent {
        method: "GET",
        path: "/api/entitlement",
        query: "email=john.doe%40example.com",
        headers: vec![
            ("x-llmxt-timestamp", now.to_string()),
            ("x-llmxt-signature", request_signature),
        ],
        cookies: vec![],
        body: None,
    };
    call(signed.to_json()).await;
    let mut forged = signed.to_json();
    forged["headers"]["x-llmxt-signature"] = serde_json::json!("v1=00");
    call(forged).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.lines().count() >= 12,
        "expected a line per request, got:\n{logs}"
    );
    assert!(
        logs.contains("j***@example.com"),
        "emails appear masked:\n{logs}"
    );
    for secret in &secrets_seen {
        assert!(
            !logs.contains(secret.as_str()),
            "the logs contain {secret:?}:\n{logs}"
        );
    }
}
