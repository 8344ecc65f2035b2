//! Erasure stays erased (issue 34, item 6), black-box: `llmxt-admin forget` against DynamoDB
//! Local, then the webhook function fed signed deliveries and the success page confirming
//! through the Dodo stand-in. A purchase made before the erasure comes back pseudonymised,
//! without the address, Dodo's customer id or access; one made after it is Pro as usual; the
//! tombstone holds no address and no bare hash of it.
#![allow(clippy::unwrap_used)]

use lambda_http::{Body, Response};
use llmxt_admin::run;
use llmxt_domain::config::Env;
use llmxt_domain::crypto::hex_encode;
use llmxt_domain::email::Email;
use llmxt_domain::privacy::{PrivacyKey, Tombstone};
use llmxt_domain::time::{format_rfc3339, unix_now};
use llmxt_store::store::Store;
use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY, payment_object};
use llmxt_testkit::{
    ApiGatewayEvent, TEST_ENTITLEMENT_SECRET, dodo_body, fresh_store, function_env,
    request_from_event, response_json, response_text, scan_all, table_snapshot, webhook_event,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BUYER: &str = "erased.buyer@example.com";
const PRIVACY_KEY: &str = "privacy-key-for-tests-0123456789abcdef";

struct Site {
    store: Store,
    dodo: DodoStandIn,
    env: Env,
    webhook: webhook::WebhookDeps,
    success: success_redirect::SuccessDeps,
}

async fn site() -> Site {
    let store = fresh_store().await;
    let dodo = DodoStandIn::for_tests().await;
    let mut pairs: Vec<(String, String)> = function_env(&store)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    pairs.extend(
        [
            ("DODO_PAYMENTS_API_KEY", TEST_API_KEY),
            ("DODO_PAYMENTS_BASE_URL", dodo.base_url.as_str()),
            ("PRIVACY_KEY", PRIVACY_KEY),
            ("LLMXT_OPERATOR", "alice"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let env = Env::from_pairs(pairs);
    let webhook =
        webhook::WebhookDeps::connect(webhook::config::WebhookConfig::from_env(&env).unwrap())
            .await;
    let success = success_redirect::SuccessDeps::connect(
        success_redirect::config::SuccessConfig::from_env(&env).unwrap(),
    )
    .await;
    Site {
        store,
        dodo,
        env,
        webhook,
        success,
    }
}

fn email() -> Email {
    Email::parse(BUYER).unwrap()
}

fn pseudonym() -> String {
    PrivacyKey::new(PRIVACY_KEY).unwrap().pseudonym(&email())
}

/// A `payment.succeeded` body for the buyer, created `created_at` (unix seconds).
fn paid(payment_id: &str, created_at: i64, subscription_id: Option<&str>) -> String {
    dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(payment_id);
        v["data"]["customer"]["email"] = json!(BUYER);
        v["data"]["customer"]["customer_id"] = json!("cus_erased");
        v["data"]["subscription_id"] = json!(subscription_id);
        v["data"]["product_cart"] = json!([{ "product_id": "pdt_test", "quantity": 1 }]);
        v["data"]["metadata"] = json!({ "checkout_ref": "ref_erased" });
        v["data"]["created_at"] = json!(format_rfc3339(created_at));
    })
}

impl Site {
    async fn forget(&self) -> String {
        let args: Vec<String> = ["forget", BUYER, "--reason", "request 34-6"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let mut out = Vec::new();
        run(&args, &self.env, &mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Delivers `body` signed, as Dodo does; answers the JSON body.
    async fn deliver(&self, id: &str, body: &str) -> Value {
        let now = unix_now();
        let event = webhook_event(id, now, body, None).to_string();
        let response = webhook::handle(&self.webhook, request_from_event(&event), now).await;
        assert_eq!(response.status(), 200, "{}", response_text(&response));
        response_json(&response)
    }

    /// An anonymous visit of the success page (no cookie).
    async fn success_visit(&self, query: &str) -> Response<Body> {
        let event = ApiGatewayEvent {
            method: "GET",
            path: "/upgrade/success",
            query,
            headers: vec![],
            cookies: vec![],
            body: None,
        };
        success_redirect::handle(
            &self.success,
            request_from_event(&event.to_json().to_string()),
            unix_now(),
        )
        .await
    }

    async fn is_pro(&self) -> bool {
        self.store
            .get_entitlement(&email())
            .await
            .unwrap()
            .is_some_and(|e| e.is_pro(unix_now()))
    }

    /// Every item of the payments table, as text.
    async fn payments_table(&self) -> String {
        let table = self.store.config().payments_table.clone();
        format!("{:?}", scan_all(&self.store, &table).await)
    }
}

fn pro_cookie(response: &Response<Body>) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("llmxt_pro=") && !c.contains("llmxt_pro=;"))
        .map(str::to_owned)
}

#[tokio::test]
async fn a_late_first_delivery_of_a_payment_made_before_forget_grants_nothing_and_names_nobody() {
    let site = site().await;
    let now = unix_now();
    // Nothing of the buyer's is stored yet: the request came before the webhook.
    let printed = site.forget().await;
    assert!(printed.contains("tombstone recorded"), "{printed}");

    let answer = site
        .deliver("msg_late_pay", &paid("pay_before", now - 600, None))
        .await;
    assert_eq!(answer["outcome"], json!("processed"), "{answer}");
    assert!(!site.is_pro().await, "no access for the erased buyer");
    assert!(
        site.store
            .get_entitlement(&email())
            .await
            .unwrap()
            .is_none()
    );
    let payment = site.store.get_payment("pay_before").await.unwrap().unwrap();
    assert_eq!(
        (
            payment.email.as_ref(),
            payment.customer_id.as_deref(),
            payment.checkout_ref.as_deref(),
            payment.erased_as.clone(),
            payment.claim_expires_at,
        ),
        (None, None, None, Some(pseudonym()), None),
        "stored pseudonymised, as forget and reconcile do"
    );
    assert_eq!(
        (payment.status.as_str(), payment.total_amount.is_some()),
        ("succeeded", true),
        "the money is kept"
    );

    // A subscription created before the erasure, first delivered now: kept under the
    // pseudonym, no grant; its first payment likewise.
    let body = dodo_body("subscription.active.cli-generator", |v| {
        v["data"]["subscription_id"] = json!("sub_before");
        v["data"]["customer"]["email"] = json!(BUYER);
        v["data"]["customer"]["customer_id"] = json!("cus_erased");
        v["data"]["product_id"] = json!("pdt_test");
        v["data"]["next_billing_date"] = json!(format_rfc3339(now + 20 * 86_400));
        v["data"]["created_at"] = json!(format_rfc3339(now - 900));
    });
    site.deliver("msg_late_sub", &body).await;
    site.deliver(
        "msg_late_sub_pay",
        &paid("pay_sub_before", now - 900, Some("sub_before")),
    )
    .await;
    assert!(!site.is_pro().await);
    let stored = site
        .store
        .get_subscription("sub_before")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.email.as_ref(), stored.erased_as.clone()),
        (None, Some(pseudonym()))
    );

    let table = site.payments_table().await;
    assert!(!table.contains(BUYER), "{table}");
    assert!(!table.contains("cus_erased"), "{table}");
    assert!(!table.contains("ref_erased"), "{table}");
}

#[tokio::test]
async fn an_anonymous_success_visit_confirming_an_earlier_payment_gives_no_pro() {
    let site = site().await;
    let now = unix_now();
    site.dodo.add_payment(payment_object(
        "pay_confirmed_late",
        BUYER,
        "succeeded",
        "pdt_test",
        None,
        |p| p["created_at"] = json!(format_rfc3339(now - 300)),
    ));
    site.forget().await;

    let response = site.success_visit("payment_id=pay_confirmed_late").await;
    assert_eq!(
        site.dodo.take_requests(),
        ["GET /payments/pay_confirmed_late"],
        "confirmed through Dodo's API"
    );
    assert_eq!(pro_cookie(&response), None, "{:?}", response.headers());
    assert!(!site.is_pro().await);
    // The link is over, not pending: visiting again asks Dodo nothing more.
    assert!(
        response_text(&response).contains("This purchase link has expired"),
        "{}",
        response_text(&response)
    );
    let again = site.success_visit("payment_id=pay_confirmed_late").await;
    assert_eq!(pro_cookie(&again), None);
    assert!(site.dodo.take_requests().is_empty());
    let payment = site
        .store
        .get_payment("pay_confirmed_late")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            payment.email.as_ref(),
            payment.customer_id.as_deref(),
            payment.erased_as.clone()
        ),
        (None, None, Some(pseudonym()))
    );
    let table = site.payments_table().await;
    assert!(!table.contains(BUYER), "{table}");
}

#[tokio::test]
async fn a_purchase_made_after_forget_is_pro_as_usual() {
    let site = site().await;
    site.forget().await;
    let after = unix_now() + 5;
    // Bought in this very browser: no checkout binding to match.
    let mut body: Value = serde_json::from_str(&paid("pay_again", after, None)).unwrap();
    body["data"]["metadata"] = json!({});
    site.deliver("msg_again", &body.to_string()).await;
    assert!(site.is_pro().await, "the person bought again");
    let payment = site.store.get_payment("pay_again").await.unwrap().unwrap();
    assert_eq!(
        (
            payment.email.as_ref(),
            payment.customer_id.as_deref(),
            payment.erased_as.as_deref()
        ),
        (Some(&email()), Some("cus_erased"), None)
    );
    // And the success page hands the new buyer their cookie.
    let response = site.success_visit("payment_id=pay_again").await;
    assert!(pro_cookie(&response).is_some(), "{:?}", response.headers());

    // Through the API too: a purchase confirmed on the success page before its webhook.
    site.dodo.add_payment(payment_object(
        "pay_again_api",
        BUYER,
        "succeeded",
        "pdt_test",
        None,
        |p| p["created_at"] = json!(format_rfc3339(after + 1)),
    ));
    let response = site.success_visit("payment_id=pay_again_api").await;
    assert!(
        pro_cookie(&response).is_some(),
        "{}",
        response_text(&response)
    );
}

#[tokio::test]
async fn the_tombstone_holds_no_address_nor_a_bare_hash_of_it() {
    let site = site().await;
    site.deliver("msg_kept", &paid("pay_kept", unix_now() - 60, None))
        .await;
    site.forget().await;
    let table = site.store.config().payments_table.clone();
    let items = scan_all(&site.store, &table).await;
    let tombstones: Vec<_> = items
        .iter()
        .filter(|item| {
            item.get("record_type")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|t| t == "erasure_tombstone")
        })
        .collect();
    assert_eq!(tombstones.len(), 1, "one per ENTITLEMENT_SECRET key");
    let text = format!("{:?}", tombstones[0]);
    let bare = hex_encode(&Sha256::digest(BUYER.as_bytes()));
    assert!(
        !text.contains(BUYER) && !text.contains("erased.buyer"),
        "{text}"
    );
    assert!(
        !text.contains(&bare[..16]),
        "no bare SHA-256 of the address: {text}"
    );
    let key = tombstones[0]["payment_id"].as_s().unwrap();
    assert_eq!(
        key,
        &Tombstone::key(TEST_ENTITLEMENT_SECRET.as_bytes(), &email())
    );
    assert!(text.contains(&pseudonym()), "{text}");
    // And no item of the table holds the address or its bare hash.
    let all = format!("{items:?}");
    assert!(!all.contains(BUYER) && !all.contains(&bare[..16]), "{all}");

    // A second run changes nothing.
    let before = table_snapshot(&site.store, &table).await;
    let again = site.forget().await;
    assert!(again.contains("nothing changed"), "{again}");
    assert_eq!(before, table_snapshot(&site.store, &table).await);
}
