//! The signing known answers in `fixtures/signing-vectors.json`, shared with the JS client's
//! tests (clients/js): both implementations must produce exactly these values.

use llmxt_domain::email::Email;
use llmxt_domain::request_signature::{self, SignedRequest};
use llmxt_domain::secret::Secret;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/signing-vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("fixtures/signing-vectors.json is readable");
    serde_json::from_str(&text).expect("fixtures/signing-vectors.json is JSON")
}

fn text<'a>(vector: &'a Value, field: &str) -> &'a str {
    vector[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string in {vector}"))
}

#[test]
fn request_signature_vectors_match_core() {
    let all = vectors();
    let cases = all["request_signature"]
        .as_array()
        .expect("request_signature list");
    assert!(cases.len() >= 4, "the fixture keeps its vectors");
    for vector in cases {
        let secret = Secret::new(text(vector, "secret").as_bytes().to_vec());
        let timestamp = vector["timestamp"].as_i64().expect("timestamp");
        let request = SignedRequest {
            method: text(vector, "method"),
            path_and_query: text(vector, "path_and_query"),
            body: text(vector, "body").as_bytes(),
        };
        let name = text(vector, "name");
        assert_eq!(
            request_signature::sign(&secret, timestamp, request),
            text(vector, "signature"),
            "{name}"
        );
        assert_eq!(
            request_signature::verify(
                &secret,
                Some(&timestamp.to_string()),
                Some(text(vector, "signature")),
                request,
                timestamp,
            ),
            Ok(()),
            "{name}"
        );
    }
}

#[test]
fn checkout_link_vectors_match_core() {
    let all = vectors();
    let cases = all["checkout_link"].as_array().expect("checkout_link list");
    assert!(cases.len() >= 2, "the fixture keeps its vectors");
    for vector in cases {
        let name = text(vector, "name");
        let secret = Secret::new(text(vector, "secret").as_bytes().to_vec());
        let email = Email::parse(text(vector, "email")).expect("a valid email");
        assert_eq!(email.as_str(), text(vector, "normalised_email"), "{name}");
        let expires = vector["expires"].as_i64().expect("expires");
        assert_eq!(
            request_signature::checkout_link_signature(
                &secret,
                text(vector, "product"),
                &email,
                expires
            ),
            text(vector, "sig"),
            "{name}"
        );
    }
}
