//! Every buyer-facing `/upgrade/*` route, one module each: `/upgrade/success`
//! ([`success`]), `/upgrade/restore` ([`restore`]), `/upgrade/checkout` ([`checkout`]),
//! `/upgrade/billing` ([`billing`]), `/upgrade/plan` ([`plan`]). The Lambda and local-api call [`handle`], which routes
//! by path.
#![forbid(unsafe_code)]

pub mod billing;
pub mod brand;
pub mod budget;
pub mod cache;
pub mod checkout;
pub mod client;
pub mod config;
mod html;
pub mod mail;
pub mod pages;
pub mod plan;
pub mod restore;
pub mod success;
pub mod words;

pub use success::{DEV_MODE_EMAIL, MAX_ATTEMPTS, RETRY_SECONDS};

use crate::config::SuccessConfig;
use lambda_http::{Body, Request, RequestExt, Response};
use llmxt_dodo::dodo_api::DodoApi;
use llmxt_domain::token::CookieIssuer;
use llmxt_http::ApiError;
use llmxt_store::store::{ClientProfile, Store};

/// What the buyer-facing routes need, built once at cold start.
#[derive(Debug, Clone)]
pub struct SuccessDeps {
    /// Validated configuration.
    pub config: SuccessConfig,
    /// The tables.
    pub store: Store,
    /// Issues the cookie.
    pub cookies: CookieIssuer,
    /// Dodo's API, when `DODO_PAYMENTS_API_KEY` is set (its HTTP client is built on first use).
    pub dodo: Option<std::sync::Arc<DodoApi>>,
    /// Sends sign-in links, when `RESTORE_EMAIL_FROM` is set (its SES client is built on the
    /// first email).
    pub mailer: Option<std::sync::Arc<mail::Mailer>>,
    /// A request for a sign-in link that passed the limits is answered no sooner than this
    /// after it arrived, whether or not an email was sent ([`DEFAULT_RESTORE_FLOOR`]).
    pub restore_floor: std::time::Duration,
    /// The branded page shell (`BRAND_*`, `SUPPORT_*`), built once.
    pub shell: std::sync::Arc<pages::Shell>,
    /// Portal links by customer id, for as long as Dodo keeps them valid ([`cache`]).
    pub portal_links: std::sync::Arc<cache::TtlCache<String>>,
    /// Plan-change previews by subscription and product, for a minute ([`cache`]).
    /// Each with the card on file and the new plan's recurring price it showed.
    pub previews: std::sync::Arc<cache::TtlCache<plan::ShownPreview>>,
    /// The checkout's counters while DynamoDB cannot count them ([`budget::MemoryCounters`]).
    pub memory_counters: std::sync::Arc<budget::MemoryCounters>,
}

/// How long a sign-in link request that passed the limits takes at least: longer than
/// storing a token and sending through SES takes, so the answer's timing does not tell
/// whether the email has a purchase. 2.7× the slowest answer measured with `llmxt-bench
/// restore` (255.7 ms; p99 157.7 ms; docs/security.md, "The answer floor").
pub const DEFAULT_RESTORE_FLOOR: std::time::Duration = std::time::Duration::from_millis(700);

impl SuccessDeps {
    /// Wraps a store; deliveries confirmed through Dodo's API find erasure tombstones under
    /// the `ENTITLEMENT_SECRET` keys.
    pub fn new(config: SuccessConfig, store: Store) -> Self {
        let store = store.with_erasure_keys(&config.cookie.keys);
        let cookies = CookieIssuer::new(&config.cookie);
        let dodo = config
            .dodo_api
            .clone()
            .map(|api| std::sync::Arc::new(DodoApi::new(api, llmxt_dodo::confirm::API_BUDGET, 0)));
        let mailer = config
            .restore
            .clone()
            .map(|restore| std::sync::Arc::new(mail::Mailer::new(restore, config.brand.clone())));
        let shell = std::sync::Arc::new(pages::Shell::new(&config));
        Self {
            shell,
            config,
            store,
            cookies,
            dodo,
            mailer,
            restore_floor: DEFAULT_RESTORE_FLOOR,
            portal_links: std::sync::Arc::default(),
            previews: std::sync::Arc::default(),
            memory_counters: std::sync::Arc::default(),
        }
    }

    /// Builds the DynamoDB client for this configuration.
    pub async fn connect(config: SuccessConfig) -> Self {
        let store = Store::connect(
            &config.store,
            ClientProfile::within(std::time::Duration::from_secs(3)),
        )
        .await;
        Self::new(config, store)
    }
}

/// Handles one request received at `now` (unix seconds), routed by path.
pub async fn handle(deps: &SuccessDeps, request: Request, now: i64) -> Response<Body> {
    let path = {
        let raw = request.raw_http_path();
        if raw.is_empty() {
            request.uri().path().to_owned()
        } else {
            raw.to_owned()
        }
    };
    // Each route's future is boxed: together they would make this one as large as the
    // largest, and a debug build's stack (2 MiB on a worker thread) holds only so much.
    match path.trim_end_matches('/') {
        "/upgrade/success" => Box::pin(success::handle(deps, request, now)).await,
        "/upgrade/restore" => Box::pin(restore::handle(deps, request, now)).await,
        "/upgrade/checkout" => Box::pin(checkout::handle(deps, request, now)).await,
        "/upgrade/billing" => Box::pin(billing::handle(deps, request, now)).await,
        "/upgrade/plan" => Box::pin(plan::handle(deps, request, now)).await,
        _ if llmxt_http::wants_json(&request) => ApiError::NotFound.into_response(),
        _ => pages::not_found(deps),
    }
}
