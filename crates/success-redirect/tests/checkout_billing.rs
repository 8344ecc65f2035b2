//! `/upgrade/checkout`, claims bound to the checkout's browser, and `/upgrade/billing`,
//! against the Dodo stand-in and DynamoDB Local.
#![allow(clippy::unwrap_used)]

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::request_signature::checkout_link_signature;
use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY};
use llmxt_testkit::{
    ApiGatewayEvent, TEST_ENTITLEMENT_SECRET, TEST_HMAC_SECRET, apply_body, dodo_body, fresh_store,
    hmac_secret, record_sizes, request_from_event, response_text, token_signer,
};
use serde_json::json;
use success_redirect::checkout::{CHECKOUT_COOKIE, checkout_ref};
use success_redirect::config::SuccessConfig;
use success_redirect::{SuccessDeps, handle};

const SITE: &str = "https://pro.example.com";
const NOW: i64 = 1_800_000_000;

async fn setup() -> (SuccessDeps, DodoStandIn) {
    let dodo = DodoStandIn::for_tests().await;
    let config = SuccessConfig::from_env(&Env::from_pairs([
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("NEXT_PUBLIC_SITE_URL", SITE),
        ("PRODUCT_PLANS", "pdt_test=professional"),
        ("DODO_PAYMENTS_API_KEY", TEST_API_KEY),
        ("DODO_PAYMENTS_BASE_URL", dodo.base_url.as_str()),
        ("HMAC_SECRET", TEST_HMAC_SECRET),
    ]))
    .unwrap();
    (SuccessDeps::new(config, fresh_store().await), dodo)
}

/// A checkout link for `email` signed by the site's server, valid for `seconds` more.
fn signed_checkout_query(product: &str, email: &str, seconds: i64) -> &'static str {
    let expires = llmxt_domain::time::unix_now() + seconds;
    let sig = checkout_link_signature(
        &hmac_secret(),
        product,
        &Email::parse(email).unwrap(),
        expires,
    );
    let query = format!(
        "product={product}&email={}&expires={expires}&sig={sig}",
        email.replace('@', "%40")
    );
    Box::leak(query.into_boxed_str())
}

async fn get(
    deps: &SuccessDeps,
    path: &'static str,
    query: &'static str,
    cookies: Vec<String>,
) -> Response<Body> {
    let event = ApiGatewayEvent {
        method: "GET",
        path,
        query,
        headers: vec![],
        cookies,
        body: None,
    };
    handle(
        deps,
        request_from_event(&event.to_json().to_string()),
        llmxt_domain::time::unix_now(),
    )
    .await
}

fn header(response: &Response<Body>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn set_cookies(response: &Response<Body>) -> Vec<&str> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn checkout_creates_a_session_bound_to_this_browser() {
    let (deps, dodo) = setup().await;
    let response = get(
        &deps,
        "/upgrade/checkout",
        signed_checkout_query("pdt_test", "Buyer@Example.com", 600),
        vec![],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let sessions = dodo.checkouts();
    let (session_id, body) = sessions.iter().next().unwrap();
    assert_eq!(
        header(&response, "location"),
        format!("{}/checkout/{session_id}", dodo.base_url)
    );
    let cookie = header(&response, "set-cookie");
    let nonce = cookie
        .strip_prefix(&format!("{CHECKOUT_COOKIE}="))
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert_eq!(nonce.len(), 43);
    assert!(
        cookie.ends_with("; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Domain="),
        "__Host- cookies carry no Domain"
    );
    assert_eq!(
        body["product_cart"],
        json!([{ "product_id": "pdt_test", "quantity": 1 }])
    );
    assert_eq!(body["return_url"], format!("{SITE}/upgrade/success"));
    assert_eq!(body["metadata"]["checkout_ref"], checkout_ref(nonce));
    assert_eq!(body["customer"]["email"], "buyer@example.com");
    assert_eq!(
        record_sizes(&deps.store).await,
        (0, 0),
        "nothing but counters stored"
    );
}

#[tokio::test]
async fn an_email_prefill_is_used_only_when_the_sites_server_signed_the_link() {
    let (deps, dodo) = setup().await;
    let signed = signed_checkout_query("pdt_test", "victim@example.com", 600);
    let expired = signed_checkout_query("pdt_test", "victim@example.com", -1);
    let too_far = signed_checkout_query("pdt_test", "victim@example.com", 3 * 3600);
    let other_product = signed.replacen("product=pdt_test", "product=pdt_other", 1);
    let wrong_email = signed.replace("victim%40", "stranger%40");
    let unsigned = "product=pdt_test&email=victim%40example.com";
    for (query, prefilled) in [
        (unsigned, false),
        (expired, false),
        (too_far, false),
        (
            Box::leak(wrong_email.into_boxed_str()) as &'static str,
            false,
        ),
        (signed, true),
    ] {
        let before = dodo.checkouts();
        let response = get(&deps, "/upgrade/checkout", query, vec![]).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "the checkout still opens: {query}"
        );
        let after = dodo.checkouts();
        let new: Vec<_> = after
            .iter()
            .filter(|(id, _)| !before.contains_key(*id))
            .map(|(_, body)| body)
            .collect();
        assert_eq!(new.len(), 1, "{query}");
        assert_eq!(new[0].get("customer").is_some(), prefilled, "{query}");
    }
    let prefilled: Vec<_> = dodo
        .checkouts()
        .values()
        .filter_map(|body| body.pointer("/customer/email").cloned())
        .collect();
    assert_eq!(
        prefilled,
        vec![json!("victim@example.com")],
        "only the signed link"
    );
    // A product the link was not signed for is not on sale here anyway.
    let response = get(
        &deps,
        "/upgrade/checkout",
        Box::leak(other_product.into_boxed_str()),
        vec![],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_products_bad_emails_and_dodo_errors_get_clear_pages_and_store_nothing() {
    let (deps, dodo) = setup().await;
    for query in [
        "product=pdt_unknown",
        "",
        "product=pdt_test&email=not-an-email",
        "product=pdt_test&product=pdt_test",
    ] {
        let leaked: &'static str = Box::leak(query.to_owned().into_boxed_str());
        let response = get(&deps, "/upgrade/checkout", leaked, vec![]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(header(&response, "set-cookie").is_empty());
    }
    assert!(dodo.checkouts().is_empty(), "no session created");
    dodo.set_down(true);
    let response = get(&deps, "/upgrade/checkout", "product=pdt_test", vec![]).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(response_text(&response).contains(
        "id=\"retry\" href=\"https://pro.example.com/upgrade/checkout?product=pdt_test\""
    ));
    assert!(header(&response, "set-cookie").is_empty());
    assert_eq!(record_sizes(&deps.store).await, (0, 0));
}

#[tokio::test]
async fn only_the_checkout_browser_redeems_a_bound_claim() {
    let (deps, _) = setup().await;
    let nonce = "n".repeat(43);
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["metadata"] = json!({ "checkout_ref": checkout_ref(&nonce) });
    });
    apply_body(&deps.store, "msg_bound", &body).await;
    for cookies in [
        vec![],
        vec![format!("{CHECKOUT_COOKIE}={}", "m".repeat(43))],
        vec![format!("{CHECKOUT_COOKIE}=tampered")],
    ] {
        let response = get(
            &deps,
            "/upgrade/success",
            "payment_id=pay_test&status=succeeded",
            cookies,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "set-cookie").is_empty());
        let html = response_text(&response);
        assert!(
            html.contains("started in another browser") && html.contains("/upgrade/restore"),
            "{html}"
        );
    }
    let payment = deps.store.get_payment("pay_test").await.unwrap().unwrap();
    assert_eq!(
        payment.claim_redeemed_at, None,
        "the claim stays open for the buyer"
    );
    // The browser also holds an older checkout that has not come back yet.
    let other = "o".repeat(43);
    let response = get(
        &deps,
        "/upgrade/success",
        "payment_id=pay_test&status=succeeded",
        vec![format!("{CHECKOUT_COOKIE}={nonce}.{other}")],
    )
    .await;
    assert_eq!(
        header(&response, "location"),
        format!("{SITE}/?upgrade=success")
    );
    let set_cookies = set_cookies(&response);
    assert!(
        set_cookies[0].starts_with("__Host-llmxt_pro="),
        "{set_cookies:?}"
    );
    assert!(
        set_cookies.contains(
            &format!(
                "{CHECKOUT_COOKIE}={other}; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Lax"
            )
            .as_str()
        ),
        "the redeemed checkout is forgotten, the other one kept: {set_cookies:?}"
    );
}

#[tokio::test]
async fn the_checkout_cookie_is_cleared_once_its_only_purchase_is_redeemed() {
    let (deps, _) = setup().await;
    let nonce = "n".repeat(43);
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["metadata"] = json!({ "checkout_ref": checkout_ref(&nonce) });
    });
    apply_body(&deps.store, "msg_bound", &body).await;
    let response = get(
        &deps,
        "/upgrade/success",
        "payment_id=pay_test&status=succeeded",
        vec![format!("{CHECKOUT_COOKIE}={nonce}")],
    )
    .await;
    let set_cookies = set_cookies(&response);
    assert!(
        set_cookies[0].starts_with("__Host-llmxt_pro="),
        "{set_cookies:?}"
    );
    assert!(
        set_cookies.contains(
            &format!("{CHECKOUT_COOKIE}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax")
                .as_str()
        ),
        "{set_cookies:?}"
    );
}

#[tokio::test]
async fn billing_opens_the_portal_for_the_cookies_buyer_only() {
    let (deps, dodo) = setup().await;
    apply_body(
        &deps.store,
        "msg_pay",
        &dodo_body("payment.succeeded.cli-generator", |_| {}),
    )
    .await;
    let token = token_signer().issue(
        &Email::parse("john.doe@example.com").unwrap(),
        "professional",
        llmxt_domain::time::unix_now(),
        3600,
    );
    // A prefetch (or HEAD) opens no portal session.
    let prefetch = ApiGatewayEvent {
        method: "GET",
        path: "/upgrade/billing",
        query: "",
        headers: vec![("sec-purpose", "prefetch".to_owned())],
        cookies: vec![format!("__Host-llmxt_pro={token}")],
        body: None,
    };
    let response = handle(
        &deps,
        request_from_event(&prefetch.to_json().to_string()),
        llmxt_domain::time::unix_now(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(dodo.portal_sessions().is_empty());
    let response = get(
        &deps,
        "/upgrade/billing",
        "customer_id=cus_someone_else",
        vec![format!("__Host-llmxt_pro={token}")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        header(&response, "location").starts_with(&format!("{}/portal/cus_test", dodo.base_url))
    );
    assert_eq!(
        dodo.portal_sessions(),
        [("cus_test".to_owned(), format!("{SITE}/"))]
    );

    // No valid cookie: a page that says why and offers the sign-in link (no silent redirect).
    for cookies in [
        vec![],
        vec!["__Host-llmxt_pro=forged.token.value".to_owned()],
    ] {
        let response = get(&deps, "/upgrade/billing", "customer_id=cus_test", cookies).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers().get("location"), None);
        let html = response_text(&response);
        assert!(
            html.contains("<h1>Sign in to manage billing</h1>"),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "<a class=\"button\" id=\"sign-in\" href=\"{SITE}/upgrade/restore\">"
            )),
            "{html}"
        );
    }
    // A buyer with a manual grant only has no billing account.
    let manual = Email::parse("gift@example.com").unwrap();
    llmxt_store::operator::grant(
        &deps.store,
        deps.config.plans.ranking(),
        &manual,
        "professional",
        None,
        "gift",
        llmxt_store::operator::Actor {
            by: "ops",
            now: NOW,
        },
    )
    .await
    .unwrap();
    let token = token_signer().issue(
        &manual,
        "professional",
        llmxt_domain::time::unix_now(),
        3600,
    );
    let response = get(
        &deps,
        "/upgrade/billing",
        "",
        vec![format!("__Host-llmxt_pro={token}")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response_text(&response).contains("No billing account"));
    assert_eq!(
        dodo.portal_sessions().len(),
        1,
        "no portal session for anyone else"
    );
}

#[tokio::test]
async fn a_buyer_who_already_has_the_plan_is_told_before_paying_again() {
    let (deps, dodo) = setup().await;
    let now = llmxt_domain::time::unix_now();
    let grant = |email: &'static str, plan: &'static str| {
        let deps = deps.clone();
        async move {
            llmxt_store::operator::grant(
                &deps.store,
                deps.config.plans.ranking(),
                &Email::parse(email).unwrap(),
                plan,
                None,
                "test",
                llmxt_store::operator::Actor { by: "ops", now },
            )
            .await
            .unwrap();
        }
    };
    grant("same@example.com", "professional").await;
    grant("higher@example.com", "enterprise").await;
    grant("lower@example.com", "free").await;
    let cookie = |email: &str| {
        let token = token_signer().issue(&Email::parse(email).unwrap(), "professional", now, 3600);
        vec![format!("__Host-llmxt_pro={token}")]
    };
    for (email, plan) in [
        ("same@example.com", "Professional"),
        ("higher@example.com", "Enterprise"),
    ] {
        let response = get(
            &deps,
            "/upgrade/checkout",
            "product=pdt_test",
            cookie(email),
        )
        .await;
        let html = response_text(&response);
        assert_eq!(response.status(), StatusCode::OK, "{html}");
        assert!(
            html.contains(&format!("<h1>You already have {plan}</h1>")),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "<a class=\"button\" id=\"billing\" href=\"{SITE}/upgrade/billing\">Manage billing</a>"
            )),
            "{html}"
        );
        assert!(
            html.contains(
                "<a id=\"buy-anyway\" href=\"?product=pdt_test&amp;anyway=1\">Buy anyway</a>"
            ),
            "{html}"
        );
    }
    assert!(
        dodo.checkouts().is_empty(),
        "nothing offered for sale twice"
    );
    // "Buy anyway", a lower plan, and a cookie the database no longer backs go to checkout.
    let anyway = get(
        &deps,
        "/upgrade/checkout",
        "product=pdt_test&anyway=1",
        cookie("same@example.com"),
    )
    .await;
    assert_eq!(anyway.status(), StatusCode::SEE_OTHER);
    for email in ["lower@example.com", "refunded@example.com"] {
        let response = get(
            &deps,
            "/upgrade/checkout",
            "product=pdt_test",
            cookie(email),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email}");
    }
    assert_eq!(dodo.checkouts().len(), 3);
}
