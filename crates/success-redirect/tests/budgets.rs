//! The Dodo API budgets of anonymous requests (counted at the Dodo stand-in), checkout
//! sessions per client IP, and the checkout binding of several tabs, against DynamoDB Local.
#![allow(clippy::unwrap_used)]

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY, payment_object};
use llmxt_testkit::{
    ApiGatewayEvent, TEST_ENTITLEMENT_SECRET, apply_body, dodo_body, fresh_store, record_sizes,
    request_from_event, response_text,
};
use serde_json::json;
use success_redirect::checkout::{CHECKOUT_COOKIE, checkout_ref};
use success_redirect::config::SuccessConfig;
use success_redirect::{MAX_ATTEMPTS, SuccessDeps, handle};

const SITE: &str = "https://pro.example.com";
/// The start of a minute (1_800_000_000 is a multiple of 60), so a test's calls share one
/// budget window.
const NOW: i64 = 1_800_000_000;

async fn setup(extra: &[(&str, &str)]) -> (SuccessDeps, DodoStandIn) {
    let dodo = DodoStandIn::for_tests().await;
    let mut pairs = vec![
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("NEXT_PUBLIC_SITE_URL", SITE),
        ("PRODUCT_PLANS", "pdt_test=professional"),
        ("DODO_PAYMENTS_API_KEY", TEST_API_KEY),
        ("DODO_PAYMENTS_BASE_URL", dodo.base_url.as_str()),
    ];
    pairs.extend_from_slice(extra);
    let config = SuccessConfig::from_env(&Env::from_pairs(pairs)).unwrap();
    (SuccessDeps::new(config, fresh_store().await), dodo)
}

struct Visit<'a> {
    path: &'static str,
    query: String,
    headers: Vec<(&'static str, String)>,
    cookies: Vec<String>,
    source_ip: &'a str,
}

async fn visit(deps: &SuccessDeps, visit: Visit<'_>, now: i64) -> Response<Body> {
    let mut event = ApiGatewayEvent {
        method: "GET",
        path: visit.path,
        query: &visit.query,
        headers: visit.headers,
        cookies: visit.cookies,
        body: None,
    }
    .to_json();
    event["requestContext"]["http"]["sourceIp"] = json!(visit.source_ip);
    handle(deps, request_from_event(&event.to_string()), now).await
}

async fn checkout(deps: &SuccessDeps, source_ip: &str, cookies: Vec<String>) -> Response<Body> {
    let request = Visit {
        path: "/upgrade/checkout",
        query: "product=pdt_test".to_owned(),
        headers: vec![],
        cookies,
        source_ip,
    };
    visit(deps, request, NOW).await
}

async fn success(deps: &SuccessDeps, query: String, now: i64) -> Response<Body> {
    let request = Visit {
        path: "/upgrade/success",
        query,
        headers: vec![],
        cookies: vec![],
        source_ip: "198.51.100.1",
    };
    visit(deps, request, now).await
}

fn pending(response: &Response<Body>) {
    assert_eq!(response.status(), StatusCode::OK);
    let html = response_text(response);
    assert!(html.contains("Confirming your payment"), "{html}");
}

/// A busy page whose `Retry-After` is `retry_seconds` and whose text states the same wait.
fn busy_for(response: &Response<Body>, retry_seconds: i64, in_words: &str) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers()["retry-after"].to_str().unwrap(),
        retry_seconds.to_string()
    );
    let html = response_text(response);
    assert!(
        html.contains(&format!("try again in {in_words}.")),
        "{html}"
    );
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.headers().get("location").is_none());
}

/// Busy on the per-IP hourly limit, at `NOW` (the start of an hour, 1_800_000_000 = 500_000 h).
fn busy(response: &Response<Body>) {
    busy_for(response, 3600, "60 minutes");
}

#[tokio::test]
async fn anonymous_requests_make_at_most_the_budgeted_api_calls() {
    let (deps, dodo) = setup(&[("DODO_API_CALLS_PER_MINUTE", "5")]).await;
    // Twenty success links with made-up ids from twenty addresses spend the look-up budget...
    for n in 0..20 {
        let request = Visit {
            path: "/upgrade/success",
            query: format!("payment_id=pay_random{n}"),
            headers: vec![],
            cookies: vec![],
            source_ip: &format!("198.51.100.{n}"),
        };
        pending(&visit(&deps, request, NOW + 1).await);
    }
    assert_eq!(dodo.take_requests().len(), 5, "the look-up budget");
    // ...and checkout has its own: ten buyers, five sessions, then busy until the minute ends.
    let mut answers = Vec::new();
    for n in 0..10 {
        answers.push(checkout(&deps, &format!("203.0.113.{n}"), vec![]).await);
    }
    assert_eq!(dodo.take_requests().len(), 5, "the checkout budget");
    let created = answers
        .iter()
        .filter(|r| r.status() == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(created, 5);
    assert_eq!(created, dodo.checkouts().len());
    for answer in answers
        .iter()
        .filter(|r| r.status() != StatusCode::SEE_OTHER)
    {
        busy_for(answer, 60, "60 seconds");
    }
    let later = Visit {
        path: "/upgrade/checkout",
        query: "product=pdt_test".to_owned(),
        headers: vec![],
        cookies: vec![],
        source_ip: "203.0.113.99",
    };
    busy_for(&visit(&deps, later, NOW + 45).await, 15, "15 seconds");
    assert_eq!(
        record_sizes(&deps.store).await,
        (0, 0),
        "nothing but counters"
    );

    // The next minute has a fresh budget.
    let next = Visit {
        path: "/upgrade/checkout",
        query: "product=pdt_test".to_owned(),
        headers: vec![],
        cookies: vec![],
        source_ip: "198.51.100.51",
    };
    assert_eq!(
        visit(&deps, next, NOW + 60).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn one_client_cannot_spend_the_look_ups_and_a_404_costs_one_call() {
    let (deps, dodo) = setup(&[("DODO_API_CALLS_PER_MINUTE", "3")]).await;
    // Three subscriptions Dodo does not know: one call each (a 404 ends the look-up), so all
    // three fit in a budget of three.
    for n in 0..3 {
        let request = Visit {
            path: "/upgrade/success",
            query: format!("subscription_id=sub_random{n}"),
            headers: vec![],
            cookies: vec![],
            source_ip: &format!("198.51.100.{n}"),
        };
        pending(&visit(&deps, request, NOW).await);
    }
    assert_eq!(
        dodo.take_requests(),
        [
            "GET /subscriptions/sub_random0",
            "GET /subscriptions/sub_random1",
            "GET /subscriptions/sub_random2"
        ]
    );

    // One client address gets at most LOOKUPS_PER_HOUR_PER_IP look-ups an hour, spread over
    // minutes so that the site-wide budget is not what stops it.
    let (deps, dodo) = setup(&[]).await;
    let limit = success_redirect::budget::LOOKUPS_PER_HOUR_PER_IP;
    for n in 0..(limit + 5) {
        let request = Visit {
            path: "/upgrade/success",
            query: format!("payment_id=pay_spray{n}"),
            headers: vec![],
            cookies: vec![],
            source_ip: "198.51.100.200",
        };
        pending(&visit(&deps, request, NOW + n * 60).await);
    }
    assert_eq!(dodo.take_requests().len(), usize::try_from(limit).unwrap());
    // Another buyer still gets a look-up, and checkout is untouched.
    pending(&success(&deps, "payment_id=pay_other".to_owned(), NOW + 3000).await);
    assert_eq!(dodo.take_requests(), ["GET /payments/pay_other"]);
    assert_eq!(
        checkout(&deps, "198.51.100.200", vec![]).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_pending_page_asks_twice_per_ten_minutes_and_a_404_is_remembered() {
    let (deps, dodo) = setup(&[]).await;
    dodo.add_payment(payment_object(
        "pay_slow",
        "slow@example.com",
        "processing",
        "pdt_test",
        None,
        |_| {},
    ));
    // A whole pending page: about thirty polls, and a few reloads from the start.
    for attempt in 0..=MAX_ATTEMPTS {
        success(
            &deps,
            format!("payment_id=pay_slow&attempt={attempt}"),
            NOW + i64::from(attempt) * 2,
        )
        .await;
    }
    for _ in 0..3 {
        pending(&success(&deps, "payment_id=pay_slow".to_owned(), NOW + 70).await);
    }
    assert_eq!(
        dodo.take_requests(),
        ["GET /payments/pay_slow", "GET /payments/pay_slow"],
        "the first visit and one half a minute later"
    );
    pending(&success(&deps, "payment_id=pay_slow".to_owned(), NOW + 601).await);
    assert_eq!(
        dodo.take_requests(),
        ["GET /payments/pay_slow"],
        "a new window"
    );

    // An id Dodo does not know is not asked about again for ten minutes.
    pending(&success(&deps, "payment_id=pay_unknown".to_owned(), NOW).await);
    assert_eq!(dodo.take_requests(), ["GET /payments/pay_unknown"]);
    for later in [1, 120, 599] {
        pending(&success(&deps, "payment_id=pay_unknown".to_owned(), NOW + later).await);
    }
    assert!(dodo.take_requests().is_empty(), "the 404 is remembered");
    dodo.add_payment(payment_object(
        "pay_unknown",
        "late@example.com",
        "succeeded",
        "pdt_test",
        None,
        |p| p["created_at"] = json!(llmxt_domain::time::format_rfc3339(NOW + 590)),
    ));
    let response = success(&deps, "payment_id=pay_unknown".to_owned(), NOW + 601).await;
    assert_eq!(dodo.take_requests(), ["GET /payments/pay_unknown"]);
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "confirmed after ten minutes"
    );
}

#[tokio::test]
async fn checkout_sessions_are_limited_per_client_ip() {
    let forwarded = |chain: &str| vec![("x-forwarded-for", chain.to_owned())];
    // Behind the merchant's proxy every request has the proxy's sourceIp.
    let (deps, dodo) = setup(&[
        ("CHECKOUTS_PER_HOUR_PER_IP", "2"),
        ("CLIENT_IP_HEADER", "x-forwarded-for"),
    ])
    .await;
    let through_proxy = |chain: &str| Visit {
        path: "/upgrade/checkout",
        query: "product=pdt_test".to_owned(),
        headers: forwarded(chain),
        cookies: vec![],
        source_ip: "192.0.2.1",
    };
    for _ in 0..2 {
        let response = visit(&deps, through_proxy("10.9.9.9, 198.51.100.7"), NOW).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    // A forged first entry does not help: the proxy's own last hop counts.
    busy(&visit(&deps, through_proxy("10.1.1.1, 198.51.100.7"), NOW).await);
    let other = visit(&deps, through_proxy("198.51.100.8"), NOW).await;
    assert_eq!(other.status(), StatusCode::SEE_OTHER, "another buyer");
    assert_eq!(dodo.checkouts().len(), 3);

    // Without CLIENT_IP_HEADER, headers are ignored: sourceIp counts.
    let (deps, dodo) = setup(&[("CHECKOUTS_PER_HOUR_PER_IP", "2")]).await;
    for n in 0..3 {
        let response = visit(
            &deps,
            Visit {
                path: "/upgrade/checkout",
                query: "product=pdt_test".to_owned(),
                headers: forwarded(&format!("198.51.100.{n}")),
                cookies: vec![],
                source_ip: "203.0.113.5",
            },
            NOW,
        )
        .await;
        if n < 2 {
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
        } else {
            busy(&response);
        }
    }
    assert_eq!(dodo.checkouts().len(), 2);
}

fn nonces(response: &Response<Body>) -> Vec<String> {
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie
        .strip_prefix(&format!("{CHECKOUT_COOKIE}="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split('.')
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn two_checkout_tabs_are_both_redeemable() {
    let (deps, _) = setup(&[]).await;
    let first = checkout(&deps, "198.51.100.1", vec![]).await;
    let first_nonces = nonces(&first);
    assert_eq!(first_nonces.len(), 1);
    let jar = |nonces: &[String]| vec![format!("{CHECKOUT_COOKIE}={}", nonces.join("."))];
    // A second tab (or a re-click) opens another checkout in the same browser.
    let second = checkout(&deps, "198.51.100.1", jar(&first_nonces)).await;
    let browser = nonces(&second);
    assert_eq!(browser.len(), 2);
    assert_eq!(browser[1], first_nonces[0], "newest first, the first kept");
    for (n, nonce) in browser.iter().enumerate() {
        let body = dodo_body("payment.succeeded.cli-generator", |v| {
            v["data"]["payment_id"] = json!(format!("pay_tab{n}"));
            v["data"]["metadata"] = json!({ "checkout_ref": checkout_ref(nonce) });
        });
        apply_body(&deps.store, &format!("msg_tab{n}"), &body).await;
    }
    for n in 0..2 {
        let back = Visit {
            path: "/upgrade/success",
            query: format!("payment_id=pay_tab{n}"),
            headers: vec![],
            cookies: jar(&browser),
            source_ip: "198.51.100.1",
        };
        let response = visit(&deps, back, llmxt_domain::time::unix_now()).await;
        assert_eq!(response.status(), StatusCode::FOUND, "tab {n}");
        assert_eq!(
            response.headers()["location"],
            format!("{SITE}/?upgrade=success")
        );
    }

    // The cookie keeps the five most recent checkouts.
    let mut kept = browser.clone();
    for _ in 0..4 {
        kept = nonces(&checkout(&deps, "198.51.100.1", jar(&kept)).await);
    }
    assert_eq!(kept.len(), 5);
    assert!(kept.contains(&browser[0]) && !kept.contains(&browser[1]));
}

/// The template's metric filters match `$.fields.outcome = "over_budget"` and
/// `$.fields.dodo_status`: the JSON log lines carry exactly those fields.
#[tokio::test(flavor = "current_thread")]
async fn the_lines_the_alarms_count_are_logged() {
    let (captured, _guard) = llmxt_testkit::logs::LogCapture::start();
    let (deps, dodo) = setup(&[("DODO_API_CALLS_PER_MINUTE", "1")]).await;
    dodo.rate_limit_next(1);
    assert_eq!(
        checkout(&deps, "198.51.100.1", vec![]).await.status(),
        StatusCode::BAD_GATEWAY
    );
    busy_for(
        &checkout(&deps, "198.51.100.2", vec![]).await,
        60,
        "60 seconds",
    );
    let text = captured.text();
    let lines = captured.lines();
    assert!(
        lines.iter().any(|l| l["fields"]["dodo_status"] == 429),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l["fields"]["outcome"] == "over_budget"
            && l["fields"]["budget"] == "dodo_api_calls_per_minute"),
        "{text}"
    );
}
