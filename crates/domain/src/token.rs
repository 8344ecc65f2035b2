//! The entitlement cookie: a JWT built and checked with the `jsonwebtoken` crate, HS256
//! only.
//!
//! - Claims: `sub` (the normalised email), `plan`, `iat`, `exp`, `aud` (the origin of
//!   `NEXT_PUBLIC_SITE_URL`), `auth_time` (when the claim or sign-in that started the session
//!   happened) and, on a purchase cookie, `grants` (the grant keys it proves). A token for
//!   another audience is refused.
//! - Scopes ([`Scope`]): a success-link claim proves a purchase, never a mailbox, so its
//!   cookie covers only the grants it names; a redeemed sign-in link (or an operator) proves
//!   the mailbox, and its account cookie has no `grants` and covers every grant of the email.
//!   Refresh keeps scope and `auth_time`, and never extends a session past `auth_time` +
//!   `COOKIE_SESSION_MAX_SECONDS`. A token without `auth_time` (issued before scopes existed)
//!   is read as an account cookie until its own `exp` and never extended.
//! - Keys: `ENTITLEMENT_SECRET` may hold several, separated by spaces: the first signs, all
//!   verify. The header's `kid` names the signing key, but only as a hint of which key to try
//!   first: every key is tried.
//! - `Validation` pins the algorithm to HS256 (a token whose header names any other, `none`
//!   included, is refused before its signature is looked at) and requires `sub`, `exp` and
//!   `aud`. Expiry is checked here against the caller's clock (handlers take `now` as a
//!   parameter), not by jsonwebtoken against the system clock.
//! - [`CookieIssuer`] is the one function that issues every entitlement cookie: the success
//!   redirect, the restore link, the refresh in `/api/entitlement`, dev mode and
//!   `llmxt-admin mint-cookie`. Its name is `__Host-llmxt_pro` (host-only), or `llmxt_pro`
//!   with `Domain=` when `COOKIE_DOMAIN` is set; both names are always read.
//!
//! jsonwebtoken's crypto comes from a provider installed once per process; ours
//! ([`crate::jwt_crypto::JWT_CRYPTO`]) signs and verifies HS256 with the `hmac`/`sha2` crates the binaries already
//! carry, EdDSA (the edge pass, [`crate::pass`]) with `ed25519-dalek`, and refuses every other
//! algorithm. Each use pins its own algorithm in its `Validation`: a cookie is HS256 only, a
//! pass EdDSA only. docs/benchmarks.md has the measurement behind the choice (its
//! `rust_crypto` feature links RSA and ECDSA code we never accept).

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::CookieConfig;
use crate::email::Email;
use crate::pass::{IssuedPass, PassContent, PassIssuer};
use crate::secret::Secret;

/// Name of the cookie that carries the token when it is host-only (`COOKIE_DOMAIN` unset).
pub const COOKIE_NAME: &str = "__Host-llmxt_pro";

/// Name of the cookie when `COOKIE_DOMAIN` widens it (a `__Host-` cookie cannot carry
/// `Domain=`), and the name every cookie had before this one.
pub const DOMAIN_COOKIE_NAME: &str = "llmxt_pro";

/// Every name a token is read from, the host-only one first.
pub const COOKIE_NAMES: [&str; 2] = [COOKIE_NAME, DOMAIN_COOKIE_NAME];

/// Most grant keys one purchase cookie carries (the newest are kept).
pub const MAX_COOKIE_GRANTS: usize = 16;

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
    /// When the claim or sign-in that started this session happened (unix seconds); kept by
    /// every refresh. Absent on tokens issued before scopes existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// On a purchase cookie: the grant keys it proves. Absent on an account cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<String>>,
}

impl EntitlementClaims {
    /// What this token covers.
    pub fn scope(&self) -> Scope {
        match &self.grants {
            Some(keys) => Scope::Purchase(keys.clone()),
            None => Scope::Account,
        }
    }

    /// The session this token belongs to; `None` for a token issued before sessions had an
    /// `auth_time` (never extended).
    pub fn session(&self) -> Option<Session> {
        self.auth_time.map(|auth_time| Session {
            scope: self.scope(),
            auth_time,
        })
    }
}

/// What a cookie proves, and so which grants it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The mailbox was proven (sign-in link, operator, dev mode): every grant of the email.
    Account,
    /// Purchases were proven (success-link claims): only these grant keys.
    Purchase(Vec<String>),
}

impl Scope {
    /// `"account"` or `"purchase"`, as answered by `/api/entitlement`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Purchase(_) => "purchase",
        }
    }

    /// The grant keys covered, or `None` for every grant.
    pub fn grant_keys(&self) -> Option<&[String]> {
        match self {
            Self::Account => None,
            Self::Purchase(keys) => Some(keys),
        }
    }

    /// Whether the grant keyed `key` is covered.
    pub fn covers(&self, key: &str) -> bool {
        self.grant_keys()
            .is_none_or(|keys| keys.iter().any(|k| k == key))
    }

    /// This scope widened by another proof of the same email: an account stays an account; two
    /// purchase scopes join (newest last, at most [`MAX_COOKIE_GRANTS`]).
    pub fn merge(&self, other: &Scope) -> Scope {
        match (self, other) {
            (Self::Purchase(mine), Self::Purchase(theirs)) => {
                let mut keys = mine.clone();
                for key in theirs {
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                }
                let excess = keys.len().saturating_sub(MAX_COOKIE_GRANTS);
                keys.drain(..excess);
                Self::Purchase(keys)
            }
            _ => Self::Account,
        }
    }
}

/// A cookie session: what it proves, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// What it covers.
    pub scope: Scope,
    /// When the claim or sign-in that started it happened (unix seconds).
    pub auth_time: i64,
}

impl Session {
    /// A session proving the mailbox, started at `now`.
    pub fn account(now: i64) -> Self {
        Self {
            scope: Scope::Account,
            auth_time: now,
        }
    }

    /// A session proving one purchase (its grant key), started at `now`.
    pub fn purchase(grant_key: &str, now: i64) -> Self {
        Self {
            scope: Scope::Purchase(vec![grant_key.to_owned()]),
            auth_time: now,
        }
    }
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
        crate::jwt_crypto::install_jwt_crypto();
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

    /// Issues an account token (every grant of the email, session started at `now`) for
    /// `email` on `plan`, valid from `now` for `lifetime_seconds`.
    pub fn issue(&self, email: &Email, plan: &str, now: i64, lifetime_seconds: i64) -> String {
        self.issue_session(
            email,
            plan,
            &Session::account(now),
            now,
            now.saturating_add(lifetime_seconds),
        )
    }

    /// Issues a token for `email` on `plan` in `session`, valid from `now` until `exp`.
    pub fn issue_session(
        &self,
        email: &Email,
        plan: &str,
        session: &Session,
        now: i64,
        exp: i64,
    ) -> String {
        let claims = EntitlementClaims {
            email: email.as_str().to_owned(),
            plan: plan.to_owned(),
            iat: now,
            exp,
            aud: self.audience.clone(),
            auth_time: Some(session.auth_time),
            grants: session.scope.grant_keys().map(<[String]>::to_vec),
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
    /// The edge pass issued with a new cookie, when passes are configured.
    pub pass: Option<IssuedPass>,
}

impl IssuedCookie {
    /// Every `Set-Cookie` value to send: the cookie, then its pass.
    pub fn set_cookies(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.set_cookie.as_str())
            .chain(self.pass.iter().map(|pass| pass.set_cookie.as_str()))
    }
}

/// Issues every entitlement cookie: `HttpOnly; Secure; SameSite=Lax; Path=/`, `Max-Age` equal
/// to the token's lifetime (`COOKIE_MAX_AGE_SECONDS`, capped at the session's end), named
/// `__Host-llmxt_pro`, or `llmxt_pro` with `Domain` when `COOKIE_DOMAIN` is set. With
/// `PASS_SIGNING_KEY`, a new cookie comes with its edge pass ([`crate::pass`]).
#[derive(Debug, Clone)]
pub struct CookieIssuer {
    signer: TokenSigner,
    lifetime_seconds: i64,
    session_max_seconds: i64,
    domain: Option<String>,
    old_name_until: i64,
    passes: Option<PassIssuer>,
}

impl CookieIssuer {
    /// From the validated cookie configuration.
    pub fn new(config: &CookieConfig) -> Self {
        Self {
            signer: TokenSigner::new(config.keys.clone(), config.audience.clone()),
            lifetime_seconds: config.lifetime_seconds,
            session_max_seconds: config.session_max_seconds,
            domain: config.domain.clone(),
            old_name_until: config.old_name_until,
            passes: config
                .pass
                .clone()
                .map(|pass| PassIssuer::new(pass, config.audience.clone())),
        }
    }

    /// Whether a cookie called `name` is read at `now`: the name cookies are issued under
    /// always; the other name (the old one, or one a sibling subdomain planted) only before
    /// `COOKIE_OLD_NAME_UNTIL` and only when no cookie under the issued name came with it
    /// (`issued_name_present`), so a planted old-name cookie never beats or joins the buyer's.
    pub fn reads(&self, name: &str, issued_name_present: bool, now: i64) -> bool {
        name == self.name() || (!issued_name_present && now < self.old_name_until)
    }

    /// The pass issuer, when passes are configured.
    pub fn passes(&self) -> Option<&PassIssuer> {
        self.passes.as_ref()
    }

    /// The name cookies are issued under.
    pub fn name(&self) -> &'static str {
        if self.domain.is_some() {
            DOMAIN_COOKIE_NAME
        } else {
            COOKIE_NAME
        }
    }

    /// When `session` may no longer be extended (unix seconds).
    pub fn session_end(&self, session: &Session) -> i64 {
        session.auth_time.saturating_add(self.session_max_seconds)
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

    /// A cookie for `email` on `plan` in `session`, issued at `now`: it lives
    /// `COOKIE_MAX_AGE_SECONDS`, but never past the session's end; `None` once the session
    /// has ended (the buyer signs in again by email).
    pub fn issue(
        &self,
        email: &Email,
        plan: &str,
        session: &Session,
        now: i64,
    ) -> Option<IssuedCookie> {
        let exp = now
            .saturating_add(self.lifetime_seconds)
            .min(self.session_end(session));
        if exp <= now {
            return None;
        }
        let token = self.signer.issue_session(email, plan, session, now, exp);
        let set_cookie = self.set_cookie(self.name(), &token, exp - now);
        // A new cookie is issued once its grant was just checked in the database: its pass
        // says Pro on this plan, with the plan's features; the first origin check adds the
        // billing state.
        let pass = self.passes.as_ref().and_then(|passes| {
            let content = PassContent {
                email: email.as_str(),
                pro: true,
                plan: Some(plan),
                features: passes.features_of(plan),
                scope: Some(session.scope.as_str()),
                billing_state: None,
                source: "database",
            };
            passes.issue(&content, now)
        });
        Some(IssuedCookie {
            token,
            set_cookie,
            pass,
        })
    }

    /// The same claims signed again with the current key under the current name, expiring
    /// when they did: moves a cookie to the current name or key without extending it.
    pub fn reissue(&self, claims: &EntitlementClaims, now: i64) -> Option<IssuedCookie> {
        if claims.exp <= now {
            return None;
        }
        let token = self.signer.encode(claims);
        let set_cookie = self.set_cookie(self.name(), &token, claims.exp - now);
        Some(IssuedCookie {
            token,
            set_cookie,
            pass: None,
        })
    }

    /// `Set-Cookie` value that deletes the cookie called `name` (one of [`COOKIE_NAMES`]).
    pub fn cleared(&self, name: &str) -> String {
        self.set_cookie(name, "", 0)
    }

    fn set_cookie(&self, name: &str, token: &str, max_age_seconds: i64) -> String {
        let mut cookie = format!(
            "{name}={token}; Max-Age={max_age_seconds}; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
        // A `__Host-` cookie must not name a domain.
        if let Some(domain) = self.domain.as_ref().filter(|_| name == DOMAIN_COOKIE_NAME) {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        cookie
    }
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
        let mut mac = crate::crypto::HmacSha256::new_from_slice(key).expect("key");
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

    fn config(domain: Option<&str>) -> CookieConfig {
        CookieConfig {
            keys: vec![secret(KEY)],
            audience: SITE.to_owned(),
            lifetime_seconds: 3600,
            session_max_seconds: 10 * 3600,
            domain: domain.map(str::to_owned),
            old_name_until: NOW + 86_400,
            pass: None,
        }
    }

    #[test]
    fn the_issuer_sets_every_attribute() {
        let with_domain = CookieIssuer::new(&config(Some("example.com")));
        let issued = with_domain
            .issue(&email(), "professional", &Session::account(NOW), NOW)
            .expect("within the session");
        assert_eq!(
            issued.set_cookie,
            format!(
                "llmxt_pro={}; Max-Age=3600; Path=/; HttpOnly; Secure; SameSite=Lax; Domain=example.com",
                issued.token
            )
        );
        assert_eq!(
            with_domain.cleared(DOMAIN_COOKIE_NAME),
            "llmxt_pro=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax; Domain=example.com"
        );
        assert!(!format!("{with_domain:?}").contains(KEY));
        let host_only = CookieIssuer::new(&config(None));
        let issued = host_only
            .issue(&email(), "professional", &Session::account(NOW), NOW)
            .expect("within the session");
        assert_eq!(
            issued.set_cookie,
            format!(
                "__Host-llmxt_pro={}; Max-Age=3600; Path=/; HttpOnly; Secure; SameSite=Lax",
                issued.token
            ),
            "host-only: the __Host- prefix, no Domain"
        );
        assert_eq!(
            host_only.cleared(DOMAIN_COOKIE_NAME),
            "llmxt_pro=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn purchase_and_account_tokens_carry_their_scope_and_auth_time() {
        let issuer = CookieIssuer::new(&config(None));
        let purchase = issuer
            .issue(
                &email(),
                "professional",
                &Session::purchase("pay_1", NOW - 5),
                NOW,
            )
            .expect("issued");
        let claims = issuer
            .signer()
            .verify(&purchase.token, NOW)
            .expect("valid")
            .claims;
        assert_eq!(claims.scope(), Scope::Purchase(vec!["pay_1".to_owned()]));
        assert_eq!(claims.auth_time, Some(NOW - 5));
        let account = issuer
            .issue(&email(), "professional", &Session::account(NOW), NOW)
            .expect("issued");
        let claims = issuer
            .signer()
            .verify(&account.token, NOW)
            .expect("valid")
            .claims;
        assert_eq!(claims.scope(), Scope::Account);
        assert!(
            claims.grants.is_none(),
            "an account token has no grants claim"
        );
        let payload = account.token.split('.').nth(1).expect("payload");
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("utf8");
        assert!(!json.contains("grants"), "{json}");
    }

    #[test]
    fn sessions_end_at_auth_time_plus_the_cap() {
        let issuer = CookieIssuer::new(&config(None));
        let session = Session::account(NOW);
        // 9.5 hours in: one hour of lifetime would pass the 10-hour cap.
        let late = NOW + 9 * 3600 + 1800;
        let issued = issuer
            .issue(&email(), "professional", &session, late)
            .expect("still inside the cap");
        assert!(
            issued.set_cookie.contains("Max-Age=1800;"),
            "{}",
            issued.set_cookie
        );
        let claims = issuer
            .signer()
            .verify(&issued.token, late)
            .expect("valid")
            .claims;
        assert_eq!(claims.exp, NOW + 10 * 3600);
        assert_eq!(claims.auth_time, Some(NOW), "refresh keeps auth_time");
        assert!(
            issuer
                .issue(&email(), "professional", &session, NOW + 10 * 3600)
                .is_none()
        );
    }

    #[test]
    fn scopes_merge_into_the_union_and_accounts_stay_accounts() {
        let a = Scope::Purchase(vec!["pay_1".to_owned()]);
        let b = Scope::Purchase(vec!["sub_2".to_owned(), "pay_1".to_owned()]);
        assert_eq!(
            a.merge(&b),
            Scope::Purchase(vec!["pay_1".to_owned(), "sub_2".to_owned()])
        );
        assert_eq!(Scope::Account.merge(&a), Scope::Account);
        assert_eq!(a.merge(&Scope::Account), Scope::Account);
        assert!(a.covers("pay_1") && !a.covers("sub_2") && Scope::Account.covers("x"));
        let many = Scope::Purchase((0..MAX_COOKIE_GRANTS).map(|i| format!("pay_{i}")).collect());
        let merged = many.merge(&Scope::Purchase(vec!["pay_new".to_owned()]));
        let keys = merged.grant_keys().expect("purchase");
        assert_eq!(keys.len(), MAX_COOKIE_GRANTS);
        assert_eq!(
            keys.last().map(String::as_str),
            Some("pay_new"),
            "newest kept"
        );
        // A full purchase token still fits the parser's limit.
        let issuer = CookieIssuer::new(&config(None));
        let session = Session {
            scope: merged,
            auth_time: NOW,
        };
        let long_keys = Session {
            scope: Scope::Purchase(
                (0..MAX_COOKIE_GRANTS)
                    .map(|i| format!("sub_{i:0>40}"))
                    .collect(),
            ),
            ..session
        };
        let issued = issuer
            .issue(&email(), "professional", &long_keys, NOW)
            .expect("issued");
        assert!(
            issued.token.len() <= MAX_TOKEN_LENGTH,
            "{}",
            issued.token.len()
        );
        assert!(issuer.signer().verify(&issued.token, NOW).is_ok());
    }

    #[test]
    fn a_token_from_before_scopes_reads_as_an_account_without_a_session() {
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let token = forge(header, &claims_json(SITE), KEY.as_bytes());
        let claims = signer(&[KEY]).verify(&token, NOW).expect("valid").claims;
        assert_eq!(claims.scope(), Scope::Account);
        assert_eq!(claims.session(), None, "never extended");
        let issuer = CookieIssuer::new(&config(None));
        let moved = issuer.reissue(&claims, NOW).expect("not expired");
        assert!(moved.set_cookie.starts_with("__Host-llmxt_pro="));
        assert!(
            moved.set_cookie.contains("Max-Age=60;"),
            "same expiry: {}",
            moved.set_cookie
        );
        assert_eq!(
            issuer
                .signer()
                .verify(&moved.token, NOW)
                .expect("valid")
                .claims,
            claims
        );
    }
}
