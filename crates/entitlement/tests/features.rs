//! `features` and `billing` in the entitlement answer, against DynamoDB Local: the union of
//! the features of every grant giving access (`PLAN_FEATURES`), the shown grant's billing
//! state, and on a fail-open answer the cookie plan's features without billing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use entitlement::config::EntitlementConfig;
use entitlement::{EntitlementDeps, handle};
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, Grant, source, status};
use llmxt_domain::time::format_rfc3339;
use llmxt_domain::token::EntitlementClaims;
use llmxt_testkit::{
    ApiGatewayEvent, EVENTS_TIME, TEST_ENTITLEMENT_SECRET, TEST_SITE, fresh_store,
    request_from_event, response_json, unreachable_store,
};
use serde_json::{Value, json};

const NOW: i64 = EVENTS_TIME + 60;

fn config() -> EntitlementConfig {
    EntitlementConfig::from_env(&Env::from_pairs([
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("REQUIRE_HMAC_SIGNATURE", "false"),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE),
        (
            "PLAN_FEATURES",
            "professional=export,api;enterprise=export,api,sso",
        ),
    ]))
    .unwrap()
}

async fn ask(deps: &EntitlementDeps, email: &str) -> Value {
    ask_scoped(deps, email, None).await
}

/// With a purchase cookie covering `grants` (an account cookie when `None`).
async fn ask_scoped(deps: &EntitlementDeps, email: &str, grants: Option<&[&str]>) -> Value {
    let token = llmxt_testkit::token_signer().encode(&EntitlementClaims {
        email: email.to_owned(),
        plan: "professional".to_owned(),
        iat: NOW,
        exp: NOW + 3600,
        aud: TEST_SITE.to_owned(),
        auth_time: Some(NOW),
        grants: grants.map(|keys| keys.iter().map(|k| (*k).to_owned()).collect()),
    });
    let event = ApiGatewayEvent {
        method: "GET",
        path: "/api/entitlement",
        query: "",
        headers: vec![],
        cookies: vec![format!("llmxt_pro={token}")],
        body: None,
    };
    let response = handle(deps, request_from_event(&event.to_json().to_string()), NOW).await;
    assert_eq!(response.status(), 200);
    response_json(&response)
}

fn grant(key: &str, source: &str, plan: &str, edit: impl FnOnce(&mut Grant)) -> Grant {
    let mut grant = Grant {
        key: key.to_owned(),
        source: source.to_owned(),
        plan: plan.to_owned(),
        status: status::ACTIVE.to_owned(),
        updated_at: NOW,
        ..Grant::default()
    };
    edit(&mut grant);
    grant
}

async fn store_grants(deps: &EntitlementDeps, email: &str, grants: Vec<Grant>) {
    let mut entitlement = Entitlement::new(Email::parse(email).unwrap());
    entitlement.grants = grants
        .into_iter()
        .map(|g| (g.key.clone(), g))
        .collect::<BTreeMap<_, _>>();
    entitlement.summarise(NOW, &deps.config.ranking);
    deps.store.put_entitlement(&entitlement).await.unwrap();
}

#[tokio::test]
async fn features_are_the_union_and_billing_follows_the_shown_grant() {
    let deps = EntitlementDeps::new(config(), fresh_store().await);
    let period_end = NOW + 10 * 86_400;
    store_grants(
        &deps,
        "both@example.com",
        vec![
            grant("pay_1", source::PAYMENT, "professional", |_| {}),
            grant("sub_1", source::SUBSCRIPTION, "enterprise", |g| {
                g.subscription_id = Some("sub_1".to_owned());
                g.expires_at = Some(period_end + 3 * 86_400);
                g.period_end = Some(period_end);
                g.subscription_status = Some("past_due".to_owned());
                g.scheduled_plan = Some("professional".to_owned());
                g.scheduled_at = Some(period_end);
            }),
        ],
    )
    .await;
    let answer = ask(&deps, "both@example.com").await;
    assert_eq!(answer["plan"], "enterprise");
    assert_eq!(answer["features"], json!(["api", "export", "sso"]));
    assert_eq!(
        answer["billing"],
        json!({
            "state": "past_due",
            "ends_at": format_rfc3339(period_end + 3 * 86_400),
            "scheduled_plan": "professional",
            "scheduled_at": format_rfc3339(period_end),
        })
    );

    // A purchase cookie proving only the one-time purchase: its features and billing alone.
    let scoped = ask_scoped(&deps, "both@example.com", Some(&["pay_1"])).await;
    assert_eq!(scoped["scope"], "purchase");
    assert_eq!(scoped["plan"], "professional");
    assert_eq!(scoped["features"], json!(["api", "export"]));
    assert_eq!(scoped["billing"]["state"], "lifetime");

    store_grants(
        &deps,
        "lifetime@example.com",
        vec![grant("pay_2", source::PAYMENT, "professional", |_| {})],
    )
    .await;
    let answer = ask(&deps, "lifetime@example.com").await;
    assert_eq!(answer["features"], json!(["api", "export"]));
    assert_eq!(
        answer["billing"],
        json!({ "state": "lifetime", "scheduled_plan": null })
    );

    store_grants(
        &deps,
        "refunded@example.com",
        vec![grant("pay_3", source::PAYMENT, "enterprise", |g| {
            g.status = status::REVOKED.to_owned();
        })],
    )
    .await;
    let answer = ask(&deps, "refunded@example.com").await;
    assert_eq!(answer["pro"], false);
    assert_eq!(answer["features"], json!([]));
    assert_eq!(answer["billing"]["state"], "revoked");

    let answer = ask(&deps, "nobody@example.com").await;
    assert_eq!(answer["features"], json!([]));
    assert_eq!(answer["billing"], Value::Null);
}

#[tokio::test]
async fn a_fail_open_answer_gives_the_cookie_plans_features_and_no_billing() {
    let store = unreachable_store(std::time::Duration::from_millis(300)).await;
    let deps = EntitlementDeps::new(config(), store);
    let answer = ask(&deps, "offline@example.com").await;
    assert_eq!(answer["source"], "cookie");
    assert_eq!(answer["features"], json!(["export", "api"]));
    assert_eq!(answer["billing"], Value::Null);
}
