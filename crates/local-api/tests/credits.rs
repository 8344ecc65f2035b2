//! Credit packs end to end (docs/usage.md): signed webhooks of a pack's payment and refund
//! through local-api, then the signed usage API and `/api/entitlement`, against DynamoDB
//! Local. A pack adds credits and never a plan; credits are spent after the period's
//! allowance; a refund removes what is left of the pack and keeps what was used.
#![allow(clippy::unwrap_used)]

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::request_signature::{SignedRequest, sign};
use llmxt_domain::time::{format_rfc3339, unix_now};
use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY};
use llmxt_testkit::{
    ApiGatewayEvent, dodo_body, fresh_store, function_env, hmac_secret, request_from_event,
    response_json, response_text, webhook_event,
};
use local_api::LocalApi;
use serde_json::{Value, json};

const BUYER: &str = "credits@example.com";

struct Site {
    api: LocalApi,
    store: llmxt_store::store::Store,
    _dodo: DodoStandIn,
}

async fn site() -> Site {
    site_with("enterprise").await
}

async fn site_with(default_plan: &str) -> Site {
    let store = fresh_store().await;
    let dodo = DodoStandIn::for_tests().await;
    let mut pairs = function_env(&store);
    pairs.retain(|(name, _)| !matches!(*name, "PRODUCT_PLANS" | "DEFAULT_PLAN"));
    pairs.extend([
        ("PRODUCT_PLANS", "pdt_pro=professional".to_owned()),
        // A pack never grants, whatever the default plan for unlisted products says.
        ("DEFAULT_PLAN", default_plan.to_owned()),
        ("PRODUCT_CREDITS", "pdt_pack=tokens:500".to_owned()),
        ("PLAN_LIMITS", "professional=tokens:100/month".to_owned()),
        ("USAGE_DB_TIMEOUT_MS", "60000".to_owned()),
        ("ENTITLEMENT_DB_BUDGET_MS", "900".to_owned()),
        ("DODO_PAYMENTS_API_KEY", TEST_API_KEY.to_owned()),
        ("DODO_PAYMENTS_BASE_URL", dodo.base_url.clone()),
    ]);
    let api = LocalApi::from_env(&Env::from_pairs(pairs)).await.unwrap();
    Site {
        api,
        store,
        _dodo: dodo,
    }
}

impl Site {
    async fn deliver(&self, id: &str, body: &str) {
        let event = webhook_event(id, unix_now(), body, None).to_string();
        let response = self.api.route(request_from_event(&event)).await;
        assert_eq!(response.status(), 200, "{}", response_text(&response));
    }

    async fn pay(&self, payment_id: &str, product: &str) {
        let body = dodo_body("payment.succeeded.cli-generator", |v| {
            v["data"]["payment_id"] = json!(payment_id);
            v["data"]["customer"]["email"] = json!(BUYER);
            v["data"]["product_cart"] = json!([{ "product_id": product, "quantity": 1 }]);
            v["data"]["created_at"] = json!(format_rfc3339(unix_now()));
        });
        self.deliver(&format!("msg_pay_{payment_id}"), &body).await;
    }

    async fn refund(&self, payment_id: &str) {
        let body = dodo_body("refund.succeeded.cli-generator", |v| {
            v["data"]["payment_id"] = json!(payment_id);
            v["data"]["refund_id"] = json!(format!("ref_{payment_id}"));
            v["data"]["customer"]["email"] = json!(BUYER);
            v["data"]["created_at"] = json!(format_rfc3339(unix_now()));
        });
        self.deliver(&format!("msg_refund_{payment_id}"), &body)
            .await;
    }

    async fn signed(
        &self,
        method: &'static str,
        path: &'static str,
        query: &str,
        body: Option<Value>,
    ) -> Response<Body> {
        let now = unix_now();
        let body = body.map(|b| b.to_string());
        let target = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let signature = sign(
            &hmac_secret(),
            now,
            SignedRequest {
                method,
                path_and_query: &target,
                body: body.clone().unwrap_or_default().as_bytes(),
            },
        );
        let event = ApiGatewayEvent {
            method,
            path,
            query: Box::leak(query.to_owned().into_boxed_str()),
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("x-llmxt-timestamp", now.to_string()),
                ("x-llmxt-signature", signature),
            ],
            cookies: vec![],
            body,
        };
        self.api
            .route(request_from_event(&event.to_json().to_string()))
            .await
    }

    async fn usage(&self, path: &'static str, body: Value) -> (StatusCode, Value) {
        let response = self.signed("POST", path, "", Some(body)).await;
        (response.status(), response_json(&response))
    }

    async fn consume(&self, amount: i64, key: &str) -> (StatusCode, Value) {
        self.usage(
            "/api/usage/consume",
            json!({"email": BUYER, "meter": "tokens", "amount": amount, "idempotency_key": key}),
        )
        .await
    }

    async fn entitlement(&self) -> Value {
        let query = format!("email={}", BUYER.replace('@', "%40"));
        let response = self.signed("GET", "/api/entitlement", &query, None).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response_text(&response)
        );
        response_json(&response)
    }

    async fn tokens(&self) -> Value {
        self.entitlement().await["usage"]["tokens"].clone()
    }
}

#[tokio::test]
async fn a_pack_adds_credits_spent_after_the_allowance_and_a_refund_removes_the_rest() {
    let site = site().await;
    site.pay("pay_plan", "pdt_pro").await;
    site.pay("pay_pack", "pdt_pack").await;
    // A repeated delivery of the pack's payment adds nothing more.
    site.pay("pay_pack", "pdt_pack").await;
    let tokens = site.tokens().await;
    assert_eq!(
        (tokens["remaining"].clone(), tokens["credits"].clone()),
        (json!(100), json!(500)),
        "{tokens}"
    );

    // 150: the allowance's 100, then 50 credits.
    let (status, body) = site.consume(150, "job-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["remaining"].clone(), body["credits"].clone()),
        (json!(0), json!(450))
    );
    let tokens = site.tokens().await;
    assert_eq!(
        (tokens["used"].clone(), tokens["credits"].clone()),
        (json!(100), json!(450)),
        "{tokens}"
    );

    // A reservation drawn from credits gives them back when released, and keeps only what a
    // partial commit keeps.
    let (status, held) = site
        .usage(
            "/api/usage/reserve",
            json!({"email": BUYER, "meter": "tokens", "amount": 400, "idempotency_key": "job-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{held}");
    assert_eq!(site.tokens().await["credits"], json!(50));
    let (status, body) = site
        .usage(
            "/api/usage/commit",
            json!({"reservation": held["reservation"], "amount": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(site.tokens().await["credits"], json!(350));

    // More than allowance and credits together: 402, naming both, nothing written.
    let (status, body) = site.consume(351, "job-3").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(
        (body["remaining"].clone(), body["credits"].clone()),
        (json!(0), json!(350))
    );

    // The pack is refunded: what is left of it goes, what was used stays recorded.
    site.refund("pay_pack").await;
    let tokens = site.tokens().await;
    assert_eq!(tokens["credits"], json!(0), "{tokens}");
    let (status, _) = site.consume(1, "job-4").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let usage = site
        .store
        .usage_of(&Email::parse(BUYER).unwrap())
        .await
        .unwrap();
    let pack = &usage["tokens"].packs["pay_pack"];
    assert_eq!((pack.granted, pack.removed_left), (500, Some(350)));
    assert_eq!(pack.note.as_deref(), Some("refunded"));
    // The plan is untouched by the pack's refund.
    assert_eq!(site.entitlement().await["pro"], json!(true));
}

#[tokio::test]
async fn a_pack_alone_never_gives_pro_or_a_plan() {
    let site = site().await;
    site.pay("pay_only_pack", "pdt_pack").await;
    // The buyer comes back from checkout: the page says what was bought, and sets no cookie.
    let event = ApiGatewayEvent {
        method: "GET",
        path: "/upgrade/success",
        query: "payment_id=pay_only_pack&status=succeeded",
        headers: vec![],
        cookies: vec![],
        body: None,
    };
    let page = site
        .api
        .route(request_from_event(&event.to_json().to_string()))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(response_text(&page).contains("Your credits are added"));
    assert!(page.headers().get("set-cookie").is_none());
    let answer = site.entitlement().await;
    assert_eq!(answer["pro"], json!(false), "{answer}");
    // Without a plan, credits are not spendable: usage needs access.
    let (status, body) = site.consume(1, "k").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], json!("no_access"));
    let payment = site
        .store
        .get_payment("pay_only_pack")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(payment.plan, None);
}

#[tokio::test]
async fn a_refund_delivered_before_the_pack_payment_keeps_the_pack_removed() {
    let site = site().await;
    site.pay("pay_plan2", "pdt_pro").await;
    // Dodo's payment.succeeded for the pack is late; its refund arrives first.
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_late_pack");
        v["data"]["customer"]["email"] = json!(BUYER);
        v["data"]["product_cart"] = json!([{ "product_id": "pdt_pack", "quantity": 1 }]);
        v["data"]["created_at"] = json!(format_rfc3339(unix_now() - 60));
    });
    site.refund("pay_late_pack").await;
    site.deliver("msg_late_pack", &body).await;
    let tokens = site.tokens().await;
    assert_eq!(tokens["credits"], json!(0), "{tokens}");
    let usage = site
        .store
        .usage_of(&Email::parse(BUYER).unwrap())
        .await
        .unwrap();
    let pack = &usage["tokens"].packs["pay_late_pack"];
    assert!(pack.removed_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumes_spend_allowance_and_credits_exactly_once() {
    let site = std::sync::Arc::new(site().await);
    site.pay("pay_plan3", "pdt_pro").await;
    site.pay("pay_pack3", "pdt_pack").await;
    // 100 allowance + 500 credits = 600 units; 80 consumes of 10 race for them.
    let mut tasks = Vec::new();
    for i in 0..80 {
        let site = site.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcome = site.consume(10, &format!("race-{i}")).await;
            for _ in 0..20 {
                if outcome.0 != StatusCode::SERVICE_UNAVAILABLE {
                    break;
                }
                outcome = site.consume(10, &format!("race-{i}")).await;
            }
            outcome.0
        }));
    }
    let mut granted = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => granted += 1,
            StatusCode::PAYMENT_REQUIRED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    let tokens = site.tokens().await;
    assert_eq!(
        granted * 10,
        100 + 500 - tokens["credits"].as_i64().unwrap(),
        "{tokens}"
    );
    assert!(granted <= 60, "granted {granted}");
    assert_eq!(granted + refused, 80);
    assert_eq!(tokens["used"], json!(100));
    // Under contention a loser may be refused while units remain, never granted past them.
    assert!(granted >= 50, "only {granted} of 60 granted: {tokens}");
}

#[tokio::test]
async fn a_pro_buyer_buying_a_pack_goes_to_checkout_not_to_you_already_have_it() {
    // Unlisted products default to the buyer's own plan here: the pack must not read as it.
    let site = site_with("professional").await;
    site.pay("pay_plan4", "pdt_pro").await;
    let cookie = format!(
        "__Host-llmxt_pro={}",
        llmxt_testkit::token_signer().issue(
            &Email::parse(BUYER).unwrap(),
            "professional",
            unix_now(),
            3600
        )
    );
    let event = ApiGatewayEvent {
        method: "GET",
        path: "/upgrade/checkout",
        query: "product=pdt_pack",
        headers: vec![],
        cookies: vec![cookie],
        body: None,
    };
    let response = site
        .api
        .route(request_from_event(&event.to_json().to_string()))
        .await;
    assert!(
        response.status().is_redirection(),
        "{}: {}",
        response.status(),
        response_text(&response)
    );
}
