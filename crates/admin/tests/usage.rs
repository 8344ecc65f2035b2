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
            draws: &[],
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

#[tokio::test]
async fn credit_adds_and_takes_credits_audited_and_never_below_zero() {
    let store = fresh_store().await;
    let env = env_for(&store);
    let email = Email::parse("credited@example.com").unwrap();
    let added = admin(
        &env,
        &[
            "credit",
            email.as_str(),
            "--meter",
            "tokens",
            "--amount",
            "1000",
            "--reason",
            "ticket 12",
        ],
    )
    .await;
    assert!(added.contains("added 1000 tokens credits"), "{added}");
    assert!(added.contains("1000 left"), "{added}");
    let took = admin(
        &env,
        &[
            "credit",
            email.as_str(),
            "--meter",
            "tokens",
            "--amount",
            "-300",
            "--reason",
            "duplicate",
        ],
    )
    .await;
    assert!(took.contains("took 300 tokens credits"), "{took}");
    assert!(took.contains("700 left"), "{took}");

    // Taking more than is left is refused and writes nothing.
    let args: Vec<String> = [
        "credit",
        email.as_str(),
        "--meter",
        "tokens",
        "--amount",
        "-701",
        "--reason",
        "too much",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut out = Vec::new();
    let error = run(&args, &env, &mut out).await.unwrap_err();
    assert!(error.to_string().contains("only 700 credits"), "{error}");
    for bad in ["0", "ten", "1000000000001"] {
        let args: Vec<String> = [
            "credit",
            email.as_str(),
            "--meter",
            "tokens",
            "--amount",
            bad,
            "--reason",
            "x",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        assert!(run(&args, &env, &mut Vec::new()).await.is_err(), "{bad}");
    }

    let item = &store.usage_of(&email).await.unwrap()["tokens"];
    assert_eq!(item.credits(unix_now()), 700);
    assert_eq!(item.adjustments.len(), 2);
    assert_eq!(
        (
            item.adjustments[1].amount,
            item.adjustments[1].by.as_str(),
            item.adjustments[1].reason.as_str()
        ),
        (-300, "alice", "duplicate")
    );

    let shown = admin(&env, &["show", email.as_str()]).await;
    assert!(shown.contains("credits 700"), "{shown}");
    assert!(shown.contains("credit -300"), "{shown}");
    let exported: Value =
        serde_json::from_str(&admin(&env, &["export", email.as_str()]).await).unwrap();
    assert_eq!(exported["credits"]["tokens"]["available"], 700);
    assert_eq!(
        exported["credits"]["tokens"]["operator_changes"][0]["reason"],
        "ticket 12"
    );

    let done = admin(&env, &["forget", email.as_str(), "--reason", "asked"]).await;
    assert!(done.contains("1 credit pack(s)"), "{done}");
    assert!(store.usage_of(&email).await.unwrap().is_empty());
}
