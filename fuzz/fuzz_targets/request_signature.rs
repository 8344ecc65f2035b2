//! Arbitrary server-to-server signature headers and paths: no panic, never accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmxt_domain::email::Email;
use llmxt_domain::request_signature::{SignedRequest, verify};
use llmxt_domain::secret::Secret;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (timestamp, signature, path) = (parts.next(), parts.next(), parts.next().unwrap_or_default());
    let secret = Secret::new(b"server-to-server-secret-0123456789".to_vec());
    let request = SignedRequest { method: "GET", path_and_query: path, body: b"" };
    assert!(verify(&secret, timestamp, signature, request, 1_800_000_000).is_err());
    if let Ok(email) = Email::parse(path) {
        assert_eq!(Email::parse(email.as_str()).ok(), Some(email));
    }
});
