//! The DynamoDB store against DynamoDB Local.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use llmxt_domain::email::Email;
use llmxt_domain::policy::Changes;
use llmxt_domain::records::{
    DeliveryRecord, Entitlement, Freshness, PaymentRecord, SubscriptionRecord, source, status,
};
use llmxt_store::store::{ClaimOutcome, ClientProfile, CommitOutcome, Store, StoreError};
use llmxt_testkit::{fresh_store, table_sizes, unique_store_config};

const NOW: i64 = 1_800_000_000;

fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

fn delivery(id: &str) -> DeliveryRecord {
    DeliveryRecord {
        webhook_id: id.to_owned(),
        event_type: "payment.succeeded".to_owned(),
        processed_at: NOW,
        expires_at: NOW + DeliveryRecord::RETENTION_SECONDS,
    }
}

fn paid(payment_id: &str, buyer: &str, claim_expires_at: Option<i64>) -> PaymentRecord {
    PaymentRecord {
        payment_id: payment_id.to_owned(),
        email: Some(email(buyer)),
        status: "succeeded".to_owned(),
        plan: Some("professional".to_owned()),
        created_at: NOW - 60,
        updated_at: NOW,
        freshness: Some(Freshness {
            webhook_timestamp: NOW,
            event_timestamp_micros: 1,
        }),
        claim_expires_at,
        ..PaymentRecord::default()
    }
}

fn active(buyer: &str) -> Entitlement {
    Entitlement {
        status: status::ACTIVE.to_owned(),
        plan: "professional".to_owned(),
        source: source::PAYMENT.to_owned(),
        payment_id: Some("pay_1".to_owned()),
        updated_at: NOW,
        ..Entitlement::new(email(buyer))
    }
}

async fn commit_payment(store: &Store, webhook_id: &str, payment: PaymentRecord) {
    let changes = Changes {
        payment: Some(payment),
        ..Changes::default()
    };
    assert_eq!(
        store
            .commit(Some(&delivery(webhook_id)), &changes)
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
}

#[tokio::test]
async fn create_tables_is_idempotent_with_index_and_ttl() {
    let store = fresh_store().await;
    store.create_tables().await.expect("second run succeeds");
    let payments = store.config().payments_table.clone();
    let description = store
        .client()
        .describe_table()
        .table_name(&payments)
        .send()
        .await
        .unwrap();
    let table = description.table().unwrap();
    let index = &table.global_secondary_indexes()[0];
    assert_eq!(index.index_name(), Some("email-index"));
    let keys: Vec<_> = index
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_owned())
        .collect();
    assert_eq!(keys, ["email", "created_at"]);
    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(&payments)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
}

#[tokio::test]
async fn records_round_trip_and_missing_ones_are_none() {
    let store = fresh_store().await;
    assert_eq!(store.get_payment("pay_missing").await.unwrap(), None);
    assert_eq!(
        store
            .get_entitlement(&email("nobody@example.com"))
            .await
            .unwrap(),
        None
    );
    assert!(!store.delivery_seen("msg_1").await.unwrap());

    let subscription = SubscriptionRecord {
        subscription_id: "sub_1".to_owned(),
        status: "active".to_owned(),
        claim_payment_id: Some("pay_1".to_owned()),
        ..SubscriptionRecord::default()
    };
    let changes = Changes {
        payment: Some(paid("pay_1", "Buyer@Example.com", Some(NOW + 600))),
        subscription: Some(subscription),
        entitlement: Some(active("buyer@example.com")),
        attention: None,
        credits: None,
    };
    assert_eq!(
        store
            .commit(Some(&delivery("msg_1")), &changes)
            .await
            .unwrap(),
        CommitOutcome::Committed
    );

    let payment = store.get_payment("pay_1").await.unwrap().unwrap();
    assert_eq!(payment.email.unwrap().as_str(), "buyer@example.com");
    assert_eq!(payment.version, 1, "every write bumps the version");
    assert_eq!(payment.claim_expires_at, Some(NOW + 600));
    let entitlement = store
        .get_entitlement(&email("buyer@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert!(entitlement.is_pro(NOW));
    assert_eq!(
        store
            .claim_payment_for_subscription("sub_1")
            .await
            .unwrap()
            .as_deref(),
        Some("pay_1")
    );
    assert!(store.delivery_seen("msg_1").await.unwrap());
}

#[tokio::test]
async fn payments_for_email_uses_the_index_newest_first_and_lists_only_payments() {
    let store = fresh_store().await;
    let mut older = paid("pay_old", "buyer@example.com", None);
    older.created_at = NOW - 1000;
    commit_payment(&store, "msg_a", older).await;
    commit_payment(&store, "msg_b", paid("pay_new", "buyer@example.com", None)).await;
    commit_payment(
        &store,
        "msg_c",
        paid("pay_other", "other@example.com", None),
    )
    .await;
    // Eventually consistent index: DynamoDB Local updates it synchronously.
    let found: Vec<String> = store
        .payments_for_email(&email("buyer@example.com"))
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.payment_id)
        .collect();
    assert_eq!(found, ["pay_new", "pay_old"]);
}

#[tokio::test]
async fn a_delivery_commits_once() {
    let store = fresh_store().await;
    commit_payment(&store, "msg_1", paid("pay_1", "buyer@example.com", None)).await;
    let mut changed = store.get_payment("pay_1").await.unwrap().unwrap();
    changed.status = "failed".to_owned();
    let changes = Changes {
        payment: Some(changed),
        ..Changes::default()
    };
    assert_eq!(
        store
            .commit(Some(&delivery("msg_1")), &changes)
            .await
            .unwrap(),
        CommitOutcome::Duplicate
    );
    assert_eq!(
        store.get_payment("pay_1").await.unwrap().unwrap().status,
        "succeeded"
    );
}

#[tokio::test]
async fn a_stale_version_conflicts_and_a_failed_transaction_writes_nothing() {
    let store = fresh_store().await;
    commit_payment(&store, "msg_1", paid("pay_1", "buyer@example.com", None)).await;
    let (entitlements_before, payments_before) = table_sizes(&store).await;

    // The payment was read at version 0 (as if new) but is at version 1 now; the entitlement
    // and the delivery record in the same transaction must not be written either.
    let changes = Changes {
        payment: Some(paid("pay_1", "buyer@example.com", Some(NOW + 600))),
        entitlement: Some(active("buyer@example.com")),
        ..Changes::default()
    };
    assert_eq!(
        store
            .commit(Some(&delivery("msg_2")), &changes)
            .await
            .unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(
        table_sizes(&store).await,
        (entitlements_before, payments_before)
    );
    assert!(!store.delivery_seen("msg_2").await.unwrap());
    assert_eq!(
        store
            .get_payment("pay_1")
            .await
            .unwrap()
            .unwrap()
            .claim_expires_at,
        None
    );
    assert_eq!(
        store
            .get_entitlement(&email("buyer@example.com"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn versioned_entitlement_put_detects_concurrent_changes() {
    let store = fresh_store().await;
    assert_eq!(
        store
            .put_entitlement(&active("a@example.com"))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    let stored = store
        .get_entitlement(&email("a@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(
        store
            .put_entitlement(&active("a@example.com"))
            .await
            .unwrap(),
        CommitOutcome::Conflict
    );
    let mut revoked = stored.clone();
    revoked.status = status::REVOKED.to_owned();
    for grant in revoked.grants.values_mut() {
        grant.status = status::REVOKED.to_owned();
    }
    assert_eq!(
        store.put_entitlement(&revoked).await.unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(
        store.put_entitlement(&revoked).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(
        store
            .get_entitlement(&email("a@example.com"))
            .await
            .unwrap()
            .unwrap()
            .status,
        "revoked"
    );
}

#[tokio::test]
async fn fifty_concurrent_redemptions_have_exactly_one_winner() {
    let store = Arc::new(fresh_store().await);
    commit_payment(
        &store,
        "msg_1",
        paid("pay_1", "buyer@example.com", Some(NOW + 600)),
    )
    .await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.redeem_claim("pay_1", NOW).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    let mut already = 0;
    for task in tasks {
        match task.await.unwrap() {
            ClaimOutcome::Redeemed(payment) => {
                won += 1;
                assert_eq!(payment.email.unwrap().as_str(), "buyer@example.com");
                assert_eq!(payment.claim_redeemed_at, Some(NOW));
            }
            ClaimOutcome::AlreadyClaimed => already += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, already), (1, 49));
}

#[tokio::test]
async fn unredeemable_claims_say_why() {
    let store = fresh_store().await;
    assert_eq!(
        store.redeem_claim("pay_none", NOW).await.unwrap(),
        ClaimOutcome::NotStored
    );

    commit_payment(
        &store,
        "m1",
        paid("pay_expired", "a@example.com", Some(NOW)),
    )
    .await;
    assert_eq!(
        store.redeem_claim("pay_expired", NOW).await.unwrap(),
        ClaimOutcome::Expired
    );

    let mut failed = paid("pay_failed", "a@example.com", None);
    failed.status = "failed".to_owned();
    commit_payment(&store, "m2", failed).await;
    assert_eq!(
        store.redeem_claim("pay_failed", NOW).await.unwrap(),
        ClaimOutcome::Failed
    );

    let mut processing = paid("pay_processing", "a@example.com", None);
    processing.status = "processing".to_owned();
    commit_payment(&store, "m3", processing).await;
    assert_eq!(
        store.redeem_claim("pay_processing", NOW).await.unwrap(),
        ClaimOutcome::Pending
    );

    let mut refunded = paid("pay_refunded", "a@example.com", Some(NOW + 600));
    refunded.access_revoked = Some("refunded".to_owned());
    commit_payment(&store, "m4", refunded).await;
    assert_eq!(
        store.redeem_claim("pay_refunded", NOW).await.unwrap(),
        ClaimOutcome::Failed
    );

    let mut anonymous = paid("pay_anonymous", "a@example.com", Some(NOW + 600));
    anonymous.email = None;
    commit_payment(&store, "m5", anonymous).await;
    assert_eq!(
        store.redeem_claim("pay_anonymous", NOW).await.unwrap(),
        ClaimOutcome::Pending
    );

    commit_payment(
        &store,
        "m6",
        paid("pay_ok", "a@example.com", Some(NOW + 600)),
    )
    .await;
    assert!(matches!(
        store.redeem_claim("pay_ok", NOW).await.unwrap(),
        ClaimOutcome::Redeemed(_)
    ));
    assert_eq!(
        store.redeem_claim("pay_ok", NOW + 1).await.unwrap(),
        ClaimOutcome::AlreadyClaimed
    );
    // Redeeming changed the version, so a writer holding the old copy conflicts instead of
    // silently re-opening the claim.
    let changes = Changes {
        payment: Some(PaymentRecord {
            version: 1,
            ..paid("pay_ok", "a@example.com", Some(NOW + 600))
        }),
        ..Changes::default()
    };
    assert_eq!(
        store.commit(Some(&delivery("m7")), &changes).await.unwrap(),
        CommitOutcome::Conflict
    );
}

#[tokio::test]
async fn a_missing_table_is_a_typed_error() {
    let store = Store::connect(&unique_store_config(), ClientProfile::patient()).await;
    match store.get_payment("pay_1").await {
        Err(StoreError::MissingTable(_)) => {}
        other => panic!("expected MissingTable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_quickly() {
    let store = llmxt_testkit::unreachable_store(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    match store.get_entitlement(&email("a@example.com")).await {
        Err(error @ StoreError::Unavailable(_)) => {
            // What an operator reads (llmxt-admin, dev.sh): the causes in one line, no dump.
            let text = error.to_string();
            assert!(text.starts_with("database unavailable: "), "{text}");
            assert!(!text.contains('\n') && !text.contains(" { "), "{text}");
            assert!(text.len() < 300, "{text}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "bounded by the client timeouts"
    );
}

#[tokio::test]
async fn a_store_with_another_profile_shares_the_tables_and_takes_the_new_timeouts() {
    let store = fresh_store().await;
    let patient = ClientProfile::patient();
    let quick = ClientProfile::within(std::time::Duration::from_millis(250));
    let other = store.with_profile(quick);
    let timeouts = |s: &Store| s.client().config().timeout_config().cloned().unwrap();
    assert_eq!(
        timeouts(&other).operation_timeout(),
        Some(quick.operation_timeout)
    );
    assert_eq!(
        timeouts(&other).connect_timeout(),
        Some(quick.connect_timeout)
    );
    assert_eq!(
        other
            .client()
            .config()
            .retry_config()
            .unwrap()
            .max_attempts(),
        quick.max_attempts
    );
    assert_eq!(
        timeouts(&store).operation_timeout(),
        Some(patient.operation_timeout)
    );
    let buyer = "profile@example.com";
    store.put_entitlement(&active(buyer)).await.unwrap();
    let read = other.get_entitlement(&email(buyer)).await.unwrap().unwrap();
    assert_eq!(read.plan, "professional");
}
