//! `llmxt-admin show`, `export` and `forget` with usage counters, against DynamoDB Local.
#![allow(clippy::unwrap_used)]

use llmxt_admin::run;
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::time::unix_now;
use llmxt_domain::usage::{Bucket, hold_id};
use llmxt_store::store::Store;
use llmxt_store::usage::{ReserveOutcome, ReserveWrite, UsageItem};
use llmxt_testkit::fresh_store;
use serde_json::Value;

const BUYER: &str = "meter.user@example.com";

fn env_for(store: &Store) -> Env {
    let config = store.config();
    Env::from_pairs([
        ("ENTITLEMENTS_TABLE", config.entitlements_table.clone()),
        ("PAYMENTS_TABLE", config.payments_table.clone()),
        ("DYNAMODB_ENDPOINT", config.endpoint.clone().unwrap()),
        (
            "PRIVACY_KEY",
            "privacy-key-for-tests-0123456789abcdef".to_owned(),
        ),
        ("LLMXT_OPERATOR", "alice".to_owned()),
        (
            "ENTITLEMENT_SECRET",
            llmxt_testkit::TEST_ENTITLEMENT_SECRET.to_owned(),
        ),
    ])
}

async fn admin(env: &Env, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut out = Vec::new();
    run(&args, env, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

async fn consume(store: &Store, email: &Email, amount: i64) {
    let now = unix_now();
    let bucket = Bucket {
        grant: "pay_meter".to_owned(),
        resets_at: now + 86_400,
    };
    let outcome = store
        .reserve(ReserveWrite {
            email,
            meter: "tokens",
            bucket: &bucket,
            limit: Some(1_000),
            amount,
            hold_id: &hold_id("k1"),
            expires_at: now + 300,
            consume: true,
            read: &UsageItem::default(),
            now,
        })
        .await
        .unwrap();
    assert!(matches!(outcome, ReserveOutcome::Granted { .. }));
}

#[tokio::test]
async fn show_and_export_include_usage_and_forget_removes_it() {
    let store = fresh_store().await;
    let env = env_for(&store);
    let email = Email::parse(BUYER).unwrap();
    let grant = llmxt_domain::records::Grant {
        key: "pay_meter".into(),
        source: "payment".into(),
        plan: "professional".into(),
        status: "active".into(),
        ..Default::default()
    };
    let mut entitlement = llmxt_domain::records::Entitlement::new(email.clone());
    entitlement.grants.insert(grant.key.clone(), grant);
    store.put_entitlement(&entitlement).await.unwrap();
    consume(&store, &email, 40).await;

    let shown = admin(&env, &["show", BUYER]).await;
    assert!(shown.contains("usage:"), "{shown}");
    let line = shown
        .lines()
        .find(|l| l.trim_start().starts_with("tokens"))
        .unwrap();
    assert!(line.contains("used 40"), "{line}");
    assert!(line.contains("limit 1000"), "{line}");
    assert!(line.contains("remaining 960"), "{line}");

    let exported: Value = serde_json::from_str(&admin(&env, &["export", BUYER]).await).unwrap();
    assert_eq!(exported["usage"]["tokens"]["periods"][0]["used"], 40);
    assert_eq!(
        exported["usage"]["tokens"]["periods"][0]["grant"],
        "pay_meter"
    );

    let dry = admin(
        &env,
        &["forget", BUYER, "--reason", "ticket 7", "--dry-run"],
    )
    .await;
    assert!(
        dry.contains("usage: would delete the counters of tokens"),
        "{dry}"
    );
    assert_eq!(store.usage_of(&email).await.unwrap().len(), 1);
    let done = admin(&env, &["forget", BUYER, "--reason", "ticket 7"]).await;
    assert!(
        done.contains("usage: deleted the counters of tokens"),
        "{done}"
    );
    assert!(store.usage_of(&email).await.unwrap().is_empty());
}
