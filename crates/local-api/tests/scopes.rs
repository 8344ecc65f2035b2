//! Cookie scopes end to end, through the very routes a site uses (local-api → the handlers,
//! DynamoDB Local, the Dodo stand-in): a success link proves a purchase, not a mailbox.
#![allow(clippy::unwrap_used)]

use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::time::unix_now;
use llmxt_domain::token::Scope;
use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY};
use llmxt_testkit::{
    ApiGatewayEvent, dodo_body, fresh_store, function_env, request_from_event, response_json,
    response_text, token_signer, webhook_event,
};
use local_api::LocalApi;
use serde_json::json;

const VICTIM: &str = "victim@example.com";

struct Site {
    api: LocalApi,
    dodo: DodoStandIn,
}

async fn site() -> Site {
    let store = fresh_store().await;
    let dodo = DodoStandIn::for_tests().await;
    let mut pairs = function_env(&store);
    pairs.retain(|(name, _)| *name != "PRODUCT_PLANS");
    pairs.extend([
        (
            "PRODUCT_PLANS",
            "pdt_cheap=professional,pdt_big=enterprise".to_owned(),
        ),
        ("DODO_PAYMENTS_API_KEY", TEST_API_KEY.to_owned()),
        ("DODO_PAYMENTS_BASE_URL", dodo.base_url.clone()),
    ]);
    let api = LocalApi::from_env(&Env::from_pairs(pairs)).await.unwrap();
    Site { api, dodo }
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
            v["data"]["customer"]["email"] = json!(VICTIM);
            v["data"]["customer"]["customer_id"] = json!("cus_shared");
            v["data"]["product_cart"] = json!([{ "product_id": product, "quantity": 1 }]);
            v["data"]["created_at"] = json!(llmxt_domain::time::format_rfc3339(unix_now()));
        });
        self.deliver(&format!("msg_pay_{payment_id}"), &body).await;
    }

    async fn refund(&self, payment_id: &str) {
        let body = dodo_body("refund.succeeded.cli-generator", |v| {
            v["data"]["payment_id"] = json!(payment_id);
            v["data"]["refund_id"] = json!(format!("ref_{payment_id}"));
            v["data"]["customer"]["email"] = json!(VICTIM);
        });
        self.deliver(&format!("msg_refund_{payment_id}"), &body)
            .await;
    }

    async fn get(&self, path: &'static str, query: &str, cookies: &[String]) -> Response<Body> {
        let event = ApiGatewayEvent {
            method: "GET",
            path,
            query: Box::leak(query.to_owned().into_boxed_str()),
            headers: vec![],
            cookies: cookies.to_vec(),
            body: None,
        };
        self.api
            .route(request_from_event(&event.to_json().to_string()))
            .await
    }

    /// Redeems the success link of `payment_id` in a browser holding `cookies`; returns the
    /// new cookie (`name=token`).
    async fn claim(&self, payment_id: &str, cookies: &[String]) -> String {
        let response = self
            .get(
                "/upgrade/success",
                &format!("payment_id={payment_id}"),
                cookies,
            )
            .await;
        let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
        set_cookie.split(';').next().unwrap().to_owned()
    }

    async fn entitlement(&self, cookies: &[String]) -> serde_json::Value {
        response_json(&self.get("/api/entitlement", "", cookies).await)
    }
}

fn scope_of(cookie: &str) -> Scope {
    let token = cookie.split_once('=').unwrap().1;
    token_signer()
        .verify(token, unix_now())
        .unwrap()
        .claims
        .scope()
}

fn account_cookie() -> String {
    let token = token_signer().issue(
        &Email::parse(VICTIM).unwrap(),
        "professional",
        unix_now(),
        3600,
    );
    format!("__Host-llmxt_pro={token}")
}

#[tokio::test]
async fn a_strangers_purchase_in_the_victims_name_proves_only_itself() {
    let site = site().await;
    // The victim's own enterprise purchase, and a stranger's cheap one in the victim's name
    // (Dodo does not verify the email typed at checkout, and reuses the customer).
    site.pay("pay_victim", "pdt_big").await;
    site.pay("pay_stranger", "pdt_cheap").await;
    let stranger = site.claim("pay_stranger", &[]).await;
    assert!(stranger.starts_with("__Host-llmxt_pro="), "{stranger}");
    assert_eq!(
        scope_of(&stranger),
        Scope::Purchase(vec!["pay_stranger".to_owned()])
    );

    let answer = site.entitlement(std::slice::from_ref(&stranger)).await;
    assert_eq!(
        (&answer["pro"], &answer["plan"], &answer["scope"]),
        (&json!(true), &json!("professional"), &json!("purchase")),
        "only the purchase it proves, not the victim's enterprise grant: {answer}"
    );

    // The portal would show the victim's invoices and subscription: not for this cookie.
    let billing = site
        .get("/upgrade/billing", "", std::slice::from_ref(&stranger))
        .await;
    assert_eq!(billing.status(), 200);
    let html = response_text(&billing);
    assert!(
        html.contains("Sign in to manage billing") && html.contains("/upgrade/restore"),
        "{html}"
    );
    assert!(site.dodo.portal_sessions().is_empty(), "no portal opened");

    // The stranger's refund ends the stranger's access, whatever the email still holds.
    site.refund("pay_stranger").await;
    let answer = site.entitlement(std::slice::from_ref(&stranger)).await;
    assert_eq!(answer["pro"], json!(false), "{answer}");
    assert_eq!(answer["status"], json!("revoked"), "{answer}");

    // The mailbox's owner (sign-in link: an account cookie) sees every grant and may bill.
    let owner = account_cookie();
    let answer = site.entitlement(std::slice::from_ref(&owner)).await;
    assert_eq!(
        (&answer["pro"], &answer["plan"], &answer["scope"]),
        (&json!(true), &json!("enterprise"), &json!("account")),
        "{answer}"
    );
    let billing = site
        .get("/upgrade/billing", "", std::slice::from_ref(&owner))
        .await;
    assert_eq!(billing.status(), 303);
    assert_eq!(site.dodo.portal_sessions().len(), 1);
}

#[tokio::test]
async fn a_second_purchase_in_the_same_browser_joins_the_first() {
    let site = site().await;
    site.pay("pay_one", "pdt_cheap").await;
    site.pay("pay_two", "pdt_big").await;
    let first = site.claim("pay_one", &[]).await;
    let joined = site.claim("pay_two", std::slice::from_ref(&first)).await;
    assert_eq!(
        scope_of(&joined),
        Scope::Purchase(vec!["pay_one".to_owned(), "pay_two".to_owned()])
    );
    let answer = site.entitlement(std::slice::from_ref(&joined)).await;
    assert_eq!(answer["plan"], json!("enterprise"), "{answer}");
    // Covering every purchase of the email, it may open the portal.
    let billing = site
        .get("/upgrade/billing", "", std::slice::from_ref(&joined))
        .await;
    assert_eq!(billing.status(), 303, "{}", response_text(&billing));

    // An account cookie stays one when a claim is redeemed beside it.
    site.pay("pay_three", "pdt_cheap").await;
    let after_account = site.claim("pay_three", &[account_cookie()]).await;
    assert_eq!(scope_of(&after_account), Scope::Account);
    // Another email's cookie is not joined.
    let other = token_signer().issue(
        &Email::parse("someone.else@example.com").unwrap(),
        "professional",
        unix_now(),
        3600,
    );
    site.pay("pay_four", "pdt_cheap").await;
    let fresh = site
        .claim("pay_four", &[format!("__Host-llmxt_pro={other}")])
        .await;
    assert_eq!(
        scope_of(&fresh),
        Scope::Purchase(vec!["pay_four".to_owned()])
    );
}
