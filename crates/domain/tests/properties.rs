//! Property tests of everything that parses untrusted input: no panic, and nothing unsigned
//! or altered is ever accepted.
#![allow(clippy::unwrap_used)]

use llmxt_domain::email::Email;
use llmxt_domain::events::parse_event;
use llmxt_domain::request_signature::{self, SignedRequest};
use llmxt_domain::secret::Secret;
use llmxt_domain::token::TokenSigner;
use llmxt_domain::webhook_signature::{WebhookHeaders, WebhookSecrets, sign, verify};
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000;

fn secrets() -> WebhookSecrets {
    WebhookSecrets::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        prop_oneof![
            Just("payment_id".to_owned()),
            Just("succeeded".to_owned()),
            Just("Payment".to_owned()),
            Just("Subscription".to_owned()),
            Just("2026-01-10T17:55:53Z".to_owned()),
            ".{0,12}"
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("type"),
                        Just("data"),
                        Just("timestamp"),
                        Just("payload_type"),
                        Just("payment_id"),
                        Just("subscription_id"),
                        Just("status"),
                        Just("customer"),
                        Just("email"),
                        Just("metadata"),
                        Just("product_cart"),
                        Just("refunds"),
                        Just("disputes"),
                        Just("is_partial"),
                        Just("next_billing_date"),
                        Just("refund_id"),
                        Just("dispute_id"),
                        Just("dispute_status"),
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| serde_json::Value::Object(
                pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_webhook_headers_never_verify(
        id in proptest::option::of(".{0,40}"),
        timestamp in proptest::option::of(prop_oneof![".{0,20}", (NOW - 400..NOW + 400).prop_map(|t| t.to_string())]),
        signature in proptest::option::of(".{0,200}"),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let headers = WebhookHeaders { id: id.as_deref(), timestamp: timestamp.as_deref(), signature: signature.as_deref() };
        prop_assert!(verify(&secrets(), headers, &body, NOW).is_err());
    }

    #[test]
    fn any_change_to_a_signed_delivery_is_rejected(
        body in prop::collection::vec(any::<u8>(), 1..256),
        position in any::<prop::sample::Index>(),
        flip in 1_u8..=255,
        part in 0_usize..3,
    ) {
        let key = secrets().keys()[0].clone();
        let signature = sign(&key, "msg_1", NOW, &body);
        let ts = NOW.to_string();
        let ok = WebhookHeaders { id: Some("msg_1"), timestamp: Some(&ts), signature: Some(&signature) };
        prop_assert!(verify(&secrets(), ok, &body, NOW).is_ok());
        let mut altered_body = body.clone();
        let mut altered_id = String::from("msg_1");
        let mut altered_ts = NOW;
        match part {
            0 => { let i = position.index(altered_body.len()); altered_body[i] ^= flip; }
            1 => altered_id.push(char::from(b'a' + flip % 26)),
            _ => altered_ts += i64::from(flip % 100) + 1,
        }
        let altered_ts_text = altered_ts.to_string();
        let headers = WebhookHeaders { id: Some(&altered_id), timestamp: Some(&altered_ts_text), signature: Some(&signature) };
        prop_assert!(verify(&secrets(), headers, &altered_body, NOW).is_err());
    }

    #[test]
    fn the_event_parser_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_event(&body);
    }

    #[test]
    fn the_event_parser_never_panics_on_json(value in json_value(), kind in prop_oneof![
        Just("Payment"), Just("Subscription"), Just("Refund"), Just("Dispute"), Just("Other")
    ]) {
        let _ = parse_event(value.to_string().as_bytes());
        let event = serde_json::json!({"type": "payment.succeeded", "data": value});
        let _ = parse_event(event.to_string().as_bytes());
        let mut object = serde_json::json!({"payload_type": kind});
        if let (Some(target), serde_json::Value::Object(extra)) = (object.as_object_mut(), value) {
            target.extend(extra);
        }
        let _ = parse_event(serde_json::json!({"type": "x", "data": object}).to_string().as_bytes());
    }

    #[test]
    fn arbitrary_cookies_never_verify(token in ".{0,300}") {
        let signer = TokenSigner::new(vec![Secret::new(b"0123456789abcdef0123456789abcdef".to_vec())], "https://pro.example.com");
        prop_assert!(signer.verify(&token, NOW).is_err());
    }

    #[test]
    fn any_change_to_a_cookie_is_rejected(position in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.=-]") {
        let signer = TokenSigner::new(vec![Secret::new(b"0123456789abcdef0123456789abcdef".to_vec())], "https://pro.example.com");
        let token = signer.issue(&Email::parse("a@example.com").unwrap(), "professional", NOW, 3600);
        let i = position.index(token.len());
        prop_assume!(token[i..=i] != replacement);
        let altered = format!("{}{}{}", &token[..i], replacement, &token[i + 1..]);
        prop_assert!(signer.verify(&altered, NOW).is_err(), "{}", altered);
    }

    #[test]
    fn arbitrary_request_signatures_never_verify(
        timestamp in proptest::option::of(prop_oneof![".{0,20}", (NOW - 400..NOW + 400).prop_map(|t| t.to_string())]),
        signature in proptest::option::of(prop_oneof![".{0,80}", "v1=[0-9a-f]{64}"]),
        path in ".{0,80}",
    ) {
        let secret = Secret::new(b"server-to-server-secret-0123456789".to_vec());
        let request = SignedRequest { method: "GET", path_and_query: &path, body: b"" };
        prop_assert!(request_signature::verify(&secret, timestamp.as_deref(), signature.as_deref(), request, NOW).is_err());
    }

    #[test]
    fn emails_normalise_idempotently_and_mask(raw in ".{0,80}") {
        if let Ok(email) = Email::parse(&raw) {
            prop_assert_eq!(Email::parse(email.as_str()).unwrap(), email.clone());
            let (local, domain) = email.as_str().split_once('@').unwrap();
            let masked = email.masked();
            let suffix = format!("@{}", domain);
            prop_assert!(masked.ends_with(&suffix));
            if local.chars().count() > 1 {
                prop_assert!(!masked.contains(local));
            }
        }
    }

    #[test]
    fn two_addresses_share_a_key_only_if_they_differ_by_ascii_case_or_outer_whitespace(
        local in "[a-zA-Zk\u{212A}\u{017F}sSéÉßİı\u{200B}\u{202E}\u{FEFF} .+-]{1,10}",
        domain in "[a-zA-Z\u{212A}éÉ\u{200D}.-]{1,10}",
        edits in prop::collection::vec(0_u8..6, 0..24),
        pad in prop::sample::select(vec!["", " ", "\t", "\n ", "\u{00A0}"]),
    ) {
        let a = format!("{local}@{domain}");
        // b: a with characters swapped for case variants (ASCII or Unicode), look-alikes or
        // invisible characters, and whitespace around it.
        let mut b = String::new();
        for (i, c) in a.chars().enumerate() {
            match edits.get(i).copied().unwrap_or(0) {
                1 => b.push(c.to_ascii_uppercase()),
                2 => b.extend(c.to_uppercase()),
                3 => b.extend(c.to_lowercase()),
                4 if c == 'k' || c == 'K' => b.push('\u{212A}'),
                5 => { b.push(c); b.push('\u{200B}'); }
                _ => b.push(c),
            }
        }
        let b = format!("{pad}{b}{pad}");
        if let (Ok(x), Ok(y)) = (Email::parse(&a), Email::parse(&b)) && x == y {
            prop_assert_eq!(a.trim().to_ascii_lowercase(), b.trim().to_ascii_lowercase());
        }
        for raw in [&a, &b] {
            let invisible = raw.chars().any(|c| matches!(c, '\u{200B}' | '\u{200D}' | '\u{202E}' | '\u{FEFF}'));
            if invisible {
                prop_assert!(Email::parse(raw).is_err(), "{:?}", raw);
            }
        }
    }
}

fn grant_strategy() -> impl Strategy<Value = llmxt_domain::records::Grant> {
    (
        0_usize..6,
        prop_oneof![Just("professional"), Just("enterprise"), Just("free")],
        prop_oneof![
            Just("active"),
            Just("cancelled"),
            Just("revoked"),
            Just("expired")
        ],
        prop::option::of(-100_i64..100),
    )
        .prop_map(
            |(key, plan, status, expires)| llmxt_domain::records::Grant {
                key: format!("pay_{key}"),
                source: "payment".to_owned(),
                plan: plan.to_owned(),
                status: status.to_owned(),
                expires_at: expires.map(|offset| NOW + offset),
                ..llmxt_domain::records::Grant::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A purchase cookie sees exactly its grants: access, plan and summary come from them
    /// alone, whatever else the email holds; an account cookie sees everything.
    #[test]
    fn a_scoped_view_depends_only_on_the_grants_in_scope(
        grants in prop::collection::vec(grant_strategy(), 0..6),
        scope in prop::collection::vec(0_usize..8, 0..4),
    ) {
        let ranking = llmxt_domain::records::PlanRanking::standard();
        let mut entitlement = llmxt_domain::records::Entitlement::new(Email::parse("a@example.com").unwrap());
        for grant in grants {
            entitlement.grants.insert(grant.key.clone(), grant);
        }
        entitlement.summarise(NOW, &ranking);
        let keys: Vec<String> = scope.iter().map(|k| format!("pay_{k}")).collect();
        let seen = entitlement.within_scope(Some(&keys), NOW, &ranking);
        prop_assert!(seen.grants.keys().all(|key| keys.contains(key)));
        let in_scope_access = entitlement
            .grants
            .values()
            .any(|g| keys.contains(&g.key) && g.gives_access(NOW));
        prop_assert_eq!(seen.is_pro(NOW), in_scope_access);
        if let Some(best) = seen.best_grant(NOW, &ranking) {
            prop_assert!(keys.contains(&best.key));
            prop_assert_eq!(&seen.plan, &best.plan);
        }
        // Only the grants in scope matter: dropping the others changes nothing.
        let mut only_scope = entitlement.clone();
        only_scope.grants.retain(|key, _| keys.contains(key));
        let again = only_scope.within_scope(Some(&keys), NOW, &ranking);
        prop_assert_eq!(&seen.grants, &again.grants);
        prop_assert_eq!((&seen.plan, &seen.status), (&again.plan, &again.status));
        prop_assert_eq!(entitlement.within_scope(None, NOW, &ranking), entitlement);
    }
}
