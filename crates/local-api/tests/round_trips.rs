//! DynamoDB round trips per request, counted through a proxy in front of DynamoDB Local:
//! a delivery reads everything it needs in one batched request and writes once (2), a
//! duplicate is recognised by the read alone (1), the success page redeems in one
//! conditional update (1) and the entitlement check reads one item (1).
#![allow(clippy::unwrap_used)]

use entitlement::config::EntitlementConfig;
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_store::store::{ClientProfile, Store};
use llmxt_testkit::faults::FaultProxy;
use llmxt_testkit::{
    ApiGatewayEvent, TEST_ENTITLEMENT_SECRET, TEST_WEBHOOK_SECRET, dodo_body, fresh_store,
    request_from_event, response_text, webhook_event,
};
use serde_json::json;
use success_redirect::config::SuccessConfig;
use webhook::config::WebhookConfig;

const NOW: i64 = 1_768_067_800;

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

struct Counted {
    proxy: FaultProxy,
    webhook: webhook::WebhookDeps,
    success: success_redirect::SuccessDeps,
    entitlement: entitlement::EntitlementDeps,
}

async fn counted() -> Counted {
    let direct = fresh_store().await;
    let proxy = FaultProxy::start(
        llmxt_testkit::dynamodb_endpoint()
            .trim_start_matches("http://")
            .to_owned(),
    )
    .await;
    let mut config = direct.config().clone();
    config.endpoint = Some(proxy.endpoint());
    let store = Store::connect(&config, ClientProfile::patient()).await;
    let secrets = [
        ("DODO_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET),
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("NEXT_PUBLIC_SITE_URL", "https://pro.example.com"),
        ("REQUIRE_HMAC_SIGNATURE", "false"),
        ("PLAN_FEATURES", "professional=export,api"),
    ];
    Counted {
        webhook: webhook::WebhookDeps::new(
            WebhookConfig::from_env(&env(&secrets)).unwrap(),
            store.clone(),
        ),
        success: success_redirect::SuccessDeps::new(
            SuccessConfig::from_env(&env(&secrets)).unwrap(),
            store.clone(),
        ),
        entitlement: entitlement::EntitlementDeps::new(
            EntitlementConfig::from_env(&env(&secrets)).unwrap(),
            store,
        ),
        proxy,
    }
}

impl Counted {
    async fn deliver(&self, id: &str, body: &str) -> Vec<String> {
        self.proxy.take_operations();
        let event = webhook_event(id, NOW, body, None);
        let response =
            webhook::handle(&self.webhook, request_from_event(&event.to_string()), NOW).await;
        assert_eq!(response.status(), 200, "{}", response_text(&response));
        self.proxy.take_operations()
    }
}

fn names(operations: &[String]) -> Vec<&str> {
    operations
        .iter()
        .map(|op| op.trim_start_matches("DynamoDB_20120810."))
        .collect()
}

#[tokio::test]
async fn each_request_costs_the_fewest_round_trips() {
    let counted = counted().await;
    let payment = dodo_body("payment.succeeded.cli-generator", |_| {});
    let ops = counted.deliver("msg_pay", &payment).await;
    assert_eq!(
        names(&ops),
        ["BatchGetItem", "TransactWriteItems"],
        "new payment"
    );
    let ops = counted.deliver("msg_pay", &payment).await;
    assert_eq!(names(&ops), ["BatchGetItem"], "duplicate");
    let subscription = dodo_body("subscription.active.cli-generator", |_| {});
    let ops = counted.deliver("msg_sub", &subscription).await;
    assert_eq!(
        names(&ops),
        ["BatchGetItem", "TransactWriteItems"],
        "subscription"
    );
    let renewal = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_renewal");
        v["data"]["subscription_id"] = json!("sub_test");
    });
    let ops = counted.deliver("msg_renewal", &renewal).await;
    assert_eq!(
        names(&ops),
        ["BatchGetItem", "TransactWriteItems"],
        "renewal"
    );
    let plan_changed = dodo_body("subscription.active.cli-generator", |v| {
        v["type"] = json!("subscription.plan_changed");
        v["data"]["scheduled_change"] = json!({
            "id": "spc_1", "addons": [], "created_at": "2026-01-10T17:56:00Z",
            "effective_at": "2026-02-10T17:55:53Z", "product_id": "pdt_other", "quantity": 1,
        });
    });
    let ops = counted.deliver("msg_plan_changed", &plan_changed).await;
    assert_eq!(
        names(&ops),
        ["BatchGetItem", "TransactWriteItems"],
        "plan change"
    );

    // The success page by payment id: one conditional update, whether it wins or not.
    for expected_cookie in [true, false] {
        counted.proxy.take_operations();
        let request = ApiGatewayEvent {
            method: "GET",
            path: "/upgrade/success",
            query: "payment_id=pay_test",
            headers: vec![],
            cookies: vec![],
            body: None,
        }
        .to_json()
        .to_string();
        let response =
            success_redirect::handle(&counted.success, request_from_event(&request), NOW).await;
        assert_eq!(
            response.headers().contains_key("set-cookie"),
            expected_cookie
        );
        assert_eq!(names(&counted.proxy.take_operations()), ["UpdateItem"]);
    }

    // The entitlement check: one read.
    let token = llmxt_testkit::token_signer().issue(
        &Email::parse("john.doe@example.com").unwrap(),
        "professional",
        NOW,
        3600,
    );
    let request = ApiGatewayEvent {
        method: "GET",
        path: "/api/entitlement",
        query: "",
        headers: vec![],
        cookies: vec![format!("__Host-llmxt_pro={token}")],
        body: None,
    }
    .to_json()
    .to_string();
    let response =
        entitlement::handle(&counted.entitlement, request_from_event(&request), NOW).await;
    assert!(response_text(&response).contains("\"pro\":true"));
    assert!(response_text(&response).contains("\"features\":[\"api\",\"export\"]"));
    assert_eq!(names(&counted.proxy.take_operations()), ["GetItem"]);

    // A refund of a stored payment: still one read and one write.
    let refund = dodo_body("refund.succeeded.cli-generator", |_| {});
    let ops = counted.deliver("msg_refund", &refund).await;
    assert_eq!(
        names(&ops),
        ["BatchGetItem", "TransactWriteItems"],
        "refund"
    );
}
