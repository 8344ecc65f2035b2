//! A database outage does not stop sales: with DynamoDB Local behind a fault proxy that
//! refuses or black-holes it, checkout still sends the buyer to Dodo's checkout, counted in
//! the instance's memory under the same per-IP limit; once the proxy passes again, counting is
//! back in DynamoDB.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_store::config::StoreConfig;
use llmxt_store::store::{ClientProfile, Store};
use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY};
use llmxt_testkit::faults::{FaultProxy, ProxyMode};
use llmxt_testkit::logs::LogCapture;
use llmxt_testkit::{
    ApiGatewayEvent, TEST_ENTITLEMENT_SECRET, request_from_event, scan_all, unique_store_config,
};
use serde_json::json;
use success_redirect::config::SuccessConfig;
use success_redirect::{SuccessDeps, handle};

/// The start of an hour, so every checkout shares one per-IP window.
const NOW: i64 = 500_000 * 3600;

struct Setup {
    deps: SuccessDeps,
    dodo: DodoStandIn,
    proxy: FaultProxy,
    payments_table: String,
}

/// Checkout with `CHECKOUTS_PER_HOUR_PER_IP=2`, its database behind a fault proxy, each
/// database call bounded by `budget` as the function's are.
async fn setup(budget: Duration) -> Setup {
    let proxy = FaultProxy::for_dynamodb().await;
    let store_config = StoreConfig {
        endpoint: Some(proxy.endpoint()),
        ..unique_store_config()
    };
    Store::connect(&store_config, ClientProfile::patient())
        .await
        .create_tables()
        .await
        .unwrap();
    let store = Store::connect(&store_config, ClientProfile::within(budget)).await;
    let dodo = DodoStandIn::for_tests().await;
    let config = SuccessConfig::from_env(&Env::from_pairs([
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("NEXT_PUBLIC_SITE_URL", "https://pro.example.com"),
        ("PRODUCT_PLANS", "pdt_test=professional"),
        ("DODO_PAYMENTS_API_KEY", TEST_API_KEY),
        ("DODO_PAYMENTS_BASE_URL", dodo.base_url.as_str()),
        ("CHECKOUTS_PER_HOUR_PER_IP", "2"),
    ]))
    .unwrap();
    Setup {
        deps: SuccessDeps::new(config, store),
        dodo,
        proxy,
        payments_table: store_config.payments_table,
    }
}

async fn checkout(deps: &SuccessDeps, source_ip: &str) -> Response<Body> {
    checkout_at(deps, source_ip, NOW).await
}

async fn checkout_at(deps: &SuccessDeps, source_ip: &str, now: i64) -> Response<Body> {
    checkout_with(deps, source_ip, now, vec![]).await
}

async fn checkout_with(
    deps: &SuccessDeps,
    source_ip: &str,
    now: i64,
    cookies: Vec<String>,
) -> Response<Body> {
    let mut event = ApiGatewayEvent {
        method: "GET",
        path: "/upgrade/checkout",
        query: "product=pdt_test",
        headers: vec![],
        cookies,
        body: None,
    }
    .to_json();
    event["requestContext"]["http"]["sourceIp"] = json!(source_ip);
    handle(deps, request_from_event(&event.to_string()), now).await
}

/// The buyer is sent to the stand-in's checkout page.
fn to_dodo(setup: &Setup, response: &Response<Body>, what: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{what}");
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{}/checkout/", setup.dodo.base_url)),
        "{what}: {location}"
    );
}

fn refused(response: &Response<Body>, what: &str) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    assert!(response.headers().get("location").is_none(), "{what}");
}

/// The per-IP checkout counts stored in DynamoDB, sorted.
async fn stored_ip_counts(setup: &Setup) -> Vec<i64> {
    let mut counts: Vec<i64> = scan_all(&setup.deps.store, &setup.payments_table)
        .await
        .iter()
        .filter(|item| {
            item["payment_id"]
                .as_s()
                .is_ok_and(|key| key.starts_with("limit#checkout_ip#"))
        })
        .map(|item| item["count"].as_n().unwrap().parse().unwrap())
        .collect();
    counts.sort_unstable();
    counts
}

#[tokio::test(flavor = "current_thread")]
async fn checkout_sells_through_a_database_outage_within_the_per_ip_limit() {
    let (captured, _guard) = LogCapture::start();
    let setup = setup(Duration::from_secs(2)).await;
    let deps = &setup.deps;

    to_dodo(&setup, &checkout(deps, "198.51.100.1").await, "before");
    assert_eq!(stored_ip_counts(&setup).await, [1]);

    // The database refuses every connection: sales go on, under the same per-IP limit.
    setup.proxy.set(ProxyMode::Refuse);
    for n in 1..=2 {
        let response = checkout(deps, "198.51.100.2").await;
        to_dodo(&setup, &response, &format!("checkout {n} in the outage"));
    }
    refused(
        &checkout(deps, "198.51.100.2").await,
        "past the limit, counted in memory",
    );
    to_dodo(
        &setup,
        &checkout(deps, "198.51.100.3").await,
        "another buyer in the outage",
    );
    assert_eq!(setup.dodo.checkouts().len(), 4);
    let warned: Vec<serde_json::Value> = captured
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["outcome"] == "counted_in_memory")
        .collect();
    assert!(
        warned
            .iter()
            .all(|l| l["level"] == "WARN" && l["fields"].get("email").is_none()),
        "{warned:?}"
    );
    // The refused checkout asked for no session, so it took nothing from the Dodo budget.
    for (scope, checkouts) in [("checkout_ip", 4), ("dodo_api_checkout", 3)] {
        assert_eq!(
            warned
                .iter()
                .filter(|l| l["fields"]["scope"] == scope)
                .count(),
            checkouts,
            "one warning per count for {scope}: {warned:?}"
        );
    }

    // Back, a second later: counting is in DynamoDB again (the memory's count of .2 is past
    // the limit; the table's is not), and nothing was stored for the outage's checkouts.
    setup.proxy.set(ProxyMode::Pass);
    setup.proxy.take_operations();
    to_dodo(
        &setup,
        &checkout_at(deps, "198.51.100.2", NOW + 1).await,
        "after the outage",
    );
    assert_eq!(stored_ip_counts(&setup).await, [1, 1]);
    assert!(
        setup
            .proxy
            .take_operations()
            .iter()
            .any(|op| op.ends_with(".UpdateItem"))
    );
    assert_eq!(setup.dodo.checkouts().len(), 5);
}

#[tokio::test]
async fn checkout_sells_while_the_database_does_not_answer() {
    let setup = setup(Duration::from_millis(400)).await;
    setup.proxy.set(ProxyMode::Blackhole);
    let started = std::time::Instant::now();
    to_dodo(
        &setup,
        &checkout(&setup.deps, "198.51.100.9").await,
        "black-holed database",
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_checkout_with_a_cookie_waits_for_a_silent_database_once() {
    let (captured, _guard) = LogCapture::start();
    let setup = setup(Duration::from_millis(400)).await;
    setup.proxy.set(ProxyMode::Blackhole);
    // A signed-in buyer: checkout first reads whether they already have the plan.
    let token = llmxt_testkit::token_signer().issue(
        &llmxt_domain::email::Email::parse("buyer@example.com").unwrap(),
        "professional",
        NOW,
        86_400,
    );
    let response = checkout_with(
        &setup.deps,
        "198.51.100.10",
        NOW,
        vec![format!("__Host-llmxt_pro={token}")],
    )
    .await;
    to_dodo(&setup, &response, "signed in, black-holed database");
    let counted: Vec<serde_json::Value> = captured
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["outcome"] == "counted_in_memory")
        .collect();
    assert_eq!(counted.len(), 2, "{counted:?}");
    assert!(
        counted
            .iter()
            .all(|l| l["fields"]["error"] == "the database failed earlier in this second"),
        "the read's timeout was the only wait: {counted:?}"
    );
}
