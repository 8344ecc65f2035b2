//! A plan that is not a configured paid plan (`PLAN_RANKING`, less `free`) never gives Pro,
//! whatever the item says; such an item is logged once per read. Against DynamoDB Local.
#![allow(clippy::unwrap_used)]

use entitlement::config::EntitlementConfig;
use entitlement::{EntitlementDeps, handle};
use lambda_http::http::StatusCode;
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, source, status};
use llmxt_domain::request_signature::{SignedRequest, sign};
use llmxt_testkit::logs::LogCapture;
use llmxt_testkit::{
    ApiGatewayEvent, EVENTS_TIME, TEST_ENTITLEMENT_SECRET, TEST_HMAC_SECRET, TEST_SITE,
    fresh_store, hmac_secret, request_from_event, response_json,
};

const NOW: i64 = EVENTS_TIME + 60;

fn config(extra: &[(&str, &str)]) -> EntitlementConfig {
    let mut pairs = vec![
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("HMAC_SECRET", TEST_HMAC_SECRET),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE),
    ];
    pairs.extend_from_slice(extra);
    EntitlementConfig::from_env(&Env::from_pairs(pairs)).unwrap()
}

async fn deps(extra: &[(&str, &str)]) -> EntitlementDeps {
    EntitlementDeps::new(config(extra), fresh_store().await)
}

/// An item as an import, a hand edit or another system leaves it: active, no end.
async fn stored(deps: &EntitlementDeps, email: &str, plan: &str) {
    let entitlement = Entitlement {
        status: status::ACTIVE.to_owned(),
        plan: plan.to_owned(),
        source: source::PAYMENT.to_owned(),
        payment_id: Some(format!("pay_{plan}")),
        updated_at: NOW - 60,
        ..Entitlement::new(Email::parse(email).unwrap())
    };
    deps.store.put_entitlement(&entitlement).await.unwrap();
}

/// `/api/entitlement?email=…`, signed by the site's server.
async fn by_email(deps: &EntitlementDeps, email: &str) -> serde_json::Value {
    let query = format!("email={}", email.replace('@', "%40"));
    let signature = sign(
        &hmac_secret(),
        NOW,
        SignedRequest {
            method: "GET",
            path_and_query: &format!("/api/entitlement?{query}"),
            body: b"",
        },
    );
    let event = ApiGatewayEvent {
        method: "GET",
        path: "/api/entitlement",
        query: &query,
        headers: vec![
            ("x-llmxt-timestamp", NOW.to_string()),
            ("x-llmxt-signature", signature),
        ],
        cookies: vec![],
        body: None,
    }
    .to_json()
    .to_string();
    let response = handle(deps, request_from_event(&event), NOW).await;
    assert_eq!(response.status(), StatusCode::OK);
    response_json(&response)
}

fn unconfigured_lines(capture: &LogCapture) -> Vec<serde_json::Value> {
    capture
        .lines()
        .into_iter()
        .filter(|line| line["fields"]["outcome"] == "unconfigured_plan")
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_plan_that_is_not_a_configured_paid_plan_never_gives_pro() {
    let (capture, _guard) = LogCapture::start();
    let deps = deps(&[]).await;
    stored(&deps, "gold@example.com", "gold").await;
    stored(&deps, "free@example.com", "free").await;
    stored(&deps, "pro@example.com", "professional").await;

    let gold = by_email(&deps, "gold@example.com").await;
    assert_eq!(gold["pro"], false, "{gold}");
    let lines = unconfigured_lines(&capture);
    assert_eq!(lines.len(), 1, "one line per item read: {lines:?}");
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(lines[0]["fields"]["plans"], "[\"gold\"]");
    assert!(
        !capture.text().contains("gold@example.com"),
        "the address is masked"
    );

    assert_eq!(by_email(&deps, "free@example.com").await["pro"], false);
    assert_eq!(by_email(&deps, "pro@example.com").await["pro"], true);
    // Read again: still no Pro, and not logged again (once per item).
    assert_eq!(by_email(&deps, "gold@example.com").await["pro"], false);
    assert_eq!(
        unconfigured_lines(&capture).len(),
        1,
        "free and configured plans are not logged, and an item is logged once"
    );
}

#[tokio::test]
async fn a_plan_listed_in_plan_ranking_gives_pro() {
    let deps = deps(&[("PLAN_RANKING", "free,professional,gold")]).await;
    stored(&deps, "gold@example.com", "gold").await;
    let gold = by_email(&deps, "gold@example.com").await;
    assert_eq!(gold["pro"], true, "{gold}");
    assert_eq!(gold["plan"], "gold");
}

#[tokio::test]
async fn a_cookie_naming_an_unconfigured_plan_does_not_answer_pro_alone_in_an_outage() {
    let deps = EntitlementDeps::new(
        config(&[("REQUIRE_HMAC_SIGNATURE", "false")]),
        llmxt_testkit::unreachable_store(std::time::Duration::from_millis(300)).await,
    );
    let ask = |plan: &str| {
        let token = llmxt_testkit::token_signer().issue(
            &Email::parse("buyer@example.com").unwrap(),
            plan,
            NOW,
            86_400,
        );
        ApiGatewayEvent {
            method: "GET",
            path: "/api/entitlement",
            query: "",
            headers: vec![],
            cookies: vec![format!("__Host-llmxt_pro={token}")],
            body: None,
        }
        .to_json()
        .to_string()
    };
    let professional = handle(&deps, request_from_event(&ask("professional")), NOW).await;
    let answer = response_json(&professional);
    assert_eq!(
        (answer["pro"].clone(), answer["source"].clone()),
        (true.into(), "cookie".into()),
        "{answer}"
    );
    let gold = handle(&deps, request_from_event(&ask("gold")), NOW).await;
    assert_eq!(
        response_json(&gold)["pro"],
        false,
        "{}",
        response_json(&gold)
    );
}
