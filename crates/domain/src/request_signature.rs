//! Server-to-server request signing for `GET /api/entitlement?email=…`.
//!
//! `x-llmxt-signature: v1=<hex HMAC-SHA256("{timestamp}.{METHOD}.{path?query}.{body}")>`
//! with `x-llmxt-timestamp` in unix seconds, accepted within ±300 s. The path and query are
//! taken exactly as sent, still percent-encoded, so a signature cannot be replayed on another
//! path or with another query.
//!
//! Checkout links that prefill the buyer's email are signed too ([`checkout_link_signature`]):
//! the site's server vouches for the address, for at most an hour.

use crate::crypto::{constant_time_eq, hex_encode, hmac_sha256};
use crate::email::Email;
use crate::secret::Secret;

/// Header carrying the unix-seconds timestamp.
pub const TIMESTAMP_HEADER: &str = "x-llmxt-timestamp";
/// Header carrying `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-llmxt-signature";
/// How far the timestamp may be from our clock, each way.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a signed request was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestSignatureError {
    /// Either header is absent.
    #[error("missing request signature headers")]
    Missing,
    /// The timestamp is not an integer.
    #[error("invalid request timestamp")]
    InvalidTimestamp,
    /// The timestamp is outside the tolerance.
    #[error("request timestamp outside the allowed window")]
    OutsideWindow,
    /// The signature does not match.
    #[error("request signature does not match")]
    Mismatch,
}

/// What was signed: one HTTP request as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method, any case (it is upper-cased).
    pub method: &'a str,
    /// Path and query exactly as on the wire, e.g. `/api/entitlement?email=a%40b.c`.
    pub path_and_query: &'a str,
    /// Raw body; empty for GET.
    pub body: &'a [u8],
}

/// Returns the `x-llmxt-signature` value for a request sent at `timestamp`.
pub fn sign(secret: &Secret, timestamp: i64, request: SignedRequest<'_>) -> String {
    format!(
        "v1={}",
        hex_encode(&mac(secret, &timestamp.to_string(), request))
    )
}

/// Checks the two headers against the request at time `now` (unix seconds).
pub fn verify(
    secret: &Secret,
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    request: SignedRequest<'_>,
    now: i64,
) -> Result<(), RequestSignatureError> {
    let (Some(timestamp_text), Some(signature)) = (timestamp_header, signature_header) else {
        return Err(RequestSignatureError::Missing);
    };
    let timestamp_text = timestamp_text.trim();
    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| RequestSignatureError::InvalidTimestamp)?;
    if now.saturating_sub(timestamp).abs() > TOLERANCE_SECONDS {
        return Err(RequestSignatureError::OutsideWindow);
    }
    let expected = format!(
        "v1={}",
        hex_encode(&mac(secret, &timestamp.to_string(), request))
    );
    if constant_time_eq(
        expected.as_bytes(),
        signature.trim().to_ascii_lowercase().as_bytes(),
    ) {
        Ok(())
    } else {
        Err(RequestSignatureError::Mismatch)
    }
}

/// How far ahead a signed checkout link's `expires` may be.
pub const MAX_CHECKOUT_LINK_SECONDS: i64 = 3600;

/// Allowance for the site's clock running ahead of ours when checking `expires`.
pub const CHECKOUT_LINK_CLOCK_SKEW_SECONDS: i64 = 300;

/// The `sig` of a checkout link that prefills the buyer's email: lowercase hex
/// HMAC-SHA256(`HMAC_SECRET`, `"checkout\n{product}\n{normalised email}\n{expires}"`).
pub fn checkout_link_signature(
    secret: &Secret,
    product: &str,
    email: &Email,
    expires: i64,
) -> String {
    let expires = expires.to_string();
    hex_encode(&hmac_sha256(
        secret.expose(),
        &[
            b"checkout\n",
            product.as_bytes(),
            b"\n",
            email.as_str().as_bytes(),
            b"\n",
            expires.as_bytes(),
        ],
    ))
}

/// Why a checkout link's email prefill is not honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckoutLinkError {
    /// `expires` or `sig` is absent or not a number.
    #[error("checkout link is not signed")]
    Unsigned,
    /// `expires` has passed, or lies more than an hour ahead.
    #[error("checkout link expired or too far ahead")]
    OutsideWindow,
    /// The signature does not match.
    #[error("checkout link signature does not match")]
    Mismatch,
}

/// Checks a checkout link's `expires` and `sig` for `product` and `email` at `now`.
pub fn verify_checkout_link(
    secret: &Secret,
    product: &str,
    email: &Email,
    expires: Option<&str>,
    signature: Option<&str>,
    now: i64,
) -> Result<(), CheckoutLinkError> {
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return Err(CheckoutLinkError::Unsigned);
    };
    let expires: i64 = expires
        .trim()
        .parse()
        .map_err(|_| CheckoutLinkError::Unsigned)?;
    let latest = now.saturating_add(MAX_CHECKOUT_LINK_SECONDS + CHECKOUT_LINK_CLOCK_SKEW_SECONDS);
    if expires <= now || expires > latest {
        return Err(CheckoutLinkError::OutsideWindow);
    }
    let expected = checkout_link_signature(secret, product, email, expires);
    if constant_time_eq(
        expected.as_bytes(),
        signature.trim().to_ascii_lowercase().as_bytes(),
    ) {
        Ok(())
    } else {
        Err(CheckoutLinkError::Mismatch)
    }
}

fn mac(secret: &Secret, timestamp: &str, request: SignedRequest<'_>) -> [u8; 32] {
    let method = request.method.to_ascii_uppercase();
    hmac_sha256(
        secret.expose(),
        &[
            timestamp.as_bytes(),
            b".",
            method.as_bytes(),
            b".",
            request.path_and_query.as_bytes(),
            b".",
            request.body,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn secret() -> Secret {
        Secret::new(b"server-to-server-secret-0123456789".to_vec())
    }

    fn request(path_and_query: &str) -> SignedRequest<'_> {
        SignedRequest {
            method: "GET",
            path_and_query,
            body: b"",
        }
    }

    const PATH: &str = "/api/entitlement?email=buyer%40example.com";

    #[test]
    fn known_answer_matches_an_independent_computation() {
        // printf '%s' '1800000000.GET./api/entitlement?email=buyer%40example.com.' |
        //   openssl dgst -sha256 -hmac 'server-to-server-secret-0123456789'
        assert_eq!(
            sign(&secret(), NOW, request(PATH)),
            "v1=bd3be4b41367d56635bab82c046b8cb278a462840b67bc36eee6f9d400acde51"
        );
    }

    #[test]
    fn valid_signature_passes_within_the_window() {
        let signature = sign(&secret(), NOW, request(PATH));
        let ts = NOW.to_string();
        for now in [NOW - 300, NOW, NOW + 300] {
            assert_eq!(
                verify(&secret(), Some(&ts), Some(&signature), request(PATH), now),
                Ok(())
            );
        }
    }

    #[test]
    fn rejections() {
        let signature = sign(&secret(), NOW, request(PATH));
        let ts = NOW.to_string();
        let other = Secret::new(b"another-secret-another-secret-000".to_vec());
        let cases = [
            (
                verify(&other, Some(&ts), Some(&signature), request(PATH), NOW),
                RequestSignatureError::Mismatch,
            ),
            (
                verify(
                    &secret(),
                    Some(&ts),
                    Some(&signature),
                    request(PATH),
                    NOW + 301,
                ),
                RequestSignatureError::OutsideWindow,
            ),
            (
                verify(
                    &secret(),
                    Some(&ts),
                    Some(&signature),
                    request(PATH),
                    NOW - 301,
                ),
                RequestSignatureError::OutsideWindow,
            ),
            (
                verify(
                    &secret(),
                    Some(&ts),
                    Some(&signature),
                    request("/api/entitlement?email=other%40example.com"),
                    NOW,
                ),
                RequestSignatureError::Mismatch,
            ),
            (
                verify(
                    &secret(),
                    Some(&ts),
                    Some(&signature),
                    request("/api/other?email=buyer%40example.com"),
                    NOW,
                ),
                RequestSignatureError::Mismatch,
            ),
            (
                verify(
                    &secret(),
                    Some(&ts),
                    Some(&signature),
                    request("/api/entitlement?email=buyer@example.com"),
                    NOW,
                ),
                RequestSignatureError::Mismatch,
            ),
            (
                verify(
                    &secret(),
                    Some(&ts),
                    Some(&signature),
                    SignedRequest {
                        method: "POST",
                        ..request(PATH)
                    },
                    NOW,
                ),
                RequestSignatureError::Mismatch,
            ),
            (
                verify(
                    &secret(),
                    Some("soon"),
                    Some(&signature),
                    request(PATH),
                    NOW,
                ),
                RequestSignatureError::InvalidTimestamp,
            ),
            (
                verify(&secret(), None, Some(&signature), request(PATH), NOW),
                RequestSignatureError::Missing,
            ),
            (
                verify(&secret(), Some(&ts), None, request(PATH), NOW),
                RequestSignatureError::Missing,
            ),
            (
                verify(&secret(), Some(&ts), Some("v1="), request(PATH), NOW),
                RequestSignatureError::Mismatch,
            ),
        ];
        for (index, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got, Err(want), "case {index}");
        }
    }

    #[test]
    fn checkout_links_are_signed_for_one_product_email_and_hour() {
        let email = Email::parse(" Buyer@Example.com ").expect("valid");
        let expires = NOW + 600;
        let sig = checkout_link_signature(&secret(), "pdt_pro", &email, expires);
        let expected = hex_encode(&hmac_sha256(
            secret().expose(),
            &[format!("checkout\npdt_pro\nbuyer@example.com\n{expires}").as_bytes()],
        ));
        assert_eq!(sig, expected, "normalised email, newline-separated fields");
        let text = expires.to_string();
        let ok = |product: &str, email: &Email, sig: &str, now: i64| {
            verify_checkout_link(&secret(), product, email, Some(&text), Some(sig), now)
        };
        assert_eq!(ok("pdt_pro", &email, &sig, NOW), Ok(()));
        assert_eq!(
            ok("pdt_pro", &email, &sig.to_ascii_uppercase(), NOW),
            Ok(())
        );
        let other = Email::parse("victim@example.com").expect("valid");
        assert_eq!(
            ok("pdt_pro", &other, &sig, NOW),
            Err(CheckoutLinkError::Mismatch)
        );
        assert_eq!(
            ok("pdt_other", &email, &sig, NOW),
            Err(CheckoutLinkError::Mismatch)
        );
        assert_eq!(
            ok("pdt_pro", &email, &sig, expires),
            Err(CheckoutLinkError::OutsideWindow),
            "expired"
        );
        let skewed = NOW + MAX_CHECKOUT_LINK_SECONDS + CHECKOUT_LINK_CLOCK_SKEW_SECONDS;
        let skewed_sig = checkout_link_signature(&secret(), "pdt_pro", &email, skewed);
        assert_eq!(
            verify_checkout_link(
                &secret(),
                "pdt_pro",
                &email,
                Some(&skewed.to_string()),
                Some(&skewed_sig),
                NOW
            ),
            Ok(()),
            "an hour ahead by a site clock a few minutes fast"
        );
        let far = skewed + 1;
        let far_sig = checkout_link_signature(&secret(), "pdt_pro", &email, far);
        assert_eq!(
            verify_checkout_link(
                &secret(),
                "pdt_pro",
                &email,
                Some(&far.to_string()),
                Some(&far_sig),
                NOW
            ),
            Err(CheckoutLinkError::OutsideWindow),
            "more than an hour ahead"
        );
        assert_eq!(
            verify_checkout_link(&secret(), "pdt_pro", &email, None, Some(&sig), NOW),
            Err(CheckoutLinkError::Unsigned)
        );
        assert_eq!(
            verify_checkout_link(&secret(), "pdt_pro", &email, Some("soon"), Some(&sig), NOW),
            Err(CheckoutLinkError::Unsigned)
        );
    }
}
