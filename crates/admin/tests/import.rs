//! `llmxt-admin import` against DynamoDB Local: dry run, idempotent re-run, bad lines, JSON
//! lines, Dodo's grants left alone, and a file spanning several transactions.
#![allow(clippy::unwrap_used)]

use llmxt_admin::{AdminError, run};
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::time::unix_now;
use llmxt_store::store::Store;
use llmxt_testkit::{dodo_body, fresh_store, table_snapshot};
use serde_json::json;

fn env_for(store: &Store) -> Env {
    let config = store.config();
    Env::from_pairs([
        (
            "ENTITLEMENTS_TABLE".to_owned(),
            config.entitlements_table.clone(),
        ),
        ("PAYMENTS_TABLE".to_owned(), config.payments_table.clone()),
        (
            "DYNAMODB_ENDPOINT".to_owned(),
            config.endpoint.clone().unwrap(),
        ),
        ("LLMXT_OPERATOR".to_owned(), "alice".to_owned()),
    ])
}

async fn import(store: &Store, text: &str, dry_run: bool) -> (Result<(), AdminError>, String) {
    let path = std::env::temp_dir().join(format!(
        "llmxt-import-{}-{}.txt",
        std::process::id(),
        unix_now() ^ text.len() as i64 ^ i64::from(dry_run)
    ));
    std::fs::write(&path, text).unwrap();
    let mut args = vec!["import".to_owned(), path.display().to_string()];
    if dry_run {
        args.push("--dry-run".to_owned());
    }
    let mut out = Vec::new();
    let result = run(&args, &env_for(store), &mut out).await;
    std::fs::remove_file(&path).unwrap();
    (result, String::from_utf8(out).unwrap())
}

async fn snapshot(store: &Store) -> (Vec<String>, Vec<String>) {
    let config = store.config();
    (
        table_snapshot(store, &config.entitlements_table).await,
        table_snapshot(store, &config.payments_table).await,
    )
}

async fn pro(store: &Store, email: &str) -> bool {
    store
        .get_entitlement(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .is_some_and(|e| e.is_pro(unix_now()))
}

const FILE: &str = "\
email,plan,expires_at,provider,payment_id,note
ann@example.com,professional,2099-01-01T00:00:00.000Z,stripe,ch_1,from the old shop
bob@example.com,enterprise,,stripe,ch_2,
not-an-email,professional,,stripe,ch_3,
cy@example.com,free,,stripe,ch_4,
dee@example.com,professional,next year,stripe,ch_5,
ann@example.com,enterprise,2099-06-01,paddle,txn_9,second purchase
";

#[tokio::test]
async fn a_dry_run_writes_nothing_and_reports_bad_lines_by_number() {
    let store = fresh_store().await;
    let before = snapshot(&store).await;
    let (result, out) = import(&store, FILE, true).await;
    assert!(
        matches!(result, Err(AdminError::LinesFailed(ref lines)) if lines.len() == 3),
        "{out}"
    );
    assert_eq!(result.unwrap_err().exit_code(), 1);
    assert!(out.contains("line 2: would grant professional to ann@example.com until 2099-01-01T00:00:00Z (import#stripe#ch_1)"), "{out}");
    assert!(
        out.contains("line 4: error: email \"not-an-email\""),
        "{out}"
    );
    assert!(out.contains("line 5: error: plan \"free\""), "{out}");
    assert!(
        out.contains("line 6: error: expires_at \"next year\""),
        "{out}"
    );
    assert!(
        out.contains("dry run (nothing written): 3 granted"),
        "{out}"
    );
    assert_eq!(snapshot(&store).await, before);
}

#[tokio::test]
async fn an_export_with_a_byte_order_mark_and_members_beyond_the_columns_imports() {
    let store = fresh_store().await;
    let text = format!(
        "\u{feff}{}\n{}\n",
        json!({"email": "Fay@Example.com", "plan": "professional", "expires_at": "2099-01-01", "provider": "stripe", "payment_id": 4242, "note": "old shop", "amount": 2000, "metadata": {"campaign": "spring"}, "refunded": false}),
        json!({"email": "gus@example.com", "plan": "professional", "expires_at": "", "provider": "stripe", "payment_id": ["x"]}),
    );
    let (result, out) = import(&store, &text, false).await;
    let Err(AdminError::LinesFailed(lines)) = &result else {
        panic!("one line is bad: {out}");
    };
    assert_eq!(lines, &["line 2: payment_id is not a string".to_owned()]);
    // The error names the line, so stderr alone says what failed.
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("line 2: payment_id"),
        "{out}"
    );
    assert!(
        out.contains("line 1: granted professional to fay@example.com until 2099-01-01T00:00:00Z (import#stripe#4242)"),
        "{out}"
    );
    assert!(pro(&store, "fay@example.com").await);
    let csv = "\u{feff}email,plan,expires_at,provider,payment_id,note\r\nhal@example.com,professional,,stripe,ch_h,\r\n";
    let (result, out) = import(&store, csv, false).await;
    result.unwrap();
    assert!(out.contains("1 granted"), "{out}");
}

#[tokio::test]
async fn a_plan_that_is_not_configured_is_refused_at_the_dry_run() {
    let store = fresh_store().await;
    let before = snapshot(&store).await;
    let file = "email,plan,expires_at,provider,payment_id,note\n\
                gil@example.com,gold,,stripe,ch_gold,\n";
    let (result, out) = import(&store, file, true).await;
    assert!(
        matches!(result, Err(AdminError::LinesFailed(ref lines)) if lines.len() == 1),
        "{out}"
    );
    assert!(
        out.contains(
            "line 2: error: plan \"gold\" is not a paid plan of PLAN_RANKING \
             (free,professional,enterprise)"
        ),
        "{out}"
    );
    assert_eq!(snapshot(&store).await, before);
}

#[tokio::test]
async fn an_import_grants_audits_skips_bad_lines_whole_and_a_second_run_changes_nothing() {
    let store = fresh_store().await;
    let (result, out) = import(&store, FILE, false).await;
    assert!(
        matches!(result, Err(AdminError::LinesFailed(ref lines)) if lines.len() == 3),
        "{out}"
    );
    assert!(
        out.contains("3 granted, 0 unchanged, 0 already from Dodo, 3 failed"),
        "{out}"
    );
    assert!(pro(&store, "ann@example.com").await && pro(&store, "bob@example.com").await);
    assert!(!pro(&store, "cy@example.com").await && !pro(&store, "dee@example.com").await);
    let ann = store
        .get_entitlement(&Email::parse("ann@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.grants.len(), 2);
    let grant = &ann.grants["import#stripe#ch_1"];
    assert_eq!(grant.reason.as_deref(), Some("from the old shop"));
    assert_eq!(grant.changed_by.as_deref(), Some("alice"));
    assert!(
        ann.history
            .iter()
            .any(|change| change.by == "import by alice"
                && change.grant.as_deref() == Some("import#paddle#txn_9"))
    );
    // The best grant shows: enterprise.
    assert_eq!(ann.plan, "enterprise");

    let after_first = snapshot(&store).await;
    let (result, out) = import(&store, FILE, false).await;
    assert!(matches!(result, Err(AdminError::LinesFailed(ref lines)) if lines.len() == 3));
    assert!(out.contains("0 granted, 3 unchanged"), "{out}");
    assert_eq!(snapshot(&store).await, after_first);
}

#[tokio::test]
async fn json_lines_import_too_and_never_override_a_grant_from_dodo() {
    let store = fresh_store().await;
    // john.doe@example.com bought through Dodo (pay_dodo).
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_dodo");
        v["data"]["created_at"] = json!(llmxt_domain::time::format_rfc3339(unix_now() - 60));
    });
    llmxt_testkit::apply_body(&store, "msg_dodo", &body).await;
    let buyer = Email::parse("john.doe@example.com").unwrap();
    let before = store.get_entitlement(&buyer).await.unwrap().unwrap();
    let text = [
        json!({"email": "john.doe@example.com", "plan": "enterprise", "expires_at": "", "provider": "dodo", "payment_id": "pay_dodo", "note": "moved"}),
        json!({"email": "eve@example.com", "plan": "professional", "expires_at": null, "provider": "Stripe", "payment_id": "ch_7", "note": null}),
    ]
    .map(|v| v.to_string())
    .join("\n");
    let (result, out) = import(&store, &text, false).await;
    result.unwrap();
    assert!(
        out.contains("line 1: skipped: Dodo already granted payment pay_dodo"),
        "{out}"
    );
    assert!(
        out.contains(
            "line 2: granted professional to eve@example.com until no end (import#stripe#ch_7)"
        ),
        "{out}"
    );
    assert_eq!(
        store.get_entitlement(&buyer).await.unwrap().unwrap(),
        before
    );
    assert!(pro(&store, "eve@example.com").await);
}

#[tokio::test]
async fn a_file_spanning_several_transactions_grants_every_line() {
    let store = fresh_store().await;
    let mut text = String::from("email,plan,expires_at,provider,payment_id,note\n");
    for n in 0..250 {
        text.push_str(&format!(
            "buyer{n}@example.com,professional,,stripe,ch_{n},\n"
        ));
    }
    let (result, out) = import(&store, &text, false).await;
    result.unwrap();
    assert!(out.contains("250 granted, 0 unchanged"), "{out}");
    let emails: Vec<Email> = (0..250)
        .map(|n| Email::parse(&format!("buyer{n}@example.com")).unwrap())
        .collect();
    let stored = store.get_entitlements(&emails).await.unwrap();
    assert_eq!(stored.len(), 250);
    assert!(
        stored
            .iter()
            .all(|e| e.is_pro(unix_now()) && e.version == 1)
    );
}

#[tokio::test]
async fn a_payment_repeated_with_the_same_values_is_unchanged_and_with_others_fails() {
    let store = fresh_store().await;
    let file = "email,plan,expires_at,provider,payment_id,note\n\
                ida@example.com,professional,,stripe,ch_rep,\n\
                ida@example.com,professional,,stripe,ch_rep,exported twice\n\
                jon@example.com,professional,,stripe,ch_rep,\n";
    let (result, out) = import(&store, file, false).await;
    let Err(AdminError::LinesFailed(lines)) = &result else {
        panic!("the conflicting repeat fails: {out}");
    };
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("line 4: repeats the payment of line 2"),
        "{lines:?}"
    );
    assert!(
        out.contains("line 2: granted professional to ida@example.com"),
        "{out}"
    );
    assert!(
        out.contains("line 3: unchanged: ida@example.com already holds it"),
        "{out}"
    );
    assert!(out.contains("1 granted, 1 unchanged"), "{out}");
    assert!(pro(&store, "ida@example.com").await);
    assert!(!pro(&store, "jon@example.com").await);
}
