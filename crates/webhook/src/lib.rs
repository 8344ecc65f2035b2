//! `POST /api/webhooks/dodo`: verifies a Dodo delivery on its raw bytes, applies it to
//! DynamoDB and answers only once the effect is durable.
#![forbid(unsafe_code)]

pub mod config;

use std::time::{Duration, Instant};

use crate::config::WebhookConfig;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use llmxt_domain::events::parse_event;
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::webhook_signature::{WebhookHeaders, verify};
use llmxt_http::{ApiError, body_bytes, header, json_response};
use llmxt_store::ledger::{Delivery, Outcome, apply_delivery};
use llmxt_store::store::{ClientProfile, Store};
use serde_json::json;

/// Largest body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest time spent on storage before answering `503`, well inside Dodo's 15 s timeout.
pub const STORAGE_DEADLINE: Duration = Duration::from_secs(10);

/// What the handler needs, built once at cold start.
#[derive(Debug, Clone)]
pub struct WebhookDeps {
    /// Validated configuration.
    pub config: WebhookConfig,
    /// The tables.
    pub store: Store,
}

impl WebhookDeps {
    /// Builds the DynamoDB client for this configuration.
    pub async fn connect(config: WebhookConfig) -> Self {
        let store = Store::connect(&config.store, ClientProfile::patient()).await;
        Self::new(config, store)
    }

    /// Wraps a store, finding erasure tombstones under the configured keys.
    pub fn new(config: WebhookConfig, store: Store) -> Self {
        let store = store.with_erasure_keys(&config.erasure_keys);
        Self { config, store }
    }
}

/// Handles one request received at `now` (unix seconds).
pub async fn handle(deps: &WebhookDeps, request: Request, now: i64) -> Response<Body> {
    let started = Instant::now();
    // Not yet authenticated: logged truncated (verified ids are at most 256 bytes anyway).
    let webhook_id = llmxt_http::loggable(header(&request, "webhook-id").unwrap_or_default());
    match process(deps, &request, now).await {
        Ok((event_type, outcome)) => {
            let (email, attention) = match &outcome {
                Outcome::Processed { email, attention } => {
                    (email.as_ref().map(|e| e.masked()), *attention)
                }
                _ => (None, None),
            };
            if let Some(attention) = attention {
                tracing::error!(
                    webhook_id,
                    event_type,
                    attention,
                    "delivery stored but needs an operator: no usable buyer email"
                );
            }
            if let Outcome::Ignored(reason) = outcome {
                tracing::info!(webhook_id, event_type, reason, "delivery ignored");
            }
            tracing::info!(
                webhook_id,
                event_type,
                outcome = outcome.as_str(),
                email = email.as_deref().unwrap_or("-"),
                status = 200,
                duration_ms = started.elapsed().as_millis() as u64,
                "webhook delivery"
            );
            let mut body = json!({ "outcome": outcome.as_str() });
            if let Some(attention) = attention {
                body["attention"] = json!(attention);
            }
            json_response(StatusCode::OK, &body)
        }
        Err(error) => {
            tracing::warn!(
                webhook_id,
                outcome = "rejected",
                status = error.status().as_u16(),
                reason = %error,
                duration_ms = started.elapsed().as_millis() as u64,
                "webhook delivery"
            );
            error.into_response()
        }
    }
}

async fn process(
    deps: &WebhookDeps,
    request: &Request,
    now: i64,
) -> Result<(String, Outcome), ApiError> {
    if request.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed("POST"));
    }
    let body = body_bytes(request);
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let headers = WebhookHeaders {
        id: header(request, "webhook-id"),
        timestamp: header(request, "webhook-timestamp"),
        signature: header(request, "webhook-signature"),
    };
    let verified = verify(&deps.config.secrets, headers, body, now).map_err(|error| {
        tracing::warn!(reason = %error, "webhook signature rejected");
        ApiError::Unauthorized("invalid webhook signature")
    })?;
    let event = parse_event(body).map_err(|error| {
        tracing::warn!(webhook_id = verified.id, reason = %error, "webhook body rejected");
        ApiError::BadRequest("body is not a JSON webhook event")
    })?;
    let settings = PolicySettings {
        plans: &deps.config.plans,
        claim_ttl_seconds: deps.config.claim_ttl_seconds,
        grace_seconds: deps.config.grace_seconds,
    };
    let delivery = Delivery {
        webhook_id: &verified.id,
        origin: llmxt_store::ledger::Origin::Webhook,
        webhook_timestamp: verified.timestamp,
        received_at: now,
    };
    let applied = tokio::time::timeout(
        STORAGE_DEADLINE,
        apply_delivery(&deps.store, settings, delivery, &event),
    )
    .await;
    match applied {
        Ok(Ok(outcome)) => Ok((event.event_type, outcome)),
        Ok(Err(error)) => {
            tracing::error!(webhook_id = verified.id, event_type = event.event_type, error = %error, "storing the delivery failed; Dodo will retry");
            Err(ApiError::from(&error))
        }
        Err(_) => {
            tracing::error!(
                webhook_id = verified.id,
                event_type = event.event_type,
                "storage deadline passed; Dodo will retry"
            );
            Err(ApiError::Unavailable)
        }
    }
}
