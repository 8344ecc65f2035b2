//! Arbitrary headers and body through the verifier, and the body through the event parser:
//! no panic, and nothing unsigned verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmxt_domain::events::parse_event;
use llmxt_domain::webhook_signature::{WebhookHeaders, WebhookSecrets, verify};

fuzz_target!(|data: &[u8]| {
    let secrets = WebhookSecrets::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid secret");
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let (id, timestamp, signature) = (parts.next(), parts.next(), parts.next());
    let body = parts.next().unwrap_or_default().as_bytes();
    let headers = WebhookHeaders { id, timestamp, signature };
    assert!(verify(&secrets, headers, body, 1_800_000_000).is_err());
    let _ = parse_event(data);
    let _ = parse_event(body);
});
