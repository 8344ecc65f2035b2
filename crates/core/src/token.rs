//! The entitlement cookie: a JWT built and checked with the `jsonwebtoken` crate, HS256
//! only.
//!
//! - Claims: `sub` (the normalised email), `plan`, `iat`, `exp`, `aud` (the origin of
//!   `NEXT_PUBLIC_SITE_URL`). A token for another audience is refused.
//! - Keys: `ENTITLEMENT_SECRET` may hold several, separated by spaces: the first signs, all
//!   verify. The header's `kid` names the signing key, but only as a hint of which key to try
//!   first: every key is tried.
//! - `Validation` pins the algorithm to HS256 (a token whose header names any other, `none`
//!   included, is refused before its signature is looked at) and requires `sub`, `exp` and
//!   `aud`. Expiry is checked here against the caller's clock (handlers take `now` as a
//!   parameter), not by jsonwebtoken against the system clock.
//! - [`CookieIssuer`] is the one function that issues every `llmxt_pro` cookie: the success
//!   redirect, the restore link, the refresh in `/api/entitlement`, dev mode and
//!   `llmxt-admin mint-cookie`.
//!
//! jsonwebtoken's crypto comes from a provider installed once per process; ours
//! ([`HS256_ONLY`]) signs and verifies HS256 with the `hmac`/`sha2` crates the binaries already
//! carry and refuses every other algorithm. docs/benchmarks.md has the measurement behind the
//! choice (its `rust_crypto` feature links RSA, ECDSA and EdDSA code we never accept).

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::CookieConfig;
use crate::crypto::HmacSha256;
use crate::email::Email;
use crate::secret::Secret;

/// Name of the cookie that carries the token.
pub const COOKIE_NAME: &str = "llmxt_pro";

/// Longest token we will try to parse; real ones are about 300 bytes.
pub const MAX_TOKEN_LENGTH: usize = 2048;

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
    /// The site it is for: `scheme://host[:port]` of `NEXT_PUBLIC_SITE_URL`.
    pub aud: String,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT of the expected shape, or too long.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than HS256.
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// The signature matches none of our keys.
    #[error("bad token signature")]
    BadSignature,
    /// Signed by us, but for another site.
    #[error("token for another audience")]
    WrongAudience,
    /// The token's `exp` has passed.
    #[error("token expired")]
    Expired,
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// Its claims.
    pub claims: EntitlementClaims,
    /// Whether the current (first) key signed it; `false` for a key being rotated out.
    pub signed_with_current_key: bool,
}

struct SigningKey {
    kid: String,
    secret: Secret,
}

/// Signs with the first key and verifies with every key, for one audience.
pub struct TokenSigner {
    keys: Vec<SigningKey>,
    audience: String,
    validation: Validation,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("keys", &self.keys.len())
            .field("audience", &self.audience)
            .finish()
    }
}

impl Clone for TokenSigner {
    fn clone(&self) -> Self {
        Self::new(
            self.keys.iter().map(|k| k.secret.clone()).collect(),
            self.audience.clone(),
        )
    }
}

impl TokenSigner {
    /// `keys`: the first signs, all verify (at least one). `audience`: the site's origin.
    pub fn new(keys: Vec<Secret>, audience: impl Into<String>) -> Self {
        // Installing twice is refused by jsonwebtoken and harmless: ours is the only provider.
        let _ = HS256_ONLY.install_default();
        let audience = audience.into();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience.as_str()]);
        validation.set_required_spec_claims(&["sub", "exp", "aud"]);
        validation.validate_exp = false;
        validation.leeway = 0;
        Self {
            keys: keys
                .into_iter()
                .map(|secret| SigningKey {
                    kid: key_id(&secret),
                    secret,
                })
                .collect(),
            audience,
            validation,
        }
    }

    /// The audience tokens are issued for and checked against.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Issues a token for `email` on `plan`, valid from `now` for `lifetime_seconds`.
    pub fn issue(&self, email: &Email, plan: &str, now: i64, lifetime_seconds: i64) -> String {
        let claims = EntitlementClaims {
            email: email.as_str().to_owned(),
            plan: plan.to_owned(),
            iat: now,
            exp: now.saturating_add(lifetime_seconds),
            aud: self.audience.clone(),
        };
        self.encode(&claims)
    }

    /// Encodes and signs arbitrary claims with the current key.
    pub fn encode(&self, claims: &EntitlementClaims) -> String {
        let Some(current) = self.keys.first() else {
            return String::new();
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(current.kid.clone());
        // HS256 over claims of strings and integers cannot fail with our provider.
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_secret(current.secret.expose()),
        )
        .unwrap_or_default()
    }

    /// Checks a token's algorithm, signature (against every key, the one its `kid` names
    /// first), audience and expiry at time `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError> {
        if token.len() > MAX_TOKEN_LENGTH || token.split('.').count() != 3 {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let hinted = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.iter().position(|k| k.kid == kid));
        let order = hinted
            .into_iter()
            .chain((0..self.keys.len()).filter(|i| Some(*i) != hinted));
        let mut failure = TokenError::BadSignature;
        for index in order {
            let key = DecodingKey::from_secret(self.keys[index].secret.expose());
            match jsonwebtoken::decode::<EntitlementClaims>(token, &key, &self.validation) {
                Ok(data) => {
                    if data.claims.exp <= now {
                        return Err(TokenError::Expired);
                    }
                    return Ok(VerifiedToken {
                        claims: data.claims,
                        signed_with_current_key: index == 0,
                    });
                }
                Err(error) => match error.kind() {
                    ErrorKind::InvalidSignature => {}
                    ErrorKind::InvalidAudience => return Err(TokenError::WrongAudience),
                    ErrorKind::InvalidAlgorithm => return Err(TokenError::UnsupportedAlgorithm),
                    _ => failure = TokenError::Malformed,
                },
            }
        }
        Err(failure)
    }
}

/// A short, stable name for a key: not secret, and not enough to recover it.
fn key_id(secret: &Secret) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(b"llmxt-kid:")
        .chain_update(secret.expose())
        .finalize();
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// A cookie ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCookie {
    /// The token (the cookie's value).
    pub token: String,
    /// The whole `Set-Cookie` header value.
    pub set_cookie: String,
}

/// Issues every `llmxt_pro` cookie: `HttpOnly; Secure; SameSite=Lax; Path=/`, `Max-Age` equal
/// to the token's lifetime (`COOKIE_MAX_AGE_SECONDS`), `Domain` when `COOKIE_DOMAIN` is set.
#[derive(Debug, Clone)]
pub struct CookieIssuer {
    signer: TokenSigner,
    lifetime_seconds: i64,
    domain: Option<String>,
}

impl CookieIssuer {
    /// From the validated cookie configuration.
    pub fn new(config: &CookieConfig) -> Self {
        Self {
            signer: TokenSigner::new(config.keys.clone(), config.audience.clone()),
            lifetime_seconds: config.lifetime_seconds,
            domain: config.domain.clone(),
        }
    }

    /// The same issuer with another lifetime (operator tools).
    pub fn with_lifetime(self, lifetime_seconds: i64) -> Self {
        Self {
            lifetime_seconds,
            ..self
        }
    }

    /// The signer, to verify cookies.
    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// A fresh cookie for `email` on `plan`, issued at `now`.
    pub fn issue(&self, email: &Email, plan: &str, now: i64) -> IssuedCookie {
        let token = self.signer.issue(email, plan, now, self.lifetime_seconds);
        let set_cookie = self.set_cookie(&token, self.lifetime_seconds);
        IssuedCookie { token, set_cookie }
    }

    /// `Set-Cookie` value that deletes the cookie.
    pub fn cleared(&self) -> String {
        self.set_cookie("", 0)
    }

    fn set_cookie(&self, token: &str, max_age_seconds: i64) -> String {
        let mut cookie = format!(
            "{COOKIE_NAME}={token}; Max-Age={max_age_seconds}; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
        if let Some(domain) = &self.domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        cookie
    }
}

/// jsonwebtoken's crypto provider for this project: HS256 through `hmac`/`sha2`, every
/// other algorithm refused.
pub static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: hs256_signer,
    verifier_factory: hs256_verifier,
    jwk_utils: JwkUtils::new_unimplemented(),
};

struct Hs256(HmacSha256);

impl Hs256 {
    fn new(algorithm: &Algorithm, secret: &[u8]) -> jsonwebtoken::errors::Result<Self> {
        use hmac::Mac;
        if *algorithm != Algorithm::HS256 {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        HmacSha256::new_from_slice(secret)
            .map(Self)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }
}

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(message);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(message);
        // Constant-time comparison inside `hmac`.
        mac.verify_slice(signature)
            .map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn hs256_signer(
    algorithm: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    Ok(Box::new(Hs256::new(algorithm, key.try_get_hmac_secret()?)?))
}

fn hs256_verifier(
    algorithm: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    Ok(Box::new(Hs256::new(algorithm, key.try_get_hmac_secret()?)?))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    const NOW: i64 = 1_800_000_000;
    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const OLD_KEY: &str = "an-older-key-an-older-key-an-older";
    const SITE: &str = "https://pro.example.com";

    fn secret(key: &str) -> Secret {
        Secret::new(key.as_bytes().to_vec())
    }

    fn signer(keys: &[&str]) -> TokenSigner {
        TokenSigner::new(keys.iter().map(|k| secret(k)).collect(), SITE)
    }

    fn email() -> Email {
        Email::parse("Buyer@Example.com").expect("valid email")
    }

    fn forge(header: &str, claims: &str, key: &[u8]) -> String {
        use hmac::Mac;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut mac = HmacSha256::new_from_slice(key).expect("key");
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn claims_json(aud: &str) -> String {
        format!(
            r#"{{"sub":"buyer@example.com","plan":"professional","iat":{NOW},"exp":{},"aud":"{aud}"}}"#,
            NOW + 60
        )
    }

    #[test]
    fn issued_token_round_trips_with_audience_and_key_id() {
        let token = signer(&[KEY]).issue(&email(), "professional", NOW, 3600);
        let verified = signer(&[KEY]).verify(&token, NOW + 10).expect("valid");
        assert_eq!(verified.claims.email, "buyer@example.com");
        assert_eq!(verified.claims.aud, SITE);
        assert_eq!(verified.claims.exp - verified.claims.iat, 3600);
        assert!(verified.signed_with_current_key);
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.kid.as_deref(), Some(key_id(&secret(KEY)).as_str()));
    }

    #[test]
    fn the_first_key_signs_and_every_key_verifies() {
        let old = signer(&[OLD_KEY]).issue(&email(), "professional", NOW, 3600);
        let rotated = signer(&[KEY, OLD_KEY]);
        let verified = rotated.verify(&old, NOW).expect("old key still verifies");
        assert!(!verified.signed_with_current_key);
        let new = rotated.issue(&email(), "professional", NOW, 3600);
        assert!(
            rotated
                .verify(&new, NOW)
                .expect("valid")
                .signed_with_current_key
        );
        assert!(signer(&[KEY]).verify(&new, NOW).is_ok());
        assert_eq!(
            signer(&[KEY]).verify(&old, NOW),
            Err(TokenError::BadSignature),
            "once the old key is dropped"
        );
    }

    #[test]
    fn kid_is_only_a_hint() {
        // No kid, or a kid naming the other key: every key is still tried.
        let header_without_kid = r#"{"alg":"HS256","typ":"JWT"}"#;
        let token = forge(header_without_kid, &claims_json(SITE), OLD_KEY.as_bytes());
        assert!(signer(&[KEY, OLD_KEY]).verify(&token, NOW).is_ok());
        let wrong_kid = format!(
            r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#,
            key_id(&secret(KEY))
        );
        let token = forge(&wrong_kid, &claims_json(SITE), OLD_KEY.as_bytes());
        assert!(signer(&[KEY, OLD_KEY]).verify(&token, NOW).is_ok());
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let other_site = TokenSigner::new(vec![secret(KEY)], "https://evil.example.com");
        let token = other_site.issue(&email(), "professional", NOW, 3600);
        assert_eq!(
            signer(&[KEY]).verify(&token, NOW),
            Err(TokenError::WrongAudience)
        );
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let no_audience = format!(
            r#"{{"sub":"a@b.co","plan":"p","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        );
        assert!(
            signer(&[KEY])
                .verify(&forge(header, &no_audience, KEY.as_bytes()), NOW)
                .is_err()
        );
        let trailing_slash = forge(
            header,
            &claims_json("https://pro.example.com/"),
            KEY.as_bytes(),
        );
        assert_eq!(
            signer(&[KEY]).verify(&trailing_slash, NOW),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn expired_token_is_rejected_by_the_callers_clock() {
        let token = signer(&[KEY]).issue(&email(), "professional", NOW, 60);
        assert!(signer(&[KEY]).verify(&token, NOW + 59).is_ok());
        assert_eq!(
            signer(&[KEY]).verify(&token, NOW + 60),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn tampered_claims_are_rejected() {
        let token = signer(&[KEY]).issue(&email(), "professional", NOW, 60);
        let parts: Vec<&str> = token.split('.').collect();
        let claims = claims_json(SITE).replace("professional", "enterprise");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims),
            parts[2]
        );
        assert_eq!(
            signer(&[KEY]).verify(&tampered, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn only_hs256_is_accepted() {
        let token = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims_json(SITE))
        );
        assert!(signer(&[KEY]).verify(&token, NOW).is_err());
        for alg in ["HS384", "HS512", "RS256", "ES256", "EdDSA"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            let token = forge(&header, &claims_json(SITE), KEY.as_bytes());
            assert_eq!(
                signer(&[KEY]).verify(&token, NOW),
                Err(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let long = "a".repeat(MAX_TOKEN_LENGTH + 1);
        for token in ["", ".", "..", "a.b.c", "a.b.c.d", "€.€.€", long.as_str()] {
            assert_eq!(
                signer(&[KEY]).verify(token, NOW),
                Err(TokenError::Malformed),
                "{token}"
            );
        }
        let legacy = base64::engine::general_purpose::STANDARD.encode("buyer@example.com");
        assert_eq!(
            signer(&[KEY]).verify(&legacy, NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn the_issuer_sets_every_attribute() {
        let config = CookieConfig {
            keys: vec![secret(KEY)],
            audience: SITE.to_owned(),
            lifetime_seconds: 3600,
            domain: Some("example.com".to_owned()),
        };
        let issued = CookieIssuer::new(&config).issue(&email(), "professional", NOW);
        assert_eq!(
            issued.set_cookie,
            format!(
                "llmxt_pro={}; Max-Age=3600; Path=/; HttpOnly; Secure; SameSite=Lax; Domain=example.com",
                issued.token
            )
        );
        assert_eq!(
            CookieIssuer::new(&config).cleared(),
            "llmxt_pro=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax; Domain=example.com"
        );
        assert!(!format!("{:?}", CookieIssuer::new(&config)).contains(KEY));
    }
}
