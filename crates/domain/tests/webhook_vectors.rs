//! The Standard Webhooks vectors and negative cases (fixtures/standard-webhooks-vectors.md).

use llmxt_domain::webhook_signature::{
    SignatureError, WebhookHeaders, WebhookSecrets, sign, verify,
};

const SECRET_1: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID_1: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS_1: i64 = 1_614_265_330;
const BODY_1: &str = r#"{"test": 2432232314}"#;
const SIG_1: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const SECRET_2: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

const D2_BODY: &str = r#"{"business_id":"bus_test","type":"payment.succeeded","timestamp":"2025-08-04T05:30:45.182629Z","data":{"payload_type":"Payment","payment_id":"pay_test","status":"succeeded","total_amount":400,"currency":"USD","customer":{"customer_id":"cus_test","email":"john.doe@example.com","name":"Test user"},"metadata":{},"product_cart":[{"product_id":"pdt_test","quantity":1}],"subscription_id":null}}"#;
const D2_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const D2_TS: i64 = 1_754_285_445;
const D2_SIG_1: &str = "v1,iiH8nylCNXWdqbQILsSQkTaoXj0Ic91yBXnn1lJJk1s=";
const D2_SIG_2: &str = "v1,wnHcvoxiU6H/d0QgeVhbNGKNKz99NNOOU+Vb6chTMWI=";

fn secrets(value: &str) -> WebhookSecrets {
    WebhookSecrets::parse(value).expect("valid secret")
}

fn check(
    secret: &str,
    id: &str,
    ts: &str,
    signature: &str,
    body: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let headers = WebhookHeaders {
        id: Some(id),
        timestamp: Some(ts),
        signature: Some(signature),
    };
    verify(&secrets(secret), headers, body.as_bytes(), now).map(|_| ())
}

#[test]
fn vector_1_signs_and_verifies() {
    let key = &secrets(SECRET_1).keys()[0].clone();
    assert_eq!(sign(key, ID_1, TS_1, BODY_1.as_bytes()), SIG_1);
    let verified = verify(
        &secrets(SECRET_1),
        WebhookHeaders {
            id: Some(ID_1),
            timestamp: Some("1614265330"),
            signature: Some(SIG_1),
        },
        BODY_1.as_bytes(),
        TS_1,
    )
    .expect("vector 1 verifies");
    assert_eq!(verified.id, ID_1);
    assert_eq!(verified.timestamp, TS_1);
}

#[test]
fn vector_2_rust_library() {
    let key = secrets(SECRET_2).keys()[0].clone();
    let body = r#"{"email":"test@example.com","username":"test_user"}"#;
    let expected = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    assert_eq!(
        sign(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            body.as_bytes()
        ),
        expected
    );
    assert_eq!(
        check(
            SECRET_2,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            "1649367553",
            expected,
            body,
            1_649_367_553
        ),
        Ok(())
    );
}

#[test]
fn derived_vector_d1_dodo_sdk_fixture() {
    let body = r#"{"business_id":"business_id","data":{"abandoned_at":"2019-12-27T18:11:19.117Z","abandonment_reason":"payment_failed","brand_id":"brand_id","customer_id":"customer_id","payment_id":"payment_id","status":"abandoned","recovered_payment_id":"recovered_payment_id"},"timestamp":"2019-12-27T18:11:19.117Z","type":"abandoned_checkout.detected"}"#;
    let expected = "v1,795d8HP5hQkonm0PURo3Nxv6q0dsXmpzEDOwjeZ1n1M=";
    assert_eq!(
        check(
            "whsec_c2VjcmV0Cg==",
            "1",
            "1700000000",
            expected,
            body,
            1_700_000_000
        ),
        Ok(())
    );
    assert_eq!(
        check(
            "whsec_c2VjcmV0Cg==",
            "wrong",
            "1700000000",
            expected,
            body,
            1_700_000_000
        ),
        Err(SignatureError::NoMatchingSignature)
    );
    assert_eq!(
        check(
            "whsec_c2VjcmV0Cg==",
            "1",
            "5",
            expected,
            body,
            1_700_000_000
        ),
        Err(SignatureError::TimestampTooOld)
    );
}

#[test]
fn derived_vector_d2_and_key_rotation() {
    assert_eq!(
        check(SECRET_1, D2_ID, "1754285445", D2_SIG_1, D2_BODY, D2_TS),
        Ok(())
    );
    assert_eq!(
        check(SECRET_2, D2_ID, "1754285445", D2_SIG_2, D2_BODY, D2_TS),
        Ok(())
    );
    let rotation_header = format!("{D2_SIG_1} {D2_SIG_2}");
    for holder in [SECRET_1, SECRET_2] {
        assert_eq!(
            check(
                holder,
                D2_ID,
                "1754285445",
                &rotation_header,
                D2_BODY,
                D2_TS
            ),
            Ok(()),
            "{holder}"
        );
    }
    // A verifier holding both secrets accepts a delivery signed with either one.
    let both = format!("{SECRET_1} {SECRET_2}");
    assert_eq!(
        check(&both, D2_ID, "1754285445", D2_SIG_2, D2_BODY, D2_TS),
        Ok(())
    );
    assert_eq!(
        check(&both, D2_ID, "1754285445", D2_SIG_1, D2_BODY, D2_TS),
        Ok(())
    );
}

#[test]
fn re_serialised_body_is_rejected() {
    let pretty = "v1,MwbJ2fgsFIUXzltWp+h1H0R9jmdHIDdjLvlKy+ohx5E=";
    assert_eq!(
        check(SECRET_1, D2_ID, "1754285445", pretty, D2_BODY, D2_TS),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn negative_cases_from_the_reference_suites() {
    let key = secrets(SECRET_1).keys()[0].clone();
    let now = 1_800_000_000;
    let valid = sign(&key, ID_1, now, BODY_1.as_bytes());
    let ts = now.to_string();
    let body = BODY_1.as_bytes();
    let run = |id: Option<&str>, timestamp: Option<&str>, signature: Option<&str>, at: i64| {
        verify(
            &secrets(SECRET_1),
            WebhookHeaders {
                id,
                timestamp,
                signature,
            },
            body,
            at,
        )
    };
    assert_eq!(
        run(None, Some(&ts), Some(&valid), now),
        Err(SignatureError::MissingHeaders)
    );
    assert_eq!(
        run(Some(ID_1), None, Some(&valid), now),
        Err(SignatureError::MissingHeaders)
    );
    assert_eq!(
        run(Some(ID_1), Some(&ts), None, now),
        Err(SignatureError::MissingHeaders)
    );
    assert_eq!(
        run(Some(ID_1), Some("hello"), Some(&valid), now),
        Err(SignatureError::InvalidTimestamp)
    );
    assert_eq!(
        run(
            Some(ID_1),
            Some(&ts),
            Some("v1,dawfeoifkpqwoekfpqoekf"),
            now
        ),
        Err(SignatureError::NoMatchingSignature)
    );
    assert_eq!(
        run(Some(ID_1), Some(&ts), Some(&valid[..8]), now),
        Err(SignatureError::NoMatchingSignature)
    );
    assert_eq!(
        run(Some(ID_1), Some(&ts), Some("v1,"), now),
        Err(SignatureError::NoMatchingSignature)
    );
    assert_eq!(
        run(Some(ID_1), Some(&ts), Some(&valid), now + 301),
        Err(SignatureError::TimestampTooOld)
    );
    assert_eq!(
        run(Some(ID_1), Some(&ts), Some(&valid), now - 301),
        Err(SignatureError::TimestampTooNew)
    );
    assert_eq!(
        run(Some(ID_1), Some(&ts), Some(&valid), now + 300),
        Ok(_ok(ID_1, now))
    );
    // Corrupted copy of vector 1, and the right bytes under the wrong version tag.
    let ts1 = TS_1.to_string();
    let at1 = |sig: &str| {
        verify(
            &secrets(SECRET_1),
            WebhookHeaders {
                id: Some(ID_1),
                timestamp: Some(&ts1),
                signature: Some(sig),
            },
            BODY_1.as_bytes(),
            TS_1,
        )
    };
    assert_eq!(
        at1("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd"),
        Err(SignatureError::NoMatchingSignature)
    );
    assert_eq!(
        at1("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        Err(SignatureError::NoMatchingSignature)
    );
}

fn _ok(id: &str, timestamp: i64) -> llmxt_domain::webhook_signature::VerifiedDelivery {
    llmxt_domain::webhook_signature::VerifiedDelivery {
        id: id.to_owned(),
        timestamp,
    }
}

#[test]
fn multi_signature_header_with_decoys_verifies() {
    let key = secrets(SECRET_1).keys()[0].clone();
    let now = 1_800_000_000;
    let valid = sign(&key, ID_1, now, BODY_1.as_bytes());
    let decoy = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    let header = format!("v1,{decoy} v2,{decoy} {valid} v1,{decoy}");
    assert_eq!(
        check(SECRET_1, ID_1, &now.to_string(), &header, BODY_1, now),
        Ok(())
    );
}

#[test]
fn secret_prefix_padding_and_empty_payload() {
    assert!(WebhookSecrets::parse("").is_err());
    assert!(WebhookSecrets::parse("whsec_").is_err());
    assert!(
        WebhookSecrets::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err(),
        "the prefix is required"
    );
    // Unpadded base64 decodes to the same key as the padded form.
    let padded = secrets("whsec_c2VjcmV0Cg==");
    let unpadded = secrets("whsec_c2VjcmV0Cg");
    assert_eq!(padded.keys()[0].expose(), unpadded.keys()[0].expose());
    let key = secrets(SECRET_1).keys()[0].clone();
    let signature = sign(&key, ID_1, TS_1, b"");
    assert_eq!(
        check(SECRET_1, ID_1, &TS_1.to_string(), &signature, "", TS_1),
        Ok(())
    );
}
