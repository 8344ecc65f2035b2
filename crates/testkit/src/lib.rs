//! Test support shared by the workspace's tests: real DynamoDB Local tables, the Dodo
//! fixtures, and signed requests. Never used by the functions themselves.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

pub mod dodo;
pub mod faults;
pub mod logs;
pub mod runtime_api;

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use llmxt_domain::secret::Secret;
use llmxt_domain::webhook_signature::{self, WebhookSecrets};
use llmxt_store::config::StoreConfig;
use llmxt_store::store::{ClientProfile, Store};

/// The variable naming the DynamoDB Local endpoint the tests use.
pub const ENDPOINT_VARIABLE: &str = "LLMXT_TEST_DYNAMODB_ENDPOINT";

/// The documented test webhook secret (also used by `events/`).
pub const TEST_WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The documented test cookie secret.
pub const TEST_ENTITLEMENT_SECRET: &str = "test-entitlement-secret-0123456789abcdef";
/// The documented test server-to-server secret.
pub const TEST_HMAC_SECRET: &str = "test-hmac-secret-0123456789abcdef0123";
/// The documented test pass signing key (`openssl genpkey -algorithm ed25519`).
pub const TEST_PASS_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIEihHyKrmXCyFgpiSOQfSk+dAIWnM7MKG2puz2q39wz3\n-----END PRIVATE KEY-----\n";
/// A retired test pass key: the private half, to sign passes from before a rotation.
pub const TEST_PASS_RETIRED_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKZ3Ab776SBJq+vwjchCPSWnnoVLYN7FSesCOJJhI9AN\n-----END PRIVATE KEY-----\n";
/// The public half of [`TEST_PASS_RETIRED_KEY`] (`openssl pkey -pubout`), as
/// `PASS_VERIFY_KEYS_PREVIOUS` holds it.
pub const TEST_PASS_RETIRED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAPRhwo4KQv+Tmdv5KsmaEFe+nr/wfe7AZsn6t1jLCcuE=\n-----END PUBLIC KEY-----\n";

/// Serves HTTP/1 on `listener` in the background, each request answered by
/// `answer(state, request)`: the one accept loop of the test servers (Runtime API, Dodo).
pub fn serve_http<S, F>(
    listener: tokio::net::TcpListener,
    state: S,
    answer: fn(S, hyper::Request<hyper::body::Incoming>) -> F,
) where
    S: Clone + Send + Sync + 'static,
    F: std::future::Future<Output = hyper::Response<http_body_util::Full<hyper::body::Bytes>>>
        + Send
        + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let reply = answer(state.clone(), request);
                    async move { Ok::<_, std::convert::Infallible>(reply.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file under `fixtures/`, as text.
pub fn fixture(relative: &str) -> String {
    let path = repo_root().join("fixtures").join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// A Dodo fixture re-serialised compactly, with `edit` applied to its JSON first.
pub fn dodo_body(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(&fixture(&format!("dodo/{name}.json"))).unwrap();
    edit(&mut value);
    serde_json::to_string(&value).unwrap()
}

/// The test webhook secrets.
pub fn webhook_secrets() -> WebhookSecrets {
    WebhookSecrets::parse(TEST_WEBHOOK_SECRET).unwrap()
}

/// `webhook-signature` for a body, signed with the test secret.
pub fn sign_webhook(id: &str, timestamp: i64, body: &str) -> String {
    webhook_signature::sign(&webhook_secrets().keys()[0], id, timestamp, body.as_bytes())
}

/// The test cookie key.
pub fn entitlement_secret() -> Secret {
    Secret::new(TEST_ENTITLEMENT_SECRET.as_bytes().to_vec())
}

/// The site the tests' functions serve (`NEXT_PUBLIC_SITE_URL`), and so the cookie audience.
pub const TEST_SITE: &str = "https://pro.example.com";

/// Signs and verifies cookies as the test functions do: the test key, [`TEST_SITE`].
pub fn token_signer() -> llmxt_domain::token::TokenSigner {
    llmxt_domain::token::TokenSigner::new(vec![entitlement_secret()], TEST_SITE)
}

/// The DynamoDB Local endpoint; fails the test, saying how to get one, when it does not answer.
pub fn dynamodb_endpoint() -> String {
    service_endpoint(
        ENDPOINT_VARIABLE,
        "DynamoDB Local",
        "dynamodb-local.sh",
        8000,
    )
}

/// The variable naming the SES emulator endpoint the tests use.
pub const SES_ENDPOINT_VARIABLE: &str = "LLMXT_TEST_SES_ENDPOINT";

/// The SES emulator endpoint; fails the test, saying how to get one, when it does not answer.
pub fn ses_endpoint() -> String {
    service_endpoint(
        SES_ENDPOINT_VARIABLE,
        "the SES emulator",
        "ses-local.sh",
        8005,
    )
}

/// The endpoint in `variable`, checked to answer; otherwise the test fails saying how to start
/// `service` with `scripts/{script}`.
fn service_endpoint(variable: &str, service: &str, script: &str, port: u16) -> String {
    let Ok(endpoint) = std::env::var(variable) else {
        panic!(
            "{variable} is not set. These tests need {service}: run them with \
             `scripts/test.sh`, or start it with `scripts/{script} start {port}` and set \
             {variable}=http://127.0.0.1:{port}"
        );
    };
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let reachable = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "{service} does not answer at {endpoint} ({variable}). Start it with \
         `scripts/{script} start <port>` or run the tests with `scripts/test.sh`."
    );
    endpoint
}

/// The emails the SES emulator holds for `recipient` (its `GET /store`), oldest first.
pub async fn sent_emails(recipient: &str) -> Vec<serde_json::Value> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<hyper::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("{}/store", ses_endpoint()).parse().unwrap();
    let response = client
        .get(uri)
        .await
        .expect("GET /store from the SES emulator");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let store: serde_json::Value = serde_json::from_slice(&body).unwrap();
    store["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|email| {
            email["destination"]["to"]
                .as_array()
                .is_some_and(|to| to.iter().any(|t| t.as_str() == Some(recipient)))
        })
        .cloned()
        .collect()
}

/// Table names unique to one test, so tests run in parallel on one DynamoDB Local.
pub fn unique_store_config() -> StoreConfig {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let suffix = format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    StoreConfig {
        entitlements_table: format!("test-entitlements-{suffix}"),
        payments_table: format!("test-payments-{suffix}"),
        endpoint: Some(dynamodb_endpoint()),
    }
}

/// A store on fresh, empty tables in DynamoDB Local.
pub async fn fresh_store() -> Store {
    let store = Store::connect(&unique_store_config(), ClientProfile::patient()).await;
    store
        .create_tables()
        .await
        .expect("create test tables in DynamoDB Local");
    store
}

/// Every item of a table (every page of the scan), for asserting that nothing else was
/// written.
pub async fn scan_all(
    store: &Store,
    table: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let output = store
            .client()
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(output.items.unwrap_or_default());
        start = output.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// Every item of a table written out canonically (maps sorted at every depth), sorted: for
/// comparing a table before and after something that must not write.
pub async fn table_snapshot(store: &Store, table: &str) -> Vec<String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    fn canonical(value: &AttributeValue) -> String {
        match value {
            AttributeValue::M(map) => {
                let sorted: std::collections::BTreeMap<_, _> =
                    map.iter().map(|(k, v)| (k, canonical(v))).collect();
                format!("{sorted:?}")
            }
            AttributeValue::L(list) => {
                format!("{:?}", list.iter().map(canonical).collect::<Vec<_>>())
            }
            other => format!("{other:?}"),
        }
    }
    let mut rows: Vec<String> = scan_all(store, table)
        .await
        .into_iter()
        .map(|item| canonical(&AttributeValue::M(item)))
        .collect();
    rows.sort();
    rows
}

/// Both tables' item counts: (entitlements, payments).
pub async fn table_sizes(store: &Store) -> (usize, usize) {
    let config = store.config().clone();
    (
        scan_all(store, &config.entitlements_table).await.len(),
        scan_all(store, &config.payments_table).await.len(),
    )
}

/// Like [`table_sizes`], without the rate-limit counters (`limit#…`): what a request that
/// must store nothing may still write.
pub async fn record_sizes(store: &Store) -> (usize, usize) {
    let config = store.config().clone();
    let payments = scan_all(store, &config.payments_table).await;
    let records = payments
        .iter()
        .filter(|item| {
            !item["payment_id"]
                .as_s()
                .is_ok_and(|key| key.starts_with(llmxt_store::store::RATE_LIMIT_PREFIX))
        })
        .count();
    (
        scan_all(store, &config.entitlements_table).await.len(),
        records,
    )
}

/// Fixed clock of the sample events in `events/` (2026-01-10T17:55:53Z).
pub const EVENTS_TIME: i64 = 1_768_067_753;

/// An API Gateway HTTP API (v2) event, as Lambda receives it.
pub struct ApiGatewayEvent<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path, e.g. `/api/webhooks/dodo`.
    pub path: &'a str,
    /// Raw query string without `?`.
    pub query: &'a str,
    /// Headers (lower-case names).
    pub headers: Vec<(&'a str, String)>,
    /// Cookies (`name=value`).
    pub cookies: Vec<String>,
    /// Body.
    pub body: Option<String>,
}

impl ApiGatewayEvent<'_> {
    /// The event JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let mut headers = serde_json::Map::new();
        headers.insert("host".into(), "pro.example.com".into());
        headers.insert("x-forwarded-proto".into(), "https".into());
        for (name, value) in &self.headers {
            headers.insert((*name).to_owned(), value.clone().into());
        }
        let mut event = serde_json::json!({
            "version": "2.0",
            "routeKey": format!("{} {}", self.method, self.path),
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abcdef1234",
                "domainName": "pro.example.com",
                "domainPrefix": "pro",
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.10",
                    "userAgent": "llmxt-events"
                },
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "routeKey": format!("{} {}", self.method, self.path),
                "stage": "$default",
                "time": "10/Jan/2026:17:55:53 +0000",
                "timeEpoch": EVENTS_TIME * 1000
            },
            "isBase64Encoded": false
        });
        if !self.cookies.is_empty() {
            event["cookies"] = serde_json::json!(self.cookies);
        }
        if let Some(body) = &self.body {
            event["body"] = body.clone().into();
        }
        event
    }
}

/// A request as `lambda_http` builds it from an event file's JSON.
pub fn request_from_event(event_json: &str) -> lambda_http::Request {
    lambda_http::request::from_str(event_json).expect("a valid API Gateway v2 event")
}

/// A file under `events/`, as text.
pub fn event_file(name: &str) -> String {
    let path = repo_root().join("events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A signed webhook delivery as an API Gateway event.
pub fn webhook_event(
    id: &str,
    timestamp: i64,
    body: &str,
    signature: Option<String>,
) -> serde_json::Value {
    let signature = signature.unwrap_or_else(|| sign_webhook(id, timestamp, body));
    ApiGatewayEvent {
        method: "POST",
        path: "/api/webhooks/dodo",
        query: "",
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ],
        cookies: Vec::new(),
        body: Some(body.to_owned()),
    }
    .to_json()
}

/// Response body as text.
pub fn response_text(response: &lambda_http::Response<lambda_http::Body>) -> String {
    String::from_utf8_lossy(response.body().as_ref()).into_owned()
}

/// Response body as JSON.
pub fn response_json(response: &lambda_http::Response<lambda_http::Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref())
        .unwrap_or_else(|_| panic!("not JSON: {}", response_text(response)))
}

/// The test server-to-server key.
pub fn hmac_secret() -> Secret {
    Secret::new(TEST_HMAC_SECRET.as_bytes().to_vec())
}

/// Every sample event of `events/`, generated from the fixtures with the documented test
/// secrets at [`EVENTS_TIME`]. A test keeps the committed files equal to this.
pub fn sample_events() -> Vec<(&'static str, serde_json::Value)> {
    sample_events_at(EVENTS_TIME)
}

/// The same events, signed at time `t` (to feed binaries that read the real clock).
pub fn sample_events_at(t: i64) -> Vec<(&'static str, serde_json::Value)> {
    use llmxt_domain::request_signature::{SignedRequest, sign as sign_request};

    let payment = dodo_body("payment.succeeded.cli-generator", |_| {});
    let subscription = dodo_body("subscription.active.cli-generator", |_| {});
    let refund = dodo_body("refund.succeeded.cli-generator", |_| {});
    let get = |path: &'static str,
               query: &'static str,
               headers: Vec<(&'static str, String)>,
               cookies: Vec<String>| {
        ApiGatewayEvent {
            method: "GET",
            path,
            query,
            headers,
            cookies,
            body: None,
        }
        .to_json()
    };
    let buyer = llmxt_domain::email::Email::parse("john.doe@example.com").unwrap();
    let cookie = token_signer().issue(&buyer, "professional", t, 30 * 86_400);
    let email_query = "email=john.doe%40example.com";
    let signature = sign_request(
        &hmac_secret(),
        t,
        SignedRequest {
            method: "GET",
            path_and_query: "/api/entitlement?email=john.doe%40example.com",
            body: b"",
        },
    );
    vec![
        (
            "webhook-payment-succeeded.json",
            webhook_event("msg_events_payment", t, &payment, None),
        ),
        (
            "webhook-subscription-active.json",
            webhook_event("msg_events_subscription", t + 1, &subscription, None),
        ),
        (
            "webhook-refund-succeeded.json",
            webhook_event("msg_events_refund", t + 2, &refund, None),
        ),
        (
            "webhook-bad-signature.json",
            webhook_event(
                "msg_events_bad",
                t,
                &payment,
                Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_owned()),
            ),
        ),
        (
            "webhook-stale-timestamp.json",
            webhook_event("msg_events_stale", t - 3600, &payment, None),
        ),
        (
            "success-redirect.json",
            get(
                "/upgrade/success",
                "payment_id=pay_test&status=succeeded",
                vec![],
                vec![],
            ),
        ),
        (
            "entitlement-cookie.json",
            get(
                "/api/entitlement",
                "",
                vec![],
                vec![format!("__Host-llmxt_pro={cookie}")],
            ),
        ),
        (
            "entitlement-keys.json",
            get("/api/entitlement/keys", "", vec![], vec![]),
        ),
        (
            "entitlement-email-signed.json",
            get(
                "/api/entitlement",
                email_query,
                vec![
                    ("x-llmxt-timestamp", t.to_string()),
                    ("x-llmxt-signature", signature),
                ],
                vec![],
            ),
        ),
    ]
}

/// Environment for a function binary using the test secrets and `store`'s tables.
pub fn function_env(store: &Store) -> Vec<(&'static str, String)> {
    let config = store.config();
    vec![
        ("DODO_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET.to_owned()),
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET.to_owned()),
        ("HMAC_SECRET", TEST_HMAC_SECRET.to_owned()),
        ("REQUIRE_HMAC_SIGNATURE", "false".to_owned()),
        ("NEXT_PUBLIC_SITE_URL", TEST_SITE.to_owned()),
        ("PRODUCT_PLANS", "pdt_test=professional".to_owned()),
        ("ENTITLEMENTS_TABLE", config.entitlements_table.clone()),
        ("PAYMENTS_TABLE", config.payments_table.clone()),
        (
            "DYNAMODB_ENDPOINT",
            config.endpoint.clone().unwrap_or_default(),
        ),
    ]
}

/// Runs `events` (name, event JSON) through a function binary's real runtime loop and
/// returns each API Gateway response as JSON.
pub async fn invoke_binary(
    binary: &str,
    env: &[(&str, String)],
    events: &[(&str, String)],
) -> Vec<serde_json::Value> {
    let api = runtime_api::RuntimeApi::start().await;
    let _function = api.spawn_function(binary, env);
    let mut responses = Vec::new();
    for (name, event) in events {
        let body = api
            .invoke(name, event, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        responses.push(
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{name}: not JSON: {body}")),
        );
    }
    responses
}

/// Starts a function binary with `env` and returns its exit code and stderr; for checking
/// that bad configuration stops it at start.
pub async fn start_failure(binary: &str, env: &[(&str, String)]) -> (Option<i32>, String) {
    let api = runtime_api::RuntimeApi::start().await;
    let process = api.spawn_function(binary, env);
    tokio::task::spawn_blocking(move || process.wait_exit())
        .await
        .unwrap()
}

/// An endpoint on 127.0.0.1 where nothing listens: connections are refused.
pub fn closed_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// A store whose database refuses connections, its client bounded by `budget`.
pub async fn unreachable_store(budget: Duration) -> Store {
    let config = StoreConfig {
        endpoint: Some(closed_endpoint()),
        ..unique_store_config()
    };
    Store::connect(&config, ClientProfile::within(budget)).await
}

/// Applies a Dodo body to `store` as a verified delivery received now, as the webhook would
/// (`pdt_test` → professional, claims open 600 s, no grace).
pub async fn apply_body(
    store: &Store,
    webhook_id: &str,
    body: &str,
) -> llmxt_store::ledger::Outcome {
    use llmxt_store::ledger::{Delivery, apply_delivery};
    let plans =
        llmxt_domain::config::PlanCatalog::parse("pdt_test=professional", "professional").unwrap();
    let settings = llmxt_domain::policy::PolicySettings {
        plans: &plans,
        claim_ttl_seconds: 600,
        grace_seconds: 0,
    };
    let now = llmxt_domain::time::unix_now();
    let event = llmxt_domain::events::parse_event(body.as_bytes()).unwrap();
    let delivery = Delivery {
        webhook_id,
        origin: llmxt_store::ledger::Origin::Webhook,
        webhook_timestamp: now,
        received_at: now,
    };
    apply_delivery(store, settings, delivery, &event)
        .await
        .unwrap()
}
