//! `/upgrade/restore` in-process, fed API Gateway events, against DynamoDB Local and the SES
//! emulator (mail read back from its `GET /store`).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_domain::config::Env;
use llmxt_testkit::{
    ApiGatewayEvent, TEST_ENTITLEMENT_SECRET, apply_body, dodo_body, fresh_store,
    request_from_event, response_text, sent_emails, ses_endpoint, token_signer,
};
use serde_json::json;
use success_redirect::config::SuccessConfig;
use success_redirect::{SuccessDeps, handle};

const SITE: &str = "https://pro.example.com";

/// A fresh address per test: the emulator's mailbox is shared.
fn address(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}.{}.{}@example.com",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn deps_with(extra: &[(&str, String)]) -> SuccessDeps {
    let mut pairs: Vec<(String, String)> = vec![
        ("ENTITLEMENT_SECRET".into(), TEST_ENTITLEMENT_SECRET.into()),
        ("NEXT_PUBLIC_SITE_URL".into(), SITE.into()),
        ("PRODUCT_PLANS".into(), "pdt_test=professional".into()),
        ("RESTORE_EMAIL_FROM".into(), "access@pro.example.com".into()),
        ("SES_ENDPOINT".into(), ses_endpoint()),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        pairs.push(((*k).to_owned(), v.clone()));
    }
    pairs.retain(|(_, v)| !v.is_empty());
    let config = SuccessConfig::from_env(&Env::from_pairs(pairs)).unwrap();
    let mut deps = SuccessDeps::new(config, fresh_store().await);
    deps.restore_floor = std::time::Duration::from_millis(10);
    deps
}

async fn deps() -> SuccessDeps {
    deps_with(&[]).await
}

async fn buy(deps: &SuccessDeps, email: &str, payment_id: &str) {
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(payment_id);
        v["data"]["customer"]["email"] = json!(email);
    });
    apply_body(&deps.store, &format!("msg_{payment_id}"), &body).await;
}

fn event(
    method: &'static str,
    query: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
) -> String {
    let mut headers = headers;
    if body.is_some() {
        // A form posted by our own page.
        headers.push((
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ));
        headers.push(("sec-fetch-site", "same-origin".to_owned()));
    }
    ApiGatewayEvent {
        method,
        path: "/upgrade/restore",
        query,
        headers,
        cookies: vec![],
        body,
    }
    .to_json()
    .to_string()
}

async fn ask_for_link(deps: &SuccessDeps, email: &str) -> Response<Body> {
    let body = format!("email={}", email.replace('@', "%40").replace('+', "%2B"));
    handle(
        deps,
        request_from_event(&event("POST", "", vec![], Some(body))),
        now(),
    )
    .await
}

fn now() -> i64 {
    llmxt_domain::time::unix_now()
}

/// The token in the newest email to `email`.
async fn token_sent_to(email: &str) -> String {
    let mails = sent_emails(email).await;
    let text = mails.last().expect("an email")["body"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = text
        .lines()
        .find(|l| l.contains("/upgrade/restore?token="))
        .unwrap()
        .trim();
    assert!(
        link.starts_with(&format!("{SITE}/upgrade/restore?token=")),
        "{link}"
    );
    link.rsplit('=').next().unwrap().to_owned()
}

async fn press_button(deps: &SuccessDeps, token: &str, at: i64) -> Response<Body> {
    handle(
        deps,
        request_from_event(&event("POST", "", vec![], Some(format!("token={token}")))),
        at,
    )
    .await
}

fn neutral(response: &Response<Body>) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let html = response_text(response);
    assert!(
        html.contains("If a purchase exists for that address, we have sent a sign-in link"),
        "{html}"
    );
    assert!(response.headers().get("set-cookie").is_none());
    html
}

#[tokio::test]
async fn a_buyer_on_a_new_device_gets_a_one_time_link_that_signs_in() {
    let deps = deps().await;
    let buyer = address("buyer");
    buy(&deps, &buyer, "pay_restore1").await;
    neutral(&ask_for_link(&deps, &buyer).await);
    let mails = sent_emails(&buyer).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["from"], "access@pro.example.com");
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap()
            .contains("pro.example.com")
    );
    let text = mails[0]["body"]["text"].as_str().unwrap();
    assert!(
        text.contains("pro.example.com") && text.contains("ignore this email"),
        "{text}"
    );
    assert!(
        mails[0]["body"]["html"].as_str().unwrap().contains(
            "<a id=\"sign-in-link\" href=\"https://pro.example.com/upgrade/restore?token="
        )
    );
    let token = token_sent_to(&buyer).await;

    // A mail scanner opening the link changes nothing.
    for _ in 0..3 {
        let query = Box::leak(format!("token={token}").into_boxed_str());
        let page = handle(
            &deps,
            request_from_event(&event("GET", query, vec![], None)),
            now(),
        )
        .await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(response_text(&page).contains("id=\"sign-in\""));
        assert!(page.headers().get("set-cookie").is_none());
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    }
    let signed_in = press_button(&deps, &token, now()).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        signed_in.headers()["location"],
        format!("{SITE}/?upgrade=restored")
    );
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.ends_with("Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{cookie}"
    );
    let value = cookie
        .trim_start_matches("__Host-llmxt_pro=")
        .split(';')
        .next()
        .unwrap();
    let claims = token_signer().verify(value, now()).unwrap().claims;
    assert_eq!(claims.email, buyer);
    assert_eq!(
        claims.scope(),
        llmxt_domain::token::Scope::Account,
        "the link proved the mailbox: every grant of the email"
    );
    assert!(claims.grants.is_none() && claims.auth_time.is_some());
    // Once only.
    let again = press_button(&deps, &token, now()).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(response_text(&again).contains("invalid or has expired"));
    assert!(again.headers().get("set-cookie").is_none());

    // Opened again in the browser it signed in: "You're signed in", by link and by button.
    let with_cookie = |method: &'static str, cookie: String| {
        let mut event = ApiGatewayEvent {
            method,
            path: "/upgrade/restore",
            query: Box::leak(format!("token={token}").into_boxed_str()),
            headers: vec![],
            cookies: vec![cookie],
            body: None,
        };
        if method == "POST" {
            event.query = "";
            event.body = Some(format!("token={token}"));
            event.headers = vec![
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("sec-fetch-site", "same-origin".to_owned()),
            ];
        }
        request_from_event(&event.to_json().to_string())
    };
    let mine = format!("__Host-llmxt_pro={value}");
    for method in ["GET", "POST"] {
        let reopened = handle(&deps, with_cookie(method, mine.clone()), now()).await;
        let html = response_text(&reopened);
        assert_eq!(reopened.status(), StatusCode::OK, "{method}: {html}");
        assert!(html.contains("<h1>You&#39;re signed in</h1>"), "{html}");
        assert!(
            html.contains(&format!("id=\"home\" href=\"{SITE}/\">Go to the site</a>")),
            "{html}"
        );
        assert!(!html.contains("invalid"), "{html}");
        assert!(reopened.headers().get("set-cookie").is_none());
    }
    // Someone else's cookie: the link is still just used.
    let other = token_signer().issue(
        &llmxt_domain::email::Email::parse("other@example.com").unwrap(),
        "professional",
        now(),
        3600,
    );
    let reopened = handle(
        &deps,
        with_cookie("POST", format!("__Host-llmxt_pro={other}")),
        now(),
    )
    .await;
    assert_eq!(reopened.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_address_gets_the_same_answer_and_only_a_buyer_gets_mail() {
    let deps = deps().await;
    let buyer = address("buyer");
    let refunded = address("refunded");
    let stranger = address("stranger");
    buy(&deps, &buyer, "pay_a").await;
    buy(&deps, &refunded, "pay_b").await;
    let refund = dodo_body("refund.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_b");
    });
    apply_body(&deps.store, "msg_refund", &refund).await;
    let expected = neutral(&ask_for_link(&deps, &buyer).await);
    for email in [
        refunded.as_str(),
        stranger.as_str(),
        "not-an-email",
        "ki\u{200B}m@example.com",
        "",
    ] {
        assert_eq!(
            neutral(&ask_for_link(&deps, email).await),
            expected,
            "{email:?}"
        );
    }
    assert_eq!(sent_emails(&buyer).await.len(), 1);
    assert!(sent_emails(&refunded).await.is_empty());
    assert!(sent_emails(&stranger).await.is_empty());
}

/// The answer over a limit: says so, and that links already sent still work.
fn limited(response: &Response<Body>, whose: &str) -> String {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let html = response_text(response);
    assert!(
        html.contains(&format!(
            "Too many sign-in links were asked for {whose} in the last hour"
        )) && html.contains("The latest link sent still works"),
        "{html}"
    );
    // The true wait, in the page and in Retry-After: until the hour's window ends.
    let retry: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry));
    let minutes = (retry + 59) / 60;
    let words = if retry < 90 {
        format!("{retry} second")
    } else {
        format!("{minutes} minute")
    };
    assert!(html.contains(&format!("try again in {words}")), "{html}");
    assert!(response.headers().get("set-cookie").is_none());
    html
}

#[tokio::test]
async fn three_links_an_hour_per_email_and_twenty_requests_per_source_ip() {
    let deps = deps().await;
    let buyer = address("limited");
    buy(&deps, &buyer, "pay_l").await;
    for _ in 0..3 {
        neutral(&ask_for_link(&deps, &buyer).await);
    }
    let stranger = address("stranger");
    for _ in 0..3 {
        neutral(&ask_for_link(&deps, &stranger).await);
    }
    // The fourth request for an address says so, the same whether or not it has a purchase.
    assert_eq!(
        limited(
            &ask_for_link(&deps, &buyer).await,
            "this address from your network"
        ),
        limited(
            &ask_for_link(&deps, &stranger).await,
            "this address from your network"
        )
    );
    assert_eq!(
        sent_emails(&buyer).await.len(),
        3,
        "3 links an hour per email"
    );
    let other = address("other");
    buy(&deps, &other, "pay_o").await;
    // The IP has made 8 requests; 12 more (anything) reach its limit of 20.
    for _ in 0..12 {
        neutral(&ask_for_link(&deps, &address("nobody")).await);
    }
    limited(&ask_for_link(&deps, &other).await, "from your network");
    assert!(
        sent_emails(&other).await.is_empty(),
        "the 21st request from the IP sends nothing"
    );
}

#[tokio::test]
async fn a_link_expires_after_fifteen_minutes_and_a_refund_in_between_wins() {
    let deps = deps().await;
    let buyer = address("slow");
    buy(&deps, &buyer, "pay_s").await;
    ask_for_link(&deps, &buyer).await;
    let token = token_sent_to(&buyer).await;
    let late = press_button(&deps, &token, now() + 15 * 60 + 1).await;
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
    assert!(late.headers().get("set-cookie").is_none());

    ask_for_link(&deps, &buyer).await;
    let token = token_sent_to(&buyer).await;
    let refund = dodo_body("refund.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_s")
    });
    apply_body(&deps.store, "msg_refund_s", &refund).await;
    let refunded = press_button(&deps, &token, now()).await;
    assert_eq!(
        refunded.status(),
        StatusCode::BAD_REQUEST,
        "Pro is re-checked when the button is pressed"
    );
    assert!(refunded.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn the_link_is_built_from_the_site_url_never_from_request_headers() {
    let deps = deps().await;
    let buyer = address("host");
    buy(&deps, &buyer, "pay_h").await;
    let headers = vec![
        ("host", "evil.example".to_owned()),
        ("x-forwarded-host", "evil.example".to_owned()),
        ("forwarded", "host=evil.example".to_owned()),
        ("origin", "https://evil.example".to_owned()),
    ];
    let body = format!("email={}", buyer.replace('@', "%40"));
    neutral(
        &handle(
            &deps,
            request_from_event(&event("POST", "", headers, Some(body))),
            now(),
        )
        .await,
    );
    let mail = sent_emails(&buyer).await;
    let text = mail[0]["body"]["text"].as_str().unwrap();
    assert!(!text.contains("evil.example"), "{text}");
    token_sent_to(&buyer).await;
}

#[tokio::test]
async fn bad_input_is_refused_without_harm() {
    let deps = deps().await;
    let big = format!("email={}", "a".repeat(10_000));
    let response = handle(
        &deps,
        request_from_event(&event("POST", "", vec![], Some(big))),
        now(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = handle(
        &deps,
        request_from_event(&event("PUT", "", vec![], None)),
        now(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, POST");
    for token in [
        "",
        "short",
        "../../etc",
        "a".repeat(43).as_str(),
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ%",
    ] {
        let response = press_button(&deps, &token.replace('%', "%25"), now()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{token}");
        assert!(response_text(&response).contains("invalid or has expired"));
    }
    let form = handle(
        &deps,
        request_from_event(&event("GET", "", vec![], None)),
        now(),
    )
    .await;
    let html = response_text(&form);
    assert!(
        html.contains("<label for=\"email\">") && html.contains("name=\"email\" type=\"email\""),
        "{html}"
    );
    assert!(
        form.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("form-action 'self'")
    );
}

#[tokio::test]
async fn an_ses_failure_gets_the_same_neutral_page() {
    let deps = deps_with(&[("SES_ENDPOINT", llmxt_testkit::closed_endpoint())]).await;
    let buyer = address("sesdown");
    buy(&deps, &buyer, "pay_x").await;
    let response = ask_for_link(&deps, &buyer).await;
    neutral(&response);
    assert!(!response_text(&response).to_lowercase().contains("error"));
}

#[tokio::test]
async fn without_a_sender_the_form_says_restore_is_not_enabled() {
    let deps = deps_with(&[("RESTORE_EMAIL_FROM", String::new())]).await;
    let form = handle(
        &deps,
        request_from_event(&event("GET", "", vec![], None)),
        now(),
    )
    .await;
    assert!(response_text(&form).contains("not enabled"));
}

#[tokio::test]
async fn tokens_and_counters_never_show_up_as_payments() {
    let deps = deps().await;
    let buyer = address("listing");
    buy(&deps, &buyer, "pay_listed").await;
    ask_for_link(&deps, &buyer).await;
    ask_for_link(&deps, "nobody@example.com").await;
    let all = llmxt_testkit::scan_all(&deps.store, &deps.store.config().payments_table).await;
    assert!(
        all.iter()
            .any(|item| item["payment_id"].as_s().unwrap().starts_with("restore#")),
        "a token was stored"
    );
    let (listed, complete) = deps.store.recent_payments(0, 10_000).await.unwrap();
    assert!(complete);
    assert_eq!(
        listed
            .iter()
            .map(|p| p.payment_id.as_str())
            .collect::<Vec<_>>(),
        ["pay_listed"]
    );
    let by_email = deps
        .store
        .payments_for_email(&llmxt_domain::email::Email::parse(&buyer).unwrap())
        .await
        .unwrap();
    assert_eq!(by_email.len(), 1);
}

/// A restore form post with exactly these headers, from API Gateway's `source_ip`.
async fn post_raw(
    deps: &SuccessDeps,
    body: String,
    headers: Vec<(&'static str, String)>,
    source_ip: &str,
) -> Response<Body> {
    let mut event = ApiGatewayEvent {
        method: "POST",
        path: "/upgrade/restore",
        query: "",
        headers,
        cookies: vec![],
        body: Some(body),
    }
    .to_json();
    event["requestContext"]["http"]["sourceIp"] = json!(source_ip);
    event["requestContext"]["domainName"] = json!("abc123.execute-api.eu-west-1.amazonaws.com");
    handle(deps, request_from_event(&event.to_string()), now()).await
}

fn email_form(email: &str) -> String {
    format!("email={}", email.replace('@', "%40"))
}

fn same_origin() -> Vec<(&'static str, String)> {
    vec![
        (
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("sec-fetch-site", "same-origin".to_owned()),
    ]
}

fn refused(response: &Response<Body>) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response_text(response).contains("<h1>"), "a page");
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn cross_site_and_text_plain_restore_posts_are_refused() {
    let deps = deps().await;
    let buyer = address("csrf");
    buy(&deps, &buyer, "pay_csrf").await;
    let form = "application/x-www-form-urlencoded".to_owned();
    let refused_requests = [
        // A cross-site page's form or fetch.
        vec![
            ("content-type", form.clone()),
            ("origin", "https://evil.example".to_owned()),
            ("sec-fetch-site", "cross-site".to_owned()),
        ],
        // A sibling subdomain is same-site, not same-origin.
        vec![
            ("content-type", form.clone()),
            ("origin", "https://shop.pro.example.com".to_owned()),
            ("sec-fetch-site", "same-site".to_owned()),
        ],
        // text/plain dodges a CORS preflight; refused even from our own origin.
        vec![
            ("content-type", "text/plain".to_owned()),
            ("origin", SITE.to_owned()),
            ("sec-fetch-site", "same-origin".to_owned()),
        ],
        // No content type, or no origin information at all.
        vec![("sec-fetch-site", "same-origin".to_owned())],
        vec![("content-type", form.clone())],
        vec![
            ("content-type", form.clone()),
            ("origin", "null".to_owned()),
        ],
    ];
    for headers in refused_requests {
        refused(&post_raw(&deps, email_form(&buyer), headers, "198.51.100.1").await);
    }
    assert!(sent_emails(&buyer).await.is_empty(), "nothing sent");

    // Accepted: Sec-Fetch-Site same-origin, or an Origin naming the site or this API.
    for headers in [
        same_origin(),
        vec![("content-type", form.clone()), ("origin", SITE.to_owned())],
        vec![
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8".to_owned(),
            ),
            (
                "origin",
                "https://abc123.execute-api.eu-west-1.amazonaws.com".to_owned(),
            ),
        ],
    ] {
        neutral(&post_raw(&deps, email_form(&buyer), headers, "198.51.100.1").await);
    }
    assert_eq!(sent_emails(&buyer).await.len(), 3);

    // Login CSRF: a cross-site post of someone's token neither signs in nor spends it.
    let token = token_sent_to(&buyer).await;
    let cross_site = vec![
        ("content-type", form.clone()),
        ("origin", "https://evil.example".to_owned()),
    ];
    refused(&post_raw(&deps, format!("token={token}"), cross_site, "198.51.100.1").await);
    let signed_in = post_raw(
        &deps,
        format!("token={token}"),
        same_origin(),
        "198.51.100.1",
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_ip_over_its_limit_does_not_lock_the_email() {
    let deps = deps().await;
    let buyer = address("victim");
    buy(&deps, &buyer, "pay_victim").await;
    let attacker = "198.51.100.66";
    for _ in 0..20 {
        neutral(&post_raw(&deps, email_form(&address("junk")), same_origin(), attacker).await);
    }
    // At the top of the hour the attacker asks for the buyer's address again and again.
    for _ in 0..6 {
        limited(
            &post_raw(&deps, email_form(&buyer), same_origin(), attacker).await,
            "from your network",
        );
    }
    assert!(sent_emails(&buyer).await.is_empty());
    // The buyer, from their own address, still gets a link.
    neutral(&post_raw(&deps, email_form(&buyer), same_origin(), "203.0.113.77").await);
    assert_eq!(sent_emails(&buyer).await.len(), 1);
}

#[tokio::test]
async fn limits_are_keyed_on_the_client_ip_header_when_set() {
    // Behind CloudFront every request comes from CloudFront's address.
    let proxy = "192.0.2.1";
    let viewer = |address: &str| {
        let mut headers = same_origin();
        headers.push(("cloudfront-viewer-address", format!("{address}:51234")));
        headers
    };
    let cdn = deps_with(&[("CLIENT_IP_HEADER", "cloudfront-viewer-address".to_owned())]).await;
    let buyer = address("behind-cdn");
    buy(&cdn, &buyer, "pay_cdn").await;
    for _ in 0..20 {
        neutral(
            &post_raw(
                &cdn,
                email_form(&address("junk")),
                viewer("198.51.100.5"),
                proxy,
            )
            .await,
        );
    }
    limited(
        &post_raw(
            &cdn,
            email_form(&address("junk")),
            viewer("198.51.100.5"),
            proxy,
        )
        .await,
        "from your network",
    );
    // Another viewer behind the same proxy is not affected.
    neutral(&post_raw(&cdn, email_form(&buyer), viewer("198.51.100.6"), proxy).await);
    assert_eq!(sent_emails(&buyer).await.len(), 1);

    // Without CLIENT_IP_HEADER the header is ignored: changing it does not reset the limit.
    let deps = deps().await;
    for n in 0..20 {
        let spoofed = viewer(&format!("198.51.100.{n}"));
        neutral(
            &post_raw(
                &deps,
                email_form(&address("junk")),
                spoofed,
                "198.51.100.200",
            )
            .await,
        );
    }
    limited(
        &post_raw(
            &deps,
            email_form(&address("junk")),
            viewer("198.51.100.99"),
            "198.51.100.200",
        )
        .await,
        "from your network",
    );
}

#[tokio::test]
async fn the_site_wide_email_cap_holds_and_answers_like_any_other_request() {
    let deps = deps_with(&[("RESTORE_EMAILS_PER_HOUR", "2".to_owned())]).await;
    let buyers: Vec<String> = (0..3).map(|_| address("capped")).collect();
    for (n, buyer) in buyers.iter().enumerate() {
        buy(&deps, buyer, &format!("pay_cap{n}")).await;
    }
    let mut pages = Vec::new();
    for (n, buyer) in buyers.iter().enumerate() {
        let ip = format!("203.0.113.{}", 100 + n);
        pages.push(neutral(
            &post_raw(&deps, email_form(buyer), same_origin(), &ip).await,
        ));
    }
    assert!(pages.iter().all(|page| *page == pages[0]), "one answer");
    let sent = sent_counts(&buyers).await;
    assert_eq!(sent, [1, 1, 0], "two emails an hour site-wide");
}

async fn sent_counts(buyers: &[String]) -> Vec<usize> {
    let mut lengths = Vec::new();
    for buyer in buyers {
        lengths.push(sent_emails(buyer).await.len());
    }
    lengths
}

#[tokio::test]
async fn answers_that_depend_on_a_purchase_wait_for_the_floor_and_limits_do_not() {
    let mut deps = deps().await;
    deps.restore_floor = std::time::Duration::from_millis(400);
    let buyer = address("timed");
    buy(&deps, &buyer, "pay_timed").await;
    for email in [buyer.clone(), address("unpaid")] {
        let started = std::time::Instant::now();
        neutral(&post_raw(&deps, email_form(&email), same_origin(), "203.0.113.9").await);
        assert!(
            started.elapsed() >= deps.restore_floor,
            "{email}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(sent_emails(&buyer).await.len(), 1);
    // A refusal that reveals nothing about purchases does not hold the function.
    let started = std::time::Instant::now();
    refused(
        &post_raw(
            &deps,
            email_form(&buyer),
            vec![("content-type", "text/plain".to_owned())],
            "203.0.113.9",
        )
        .await,
    );
    assert!(started.elapsed() < deps.restore_floor);
}

async fn ask_from(deps: &SuccessDeps, email: &str, source_ip: &str) -> Response<Body> {
    let body = format!("email={}", email.replace('@', "%40"));
    let mut event: serde_json::Value =
        serde_json::from_str(&event("POST", "", vec![], Some(body))).unwrap();
    event["requestContext"]["http"]["sourceIp"] = serde_json::json!(source_ip);
    handle(deps, request_from_event(&event.to_string()), now()).await
}

/// Issue 34, item 5: requests are counted per (address, client IP), so one network cannot
/// lock a buyer out; emails sent per address are capped instead; a new link replaces the
/// address's earlier open one.
#[tokio::test]
async fn one_network_cannot_lock_a_buyer_out_and_a_new_link_replaces_the_old() {
    let deps = deps().await;
    let buyer = address("lockout");
    buy(&deps, &buyer, "pay_lockout").await;
    // Three requests from an attacker's address, then it is limited, for that address only.
    for _ in 0..3 {
        neutral(&ask_from(&deps, &buyer, "198.51.100.66").await);
    }
    limited(
        &ask_from(&deps, &buyer, "198.51.100.66").await,
        "this address from your network",
    );
    assert_eq!(sent_emails(&buyer).await.len(), 3);
    let third = token_sent_to(&buyer).await;
    // The buyer, from another network, still gets a fresh link, which replaces the third.
    neutral(&ask_from(&deps, &buyer, "203.0.113.7").await);
    assert_eq!(sent_emails(&buyer).await.len(), 4);
    let fresh = token_sent_to(&buyer).await;
    assert_ne!(fresh, third);
    assert_ne!(
        press_button(&deps, &third, now()).await.status(),
        StatusCode::SEE_OTHER
    );
    // Emails sent to one address are capped: many networks together stop at the cap, and
    // the latest link sent still works.
    let cap = success_redirect::restore::EMAILS_PER_ADDRESS_PER_HOUR as usize;
    for network in 0..cap {
        neutral(&ask_from(&deps, &buyer, &format!("192.0.2.{}", network + 10)).await);
    }
    assert_eq!(sent_emails(&buyer).await.len(), cap);
    let latest = token_sent_to(&buyer).await;
    let response = press_button(&deps, &latest, now()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // A new request replaces the earlier open link.
    let other = address("replaced");
    buy(&deps, &other, "pay_replaced").await;
    neutral(&ask_from(&deps, &other, "203.0.113.8").await);
    let first = token_sent_to(&other).await;
    neutral(&ask_from(&deps, &other, "203.0.113.8").await);
    let second = token_sent_to(&other).await;
    assert_ne!(first, second);
    let response = press_button(&deps, &first, now()).await;
    assert_ne!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the first link was replaced"
    );
    assert!(response.headers().get("set-cookie").is_none());
    let response = press_button(&deps, &second, now()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Issue 34, item 6: no per-address key is a bare hash of the address.
    use sha2::Digest;
    let payments = deps.store.config().payments_table.clone();
    let table = llmxt_testkit::table_snapshot(&deps.store, &payments)
        .await
        .join("\n");
    for address in [&buyer, &other] {
        let bare = llmxt_domain::crypto::hex_encode(&sha2::Sha256::digest(address.as_bytes()));
        assert!(!table.contains(&bare), "{table}");
    }
    assert!(
        table.contains("limit#email#"),
        "the keyed counters are there"
    );
    // Nor of a client IP (the IPv4 space is small enough to reverse a bare hash).
    for ip in ["198.51.100.66", "203.0.113.7", "203.0.113.8"] {
        let bare = llmxt_domain::crypto::hex_encode(&sha2::Sha256::digest(ip.as_bytes()));
        assert!(!table.contains(&bare), "{table}");
    }
    assert!(
        table.contains("limit#ip#"),
        "the keyed IP counters are there"
    );
}
