//! Items the original system wrote (its documented schema): read as it meant them, adopted by
//! the first webhook that changes them, and written back in types its readers understand.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::StatusCode;
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::time::parse_rfc3339_seconds;
use llmxt_store::store::Store;
use llmxt_testkit::{
    EVENTS_TIME, TEST_ENTITLEMENT_SECRET, TEST_WEBHOOK_SECRET, event_file, fresh_store,
    request_from_event,
};
use webhook::config::WebhookConfig;
use webhook::{WebhookDeps, handle};

type Item = HashMap<String, AttributeValue>;

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

async fn deps() -> WebhookDeps {
    WebhookDeps {
        config: WebhookConfig::from_env(&Env::from_pairs([
            ("DODO_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET),
            ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
            ("PRODUCT_PLANS", "pdt_test=professional"),
        ]))
        .unwrap(),
        store: fresh_store().await,
    }
}

/// An entitlement item as the original system wrote it: no `version`, no `grants`, ISO times,
/// and attributes this project does not map.
fn original_item(email: &str, plan: &str, state: &str, expires_at: Option<&str>) -> Item {
    let mut item = Item::from([
        ("email".to_owned(), s(email)),
        ("plan".to_owned(), s(plan)),
        ("status".to_owned(), s(state)),
        ("payment_provider".to_owned(), s("stripe")),
        ("created_at".to_owned(), s("2024-03-01T10:00:00.000Z")),
        ("updated_at".to_owned(), s("2024-03-01T10:00:00.000Z")),
        (
            "metadata".to_owned(),
            AttributeValue::M(HashMap::from([("campaign".to_owned(), s("spring"))])),
        ),
    ]);
    if let Some(expires_at) = expires_at {
        item.insert("expires_at".to_owned(), s(expires_at));
    }
    item
}

async fn put_raw(store: &Store, table: &str, item: Item) {
    store
        .client()
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

async fn get_raw(store: &Store, table: &str, key: &str, value: &str) -> Item {
    store
        .client()
        .get_item()
        .table_name(table)
        .key(key, s(value))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

#[tokio::test]
async fn original_items_that_ended_or_are_free_give_no_pro_and_a_future_iso_end_gives_pro_until_then()
 {
    let deps = deps().await;
    let now = 1_780_000_000; // 2026-05-28
    let cases = [
        (
            "past@example.com",
            "professional",
            "active",
            Some("2025-01-01T00:00:00.000Z"),
            false,
        ),
        (
            "cancelled@example.com",
            "professional",
            "cancelled",
            Some("2024-06-01T00:00:00Z"),
            false,
        ),
        ("free@example.com", "free", "active", None, false),
        (
            "unknown-status@example.com",
            "professional",
            "paused_forever",
            None,
            false,
        ),
        (
            "future@example.com",
            "enterprise",
            "active",
            Some("2026-06-01T02:00:00+02:00"),
            true,
        ),
        (
            "seconds@example.com",
            "professional",
            "active",
            Some("1780000100"),
            true,
        ),
        // Forms other systems write: a date alone, no zone, `+0100`. A value that reads as
        // no time at all is an end long past, never "no end".
        (
            "date-only@example.com",
            "professional",
            "active",
            Some("2024-06-01"),
            false,
        ),
        (
            "no-zone@example.com",
            "professional",
            "active",
            Some("2026-06-01T00:00:00"),
            true,
        ),
        (
            "compact-offset@example.com",
            "professional",
            "active",
            Some("2026-05-29T09:00:00+0100"),
            true,
        ),
        (
            "unreadable@example.com",
            "professional",
            "active",
            Some("31/12/2099"),
            false,
        ),
        (
            "empty@example.com",
            "professional",
            "active",
            Some(""),
            true,
        ),
    ];
    let entitlements = deps.store.config().entitlements_table.clone();
    for (email, plan, state, expires_at, _) in cases {
        put_raw(
            &deps.store,
            &entitlements,
            original_item(email, plan, state, expires_at),
        )
        .await;
    }
    for (email, _, _, _, pro) in cases {
        let read = deps
            .store
            .get_entitlement(&Email::parse(email).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.is_pro(now), pro, "{email}");
        assert_eq!(read.version, 0, "{email}");
    }
    let future = deps
        .store
        .get_entitlement(&Email::parse("future@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let end = parse_rfc3339_seconds("2026-06-01T00:00:00Z").unwrap();
    assert_eq!(future.expires_at, Some(end));
    assert!(future.is_pro(end - 1) && !future.is_pro(end));
}

#[tokio::test]
async fn a_payment_for_an_item_without_version_is_stored_keeps_unknown_attributes_and_writes_the_original_types()
 {
    let deps = deps().await;
    let buyer = "john.doe@example.com";
    put_raw(
        &deps.store,
        &deps.store.config().entitlements_table,
        original_item(
            buyer,
            "professional",
            "expired",
            Some("2025-01-01T00:00:00.000Z"),
        ),
    )
    .await;
    let response = handle(
        &deps,
        request_from_event(&event_file("webhook-payment-succeeded.json")),
        EVENTS_TIME + 10,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);

    let entitlement = deps
        .store
        .get_entitlement(&Email::parse(buyer).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(entitlement.is_pro(EVENTS_TIME + 10));
    assert_eq!(entitlement.version, 1);

    let item = get_raw(
        &deps.store,
        &deps.store.config().entitlements_table,
        "email",
        buyer,
    )
    .await;
    // Attributes this project does not know survive the write.
    assert_eq!(
        item.get("metadata"),
        Some(&AttributeValue::M(HashMap::from([(
            "campaign".to_owned(),
            s("spring")
        )])))
    );
    // The summary in the original's types: a lifetime purchase has no `expires_at`, the
    // creation time is the original's, the provider is now Dodo.
    assert_eq!(text(&item, "created_at"), Some("2024-03-01T10:00:00.000Z"));
    assert_eq!(text(&item, "payment_provider"), Some("dodo"));
    assert!(!item.contains_key("expires_at"));
    assert!(["active", "cancelled", "expired"].contains(&text(&item, "status").unwrap()));
    assert!(["free", "professional", "enterprise"].contains(&text(&item, "plan").unwrap()));
    assert!(parse_rfc3339_seconds(text(&item, "updated_at").unwrap()).is_some());

    let payment = get_raw(
        &deps.store,
        &deps.store.config().payments_table,
        "payment_id",
        "pay_test",
    )
    .await;
    assert_eq!(
        payment.get("amount"),
        Some(&AttributeValue::N("400".to_owned()))
    );
    assert_eq!(text(&payment, "provider"), Some("dodo"));
    assert_eq!(text(&payment, "currency"), Some("USD"));
    assert_eq!(text(&payment, "status"), Some("succeeded"));
    assert_eq!(text(&payment, "product_id"), Some("pdt_test"));
    assert!(parse_rfc3339_seconds(text(&payment, "created_at").unwrap()).is_some());
    assert!(parse_rfc3339_seconds(text(&payment, "webhook_received_at").unwrap()).is_some());
}

#[tokio::test]
async fn a_summary_with_an_end_writes_it_as_iso_8601_and_numbers_already_stored_still_read() {
    let deps = deps().await;
    let buyer = Email::parse("numbers@example.com").unwrap();
    // An item this project wrote before: `expires_at` a number, a version.
    put_raw(
        &deps.store,
        &deps.store.config().entitlements_table,
        HashMap::from([
            ("email".to_owned(), s(buyer.as_str())),
            ("plan".to_owned(), s("professional")),
            ("status".to_owned(), s("active")),
            ("source".to_owned(), s("manual")),
            (
                "expires_at".to_owned(),
                AttributeValue::N("1900000000".to_owned()),
            ),
            ("updated_at".to_owned(), s("2026-01-01T00:00:00Z")),
            ("version".to_owned(), AttributeValue::N("4".to_owned())),
        ]),
    )
    .await;
    let read = deps.store.get_entitlement(&buyer).await.unwrap().unwrap();
    assert_eq!((read.expires_at, read.version), (Some(1_900_000_000), 4));
    assert!(read.is_pro(1_899_999_999));
    let mut changed = read.clone();
    changed.reason = Some("goodwill".to_owned());
    deps.store.put_entitlement(&changed).await.unwrap();
    let item = get_raw(
        &deps.store,
        &deps.store.config().entitlements_table,
        "email",
        buyer.as_str(),
    )
    .await;
    assert_eq!(text(&item, "expires_at"), Some("2030-03-17T17:46:40Z"));
    assert_eq!(
        item.get("version"),
        Some(&AttributeValue::N("5".to_owned()))
    );
    let again = deps.store.get_entitlement(&buyer).await.unwrap().unwrap();
    assert_eq!(again.expires_at, Some(1_900_000_000));
}

#[tokio::test]
async fn two_writers_adopting_one_unversioned_item_cannot_both_win() {
    let deps = deps().await;
    let buyer = Email::parse("race@example.com").unwrap();
    put_raw(
        &deps.store,
        &deps.store.config().entitlements_table,
        original_item(buyer.as_str(), "professional", "active", None),
    )
    .await;
    let read = deps.store.get_entitlement(&buyer).await.unwrap().unwrap();
    let mut first = read.clone();
    first.reason = Some("first".to_owned());
    let mut second = read;
    second.reason = Some("second".to_owned());
    use llmxt_store::store::CommitOutcome;
    assert_eq!(
        deps.store.put_entitlement(&first).await.unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(
        deps.store.put_entitlement(&second).await.unwrap(),
        CommitOutcome::Conflict
    );
}

#[tokio::test]
async fn a_refund_of_a_payment_in_the_original_schema_keeps_its_amount_and_first_receipt() {
    let deps = deps().await;
    let buyer = "john.doe@example.com";
    put_raw(
        &deps.store,
        &deps.store.config().entitlements_table,
        original_item(buyer, "professional", "active", None),
    )
    .await;
    let table = deps.store.config().payments_table.clone();
    let item: Item = HashMap::from([
        ("payment_id".to_owned(), s("pay_test")),
        ("email".to_owned(), s(buyer)),
        ("status".to_owned(), s("succeeded")),
        ("amount".to_owned(), AttributeValue::N("400".to_owned())),
        ("currency".to_owned(), s("USD")),
        ("provider".to_owned(), s("dodo")),
        ("created_at".to_owned(), s("2026-01-10T17:50:00.000Z")),
        (
            "webhook_received_at".to_owned(),
            s("2026-01-10T17:50:01.000Z"),
        ),
        ("receipt_number".to_owned(), s("R-1001")),
    ]);
    put_raw(&deps.store, &table, item).await;
    let response = handle(
        &deps,
        request_from_event(&event_file("webhook-refund-succeeded.json")),
        EVENTS_TIME + 10,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let payment = get_raw(&deps.store, &table, "payment_id", "pay_test").await;
    assert_eq!(text(&payment, "refund_status"), Some("refunded"));
    assert_eq!(
        payment.get("amount"),
        Some(&AttributeValue::N("400".to_owned()))
    );
    assert_eq!(
        text(&payment, "webhook_received_at"),
        Some("2026-01-10T17:50:01.000Z")
    );
    assert_eq!(text(&payment, "receipt_number"), Some("R-1001"));
}
