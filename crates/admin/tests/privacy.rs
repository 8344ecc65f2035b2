//! `llmxt-admin export` and `forget` against DynamoDB Local: every record kind exported,
//! the address removed from every table and index while the money records stay, webhooks
//! and reconcile after erasure never bringing the address back, dry run and second run
//! writing nothing.
#![allow(clippy::unwrap_used)]

use llmxt_admin::{AdminError, run};
use llmxt_domain::config::Env;
use llmxt_domain::crypto::hex_encode;
use llmxt_domain::email::Email;
use llmxt_domain::time::{format_rfc3339, unix_now};
use llmxt_store::ledger::Outcome;
use llmxt_store::store::Store;
use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY, payment_object};
use llmxt_testkit::{apply_body, dodo_body, fresh_store, table_snapshot};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BUYER: &str = "john.doe@example.com";
const OTHER: &str = "someone.else@example.com";
const PRIVACY_KEY: &str = "privacy-key-for-tests-0123456789abcdef";

fn env_for(store: &Store, extra: &[(&str, &str)]) -> Env {
    let config = store.config();
    let mut pairs: Vec<(String, String)> = vec![
        (
            "ENTITLEMENTS_TABLE".into(),
            config.entitlements_table.clone(),
        ),
        ("PAYMENTS_TABLE".into(), config.payments_table.clone()),
        ("DYNAMODB_ENDPOINT".into(), config.endpoint.clone().unwrap()),
        ("PRIVACY_KEY".into(), PRIVACY_KEY.into()),
        (
            "ENTITLEMENT_SECRET".into(),
            llmxt_testkit::TEST_ENTITLEMENT_SECRET.into(),
        ),
        ("LLMXT_OPERATOR".into(), "alice".into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Env::from_pairs(pairs)
}

/// The keyed part of the buyer's counter keys, as the functions write it (HMAC under the
/// signing key of ENTITLEMENT_SECRET; issue 34, item 6).
fn counter_digest() -> String {
    let prefix = llmxt_domain::privacy::email_counter_prefix(
        llmxt_testkit::TEST_ENTITLEMENT_SECRET.as_bytes(),
        &email(BUYER),
    );
    prefix
        .trim_start_matches("limit#email#")
        .trim_end_matches('#')
        .to_owned()
}

async fn admin(env: &Env, args: &[&str]) -> Result<String, AdminError> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut out = Vec::new();
    run(&args, env, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

fn paid(payment_id: &str, email: &str, subscription_id: Option<&str>) -> String {
    dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(payment_id);
        v["data"]["customer"]["email"] = json!(email);
        v["data"]["customer"]["customer_id"] = json!(format!("cus_{}", &email[..4]));
        v["data"]["subscription_id"] = json!(subscription_id);
        v["data"]["total_amount"] = json!(1999);
        v["data"]["currency"] = json!("EUR");
        v["data"]["metadata"] = json!({"checkout_ref": format!("ref_{}", &email[..4])});
        v["data"]["created_at"] = json!(format_rfc3339(unix_now() - 600));
    })
}

fn subscription_active(subscription_id: &str, email: &str, next: i64) -> String {
    dodo_body("subscription.active.cli-generator", |v| {
        v["data"]["subscription_id"] = json!(subscription_id);
        v["data"]["customer"]["email"] = json!(email);
        v["data"]["next_billing_date"] = json!(format_rfc3339(next));
    })
}

fn refunded(payment_id: &str, email: &str) -> String {
    dodo_body("refund.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(payment_id);
        v["data"]["refund_id"] = json!(format!("ref_{payment_id}"));
        v["data"]["customer"]["email"] = json!(email);
    })
}

fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

/// The buyer has a one-time purchase, a subscription, a manual grant, an open sign-in
/// token and a rate-limit counter; another buyer has a purchase of their own.
async fn buyer_with_everything(store: &Store, env: &Env) {
    let now = unix_now();
    apply_body(store, "msg_once", &paid("pay_once", BUYER, None)).await;
    apply_body(
        store,
        "msg_sub",
        &subscription_active("sub_1", BUYER, now + 20 * 86_400),
    )
    .await;
    apply_body(store, "msg_sub_pay", &paid("pay_sub", BUYER, Some("sub_1"))).await;
    apply_body(store, "msg_other", &paid("pay_other", OTHER, None)).await;
    // A subscription in a status that grants nothing: recorded, with the address, no grant.
    let pending = dodo_body("subscription.active.cli-generator", |v| {
        v["data"]["subscription_id"] = json!("sub_pending");
        v["data"]["status"] = json!("pending");
        v["data"]["customer"]["email"] = json!(BUYER);
    });
    apply_body(store, "msg_pending", &pending).await;
    admin(
        env,
        &[
            "grant",
            BUYER,
            "--plan",
            "enterprise",
            "--until",
            "2099-01-01",
            "--reason",
            "goodwill",
        ],
    )
    .await
    .unwrap();
    store
        .put_restore_token("a1b2c3-token-hash", &email(BUYER), now + 900)
        .await
        .unwrap();
    let digest = counter_digest();
    let window_end = (now / 3600 + 1) * 3600;
    store
        .count_in_window(&format!("email#{digest}"), window_end)
        .await
        .unwrap();
    store
        .count_in_window("ip#some-ip-digest", window_end)
        .await
        .unwrap();
}

/// Both tables as text, for "the address appears nowhere" and "nothing changed".
async fn everything(store: &Store) -> String {
    let config = store.config().clone();
    let mut rows = table_snapshot(store, &config.entitlements_table).await;
    rows.extend(table_snapshot(store, &config.payments_table).await);
    rows.join("\n")
}

#[tokio::test]
async fn export_lists_every_record_kind_without_token_values() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    buyer_with_everything(&store, &env).await;
    let text = admin(&env, &["export", "John.Doe@Example.com"])
        .await
        .unwrap();
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["email"], json!(BUYER));
    let grants: Vec<&str> = export["entitlement"]["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(grants.len(), 3, "{grants:?}");
    assert!(grants.contains(&"pay_once") && grants.contains(&"sub_1"));
    let history = export["entitlement"]["history"].as_array().unwrap();
    assert!(
        history.iter().any(|c| c["by"] == json!("alice")),
        "operator history: {history:?}"
    );
    let mut payments: Vec<&str> = export["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["payment_id"].as_str().unwrap())
        .collect();
    payments.sort_unstable();
    assert_eq!(payments, ["pay_once", "pay_sub"]);
    let subscriptions: Vec<&str> = export["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subscription_id"].as_str().unwrap())
        .collect();
    assert_eq!(subscriptions, ["sub_1", "sub_pending"]);
    let kinds: Vec<&str> = export["restore_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2, "the other IP's counter is not the buyer's");
    assert!(kinds.contains(&"restore_token") && kinds.contains(&"rate_limit"));
    assert!(
        !text.contains("a1b2c3"),
        "no token (hash) in an export: {text}"
    );
    assert!(!text.contains(OTHER) && !text.contains("pay_other"));
    assert_eq!(export["erasure_receipt"], Value::Null);

    // After erasure and a new purchase, the export of the address shows the receipt.
    admin(&env, &["forget", BUYER, "--reason", "GDPR request 17"])
        .await
        .unwrap();
    apply_body(&store, "msg_new", &paid("pay_new", BUYER, None)).await;
    let export: Value =
        serde_json::from_str(&admin(&env, &["export", BUYER]).await.unwrap()).unwrap();
    assert_eq!(export["payments"].as_array().unwrap().len(), 1);
    let receipt = &export["erasure_receipt"];
    assert_eq!(receipt["erasures"][0]["reason"], json!("GDPR request 17"));
    assert_eq!(receipt["erasures"][0]["by"], json!("alice"));
    // Without PRIVACY_KEY the export says what it could not look up.
    let without_key = Env::from_pairs(
        ["ENTITLEMENTS_TABLE", "PAYMENTS_TABLE", "DYNAMODB_ENDPOINT"]
            .map(|name| (name, env.optional(name).unwrap())),
    );
    let text = admin(&without_key, &["export", BUYER]).await.unwrap();
    assert!(text.contains("PRIVACY_KEY is not set"), "{text}");
}

#[tokio::test]
async fn forget_removes_the_address_everywhere_keeps_the_money_and_runs_once() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    buyer_with_everything(&store, &env).await;
    let digest = counter_digest();
    let before = everything(&store).await;
    assert!(before.contains(BUYER) && before.contains(&digest));
    assert!(
        !before.contains(&hex_encode(&Sha256::digest(BUYER.as_bytes()))),
        "no counter is keyed by a bare hash of the address"
    );

    let dry = admin(
        &env,
        &["forget", BUYER, "--reason", "ticket 42", "--dry-run"],
    )
    .await
    .unwrap();
    assert!(dry.contains("dry run: nothing written"), "{dry}");
    assert!(dry.contains("pay_once") && dry.contains("sub_1"), "{dry}");
    assert_eq!(everything(&store).await, before, "a dry run writes nothing");

    let out = admin(
        &env,
        &["forget", BUYER, "--reason", "ticket 42", "--by", "dpo"],
    )
    .await
    .unwrap();
    assert!(
        out.starts_with(&format!("erased {BUYER} as erased_")),
        "{out}"
    );
    assert!(out.contains("entitlement deleted: 3 grant(s)"), "{out}");
    assert!(
        out.contains("sign-in tokens and rate-limit counters deleted: 2"),
        "{out}"
    );
    assert!(out.contains("warning: subscription sub_1"), "{out}");
    assert!(out.contains("customer cus_john"), "{out}");

    let after = everything(&store).await;
    assert!(!after.contains(BUYER), "the address is gone: {after}");
    assert!(!after.contains(&digest), "so are its counters: {after}");
    assert!(
        !after.contains("cus_john") && !after.contains("ref_john"),
        "{after}"
    );
    assert!(after.contains(OTHER), "other buyers are untouched");
    assert!(
        store
            .payments_for_email(&email(BUYER))
            .await
            .unwrap()
            .is_empty(),
        "nothing in email-index"
    );
    assert!(
        store
            .get_entitlement(&email(BUYER))
            .await
            .unwrap()
            .is_none()
    );
    let kept = store.get_payment("pay_once").await.unwrap().unwrap();
    assert_eq!(
        (
            kept.total_amount,
            kept.currency.as_deref(),
            kept.status.as_str(),
            kept.product_id.as_deref(),
        ),
        (Some(1999), Some("EUR"), "succeeded", Some("pdt_test"))
    );
    let pseudonym = kept.erased_as.clone().unwrap();
    assert!(after.contains(&format!("erasure#{pseudonym}")));
    assert!(after.contains("ticket 42") && after.contains("dpo"));
    let listed = admin(&env, &["payments", "--since", "1d"]).await.unwrap();
    assert!(
        listed.starts_with("3 payment(s)") && !listed.contains("erasure"),
        "the receipt is not listed as a payment: {listed}"
    );

    // show finds the receipt from the address.
    let shown = admin(&env, &["show", BUYER]).await.unwrap();
    assert!(
        shown.contains("erased ") && shown.contains("by dpo: ticket 42"),
        "{shown}"
    );

    // A second forget changes nothing.
    let again = admin(&env, &["forget", BUYER, "--reason", "ticket 42"])
        .await
        .unwrap();
    assert!(
        again.starts_with(&format!(
            "nothing stored for {BUYER}: nothing changed (erased "
        )),
        "{again}"
    );
    assert_eq!(everything(&store).await, after);
}

#[tokio::test]
async fn forget_refuses_without_a_key_or_with_the_address_in_the_reason() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    apply_body(&store, "msg_once", &paid("pay_once", BUYER, None)).await;
    let before = everything(&store).await;
    let weak = admin(
        &env_for(&store, &[("PRIVACY_KEY", "short")]),
        &["forget", BUYER, "--reason", "x"],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        weak.starts_with("configuration error: PRIVACY_KEY is too weak"),
        "{weak}"
    );
    let leaky = admin(
        &env,
        &["forget", BUYER, "--reason", "asked by John.Doe@example.com"],
    )
    .await
    .unwrap_err();
    assert_eq!(leaky.exit_code(), 2);
    assert!(
        leaky.to_string().contains("must not contain the address"),
        "{leaky}"
    );
    assert_eq!(everything(&store).await, before);
}

#[tokio::test]
async fn webhooks_after_erasure_update_payments_without_bringing_the_address_back() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    let now = unix_now();
    apply_body(&store, "msg_once", &paid("pay_once", BUYER, None)).await;
    apply_body(
        &store,
        "msg_sub",
        &subscription_active("sub_1", BUYER, now + 20 * 86_400),
    )
    .await;
    apply_body(
        &store,
        "msg_sub_pay",
        &paid("pay_sub", BUYER, Some("sub_1")),
    )
    .await;
    admin(&env, &["forget", BUYER, "--reason", "request 9"])
        .await
        .unwrap();

    // A late refund: recorded on the payment, no buyer, no entitlement.
    let outcome = apply_body(&store, "msg_refund", &refunded("pay_once", BUYER)).await;
    assert_eq!(
        outcome,
        Outcome::Processed {
            attention: None,
            email: None
        }
    );
    let payment = store.get_payment("pay_once").await.unwrap().unwrap();
    assert_eq!(payment.refund_status.as_deref(), Some("refunded"));
    assert_eq!(payment.total_amount, Some(1999));
    assert!(payment.email.is_none() && payment.erased_as.is_some());
    // A duplicate of the payment under a new webhook-id, and the subscription's next
    // snapshot and renewal: still no address, no entitlement, no attention flag.
    apply_body(&store, "msg_once_again", &paid("pay_once", BUYER, None)).await;
    apply_body(
        &store,
        "msg_sub_again",
        &subscription_active("sub_1", BUYER, now + 50 * 86_400),
    )
    .await;
    let renewal = apply_body(
        &store,
        "msg_renewal",
        &paid("pay_renewal", BUYER, Some("sub_1")),
    )
    .await;
    assert_eq!(
        renewal,
        Outcome::Processed {
            attention: None,
            email: None
        }
    );
    assert!(
        store
            .get_entitlement(&email(BUYER))
            .await
            .unwrap()
            .is_none()
    );
    let all = everything(&store).await;
    assert!(!all.contains(BUYER) && !all.contains("cus_john"), "{all}");
    let renewal = store.get_payment("pay_renewal").await.unwrap().unwrap();
    assert_eq!(renewal.erased_as, payment.erased_as);
    let subscription = store.get_subscription("sub_1").await.unwrap().unwrap();
    assert_eq!(subscription.status, "active");
    assert!(subscription.email.is_none());

    // A new purchase with the same address starts afresh.
    apply_body(&store, "msg_new", &paid("pay_new", BUYER, None)).await;
    let entitlement = store.get_entitlement(&email(BUYER)).await.unwrap().unwrap();
    assert_eq!(
        entitlement.grants.keys().collect::<Vec<_>>(),
        ["pay_new"],
        "only the new purchase"
    );
    assert!(entitlement.is_pro(unix_now()));
    let payments = store.payments_for_email(&email(BUYER)).await.unwrap();
    assert_eq!(payments.len(), 1);
}

#[tokio::test]
async fn reconcile_does_not_reimport_erased_payments() {
    let store = fresh_store().await;
    let dodo = DodoStandIn::for_tests().await;
    let now = unix_now();
    let at = |seconds: i64| format_rfc3339(now + seconds);
    // Stored, then erased.
    dodo.add_payment(payment_object(
        "pay_kept",
        BUYER,
        "succeeded",
        "pdt_test",
        None,
        |p| {
            p["created_at"] = json!(at(-3600));
        },
    ));
    apply_body(&store, "msg_kept", &paid("pay_kept", BUYER, None)).await;
    // Never delivered before the erasure (a lost webhook of the erased buyer).
    dodo.add_payment(payment_object(
        "pay_lost",
        BUYER,
        "succeeded",
        "pdt_test",
        None,
        |p| {
            p["created_at"] = json!(at(-1800));
        },
    ));
    let mut env = env_for(
        &store,
        &[
            ("DODO_PAYMENTS_API_KEY", TEST_API_KEY),
            ("DODO_PAYMENTS_BASE_URL", &dodo.base_url),
            ("PRODUCT_PLANS", "pdt_test=professional"),
        ],
    );
    admin(&env, &["forget", BUYER, "--reason", "request 5"])
        .await
        .unwrap();
    // A new purchase after the erasure, whose webhook was lost: reconcile imports it.
    dodo.add_payment(payment_object(
        "pay_after",
        BUYER,
        "succeeded",
        "pdt_test",
        None,
        |p| {
            p["created_at"] = json!(at(60));
        },
    ));
    let reconcile = |apply: bool| {
        let mut args = vec![
            "reconcile",
            "--since",
            "72h",
            "--requests-per-minute",
            "100000",
        ];
        if apply {
            args.push("--apply");
        }
        args
    };

    let before = everything(&store).await;
    let dry = admin(&env, &reconcile(false)).await.unwrap();
    assert!(
        dry.contains("skipped 2 object(s) of erased buyers (erasure receipts): payment pay_lost, payment pay_kept")
            || dry.contains("skipped 2 object(s) of erased buyers (erasure receipts): payment pay_kept, payment pay_lost"),
        "{dry}"
    );
    assert!(
        dry.contains("1 difference(s)") && dry.contains("pay_after"),
        "{dry}"
    );
    assert_eq!(everything(&store).await, before);

    let applied = admin(&env, &reconcile(true)).await.unwrap();
    assert!(applied.contains("1 difference(s), 1 applied"), "{applied}");
    assert!(store.get_payment("pay_lost").await.unwrap().is_none());
    let entitlement = store.get_entitlement(&email(BUYER)).await.unwrap().unwrap();
    assert_eq!(entitlement.grants.keys().collect::<Vec<_>>(), ["pay_after"]);
    assert!(
        store
            .get_payment("pay_kept")
            .await
            .unwrap()
            .unwrap()
            .email
            .is_none()
    );
    let again = admin(&env, &reconcile(true)).await.unwrap();
    assert!(again.contains("0 difference(s), 0 applied"), "{again}");

    // Without PRIVACY_KEY a stored erased payment is still recognised.
    env = Env::from_pairs(
        [
            "ENTITLEMENTS_TABLE",
            "PAYMENTS_TABLE",
            "DYNAMODB_ENDPOINT",
            "DODO_PAYMENTS_API_KEY",
            "DODO_PAYMENTS_BASE_URL",
            "PRODUCT_PLANS",
        ]
        .map(|name| (name, env.optional(name).unwrap())),
    );
    let without_key = admin(&env, &reconcile(false)).await.unwrap();
    assert!(without_key.contains("payment pay_kept"), "{without_key}");
    assert!(
        !without_key.contains(&format!("pay_kept {BUYER}")),
        "{without_key}"
    );
}
