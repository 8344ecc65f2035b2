//! Standard Webhooks signature verification, as Dodo Payments signs its deliveries.
//!
//! `HMAC-SHA256(base64decode(secret minus "whsec_"), "{id}.{timestamp}.{body}")`, sent as a
//! space-separated list of `v1,<base64>` entries in `webhook-signature`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::secret::Secret;

/// How far a delivery's timestamp may be from our clock, each way.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 300;

/// Longest `webhook-id` accepted (Dodo's are about 30 characters; it becomes a database key).
pub const MAX_WEBHOOK_ID_LENGTH: usize = 256;

const SECRET_PREFIX: &str = "whsec_";

/// Decodes secrets with or without `=` padding, as the reference libraries accept both.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a webhook secret could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    /// No secret at all.
    #[error("is empty")]
    Empty,
    /// A secret that does not start with `whsec_`.
    #[error("must start with \"whsec_\"")]
    MissingPrefix,
    /// A secret whose key part is not base64.
    #[error("is not valid base64 after \"whsec_\"")]
    InvalidBase64,
}

/// One or more `whsec_` secrets; during a rotation every one of them is tried.
#[derive(Debug, Clone)]
pub struct WebhookSecrets(Vec<Secret>);

impl WebhookSecrets {
    /// Parses a space-separated list of `whsec_<base64>` secrets.
    pub fn parse(value: &str) -> Result<Self, WebhookSecretError> {
        let keys = value
            .split_whitespace()
            .map(parse_one_secret)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(WebhookSecretError::Empty);
        }
        Ok(Self(keys))
    }

    /// The decoded keys.
    pub fn keys(&self) -> &[Secret] {
        &self.0
    }
}

fn parse_one_secret(text: &str) -> Result<Secret, WebhookSecretError> {
    let encoded = text
        .strip_prefix(SECRET_PREFIX)
        .ok_or(WebhookSecretError::MissingPrefix)?;
    let key = LENIENT_BASE64
        .decode(encoded)
        .map_err(|_| WebhookSecretError::InvalidBase64)?;
    if key.is_empty() {
        return Err(WebhookSecretError::Empty);
    }
    Ok(Secret::new(key))
}

/// The three Standard Webhooks headers, as received (any may be absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`
    pub id: Option<&'a str>,
    /// `webhook-timestamp`, integer unix seconds
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`
    pub signature: Option<&'a str>,
}

/// Why a delivery was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// One of the three headers is absent or empty.
    #[error("missing required webhook headers")]
    MissingHeaders,
    /// `webhook-id` is longer than [`MAX_WEBHOOK_ID_LENGTH`].
    #[error("webhook-id too long")]
    InvalidId,
    /// `webhook-timestamp` is not an integer.
    #[error("invalid webhook-timestamp")]
    InvalidTimestamp,
    /// The delivery is more than five minutes old.
    #[error("webhook timestamp too old")]
    TimestampTooOld,
    /// The delivery is more than five minutes in the future.
    #[error("webhook timestamp too new")]
    TimestampTooNew,
    /// No `v1` signature matches any configured secret.
    #[error("no matching signature found")]
    NoMatchingSignature,
}

/// A delivery whose signature and timestamp checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    /// `webhook-id`: the deduplication key.
    pub id: String,
    /// `webhook-timestamp` in unix seconds.
    pub timestamp: i64,
}

/// Verifies `body` (the exact bytes received) against the headers at time `now` (unix seconds).
pub fn verify(
    secrets: &WebhookSecrets,
    headers: WebhookHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Result<VerifiedDelivery, SignatureError> {
    let (Some(id), Some(timestamp_text), Some(signature_header)) = (
        present(headers.id),
        present(headers.timestamp),
        present(headers.signature),
    ) else {
        return Err(SignatureError::MissingHeaders);
    };
    if id.len() > MAX_WEBHOOK_ID_LENGTH {
        return Err(SignatureError::InvalidId);
    }
    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| SignatureError::InvalidTimestamp)?;
    if now.saturating_sub(timestamp) > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(SignatureError::TimestampTooOld);
    }
    if timestamp.saturating_sub(now) > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(SignatureError::TimestampTooNew);
    }

    let canonical_timestamp = timestamp.to_string();
    let expected: Vec<[u8; 32]> = secrets
        .keys()
        .iter()
        .map(|key| signature_bytes(key, id, &canonical_timestamp, body))
        .collect();
    let mut matched = false;
    for candidate in signature_header.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(given) = STANDARD.decode(encoded) else {
            continue;
        };
        for mac in &expected {
            // Evaluate every pair so timing does not reveal which entry matched.
            matched |= constant_time_eq(mac, &given);
        }
    }
    if matched {
        Ok(VerifiedDelivery {
            id: id.to_owned(),
            timestamp,
        })
    } else {
        Err(SignatureError::NoMatchingSignature)
    }
}

/// Signs a delivery the way Dodo does: returns the `v1,<base64>` header entry.
pub fn sign(key: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = signature_bytes(key, id, &timestamp.to_string(), body);
    format!("v1,{}", STANDARD.encode(mac))
}

fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

fn signature_bytes(key: &Secret, id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    hmac_sha256(
        key.expose(),
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    )
}
