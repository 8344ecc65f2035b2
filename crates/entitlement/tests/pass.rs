//! The edge pass through the entitlement function, fed API Gateway events, against DynamoDB
//! Local: the key set, and which answers carry a pass.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entitlement::config::EntitlementConfig;
use entitlement::{EntitlementDeps, handle};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::pass::{PassClaims, PassKeys, PublicKey};
use llmxt_domain::records::{Entitlement, source, status};
use llmxt_domain::request_signature::{SignedRequest, sign};
use llmxt_store::store::{ClientProfile, Store};
use llmxt_testkit::{
    ApiGatewayEvent, EVENTS_TIME, TEST_ENTITLEMENT_SECRET, TEST_HMAC_SECRET, TEST_PASS_RETIRED_KEY,
    TEST_PASS_RETIRED_PUBLIC, TEST_PASS_SIGNING_KEY, TEST_SITE, event_file, fresh_store,
    hmac_secret, request_from_event, response_json, unique_store_config,
};
use serde_json::{Value, json};

const NOW: i64 = EVENTS_TIME + 60;
const BUYER: &str = "john.doe@example.com";

fn config(extra: &[(&'static str, &'static str)]) -> EntitlementConfig {
    let mut pairs = vec![
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("HMAC_SECRET", TEST_HMAC_SECRET),
        ("REQUIRE_HMAC_SIGNATURE", "false"),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE),
        ("PASS_SIGNING_KEY", TEST_PASS_SIGNING_KEY),
        ("PLAN_FEATURES", "professional=export,api"),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        pairs.push((name, value));
    }
    pairs.retain(|(_, value)| !value.is_empty());
    EntitlementConfig::from_env(&Env::from_pairs(pairs)).unwrap()
}

async fn deps(extra: &[(&'static str, &'static str)]) -> EntitlementDeps {
    EntitlementDeps::new(config(extra), fresh_store().await)
}

fn keys() -> PassKeys {
    PassKeys::from_pem(TEST_PASS_SIGNING_KEY, vec![]).unwrap()
}

async fn grant(store: &Store, email: &str, state: &str) {
    let entitlement = Entitlement {
        status: state.to_owned(),
        plan: "professional".to_owned(),
        source: source::PAYMENT.to_owned(),
        payment_id: Some("pay_test".to_owned()),
        updated_at: NOW,
        ..Entitlement::new(Email::parse(email).unwrap())
    };
    store.put_entitlement(&entitlement).await.unwrap();
}

fn cookie_for(email: &str) -> String {
    let token = llmxt_testkit::token_signer().issue(
        &Email::parse(email).unwrap(),
        "professional",
        NOW,
        3600,
    );
    format!("__Host-llmxt_pro={token}")
}

fn request(path: &'static str, query: &'static str, cookies: Vec<String>) -> String {
    let headers = if query.is_empty() {
        vec![]
    } else {
        let target = format!("{path}?{query}");
        let signature = sign(
            &hmac_secret(),
            NOW,
            SignedRequest {
                method: "GET",
                path_and_query: &target,
                body: b"",
            },
        );
        vec![
            ("x-llmxt-timestamp", NOW.to_string()),
            ("x-llmxt-signature", signature),
        ]
    };
    ApiGatewayEvent {
        method: "GET",
        path,
        query,
        headers,
        cookies,
        body: None,
    }
    .to_json()
    .to_string()
}

async fn ask(deps: &EntitlementDeps, event: &str) -> Response<Body> {
    handle(deps, request_from_event(event), NOW).await
}

fn set_cookies(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The pass cookie set, if any.
fn pass_cookie(response: &Response<Body>) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|cookie| cookie.starts_with("__Host-llmxt_pass="))
}

/// The `"pass"` of the JSON, verified with the published key.
fn verified_pass(body: &Value) -> PassClaims {
    let token = body["pass"].as_str().expect("a pass in the JSON");
    assert!(token.len() <= 600, "{}", token.len());
    keys().verify(token, TEST_SITE).expect("verifies")
}

#[tokio::test]
async fn the_key_set_is_public_cacheable_and_lists_the_signing_key() {
    // Signatures required: the key set still needs none.
    let deps = EntitlementDeps::new(
        config(&[("REQUIRE_HMAC_SIGNATURE", "true")]),
        fresh_store().await,
    );
    let response = ask(&deps, &event_file("entitlement-keys.json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    assert_eq!(response.headers()["content-type"], "application/json");
    let current = keys().current();
    assert_eq!(
        response_json(&response),
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": current.x(), "alg": "EdDSA", "use": "sig", "kid": current.kid()}]})
    );
    assert!(set_cookies(&response).is_empty());
}

#[tokio::test]
async fn a_rotation_publishes_both_keys_and_the_new_one_signs() {
    let deps = deps(&[("PASS_VERIFY_KEYS_PREVIOUS", TEST_PASS_RETIRED_PUBLIC)]).await;
    let body = response_json(&ask(&deps, &event_file("entitlement-keys.json")).await);
    let retired = PublicKey::all_from_pem(TEST_PASS_RETIRED_PUBLIC).unwrap()[0];
    let kids: Vec<&str> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [keys().current().kid(), retired.kid()],
        "current first"
    );
    // A pass signed by the retired key verifies against what is published.
    let published: Vec<PublicKey> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap())
                .unwrap()
        })
        .collect();
    let old = PassKeys::from_pem(TEST_PASS_RETIRED_KEY, vec![]).unwrap();
    let claims = PassClaims {
        iss: TEST_SITE.to_owned(),
        aud: TEST_SITE.to_owned(),
        sub: BUYER.to_owned(),
        iat: NOW,
        exp: NOW + 60,
        stale_until: None,
        pro: true,
        plan: None,
        features: vec![],
        scope: None,
        billing_state: None,
        source: "database".to_owned(),
    };
    let old_pass = old.sign(&claims).unwrap();
    assert_eq!(
        llmxt_domain::pass::verify(&old_pass, published.iter().copied(), TEST_SITE),
        Ok(claims)
    );
    // New passes are signed by the current key.
    grant(&deps.store, BUYER, status::ACTIVE).await;
    let response = ask(
        &deps,
        &request("/api/entitlement", "", vec![cookie_for(BUYER)]),
    )
    .await;
    let token = response_json(&response)["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid, Some(keys().current().kid()));
}

#[tokio::test]
async fn without_a_signing_key_there_is_no_key_set_and_no_pass() {
    let deps = deps(&[("PASS_SIGNING_KEY", "")]).await;
    let response = ask(&deps, &event_file("entitlement-keys.json")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    grant(&deps.store, BUYER, status::ACTIVE).await;
    let response = ask(&deps, &event_file("entitlement-cookie.json")).await;
    let body = response_json(&response);
    assert_eq!(body["pro"], json!(true));
    assert!(body.get("pass").is_none(), "{body}");
    assert_eq!(pass_cookie(&response), None);
}

#[tokio::test]
async fn a_visitors_cookie_earns_a_pass_in_the_json_and_as_a_cookie() {
    let deps = deps(&[]).await;
    grant(&deps.store, BUYER, status::ACTIVE).await;
    let response = ask(&deps, &event_file("entitlement-cookie.json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response_json(&response);
    let claims = verified_pass(&body);
    assert_eq!(
        claims,
        PassClaims {
            iss: TEST_SITE.to_owned(),
            aud: TEST_SITE.to_owned(),
            sub: BUYER.to_owned(),
            iat: NOW,
            exp: NOW + 60,
            stale_until: Some(NOW + 86_400),
            pro: true,
            plan: Some("professional".to_owned()),
            features: vec!["api".to_owned(), "export".to_owned()],
            scope: Some("account".to_owned()),
            billing_state: Some("lifetime".to_owned()),
            source: "database".to_owned(),
        }
    );
    assert_eq!(
        pass_cookie(&response).unwrap(),
        format!(
            "__Host-llmxt_pass={}; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Lax",
            body["pass"].as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn the_ttl_and_stale_window_follow_the_settings() {
    let deps = deps(&[("PASS_TTL_SECONDS", "5"), ("PASS_STALE_SECONDS", "0")]).await;
    grant(&deps.store, BUYER, status::ACTIVE).await;
    let response = ask(
        &deps,
        &request("/api/entitlement", "", vec![cookie_for(BUYER)]),
    )
    .await;
    let claims = verified_pass(&response_json(&response));
    assert_eq!((claims.exp, claims.stale_until), (NOW + 5, None));
    assert!(
        pass_cookie(&response).unwrap().contains("; Max-Age=5;"),
        "no stale window: the cookie lives as long as the pass is fresh"
    );
}

#[tokio::test]
async fn a_cookie_without_pro_gets_a_pass_saying_so() {
    let deps = deps(&[]).await;
    grant(&deps.store, BUYER, status::REVOKED).await;
    for email in [BUYER, "stranger@example.com"] {
        let response = ask(
            &deps,
            &request("/api/entitlement", "", vec![cookie_for(email)]),
        )
        .await;
        let body = response_json(&response);
        assert_eq!(body["pro"], json!(false));
        let claims = verified_pass(&body);
        assert!(!claims.pro);
        assert_eq!(claims.sub, email);
        assert!(pass_cookie(&response).is_some());
    }
}

#[tokio::test]
async fn a_check_by_email_gets_the_pass_in_the_json_only() {
    let deps = deps(&[]).await;
    grant(&deps.store, BUYER, status::ACTIVE).await;
    let response = ask(&deps, &event_file("entitlement-email-signed.json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response_json(&response);
    let claims = verified_pass(&body);
    assert!(claims.pro);
    assert_eq!(claims.sub, BUYER);
    assert!(set_cookies(&response).is_empty(), "never set as a cookie");
}

#[tokio::test]
async fn only_a_valid_long_lived_cookie_earns_a_pass() {
    let deps = deps(&[]).await;
    grant(&deps.store, BUYER, status::ACTIVE).await;
    // A fresh pass of this very buyer, sent alone: a pass never earns a pass.
    let issued = ask(
        &deps,
        &request("/api/entitlement", "", vec![cookie_for(BUYER)]),
    )
    .await;
    let pass = response_json(&issued)["pass"].as_str().unwrap().to_owned();
    for cookies in [
        vec![],
        vec![format!("__Host-llmxt_pass={pass}")],
        vec!["__Host-llmxt_pro=not.a.token".to_owned()],
    ] {
        let response = ask(&deps, &request("/api/entitlement", "", cookies.clone())).await;
        let body = response_json(&response);
        assert_eq!(body["pro"], json!(false), "{cookies:?}");
        assert!(body.get("pass").is_none(), "{cookies:?}: {body}");
        assert_eq!(pass_cookie(&response), None, "{cookies:?}");
    }
}

#[tokio::test]
async fn failing_open_gives_no_pass() {
    let mut store_config = unique_store_config();
    store_config.endpoint = Some(llmxt_testkit::closed_endpoint());
    let config = config(&[]);
    let store = Store::connect(
        &store_config,
        ClientProfile::within(std::time::Duration::from_millis(config.db_budget_ms)),
    )
    .await;
    let deps = EntitlementDeps::new(config, store);
    let response = ask(
        &deps,
        &request("/api/entitlement", "", vec![cookie_for(BUYER)]),
    )
    .await;
    let body = response_json(&response);
    assert_eq!(
        (body["pro"].clone(), body["source"].clone()),
        (json!(true), json!("cookie")),
        "the cookie answers alone"
    );
    assert!(
        body.get("pass").is_none(),
        "the cookie's word is never signed: {body}"
    );
    assert_eq!(pass_cookie(&response), None);
}

#[tokio::test]
async fn the_pass_cookie_stays_host_only_when_the_pro_cookie_is_widened() {
    let deps = deps(&[("COOKIE_DOMAIN", "example.com")]).await;
    grant(&deps.store, BUYER, status::ACTIVE).await;
    let response = ask(
        &deps,
        &request("/api/entitlement", "", vec![cookie_for(BUYER)]),
    )
    .await;
    let pass = pass_cookie(&response).expect("the __Host- pass cookie");
    assert!(!pass.contains("Domain="), "{pass}");
    // The Pro cookie under the old name is moved to the widened one.
    assert!(
        set_cookies(&response)
            .iter()
            .any(|cookie| cookie.starts_with("llmxt_pro=ey")
                && cookie.ends_with("; Domain=example.com")),
        "{:?}",
        set_cookies(&response)
    );
}

#[tokio::test]
async fn a_pass_over_600_bytes_is_not_issued_and_the_answer_stands_without_it() {
    // A long (real-looking) email and a few features: the pass would be over 600 bytes.
    let long = "alexandra.konstantinopoulou-whitfield+receipts-2026@billing.northwind-consulting-group.example.com";
    let deps = deps(&[("PLAN_FEATURES", "professional=export,api,sso")]).await;
    for email in [BUYER, long] {
        grant(&deps.store, email, status::ACTIVE).await;
    }
    let short = ask(
        &deps,
        &request("/api/entitlement", "", vec![cookie_for(BUYER)]),
    )
    .await;
    let claims = verified_pass(&response_json(&short));
    assert_eq!(
        claims.features.len(),
        3,
        "the same features fit a short email"
    );

    let response = ask(
        &deps,
        &request("/api/entitlement", "", vec![cookie_for(long)]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response_json(&response);
    assert_eq!(
        (
            body["pro"].clone(),
            body["source"].clone(),
            body["plan"].clone()
        ),
        (json!(true), json!("database"), json!("professional")),
        "the answer is the one without passes: {body}"
    );
    assert_eq!(body["features"].as_array().map(Vec::len), Some(3));
    assert!(body.get("pass").is_none(), "no pass: {body}");
    assert_eq!(pass_cookie(&response), None, "no pass cookie");
    // By email too.
    let query = "email=alexandra.konstantinopoulou-whitfield%2Breceipts-2026%40billing.northwind-consulting-group.example.com";
    let by_email = ask(&deps, &request("/api/entitlement", query, vec![])).await;
    let body = response_json(&by_email);
    assert_eq!(body["pro"], json!(true), "{body}");
    assert!(body.get("pass").is_none(), "no pass: {body}");
}
