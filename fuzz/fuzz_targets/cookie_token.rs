//! Arbitrary cookie values: no panic, never accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmxt_domain::secret::Secret;
use llmxt_domain::token::TokenSigner;

fuzz_target!(|data: &[u8]| {
    let signer = TokenSigner::new(
        vec![Secret::new(b"0123456789abcdef0123456789abcdef".to_vec())],
        "https://pro.example.com",
    );
    assert!(
        signer
            .verify(&String::from_utf8_lossy(data), 1_800_000_000)
            .is_err()
    );
});
