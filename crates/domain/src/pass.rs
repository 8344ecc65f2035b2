//! The edge pass: a short-lived statement of an entitlement answer, signed with Ed25519, that a
//! site verifies with the public key alone (docs/site-integration.md, section 6).
//!
//! - A compact JWS built with `jsonwebtoken` (EdDSA through [`crate::jwt_crypto::JWT_CRYPTO`]),
//!   header `{"typ":"llmxt-pass+jwt","alg":"EdDSA","kid":…}`, claims [`PassClaims`].
//! - `kid` is the RFC 7638 thumbprint of the public key ([`thumbprint`]). jsonwebtoken's own
//!   `Jwk::thumbprint` is not used: in 10.3 it leaves the quotes off `"crv"` for OKP keys.
//! - Keys ([`PassKeys`]): `PASS_SIGNING_KEY` signs; it and `PASS_VERIFY_KEYS_PREVIOUS` are
//!   published ([`PassKeys::jwks`]), the current key first.
//! - [`PassIssuer`] issues every pass: the token, and its `Set-Cookie` `__Host-llmxt_pass`,
//!   host-only even when `COOKIE_DOMAIN` widens the Pro cookie: verifiers read that name alone
//!   (a sibling subdomain cannot plant it), and a site that asks the API from its server passes
//!   the cookie on under its own host.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::access::PlanFeatures;

/// Name of the pass cookie (always host-only).
pub const PASS_COOKIE_NAME: &str = "__Host-llmxt_pass";

/// The header's `typ`: no other token of the API is a pass.
pub const PASS_TYPE: &str = "llmxt-pass+jwt";

/// Longest pass issued. A longer one (a long email, origin or feature list) is not issued:
/// the site then asks the API, as without passes.
pub const MAX_PASS_BYTES: usize = 600;

/// `cache-control` of the key set.
pub const KEYS_CACHE_CONTROL: &str = "public, max-age=300";

/// `PASS_TTL_SECONDS` default, and its bounds.
pub const DEFAULT_TTL_SECONDS: i64 = 60;
/// Shortest `PASS_TTL_SECONDS`.
pub const MIN_TTL_SECONDS: i64 = 5;
/// Longest `PASS_TTL_SECONDS`.
pub const MAX_TTL_SECONDS: i64 = 3600;
/// `PASS_STALE_SECONDS` default: a day.
pub const DEFAULT_STALE_SECONDS: i64 = 86_400;

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No `-----BEGIN …-----` block of the expected kind.
    #[error("no {0} PEM block")]
    NoBlock(&'static str),
    /// The block is not base64, or not an Ed25519 key.
    #[error("not an Ed25519 key")]
    NotEd25519,
}

/// An Ed25519 public key of the key set.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.kid())
    }
}

impl PublicKey {
    /// From the 32 raw bytes (RFC 8032).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let bytes = <[u8; 32]>::try_from(bytes).map_err(|_| KeyError::NotEd25519)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| KeyError::NotEd25519)
    }

    /// Every `PUBLIC KEY` PEM block in `text` (SubjectPublicKeyInfo, what `openssl pkey
    /// -pubout` prints); at least one.
    pub fn all_from_pem(text: &str) -> Result<Vec<Self>, KeyError> {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        let blocks = pem_blocks(text, "PUBLIC KEY")?;
        if blocks.is_empty() {
            return Err(KeyError::NoBlock("PUBLIC KEY"));
        }
        blocks
            .iter()
            .map(|der| {
                ed25519_dalek::VerifyingKey::from_public_key_der(der)
                    .map(Self)
                    .map_err(|_| KeyError::NotEd25519)
            })
            .collect()
    }

    /// `x`: the key's bytes, base64url without padding.
    pub fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// `kid`: the key's RFC 7638 thumbprint.
    pub fn kid(&self) -> String {
        thumbprint(&self.x())
    }

    /// The key as a JWK (RFC 8037).
    pub fn jwk(&self) -> Jwk {
        let x = self.x();
        Jwk {
            kty: "OKP",
            crv: "Ed25519",
            kid: thumbprint(&x),
            x,
            alg: "EdDSA",
            key_use: "sig",
        }
    }
}

/// RFC 7638 thumbprint of an Ed25519 OKP key whose `x` is given: base64url SHA-256 of
/// `{"crv":"Ed25519","kty":"OKP","x":"…"}` (those members, in that order, no spaces).
pub fn thumbprint(x: &str) -> String {
    let canonical = serde_json::json!({ "crv": "Ed25519", "kty": "OKP", "x": x });
    // `json!` objects are sorted maps unless serde_json's `preserve_order` is on; the members
    // above are written in sorted order either way.
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.to_string().as_bytes()))
}

/// A public key as the key set lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    /// `OKP`.
    pub kty: &'static str,
    /// `Ed25519`.
    pub crv: &'static str,
    /// The key, base64url.
    pub x: String,
    /// `EdDSA`.
    pub alg: &'static str,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: &'static str,
    /// The RFC 7638 thumbprint.
    pub kid: String,
}

/// The key set document of `GET /api/entitlement/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwks {
    /// The current key first, then the retired ones still published.
    pub keys: Vec<Jwk>,
}

/// The key that signs passes, and the retired public keys still published.
#[derive(Clone)]
pub struct PassKeys {
    encoding: EncodingKey,
    public: PublicKey,
    previous: Vec<PublicKey>,
}

impl std::fmt::Debug for PassKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassKeys")
            .field("current", &self.public)
            .field("previous", &self.previous)
            .finish_non_exhaustive()
    }
}

impl PassKeys {
    /// From a `PRIVATE KEY` PEM block (PKCS#8, what `openssl genpkey -algorithm ed25519`
    /// prints), and the retired public keys to keep publishing.
    pub fn from_pem(private_pem: &str, previous: Vec<PublicKey>) -> Result<Self, KeyError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let blocks = pem_blocks(private_pem, "PRIVATE KEY")?;
        let [der] = blocks.as_slice() else {
            return Err(KeyError::NoBlock("PRIVATE KEY"));
        };
        let signing =
            ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|_| KeyError::NotEd25519)?;
        let public = PublicKey(signing.verifying_key());
        let previous = previous.into_iter().filter(|key| *key != public).collect();
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der),
            public,
            previous,
        })
    }

    /// The signing key's public half.
    pub fn current(&self) -> PublicKey {
        self.public
    }

    /// Every published key, the current one first.
    pub fn published(&self) -> impl Iterator<Item = PublicKey> + '_ {
        std::iter::once(self.public).chain(self.previous.iter().copied())
    }

    /// The key set document.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.published().map(|key| key.jwk()).collect(),
        }
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &PassClaims) -> Option<String> {
        crate::jwt_crypto::install_jwt_crypto();
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(PASS_TYPE.to_owned());
        header.kid = Some(self.public.kid());
        jsonwebtoken::encode(&header, claims, &self.encoding).ok()
    }

    /// Checks a pass as a site would (EdDSA only, `typ`, a published `kid`, the signature,
    /// `iss` = `aud` = `audience`) and returns its claims. Time is the caller's to judge.
    pub fn verify(&self, token: &str, audience: &str) -> Result<PassClaims, PassError> {
        verify(token, self.published(), audience)
    }
}

/// Why a pass was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    /// Not a compact JWS of a pass, or an algorithm other than EdDSA.
    #[error("malformed pass")]
    Malformed,
    /// The `kid` is not published.
    #[error("unknown pass key")]
    UnknownKey,
    /// The signature does not verify, or the claims are not a pass for this site.
    #[error("pass refused")]
    Refused,
}

/// Verifies `token` against `keys` (see [`PassKeys::verify`]).
pub fn verify(
    token: &str,
    keys: impl IntoIterator<Item = PublicKey>,
    audience: &str,
) -> Result<PassClaims, PassError> {
    crate::jwt_crypto::install_jwt_crypto();
    if token.len() > 4096 {
        return Err(PassError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| PassError::Malformed)?;
    if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(PASS_TYPE) {
        return Err(PassError::Malformed);
    }
    let kid = header.kid.ok_or(PassError::UnknownKey)?;
    let key = keys
        .into_iter()
        .find(|key| key.kid() == kid)
        .ok_or(PassError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[audience]);
    validation.set_required_spec_claims(&["sub", "exp", "iat", "aud", "iss"]);
    validation.validate_exp = false;
    validation.leeway = 0;
    let decoding = DecodingKey::from_ed_components(&key.x()).map_err(|_| PassError::Malformed)?;
    jsonwebtoken::decode::<PassClaims>(token, &decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| PassError::Refused)
}

/// The claims of a pass (docs/site-integration.md, section 6). Absent values are left out,
/// which the verifiers read as `null` or `[]`, to keep the token short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassClaims {
    /// The site origin.
    pub iss: String,
    /// The site origin, again.
    pub aud: String,
    /// The buyer's normalised email.
    pub sub: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Fresh until, unix seconds: `iat + PASS_TTL_SECONDS`.
    pub exp: i64,
    /// Until when a Pro pass may stand in while the API cannot be reached; absent when there
    /// is no stale window (`PASS_STALE_SECONDS=0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_until: Option<i64>,
    /// Whether the answer gave Pro.
    pub pro: bool,
    /// The answer's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The answer's features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// `purchase` or `account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The answer's `billing.state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_state: Option<String>,
    /// The answer's `source`.
    pub source: String,
}

/// What a pass states: an answer given for a visitor's cookie (or an email).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassContent<'a> {
    /// The buyer's normalised email.
    pub email: &'a str,
    /// Whether the answer gave Pro.
    pub pro: bool,
    /// Its plan.
    pub plan: Option<&'a str>,
    /// Its features.
    pub features: &'a [String],
    /// Its scope.
    pub scope: Option<&'a str>,
    /// Its `billing.state`.
    pub billing_state: Option<&'a str>,
    /// Its `source`.
    pub source: &'a str,
}

/// A pass ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedPass {
    /// The token (the cookie's value, and `"pass"` of the JSON).
    pub token: String,
    /// The whole `Set-Cookie` header value.
    pub set_cookie: String,
}

/// The pass settings (`PASS_*`), read by the functions that issue passes.
#[derive(Debug, Clone)]
pub struct PassConfig {
    /// `PASS_SIGNING_KEY` and `PASS_VERIFY_KEYS_PREVIOUS`.
    pub keys: PassKeys,
    /// `PASS_TTL_SECONDS` (default 60, 5–3600).
    pub ttl_seconds: i64,
    /// `PASS_STALE_SECONDS` (default 86400; 0: no stale window).
    pub stale_seconds: i64,
    /// `PLAN_FEATURES`: the features a pass issued with a new cookie states.
    pub features: PlanFeatures,
}

/// Issues every pass, for one site.
#[derive(Debug, Clone)]
pub struct PassIssuer {
    config: PassConfig,
    audience: String,
}

impl PassIssuer {
    /// Passes for `audience` (the site origin).
    pub fn new(config: PassConfig, audience: impl Into<String>) -> Self {
        Self {
            config,
            audience: audience.into(),
        }
    }

    /// The keys.
    pub fn keys(&self) -> &PassKeys {
        &self.config.keys
    }

    /// The site origin passes are issued by and for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The features of `plan`, as a new cookie's pass states them.
    pub fn features_of(&self, plan: &str) -> &[String] {
        self.config.features.of(plan)
    }

    /// The claims of a pass stating `content`, issued at `now`.
    pub fn claims(&self, content: &PassContent<'_>, now: i64) -> PassClaims {
        let stale_until =
            (self.config.stale_seconds > 0).then(|| now.saturating_add(self.config.stale_seconds));
        PassClaims {
            iss: self.audience.clone(),
            aud: self.audience.clone(),
            sub: content.email.to_owned(),
            iat: now,
            exp: now.saturating_add(self.config.ttl_seconds),
            stale_until,
            pro: content.pro,
            plan: content.plan.map(str::to_owned),
            features: content.features.to_vec(),
            scope: content.scope.map(str::to_owned),
            billing_state: content.billing_state.map(str::to_owned),
            source: content.source.to_owned(),
        }
    }

    /// A pass stating `content`, issued at `now`; `None` when it would be longer than
    /// [`MAX_PASS_BYTES`].
    pub fn issue(&self, content: &PassContent<'_>, now: i64) -> Option<IssuedPass> {
        let token = self.config.keys.sign(&self.claims(content, now))?;
        if token.len() > MAX_PASS_BYTES {
            tracing::warn!(
                bytes = token.len(),
                limit = MAX_PASS_BYTES,
                "pass not issued: longer than the limit (long email, origin or feature list)"
            );
            return None;
        }
        let set_cookie = self.set_cookie(&token);
        Some(IssuedPass { token, set_cookie })
    }

    /// The cookie lives as long as the pass may be used: its stale window, or its TTL when
    /// there is none.
    fn set_cookie(&self, token: &str) -> String {
        let max_age = self.config.stale_seconds.max(self.config.ttl_seconds);
        format!(
            "{PASS_COOKIE_NAME}={token}; Max-Age={max_age}; Path=/; HttpOnly; Secure; SameSite=Lax"
        )
    }
}

/// The DER of every `-----BEGIN {label}-----` block of `text`. Tolerates the forms a PEM takes
/// in an environment variable: real line breaks, literal `\n`, or one line with spaces.
fn pem_blocks(text: &str, label: &'static str) -> Result<Vec<Vec<u8>>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let stop = after.find(&end).ok_or(KeyError::NoBlock(label))?;
        let body: String = after[..stop]
            .replace("\\n", "")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        blocks.push(STANDARD.decode(body).map_err(|_| KeyError::NotEd25519)?);
        rest = &after[stop + end.len()..];
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const NOW: i64 = 1_800_000_000;
    const SITE: &str = "https://pro.example.com";
    /// RFC 8037 Appendix A.1: the private key `d` and public key `x`.
    const RFC_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const RFC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    /// A.3.
    const RFC_KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
    /// A.4.
    const RFC_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    /// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` of another key.
    const OTHER_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAbJ1hKa0Vm9wpVe6Z2IkFJWbI6LfB8sN0bSZ3n0K8tD\n-----END PRIVATE KEY-----\n";

    /// The RFC key wrapped as PKCS#8 PEM, as openssl prints it.
    fn rfc_pem() -> String {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend(URL_SAFE_NO_PAD.decode(RFC_D).expect("d"));
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der)
        )
    }

    fn public_pem(key: PublicKey) -> String {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let der = key.0.to_public_key_der().expect("der");
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der.as_bytes())
        )
    }

    fn issuer(keys: PassKeys, stale_seconds: i64) -> PassIssuer {
        let features = PlanFeatures::new(BTreeMap::from([(
            "professional".to_owned(),
            vec!["export".to_owned(), "api".to_owned()],
        )]));
        PassIssuer::new(
            PassConfig {
                keys,
                ttl_seconds: 60,
                stale_seconds,
                features,
            },
            SITE,
        )
    }

    fn content(features: &[String]) -> PassContent<'_> {
        PassContent {
            email: "buyer@example.com",
            pro: true,
            plan: Some("professional"),
            features,
            scope: Some("account"),
            billing_state: Some("active"),
            source: "database",
        }
    }

    #[test]
    fn passes_up_to_600_bytes_are_issued_and_longer_ones_are_not() {
        let issuer = issuer(PassKeys::from_pem(&rfc_pem(), vec![]).expect("key"), 86_400);
        let features: Vec<String> = ["export", "api", "sso"].map(str::to_owned).to_vec();
        // The email grows a character at a time: every pass within the limit is issued, and
        // from the first one over it none is (the answer is given without a pass).
        let (mut issued, mut refused) = (0, 0);
        for length in 10..=30 {
            let email = format!("{}@example.com", "a".repeat(length));
            let content = PassContent {
                email: &email,
                ..content(&features)
            };
            let signed = issuer
                .keys()
                .sign(&issuer.claims(&content, NOW))
                .expect("signs");
            match issuer.issue(&content, NOW) {
                Some(pass) => {
                    assert_eq!(pass.token, signed, "the same token, deterministically");
                    assert!(signed.len() <= MAX_PASS_BYTES, "{length}: {}", signed.len());
                    assert_eq!(refused, 0, "issued again after one was too long");
                    issued += 1;
                }
                None => {
                    assert!(signed.len() > MAX_PASS_BYTES, "{length}: {}", signed.len());
                    refused += 1;
                }
            }
        }
        assert!(
            issued > 0 && refused > 0,
            "{issued} issued, {refused} refused"
        );
    }

    #[test]
    fn rfc_8037_thumbprint_and_signature() {
        assert_eq!(thumbprint(RFC_X), RFC_KID);
        let keys = PassKeys::from_pem(&rfc_pem(), vec![]).expect("the RFC key");
        assert_eq!(keys.current().x(), RFC_X);
        assert_eq!(keys.current().kid(), RFC_KID);
        // A.4 verifies with the public key, through jsonwebtoken and our provider...
        crate::jwt_crypto::install_jwt_crypto();
        let (message, signature) = RFC_JWS.rsplit_once('.').expect("three parts");
        let key = DecodingKey::from_ed_components(RFC_X).expect("x");
        assert!(
            jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, Algorithm::EdDSA)
                .expect("verifies")
        );
        let tampered = message.replace("RXhh", "RXhi");
        assert!(
            !jsonwebtoken::crypto::verify(signature, tampered.as_bytes(), &key, Algorithm::EdDSA)
                .expect("runs")
        );
        // ...and signing the same input with the private key gives the same signature.
        let signed =
            jsonwebtoken::crypto::sign(message.as_bytes(), &keys.encoding, Algorithm::EdDSA)
                .expect("signs");
        assert_eq!(signed, signature);
    }

    #[test]
    fn the_key_set_lists_the_current_key_first_and_every_retired_one() {
        let old = PassKeys::from_pem(&rfc_pem(), vec![]).expect("old");
        let old_public = PublicKey::all_from_pem(&public_pem(old.current())).expect("pub");
        let keys = PassKeys::from_pem(OTHER_PRIVATE, old_public).expect("rotated");
        let jwks = serde_json::to_value(keys.jwks()).expect("json");
        let current = keys.current();
        assert_eq!(
            jwks,
            serde_json::json!({"keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": current.x(), "alg": "EdDSA", "use": "sig", "kid": current.kid()},
                {"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "alg": "EdDSA", "use": "sig", "kid": RFC_KID},
            ]})
        );
        // A standard JWKS reader takes it.
        let parsed: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).expect("a JWK set");
        assert_eq!(parsed.keys.len(), 2);
        assert!(parsed.find(RFC_KID).is_some());
        // A pass signed by the retired key verifies while it is published, and not after.
        let pass = issuer(old, 86_400)
            .issue(&content(&[]), NOW)
            .expect("issued");
        assert!(keys.verify(&pass.token, SITE).is_ok());
        let dropped = PassKeys::from_pem(OTHER_PRIVATE, vec![]).expect("current only");
        assert_eq!(dropped.jwks().keys.len(), 1);
        assert_eq!(
            dropped.verify(&pass.token, SITE),
            Err(PassError::UnknownKey)
        );
    }

    #[test]
    fn a_pass_states_the_answer_with_its_lifetimes() {
        let keys = PassKeys::from_pem(&rfc_pem(), vec![]).expect("key");
        let features = ["export".to_owned(), "api".to_owned()];
        let issued = issuer(keys.clone(), 86_400)
            .issue(&content(&features), NOW)
            .expect("issued");
        assert!(
            issued.token.len() <= MAX_PASS_BYTES,
            "{}",
            issued.token.len()
        );
        let header = jsonwebtoken::decode_header(&issued.token).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.typ.as_deref(), Some(PASS_TYPE));
        assert_eq!(header.kid.as_deref(), Some(RFC_KID));
        let claims = keys.verify(&issued.token, SITE).expect("valid");
        assert_eq!(
            claims,
            PassClaims {
                iss: SITE.to_owned(),
                aud: SITE.to_owned(),
                sub: "buyer@example.com".to_owned(),
                iat: NOW,
                exp: NOW + 60,
                stale_until: Some(NOW + 86_400),
                pro: true,
                plan: Some("professional".to_owned()),
                features: features.to_vec(),
                scope: Some("account".to_owned()),
                billing_state: Some("active".to_owned()),
                source: "database".to_owned(),
            }
        );
        assert_eq!(
            issued.set_cookie,
            format!(
                "__Host-llmxt_pass={}; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Lax",
                issued.token
            )
        );
        assert_eq!(
            keys.verify(&issued.token, "https://other.example.com"),
            Err(PassError::Refused),
            "another site's pass"
        );
    }

    #[test]
    fn no_stale_window_when_disabled() {
        let keys = PassKeys::from_pem(&rfc_pem(), vec![]).expect("key");
        let never = issuer(keys, 0);
        let claims = never.claims(&content(&[]), NOW);
        assert_eq!(claims.stale_until, None);
        let issued = never.issue(&content(&[]), NOW).expect("issued");
        assert!(
            issued.set_cookie.contains("Max-Age=60;"),
            "{}",
            issued.set_cookie
        );
        let payload = issued.token.split('.').nth(1).expect("claims");
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("utf8");
        assert!(!json.contains("stale_until"), "{json}");
    }

    #[test]
    fn a_not_pro_pass_leaves_out_what_it_lacks() {
        let keys = PassKeys::from_pem(&rfc_pem(), vec![]).expect("key");
        let not_pro = PassContent {
            pro: false,
            plan: None,
            features: &[],
            billing_state: None,
            ..content(&[])
        };
        let token = issuer(keys.clone(), 86_400)
            .issue(&not_pro, NOW)
            .expect("issued")
            .token;
        let payload = token.split('.').nth(1).expect("claims");
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        assert_eq!(json["pro"], false);
        for absent in ["plan", "features", "billing_state"] {
            assert!(json.get(absent).is_none(), "{absent}: {json}");
        }
        assert_eq!(keys.verify(&token, SITE).expect("valid").plan, None);
    }

    #[test]
    fn a_pass_longer_than_the_limit_is_not_issued() {
        let keys = PassKeys::from_pem(&rfc_pem(), vec![]).expect("key");
        let many: Vec<String> = (0..20).map(|i| format!("feature-{i}")).collect();
        assert_eq!(issuer(keys, 86_400).issue(&content(&many), NOW), None);
    }

    #[test]
    fn pem_in_every_form_an_environment_holds_it() {
        let pem = rfc_pem();
        let escaped = pem.replace('\n', "\\n");
        let one_line = pem.replace('\n', " ");
        for form in [pem.as_str(), escaped.as_str(), one_line.as_str()] {
            let keys = PassKeys::from_pem(form, vec![]).expect(form);
            assert_eq!(keys.current().kid(), RFC_KID);
        }
        for bad in [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAbJ1hKa0Vm9wpVe6Z2IkFJWbI6LfB8sN0bSZ3n0K8tD",
        ] {
            assert!(PassKeys::from_pem(bad, vec![]).is_err(), "{bad}");
        }
        // An RSA key is a PRIVATE KEY block too, but not Ed25519.
        let rsa = "-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAu\n-----END PRIVATE KEY-----";
        assert!(PassKeys::from_pem(rsa, vec![]).is_err());
        // Two retired keys in one value.
        let a = PassKeys::from_pem(&rfc_pem(), vec![]).expect("a").current();
        let b = PassKeys::from_pem(OTHER_PRIVATE, vec![])
            .expect("b")
            .current();
        let both = format!("{}{}", public_pem(a), public_pem(b));
        assert_eq!(PublicKey::all_from_pem(&both).expect("two"), vec![a, b]);
        assert!(
            PublicKey::all_from_pem(&rfc_pem()).is_err(),
            "a private key is not published"
        );
    }

    #[test]
    fn only_eddsa_passes_of_this_type_verify() {
        let keys = PassKeys::from_pem(&rfc_pem(), vec![]).expect("key");
        let token = issuer(keys.clone(), 86_400)
            .issue(&content(&[]), NOW)
            .expect("issued")
            .token;
        let parts: Vec<&str> = token.split('.').collect();
        let forge = |header: &str| {
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                parts[1],
                parts[2]
            )
        };
        for header in [
            format!(r#"{{"alg":"none","typ":"{PASS_TYPE}","kid":"{RFC_KID}"}}"#),
            format!(r#"{{"alg":"HS256","typ":"{PASS_TYPE}","kid":"{RFC_KID}"}}"#),
            format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{RFC_KID}"}}"#),
        ] {
            assert_eq!(
                keys.verify(&forge(&header), SITE),
                Err(PassError::Malformed),
                "{header}"
            );
        }
        let unknown = format!(r#"{{"alg":"EdDSA","typ":"{PASS_TYPE}","kid":"nope"}}"#);
        assert_eq!(
            keys.verify(&forge(&unknown), SITE),
            Err(PassError::UnknownKey)
        );
        let tampered = format!("{}.{}.{}", parts[0], parts[1].replace('A', "B"), parts[2]);
        assert!(keys.verify(&tampered, SITE).is_err());
        for garbage in ["", "a.b.c", "€.€.€", &"a".repeat(5000)] {
            assert!(keys.verify(garbage, SITE).is_err(), "{garbage}");
        }
    }
}
