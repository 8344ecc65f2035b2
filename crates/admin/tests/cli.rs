//! `llmxt-admin` against DynamoDB Local (and a stub that rejects credentials).
#![allow(clippy::unwrap_used)]

use llmxt_admin::{AdminError, run};
use llmxt_domain::config::Env;
use llmxt_domain::time::unix_now;
use llmxt_store::store::Store;
use llmxt_testkit::{TEST_ENTITLEMENT_SECRET, dodo_body, fresh_store, unique_store_config};
use serde_json::{Value, json};

const BUYER: &str = "john.doe@example.com";

fn env_for(store: &Store, extra: &[(&str, &str)]) -> Env {
    let config = store.config();
    let mut pairs: Vec<(String, String)> = vec![
        (
            "ENTITLEMENTS_TABLE".into(),
            config.entitlements_table.clone(),
        ),
        ("PAYMENTS_TABLE".into(), config.payments_table.clone()),
        ("DYNAMODB_ENDPOINT".into(), config.endpoint.clone().unwrap()),
        ("ENTITLEMENT_SECRET".into(), TEST_ENTITLEMENT_SECRET.into()),
        (
            "NEXT_PUBLIC_SITE_URL".into(),
            llmxt_testkit::TEST_SITE.into(),
        ),
        ("LLMXT_OPERATOR".into(), "alice".into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Env::from_pairs(pairs)
}

async fn admin(env: &Env, args: &[&str]) -> Result<String, AdminError> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut out = Vec::new();
    run(&args, env, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

async fn deliver(store: &Store, id: &str, body: &str) {
    llmxt_testkit::apply_body(store, id, body).await;
}

fn paid(payment_id: &str) -> String {
    dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(payment_id);
        v["data"]["created_at"] = json!(llmxt_domain::time::format_rfc3339(unix_now() - 60));
    })
}

async fn show_json(env: &Env, email: &str) -> Value {
    serde_json::from_str(&admin(env, &["show", email, "--json"]).await.unwrap()).unwrap()
}

#[tokio::test]
async fn show_lists_the_entitlement_history_and_payments() {
    let store = fresh_store().await;
    let env = env_for(&store, &[("PLAN_NAMES", "professional=Pro")]);
    deliver(&store, "msg_1", &paid("pay_1")).await;
    let text = admin(&env, &["show", "John.Doe@Example.com"])
        .await
        .unwrap();
    assert!(
        text.contains(
            "entitlement: PRO — active plan professional (\"Pro\"), until no end, source payment (pay_1)"
        ),
        "{text}"
    );
    assert!(
        text.contains("; professional (\"Pro\") plan, billing:"),
        "{text}"
    );
    assert!(
        text.contains("by webhook payment.succeeded msg_1"),
        "{text}"
    );
    assert!(text.contains("pay_1"), "{text}");
    let value = show_json(&env, BUYER).await;
    assert_eq!(value["pro"], json!(true));
    assert_eq!(value["payments"][0]["payment_id"], json!("pay_1"));
    assert_eq!(
        value["entitlement"]["history"][0]["status"],
        json!("active")
    );
}

#[tokio::test]
async fn an_unknown_email_is_an_error() {
    let store = fresh_store().await;
    let error = admin(&env_for(&store, &[]), &["show", "nobody@example.com"])
        .await
        .unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(
        error
            .to_string()
            .contains("no entitlement and no payments for nobody@example.com")
    );
    let error = admin(
        &env_for(&store, &[]),
        &["revoke", "nobody@example.com", "--reason", "x"],
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no entitlement for nobody@example.com"),
        "the operator sees the address as typed: {error}"
    );
}

#[tokio::test]
async fn an_unknown_option_is_named_as_such() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    for args in [
        vec!["show", BUYER, "--bogus"],
        vec!["show", BUYER, "--bogus", "value"],
        vec!["payments", "--bogus"],
    ] {
        let error = admin(&env, &args).await.unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error.to_string().starts_with("unknown option --bogus"),
            "{args:?}: {error}"
        );
    }
    // Options a command's usage names still work, flags and values alike.
    admin(
        &env,
        &["payments", "--since", "1h", "--attention", "--json"],
    )
    .await
    .unwrap();
}

#[test]
fn the_binary_reads_dot_env_from_its_working_directory_and_the_environment_wins() {
    let dir = std::env::temp_dir().join(format!("llmxt-admin-dotenv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        "# local settings\nENTITLEMENTS_TABLE=from-dotenv\nPLAN_FEATURES=\"professional=export;enterprise=export,sso\"\nPAYMENTS_TABLE=from-dotenv\n",
    )
    .unwrap();
    let output = binary()
        .current_dir(&dir)
        .env("PAYMENTS_TABLE", "from-environment")
        .args(["table-specs"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("read .env"), "{stderr}");
    let specs: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(specs[0]["name"], json!("from-dotenv"));
    assert_eq!(specs[1]["name"], json!("from-environment"));
    let output = binary()
        .current_dir(&dir)
        .args(["check-config", "entitlement"])
        .env("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET)
        .env("NEXT_PUBLIC_SITE_URL", llmxt_testkit::TEST_SITE)
        .env("REQUIRE_HMAC_SIGNATURE", "false")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("PLAN_FEATURES"),
        "the quoted value is read whole and valid: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn grant_and_revoke_record_who_why_and_when() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    let out = admin(
        &env,
        &[
            "grant",
            BUYER,
            "--plan",
            "enterprise",
            "--until",
            "2099-01-01",
            "--reason",
            "goodwill",
            "--by",
            "bob",
        ],
    )
    .await
    .unwrap();
    assert!(out.contains("granted enterprise"), "{out}");
    let value = show_json(&env, BUYER).await;
    assert_eq!(value["pro"], json!(true));
    assert_eq!(value["entitlement"]["source"], json!("manual"));
    assert_eq!(value["entitlement"]["changed_by"], json!("bob"));
    assert_eq!(
        value["entitlement"]["expires_at"],
        json!("2099-01-01T00:00:00Z")
    );

    let grants = value["entitlement"]["grants"].as_array().unwrap().clone();
    assert_eq!(grants.len(), 1, "show lists the grants: {grants:?}");
    assert_eq!(grants[0]["source"], json!("manual"));
    assert_eq!(grants[0]["gives_access"], json!(true));
    admin(&env, &["revoke", BUYER, "--reason", "chargeback threat"])
        .await
        .unwrap();
    let value = show_json(&env, BUYER).await;
    assert_eq!(value["pro"], json!(false));
    assert_eq!(
        value["entitlement"]["grants"][0]["status"],
        json!("revoked")
    );
    let history = value["entitlement"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[1],
        json!({"at": history[1]["at"], "by": "alice", "grant": history[0]["grant"], "status": "revoked", "reason": "chargeback threat"})
    );
    assert!(
        history[0]["grant"]
            .as_str()
            .is_some_and(|key| key.starts_with("manual#")),
        "{history:?}"
    );
}

#[tokio::test]
async fn a_manual_revoke_survives_redeliveries_but_not_a_new_payment() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    deliver(&store, "msg_1", &paid("pay_1")).await;
    admin(&env, &["revoke", BUYER, "--reason", "fraud"])
        .await
        .unwrap();
    // The same payment again (a later snapshot under a new webhook-id) does not undo it.
    deliver(&store, "msg_2", &paid("pay_1")).await;
    assert_eq!(show_json(&env, BUYER).await["pro"], json!(false));
    // A new real payment is not ignored.
    deliver(&store, "msg_3", &paid("pay_2")).await;
    let value = show_json(&env, BUYER).await;
    assert_eq!(value["pro"], json!(true));
    let last = value["entitlement"]["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["by"], json!("webhook payment.succeeded msg_3"));
}

#[tokio::test]
async fn a_manual_revoke_of_a_subscription_holds_for_its_paid_period() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    let subscription = |id: &str, next: &str| {
        let body = dodo_body("subscription.active.cli-generator", |v| {
            v["data"]["next_billing_date"] = json!(next)
        });
        (id.to_owned(), body)
    };
    let (id, body) = subscription("msg_1", "2099-02-10T00:00:00Z");
    deliver(&store, &id, &body).await;
    admin(&env, &["revoke", BUYER, "--reason", "abuse"])
        .await
        .unwrap();
    let (id, body) = subscription("msg_2", "2099-02-10T00:00:00Z");
    deliver(&store, &id, &body).await;
    assert_eq!(show_json(&env, BUYER).await["pro"], json!(false));
    let (id, body) = subscription("msg_3", "2099-03-10T00:00:00Z");
    deliver(&store, &id, &body).await;
    assert_eq!(
        show_json(&env, BUYER).await["pro"],
        json!(true),
        "a renewal into a new period grants again"
    );
}

#[tokio::test]
async fn mint_cookie_prints_a_valid_token() {
    let store = fresh_store().await;
    let out = admin(
        &env_for(
            &store,
            &[
                ("DEFAULT_PLAN", "starter"),
                ("PLAN_RANKING", "free,starter,professional"),
            ],
        ),
        &["mint-cookie", BUYER, "--days", "7"],
    )
    .await
    .unwrap();
    let token = out.trim().strip_prefix("__Host-llmxt_pro=").unwrap();
    let claims = llmxt_testkit::token_signer()
        .verify(token, unix_now())
        .unwrap()
        .claims;
    assert_eq!(
        (claims.email.as_str(), claims.plan.as_str()),
        (BUYER, "starter")
    );
    assert_eq!(claims.exp - claims.iat, 7 * 86_400);
    let error = admin(
        &env_for(&store, &[("ENTITLEMENT_SECRET", "weak")]),
        &["mint-cookie", BUYER],
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("ENTITLEMENT_SECRET is too weak"),
        "{error}"
    );
}

#[tokio::test]
async fn payments_lists_recent_and_flagged_payments() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    deliver(&store, "msg_1", &paid("pay_recent")).await;
    let old = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_old");
        v["data"]["created_at"] = json!("2020-01-01T00:00:00Z");
    });
    deliver(&store, "msg_2", &old).await;
    let anonymous = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!("pay_anon");
        v["data"]["customer"]["email"] = json!(null);
        v["data"]["created_at"] = json!(llmxt_domain::time::format_rfc3339(unix_now() - 10));
    });
    deliver(&store, "msg_3", &anonymous).await;

    let list: Value = serde_json::from_str(
        &admin(&env, &["payments", "--since", "24h", "--json"])
            .await
            .unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["payment_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pay_anon", "pay_recent"]);
    let flagged = admin(&env, &["payments", "--since", "24h", "--attention"])
        .await
        .unwrap();
    assert!(
        flagged.contains("pay_anon")
            && flagged.contains("ATTENTION: missing_email")
            && !flagged.contains("pay_recent"),
        "{flagged}"
    );
    let all = admin(&env, &["payments", "--since", "36500d"])
        .await
        .unwrap();
    assert!(all.contains("pay_old"), "{all}");
    let bounded = admin(&env, &["payments", "--since", "36500d", "--max-scan", "2"])
        .await
        .unwrap();
    assert!(
        bounded.contains("stopped after scanning 2 items"),
        "{bounded}"
    );
}

#[tokio::test]
async fn a_missing_table_is_a_clear_error() {
    let config = unique_store_config();
    let env = Env::from_pairs([
        ("ENTITLEMENTS_TABLE", config.entitlements_table.as_str()),
        ("PAYMENTS_TABLE", config.payments_table.as_str()),
        ("DYNAMODB_ENDPOINT", config.endpoint.as_deref().unwrap()),
    ]);
    let error = admin(&env, &["show", BUYER]).await.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(error.to_string().contains("a table does not exist (Cannot do operations on a non-existent table); create it with scripts/setup-dynamodb-tables.sh"), "{error}");
}

#[tokio::test]
async fn rejected_credentials_are_a_clear_error() {
    // A stand-in for DynamoDB that rejects every request the way AWS does.
    let stand_in = llmxt_testkit::faults::DynamoDbErrorStandIn::start(
        400,
        "com.amazon.coral.service#UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
    .await;
    let endpoint = stand_in.endpoint();
    let env = Env::from_pairs([("DYNAMODB_ENDPOINT", endpoint.as_str())]);
    let error = admin(&env, &["show", BUYER]).await.unwrap_err();
    assert!(error.to_string().contains("AWS credentials rejected or access denied: The security token included in the request is invalid."), "{error}");
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let store = fresh_store().await;
    let env = env_for(&store, &[]);
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["show"],
        vec!["show", "not-an-email"],
        vec!["grant", BUYER, "--plan", "pro"],
        vec![
            "grant", BUYER, "--plan", "pro", "--reason", "x", "--until", "someday",
        ],
        vec!["revoke", BUYER],
        vec!["payments", "--since", "yesterday"],
        vec!["payments", "--since", "-5h"],
        vec!["payments", "--since", "+5h"],
        vec!["create-tables", "extra"],
    ] {
        let error = admin(&env, &args).await.unwrap_err();
        assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
    }
}

#[test]
fn the_binary_exits_non_zero_with_one_clear_line() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_llmxt-admin"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("llmxt-admin: unknown command \"frobnicate\""),
        "{stderr}"
    );
}

#[test]
fn missing_credentials_are_a_clear_error() {
    // No credentials anywhere and instance metadata disabled: the SDK gives up before any
    // request leaves the machine.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_llmxt-admin"))
        .args(["show", BUYER])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim(),
        "llmxt-admin: AWS credentials rejected or access denied: no usable AWS credentials \
         (configure a profile or AWS_ACCESS_KEY_ID, or set DYNAMODB_ENDPOINT for DynamoDB Local)"
    );
}

#[tokio::test]
async fn without_by_operator_or_user_the_login_name_is_recorded() {
    let store = fresh_store().await;
    let config = store.config();
    let env = Env::from_pairs([
        ("ENTITLEMENTS_TABLE", config.entitlements_table.as_str()),
        ("PAYMENTS_TABLE", config.payments_table.as_str()),
        ("DYNAMODB_ENDPOINT", config.endpoint.as_deref().unwrap()),
    ]);
    admin(
        &env,
        &[
            "grant",
            BUYER,
            "--plan",
            "professional",
            "--reason",
            "support",
        ],
    )
    .await
    .unwrap();
    let expected = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let expected = String::from_utf8(expected.stdout).unwrap();
    let value = show_json(&env_for(&store, &[]), BUYER).await;
    assert_eq!(
        value["entitlement"]["history"][0]["by"],
        json!(expected.trim())
    );
}

fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_llmxt-admin"))
}

#[test]
fn every_command_prints_its_usage_with_help_and_exits_0() {
    for command in [
        "show",
        "payments",
        "grant",
        "revoke",
        "export",
        "forget",
        "reconcile",
        "mint-cookie",
        "create-tables",
        "sign-webhook",
        "check-config",
        "table-specs",
    ] {
        for args in [vec![command, "--help"], vec!["help", command]] {
            let output = binary().args(&args).output().unwrap();
            let stdout = String::from_utf8(output.stdout).unwrap();
            assert_eq!(output.status.code(), Some(0), "{args:?}: {stdout}");
            assert!(
                stdout.starts_with(&format!("usage: llmxt-admin {command}")),
                "{args:?}: {stdout}"
            );
            assert!(!stdout.contains("commands:"), "only that command: {stdout}");
            assert!(output.stderr.is_empty(), "{args:?}");
        }
    }
    let output = binary().args(["grant", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("--plan PLAN"));
    // Laid out like `git help`: the synopsis alone on its line, a blank line, then the
    // description, indented.
    let output = binary().args(["payments", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = help.lines().collect();
    assert_eq!(
        lines[0],
        "usage: llmxt-admin payments [--since 24h] [--attention] [--max-scan N] [--json]"
    );
    assert_eq!(lines[1], "");
    assert!(lines[2].starts_with("    recent payments"), "{help}");
    assert!(lines[3].starts_with("    --attention:"), "{help}");
}

#[tokio::test]
async fn grant_refuses_a_plan_or_date_that_gives_nothing_in_one_line() {
    let store = fresh_store().await;
    let env = env_for(&store, &[("PLAN_RANKING", "free,professional,enterprise")]);
    for (args, expected) in [
        (
            vec!["--plan", "gold"],
            "--plan \"gold\" is not a plan to grant: use one of professional, enterprise (PLAN_RANKING)",
        ),
        (
            vec!["--plan", "free"],
            "--plan \"free\" is not a plan to grant",
        ),
        (
            vec!["--plan", "professional", "--until", "2020-01-01"],
            "--until 2020-01-01T00:00:00Z is not in the future",
        ),
    ] {
        let mut all = vec!["grant", BUYER, "--reason", "support"];
        all.extend(args);
        let error = admin(&env, &all).await.unwrap_err();
        let text = error.to_string();
        assert_eq!(error.exit_code(), 2, "{text}");
        assert!(text.starts_with(expected), "{text}");
        assert!(text.ends_with("(see `llmxt-admin grant --help`)"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }
    assert!(
        store
            .get_entitlement(&llmxt_domain::email::Email::parse(BUYER).unwrap())
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
    let output = binary()
        .args(["grant", BUYER, "--plan", "gold", "--reason", "x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn a_closed_pipe_ends_quietly() {
    let store = fresh_store().await;
    deliver(&store, "msg_1", &paid("pay_1")).await;
    let config = store.config();
    // `show … | true`: the reader is gone before the first line is written.
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"{ sleep 0.3; "$0" show "$1"; echo "exit=$?" >&2; } | true"#)
        .arg(env!("CARGO_BIN_EXE_llmxt-admin"))
        .arg(BUYER)
        .env("ENTITLEMENTS_TABLE", &config.entitlements_table)
        .env("PAYMENTS_TABLE", &config.payments_table)
        .env("DYNAMODB_ENDPOINT", config.endpoint.as_deref().unwrap())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(output.stderr).unwrap(), "exit=0\n");
}
