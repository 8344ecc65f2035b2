//! Test support shared by the workspace's tests: real DynamoDB Local tables, the Dodo
//! fixtures, and signed requests. Never used by the functions themselves.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use llmxt_core::config::StoreConfig;
use llmxt_core::secret::Secret;
use llmxt_core::store::{ClientProfile, Store};
use llmxt_core::webhook_signature::{self, WebhookSecrets};

/// The variable naming the DynamoDB Local endpoint the tests use.
pub const ENDPOINT_VARIABLE: &str = "LLMXT_TEST_DYNAMODB_ENDPOINT";

/// The documented test webhook secret (also used by `events/`).
pub const TEST_WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The documented test cookie secret.
pub const TEST_ENTITLEMENT_SECRET: &str = "test-entitlement-secret-0123456789abcdef";
/// The documented test server-to-server secret.
pub const TEST_HMAC_SECRET: &str = "test-hmac-secret-0123456789abcdef0123";

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

/// The DynamoDB Local endpoint; fails the test, saying how to get one, when it does not answer.
pub fn dynamodb_endpoint() -> String {
    let Ok(endpoint) = std::env::var(ENDPOINT_VARIABLE) else {
        panic!(
            "{ENDPOINT_VARIABLE} is not set. These tests need DynamoDB Local: run them with \
             `scripts/test.sh`, or start it with `scripts/dynamodb-local.sh start 8000` and set \
             {ENDPOINT_VARIABLE}=http://127.0.0.1:8000"
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
        "DynamoDB Local does not answer at {endpoint} ({ENDPOINT_VARIABLE}). Start it with \
         `scripts/dynamodb-local.sh start <port>` or run the tests with `scripts/test.sh`."
    );
    endpoint
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

/// Every item of a table, for asserting that nothing else was written.
pub async fn scan_all(
    store: &Store,
    table: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let output = store
        .client()
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan");
    output.items.unwrap_or_default()
}

/// Both tables' item counts: (entitlements, payments).
pub async fn table_sizes(store: &Store) -> (usize, usize) {
    let config = store.config().clone();
    (
        scan_all(store, &config.entitlements_table).await.len(),
        scan_all(store, &config.payments_table).await.len(),
    )
}
