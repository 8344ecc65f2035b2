//! The entitlement API in-process, fed API Gateway events, against DynamoDB Local.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use entitlement::config::EntitlementConfig;
use entitlement::{EntitlementDeps, handle};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_domain::crypto::hmac_sha256;
use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, source, status};
use llmxt_domain::request_signature::{SignedRequest, sign};
use llmxt_domain::secret::Secret;
use llmxt_domain::token::EntitlementClaims;
use llmxt_store::store::{ClientProfile, Store};
use llmxt_testkit::{
    ApiGatewayEvent, EVENTS_TIME, TEST_ENTITLEMENT_SECRET, TEST_HMAC_SECRET, TEST_SITE, event_file,
    fresh_store, hmac_secret, request_from_event, response_json, response_text,
    unique_store_config,
};
use serde_json::json;

const NOW: i64 = EVENTS_TIME + 60;
const BUYER: &str = "john.doe@example.com";

fn config(require_signature: bool) -> EntitlementConfig {
    let require = if require_signature { "true" } else { "false" };
    EntitlementConfig::from_env(&Env::from_pairs([
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("HMAC_SECRET", TEST_HMAC_SECRET),
        ("REQUIRE_HMAC_SIGNATURE", require),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE),
    ]))
    .unwrap()
}

async fn deps(require_signature: bool) -> EntitlementDeps {
    EntitlementDeps::new(config(require_signature), fresh_store().await)
}

async fn grant(store: &Store, email: &str, state: &str, expires_at: Option<i64>) {
    let mut entitlement = Entitlement {
        status: state.to_owned(),
        plan: "professional".to_owned(),
        expires_at,
        source: source::PAYMENT.to_owned(),
        payment_id: Some("pay_test".to_owned()),
        updated_at: NOW,
        ..Entitlement::new(Email::parse(email).unwrap())
    };
    // Stored as the webhook stores it: the grant, and its summary.
    let grant = entitlement.legacy_grant();
    entitlement.grants.insert(grant.key.clone(), grant);
    store.put_entitlement(&entitlement).await.unwrap();
}

fn token_for(email: &str, lifetime: i64) -> String {
    llmxt_testkit::token_signer().issue(
        &Email::parse(email).unwrap(),
        "professional",
        NOW,
        lifetime,
    )
}

fn request(query: &str, headers: Vec<(&'static str, String)>, cookies: Vec<String>) -> String {
    ApiGatewayEvent {
        method: "GET",
        path: "/api/entitlement",
        query,
        headers,
        cookies,
        body: None,
    }
    .to_json()
    .to_string()
}

fn signed_headers(
    secret: &Secret,
    timestamp: i64,
    path_and_query: &str,
) -> Vec<(&'static str, String)> {
    let signature = sign(
        secret,
        timestamp,
        SignedRequest {
            method: "GET",
            path_and_query,
            body: b"",
        },
    );
    vec![
        ("x-llmxt-timestamp", timestamp.to_string()),
        ("x-llmxt-signature", signature),
    ]
}

async fn ask(deps: &EntitlementDeps, event: &str) -> Response<Body> {
    handle(deps, request_from_event(event), NOW).await
}

async fn ask_with_cookie(deps: &EntitlementDeps, token: &str) -> Response<Body> {
    ask(
        deps,
        &request("", vec![], vec![format!("__Host-llmxt_pro={token}")]),
    )
    .await
}

fn cleared(response: &Response<Body>) -> bool {
    response.headers().get("set-cookie").is_some_and(|v| {
        v.to_str()
            .unwrap()
            .starts_with("__Host-llmxt_pro=; Max-Age=0")
    })
}

#[tokio::test]
async fn a_valid_cookie_with_an_active_entitlement_is_pro_from_the_database() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let response = ask(&deps, &event_file("entitlement-cookie.json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        response_json(&response),
        json!({"pro": true, "plan": "professional", "status": "active", "expires_at": null, "features": [], "billing": {"state": "lifetime", "scheduled_plan": null}, "scope": "account", "source": "database"})
    );
}

#[tokio::test]
async fn the_database_decides_over_the_cookie() {
    let deps = deps(false).await;
    let token = token_for(BUYER, 3600);
    grant(&deps.store, BUYER, status::REVOKED, None).await;
    let body = response_json(&ask_with_cookie(&deps, &token).await);
    assert_eq!(
        (
            body["pro"].clone(),
            body["status"].clone(),
            body["source"].clone()
        ),
        (json!(false), json!("revoked"), json!("database"))
    );

    let expired_user = "expired@example.com";
    grant(&deps.store, expired_user, status::ACTIVE, Some(NOW - 1)).await;
    let body = response_json(&ask_with_cookie(&deps, &token_for(expired_user, 3600)).await);
    assert_eq!(body["pro"], json!(false));
    assert_eq!(
        body["expires_at"],
        json!(llmxt_domain::time::format_rfc3339(NOW - 1))
    );

    let unknown =
        response_json(&ask_with_cookie(&deps, &token_for("stranger@example.com", 3600)).await);
    assert_eq!(
        unknown,
        json!({"pro": false, "plan": null, "status": null, "expires_at": null, "features": [], "billing": null, "scope": "account", "source": "database"})
    );
}

#[tokio::test]
async fn no_cookie_is_not_pro() {
    let deps = deps(false).await;
    let response = ask(&deps, &request("", vec![], vec![])).await;
    assert_eq!(
        response_json(&response),
        json!({"pro": false, "plan": null, "status": null, "expires_at": null, "features": [], "billing": null, "scope": null, "source": "cookie"})
    );
    assert!(!cleared(&response));
}

#[tokio::test]
async fn bad_cookies_are_not_pro_and_are_cleared() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let good = token_for(BUYER, 3600);
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let claims = format!(
        r#"{{"sub":"{BUYER}","plan":"enterprise","iat":{NOW},"exp":{}}}"#,
        NOW + 3600
    );
    parts[1] = URL_SAFE_NO_PAD.encode(&claims);
    let tampered = parts.join(".");
    let header = |alg: &str| URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
    let payload = URL_SAFE_NO_PAD.encode(&claims);
    let alg_none = format!("{}.{payload}.", header("none"));
    let hs512 = {
        use hmac::{Hmac, Mac};
        let input = format!("{}.{payload}", header("HS512"));
        let mut mac =
            Hmac::<sha2::Sha512>::new_from_slice(TEST_ENTITLEMENT_SECRET.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let other_key = {
        let input = format!("{}.{payload}", header("HS256"));
        let mac = hmac_sha256(b"another-key-another-key-another-key!", &[input.as_bytes()]);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))
    };
    let expired = llmxt_testkit::token_signer().issue(
        &Email::parse(BUYER).unwrap(),
        "professional",
        NOW - 7200,
        3600,
    );
    let legacy = STANDARD.encode(BUYER);
    for (name, token) in [
        ("tampered", tampered),
        ("alg none", alg_none),
        ("HS512", hs512),
        ("another key", other_key),
        ("expired", expired),
        ("legacy base64 email", legacy),
        ("garbage", "%%%".to_owned()),
    ] {
        let response = ask_with_cookie(&deps, &token).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(response_json(&response)["pro"], json!(false), "{name}");
        assert!(cleared(&response), "{name} cookie should be cleared");
    }
}

#[tokio::test]
async fn a_signed_email_lookup_answers_from_the_database() {
    let deps = deps(true).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let request = request_from_event(&event_file("entitlement-email-signed.json"));
    let response = handle(&deps, request, EVENTS_TIME + 10).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response_json(&response)["pro"], json!(true));
    assert_eq!(response_json(&response)["source"], json!("database"));
}

#[tokio::test]
async fn an_email_lookup_always_needs_a_valid_signature() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let path = "/api/entitlement?email=john.doe%40example.com";
    let wrong_secret = Secret::new(b"wrong-secret-wrong-secret-wrong-secret".to_vec());
    let cases: Vec<(&str, String)> = vec![
        (
            "unsigned",
            request("email=john.doe%40example.com", vec![], vec![]),
        ),
        (
            "wrong secret",
            request(
                "email=john.doe%40example.com",
                signed_headers(&wrong_secret, NOW, path),
                vec![],
            ),
        ),
        (
            "stale timestamp",
            request(
                "email=john.doe%40example.com",
                signed_headers(&hmac_secret(), NOW - 301, path),
                vec![],
            ),
        ),
        (
            "future timestamp",
            request(
                "email=john.doe%40example.com",
                signed_headers(&hmac_secret(), NOW + 301, path),
                vec![],
            ),
        ),
        (
            "altered query",
            request(
                "email=other%40example.com",
                signed_headers(&hmac_secret(), NOW, path),
                vec![],
            ),
        ),
        (
            "replayed on another path",
            ApiGatewayEvent {
                method: "GET",
                path: "/api/other",
                query: "email=john.doe%40example.com",
                headers: signed_headers(
                    &hmac_secret(),
                    NOW,
                    "/api/entitlement?email=john.doe%40example.com",
                ),
                cookies: vec![],
                body: None,
            }
            .to_json()
            .to_string(),
        ),
    ];
    for (name, event) in cases {
        let response = ask(&deps, &event).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            response_json(&response),
            json!({"error": "invalid request signature"}),
            "{name}"
        );
    }
    let ok = ask(
        &deps,
        &request(
            "email=john.doe%40example.com",
            signed_headers(&hmac_secret(), NOW, path),
            vec![],
        ),
    )
    .await;
    assert_eq!(response_json(&ok)["pro"], json!(true));
}

#[tokio::test]
async fn with_require_signature_even_cookie_requests_must_be_signed() {
    let deps = deps(true).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let cookie = vec![format!("__Host-llmxt_pro={}", token_for(BUYER, 3600))];
    let unsigned = ask(&deps, &request("", vec![], cookie.clone())).await;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let signed = ask(
        &deps,
        &request(
            "",
            signed_headers(&hmac_secret(), NOW, "/api/entitlement"),
            cookie,
        ),
    )
    .await;
    assert_eq!(response_json(&signed)["pro"], json!(true));
}

#[tokio::test]
async fn an_invalid_email_is_400() {
    let deps = deps(false).await;
    // Zero-width space and right-to-left override: invalid, not a look-alike of the buyer.
    for query in [
        "email=not-an-email",
        "email=john.doe%E2%80%8B%40example.com",
        "email=john.doe%40exa%E2%80%AEmple.com",
    ] {
        let path = format!("/api/entitlement?{query}");
        let response = ask(
            &deps,
            &request(query, signed_headers(&hmac_secret(), NOW, &path), vec![]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn other_methods_are_405() {
    let deps = deps(false).await;
    let event = ApiGatewayEvent {
        method: "POST",
        path: "/api/entitlement",
        query: "",
        headers: vec![],
        cookies: vec![],
        body: Some("{}".into()),
    };
    assert_eq!(
        ask(&deps, &event.to_json().to_string()).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

async fn deps_with_endpoint(endpoint: String) -> EntitlementDeps {
    let mut store_config = unique_store_config();
    store_config.endpoint = Some(endpoint);
    let config = config(false);
    let store = Store::connect(
        &store_config,
        ClientProfile::within(std::time::Duration::from_millis(config.db_budget_ms)),
    )
    .await;
    EntitlementDeps::new(config, store)
}

async fn check_fail_open(deps: &EntitlementDeps) {
    let started = std::time::Instant::now();
    let response = ask_with_cookie(deps, &token_for(BUYER, 3600)).await;
    let body = response_json(&response);
    assert_eq!(
        (body["pro"].clone(), body["source"].clone()),
        (json!(true), json!("cookie")),
        "{body}"
    );
    assert_eq!(
        body["expires_at"],
        json!(llmxt_domain::time::format_rfc3339(NOW + 3600))
    );
    // A hang guard, not a speed test: the budget itself is enforced by a timeout in the code.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let invalid = ask_with_cookie(deps, "not.a.token").await;
    assert_eq!(response_json(&invalid)["pro"], json!(false));
    let path = "/api/entitlement?email=john.doe%40example.com";
    let by_email = ask(
        deps,
        &request(
            "email=john.doe%40example.com",
            signed_headers(&hmac_secret(), NOW, path),
            vec![],
        ),
    )
    .await;
    assert_eq!(
        by_email.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "email lookups fail closed"
    );
}

#[tokio::test]
async fn an_unreachable_database_fails_open_for_a_valid_cookie_only() {
    check_fail_open(&deps_with_endpoint(llmxt_testkit::closed_endpoint()).await).await;
}

#[tokio::test]
async fn a_database_that_never_answers_fails_open_within_the_budget() {
    // Accepts connections and never replies.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    check_fail_open(&deps_with_endpoint(format!("http://127.0.0.1:{port}")).await).await;
}

#[tokio::test]
async fn a_database_slower_than_the_budget_fails_open_for_a_valid_cookie_only() {
    use llmxt_testkit::faults::{FaultProxy, ProxyMode};
    let proxy = FaultProxy::start(
        llmxt_testkit::dynamodb_endpoint()
            .trim_start_matches("http://")
            .to_owned(),
    )
    .await;
    let direct = fresh_store().await;
    let mut store_config = direct.config().clone();
    store_config.endpoint = Some(proxy.endpoint());
    let config = config(false);
    let store = Store::connect(
        &store_config,
        ClientProfile::within(std::time::Duration::from_millis(config.db_budget_ms)),
    )
    .await;
    let deps = EntitlementDeps::new(config, store);
    grant(&direct, BUYER, status::REVOKED, None).await;
    // At full speed the database decides (revoked).
    assert_eq!(
        response_json(&ask_with_cookie(&deps, &token_for(BUYER, 3600)).await)["source"],
        json!("database")
    );
    // Slower than the budget: the valid cookie answers alone.
    proxy.set(ProxyMode::Delay(1500));
    check_fail_open(&deps).await;
}

#[tokio::test]
async fn oversized_headers_and_queries_are_refused_without_harm() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let huge = "A".repeat(64 * 1024);
    let cookie = ask_with_cookie(&deps, &huge).await;
    assert_eq!(cookie.status(), StatusCode::OK);
    assert_eq!(response_json(&cookie)["pro"], json!(false));
    assert!(cleared(&cookie));
    // API Gateway refuses request lines over 10 KiB, so queries are kept below that here
    // (lambda_http itself cannot build a request whose URI exceeds 64 KiB).
    let long_local = "a".repeat(8 * 1024);
    let query = format!("email={long_local}%40example.com");
    let headers = vec![
        ("x-llmxt-timestamp", NOW.to_string()),
        ("x-llmxt-signature", format!("v1={huge}")),
    ];
    let response = ask(&deps, &request(&query, headers, vec![])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let signed_path = format!("/api/entitlement?{query}");
    let signed = ask(
        &deps,
        &request(
            &query,
            signed_headers(&hmac_secret(), NOW, &signed_path),
            vec![],
        ),
    )
    .await;
    assert_eq!(
        signed.status(),
        StatusCode::BAD_REQUEST,
        "a 64 KiB address is not an email"
    );
}

const DAY: i64 = 86_400;
const LIFETIME: i64 = 30 * DAY;

fn issued_at(iat: i64, lifetime: i64) -> String {
    llmxt_testkit::token_signer().issue(
        &Email::parse(BUYER).unwrap(),
        "professional",
        iat,
        lifetime,
    )
}

/// The refreshed cookie's token, checked against every attribute the issuer sets.
fn refreshed(response: &Response<Body>) -> Option<llmxt_domain::token::EntitlementClaims> {
    let cookie = response.headers().get("set-cookie")?.to_str().unwrap();
    let rest = cookie.strip_prefix("__Host-llmxt_pro=")?;
    let (token, attributes) = rest.split_once(';').unwrap();
    assert_eq!(
        attributes.trim(),
        format!("Max-Age={LIFETIME}; Path=/; HttpOnly; Secure; SameSite=Lax")
    );
    let verified = llmxt_testkit::token_signer().verify(token, NOW).unwrap();
    assert!(verified.signed_with_current_key);
    Some(verified.claims)
}

#[tokio::test]
async fn a_cookie_older_than_a_day_is_refreshed_to_a_full_lifetime() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let response = ask_with_cookie(&deps, &issued_at(NOW - 3 * DAY, LIFETIME)).await;
    assert_eq!(response_json(&response)["pro"], json!(true));
    let claims = refreshed(&response).expect("a fresh cookie");
    assert_eq!((claims.iat, claims.exp), (NOW, NOW + LIFETIME));
    assert_eq!(claims.email, BUYER);
    // Nearly expired: refreshed too.
    let response = ask_with_cookie(&deps, &issued_at(NOW - LIFETIME + 60, LIFETIME)).await;
    assert_eq!(refreshed(&response).expect("fresh").exp, NOW + LIFETIME);
    // Issued within the day: left alone.
    let response = ask_with_cookie(&deps, &issued_at(NOW - 3600, LIFETIME)).await;
    assert_eq!(response_json(&response)["pro"], json!(true));
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn no_refresh_when_the_database_says_not_pro_or_cannot_answer() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::REVOKED, None).await;
    let response = ask_with_cookie(&deps, &issued_at(NOW - 3 * DAY, LIFETIME)).await;
    assert_eq!(response_json(&response)["pro"], json!(false));
    assert!(
        response.headers().get("set-cookie").is_none(),
        "refunded: no refresh"
    );
    // Fail-open answers never refresh.
    let down = deps_with_endpoint(llmxt_testkit::closed_endpoint()).await;
    let response = ask_with_cookie(&down, &issued_at(NOW - 3 * DAY, LIFETIME)).await;
    assert_eq!(response_json(&response)["source"], json!("cookie"));
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn a_cookie_signed_with_the_old_key_is_accepted_and_re_signed_with_the_new() {
    let new_key = "a-brand-new-entitlement-key-0123456789";
    let rotated = EntitlementConfig::from_env(&Env::from_pairs([
        (
            "ENTITLEMENT_SECRET",
            format!("{new_key} {TEST_ENTITLEMENT_SECRET}").as_str(),
        ),
        ("REQUIRE_HMAC_SIGNATURE", "false"),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE),
    ]))
    .unwrap();
    let deps = EntitlementDeps::new(rotated, fresh_store().await);
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let old = issued_at(NOW - 60, LIFETIME);
    let response = ask_with_cookie(&deps, &old).await;
    assert_eq!(response_json(&response)["pro"], json!(true));
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let token = cookie
        .trim_start_matches("__Host-llmxt_pro=")
        .split(';')
        .next()
        .unwrap();
    let new_only = llmxt_domain::token::TokenSigner::new(
        vec![Secret::new(new_key.as_bytes().to_vec())],
        TEST_SITE,
    );
    assert!(
        new_only.verify(token, NOW).is_ok(),
        "re-signed with the new key"
    );
    assert!(llmxt_testkit::token_signer().verify(token, NOW).is_err());
}

#[tokio::test]
async fn a_token_for_another_site_is_refused() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let elsewhere = llmxt_domain::token::TokenSigner::new(
        vec![llmxt_testkit::entitlement_secret()],
        "https://other.example.com",
    )
    .issue(&Email::parse(BUYER).unwrap(), "professional", NOW, LIFETIME);
    let response = ask_with_cookie(&deps, &elsewhere).await;
    assert_eq!(response_json(&response)["pro"], json!(false));
    assert!(cleared(&response));
}

#[tokio::test]
async fn a_planted_invalid_cookie_never_hides_or_clears_a_valid_one() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let valid = issued_at(NOW - 60, LIFETIME);
    for cookies in [
        vec![
            "__Host-llmxt_pro=planted.garbage.value".to_owned(),
            format!("__Host-llmxt_pro={valid}"),
        ],
        vec![
            format!("__Host-llmxt_pro={valid}"),
            "__Host-llmxt_pro=planted.garbage.value".to_owned(),
        ],
    ] {
        let response = ask(&deps, &request("", vec![], cookies)).await;
        assert_eq!(response_json(&response)["pro"], json!(true));
        assert!(
            response.headers().get("set-cookie").is_none(),
            "nothing cleared"
        );
    }
}

#[tokio::test]
async fn a_signed_server_call_forwarding_the_cookie_gets_the_refresh_to_pass_on() {
    let deps = deps(true).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let headers = signed_headers(&llmxt_testkit::hmac_secret(), NOW, "/api/entitlement");
    let cookie = format!("__Host-llmxt_pro={}", issued_at(NOW - 2 * DAY, LIFETIME));
    let response = ask(&deps, &request("", headers, vec![cookie])).await;
    assert_eq!(response_json(&response)["pro"], json!(true));
    assert!(refreshed(&response).is_some());
}

/// DynamoDB's answers that mean "you are misconfigured", not "I am down": a valid cookie must
/// not answer alone (a wrong table name or IAM policy would otherwise grant every past buyer
/// Pro, refunded ones included, with no alarm).
#[tokio::test]
async fn a_refusing_database_fails_closed_even_for_a_valid_cookie() {
    use llmxt_testkit::faults::DynamoDbErrorStandIn;
    const DDB: &str = "com.amazonaws.dynamodb.v20120810#";
    let refusals = [
        (
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/x is not authorized to perform: dynamodb:GetItem",
        ),
        ("ResourceNotFoundException", "Requested resource not found"),
        (
            "ValidationException",
            "One or more parameter values were invalid",
        ),
    ];
    let mut stand_ins = Vec::new();
    for (code, message) in refusals {
        stand_ins.push((
            code,
            DynamoDbErrorStandIn::start(400, &format!("{DDB}{code}"), message).await,
        ));
    }
    for code in ["UnrecognizedClientException", "ExpiredTokenException"] {
        let error_type = format!("com.amazon.coral.service#{code}");
        stand_ins.push((
            code,
            DynamoDbErrorStandIn::start(
                400,
                &error_type,
                "The security token included in the request is invalid.",
            )
            .await,
        ));
    }
    for (code, stand_in) in &stand_ins {
        let deps = deps_with_endpoint(stand_in.endpoint()).await;
        let response = ask_with_cookie(&deps, &token_for(BUYER, 3600)).await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{code}: {}",
            response_text(&response)
        );
        assert!(response.headers().get("set-cookie").is_none(), "{code}");
        let path = "/api/entitlement?email=john.doe%40example.com";
        let by_email = ask(
            &deps,
            &request(
                "email=john.doe%40example.com",
                signed_headers(&hmac_secret(), NOW, path),
                vec![],
            ),
        )
        .await;
        assert_eq!(by_email.status(), StatusCode::SERVICE_UNAVAILABLE, "{code}");
    }
}

/// DynamoDB's answers that mean "down for now": throttling and 5xx let a valid cookie
/// answer alone.
#[tokio::test]
async fn a_throttled_or_failing_database_fails_open_for_a_valid_cookie_only() {
    use llmxt_testkit::faults::DynamoDbErrorStandIn;
    const DDB: &str = "com.amazonaws.dynamodb.v20120810#";
    for (status, code) in [
        (400, "ProvisionedThroughputExceededException"),
        (400, "ThrottlingException"),
        (400, "RequestLimitExceeded"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
    ] {
        let stand_in =
            DynamoDbErrorStandIn::start(status, &format!("{DDB}{code}"), "try again").await;
        check_fail_open(&deps_with_endpoint(stand_in.endpoint()).await).await;
    }
}

#[tokio::test]
async fn a_get_with_a_body_is_refused_before_its_signature_is_checked() {
    let deps = deps(true).await;
    grant(&deps.store, "a@b", status::ACTIVE, None).await;
    // A signature over "…?email=a%40b.co" with no body also covers "…?email=a%40b" with the
    // body "co.": the canonical strings are equal.
    let headers = signed_headers(&hmac_secret(), NOW, "/api/entitlement?email=a%40b.co");
    let mut shifted = ApiGatewayEvent {
        method: "GET",
        path: "/api/entitlement",
        query: "email=a%40b",
        headers,
        cookies: vec![],
        body: Some("co.".to_owned()),
    }
    .to_json();
    let response = ask(&deps, &shifted.to_string()).await;
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "{}",
        response_text(&response)
    );
    assert!(!response_text(&response).contains("\"pro\""));
    // HEAD likewise.
    let mut head = shifted.clone();
    head["requestContext"]["http"]["method"] = json!("HEAD");
    let response = ask(&deps, &head.to_string()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Any body at all, even with a valid signature over it.
    shifted["rawQueryString"] = json!("email=a%40b.co");
    shifted["body"] = json!("");
    let ok = ask(&deps, &shifted.to_string()).await;
    assert_eq!(
        ok.status(),
        StatusCode::OK,
        "the same request without a body"
    );
}

fn claims(iat: i64, auth_time: Option<i64>, grants: Option<&[&str]>) -> EntitlementClaims {
    EntitlementClaims {
        email: BUYER.to_owned(),
        plan: "professional".to_owned(),
        iat,
        exp: iat + LIFETIME,
        aud: TEST_SITE.to_owned(),
        auth_time,
        grants: grants.map(|keys| keys.iter().map(|k| (*k).to_owned()).collect()),
    }
}

fn set_cookies(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn token_in(set_cookie: &str) -> EntitlementClaims {
    let token = set_cookie
        .split_once('=')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap();
    llmxt_testkit::token_signer()
        .verify(token, NOW)
        .unwrap()
        .claims
}

#[tokio::test]
async fn a_purchase_cookie_sees_only_its_grants_and_says_so() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let signer = llmxt_testkit::token_signer();
    let own = signer.encode(&claims(NOW - 60, Some(NOW - 60), Some(&["pay_test"])));
    let body = response_json(&ask_with_cookie(&deps, &own).await);
    assert_eq!(
        (&body["pro"], &body["scope"]),
        (&json!(true), &json!("purchase"))
    );
    // The email holds Pro, but not through the purchase this cookie proves.
    let other = signer.encode(&claims(NOW - 60, Some(NOW - 60), Some(&["pay_other"])));
    let body = response_json(&ask_with_cookie(&deps, &other).await);
    assert_eq!(
        body,
        json!({"pro": false, "plan": null, "status": null, "expires_at": null, "features": [], "billing": null, "scope": "purchase", "source": "database"})
    );
}

#[tokio::test]
async fn refresh_keeps_scope_and_auth_time_and_stops_at_the_session_cap() {
    let capped = EntitlementConfig::from_env(&Env::from_pairs([
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("REQUIRE_HMAC_SIGNATURE", "false"),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE),
        ("COOKIE_SESSION_MAX_SECONDS", "864000"),
    ]))
    .unwrap();
    let deps = EntitlementDeps::new(capped, fresh_store().await);
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let signer = llmxt_testkit::token_signer();
    // Started nine and a half days ago, last refreshed two days ago: refreshed up to the cap.
    let started = NOW - 9 * DAY - DAY / 2;
    let token = signer.encode(&claims(NOW - 2 * DAY, Some(started), Some(&["pay_test"])));
    let response = ask_with_cookie(&deps, &token).await;
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(
        cookies[0].contains(&format!("Max-Age={};", DAY / 2)),
        "{}",
        cookies[0]
    );
    let fresh = token_in(&cookies[0]);
    assert_eq!(
        fresh.exp,
        started + 10 * DAY,
        "never past auth_time + the cap"
    );
    assert_eq!(fresh.auth_time, Some(started), "refresh keeps auth_time");
    assert_eq!(
        fresh.grants,
        Some(vec!["pay_test".to_owned()]),
        "and the scope"
    );
    // Past the cap: still valid until its own expiry, but never extended.
    let token = signer.encode(&claims(NOW - 2 * DAY, Some(NOW - 11 * DAY), None));
    let response = ask_with_cookie(&deps, &token).await;
    assert_eq!(response_json(&response)["pro"], json!(true));
    assert!(
        set_cookies(&response).is_empty(),
        "the buyer signs in again by email"
    );
}

#[tokio::test]
async fn the_old_cookie_name_is_read_and_moved_without_extending_a_token_from_before_sessions() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    // Issued before sessions existed (no auth_time, no grants), three days ago.
    let legacy = claims(NOW - 3 * DAY, None, None);
    let token = llmxt_testkit::token_signer().encode(&legacy);
    let response = ask(
        &deps,
        &request("", vec![], vec![format!("llmxt_pro={token}")]),
    )
    .await;
    let body = response_json(&response);
    assert_eq!(
        (&body["pro"], &body["scope"]),
        (&json!(true), &json!("account"))
    );
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies[0].starts_with("__Host-llmxt_pro="),
        "{}",
        cookies[0]
    );
    assert_eq!(
        token_in(&cookies[0]),
        legacy,
        "the same claims: not extended"
    );
    assert!(
        cookies[0].contains(&format!("Max-Age={};", legacy.exp - NOW)),
        "{}",
        cookies[0]
    );
    assert_eq!(
        cookies[1], "llmxt_pro=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax",
        "the old name is removed"
    );
    // Under the new name, a token from before sessions is left alone until it expires.
    let response = ask_with_cookie(&deps, &token).await;
    assert_eq!(response_json(&response)["pro"], json!(true));
    assert!(set_cookies(&response).is_empty());
}

#[tokio::test]
async fn a_valid_cookie_that_gives_access_wins_over_one_that_does_not() {
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    grant(&deps.store, "lapsed@example.com", status::REVOKED, None).await;
    let signer = llmxt_testkit::token_signer();
    let lapsed = signer.issue(
        &Email::parse("lapsed@example.com").unwrap(),
        "professional",
        NOW - 60,
        LIFETIME,
    );
    let uncovered = signer.encode(&claims(NOW - 60, Some(NOW - 60), Some(&["pay_gone"])));
    let good = issued_at(NOW - 60, LIFETIME);
    for cookies in [
        vec![lapsed.clone(), good.clone()],
        vec![good.clone(), lapsed.clone()],
        vec![uncovered.clone(), good.clone()],
    ] {
        let cookies: Vec<String> = cookies
            .iter()
            .map(|token| format!("__Host-llmxt_pro={token}"))
            .collect();
        let body = response_json(&ask(&deps, &request("", vec![], cookies)).await);
        assert_eq!(body["pro"], json!(true), "{body}");
    }
}

#[tokio::test]
async fn the_original_systems_cookie_never_gives_pro() {
    // The original system set `llmxt_pro` to the base64 of the buyer's email: anyone can
    // forge it. Under its own name or ours, it answers not Pro, even for a paying buyer.
    let deps = deps(false).await;
    grant(&deps.store, BUYER, status::ACTIVE, None).await;
    let forged = STANDARD.encode(BUYER);
    for cookie in [
        format!("llmxt_pro={forged}"),
        format!("__Host-llmxt_pro={forged}"),
    ] {
        let response = ask(&deps, &request("", vec![], vec![cookie.clone()])).await;
        assert_eq!(response.status(), StatusCode::OK, "{cookie}");
        let body = response_json(&response);
        assert_eq!(body["pro"], json!(false), "{cookie}");
        assert_eq!(body["plan"], json!(null), "{cookie}");
    }
}
