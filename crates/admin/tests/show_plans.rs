//! `llmxt-admin show` sums up the grants as `/api/entitlement` does: the features unlocked,
//! the billing state, and a scheduled plan change (against DynamoDB Local).
#![allow(clippy::unwrap_used)]

use llmxt_admin::run;
use llmxt_domain::config::Env;
use llmxt_domain::time::{format_rfc3339, unix_now};
use llmxt_testkit::{TEST_ENTITLEMENT_SECRET, apply_body, dodo_body, fresh_store};
use serde_json::{Value, json};

#[tokio::test]
async fn show_prints_features_billing_and_the_scheduled_change() {
    let store = fresh_store().await;
    let config = store.config();
    let env = Env::from_pairs([
        ("ENTITLEMENTS_TABLE", config.entitlements_table.clone()),
        ("PAYMENTS_TABLE", config.payments_table.clone()),
        ("DYNAMODB_ENDPOINT", config.endpoint.clone().unwrap()),
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET.to_owned()),
        ("NEXT_PUBLIC_SITE_URL", llmxt_testkit::TEST_SITE.to_owned()),
        ("PLAN_FEATURES", "professional=export,api".to_owned()),
    ]);
    let period_end = format_rfc3339(unix_now() + 10 * 86_400);
    let body = dodo_body("subscription.active.cli-generator", |v| {
        v["type"] = json!("subscription.past_due");
        v["data"]["status"] = json!("past_due");
        v["data"]["next_billing_date"] = json!(period_end);
        v["data"]["scheduled_change"] = json!({
            "id": "spc_1", "addons": [], "created_at": format_rfc3339(unix_now()),
            "effective_at": period_end, "product_id": "pdt_test", "quantity": 1,
        });
    });
    apply_body(&store, "msg_past_due", &body).await;

    let run_show = |json: bool| {
        let env = env.clone();
        async move {
            let mut args = vec!["show".to_owned(), "john.doe@example.com".to_owned()];
            if json {
                args.push("--json".to_owned());
            }
            let mut out = Vec::new();
            run(&args, &env, &mut out).await.unwrap();
            String::from_utf8(out).unwrap()
        }
    };
    let text = run_show(false).await;
    assert!(text.contains("  features: api, export"), "{text}");
    assert!(
        text.contains(&format!(
            "  billing: past_due, ends {}, scheduled: professional on {period_end}",
            format_rfc3339(llmxt_domain::time::parse_rfc3339_seconds(&period_end).unwrap())
        )),
        "{text}"
    );
    let value: Value = serde_json::from_str(&run_show(true).await).unwrap();
    assert_eq!(value["features"], json!(["api", "export"]));
    assert_eq!(value["billing"]["state"], "past_due");
    assert_eq!(value["billing"]["scheduled_plan"], "professional");
    let grant = &value["entitlement"]["grants"][0];
    assert_eq!(grant["subscription_status"], "past_due");
    assert_eq!(grant["scheduled_product_id"], "pdt_test");
}
