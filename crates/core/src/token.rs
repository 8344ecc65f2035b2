//! The entitlement cookie: a compact JWS (`header.claims.signature`) signed with HS256.
//!
//! Only `HS256` is accepted: a token whose header names any other algorithm, `none`
//! included, is rejected before its signature is even looked at.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::email::Email;
use crate::secret::Secret;

/// Name of the cookie that carries the token.
pub const COOKIE_NAME: &str = "llmxt_pro";

/// Longest token we will try to parse; real ones are about 250 bytes.
pub const MAX_TOKEN_LENGTH: usize = 2048;

const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What the cookie asserts about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementClaims {
    /// The buyer's normalised email.
    #[serde(rename = "sub")]
    pub email: String,
    /// The plan granted, e.g. `professional`.
    pub plan: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds.
    pub exp: i64,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or too long.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than HS256.
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// The signature does not match our key.
    #[error("bad token signature")]
    BadSignature,
    /// The token's `exp` has passed.
    #[error("token expired")]
    Expired,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Signs and checks entitlement tokens with one key.
#[derive(Debug, Clone)]
pub struct TokenSigner {
    key: Secret,
}

impl TokenSigner {
    /// Uses `key` (the `ENTITLEMENT_SECRET`) for HS256.
    pub fn new(key: Secret) -> Self {
        Self { key }
    }

    /// Issues a token for `email` on `plan`, valid from `now` for `lifetime_seconds`.
    pub fn issue(&self, email: &Email, plan: &str, now: i64, lifetime_seconds: i64) -> String {
        let claims = EntitlementClaims {
            email: email.as_str().to_owned(),
            plan: plan.to_owned(),
            iat: now,
            exp: now.saturating_add(lifetime_seconds),
        };
        self.encode(&claims)
    }

    /// Encodes and signs arbitrary claims.
    pub fn encode(&self, claims: &EntitlementClaims) -> String {
        // Serialising a struct of strings and integers cannot fail.
        let claims_json = serde_json::to_vec(claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER_JSON),
            URL_SAFE_NO_PAD.encode(claims_json)
        );
        let mac = hmac_sha256(self.key.expose(), &[signing_input.as_bytes()]);
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Checks a token's algorithm, signature and expiry at time `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<EntitlementClaims, TokenError> {
        if token.len() > MAX_TOKEN_LENGTH {
            return Err(TokenError::Malformed);
        }
        let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header_b64, claims_b64) = signing_input
            .split_once('.')
            .filter(|(_, claims)| !claims.contains('.'))
            .ok_or(TokenError::Malformed)?;
        let header: Header = decode_json(header_b64)?;
        if header.alg != "HS256" {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Malformed)?;
        let expected = hmac_sha256(self.key.expose(), &[signing_input.as_bytes()]);
        if !constant_time_eq(&expected, &signature) {
            return Err(TokenError::BadSignature);
        }
        let claims: EntitlementClaims = decode_json(claims_b64)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn signer(key: &str) -> TokenSigner {
        TokenSigner::new(Secret::new(key.as_bytes().to_vec()))
    }

    fn email() -> Email {
        Email::parse("Buyer@Example.com").expect("valid email")
    }

    fn forge(header: &str, claims: &str, sign: impl Fn(&str) -> Vec<u8>) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = sign(&input);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_token_round_trips() {
        let token = signer(KEY).issue(&email(), "professional", NOW, 3600);
        let claims = signer(KEY).verify(&token, NOW + 10).expect("valid");
        assert_eq!(claims.email, "buyer@example.com");
        assert_eq!(claims.plan, "professional");
        assert_eq!(claims.exp, NOW + 3600);
    }

    #[test]
    fn expired_token_is_rejected() {
        let token = signer(KEY).issue(&email(), "professional", NOW, 60);
        assert_eq!(
            signer(KEY).verify(&token, NOW + 60),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn token_from_another_key_is_rejected() {
        let token = signer("another-key-another-key-another-k").issue(&email(), "p", NOW, 60);
        assert_eq!(
            signer(KEY).verify(&token, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_claims_are_rejected() {
        let token = signer(KEY).issue(&email(), "professional", NOW, 60);
        let parts: Vec<&str> = token.split('.').collect();
        let claims = format!(
            r#"{{"sub":"buyer@example.com","plan":"enterprise","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        );
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims),
            parts[2]
        );
        assert_eq!(
            signer(KEY).verify(&tampered, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn alg_none_is_rejected() {
        let claims = format!(
            r#"{{"sub":"a@b.c","plan":"p","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        );
        let token = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims, |_| Vec::new());
        assert_eq!(
            signer(KEY).verify(&token, NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
        let unsigned = token.trim_end_matches('.').to_owned() + ".";
        assert!(signer(KEY).verify(&unsigned, NOW).is_err());
    }

    #[test]
    fn hs512_with_the_right_key_is_rejected() {
        use hmac::{Hmac, Mac};
        let claims = format!(
            r#"{{"sub":"a@b.c","plan":"p","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        );
        let token = forge(r#"{"alg":"HS512","typ":"JWT"}"#, &claims, |input| {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(KEY.as_bytes()).expect("key");
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        });
        assert_eq!(
            signer(KEY).verify(&token, NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let long = "a".repeat(MAX_TOKEN_LENGTH + 1);
        for token in ["", ".", "..", "a.b.c", "a.b.c.d", "€.€.€", long.as_str()] {
            assert_eq!(
                signer(KEY).verify(token, NOW),
                Err(TokenError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn legacy_base64_email_cookie_is_rejected() {
        let legacy = base64::engine::general_purpose::STANDARD.encode("buyer@example.com");
        assert_eq!(signer(KEY).verify(&legacy, NOW), Err(TokenError::Malformed));
    }
}
