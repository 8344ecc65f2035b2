//! The success redirect in-process, fed API Gateway events, against DynamoDB Local; the
//! payment lands through the real webhook handler.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::token::TokenSigner;
use llmxt_testkit::{
    ApiGatewayEvent, EVENTS_TIME, TEST_ENTITLEMENT_SECRET, TEST_WEBHOOK_SECRET, dodo_body,
    event_file, fresh_store, request_from_event, response_json, response_text, webhook_event,
};
use serde_json::json;
use success_redirect::config::SuccessConfig;
use success_redirect::{MAX_ATTEMPTS, SuccessDeps, handle};
use webhook::config::WebhookConfig;

const SITE: &str = "https://pro.example.com";
const LOCAL_SITE: &str = "http://localhost:3000";
const NOW: i64 = EVENTS_TIME + 5;

fn success_config(extra: &[(&str, &str)]) -> SuccessConfig {
    let mut pairs = vec![
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("NEXT_PUBLIC_SITE_URL", SITE),
        (
            "NEXT_PUBLIC_CHECKOUT_URL",
            "https://checkout.example.com/buy/pdt_test",
        ),
        ("PRODUCT_PLANS", "pdt_test=professional"),
    ];
    pairs.extend_from_slice(extra);
    SuccessConfig::from_env(&Env::from_pairs(
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    ))
    .unwrap()
}

async fn setup() -> (SuccessDeps, webhook::WebhookDeps) {
    let store = fresh_store().await;
    let webhook_config = WebhookConfig::from_env(&Env::from_pairs([
        ("DODO_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET),
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("PRODUCT_PLANS", "pdt_test=professional"),
    ]))
    .unwrap();
    let hook = webhook::WebhookDeps::new(webhook_config, store.clone());
    (SuccessDeps::new(success_config(&[]), store), hook)
}

async fn deliver(hook: &webhook::WebhookDeps, id: &str, body: &str) {
    let event = webhook_event(id, NOW, body, None);
    let response = webhook::handle(hook, request_from_event(&event.to_string()), NOW).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response_text(&response)
    );
}

fn get(query: &str, headers: Vec<(&'static str, String)>) -> String {
    ApiGatewayEvent {
        method: "GET",
        path: "/upgrade/success",
        query,
        headers,
        cookies: vec![],
        body: None,
    }
    .to_json()
    .to_string()
}

async fn visit(deps: &SuccessDeps, query: &str, now: i64) -> Response<Body> {
    handle(deps, request_from_event(&get(query, vec![])), now).await
}

fn location(response: &Response<Body>) -> &str {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// A page (no redirect, no cookie) that says `why` and offers the email sign-in link on the
/// site's own origin.
fn offers_sign_in(response: &Response<Body>, why: &str) {
    let html = response_text(response);
    assert_eq!(response.status(), StatusCode::OK, "{html}");
    assert_eq!(location(response), "", "{html}");
    assert_eq!(set_cookie(response), None);
    assert!(html.contains(why), "{html}");
    assert!(
        html.contains("href=\"https://pro.example.com/upgrade/restore\""),
        "{html}"
    );
}

fn set_cookie(response: &Response<Body>) -> Option<String> {
    response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_paid_claim_sets_the_cookie_once() {
    let (deps, hook) = setup().await;
    deliver(
        &hook,
        "msg_1",
        &dodo_body("payment.succeeded.cli-generator", |_| {}),
    )
    .await;
    let response = handle(
        &deps,
        request_from_event(&event_file("success-redirect.json")),
        NOW,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response),
        "https://pro.example.com/?upgrade=success"
    );
    let cookie = set_cookie(&response).unwrap();
    let lifetime = 30 * 86_400;
    assert!(
        cookie.ends_with(&format!(
            "; Max-Age={lifetime}; Path=/; HttpOnly; Secure; SameSite=Lax"
        )),
        "{cookie}"
    );
    let token = cookie
        .trim_start_matches("__Host-llmxt_pro=")
        .split(';')
        .next()
        .unwrap();
    let claims = llmxt_testkit::token_signer()
        .verify(token, NOW)
        .unwrap()
        .claims;
    assert_eq!(
        (claims.email.as_str(), claims.plan.as_str(), claims.exp),
        ("john.doe@example.com", "professional", NOW + lifetime)
    );
    assert_eq!(
        claims.scope(),
        llmxt_domain::token::Scope::Purchase(vec!["pay_test".to_owned()]),
        "a success link proves the purchase, not the mailbox"
    );
    assert_eq!(claims.auth_time, Some(NOW));

    let again = visit(&deps, "payment_id=pay_test&status=succeeded", NOW + 1).await;
    offers_sign_in(&again, "already used");
}

#[tokio::test]
async fn the_query_alone_grants_nothing() {
    let (deps, _) = setup().await;
    let response = visit(&deps, "payment_id=pay_forged&status=succeeded", NOW).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response_text(&response).contains("Confirming your payment"));
    assert_eq!(set_cookie(&response), None);
}

#[tokio::test]
async fn the_pending_page_retries_and_completes_once_the_webhook_lands() {
    let (deps, hook) = setup().await;
    let response = visit(&deps, "payment_id=pay_test&status=succeeded", NOW).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response_text(&response);
    assert!(html.contains("Confirming your payment…"));
    // Polls by the script its policy allows by hash; "Check again" without scripts.
    assert!(!html.contains("http-equiv"), "{html}");
    assert!(
        html.contains(
            "<a class=\"button\" id=\"next\" data-after=\"2\" href=\"?payment_id=pay_test&amp;attempt=1\">Check again</a>"
        ),
        "{html}"
    );
    assert!(html.contains(&format!(
        "<script>{}</script>",
        success_redirect::pages::RETRY_SCRIPT
    )));
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains("script-src 'sha256-"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(response.headers()["cache-control"], "no-store");

    let json_request = get(
        "payment_id=pay_test",
        vec![("accept", "application/json".to_owned())],
    );
    let response = handle(&deps, request_from_event(&json_request), NOW).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response_json(&response),
        json!({"status": "pending", "retry_after": 2})
    );

    deliver(
        &hook,
        "msg_1",
        &dodo_body("payment.succeeded.cli-generator", |_| {}),
    )
    .await;
    let response = visit(&deps, "payment_id=pay_test&attempt=3", NOW + 6).await;
    assert_eq!(
        location(&response),
        "https://pro.example.com/?upgrade=success"
    );
    assert!(set_cookie(&response).is_some());
}

#[tokio::test]
async fn after_about_a_minute_the_pending_page_explains() {
    let (deps, _) = setup().await;
    let response = visit(
        &deps,
        &format!("payment_id=pay_test&attempt={MAX_ATTEMPTS}"),
        NOW,
    )
    .await;
    let html = response_text(&response);
    assert!(!html.contains("<script"), "{html}");
    assert!(
        !html.contains("contact"),
        "no support configured, no sentence: {html}"
    );
    assert!(
        html.contains("https://pro.example.com/upgrade/restore"),
        "{html}"
    );
}

#[tokio::test]
async fn an_expired_claim_offers_the_sign_in_link_without_a_cookie() {
    let (deps, hook) = setup().await;
    deliver(
        &hook,
        "msg_1",
        &dodo_body("payment.succeeded.cli-generator", |_| {}),
    )
    .await;
    let response = visit(&deps, "payment_id=pay_test", NOW + 600).await;
    offers_sign_in(&response, "expired");
}

#[tokio::test]
async fn a_failed_payment_says_so_and_offers_the_sign_in_link() {
    let (deps, hook) = setup().await;
    let failed = dodo_body("payment.succeeded.cli-generator", |v| {
        v["type"] = json!("payment.failed");
        v["data"]["status"] = json!("failed");
    });
    deliver(&hook, "msg_1", &failed).await;
    let response = visit(&deps, "payment_id=pay_test&status=failed", NOW).await;
    offers_sign_in(&response, "did not go through");
    // Dodo's own failed status, before any webhook.
    let response = visit(&deps, "payment_id=pay_other&status=failed", NOW).await;
    offers_sign_in(&response, "did not go through");
}

/// The failure page's primary action: `(id, href, label)`.
fn primary_action(html: &str) -> (String, String, String) {
    let start = html.find("<a class=\"button\" id=\"").expect(html);
    let rest = &html[start + "<a class=\"button\" id=\"".len()..];
    let (id, rest) = rest.split_once("\" href=\"").unwrap();
    let (href, rest) = rest.split_once("\">").unwrap();
    let (label, _) = rest.split_once("</a>").unwrap();
    (id.to_owned(), href.replace("&amp;", "&"), label.to_owned())
}

#[tokio::test]
async fn failed_cancelled_and_refunded_payments_each_say_what_happened() {
    let (deps, hook) = setup().await;
    // Declined: Try again opens a new checkout of the stored payment's product.
    let failed = dodo_body("payment.succeeded.cli-generator", |v| {
        v["type"] = json!("payment.failed");
        v["data"]["status"] = json!("failed");
    });
    deliver(&hook, "msg_1", &failed).await;
    let response = visit(&deps, "payment_id=pay_test&status=failed", NOW).await;
    let html = response_text(&response);
    assert!(
        html.contains("<h1>Your payment did not go through</h1>"),
        "{html}"
    );
    assert_eq!(
        primary_action(&html),
        (
            "try-again".to_owned(),
            format!("{SITE}/upgrade/checkout?product=pdt_test"),
            "Try again".to_owned()
        )
    );
    assert!(html.contains("id=\"sign-in\""), "{html}");

    // Cancelled, nothing stored: Try again goes to NEXT_PUBLIC_CHECKOUT_URL.
    let response = visit(&deps, "payment_id=pay_gone&status=cancelled", NOW).await;
    let html = response_text(&response);
    assert!(
        html.contains("<h1>The payment was cancelled</h1>"),
        "{html}"
    );
    assert_eq!(
        primary_action(&html).1,
        "https://checkout.example.com/buy/pdt_test"
    );
    // Without a checkout URL: the site.
    let bare = SuccessDeps::new(
        success_config(&[("NEXT_PUBLIC_CHECKOUT_URL", "")]),
        deps.store.clone(),
    );
    let html = response_text(&visit(&bare, "payment_id=pay_gone2&status=cancelled", NOW).await);
    assert_eq!(primary_action(&html).1, format!("{SITE}/"));

    // Refunded: its own words, back to the site, no Try again.
    let paid = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_refunded");
    });
    deliver(&hook, "msg_2", &paid).await;
    let refund = dodo_body("refund.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_refunded");
    });
    deliver(&hook, "msg_3", &refund).await;
    let response = visit(&deps, "payment_id=pay_refunded", NOW).await;
    let html = response_text(&response);
    assert!(
        html.contains("<h1>This payment was refunded</h1>"),
        "{html}"
    );
    assert_eq!(primary_action(&html).0, "home");
    assert!(!html.contains("Try again"), "{html}");
}

#[tokio::test]
async fn a_subscription_redirect_finds_its_claim() {
    let (deps, hook) = setup().await;
    let first = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["subscription_id"] = json!("sub_test");
        v["data"]["product_cart"] = json!(null);
    });
    let pending = visit(&deps, "subscription_id=sub_test&status=active", NOW).await;
    assert!(response_text(&pending).contains("Confirming"));
    deliver(&hook, "msg_1", &first).await;
    let response = visit(&deps, "subscription_id=sub_test&status=active", NOW).await;
    assert_eq!(
        location(&response),
        "https://pro.example.com/?upgrade=success"
    );
    assert!(set_cookie(&response).is_some());
}

#[tokio::test]
async fn fifty_concurrent_redirects_give_one_cookie() {
    let (deps, hook) = setup().await;
    deliver(
        &hook,
        "msg_1",
        &dodo_body("payment.succeeded.cli-generator", |_| {}),
    )
    .await;
    let deps = Arc::new(deps);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let deps = Arc::clone(&deps);
            tokio::spawn(async move { visit(&deps, "payment_id=pay_test", NOW).await })
        })
        .collect();
    let mut cookies = 0;
    for task in tasks {
        let response = task.await.unwrap();
        if set_cookie(&response).is_some() {
            cookies += 1;
        } else {
            offers_sign_in(&response, "already used");
        }
    }
    assert_eq!(cookies, 1);
}

#[tokio::test]
async fn redirects_only_ever_go_to_the_site() {
    let (deps, _) = setup().await;
    for query in [
        "payment_id=//evil.example/x",
        "payment_id=https%3A%2F%2Fevil.example",
        "payment_id=pay%0d%0aLocation:%20https://evil.example",
        "payment_id=pay_1&payment_id=pay_2",
        "",
        "subscription_id=%3Cscript%3E",
    ] {
        let response = visit(&deps, query, NOW).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(location(&response), "", "{query}");
        assert!(
            !response_text(&response).contains("evil.example"),
            "{query}"
        );
    }
    let response = visit(
        &deps,
        "payment_id=pay_x&status=failed&redirect=https://evil.example&next=//evil.example",
        NOW,
    )
    .await;
    offers_sign_in(&response, "did not go through");
    assert!(!response_text(&response).contains("evil.example"));
}

#[tokio::test]
async fn other_methods_are_405() {
    let (deps, _) = setup().await;
    let event = ApiGatewayEvent {
        method: "PUT",
        path: "/upgrade/success",
        query: "payment_id=pay_test",
        headers: vec![],
        cookies: vec![],
        body: Some(String::new()),
    };
    let response = handle(&deps, request_from_event(&event.to_json().to_string()), NOW).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn dev_mode_grants_without_a_payment() {
    let store = fresh_store().await;
    let deps = SuccessDeps::new(
        success_config(&[
            ("ENTITLEMENT_ALLOW_UNVERIFIED", "true"),
            ("DEFAULT_PLAN", "starter"),
            ("PLAN_RANKING", "free,starter,professional,enterprise"),
            ("NEXT_PUBLIC_SITE_URL", LOCAL_SITE),
        ]),
        store,
    );
    let response = visit(&deps, "email=Dev.Person%40Example.com", NOW).await;
    assert_eq!(
        location(&response),
        "http://localhost:3000/?upgrade=success"
    );
    let cookie = set_cookie(&response).unwrap();
    let token = cookie
        .trim_start_matches("__Host-llmxt_pro=")
        .split(';')
        .next()
        .unwrap();
    let claims = TokenSigner::new(vec![llmxt_testkit::entitlement_secret()], LOCAL_SITE)
        .verify(token, NOW)
        .unwrap()
        .claims;
    assert_eq!(
        (claims.email.as_str(), claims.plan.as_str()),
        ("dev.person@example.com", "starter")
    );
    let stored = deps
        .store
        .get_entitlement(&Email::parse("dev.person@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.is_pro(NOW));
    assert_eq!(stored.source, "manual");
}

#[tokio::test]
async fn an_unreachable_database_shows_the_retrying_page() {
    let store = llmxt_testkit::unreachable_store(std::time::Duration::from_millis(300)).await;
    let deps = SuccessDeps::new(success_config(&[]), store);
    let response = visit(&deps, "payment_id=pay_test", NOW).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response_text(&response).contains("id=\"next\""));
    assert_eq!(set_cookie(&response), None);
}

#[tokio::test]
async fn head_and_prefetches_leave_the_claim_open() {
    let (deps, hook) = setup().await;
    deliver(
        &hook,
        "msg_1",
        &dodo_body("payment.succeeded.cli-generator", |_| {}),
    )
    .await;
    let query = "payment_id=pay_test&status=succeeded";
    let mut head = serde_json::from_str::<serde_json::Value>(&get(query, vec![])).unwrap();
    head["requestContext"]["http"]["method"] = json!("HEAD");
    let head = handle(&deps, request_from_event(&head.to_string()), NOW).await;
    let prefetches = [
        ("sec-purpose", "prefetch"),
        ("sec-purpose", "prefetch;prerender"),
        ("purpose", "prefetch"),
        ("x-moz", "prefetch"),
    ];
    let mut responses = vec![head];
    for (name, value) in prefetches {
        let request = get(query, vec![(name, value.to_owned())]);
        responses.push(handle(&deps, request_from_event(&request), NOW).await);
    }
    for response in &responses {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            set_cookie(response),
            None,
            "a prefetch never gets the cookie"
        );
        let html = response_text(response);
        assert!(
            html.contains("id=\"next\" data-after=\"1\" href=\"?payment_id=pay_test\""),
            "{html}"
        );
    }
    let stored = deps.store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(stored.claim_redeemed_at, None, "the claim is still open");
    // The real visit then redeems it.
    let response = visit(&deps, query, NOW + 1).await;
    assert_eq!(location(&response), format!("{SITE}/?upgrade=success"));
    assert!(set_cookie(&response).is_some());
}

#[tokio::test]
async fn a_renewals_success_link_sets_no_new_cookie() {
    let (deps, hook) = setup().await;
    let first = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["subscription_id"] = json!("sub_test");
    });
    deliver(&hook, "msg_first", &first).await;
    let response = visit(&deps, "subscription_id=sub_test", NOW).await;
    assert!(set_cookie(&response).is_some(), "the first payment's claim");
    let renewal = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["subscription_id"] = json!("sub_test");
        v["data"]["payment_id"] = json!("pay_renewal");
    });
    deliver(&hook, "msg_renewal", &renewal).await;
    for query in ["subscription_id=sub_test", "payment_id=pay_renewal"] {
        let response = visit(&deps, query, NOW + 1).await;
        assert_eq!(set_cookie(&response), None, "{query}");
        assert_ne!(
            location(&response),
            format!("{SITE}/?upgrade=success"),
            "{query}"
        );
    }
    offers_sign_in(
        &visit(&deps, "payment_id=pay_renewal", NOW + 1).await,
        "subscription was renewed",
    );
}

#[test]
fn dev_mode_is_refused_unless_the_site_is_local() {
    for site in [
        "https://pro.example.com",
        "http://localhost.evil.com",
        "http://127.0.0.2:3000",
        "http://localhost:",
    ] {
        let pairs = [
            ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
            ("NEXT_PUBLIC_SITE_URL", site),
            ("ENTITLEMENT_ALLOW_UNVERIFIED", "true"),
        ];
        let result = SuccessConfig::from_env(&Env::from_pairs(pairs));
        match result {
            Err(error) => assert!(
                matches!(
                    error.variable,
                    "ENTITLEMENT_ALLOW_UNVERIFIED" | "NEXT_PUBLIC_SITE_URL"
                ),
                "{site}: {error}"
            ),
            Ok(_) => panic!("{site}: dev mode accepted"),
        }
    }
    for site in [
        "http://localhost",
        "http://localhost:3000",
        "http://127.0.0.1:8080/",
    ] {
        let pairs = [
            ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
            ("NEXT_PUBLIC_SITE_URL", site),
            ("ENTITLEMENT_ALLOW_UNVERIFIED", "true"),
        ];
        assert!(
            SuccessConfig::from_env(&Env::from_pairs(pairs)).is_ok(),
            "{site}"
        );
    }
}

mod confirmed_through_the_api {
    use super::*;
    use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY, payment_object, subscription_object};

    async fn with_api() -> (SuccessDeps, webhook::WebhookDeps, DodoStandIn) {
        let (plain, hook) = setup().await;
        let stand_in = DodoStandIn::for_tests().await;
        let config = success_config(&[
            ("DODO_PAYMENTS_API_KEY", TEST_API_KEY),
            ("DODO_PAYMENTS_BASE_URL", stand_in.base_url.as_str()),
        ]);
        (SuccessDeps::new(config, plain.store), hook, stand_in)
    }

    #[tokio::test]
    async fn an_old_payment_confirmed_through_the_api_opens_no_claim() {
        let (deps, _, dodo) = with_api().await;
        let two_hours_ago = llmxt_domain::time::format_rfc3339(NOW - 2 * 3600);
        dodo.add_payment(payment_object(
            "pay_old",
            "old@example.com",
            "succeeded",
            "pdt_test",
            None,
            |p| p["created_at"] = json!(two_hours_ago),
        ));
        let response = visit(&deps, "payment_id=pay_old&status=succeeded", NOW).await;
        assert!(
            set_cookie(&response).is_none(),
            "a public link to an old payment"
        );
        offers_sign_in(&response, "expired");
        let email = Email::parse("old@example.com").unwrap();
        let entitlement = deps.store.get_entitlement(&email).await.unwrap().unwrap();
        assert_eq!(
            entitlement.grants["pay_old"].status, "active",
            "the purchase itself is recorded; its buyer signs in by email"
        );
        assert!(set_cookie(&visit(&deps, "payment_id=pay_old", NOW + 1).await).is_none());

        // Bound to this browser's checkout, an old payment still redeems here.
        let nonce = "b".repeat(43);
        dodo.add_payment(payment_object(
            "pay_old_bound",
            "old@example.com",
            "succeeded",
            "pdt_test",
            None,
            |p| {
                p["created_at"] = json!(two_hours_ago);
                p["metadata"]["checkout_ref"] =
                    json!(success_redirect::checkout::checkout_ref(&nonce));
            },
        ));
        let event = ApiGatewayEvent {
            method: "GET",
            path: "/upgrade/success",
            query: "payment_id=pay_old_bound",
            headers: vec![],
            cookies: vec![format!("__Host-llmxt_checkout={nonce}")],
            body: None,
        };
        let response = handle(&deps, request_from_event(&event.to_json().to_string()), NOW).await;
        assert!(set_cookie(&response).is_some(), "bound to this browser");
    }

    #[tokio::test]
    async fn a_buyer_whose_webhook_never_came_gets_the_cookie() {
        let (deps, hook, dodo) = with_api().await;
        dodo.add_payment(payment_object(
            "pay_api",
            "late@example.com",
            "succeeded",
            "pdt_test",
            None,
            |_| {},
        ));
        let response = visit(&deps, "payment_id=pay_api&status=succeeded", NOW).await;
        assert_eq!(location(&response), format!("{SITE}/?upgrade=success"));
        assert!(set_cookie(&response).is_some());
        assert_eq!(dodo.take_requests(), ["GET /payments/pay_api"]);
        let email = Email::parse("late@example.com").unwrap();
        let entitlement = deps.store.get_entitlement(&email).await.unwrap().unwrap();
        assert!(entitlement.grants["pay_api"].status == "active");
        assert!(
            entitlement.history[0]
                .by
                .starts_with("api payment.succeeded"),
            "{:?}",
            entitlement.history
        );
        // The webhook that arrives later changes nothing further: no second claim, no
        // double grant.
        let body = dodo_body("payment.succeeded.cli-generator", |v| {
            v["data"]["payment_id"] = json!("pay_api");
            v["data"]["customer"]["email"] = json!("late@example.com");
        });
        deliver(&hook, "msg_late", &body).await;
        let after = deps.store.get_entitlement(&email).await.unwrap().unwrap();
        assert_eq!(after.grants, entitlement.grants);
        let payment = deps.store.get_payment("pay_api").await.unwrap().unwrap();
        assert!(payment.claim_redeemed_at.is_some());
        offers_sign_in(
            &visit(&deps, "payment_id=pay_api", NOW + 1).await,
            "already used",
        );
    }

    #[tokio::test]
    async fn a_subscription_is_confirmed_with_its_first_payment() {
        let (deps, _, dodo) = with_api().await;
        dodo.add_subscription(subscription_object(
            "sub_api",
            "sub@example.com",
            "active",
            "pdt_test",
            "2026-02-10T17:55:53Z",
        ));
        dodo.add_payment(payment_object(
            "pay_first",
            "sub@example.com",
            "succeeded",
            "pdt_test",
            Some("sub_api"),
            |p| {
                p["created_at"] = json!("2026-01-10T17:55:00Z");
            },
        ));
        dodo.add_payment(payment_object(
            "pay_renewal",
            "sub@example.com",
            "succeeded",
            "pdt_test",
            Some("sub_api"),
            |p| {
                p["created_at"] = json!("2026-02-10T17:55:00Z");
            },
        ));
        let response = visit(&deps, "subscription_id=sub_api&status=active", NOW).await;
        assert_eq!(location(&response), format!("{SITE}/?upgrade=success"));
        assert!(set_cookie(&response).is_some());
        let requests = dodo.take_requests();
        assert!(
            requests.contains(&"GET /payments/pay_first".to_owned()),
            "{requests:?}"
        );
        let payment = deps.store.get_payment("pay_first").await.unwrap().unwrap();
        assert!(payment.claim_redeemed_at.is_some());
        let email = Email::parse("sub@example.com").unwrap();
        let entitlement = deps.store.get_entitlement(&email).await.unwrap().unwrap();
        assert_eq!(
            entitlement.grants["sub_api"].period_end,
            llmxt_domain::time::parse_rfc3339_seconds("2026-02-10T17:55:53Z")
        );
    }

    #[tokio::test]
    async fn a_subscription_payment_confirmed_through_the_api_stores_the_subscription_snapshot() {
        let (deps, _, dodo) = with_api().await;
        dodo.add_subscription(subscription_object(
            "sub_snap",
            "snap@example.com",
            "active",
            "pdt_test",
            "2026-02-10T17:55:53Z",
        ));
        dodo.add_payment(payment_object(
            "pay_snap",
            "snap@example.com",
            "succeeded",
            "pdt_test",
            Some("sub_snap"),
            |p| {
                p["created_at"] = json!("2026-01-10T17:55:00Z");
            },
        ));
        visit(&deps, "payment_id=pay_snap&status=succeeded", NOW).await;
        let requests = dodo.take_requests();
        assert!(
            requests.contains(&"GET /subscriptions/sub_snap".to_owned()),
            "{requests:?}"
        );
        let next_billing = llmxt_domain::time::parse_rfc3339_seconds("2026-02-10T17:55:53Z");
        let subscription = deps
            .store
            .get_subscription("sub_snap")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(subscription.status, "active");
        assert_eq!(subscription.next_billing_date, next_billing);
        let email = Email::parse("snap@example.com").unwrap();
        let grant = deps
            .store
            .get_entitlement(&email)
            .await
            .unwrap()
            .unwrap()
            .grants["sub_snap"]
            .clone();
        assert_eq!(grant.period_end, next_billing);
        assert_eq!(grant.subscription_status.as_deref(), Some("active"));
    }

    #[tokio::test]
    async fn a_payment_dodo_reports_failed_grants_nothing() {
        let (deps, _, dodo) = with_api().await;
        dodo.add_payment(payment_object(
            "pay_failed",
            "f@example.com",
            "failed",
            "pdt_test",
            None,
            |_| {},
        ));
        let response = visit(&deps, "payment_id=pay_failed&status=succeeded", NOW).await;
        offers_sign_in(&response, "did not go through");
        let email = Email::parse("f@example.com").unwrap();
        assert_eq!(deps.store.get_entitlement(&email).await.unwrap(), None);
        assert_eq!(
            deps.store
                .get_payment("pay_failed")
                .await
                .unwrap()
                .unwrap()
                .status,
            "failed"
        );
    }

    #[tokio::test]
    async fn api_down_unknown_ids_slow_answers_and_unfinished_payments_leave_the_pending_page() {
        let (deps, _, dodo) = with_api().await;
        let pending = |response: &Response<Body>| {
            assert_eq!(response.status(), StatusCode::OK);
            assert!(
                response_text(response).contains("Confirming your payment"),
                "{}",
                response_text(response)
            );
            assert_eq!(set_cookie(response), None);
        };
        pending(&visit(&deps, "payment_id=pay_unknown", NOW).await);
        pending(&visit(&deps, "subscription_id=sub_unknown", NOW).await);
        dodo.add_payment(payment_object(
            "pay_processing",
            "p@example.com",
            "processing",
            "pdt_test",
            None,
            |_| {},
        ));
        pending(&visit(&deps, "payment_id=pay_processing", NOW).await);
        assert_eq!(
            deps.store.get_payment("pay_processing").await.unwrap(),
            None,
            "nothing stored"
        );
        dodo.add_payment(payment_object(
            "pay_down",
            "d@example.com",
            "succeeded",
            "pdt_test",
            None,
            |_| {},
        ));
        dodo.set_down(true);
        pending(&visit(&deps, "payment_id=pay_down", NOW).await);
        dodo.set_down(false);
        dodo.set_delay(std::time::Duration::from_secs(12));
        let started = std::time::Instant::now();
        pending(&visit(&deps, "payment_id=pay_down", NOW).await);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "the 2 s budget holds, not the 12 s answer"
        );
        assert_eq!(deps.store.get_payment("pay_down").await.unwrap(), None);
    }

    #[tokio::test]
    async fn without_an_api_key_no_call_is_made() {
        let (deps, _) = setup().await;
        assert!(deps.dodo.is_none());
        let response = visit(&deps, "payment_id=pay_api", NOW).await;
        assert!(response_text(&response).contains("Confirming your payment"));
    }
}

#[tokio::test]
async fn unknown_upgrade_paths_get_an_html_page_or_json_when_asked() {
    let (deps, _) = setup().await;
    let request = |headers: Vec<(&'static str, String)>| {
        let event = ApiGatewayEvent {
            method: "GET",
            path: "/upgrade/nothing-here",
            query: "",
            headers,
            cookies: vec![],
            body: None,
        };
        request_from_event(&event.to_json().to_string())
    };
    let browser = handle(
        &deps,
        request(vec![(
            "accept",
            "text/html,application/xhtml+xml,*/*;q=0.8".to_owned(),
        )]),
        NOW,
    )
    .await;
    assert_eq!(browser.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        browser.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = response_text(&browser);
    assert!(
        html.contains("<h1>Page not found</h1>") && html.contains("<main>"),
        "{html}"
    );
    let api = handle(
        &deps,
        request(vec![("accept", "application/json".to_owned())]),
        NOW,
    )
    .await;
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert_eq!(response_json(&api), json!({"error": "not found"}));
}

#[tokio::test]
async fn every_page_carries_the_brand_and_the_support_contact_within_20_kb() {
    let store = fresh_store().await;
    let deps = SuccessDeps::new(
        success_config(&[
            ("BRAND_NAME", "Acme Notes"),
            ("BRAND_COLOR", "#ffdd00"),
            ("BRAND_LOGO_URL", "https://cdn.acme.example/logo.svg"),
            ("SUPPORT_EMAIL", "help@acme.example"),
        ]),
        store,
    );
    for (query, status) in [
        ("", StatusCode::BAD_REQUEST),
        ("payment_id=pay_test", StatusCode::OK),
        (
            &*format!("payment_id=pay_test&attempt={MAX_ATTEMPTS}"),
            StatusCode::OK,
        ),
    ] {
        let response = visit(&deps, query, NOW).await;
        assert_eq!(response.status(), status);
        let html = response_text(&response);
        assert!(html.len() <= 20 * 1024, "{} bytes", html.len());
        assert!(html.contains("<span>Acme Notes</span>") && html.contains("Back to Acme Notes"));
        assert!(html.contains("<img id=\"logo\" src=\"https://cdn.acme.example/logo.svg\""));
        assert!(html.contains(
            "Contact <a id=\"support\" href=\"mailto:help@acme.example\">help@acme.example</a>"
        ));
        assert!(
            html.contains("--brand:#ffdd00;--on-brand:#111111"),
            "{html}"
        );
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(
            policy.contains("img-src https://cdn.acme.example;"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-inline"), "{policy}");
    }
    // Where a page says to get help, it names the contact.
    let html = response_text(
        &visit(
            &deps,
            &format!("payment_id=pay_test&attempt={MAX_ATTEMPTS}"),
            NOW,
        )
        .await,
    );
    assert!(
        html.contains("and contact <a href=\"mailto:help@acme.example\">"),
        "{html}"
    );
}
