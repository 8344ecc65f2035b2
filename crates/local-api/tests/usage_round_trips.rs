//! DynamoDB round trips of the usage API, counted through a proxy in front of DynamoDB Local:
//! a reserve reads once and writes once (2), a refused or repeated reserve only reads (1), a
//! commit or release writes once (1); `/api/entitlement` reads usage only for a plan with
//! limits.
#![allow(clippy::unwrap_used)]

use entitlement::config::EntitlementConfig;
use lambda_http::http::StatusCode;
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, Grant, source, status};
use llmxt_domain::request_signature::{SignedRequest, sign};
use llmxt_store::store::{ClientProfile, Store};
use llmxt_testkit::faults::FaultProxy;
use llmxt_testkit::{
    ApiGatewayEvent, TEST_ENTITLEMENT_SECRET, TEST_HMAC_SECRET, fresh_store, hmac_secret,
    request_from_event, response_json,
};
use serde_json::{Value, json};

const NOW: i64 = 1_768_067_800;

fn names(operations: &[String]) -> Vec<String> {
    operations
        .iter()
        .map(|op| op.trim_start_matches("DynamoDB_20120810.").to_owned())
        .collect()
}

async fn grant(store: &Store, email: &str, plan: &str) {
    let mut entitlement = Entitlement::new(Email::parse(email).unwrap());
    let grant = Grant {
        key: format!("pay_{plan}"),
        source: source::PAYMENT.to_owned(),
        plan: plan.to_owned(),
        status: status::ACTIVE.to_owned(),
        ..Grant::default()
    };
    entitlement.grants.insert(grant.key.clone(), grant);
    store.put_entitlement(&entitlement).await.unwrap();
}

fn signed(method: &str, path: &str, query: &str, body: Option<String>) -> String {
    let target = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let bytes = body.clone().unwrap_or_default();
    let signature = sign(
        &hmac_secret(),
        NOW,
        SignedRequest {
            method,
            path_and_query: &target,
            body: bytes.as_bytes(),
        },
    );
    ApiGatewayEvent {
        method,
        path,
        query,
        headers: vec![
            ("x-llmxt-timestamp", NOW.to_string()),
            ("x-llmxt-signature", signature),
        ],
        cookies: vec![],
        body,
    }
    .to_json()
    .to_string()
}

#[tokio::test]
async fn usage_costs_the_fewest_round_trips() {
    let direct = fresh_store().await;
    grant(&direct, "limited@example.com", "professional").await;
    grant(&direct, "free.of.limits@example.com", "enterprise").await;
    let proxy = FaultProxy::start(
        llmxt_testkit::dynamodb_endpoint()
            .trim_start_matches("http://")
            .to_owned(),
    )
    .await;
    let mut config = direct.config().clone();
    config.endpoint = Some(proxy.endpoint());
    let store = Store::connect(&config, ClientProfile::patient()).await;
    let env = Env::from_pairs([
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("HMAC_SECRET", TEST_HMAC_SECRET),
        ("NEXT_PUBLIC_SITE_URL", "https://pro.example.com"),
        ("PLAN_LIMITS", "professional=tokens:100/month"),
    ]);
    let deps = entitlement::EntitlementDeps::new(EntitlementConfig::from_env(&env).unwrap(), store);
    let call = |event: String| {
        let deps = &deps;
        let proxy = &proxy;
        async move {
            proxy.take_operations();
            let response = entitlement::handle(deps, request_from_event(&event), NOW).await;
            (
                response.status(),
                response_json(&response),
                names(&proxy.take_operations()),
            )
        }
    };
    let reserve = |key: &str, amount: i64| {
        let body = json!({"email": "limited@example.com", "meter": "tokens", "amount": amount, "idempotency_key": key});
        signed("POST", "/api/usage/reserve", "", Some(body.to_string()))
    };

    let (status, held, ops) = call(reserve("k1", 60)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ops, ["BatchGetItem", "UpdateItem"], "reserve");
    let (status, _, ops) = call(reserve("k1", 60)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ops,
        ["BatchGetItem"],
        "repeated key: the first answer, from the read"
    );
    let (status, _, ops) = call(reserve("k2", 41)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(ops, ["BatchGetItem"], "over the limit: no write");
    let commit = json!({"reservation": held["reservation"], "amount": 10}).to_string();
    let (status, _, ops) = call(signed("POST", "/api/usage/commit", "", Some(commit))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ops, ["UpdateItem"], "commit");
    let (_, held, _) = call(reserve("k3", 5)).await;
    let release = json!({"reservation": held["reservation"]}).to_string();
    let (status, _, ops) = call(signed("POST", "/api/usage/release", "", Some(release))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ops, ["UpdateItem"], "release");

    let (_, answer, ops) = call(signed(
        "GET",
        "/api/entitlement",
        "email=limited%40example.com",
        None,
    ))
    .await;
    assert_eq!(answer["usage"]["tokens"]["used"], 10);
    assert_eq!(
        ops,
        ["GetItem", "BatchGetItem"],
        "a plan with limits: one more read"
    );
    let (_, answer, ops) = call(signed(
        "GET",
        "/api/entitlement",
        "email=free.of.limits%40example.com",
        None,
    ))
    .await;
    assert_eq!(answer["pro"], true);
    assert_eq!(answer.get("usage"), None::<&Value>);
    assert_eq!(ops, ["GetItem"], "a plan without limits: nothing more");
}
