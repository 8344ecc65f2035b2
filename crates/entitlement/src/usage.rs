//! `POST /api/usage/{reserve,commit,release,consume}`: spend a plan's allowance by the unit
//! (docs/usage.md). Always HMAC-signed, whatever `REQUIRE_HMAC_SIGNATURE` says: these spend
//! money. The buyer is the body's `email` (account-wide) or the visitor's cookie (its scope).

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use llmxt_domain::credits::Draw;
use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, Grant};
use llmxt_domain::time::format_rfc3339;
use llmxt_domain::token::Scope;
use llmxt_domain::usage::{
    Balance, Bucket, Hold, MeterLimit, Reservation, ReserveRequest, hold_id, parse_reserve,
    parse_settle, resets_at,
};
use llmxt_http::{ApiError, body_bytes, json_response, presented_tokens};
use llmxt_store::store::StoreError;
use llmxt_store::usage::{ReserveOutcome, ReserveWrite, SettleOutcome, UsageItem};
use serde_json::{Value, json};

use std::time::Duration;

use crate::{EntitlementDeps, verify_signature};

/// Largest request body read.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// What a `503` asks the caller to wait, in seconds.
const RETRY_AFTER_SECONDS: u64 = 1;

/// Whether `path` is one of the usage routes.
pub fn is_usage_path(path: &str) -> bool {
    path.starts_with("/api/usage/")
}

/// Handles one usage request received at `now` (unix seconds).
pub async fn handle(deps: &EntitlementDeps, request: Request, now: i64) -> Response<Body> {
    match answer(deps, &request, now).await {
        Ok(response) => response,
        Err(Refusal::Api(error)) => {
            tracing::warn!(status = error.status().as_u16(), reason = %error, "usage request rejected");
            error.into_response()
        }
        Err(Refusal::Store(error)) => {
            tracing::error!(error = %error, "usage: database failed; nothing granted");
            let mut response = json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "unavailable", "retry_after": RETRY_AFTER_SECONDS}),
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(RETRY_AFTER_SECONDS));
            response
        }
    }
}

enum Refusal {
    Api(ApiError),
    Store(StoreError),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

async fn within_budget<T>(
    deps: &EntitlementDeps,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    // A timed-out write may still have happened: the caller retries with the same key and
    // is charged once.
    let limit = Duration::from_millis(deps.config.usage_timeout_ms);
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(
            "no answer within the budget".to_owned(),
        )),
    }
}

async fn answer(
    deps: &EntitlementDeps,
    request: &Request,
    now: i64,
) -> Result<Response<Body>, Refusal> {
    if *request.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed("POST").into());
    }
    verify_signature(deps, request, now)?;
    let bytes = body_bytes(request);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge.into());
    }
    let body: Value = serde_json::from_slice(bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or(ApiError::BadRequest("the body must be a JSON object"))?;
    match request.uri().path() {
        "/api/usage/reserve" => reserve(deps, request, &body, false, now).await,
        "/api/usage/consume" => reserve(deps, request, &body, true, now).await,
        "/api/usage/commit" => settle(deps, &body, true, now).await,
        "/api/usage/release" => settle(deps, &body, false, now).await,
        _ => Err(ApiError::NotFound.into()),
    }
}

/// The buyer and the scope: the body's `email` (account-wide), else the first valid cookie.
/// `None`: a cookie header was sent but proves no one (forged, expired, another site's).
fn buyer(
    deps: &EntitlementDeps,
    request: &Request,
    body: &Value,
    now: i64,
) -> Result<Option<(Email, Scope)>, ApiError> {
    match body.get("email") {
        Some(Value::String(raw)) => Email::parse(raw)
            .map(|email| Some((email, Scope::Account)))
            .map_err(|_| ApiError::BadRequest("email is not a valid address")),
        Some(_) => Err(ApiError::BadRequest("email must be a string")),
        None => {
            let (valid, _) = presented_tokens(request, &deps.cookies, now);
            let Some(presented) = valid.into_iter().next() else {
                return if request.headers().contains_key(header::COOKIE) {
                    Ok(None)
                } else {
                    Err(ApiError::BadRequest(
                        "email (or the visitor's cookie header) is required",
                    ))
                };
            };
            Ok(Email::parse(&presented.token.claims.email)
                .ok()
                .map(|email| (email, presented.token.claims.scope())))
        }
    }
}

/// The allowance of `meter` for `grant`'s plan: `Err` when the plan does not list it. A plan
/// `PLAN_LIMITS` does not name has no meters: what is not granted is not sold.
pub(crate) fn meter_limit(
    deps: &EntitlementDeps,
    plan: &str,
    meter: &str,
) -> Result<MeterLimit, ()> {
    deps.config
        .limits
        .meters(plan)
        .and_then(|meters| meters.get(meter).copied())
        .ok_or(())
}

/// The bucket usage of `grant` counts in at `now`.
pub(crate) fn bucket_of(grant: &Grant, limit: &MeterLimit, now: i64) -> Bucket {
    Bucket {
        grant: grant.key.clone(),
        resets_at: resets_at(limit.period, grant, now),
    }
}

fn forbidden(error: &'static str) -> Response<Body> {
    json_response(StatusCode::FORBIDDEN, &json!({ "error": error }))
}

fn amount_json(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::from)
}

fn limit_reached(meter: &str, balance: &Balance, credits: i64, bucket: &Bucket) -> Response<Body> {
    json_response(
        StatusCode::PAYMENT_REQUIRED,
        &json!({
            "error": "limit_reached",
            "meter": meter,
            "limit": amount_json(balance.limit),
            "used": balance.used,
            "reserved": balance.reserved,
            "remaining": amount_json(balance.remaining),
            "credits": credits,
            "resets_at": format_rfc3339(bucket.resets_at),
        }),
    )
}

/// What a reserve of `amount` draws from credit packs, as decided from `read`: nothing when
/// the period's allowance covers it, the packs that cover the rest, or `Err` with the balance
/// when allowance and credits together fall short.
fn draws_for(
    read: &UsageItem,
    bucket: &Bucket,
    limit: Option<i64>,
    amount: i64,
    now: i64,
) -> Result<Vec<Draw>, Balance> {
    let before = read.balance(&bucket.id(), limit, now);
    match before.remaining {
        Some(remaining) if remaining < amount => {
            read.plan_draws(amount - remaining, now).ok_or(before)
        }
        _ => Ok(Vec::new()),
    }
}

struct Granted<'a> {
    hold: &'a Hold,
    balance: &'a Balance,
    credits: i64,
    consume: bool,
    repeated: bool,
}

fn granted(email: &Email, request: &ReserveRequest, answer: Granted<'_>) -> Response<Body> {
    let Granted {
        hold,
        balance,
        credits,
        consume,
        repeated,
    } = answer;
    let resets = Bucket::from_id(&hold.bucket).map_or(0, |b| b.resets_at);
    let mut fields = json!({
        "meter": request.meter,
        "remaining": amount_json(if repeated { hold.remaining.or(balance.remaining) } else { balance.remaining }),
        "credits": credits,
        "resets_at": format_rfc3339(resets),
    });
    if consume {
        fields["consumed"] = hold.amount.into();
        fields["used"] = balance.used.into();
    } else {
        let reservation = Reservation {
            email: email.as_str().to_owned(),
            meter: request.meter.clone(),
            bucket: hold.bucket.clone(),
            hold: hold.id.clone(),
            amount: hold.amount,
            draws: hold.draws.clone(),
        };
        fields["reservation"] = reservation.encode().into();
        fields["reserved"] = hold.amount.into();
        fields["expires_at"] = format_rfc3339(hold.expires_at).into();
    }
    if repeated {
        fields["repeated"] = true.into();
    }
    json_response(StatusCode::OK, &fields)
}

async fn reserve(
    deps: &EntitlementDeps,
    http: &Request,
    body: &Value,
    consume: bool,
    now: i64,
) -> Result<Response<Body>, Refusal> {
    let request = parse_reserve(body).map_err(ApiError::BadRequest)?;
    let Some((email, scope)) = buyer(deps, http, body, now)? else {
        return Ok(forbidden("no_access"));
    };
    let (entitlement, mut items) = within_budget(
        deps,
        deps.usage_store
            .read_usage(&email, &[request.meter.as_str()], true),
    )
    .await?;
    let read = items.remove(&request.meter).unwrap_or_default();
    let seen: Option<Entitlement> =
        entitlement.map(|e| e.within_scope(scope.grant_keys(), now, &deps.config.ranking));
    let Some(grant) = seen
        .as_ref()
        .and_then(|e| e.best_grant(now, &deps.config.ranking))
    else {
        return Ok(forbidden("no_access"));
    };
    let Ok(limit) = meter_limit(deps, &grant.plan, &request.meter) else {
        return Ok(forbidden("meter_not_in_plan"));
    };
    let bucket = bucket_of(grant, &limit, now);
    let id = hold_id(&request.idempotency_key);
    if let Some(first) = read.holds.get(&id) {
        let balance = read.balance(&first.bucket, limit.amount, now);
        tracing::info!(email = %email, meter = request.meter, "usage: repeated idempotency key");
        let answer = Granted {
            hold: first,
            balance: &balance,
            credits: read.credits(now),
            consume,
            repeated: true,
        };
        return Ok(granted(&email, &request, answer));
    }
    // A write that finds the item changed since the read (credits drawn or added by another
    // request) is decided once more from the item it found: a third round trip, only then.
    let mut read = read;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let draws = match draws_for(&read, &bucket, limit.amount, request.amount, now) {
            Ok(draws) => draws,
            Err(balance) => {
                let credits = read.credits(now);
                return Ok(limit_reached(&request.meter, &balance, credits, &bucket));
            }
        };
        let outcome = within_budget(
            deps,
            deps.usage_store.reserve(ReserveWrite {
                email: &email,
                meter: &request.meter,
                bucket: &bucket,
                limit: limit.amount,
                amount: request.amount,
                hold_id: &id,
                expires_at: now + request.hold_seconds,
                draws: &draws,
                consume,
                read: &read,
                now,
            }),
        )
        .await?;
        let drawn: i64 = draws.iter().map(|d| d.amount).sum();
        match outcome {
            ReserveOutcome::Granted { hold, balance } => {
                let credits = (read.credits(now) - drawn).max(0);
                let answer = Granted {
                    hold: &hold,
                    balance: &balance,
                    credits,
                    consume,
                    repeated: false,
                };
                return Ok(granted(&email, &request, answer));
            }
            ReserveOutcome::Repeated { hold, balance } => {
                let answer = Granted {
                    hold: &hold,
                    balance: &balance,
                    credits: read.credits(now),
                    consume,
                    repeated: true,
                };
                return Ok(granted(&email, &request, answer));
            }
            ReserveOutcome::LimitReached(balance, found) => {
                let fits = draws_for(&found, &bucket, limit.amount, request.amount, now).is_ok();
                if attempt == 2 || !fits {
                    let credits = found.credits(now);
                    return Ok(limit_reached(&request.meter, &balance, credits, &bucket));
                }
                read = *found;
            }
        }
    }
}

async fn settle(
    deps: &EntitlementDeps,
    body: &Value,
    commit: bool,
    now: i64,
) -> Result<Response<Body>, Refusal> {
    let (reservation, amount) = parse_settle(body, commit).map_err(ApiError::BadRequest)?;
    let outcome = within_budget(
        deps,
        deps.usage_store.settle(&reservation, amount, commit, now),
    )
    .await?;
    let conflict = |error: &str| json_response(StatusCode::CONFLICT, &json!({ "error": error }));
    Ok(match outcome {
        SettleOutcome::Settled { state, balance } => json_response(
            StatusCode::OK,
            &json!({
                "state": state.as_str(),
                "used": balance.used,
                "remaining": amount_json(balance.remaining),
            }),
        ),
        SettleOutcome::Expired => conflict("hold_expired"),
        SettleOutcome::Released => conflict("released"),
        SettleOutcome::Unknown => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "unknown_reservation"}),
        ),
    })
}

/// `usage` of an `/api/entitlement` answer: every meter of the shown grant's plan, when the
/// plan has limits (one batched read); `None` for a plan without limits (no read at all).
pub(crate) async fn usage_summary(
    deps: &EntitlementDeps,
    email: &Email,
    grant: &Grant,
    now: i64,
) -> Result<Option<Value>, StoreError> {
    let Some(meters) = deps.config.limits.meters(&grant.plan) else {
        return Ok(None);
    };
    if meters.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = meters.keys().map(String::as_str).collect();
    let (_, items) = within_budget(deps, deps.store.read_usage(email, &names, false)).await?;
    let mut usage = serde_json::Map::new();
    for (meter, limit) in meters {
        let bucket = bucket_of(grant, limit, now);
        let item: Option<&UsageItem> = items.get(meter);
        let balance = item.map_or_else(
            || llmxt_domain::usage::balance(limit.amount, Default::default(), [], now),
            |item| item.balance(&bucket.id(), limit.amount, now),
        );
        usage.insert(
            meter.clone(),
            json!({
                "limit": amount_json(balance.limit),
                "used": balance.used,
                "reserved": balance.reserved,
                "remaining": amount_json(balance.remaining),
                "credits": item.map_or(0, |item| item.credits(now)),
                "resets_at": format_rfc3339(bucket.resets_at),
            }),
        );
    }
    Ok(Some(Value::Object(usage)))
}
