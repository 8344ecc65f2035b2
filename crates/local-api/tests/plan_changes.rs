//! Plan changes end to end: local-api (the real handlers) on DynamoDB Local, the Dodo
//! stand-in answering the change-plan calls and sending its signed webhooks to local-api over
//! HTTP. The buyer's requests go through the same router in-process.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::records::Entitlement;
use llmxt_store::store::Store;
use llmxt_testkit::dodo::{DodoStandIn, StandInOptions, TEST_API_KEY};
use llmxt_testkit::{
    ApiGatewayEvent, TEST_SITE, TEST_WEBHOOK_SECRET, fresh_store, function_env, request_from_event,
    response_json, response_text,
};
use serde_json::{Value, json};

const GRACE: i64 = 3 * 86_400;

struct Harness {
    api: Arc<local_api::LocalApi>,
    dodo: DodoStandIn,
    store: Store,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    async fn start_with(extra: &[(&str, &str)]) -> Self {
        let store = fresh_store().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let dodo = DodoStandIn::start(StandInOptions {
            api_key: TEST_API_KEY.to_owned(),
            webhook_url: Some(format!("http://127.0.0.1:{port}/api/webhooks/dodo")),
            webhook_secret: Some(TEST_WEBHOOK_SECRET.to_owned()),
        })
        .await;
        dodo.set_price("pdt_pro", 1000);
        dodo.set_price("pdt_ent", 3000);
        let mut pairs: Vec<(String, String)> = function_env(&store)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .filter(|(k, _)| k != "PRODUCT_PLANS")
            .collect();
        for (name, value) in [
            (
                "PRODUCT_PLANS",
                "pdt_pro=professional,pdt_ent=enterprise,pdt_life=professional",
            ),
            (
                "PLAN_FEATURES",
                "professional=export,api;enterprise=export,api,sso",
            ),
            ("DODO_PAYMENTS_API_KEY", TEST_API_KEY),
            ("DODO_PAYMENTS_BASE_URL", dodo.base_url.as_str()),
            ("SUBSCRIPTION_GRACE_SECONDS", "259200"),
            ("PLAN_NAMES", "professional=Pro,enterprise=Business"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            pairs.push((name.to_owned(), value.to_owned()));
        }
        let api = Arc::new(
            local_api::LocalApi::from_env(&Env::from_pairs(pairs))
                .await
                .unwrap(),
        );
        tokio::spawn(local_api::serve(
            Arc::clone(&api),
            listener,
            std::future::pending(),
        ));
        Self { api, dodo, store }
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        query: &str,
        cookie: Option<&str>,
        headers: Vec<(&str, String)>,
        body: Option<String>,
    ) -> Response<Body> {
        let event = ApiGatewayEvent {
            method,
            path,
            query,
            headers,
            cookies: cookie.map(str::to_owned).into_iter().collect(),
            body,
        };
        self.api
            .route(request_from_event(&event.to_json().to_string()))
            .await
    }

    async fn get(&self, path: &str, query: &str, cookie: Option<&str>) -> Response<Body> {
        self.request("GET", path, query, cookie, Vec::new(), None)
            .await
    }

    /// The confirm button's POST, as a browser on the site sends it.
    async fn confirm(&self, cookie: &str, product: &str, subscription: &str) -> Response<Body> {
        self.request(
            "POST",
            "/upgrade/plan",
            "",
            Some(cookie),
            vec![
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("sec-fetch-site", "same-origin".to_owned()),
                ("origin", TEST_SITE.to_owned()),
            ],
            Some(format!("product={product}&subscription={subscription}")),
        )
        .await
    }

    /// A subscriber of `product` who came back from checkout: the cookie the success page set.
    async fn subscriber(&self, email: &str, product: &str) -> (String, String) {
        self.subscribe_again(email, product, None).await
    }

    /// Another subscription bought in a browser that holds `cookie`.
    async fn subscribe_again(
        &self,
        email: &str,
        product: &str,
        cookie: Option<&str>,
    ) -> (String, String) {
        let (subscription_id, payment_id) = self.dodo.subscribe(email, product).await;
        let success = self
            .get(
                "/upgrade/success",
                &format!("payment_id={payment_id}&status=succeeded"),
                cookie,
            )
            .await;
        (subscription_id, cookie_of(&success))
    }

    async fn entitlement(&self, cookie: &str) -> Value {
        let response = self.get("/api/entitlement", "", Some(cookie)).await;
        assert_eq!(response.status(), 200, "{}", response_text(&response));
        response_json(&response)
    }

    async fn stored(&self, email: &str) -> Entitlement {
        self.store
            .get_entitlement(&Email::parse(email).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits (up to 15 s) until the buyer's answer satisfies `done`; returns it.
    async fn until(&self, cookie: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..150 {
            let answer = self.entitlement(cookie).await;
            if done(&answer) {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "never reached the expected state: {}",
            self.entitlement(cookie).await
        );
    }
}

/// `name=value` of the response's cookie.
fn cookie_of(response: &Response<Body>) -> String {
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {}", response_text(response)))
        .to_str()
        .unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

fn location(response: &Response<Body>) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn features(answer: &Value) -> Vec<&str> {
    answer["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_upgrade_shows_dodos_preview_and_changes_the_plan_once_dodo_confirms() {
    let h = Harness::start().await;
    let (subscription, cookie) = h.subscriber("upgrade@example.com", "pdt_pro").await;
    let before = h.entitlement(&cookie).await;
    assert_eq!(before["plan"], "professional");
    assert_eq!(features(&before), ["api", "export"]);
    assert_eq!(before["billing"]["state"], "active");
    assert!(before["billing"]["renews_at"].is_string(), "{before}");
    assert_eq!(before["billing"]["scheduled_plan"], Value::Null);

    // A prefetch of the page asks Dodo nothing.
    h.dodo.take_requests();
    let prefetch = h
        .request(
            "GET",
            "/upgrade/plan",
            "product=pdt_ent",
            Some(&cookie),
            vec![("sec-purpose", "prefetch".to_owned())],
            None,
        )
        .await;
    assert_eq!(prefetch.status(), 200);
    assert!(h.dodo.take_requests().is_empty());

    // The page: Dodo's preview of an immediate, prorated upgrade (a whole month left:
    // 30.00 - 10.00 = 20.00 charged now).
    let page = h
        .get("/upgrade/plan", "product=pdt_ent", Some(&cookie))
        .await;
    let html = response_text(&page);
    assert_eq!(page.status(), 200, "{html}");
    assert!(html.contains("id=\"charged-now\">$20.00<"), "{html}");
    assert!(
        html.contains(
            "<strong id=\"current-plan\">Pro</strong> → <strong id=\"new-plan\">Business</strong>"
        ),
        "{html}"
    );
    assert!(
        html.contains("Business starts as soon as you confirm."),
        "{html}"
    );
    // The new recurring price, from the next billing date Dodo reports, in words.
    let renews = h.dodo.subscription(&subscription).unwrap()["next_billing_date"]
        .as_str()
        .unwrap()
        .to_owned();
    let renews_at = llmxt_domain::time::parse_rfc3339_seconds(&renews).unwrap();
    assert!(
        html.contains(&format!(
            "id=\"recurring\">$30.00 a month from <time id=\"renews\" datetime=\"{}\">{}</time>",
            llmxt_domain::time::format_rfc3339(renews_at),
            llmxt_domain::time::format_date(renews_at)
        )),
        "{html}"
    );
    // Read as text (tags dropped, as a screen reader or a copy reads it), the summary is
    // sentences: "Due today $20.00 Then $30.00 a month from 6 January 2027 …".
    let text = html
        .split('<')
        .map(|part| part.split_once('>').map_or(part, |(_, text)| text))
        .collect::<String>();
    assert!(
        text.contains(&format!(
            "Due today $20.00 Then $30.00 a month from {}",
            llmxt_domain::time::format_date(renews_at)
        )),
        "{text}"
    );
    // The card Dodo has on file for the subscription.
    assert!(html.contains("id=\"card\">Visa ending in 4242<"), "{html}");
    assert!(
        html.contains("<button type=\"submit\" id=\"confirm\">Pay $20.00 and switch</button>"),
        "{html}"
    );
    assert!(
        html.contains(&format!("<a id=\"cancel\" href=\"{TEST_SITE}")),
        "{html}"
    );
    let (kind, preview) = h.dodo.plan_changes().pop().unwrap();
    assert_eq!(kind, "preview");
    assert_eq!(preview["product_id"], "pdt_ent");
    assert_eq!(preview["quantity"], 1);
    assert_eq!(preview["proration_billing_mode"], "prorated_immediately");
    assert_eq!(preview["effective_at"], "immediately");
    assert_eq!(h.entitlement(&cookie).await["plan"], "professional");

    // Confirm: Dodo changes the plan; the page reads it back, the webhooks follow.
    let confirmed = h.confirm(&cookie, "pdt_ent", &subscription).await;
    assert_eq!(confirmed.status(), 303, "{}", response_text(&confirmed));
    assert_eq!(
        location(&confirmed),
        format!("{TEST_SITE}/?upgrade=plan_changed")
    );
    let (kind, change) = h.dodo.plan_changes().pop().unwrap();
    assert_eq!(kind, "change");
    assert_eq!(change["effective_at"], "immediately");
    assert_eq!(
        change["return_url"],
        format!("{TEST_SITE}/upgrade/plan?product=pdt_ent&subscription={subscription}&changed=1")
    );
    let after = h
        .until(&cookie, |a| {
            a["plan"] == "enterprise" && features(a).contains(&"sso")
        })
        .await;
    assert_eq!(features(&after), ["api", "export", "sso"]);
    assert_eq!(after["billing"]["state"], "active");
}

#[tokio::test]
async fn a_downgrade_is_scheduled_then_applied_at_the_period_end() {
    let h = Harness::start().await;
    let (subscription, cookie) = h.subscriber("downgrade@example.com", "pdt_ent").await;
    let page = h
        .get("/upgrade/plan", "product=pdt_pro", Some(&cookie))
        .await;
    let html = response_text(&page);
    assert!(html.contains("id=\"charged-now\">$0.00<"), "{html}");
    let period_end = llmxt_domain::time::parse_rfc3339_seconds(
        h.dodo.subscription(&subscription).unwrap()["next_billing_date"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let day = llmxt_domain::time::format_date(period_end);
    assert!(
        html.contains(&format!(
            "The switch happens on <time id=\"effective\" datetime=\"{}\">{day}</time>",
            llmxt_domain::time::format_rfc3339(period_end)
        )),
        "{html}"
    );
    assert!(html.contains("Until then you keep Business"), "{html}");
    // The lower plan's own price (the preview of a scheduled change still describes the
    // current product), from the day it starts.
    assert!(
        html.contains(&format!(
            "id=\"recurring\">$10.00 a month from <time id=\"renews\" datetime=\"{}\">{day}</time>",
            llmxt_domain::time::format_rfc3339(period_end)
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!("id=\"confirm\">Switch on {day}</button>")),
        "{html}"
    );
    let confirmed = h.confirm(&cookie, "pdt_pro", &subscription).await;
    assert_eq!(
        location(&confirmed),
        format!("{TEST_SITE}/?upgrade=plan_scheduled")
    );
    let (_, change) = h.dodo.plan_changes().pop().unwrap();
    assert_eq!(change["effective_at"], "next_billing_date");

    let scheduled = h
        .until(&cookie, |a| {
            a["billing"]["scheduled_plan"] == "professional"
        })
        .await;
    assert_eq!(scheduled["plan"], "enterprise", "until the period ends");
    assert!(features(&scheduled).contains(&"sso"));
    let period_end = h.dodo.subscription(&subscription).unwrap()["next_billing_date"].clone();
    assert_eq!(scheduled["billing"]["scheduled_at"], period_end);

    h.dodo.renew(&subscription).await;
    let applied = h.until(&cookie, |a| a["plan"] == "professional").await;
    assert_eq!(applied["billing"]["scheduled_plan"], Value::Null);
    assert_eq!(features(&applied), ["api", "export"]);
    assert_ne!(applied["billing"]["renews_at"], period_end, "a new period");
}

#[tokio::test]
async fn pause_keeps_access_to_the_period_end_and_unpause_resumes() {
    let h = Harness::start().await;
    let email = "pause@example.com";
    let (subscription, cookie) = h.subscriber(email, "pdt_pro").await;
    let period_end = h.stored(email).await.grants[&subscription]
        .period_end
        .unwrap();

    h.dodo
        .update_subscription(&subscription, "subscription.paused", |s| {
            s["status"] = json!("paused");
        })
        .await;
    let paused = h.entitlement(&cookie).await;
    assert_eq!(paused["pro"], true);
    assert_eq!(paused["billing"]["state"], "paused");
    assert_eq!(
        paused["billing"]["ends_at"],
        llmxt_domain::time::format_rfc3339(period_end)
    );
    assert_eq!(paused["billing"].get("renews_at"), None);
    let stored = h.stored(email).await;
    assert!(stored.is_pro(period_end - 1));
    assert!(!stored.is_pro(period_end + 1), "no grace while paused");

    h.dodo
        .update_subscription(&subscription, "subscription.unpaused", |s| {
            s["status"] = json!("active");
        })
        .await;
    let resumed = h.entitlement(&cookie).await;
    assert_eq!(resumed["billing"]["state"], "active");
    assert_eq!(
        resumed["billing"]["renews_at"],
        llmxt_domain::time::format_rfc3339(period_end)
    );
    assert!(h.stored(email).await.is_pro(period_end + 1), "grace again");
}

#[tokio::test]
async fn past_due_keeps_access_through_grace_and_says_so() {
    let h = Harness::start().await;
    let email = "pastdue@example.com";
    let (subscription, cookie) = h.subscriber(email, "pdt_pro").await;
    h.dodo
        .update_subscription(&subscription, "subscription.past_due", |s| {
            s["status"] = json!("past_due");
        })
        .await;
    let answer = h.entitlement(&cookie).await;
    assert_eq!(answer["pro"], true);
    assert_eq!(answer["billing"]["state"], "past_due");
    let period_end = h.stored(email).await.grants[&subscription]
        .period_end
        .unwrap();
    assert_eq!(
        answer["billing"]["ends_at"],
        llmxt_domain::time::format_rfc3339(period_end + GRACE)
    );
    // A past-due subscription cannot change plan: the page offers nothing to confirm.
    let page = h
        .get("/upgrade/plan", "product=pdt_ent", Some(&cookie))
        .await;
    assert_eq!(page.status(), 403);
}

#[tokio::test]
async fn the_change_page_refuses_what_the_cookie_does_not_cover() {
    let h = Harness::start().await;
    let (subscription, owner) = h.subscriber("owner@example.com", "pdt_pro").await;
    let (_, other) = h.subscriber("other@example.com", "pdt_pro").await;

    // Another subscriber naming the owner's subscription: refused, Dodo never asked.
    let page = h
        .get(
            "/upgrade/plan",
            &format!("product=pdt_ent&subscription={subscription}"),
            Some(&other),
        )
        .await;
    assert_eq!(page.status(), 403, "{}", response_text(&page));
    let posted = h.confirm(&other, "pdt_ent", &subscription).await;
    assert_eq!(posted.status(), 403);
    assert!(h.dodo.plan_changes().is_empty());

    // No cookie: a page that says to sign in first. A cross-site POST with the owner's
    // cookie: refused.
    let anonymous = h.get("/upgrade/plan", "product=pdt_ent", None).await;
    let html = response_text(&anonymous);
    assert_eq!(anonymous.status(), 200, "{html}");
    assert!(
        html.contains("<h1>Sign in to change your plan</h1>"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "id=\"sign-in\" href=\"{TEST_SITE}/upgrade/restore\""
        )),
        "{html}"
    );
    // Without a product, or naming one that is not a plan: the same sign-in page, since
    // who is asking comes first.
    for query in ["", "product=pdt_unknown"] {
        let bare = h.get("/upgrade/plan", query, None).await;
        let html = response_text(&bare);
        assert_eq!(bare.status(), 200, "{query}: {html}");
        assert!(
            html.contains("<h1>Sign in to change your plan</h1>"),
            "{query}: {html}"
        );
    }
    let cross_site = h
        .request(
            "POST",
            "/upgrade/plan",
            "",
            Some(&owner),
            vec![
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("sec-fetch-site", "cross-site".to_owned()),
                ("origin", "https://evil.example".to_owned()),
            ],
            Some(format!("product=pdt_ent&subscription={subscription}")),
        )
        .await;
    assert_eq!(cross_site.status(), 403);
    // The owner's own purchase cookie from a one-time purchase covers only that purchase:
    // the subscription is refused, and the answer is about the lifetime grant alone.
    let payment = llmxt_testkit::dodo::payment_object(
        "pay_owner_lifetime",
        "owner@example.com",
        "succeeded",
        "pdt_life",
        None,
        |_| {},
    );
    h.dodo.add_payment(payment.clone());
    h.dodo.send_webhook("payment.succeeded", &payment).await;
    let success = h
        .get(
            "/upgrade/success",
            "payment_id=pay_owner_lifetime&status=succeeded",
            None,
        )
        .await;
    let lifetime_only = cookie_of(&success);
    let page = h
        .get(
            "/upgrade/plan",
            &format!("product=pdt_ent&subscription={subscription}"),
            Some(&lifetime_only),
        )
        .await;
    assert_eq!(page.status(), 403, "{}", response_text(&page));
    let posted = h.confirm(&lifetime_only, "pdt_ent", &subscription).await;
    assert_eq!(posted.status(), 403);
    let answer = h.entitlement(&lifetime_only).await;
    assert_eq!(answer["scope"], "purchase");
    assert_eq!(answer["billing"]["state"], "lifetime");
    let answer = h.entitlement(&owner).await;
    assert_eq!(answer["billing"]["state"], "active", "{answer}");
    // A product not sold here.
    let unknown = h
        .get("/upgrade/plan", "product=pdt_nope", Some(&owner))
        .await;
    assert_eq!(unknown.status(), 400);
    assert!(h.dodo.plan_changes().is_empty());
    assert_eq!(h.entitlement(&owner).await["plan"], "professional");
}

#[tokio::test]
async fn a_payment_link_is_followed_and_the_plan_waits_for_dodo() {
    let h = Harness::start().await;
    let (subscription, cookie) = h.subscriber("link@example.com", "pdt_pro").await;
    h.dodo.require_payment_for_changes(true);
    let confirmed = h.confirm(&cookie, "pdt_ent", &subscription).await;
    assert_eq!(confirmed.status(), 303);
    let link = location(&confirmed);
    assert!(
        link.starts_with(&format!("{}/checkout/plan-change/", h.dodo.base_url)),
        "{link}"
    );
    assert!(link.contains("changed%3D1"), "{link}");
    // Back from the payment page before Dodo changed anything: still professional.
    let back = h
        .get(
            "/upgrade/plan",
            &format!("product=pdt_ent&subscription={subscription}&changed=1"),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        location(&back),
        format!("{TEST_SITE}/?upgrade=plan_changed")
    );
    assert_eq!(h.entitlement(&cookie).await["plan"], "professional");
}

#[tokio::test]
async fn several_subscriptions_choose_and_lifetime_buyers_get_a_checkout() {
    let h = Harness::start().await;
    let email = "many@example.com";
    let (first, cookie) = h.subscriber(email, "pdt_pro").await;
    let (second, cookie) = h.subscribe_again(email, "pdt_pro", Some(&cookie)).await;
    let page = h
        .get("/upgrade/plan", "product=pdt_ent", Some(&cookie))
        .await;
    let html = response_text(&page);
    assert!(html.contains("Which subscription?"), "{html}");
    assert!(html.contains(&first) && html.contains(&second), "{html}");
    assert!(
        html.contains(&format!(">Pro (subscription {first})</a>")),
        "by display name: {html}"
    );

    let payment = llmxt_testkit::dodo::payment_object(
        "pay_lifetime_1",
        "lifetime@example.com",
        "succeeded",
        "pdt_life",
        None,
        |_| {},
    );
    h.dodo.add_payment(payment.clone());
    h.dodo.send_webhook("payment.succeeded", &payment).await;
    let success = h
        .get(
            "/upgrade/success",
            "payment_id=pay_lifetime_1&status=succeeded",
            None,
        )
        .await;
    let lifetime = cookie_of(&success);
    assert_eq!(
        h.entitlement(&lifetime).await["billing"]["state"],
        "lifetime"
    );
    let offer = h
        .get("/upgrade/plan", "product=pdt_ent", Some(&lifetime))
        .await;
    let html = response_text(&offer);
    assert_eq!(offer.status(), 200);
    assert!(
        html.contains("href=\"/upgrade/checkout?product=pdt_ent\">Buy Business</a>"),
        "{html}"
    );
    assert!(
        html.contains("To get Business, buy it as a new purchase."),
        "{html}"
    );
}

/// Issue 34, item 3: plan-change previews are cached per subscription and product for a
/// minute, and counted per cookie subject: a hundred page loads make one preview.
#[tokio::test]
async fn a_hundred_plan_pages_make_one_preview() {
    let h = Harness::start().await;
    let (_subscription, cookie) = h.subscriber("previews@example.com", "pdt_pro").await;
    h.dodo.take_requests();
    for _ in 0..100 {
        let page = h
            .get("/upgrade/plan", "product=pdt_ent", Some(&cookie))
            .await;
        assert_eq!(page.status(), 200);
        assert!(response_text(&page).contains("id=\"charged-now\""));
    }
    let previews = h
        .dodo
        .take_requests()
        .into_iter()
        .filter(|r| r.contains("change-plan/preview"))
        .count();
    assert_eq!(previews, 1, "one preview, reused for a minute");
}

/// Issue 34, item 2: what is charged is what is called. The card on file is a second call,
/// counted like the preview; over the budget the page is shown without it.
#[tokio::test]
async fn the_card_call_is_counted_and_skipped_over_the_budget() {
    let h = Harness::start_with(&[("DODO_API_CALLS_PER_MINUTE", "3")]).await;
    let (_, first) = h.subscriber("card-one@example.com", "pdt_pro").await;
    let (_, second) = h.subscriber("card-two@example.com", "pdt_pro").await;
    // Both pages in one budget minute.
    while llmxt_domain::time::unix_now() % 60 > 50 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    h.dodo.take_requests();
    let page = h
        .get("/upgrade/plan", "product=pdt_ent", Some(&first))
        .await;
    let html = response_text(&page);
    assert_eq!(page.status(), 200, "{html}");
    assert!(html.contains("id=\"card\""), "{html}");
    let calls = h.dodo.take_requests();
    assert_eq!(calls.len(), 2, "the preview and the card: {calls:?}");
    // The third call of the minute is the second preview; the card would be a fourth.
    let page = h
        .get("/upgrade/plan", "product=pdt_ent", Some(&second))
        .await;
    let html = response_text(&page);
    assert_eq!(page.status(), 200, "{html}");
    assert!(!html.contains("id=\"card\""), "{html}");
    assert!(html.contains("id=\"charged-now\""), "{html}");
    let calls = h.dodo.take_requests();
    assert_eq!(calls.len(), 1, "the preview only: {calls:?}");
}
