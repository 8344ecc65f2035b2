//! `POST /api/usage/*` in-process, fed signed API Gateway events, against DynamoDB Local.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use entitlement::config::EntitlementConfig;
use entitlement::{EntitlementDeps, handle};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, Grant, source, status};
use llmxt_domain::request_signature::{SignedRequest, sign};
use llmxt_domain::time::format_rfc3339;
use llmxt_domain::token::Session;
use llmxt_store::store::Store;
use llmxt_testkit::{
    ApiGatewayEvent, EVENTS_TIME, TEST_ENTITLEMENT_SECRET, TEST_HMAC_SECRET, TEST_SITE,
    fresh_store, hmac_secret, request_from_event, response_json, scan_all, unreachable_store,
};
use serde_json::{Value, json};

const NOW: i64 = EVENTS_TIME + 60;
const BUYER: &str = "buyer@example.com";
const LIMITS: &str = "professional=requests:500/month+tokens:200000/month,enterprise=requests:2000/month+tokens:unlimited,daily=requests:3/day";

fn config(limits: &str) -> EntitlementConfig {
    EntitlementConfig::from_env(&Env::from_pairs([
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("HMAC_SECRET", TEST_HMAC_SECRET),
        // Usage requests are signed even when entitlement checks need not be.
        ("REQUIRE_HMAC_SIGNATURE", "false"),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE),
        ("ENTITLEMENT_DB_BUDGET_MS", "900"),
        ("PLAN_LIMITS", limits),
        // Only the plans PLAN_RANKING lists give Pro.
        ("PLAN_RANKING", "free,daily,professional,enterprise"),
        // DynamoDB Local on a shared machine answers 50 parallel clients slowly.
        ("USAGE_DB_TIMEOUT_MS", "60000"),
    ]))
    .unwrap()
}

async fn deps() -> EntitlementDeps {
    EntitlementDeps::new(config(LIMITS), fresh_store().await)
}

fn grant(key: &str, plan: &str) -> Grant {
    Grant {
        key: key.to_owned(),
        source: source::PAYMENT.to_owned(),
        plan: plan.to_owned(),
        status: status::ACTIVE.to_owned(),
        payment_id: Some(key.to_owned()),
        updated_at: NOW,
        ..Grant::default()
    }
}

async fn put_grants(store: &Store, email: &str, grants: Vec<Grant>) {
    let email = Email::parse(email).unwrap();
    let mut entitlement = store
        .get_entitlement(&email)
        .await
        .unwrap()
        .unwrap_or_else(|| Entitlement::new(email));
    for grant in grants {
        entitlement.grants.insert(grant.key.clone(), grant);
    }
    entitlement.summarise(NOW, &Default::default());
    store.put_entitlement(&entitlement).await.unwrap();
}

fn signed_event(path: &str, body: &str, cookies: Vec<String>, signed: bool) -> String {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if signed {
        let signature = sign(
            &hmac_secret(),
            NOW,
            SignedRequest {
                method: "POST",
                path_and_query: path,
                body: body.as_bytes(),
            },
        );
        headers.push(("x-llmxt-timestamp", NOW.to_string()));
        headers.push(("x-llmxt-signature", signature));
    }
    ApiGatewayEvent {
        method: "POST",
        path,
        query: "",
        headers,
        cookies,
        body: Some(body.to_owned()),
    }
    .to_json()
    .to_string()
}

async fn post_at(deps: &EntitlementDeps, path: &str, body: Value, now: i64) -> Response<Body> {
    let event = signed_event(path, &body.to_string(), vec![], true);
    handle(deps, request_from_event(&event), now).await
}

async fn post(deps: &EntitlementDeps, path: &str, body: Value) -> Response<Body> {
    post_at(deps, path, body, NOW).await
}

/// Posts, retrying a `503` (DynamoDB Local overloaded on a shared machine) with the same body,
/// as callers are told to: a write that did happen before the `503` is charged once.
async fn post_retrying(deps: &EntitlementDeps, path: &str, body: Value) -> Response<Body> {
    let mut response = post(deps, path, body.clone()).await;
    for _ in 0..20 {
        if response.status() != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        response = post(deps, path, body.clone()).await;
    }
    response
}

async fn reserve(deps: &EntitlementDeps, meter: &str, amount: i64, key: &str) -> Response<Body> {
    post(
        deps,
        "/api/usage/reserve",
        json!({"email": BUYER, "meter": meter, "amount": amount, "idempotency_key": key}),
    )
    .await
}

async fn entitlement_usage(deps: &EntitlementDeps, now: i64) -> Value {
    let query = format!("email={}", BUYER.replace('@', "%40"));
    let path_and_query = format!("/api/entitlement?{query}");
    let signature = sign(
        &hmac_secret(),
        now,
        SignedRequest {
            method: "GET",
            path_and_query: &path_and_query,
            body: b"",
        },
    );
    let event = ApiGatewayEvent {
        method: "GET",
        path: "/api/entitlement",
        query: &query,
        headers: vec![
            ("x-llmxt-timestamp", now.to_string()),
            ("x-llmxt-signature", signature),
        ],
        cookies: vec![],
        body: None,
    }
    .to_json()
    .to_string();
    let response = handle(deps, request_from_event(&event), now).await;
    assert_eq!(response.status(), StatusCode::OK);
    response_json(&response)["usage"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_concurrent_reserves_grant_exactly_the_remaining_500() {
    let deps = Arc::new(deps().await);
    put_grants(&deps.store, BUYER, vec![grant("pay_1", "professional")]).await;
    let started = std::time::Instant::now();
    let mut clients = Vec::new();
    for client in 0..50 {
        let deps = Arc::clone(&deps);
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for n in 0..40 {
                let body = json!({"email": BUYER, "meter": "requests", "amount": 1, "idempotency_key": format!("c{client}-{n}")});
                let response = post_retrying(&deps, "/api/usage/reserve", body).await;
                answers.push((response.status(), response_json(&response)));
            }
            answers
        }));
    }
    let mut reservations = Vec::new();
    let mut refused = 0;
    for client in clients {
        for (status, body) in client.await.unwrap() {
            match status {
                StatusCode::OK => {
                    reservations.push(body["reservation"].as_str().unwrap().to_owned())
                }
                StatusCode::PAYMENT_REQUIRED => {
                    assert_eq!(body["error"], "limit_reached");
                    assert_eq!(body["limit"], 500);
                    refused += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
    }
    eprintln!("2000 reserves in {:?}", started.elapsed());
    assert_eq!((reservations.len(), refused), (500, 1500));
    let mut commits = Vec::new();
    for chunk in reservations.chunks(10) {
        let deps = Arc::clone(&deps);
        let chunk = chunk.to_vec();
        commits.push(tokio::spawn(async move {
            for reservation in chunk {
                let response = post_retrying(
                    &deps,
                    "/api/usage/commit",
                    json!({"reservation": reservation}),
                )
                .await;
                assert_eq!(
                    response.status(),
                    StatusCode::OK,
                    "{}",
                    response_json(&response)
                );
            }
        }));
    }
    for commit in commits {
        commit.await.unwrap();
    }
    let usage = entitlement_usage(&deps, NOW).await;
    assert_eq!(usage["requests"]["used"], 500);
    assert_eq!(usage["requests"]["reserved"], 0);
    assert_eq!(usage["requests"]["remaining"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_sent_twenty_times_at_once_is_charged_once() {
    let deps = Arc::new(deps().await);
    put_grants(&deps.store, BUYER, vec![grant("pay_1", "professional")]).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let deps = Arc::clone(&deps);
        tasks.push(tokio::spawn(async move {
            let response = reserve(&deps, "tokens", 700, "same-key").await;
            assert_eq!(response.status(), StatusCode::OK);
            response_json(&response)["reservation"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
    }
    let mut reservations = Vec::new();
    for task in tasks {
        reservations.push(task.await.unwrap());
    }
    reservations.dedup();
    assert_eq!(reservations.len(), 1, "every answer names the first hold");
    let usage = entitlement_usage(&deps, NOW).await;
    assert_eq!(usage["tokens"]["reserved"], 700);
    assert_eq!(usage["tokens"]["remaining"], 200_000 - 700);
    // Committing twice (and releasing after) counts once.
    for _ in 0..2 {
        let response = post(
            &deps,
            "/api/usage/commit",
            json!({"reservation": reservations[0], "amount": 250}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response_json(&response)["used"], 250);
        assert_eq!(response_json(&response)["remaining"], 200_000 - 250);
    }
    let response = post(
        &deps,
        "/api/usage/release",
        json!({"reservation": reservations[0]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let usage = entitlement_usage(&deps, NOW).await;
    assert_eq!(
        (&usage["tokens"]["used"], &usage["tokens"]["reserved"]),
        (&json!(250), &json!(0))
    );
    // Work that used nothing commits 0: all of it goes back, nothing more is used.
    let held = reserve(&deps, "tokens", 300, "used-nothing").await;
    let reservation = response_json(&held)["reservation"].clone();
    let response = post(
        &deps,
        "/api/usage/commit",
        json!({"reservation": reservation, "amount": 0}),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response_json(&response)
    );
    assert_eq!(response_json(&response)["used"], 250);
    assert_eq!(response_json(&response)["remaining"], 200_000 - 250);
}

#[tokio::test]
async fn a_hold_not_committed_in_time_goes_back_and_cannot_be_committed() {
    let deps = deps().await;
    put_grants(&deps.store, BUYER, vec![grant("pay_1", "professional")]).await;
    let response = post(
        &deps,
        "/api/usage/reserve",
        json!({"email": BUYER, "meter": "requests", "amount": 500, "idempotency_key": "k", "hold_seconds": 30}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let reservation = response_json(&response)["reservation"].clone();
    assert_eq!(response_json(&response)["remaining"], 0);
    let refused = reserve(&deps, "requests", 1, "k2").await;
    assert_eq!(refused.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(response_json(&refused)["reserved"], 500);
    // At its end: back in the balance, with nothing run in between.
    let later = NOW + 30;
    let response = post_at(
        &deps,
        "/api/usage/reserve",
        json!({"email": BUYER, "meter": "requests", "amount": 500, "idempotency_key": "k3"}),
        later,
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response_json(&response)
    );
    let late = post_at(
        &deps,
        "/api/usage/commit",
        json!({"reservation": reservation}),
        later,
    )
    .await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    assert_eq!(response_json(&late)["error"], "hold_expired");
    let usage = entitlement_usage(&deps, later).await;
    assert_eq!(usage["requests"]["reserved"], 500);
    assert_eq!(usage["requests"]["used"], 0);
}

#[tokio::test]
async fn a_renewal_resets_the_period_and_a_plan_change_keeps_used() {
    let deps = deps().await;
    let period_end = NOW + 10 * 86_400;
    let subscription = Grant {
        key: "sub_1".to_owned(),
        source: source::SUBSCRIPTION.to_owned(),
        subscription_id: Some("sub_1".to_owned()),
        period_end: Some(period_end),
        expires_at: Some(period_end + 86_400),
        ..grant("sub_1", "professional")
    };
    put_grants(&deps.store, BUYER, vec![subscription.clone()]).await;
    let response = post(
        &deps,
        "/api/usage/consume",
        json!({"email": BUYER, "meter": "requests", "amount": 400, "idempotency_key": "c1"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response_json(&response)["used"], 400);
    assert_eq!(
        response_json(&response)["resets_at"],
        format_rfc3339(period_end)
    );
    // Upgraded: the new limit at once, the same `used`.
    put_grants(
        &deps.store,
        BUYER,
        vec![Grant {
            plan: "enterprise".to_owned(),
            ..subscription.clone()
        }],
    )
    .await;
    let usage = entitlement_usage(&deps, NOW).await;
    assert_eq!(usage["requests"]["limit"], 2000);
    assert_eq!(usage["requests"]["used"], 400);
    assert_eq!(usage["requests"]["remaining"], 1600);
    assert_eq!(usage["tokens"]["limit"], Value::Null);
    // Renewed: the next billing period starts from zero.
    put_grants(
        &deps.store,
        BUYER,
        vec![Grant {
            plan: "enterprise".to_owned(),
            period_end: Some(period_end + 30 * 86_400),
            expires_at: Some(period_end + 31 * 86_400),
            ..subscription
        }],
    )
    .await;
    let usage = entitlement_usage(&deps, NOW).await;
    assert_eq!(usage["requests"]["used"], 0);
    assert_eq!(
        usage["requests"]["resets_at"],
        format_rfc3339(period_end + 30 * 86_400)
    );
}

#[tokio::test]
async fn a_purchase_cookie_sees_and_spends_only_its_purchase() {
    let deps = deps().await;
    put_grants(
        &deps.store,
        BUYER,
        vec![
            grant("pay_pro", "professional"),
            grant("pay_daily", "daily"),
        ],
    )
    .await;
    // Account-wide, the best grant (professional) is charged.
    assert_eq!(
        reserve(&deps, "requests", 7, "a1").await.status(),
        StatusCode::OK
    );
    let signer = llmxt_testkit::token_signer();
    let session = Session::purchase("pay_daily", NOW);
    let token = signer.issue_session(
        &Email::parse(BUYER).unwrap(),
        "daily",
        &session,
        NOW,
        NOW + 3_600,
    );
    let cookie = format!("__Host-llmxt_pro={token}");
    let ask = |key: &str, meter: &str| {
        let body = json!({"meter": meter, "amount": 2, "idempotency_key": key}).to_string();
        signed_event("/api/usage/reserve", &body, vec![cookie.clone()], true)
    };
    let response = handle(&deps, request_from_event(&ask("p1", "requests")), NOW).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response_json(&response)
    );
    assert_eq!(
        response_json(&response)["remaining"],
        1,
        "its own 3/day, not the 7 used elsewhere"
    );
    let response = handle(&deps, request_from_event(&ask("p2", "tokens")), NOW).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response_json(&response),
        json!({"error": "meter_not_in_plan"})
    );
    let usage = entitlement_usage(&deps, NOW).await;
    assert_eq!(
        usage["requests"]["reserved"], 7,
        "the account sees its best grant"
    );
}

#[tokio::test]
async fn no_pro_is_403_and_bad_input_is_400_with_nothing_written() {
    let deps = deps().await;
    let response = reserve(&deps, "requests", 1, "k").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response_json(&response), json!({"error": "no_access"}));
    put_grants(&deps.store, BUYER, vec![grant("pay_1", "professional")]).await;
    let table = deps.store.config().payments_table.clone();
    let before = format!("{:?}", scan_all(&deps.store, &table).await);
    let bad = [
        (
            json!({"email": BUYER, "meter": "requests", "amount": 0, "idempotency_key": "k"}),
            "amount",
        ),
        (
            json!({"email": BUYER, "meter": "requests", "amount": 1_000_000_000_001_i64, "idempotency_key": "k"}),
            "amount",
        ),
        (
            json!({"email": BUYER, "meter": "requests", "amount": 1, "idempotency_key": "k".repeat(201)}),
            "idempotency_key",
        ),
        (
            json!({"email": BUYER, "meter": "requests", "amount": 1}),
            "idempotency_key",
        ),
        (
            json!({"email": BUYER, "amount": 1, "idempotency_key": "k"}),
            "meter",
        ),
        (
            json!({"meter": "requests", "amount": 1, "idempotency_key": "k"}),
            "email",
        ),
    ];
    for (body, field) in bad {
        let response = post(&deps, "/api/usage/reserve", body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let message = response_json(&response)["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.starts_with(field), "{body} → {message}");
    }
    let response = post(
        &deps,
        "/api/usage/commit",
        json!({"reservation": "r1.forged"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Unsigned, even with REQUIRE_HMAC_SIGNATURE=false.
    let body = json!({"email": BUYER, "meter": "requests", "amount": 1, "idempotency_key": "k"});
    let event = signed_event("/api/usage/reserve", &body.to_string(), vec![], false);
    let response = handle(&deps, request_from_event(&event), NOW).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let after = format!("{:?}", scan_all(&deps.store, &table).await);
    assert_eq!(before, after, "nothing written");
}

#[tokio::test]
async fn a_cookie_that_proves_no_one_and_a_plan_without_meters_are_403() {
    let deps = deps().await;
    let body = json!({"meter": "requests", "amount": 1, "idempotency_key": "k"});
    let event = signed_event(
        "/api/usage/reserve",
        &body.to_string(),
        vec!["__Host-llmxt_pro=forged.token".to_owned()],
        true,
    );
    let response = handle(&deps, request_from_event(&event), NOW).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response_json(&response), json!({"error": "no_access"}));
    // A paid plan PLAN_LIMITS does not name has no meters at all.
    let config = EntitlementConfig::from_env(&Env::from_pairs([
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("HMAC_SECRET", TEST_HMAC_SECRET),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE),
        ("PLAN_LIMITS", "professional=requests:5/month"),
        ("PLAN_RANKING", "professional,enterprise"),
    ]))
    .unwrap();
    let unlisted = EntitlementDeps::new(config, deps.store.clone());
    put_grants(&unlisted.store, BUYER, vec![grant("pay_2", "enterprise")]).await;
    let response = reserve(&unlisted, "requests", 1, "k").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response_json(&response),
        json!({"error": "meter_not_in_plan"})
    );
}

#[tokio::test]
async fn an_unreachable_database_answers_503_and_grants_nothing() {
    let deps = EntitlementDeps::new(
        config(LIMITS),
        unreachable_store(Duration::from_millis(300)).await,
    );
    let response = reserve(&deps, "requests", 1, "k").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response_json(&response)["retry_after"], 1);
    assert_eq!(response.headers()["retry-after"], "1");
}

#[tokio::test]
async fn plans_without_limits_answer_no_usage() {
    let deps = EntitlementDeps::new(config(""), fresh_store().await);
    put_grants(&deps.store, BUYER, vec![grant("pay_1", "professional")]).await;
    assert_eq!(entitlement_usage(&deps, NOW).await, Value::Null);
}
