//! The edge pass set beside the Pro cookie by the success redirect and the sign-in link,
//! in-process, fed API Gateway events, against DynamoDB Local and the SES emulator.
#![allow(clippy::unwrap_used)]

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_domain::pass::{PassClaims, PassKeys};
use llmxt_testkit::{
    ApiGatewayEvent, EVENTS_TIME, TEST_ENTITLEMENT_SECRET, TEST_PASS_SIGNING_KEY, TEST_SITE,
    apply_body, dodo_body, event_file, fresh_store, request_from_event, response_text, sent_emails,
    ses_endpoint,
};
use serde_json::json;
use success_redirect::config::SuccessConfig;
use success_redirect::{SuccessDeps, handle};

async fn deps(extra: &[(&str, &str)]) -> SuccessDeps {
    let mut pairs = vec![
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET.to_owned()),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE.to_owned()),
        ("PRODUCT_PLANS", "pdt_test=professional".to_owned()),
        ("PLAN_FEATURES", "professional=export".to_owned()),
        ("PASS_SIGNING_KEY", TEST_PASS_SIGNING_KEY.to_owned()),
        ("RESTORE_EMAIL_FROM", "access@pro.example.com".to_owned()),
        ("SES_ENDPOINT", ses_endpoint()),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        pairs.push((name, (*value).to_owned()));
    }
    pairs.retain(|(_, value)| !value.is_empty());
    let config = SuccessConfig::from_env(&Env::from_pairs(pairs)).unwrap();
    let mut deps = SuccessDeps::new(config, fresh_store().await);
    deps.restore_floor = std::time::Duration::from_millis(10);
    deps
}

fn set_cookies(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The Pro cookie and then the pass cookie; the pass verified.
fn cookie_then_pass(response: &Response<Body>, now: i64) -> PassClaims {
    let cookies = set_cookies(response);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("__Host-llmxt_pro="), "{cookies:?}");
    let pass = cookies[1]
        .strip_prefix("__Host-llmxt_pass=")
        .expect("the pass cookie");
    assert!(
        pass.ends_with("; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{pass}"
    );
    let token = pass.split(';').next().unwrap();
    let claims = PassKeys::from_pem(TEST_PASS_SIGNING_KEY, vec![])
        .unwrap()
        .verify(token, TEST_SITE)
        .unwrap();
    assert_eq!((claims.iat, claims.exp), (now, now + 60));
    assert_eq!(claims.stale_until, Some(now + 86_400));
    claims
}

#[tokio::test]
async fn the_success_redirect_sets_the_pass_beside_the_cookie() {
    let deps = deps(&[]).await;
    let now = EVENTS_TIME + 5;
    let body = dodo_body("payment.succeeded.cli-generator", |_| {});
    apply_body(&deps.store, "msg_pass_1", &body).await;
    let response = handle(
        &deps,
        request_from_event(&event_file("success-redirect.json")),
        now,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let claims = cookie_then_pass(&response, now);
    assert_eq!(claims.sub, "john.doe@example.com");
    assert!(claims.pro);
    assert_eq!(claims.plan.as_deref(), Some("professional"));
    assert_eq!(claims.features, ["export"]);
    assert_eq!(claims.scope.as_deref(), Some("purchase"));
}

#[tokio::test]
async fn without_a_signing_key_the_success_redirect_sets_the_cookie_alone() {
    let deps = deps(&[("PASS_SIGNING_KEY", "")]).await;
    let body = dodo_body("payment.succeeded.cli-generator", |_| {});
    apply_body(&deps.store, "msg_pass_2", &body).await;
    let response = handle(
        &deps,
        request_from_event(&event_file("success-redirect.json")),
        EVENTS_TIME + 5,
    )
    .await;
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].starts_with("__Host-llmxt_pro="));
}

#[tokio::test]
async fn a_pass_over_600_bytes_is_left_out_and_the_cookie_is_set_alone() {
    // Many features on the plan: the pass would be longer than 600 bytes.
    let features =
        "professional=export,api,sso,priority-support,team-seats,audit-log,custom-domain";
    let deps = deps(&[("PLAN_FEATURES", features)]).await;
    let body = dodo_body("payment.succeeded.cli-generator", |_| {});
    apply_body(&deps.store, "msg_pass_long", &body).await;
    let response = handle(
        &deps,
        request_from_event(&event_file("success-redirect.json")),
        EVENTS_TIME + 5,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].starts_with("__Host-llmxt_pro="), "{cookies:?}");
}

fn restore_event(query: &'static str, body: Option<String>) -> String {
    let mut headers = vec![];
    if body.is_some() {
        headers.push((
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ));
        headers.push(("sec-fetch-site", "same-origin".to_owned()));
    }
    ApiGatewayEvent {
        method: if body.is_some() { "POST" } else { "GET" },
        path: "/upgrade/restore",
        query,
        headers,
        cookies: vec![],
        body,
    }
    .to_json()
    .to_string()
}

#[tokio::test]
async fn the_sign_in_link_sets_an_account_pass_beside_the_cookie() {
    let deps = deps(&[]).await;
    let buyer = format!("pass.{}@example.com", std::process::id());
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_pass_restore");
        v["data"]["customer"]["email"] = json!(buyer);
    });
    apply_body(&deps.store, "msg_pass_restore", &body).await;
    let now = llmxt_domain::time::unix_now();
    let asked = handle(
        &deps,
        request_from_event(&restore_event(
            "",
            Some(format!("email={}", buyer.replace('@', "%40"))),
        )),
        now,
    )
    .await;
    assert_eq!(asked.status(), StatusCode::OK, "{}", response_text(&asked));
    let mails = sent_emails(&buyer).await;
    let text = mails.last().expect("a mail")["body"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = text
        .lines()
        .find(|line| line.contains("/upgrade/restore?token="))
        .unwrap()
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .to_owned();
    let signed_in = handle(
        &deps,
        request_from_event(&restore_event("", Some(format!("token={token}")))),
        now,
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let claims = cookie_then_pass(&signed_in, now);
    assert_eq!(claims.sub, buyer);
    assert!(claims.pro);
    assert_eq!(claims.scope.as_deref(), Some("account"));
}
