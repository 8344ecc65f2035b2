//! `llmxt-admin reconcile` against the Dodo stand-in and DynamoDB Local: what webhooks
//! missed is found across pages, applied through the ledger with the right plans, and a
//! second run finds and writes nothing.
#![allow(clippy::unwrap_used)]

use llmxt_admin::run;
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::time::{format_rfc3339, unix_now};
use llmxt_store::store::Store;
use llmxt_testkit::dodo::{DodoStandIn, TEST_API_KEY, payment_object, subscription_object};
use llmxt_testkit::{apply_body, dodo_body, fresh_store, table_snapshot};
use serde_json::json;

fn env(store: &Store, dodo: &DodoStandIn) -> Env {
    let config = store.config();
    Env::from_pairs([
        ("ENTITLEMENTS_TABLE", config.entitlements_table.clone()),
        ("PAYMENTS_TABLE", config.payments_table.clone()),
        ("DYNAMODB_ENDPOINT", config.endpoint.clone().unwrap()),
        ("DODO_PAYMENTS_API_KEY", TEST_API_KEY.to_owned()),
        ("DODO_PAYMENTS_BASE_URL", dodo.base_url.clone()),
        (
            "PRODUCT_PLANS",
            "pdt_test=professional,pdt_ent=enterprise".to_owned(),
        ),
    ])
}

async fn reconcile(env: &Env, apply: bool) -> String {
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
    let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
    let mut out = Vec::new();
    run(&args, env, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

async fn contents(store: &Store) -> (Vec<String>, Vec<String>) {
    let config = store.config().clone();
    (
        table_snapshot(store, &config.entitlements_table).await,
        table_snapshot(store, &config.payments_table).await,
    )
}

#[tokio::test]
async fn reconcile_finds_what_webhooks_missed_applies_it_once_and_then_finds_nothing() {
    let store = fresh_store().await;
    let dodo = DodoStandIn::for_tests().await;
    let now = unix_now();
    let at = |minutes_ago: i64| format_rfc3339(now - minutes_ago * 60);
    // 110 one-time payments (every fifth enterprise), 20 subscriptions with their first
    // payment, 3 failed, 3 fully refunded.
    for i in 0..110 {
        let product = if i % 5 == 0 { "pdt_ent" } else { "pdt_test" };
        dodo.add_payment(payment_object(
            &format!("pay_once{i:03}"),
            &format!("once{i}@example.com"),
            "succeeded",
            product,
            None,
            |p| {
                p["created_at"] = json!(at(i + 10));
            },
        ));
    }
    for i in 0..20 {
        let sub = format!("sub_r{i:02}");
        let email = format!("sub{i}@example.com");
        let mut subscription = subscription_object(
            &sub,
            &email,
            "active",
            "pdt_test",
            &format_rfc3339(now + 20 * 86_400),
        );
        subscription["created_at"] = json!(at(200 + i));
        dodo.add_subscription(subscription);
        dodo.add_payment(payment_object(
            &format!("pay_sub{i:02}"),
            &email,
            "succeeded",
            "pdt_test",
            Some(&sub),
            |p| {
                p["created_at"] = json!(at(200 + i));
            },
        ));
    }
    for i in 0..3 {
        dodo.add_payment(payment_object(
            &format!("pay_failed{i}"),
            &format!("failed{i}@example.com"),
            "failed",
            "pdt_test",
            None,
            |p| {
                p["created_at"] = json!(at(300 + i));
            },
        ));
        dodo.add_payment(payment_object(&format!("pay_refunded{i}"), &format!("refunded{i}@example.com"), "succeeded", "pdt_test", None, |p| {
            p["created_at"] = json!(at(310 + i));
            p["refund_status"] = json!("full");
            p["refunds"] = json!([{ "refund_id": format!("ref_{i}"), "status": "succeeded", "is_partial": false, "amount": 400, "created_at": at(5), "payment_id": format!("pay_refunded{i}") }]);
        }));
    }
    // One payment whose webhook did arrive: nothing to do for it.
    let delivered = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_once001");
        v["data"]["customer"]["email"] = json!("once1@example.com");
    });
    apply_body(&store, "msg_real", &delivered).await;
    let env = env(&store, &dodo);
    // Dodo rate-limits the first calls: the SDK backs off and the run completes.
    dodo.rate_limit_next(2);

    let before = contents(&store).await;
    let dry = reconcile(&env, false).await;
    assert!(
        dry.contains("Dodo lists 136 payment(s) and 20 subscription(s)"),
        "{dry}"
    );
    assert!(dry.contains("155 difference(s) (dry run"), "{dry}");
    assert!(
        dry.contains("refunded0@example.com") && dry.contains("missing (Dodo: succeeded)"),
        "{dry}"
    );
    assert_eq!(contents(&store).await, before, "a dry run writes nothing");
    let requests = dodo.take_requests();
    let pages = |path: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r.starts_with(path))
            .map(|r| {
                assert!(r.contains("page_size=100"), "{r}");
                r.split("page_number=")
                    .nth(1)
                    .unwrap()
                    .split('&')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        pages("GET /payments?"),
        ["0", "1", "2"],
        "0-based pages until an empty one"
    );
    // The first two calls were answered 429: retried after Retry-After.
    assert_eq!(pages("GET /subscriptions?"), ["0", "0", "0", "1"]);

    let applied = reconcile(&env, true).await;
    assert!(
        applied.contains("155 difference(s), 155 applied"),
        "{applied}"
    );
    for i in [0_usize, 7, 109] {
        let email = Email::parse(&format!("once{i}@example.com")).unwrap();
        let entitlement = store.get_entitlement(&email).await.unwrap().unwrap();
        let plan = if i % 5 == 0 {
            "enterprise"
        } else {
            "professional"
        };
        assert_eq!(
            entitlement.grants[&format!("pay_once{i:03}")].plan,
            plan,
            "{i}"
        );
        assert!(entitlement.is_pro(now));
        assert!(
            entitlement.history.iter().all(|c| c.by.starts_with("api ")),
            "{:?}",
            entitlement.history
        );
        let payment = store
            .get_payment(&format!("pay_once{i:03}"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            payment
                .claim_expires_at
                .is_none_or(|end| end <= payment.updated_at),
            "no fresh claim for an old success URL: {payment:?}"
        );
    }
    let sub = store
        .get_entitlement(&Email::parse("sub3@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(sub.grants["sub_r03"].gives_access(now));
    let refunded = store
        .get_entitlement(&Email::parse("refunded1@example.com").unwrap())
        .await;
    assert!(refunded.unwrap().is_none_or(|e| !e.is_pro(now)));
    assert_eq!(
        store
            .get_payment("pay_failed2")
            .await
            .unwrap()
            .unwrap()
            .status,
        "failed"
    );
    assert!(
        store
            .get_entitlement(&Email::parse("failed2@example.com").unwrap())
            .await
            .unwrap()
            .is_none()
    );

    let after = contents(&store).await;
    let again = reconcile(&env, true).await;
    assert!(again.contains("0 difference(s), 0 applied"), "{again}");
    assert_eq!(contents(&store).await, after, "a second run writes nothing");
}

#[tokio::test]
async fn reconcile_needs_an_api_key() {
    let store = fresh_store().await;
    let config = store.config();
    let env = Env::from_pairs([("DYNAMODB_ENDPOINT", config.endpoint.clone().unwrap())]);
    let args = vec!["reconcile".to_owned()];
    let error = run(&args, &env, &mut Vec::new()).await.unwrap_err();
    assert!(
        error.to_string().contains("DODO_PAYMENTS_API_KEY"),
        "{error}"
    );
}
