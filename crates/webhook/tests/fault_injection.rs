//! Faults: DynamoDB Local stopped and restarted in the middle of 1,000 mixed deliveries sent
//! by a Dodo-like sender (retries every non-2xx with backoff); a black-holed database.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::StatusCode;
use llmxt_domain::config::Env;
use llmxt_domain::time::{format_rfc3339, unix_now};
use llmxt_store::config::StoreConfig;
use llmxt_store::store::{ClientProfile, Store};
use llmxt_testkit::faults::{DynamoDbProcess, FaultProxy, ProxyMode};
use llmxt_testkit::{
    TEST_ENTITLEMENT_SECRET, TEST_WEBHOOK_SECRET, dodo_body, fresh_store, request_from_event,
    scan_all, unique_store_config, webhook_event,
};
use serde_json::json;
use webhook::config::WebhookConfig;
use webhook::{WebhookDeps, handle};

struct Event {
    id: String,
    timestamp: i64,
    body: String,
}

/// 1,000 deliveries across 120 buyers: one-time payments, failures, full refunds, lost
/// disputes, subscription lifecycles, and exact redeliveries. Deterministic.
fn mixed_events(base: i64) -> Vec<Event> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut events: Vec<Event> = Vec::new();
    let mut paid: Vec<Vec<String>> = vec![Vec::new(); 120];
    let mut subscription_step = [0_i64; 120];
    for i in 0..1000_i64 {
        let buyer = usize::try_from(next() % 120).unwrap();
        let email = format!("buyer{buyer}@example.com");
        let timestamp = base + i / 10;
        let event_time = format_rfc3339(timestamp).replace('Z', &format!(".{:06}Z", i));
        let roll = next() % 100;
        let body = if roll < 10 && !events.is_empty() {
            let index = usize::try_from(next()).unwrap() % events.len();
            let again = &events[index];
            events.push(Event {
                id: again.id.clone(),
                timestamp: again.timestamp,
                body: again.body.clone(),
            });
            continue;
        } else if roll < 45 {
            let payment_id = format!("pay_{buyer}_{i}");
            paid[buyer].push(payment_id.clone());
            dodo_body("payment.succeeded.cli-generator", |v| {
                v["data"]["payment_id"] = json!(payment_id);
                v["data"]["customer"]["email"] = json!(email);
            })
        } else if roll < 55 {
            dodo_body("payment.succeeded.cli-generator", |v| {
                v["type"] = json!("payment.failed");
                v["data"]["status"] = json!("failed");
                v["data"]["payment_id"] = json!(format!("pay_failed_{buyer}_{i}"));
                v["data"]["customer"]["email"] = json!(email);
            })
        } else if roll < 65 && !paid[buyer].is_empty() {
            let payment_id =
                paid[buyer][usize::try_from(next()).unwrap() % paid[buyer].len()].clone();
            dodo_body("refund.succeeded.cli-generator", |v| {
                v["data"]["payment_id"] = json!(payment_id);
                v["data"]["refund_id"] = json!(format!("ref_{i}"));
                v["data"]["customer"]["email"] = json!(email);
            })
        } else if roll < 70 && !paid[buyer].is_empty() {
            let payment_id = paid[buyer][0].clone();
            dodo_body("dispute.opened.cli-generator", |v| {
                v["type"] = json!("dispute.lost");
                v["data"]["dispute_status"] = json!("dispute_lost");
                v["data"]["payment_id"] = json!(payment_id);
                v["data"]["dispute_id"] = json!(format!("dp_{i}"));
                v["data"]["customer"]["email"] = json!(email);
            })
        } else {
            let step = subscription_step[buyer];
            subscription_step[buyer] += 1;
            let (status, period) = match step % 5 {
                0 => ("active", step),
                1 => ("active", step + 1),
                2 => ("on_hold", step + 1),
                3 => ("cancelled", step + 1),
                _ => ("expired", step + 1),
            };
            let next_billing = format_rfc3339(base + 30 * 86_400 * (period + 1));
            dodo_body("subscription.active.cli-generator", |v| {
                v["type"] = json!(format!("subscription.{status}"));
                v["data"]["status"] = json!(status);
                v["data"]["subscription_id"] = json!(format!("sub_{buyer}"));
                v["data"]["next_billing_date"] = json!(next_billing);
                v["data"]["expires_at"] = json!(if status == "expired" {
                    json!(format_rfc3339(base - 86_400))
                } else {
                    json!(null)
                });
                v["data"]["customer"]["email"] = json!(email);
            })
        };
        let body = body.replace(
            "2026-01-10T17:55:53.180Z\",\"type\"",
            &format!("{event_time}\",\"type\""),
        );
        let mut value: serde_json::Value = serde_json::from_str(&body).unwrap();
        value["timestamp"] = json!(event_time);
        events.push(Event {
            id: format!("msg_fault_{i}"),
            timestamp,
            body: value.to_string(),
        });
    }
    events
}

fn config() -> WebhookConfig {
    WebhookConfig::from_env(&Env::from_pairs([
        ("DODO_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET),
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
        ("PRODUCT_PLANS", "pdt_test=professional"),
    ]))
    .unwrap()
}

/// Sends like Dodo: until a 2xx, with exponential backoff. Returns how many attempts failed.
/// Each delivery is received a second after it was signed, on the test's clock, so a slow
/// machine never pushes a signature out of its ±300 s window and both runs see the same times.
async fn send_all(deps: &WebhookDeps, events: &[Event], mut on_event: impl FnMut(usize)) -> usize {
    let mut failures = 0;
    for (index, event) in events.iter().enumerate() {
        on_event(index);
        let request = webhook_event(&event.id, event.timestamp, &event.body, None).to_string();
        let mut backoff = Duration::from_millis(50);
        loop {
            let response = handle(deps, request_from_event(&request), event.timestamp + 1).await;
            if response.status() == StatusCode::OK {
                break;
            }
            assert!(
                response.status().is_server_error(),
                "only storage failures may be retried: {}",
                response.status()
            );
            failures += 1;
            assert!(failures < 2000, "the database never came back");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
    failures
}

/// Every item of both tables, without the fields that depend on when it ran.
async fn contents(store: &Store) -> (Vec<String>, Vec<String>) {
    fn clean(value: &AttributeValue) -> String {
        match value {
            AttributeValue::M(map) => {
                let kept: BTreeMap<_, _> = map
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "at" | "updated_at" | "revoked_at"))
                    .map(|(k, v)| (k.clone(), clean(v)))
                    .collect();
                format!("{kept:?}")
            }
            AttributeValue::L(list) => format!("{:?}", list.iter().map(clean).collect::<Vec<_>>()),
            other => format!("{other:?}"),
        }
    }
    let volatile = [
        "updated_at",
        "claim_expires_at",
        "processed_at",
        "ttl",
        "created_at",
    ];
    let mut tables = Vec::new();
    let config = store.config().clone();
    for table in [&config.entitlements_table, &config.payments_table] {
        let mut rows: Vec<String> = scan_all(store, table)
            .await
            .iter()
            .map(|item| {
                let kept: BTreeMap<_, _> = item
                    .iter()
                    .filter(|(k, _)| !volatile.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), clean(v)))
                    .collect();
                format!("{kept:?}")
            })
            .collect();
        rows.sort();
        tables.push(rows);
    }
    (tables.remove(0), tables.remove(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_and_duplicates_nothing() {
    let base = unix_now() - 120;
    let events = mixed_events(base);

    let baseline_store = fresh_store().await;
    let baseline = WebhookDeps {
        config: config(),
        store: baseline_store.clone(),
    };
    assert_eq!(send_all(&baseline, &events, |_| {}).await, 0);
    let expected = contents(&baseline_store).await;

    let database = std::sync::Arc::new(DynamoDbProcess::start());
    let store_config = StoreConfig {
        endpoint: Some(database.endpoint()),
        ..unique_store_config()
    };
    let store = Store::connect(&store_config, ClientProfile::patient()).await;
    store.create_tables().await.unwrap();
    let deps = WebhookDeps {
        config: config(),
        store: store.clone(),
    };
    let mut outage = None;
    let started = std::time::Instant::now();
    let failures = send_all(&deps, &events, |index| {
        if index == 300 {
            let database = std::sync::Arc::clone(&database);
            outage = Some(std::thread::spawn(move || {
                database.stop();
                std::thread::sleep(Duration::from_secs(5));
                database.restart();
            }));
        }
    })
    .await;
    outage.unwrap().join().unwrap();
    eprintln!(
        "fault run: {} deliveries, {failures} attempts answered 5xx and retried, {:.1} s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures > 0,
        "the outage was felt (answered 5xx and retried)"
    );

    let got = contents(&store).await;
    assert_eq!(got.0.len(), expected.0.len(), "entitlements");
    assert_eq!(
        got.1.len(),
        expected.1.len(),
        "payments, subscriptions and delivery records"
    );
    assert_eq!(
        got, expected,
        "the final state equals the fault-free run's, versions and histories included"
    );
}

#[tokio::test]
async fn a_black_holed_database_gets_a_5xx_before_dodos_timeout() {
    let proxy = FaultProxy::for_dynamodb().await;
    let store_config = StoreConfig {
        endpoint: Some(proxy.endpoint()),
        ..unique_store_config()
    };
    let store = Store::connect(&store_config, ClientProfile::patient()).await;
    store.create_tables().await.unwrap();
    let deps = WebhookDeps {
        config: config(),
        store,
    };
    proxy.set(ProxyMode::Blackhole);
    let now = unix_now();
    let body = dodo_body("payment.succeeded.cli-generator", |_| {});
    let request = webhook_event("msg_hole", now, &body, None).to_string();
    // Dodo gives up on a delivery after 15 s; the answer must come before that.
    let response = tokio::time::timeout(
        Duration::from_secs(15),
        handle(&deps, request_from_event(&request), now),
    )
    .await
    .expect("answered before Dodo's timeout");
    assert!(response.status().is_server_error(), "{}", response.status());
    proxy.set(ProxyMode::Pass);
    let retry = handle(&deps, request_from_event(&request), unix_now()).await;
    assert_eq!(retry.status(), StatusCode::OK);
}
