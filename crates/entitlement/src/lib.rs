//! `GET /api/entitlement`: answers whether a visitor (by cookie) or an email (by a signed
//! server-to-server request) has Pro. The database decides; only when it is unreachable or
//! slower than its budget does a validly signed, unexpired cookie answer alone.
//!
//! With `PASS_SIGNING_KEY`, every answer the database gave for a valid cookie or an email
//! carries an edge pass stating it (`"pass"`, and for a cookie the pass cookie too), and `GET
//! /api/entitlement/keys` publishes the keys that verify it. Only the long-lived cookie earns a
//! pass (a pass cookie is never read here). An answer that fails open on the cookie carries no
//! pass: a pass only ever states what the database said, so the site keeps asking, and a
//! refund still ends access within the TTL once the database answers again.
#![forbid(unsafe_code)]

pub mod config;
pub mod usage;

use std::time::Duration;

use crate::config::EntitlementConfig;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use llmxt_domain::access::{Billing, access_summary};
use llmxt_domain::email::Email;
use llmxt_domain::pass::{KEYS_CACHE_CONTROL, PassContent};
use llmxt_domain::records::{Entitlement, status};
use llmxt_domain::request_signature::{self, SIGNATURE_HEADER, SignedRequest, TIMESTAMP_HEADER};
use llmxt_domain::time::format_rfc3339;
use llmxt_domain::token::{CookieIssuer, EntitlementClaims, Scope, VerifiedToken};
use llmxt_http::{
    ApiError, PresentedToken, add_set_cookie, body_bytes, header, json_response, path_and_query,
    presented_tokens, query_param,
};
use llmxt_store::store::{ClientProfile, Store, StoreError};
use serde_json::{Value, json};

/// What the handler needs, built once at cold start.
#[derive(Debug, Clone)]
pub struct EntitlementDeps {
    /// Validated configuration.
    pub config: EntitlementConfig,
    /// The tables, through a client whose timeouts fit the budget.
    pub store: Store,
    /// Verifies cookies, and issues the refreshed ones.
    pub cookies: CookieIssuer,
    /// The tables again, through a client as patient as `USAGE_DB_TIMEOUT_MS` (usage requests
    /// never fall back to the cookie, and a retried usage write is idempotent).
    pub usage_store: Store,
}

impl EntitlementDeps {
    /// Wraps a store.
    pub fn new(config: EntitlementConfig, store: Store) -> Self {
        let cookies = CookieIssuer::new(&config.cookie);
        Self {
            config,
            usage_store: store.clone(),
            store,
            cookies,
        }
    }

    /// Builds a DynamoDB client whose timeouts and retries fit within the budget.
    pub async fn connect(config: EntitlementConfig) -> Self {
        let profile = ClientProfile::within(budget(&config));
        let store = Store::connect(&config.store, profile).await;
        let usage_profile = ClientProfile::within(Duration::from_millis(config.usage_timeout_ms));
        let usage_store = store.with_profile(usage_profile);
        Self {
            usage_store,
            ..Self::new(config, store)
        }
    }
}

fn budget(config: &EntitlementConfig) -> Duration {
    Duration::from_millis(config.db_budget_ms)
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Database,
    Cookie,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Cookie => "cookie",
        }
    }
}

/// Handles one request received at `now` (unix seconds).
pub async fn handle(deps: &EntitlementDeps, request: Request, now: i64) -> Response<Body> {
    if usage::is_usage_path(request.uri().path()) {
        return usage::handle(deps, request, now).await;
    }
    match answer(deps, &request, now).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(status = error.status().as_u16(), reason = %error, "entitlement request rejected");
            error.into_response()
        }
    }
}

async fn answer(
    deps: &EntitlementDeps,
    request: &Request,
    now: i64,
) -> Result<Response<Body>, ApiError> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return Err(ApiError::MethodNotAllowed("GET, HEAD"));
    }
    // The signed string joins its fields with dots, so a body could stand in for the end of
    // the query ("…?email=a%40b" + "co." signs like "…?email=a%40b.co" + ""): a GET or HEAD
    // carries none, and one that does is refused before its signature is looked at.
    if !body_bytes(request).is_empty() {
        return Err(ApiError::BadRequest(
            "a GET or HEAD request must not have a body",
        ));
    }
    if is_keys_path(request) {
        return key_set(deps);
    }
    let email_query = query_param(request, "email");
    if email_query.is_some() || deps.config.require_signature {
        verify_signature(deps, request, now)?;
    }
    if let Some(raw) = email_query {
        let email =
            Email::parse(&raw).map_err(|_| ApiError::BadRequest("email is not a valid address"))?;
        return match lookup(deps, &email, now).await {
            Ok(entitlement) => {
                tracing::info!(email = %email, pro = is_pro(deps, entitlement.as_ref(), now), source = "database", "entitlement by email");
                let response = from_database(
                    deps,
                    entitlement.as_ref(),
                    Scope::Account.as_str(),
                    now,
                    PassTo::Json(&email),
                );
                Ok(with_usage(deps, response, &email, entitlement.as_ref(), now).await)
            }
            Err(error) => {
                tracing::error!(email = %email, error = %error, cause = cause(&error), "entitlement by email: database failed, failing closed");
                Err(ApiError::Unavailable)
            }
        };
    }

    // Every entitlement cookie sent is tried, under both names (a sibling subdomain can
    // plant one): a valid one that gives access wins over a valid one that does not, and an
    // invalid one is cleared only when no valid one came with it.
    let (valid, rejected) = presented_tokens(request, &deps.cookies, now);
    if valid.is_empty() {
        let mut response = not_pro(deps, None, Source::Cookie, now, PassTo::Nobody);
        for (name, reason) in rejected {
            tracing::info!(reason = %reason, "entitlement cookie rejected and cleared");
            add_set_cookie(response.headers_mut(), &deps.cookies.cleared(name));
        }
        return Ok(response);
    }
    // Old-name cookies of several emails: one was planted (a sibling subdomain, plain
    // http). None of them is moved to the new name, and none is cleared.
    let movable = !llmxt_http::several_emails(&valid);
    let mut emails: Vec<&str> = Vec::new();
    for presented in &valid {
        let email = presented.token.claims.email.as_str();
        if !emails.contains(&email) && emails.len() < MAX_EMAILS_PER_CHECK {
            emails.push(email);
        }
    }
    let mut first_answer = None;
    for raw in emails {
        let Ok(email) = Email::parse(raw) else {
            continue;
        };
        let entitlement = match lookup(deps, &email, now).await {
            Ok(entitlement) => entitlement,
            Err(error) if error.is_transient() => {
                // A cookie naming a plan that is not a paid plan never answers Pro, not even alone.
                let Some(presented) = valid.iter().find(|p| {
                    p.token.claims.email == raw && deps.config.ranking.is_paid(&p.token.claims.plan)
                }) else {
                    continue;
                };
                tracing::warn!(email = %email, error = %error, fail_open = true, "database unavailable: failing open on a valid cookie");
                return Ok(from_cookie(deps, &presented.token.claims, &email, now));
            }
            Err(error) => {
                tracing::error!(email = %email, error = %error, cause = cause(&error), "database refused the lookup (misconfiguration?): failing closed");
                return Err(ApiError::Unavailable);
            }
        };
        for presented in valid.iter().filter(|p| p.token.claims.email == raw) {
            let scope = presented.token.claims.scope();
            let seen = entitlement
                .as_ref()
                .map(|e| e.within_scope(scope.grant_keys(), now, &deps.config.ranking));
            if is_pro(deps, seen.as_ref(), now) {
                let response = answer_cookie(deps, presented, &email, seen.as_ref(), movable, now);
                return Ok(with_usage(deps, response, &email, seen.as_ref(), now).await);
            }
            first_answer.get_or_insert((presented, email.clone(), seen));
        }
    }
    Ok(match first_answer {
        Some((presented, email, seen)) => {
            answer_cookie(deps, presented, &email, seen.as_ref(), movable, now)
        }
        None => not_pro(deps, None, Source::Cookie, now, PassTo::Nobody),
    })
}

/// Adds `usage` to a database answer whose shown grant's plan has limits (one more batched
/// read); a plan without limits costs nothing more. Usage that cannot be read is left out of
/// the answer rather than failing it.
async fn with_usage(
    deps: &EntitlementDeps,
    response: Response<Body>,
    email: &Email,
    seen: Option<&Entitlement>,
    now: i64,
) -> Response<Body> {
    let Some(grant) = seen.and_then(|e| e.best_grant(now, &deps.config.ranking)) else {
        return response;
    };
    let usage = match usage::usage_summary(deps, email, grant, now).await {
        Ok(Some(usage)) => usage,
        Ok(None) => return response,
        Err(error) => {
            tracing::warn!(email = %email, error = %error, "usage could not be read; answered without it");
            return response;
        }
    };
    let (parts, body) = response.into_parts();
    let mut fields: Value = serde_json::from_slice(body.as_ref()).unwrap_or_default();
    if let Some(object) = fields.as_object_mut() {
        object.insert("usage".to_owned(), usage);
    }
    Response::from_parts(parts, Body::from(fields.to_string()))
}

/// `GET /api/entitlement/keys`, also under a stage prefix.
fn is_keys_path(request: &Request) -> bool {
    use lambda_http::RequestExt;
    let raw = request.raw_http_path();
    let path = if raw.is_empty() {
        request.uri().path()
    } else {
        raw
    };
    path.trim_end_matches('/')
        .ends_with("/api/entitlement/keys")
}

/// The key set that verifies passes (public, cacheable for five minutes); 404 when passes are
/// not configured.
fn key_set(deps: &EntitlementDeps) -> Result<Response<Body>, ApiError> {
    let passes = deps.cookies.passes().ok_or(ApiError::NotFound)?;
    let document = serde_json::to_value(passes.keys().jwks()).map_err(|_| ApiError::Internal)?;
    let mut response = json_response(StatusCode::OK, &document);
    response.headers_mut().insert(
        "cache-control",
        lambda_http::http::HeaderValue::from_static(KEYS_CACHE_CONTROL),
    );
    Ok(response)
}

/// Most distinct emails one check reads (one read each) when cookies of several are sent.
const MAX_EMAILS_PER_CHECK: usize = 3;

/// The database's answer for one cookie, over the grants it covers (`seen`), with a refreshed
/// cookie when it gives access and is due for one. A cookie under the old name is moved to
/// the new one only when `movable` (no cookie of another email came beside it).
fn answer_cookie(
    deps: &EntitlementDeps,
    presented: &PresentedToken,
    email: &Email,
    seen: Option<&Entitlement>,
    movable: bool,
    now: i64,
) -> Response<Body> {
    let claims = &presented.token.claims;
    let scope = claims.scope();
    let mut response = from_database(deps, seen, scope.as_str(), now, PassTo::Cookie(email));
    let best = seen.and_then(|e| e.best_grant(now, &deps.config.ranking));
    let renamed = presented.name != deps.cookies.name();
    let fresh = best
        .filter(|_| movable || !renamed)
        .and_then(|grant| match claims.session() {
            Some(session) if renamed || needs_refresh(&presented.token, now) => deps
                .cookies
                .issue(email, &grant.plan, &session, now)
                .or_else(|| deps.cookies.reissue(claims, now).filter(|_| renamed)),
            // Issued before sessions: moved to the current name or key, never extended.
            None if renamed || !presented.token.signed_with_current_key => {
                deps.cookies.reissue(claims, now)
            }
            _ => None,
        });
    if let Some(fresh) = &fresh {
        add_set_cookie(response.headers_mut(), &fresh.set_cookie);
        if renamed {
            add_set_cookie(
                response.headers_mut(),
                &deps.cookies.cleared(presented.name),
            );
        }
    }
    tracing::info!(email = %email, pro = best.is_some(), scope = scope.as_str(), refreshed = fresh.is_some(), source = "database", "entitlement by cookie");
    response
}

/// A short name for why the database failed, for alarms and searches.
fn cause(error: &StoreError) -> &'static str {
    match error {
        StoreError::Unavailable(_) | StoreError::Contention => "unavailable",
        StoreError::MissingTable(_) => "missing_table",
        StoreError::Credentials(_) => "credentials_or_access",
        StoreError::Rejected(_) => "request_rejected",
        StoreError::Corrupt(_) => "corrupt_item",
        StoreError::NotFound(_) => "not_found",
    }
}

/// Seconds after which a cookie the database still backs is re-issued.
pub const REFRESH_AFTER_SECONDS: i64 = 86_400;

/// A cookie issued more than a day ago, or signed with a key being rotated out.
fn needs_refresh(token: &VerifiedToken, now: i64) -> bool {
    !token.signed_with_current_key || now - token.claims.iat > REFRESH_AFTER_SECONDS
}

fn verify_signature(deps: &EntitlementDeps, request: &Request, now: i64) -> Result<(), ApiError> {
    let Some(secret) = &deps.config.hmac_secret else {
        return Err(ApiError::Unauthorized("signed requests are not configured"));
    };
    let target = path_and_query(request);
    let signed = SignedRequest {
        method: request.method().as_str(),
        path_and_query: &target,
        body: body_bytes(request),
    };
    request_signature::verify(
        secret,
        header(request, TIMESTAMP_HEADER),
        header(request, SIGNATURE_HEADER),
        signed,
        now,
    )
    .map_err(|_| ApiError::Unauthorized("invalid request signature"))
}

/// Reads the entitlement within the budget; a timeout is the same as unavailable. An item with
/// a grant in force on a plan `PLAN_RANKING` does not list as paid (an import, a hand edit,
/// another system's `gold`) is logged once per read: that grant gives no Pro.
async fn lookup(
    deps: &EntitlementDeps,
    email: &Email,
    now: i64,
) -> Result<Option<Entitlement>, StoreError> {
    let read =
        match tokio::time::timeout(budget(&deps.config), deps.store.get_entitlement(email)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "no answer within {} ms",
                    deps.config.db_budget_ms
                )));
            }
        };
    if let Some(entitlement) = &read {
        let unpaid = entitlement.unpaid_plans_in_force(now, &deps.config.ranking);
        if !unpaid.is_empty()
            && llmxt_store::warn_once::first_time(&format!("plan|{}|{unpaid:?}", email.as_str()))
        {
            tracing::warn!(
                email = %email,
                plans = ?unpaid,
                outcome = "unconfigured_plan",
                "entitlement item has a plan PLAN_RANKING does not list as paid; it gives no Pro"
            );
        }
    }
    Ok(read)
}

fn is_pro(deps: &EntitlementDeps, entitlement: Option<&Entitlement>, now: i64) -> bool {
    entitlement.is_some_and(|e| e.has_pro(now, &deps.config.ranking))
}

/// The database's answer over the grants in scope (`entitlement` is already narrowed to the
/// cookie's scope), from [`access_summary`]: the best grant giving access now (highest plan
/// by `PLAN_RANKING`, then the latest expiry), the features of every grant giving access, and
/// the shown grant's billing; when none gives access, the most recently changed grant.
fn from_database(
    deps: &EntitlementDeps,
    entitlement: Option<&Entitlement>,
    scope: &'static str,
    now: i64,
    pass_to: PassTo<'_>,
) -> Response<Body> {
    let Some(entitlement) = entitlement else {
        return not_pro(deps, Some(scope), Source::Database, now, pass_to);
    };
    let shown = Shown {
        scope: Some(scope),
        source: Source::Database,
        ..Shown::default()
    };
    let summary = access_summary(
        entitlement.grants.values(),
        now,
        &deps.config.ranking,
        &deps.config.features,
    );
    let shown = match summary.shown {
        Some(grant) => Shown {
            pro: summary.pro,
            plan: Some(&grant.plan),
            state: Some(&grant.status),
            expires_at: grant.expires_at,
            features: &summary.features,
            billing: summary.billing.as_ref(),
            ..shown
        },
        None => shown,
    };
    body(deps, shown, now, pass_to)
}

fn from_cookie(
    deps: &EntitlementDeps,
    claims: &EntitlementClaims,
    email: &Email,
    now: i64,
) -> Response<Body> {
    let shown = Shown {
        pro: true,
        plan: Some(&claims.plan),
        state: Some(status::ACTIVE),
        expires_at: Some(claims.exp),
        features: deps.config.features.of(&claims.plan),
        scope: Some(claims.scope().as_str()),
        source: Source::Cookie,
        ..Shown::default()
    };
    body(deps, shown, now, PassTo::Cookie(email))
}

fn not_pro(
    deps: &EntitlementDeps,
    scope: Option<&'static str>,
    source: Source,
    now: i64,
    pass_to: PassTo<'_>,
) -> Response<Body> {
    let shown = Shown {
        scope,
        source,
        ..Shown::default()
    };
    body(deps, shown, now, pass_to)
}

/// Who an answer's pass is for, and how it is sent.
#[derive(Debug, Clone, Copy)]
enum PassTo<'a> {
    /// Nobody: no valid cookie came.
    Nobody,
    /// A check by email: `"pass"` in the JSON only (it is about that email, not the visitor).
    Json(&'a Email),
    /// A visitor's valid cookie: `"pass"` in the JSON and the pass cookie.
    Cookie(&'a Email),
}

/// What an answer shows.
#[derive(Debug, Clone, Copy)]
struct Shown<'a> {
    pro: bool,
    plan: Option<&'a str>,
    state: Option<&'a str>,
    expires_at: Option<i64>,
    features: &'a [String],
    billing: Option<&'a Billing>,
    scope: Option<&'static str>,
    source: Source,
}

impl Default for Shown<'_> {
    fn default() -> Self {
        Self {
            pro: false,
            plan: None,
            state: None,
            expires_at: None,
            features: &[],
            billing: None,
            scope: None,
            source: Source::Database,
        }
    }
}

/// `{state, renews_at | ends_at, scheduled_plan[, scheduled_at]}`.
fn billing_json(billing: &Billing) -> Value {
    let time = |t: i64| Value::from(format_rfc3339(t));
    let mut fields = json!({
        "state": billing.state.as_str(),
        "scheduled_plan": billing.scheduled_plan,
    });
    if let Some(at) = billing.renews_at {
        fields["renews_at"] = time(at);
    }
    if let Some(at) = billing.ends_at {
        fields["ends_at"] = time(at);
    }
    if let Some(at) = billing.scheduled_at {
        fields["scheduled_at"] = time(at);
    }
    fields
}

fn body(deps: &EntitlementDeps, shown: Shown<'_>, now: i64, pass_to: PassTo<'_>) -> Response<Body> {
    let (email, as_cookie) = match pass_to {
        PassTo::Nobody => (None, false),
        PassTo::Json(email) => (Some(email), false),
        PassTo::Cookie(email) => (Some(email), true),
    };
    // Only the database's word is signed: a fail-open answer (the cookie's word) gets no pass.
    let pass = email
        .zip(deps.cookies.passes())
        .filter(|_| shown.source == Source::Database)
        .and_then(|(email, passes)| {
            let content = PassContent {
                email: email.as_str(),
                pro: shown.pro,
                plan: shown.plan,
                features: shown.features,
                scope: shown.scope,
                billing_state: shown.billing.map(|billing| billing.state.as_str()),
                source: shown.source.as_str(),
            };
            passes.issue(&content, now)
        });
    let mut fields = json!({
        "pro": shown.pro,
        "plan": shown.plan,
        "status": shown.state,
        "expires_at": shown.expires_at.map(format_rfc3339).map_or(Value::Null, Value::from),
        "features": shown.features,
        "billing": shown.billing.map_or(Value::Null, billing_json),
        "scope": shown.scope,
        "source": shown.source.as_str(),
    });
    if let Some(pass) = &pass {
        fields["pass"] = Value::from(pass.token.as_str());
    }
    let mut response = json_response(StatusCode::OK, &fields);
    if let Some(pass) = pass.as_ref().filter(|_| as_cookie) {
        add_set_cookie(response.headers_mut(), &pass.set_cookie);
    }
    response.headers_mut().insert(
        "vary",
        lambda_http::http::HeaderValue::from_static("cookie"),
    );
    response
}
