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
    store: llmxt_store::store::Store,
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
    Site { api, dodo, store }
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
            // A refund revokes as of its own time: this one happens now.
            v["data"]["created_at"] = json!(llmxt_domain::time::format_rfc3339(
                llmxt_domain::time::unix_now()
            ));
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

    async fn post_form(
        &self,
        path: &'static str,
        query: &str,
        body: &str,
        origin: &str,
        cookies: &[String],
    ) -> Response<Body> {
        let event = ApiGatewayEvent {
            method: "POST",
            path,
            query: Box::leak(query.to_owned().into_boxed_str()),
            headers: vec![
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("origin", origin.to_owned()),
            ],
            cookies: cookies.to_vec(),
            body: Some(body.to_owned()),
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
    // Even covering every purchase stored here, a purchase cookie does not open Dodo's
    // portal (issue 34, item 1): the customer may have purchases stored nowhere here (a lost
    // webhook, another product), and Dodo attached them by an unverified email.
    let billing = site
        .get("/upgrade/billing", "", std::slice::from_ref(&joined))
        .await;
    assert_eq!(billing.status(), 200, "{}", response_text(&billing));
    let html = response_text(&billing);
    assert!(
        html.contains("Sign in to manage billing") && html.contains("/upgrade/restore"),
        "{html}"
    );
    assert!(site.dodo.portal_sessions().is_empty(), "no portal opened");

    // An account cookie stays one when a claim is redeemed beside it.
    site.pay("pay_three", "pdt_cheap").await;
    let after_account = site.claim("pay_three", &[account_cookie()]).await;
    assert_eq!(scope_of(&after_account), Scope::Account);
    // Another email's cookie is not joined: and it is not silently replaced either (login
    // CSRF, issue 34 item 7). The page asks, and a same-origin POST switches.
    let other = token_signer().issue(
        &Email::parse("someone.else@example.com").unwrap(),
        "professional",
        unix_now(),
        3600,
    );
    let held = format!("__Host-llmxt_pro={other}");
    site.pay("pay_four", "pdt_cheap").await;
    let prompt = site
        .get(
            "/upgrade/success",
            "payment_id=pay_four",
            std::slice::from_ref(&held),
        )
        .await;
    assert_eq!(prompt.status(), 200);
    assert!(
        prompt.headers().get("set-cookie").is_none(),
        "nothing replaced"
    );
    let html = response_text(&prompt);
    assert!(
        html.contains("Switch to the account that just paid?")
            && html
                .contains("<form method=\"post\" action=\"/upgrade/success?payment_id=pay_four\">"),
        "{html}"
    );
    // A cross-site POST does not switch either.
    let cross = site
        .post_form(
            "/upgrade/success",
            "payment_id=pay_four",
            "switch=1",
            "https://evil.example",
            std::slice::from_ref(&held),
        )
        .await;
    assert_eq!(cross.status(), 403, "{}", response_text(&cross));
    assert!(cross.headers().get("set-cookie").is_none());
    let switched = site
        .post_form(
            "/upgrade/success",
            "payment_id=pay_four",
            "switch=1",
            llmxt_testkit::TEST_SITE,
            std::slice::from_ref(&held),
        )
        .await;
    assert_eq!(switched.status(), 302, "{}", response_text(&switched));
    let fresh = switched.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        scope_of(&fresh),
        Scope::Purchase(vec!["pay_four".to_owned()])
    );
    // The same when the webhook has not come and the purchase is confirmed through Dodo's
    // API on this visit.
    site.dodo.add_payment(llmxt_testkit::dodo::payment_object(
        "pay_late",
        VICTIM,
        "succeeded",
        "pdt_cheap",
        None,
        |p| p["created_at"] = json!(llmxt_domain::time::format_rfc3339(unix_now() - 30)),
    ));
    let prompt = site
        .get(
            "/upgrade/success",
            "payment_id=pay_late",
            std::slice::from_ref(&held),
        )
        .await;
    assert_eq!(prompt.status(), 200, "{}", response_text(&prompt));
    assert!(
        prompt.headers().get("set-cookie").is_none(),
        "nothing replaced"
    );
    assert!(response_text(&prompt).contains("Switch to the account that just paid?"));
    // Without a cookie of another email, nothing is asked.
    site.pay("pay_five", "pdt_cheap").await;
    let plain = site.claim("pay_five", &[]).await;
    assert_eq!(
        scope_of(&plain),
        Scope::Purchase(vec!["pay_five".to_owned()])
    );
}

/// Issue 34, item 1: Dodo's portal opens only for an account cookie; a purchase cookie, even
/// one whose refund is recent and which covers all the email holds here, gets the sign-in
/// offer, while `/upgrade/plan` keeps letting it change the subscription it proves.
#[tokio::test]
async fn only_an_account_cookie_opens_the_portal() {
    let site = site().await;
    site.pay("pay_only", "pdt_cheap").await;
    let purchase = site.claim("pay_only", &[]).await;
    assert_eq!(
        scope_of(&purchase),
        Scope::Purchase(vec!["pay_only".to_owned()])
    );
    for _ in 0..3 {
        let billing = site
            .get("/upgrade/billing", "", std::slice::from_ref(&purchase))
            .await;
        assert_eq!(billing.status(), 200);
        assert!(response_text(&billing).contains("id=\"sign-in\""));
    }
    assert!(site.dodo.portal_sessions().is_empty());
    let billing = site.get("/upgrade/billing", "", &[account_cookie()]).await;
    assert_eq!(billing.status(), 303, "{}", response_text(&billing));
    assert_eq!(site.dodo.portal_sessions().len(), 1);
}

/// Issue 34, item 3: portal sessions are counted per cookie subject and reused while valid;
/// billing opens only while a grant gives access or was refunded within 30 days.
#[tokio::test]
async fn portal_sessions_are_reused_counted_and_closed_after_a_refund_ages() {
    let site = site().await;
    site.pay("pay_portal", "pdt_cheap").await;
    let owner = account_cookie();
    let mut locations = Vec::new();
    for _ in 0..20 {
        let billing = site
            .get("/upgrade/billing", "", std::slice::from_ref(&owner))
            .await;
        assert_eq!(billing.status(), 303);
        locations.push(billing.headers()["location"].to_str().unwrap().to_owned());
    }
    assert_eq!(site.dodo.portal_sessions().len(), 1, "one session, reused");
    assert!(locations.iter().all(|l| l == &locations[0]));

    // A refund within 30 days still opens it (invoices, the refund itself)...
    site.refund("pay_portal").await;
    let billing = site
        .get("/upgrade/billing", "", std::slice::from_ref(&owner))
        .await;
    assert_eq!(billing.status(), 303);

    // ...but an email whose only purchase was refunded long ago gets no portal session.
    let old = "refunded.long.ago@example.com";
    let email = Email::parse(old).unwrap();
    let mut entitlement = llmxt_domain::records::Entitlement::new(email.clone());
    entitlement.grants.insert(
        "pay_old".to_owned(),
        llmxt_domain::records::Grant {
            key: "pay_old".to_owned(),
            source: "payment".to_owned(),
            plan: "professional".to_owned(),
            status: "revoked".to_owned(),
            customer_id: Some("cus_old".to_owned()),
            revoked_at: Some(unix_now() - 31 * 86_400),
            updated_at: unix_now() - 31 * 86_400,
            ..Default::default()
        },
    );
    site.store.put_entitlement(&entitlement).await.unwrap();
    let token = token_signer().issue(&email, "professional", unix_now(), 3600);
    let cookie = format!("__Host-llmxt_pro={token}");
    for _ in 0..3 {
        let billing = site
            .get("/upgrade/billing", "", std::slice::from_ref(&cookie))
            .await;
        assert_eq!(billing.status(), 200);
        assert!(response_text(&billing).contains("Nothing to manage here"));
    }
    assert_eq!(
        site.dodo.portal_sessions().len(),
        1,
        "none for the old refund"
    );
}

/// Issue 34, item 4: a cookie under the old name beside a `__Host-` cookie is not read (it
/// could have been planted by a sibling subdomain or over plain http), is never promoted, and
/// cookies of several emails make billing, plan changes and checkout ask for a sign-in.
#[tokio::test]
async fn a_planted_old_name_cookie_never_wins() {
    let site = site().await;
    site.pay("pay_victim", "pdt_cheap").await;
    // The attacker's own purchase, and an account cookie of it planted under the old name.
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_attacker");
        v["data"]["customer"]["email"] = json!("attacker@example.com");
        v["data"]["customer"]["customer_id"] = json!("cus_attacker");
        v["data"]["product_cart"] = json!([{ "product_id": "pdt_big", "quantity": 1 }]);
    });
    site.deliver("msg_pay_attacker", &body).await;
    let attacker = token_signer().issue(
        &Email::parse("attacker@example.com").unwrap(),
        "enterprise",
        unix_now(),
        3600,
    );
    let planted = format!("llmxt_pro={attacker}");
    // The victim's own cookie is a purchase cookie (from the success link).
    let victim_purchase = site.claim("pay_victim", &[]).await;
    let victim = account_cookie();
    // Beside the buyer's own cookie, the planted one is not even read: not promoted, and it
    // does not beat the buyer's purchase cookie to the attacker's portal.
    let response = site
        .get(
            "/api/entitlement",
            "",
            &[planted.clone(), victim_purchase.clone()],
        )
        .await;
    let answer = response_json(&response);
    assert_eq!(answer["plan"], json!("professional"), "{answer}");
    for set_cookie in response.headers().get_all("set-cookie") {
        let set_cookie = set_cookie.to_str().unwrap();
        assert!(
            !set_cookie.contains(&attacker),
            "the planted cookie is never promoted: {set_cookie}"
        );
    }
    let billing = site
        .get(
            "/upgrade/billing",
            "",
            &[planted.clone(), victim_purchase.clone()],
        )
        .await;
    assert_eq!(billing.status(), 200);
    assert!(response_text(&billing).contains("Sign in to manage billing"));
    assert!(
        site.dodo.portal_sessions().is_empty(),
        "not the attacker's portal"
    );
    let billing = site
        .get("/upgrade/billing", "", &[planted.clone(), victim.clone()])
        .await;
    assert_eq!(billing.status(), 303, "the buyer's own portal");
    assert_eq!(
        site.dodo.portal_sessions()[0].0,
        "cus_shared",
        "the victim's customer, not the attacker's"
    );

    // Two `__Host-` cookies of different emails (the old-name rule cannot tell them apart):
    // billing, plan and checkout refuse and ask for a sign-in.
    let other = format!("__Host-llmxt_pro={attacker}");
    for (path, query) in [
        ("/upgrade/billing", ""),
        ("/upgrade/plan", "product=pdt_big"),
        ("/upgrade/checkout", "product=pdt_big"),
    ] {
        let response = site
            .get(path, query, &[other.clone(), victim.clone()])
            .await;
        assert_eq!(response.status(), 409, "{path}");
        let html = response_text(&response);
        assert!(
            html.contains("more than one email address") && html.contains("id=\"sign-in\""),
            "{path}: {html}"
        );
    }
    assert_eq!(site.dodo.portal_sessions().len(), 1);
    assert!(site.dodo.checkouts().is_empty());

    // Both under the old name (the buyer's own not yet moved): neither is moved to the new
    // name and neither is cleared, whichever comes first.
    let victim_old = format!("llmxt_pro={}", victim.split_once('=').unwrap().1);
    for cookies in [
        [planted.clone(), victim_old.clone()],
        [victim_old.clone(), planted.clone()],
    ] {
        let response = site.get("/api/entitlement", "", &cookies).await;
        assert_eq!(response.status(), 200);
        for set_cookie in response.headers().get_all("set-cookie") {
            let set_cookie = set_cookie.to_str().unwrap();
            assert!(
                !set_cookie.starts_with("__Host-llmxt_pro=")
                    && !set_cookie.starts_with("llmxt_pro="),
                "no old-name cookie is moved or cleared beside another email's: {set_cookie}"
            );
        }
    }

    // Alone, an old-name cookie is still read (and moved) until COOKIE_OLD_NAME_UNTIL.
    let alone = victim_old;
    let response = site.get("/api/entitlement", "", &[alone]).await;
    assert_eq!(response_json(&response)["pro"], json!(true));
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-llmxt_pro=")),
        "moved to the new name"
    );
}

/// Issue 34, item 4: after `COOKIE_OLD_NAME_UNTIL` the old name is not read at all.
#[tokio::test]
async fn the_old_name_is_not_read_after_its_date() {
    let store = fresh_store().await;
    let mut pairs = function_env(&store);
    pairs.push(("COOKIE_OLD_NAME_UNTIL", "2020-01-01T00:00:00Z".to_owned()));
    let api = LocalApi::from_env(&Env::from_pairs(pairs)).await.unwrap();
    let site = Site {
        api,
        dodo: DodoStandIn::for_tests().await,
        store,
    };
    site.pay("pay_late", "pdt_cheap").await;
    let old = format!("llmxt_pro={}", account_cookie().split_once('=').unwrap().1);
    let answer = site.entitlement(&[old]).await;
    assert_eq!(answer["pro"], json!(false), "{answer}");
    let fresh = site.entitlement(&[account_cookie()]).await;
    assert_eq!(fresh["pro"], json!(true), "{fresh}");
}

/// Issue 34, item 10: the local site answers one host only: a page asked for on another name
/// of the server goes to the same path on NEXT_PUBLIC_SITE_URL's host before anything else;
/// `/api/*` and requests on another port are answered as they came.
#[tokio::test]
async fn pages_on_another_host_go_to_the_site_host_first() {
    let site = site().await;
    let on_host = |host: &str, method: &'static str, path: &'static str, query: &'static str| {
        ApiGatewayEvent {
            method,
            path,
            query,
            headers: vec![("host", host.to_owned())],
            cookies: vec![],
            body: None,
        }
        .to_json()
        .to_string()
    };
    for (host, path, query) in [
        ("www.pro.example.com", "/upgrade/restore", ""),
        ("PRO.example.com.evil:443", "/", "upgrade=success"),
        ("127.0.0.1", "/upgrade/success", "payment_id=pay_x"),
    ] {
        let response = site
            .api
            .route(request_from_event(&on_host(host, "GET", path, query)))
            .await;
        assert_eq!(response.status(), 308, "{host}{path}");
        let expected = if query.is_empty() {
            format!("https://pro.example.com{path}")
        } else {
            format!("https://pro.example.com{path}?{query}")
        };
        assert_eq!(response.headers()["location"], expected.as_str());
    }
    // The site's own host (any case), the API routes, and another port are not moved.
    for (host, method, path) in [
        ("Pro.Example.com", "GET", "/upgrade/restore"),
        ("127.0.0.1", "GET", "/api/entitlement"),
        ("127.0.0.1:3001", "GET", "/upgrade/restore"),
        ("www.pro.example.com", "POST", "/upgrade/restore"),
    ] {
        let response = site
            .api
            .route(request_from_event(&on_host(host, method, path, "")))
            .await;
        assert_ne!(response.status(), 308, "{method} {host}{path}");
    }
}
