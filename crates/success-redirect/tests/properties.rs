//! Property test of the success query: whatever the query and Host header, the answer never
//! redirects off the site and never sets a cookie without a stored payment.
#![allow(clippy::unwrap_used)]

use llmxt_domain::config::Env;
use llmxt_testkit::{
    ApiGatewayEvent, EVENTS_TIME, TEST_ENTITLEMENT_SECRET, fresh_store, request_from_event,
};
use proptest::prelude::*;
use success_redirect::config::SuccessConfig;
use success_redirect::{SuccessDeps, handle};

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("payment_id".to_owned()),
        Just("subscription_id".to_owned()),
        Just("status".to_owned()),
        Just("attempt".to_owned()),
        Just("redirect".to_owned()),
        "[a-z_]{1,10}",
    ];
    let value = prop_oneof![
        "[A-Za-z0-9_-]{0,70}",
        prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect()),
        Just("https://evil.example/".to_owned()),
        Just("//evil.example".to_owned()),
        Just("pay_1%0d%0aSet-Cookie:%20x=1".to_owned()),
        Just("4294967296".to_owned()),
    ];
    prop::collection::vec((key, value), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[test]
fn no_query_leads_off_site_or_to_a_cookie() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let deps = runtime.block_on(async {
        let config = SuccessConfig::from_env(&Env::from_pairs([
            ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET),
            ("NEXT_PUBLIC_SITE_URL", "https://pro.example.com"),
        ]))
        .unwrap();
        SuccessDeps::new(config, fresh_store().await)
    });
    let config = ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    };
    proptest!(config, |(query in query(), host in prop_oneof![Just("pro.example.com".to_owned()), "[a-z.]{1,20}", Just("evil.example".to_owned())])| {
        let event = ApiGatewayEvent {
            method: "GET",
            path: "/upgrade/success",
            query: &query,
            headers: vec![("x-forwarded-host", host.clone()), ("referer", format!("https://{host}/"))],
            cookies: vec![],
            body: None,
        };
        let response = runtime.block_on(handle(&deps, request_from_event(&event.to_json().to_string()), EVENTS_TIME));
        let status = response.status().as_u16();
        prop_assert!(matches!(status, 200 | 302 | 400), "{} for {}", status, query);
        if let Some(location) = response.headers().get("location") {
            prop_assert!(location.to_str().unwrap().starts_with("https://pro.example.com/?upgrade="), "{:?}", location);
        }
        prop_assert!(response.headers().get("set-cookie").is_none());
    });
}
