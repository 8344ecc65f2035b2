//! A local HTTP server for development and end-to-end tests. It routes to the very handler
//! functions the Lambdas run — there is no second implementation — and serves a minimal
//! page at `/` where a local buyer lands.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use entitlement::config::EntitlementConfig;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use lambda_http::http::{self, StatusCode};
use lambda_http::{Body, RequestExt};
use llmxt_domain::config::Env;
use llmxt_domain::time::unix_now;
use success_redirect::config::SuccessConfig;
use tokio::net::TcpListener;
use webhook::config::WebhookConfig;

/// Largest body the server reads (Lambda's own request limit is 6 MB).
pub const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// The three functions' dependencies, and the local landing page.
pub struct LocalApi {
    home: String,
    webhook: webhook::WebhookDeps,
    success: success_redirect::SuccessDeps,
    entitlement: entitlement::EntitlementDeps,
}

impl LocalApi {
    /// Reads every function's configuration and builds their clients.
    pub async fn from_env(env: &Env) -> Result<Self, llmxt_domain::config::ConfigError> {
        let webhook_config = WebhookConfig::from_env(env)?;
        let success_config = SuccessConfig::from_env(env)?;
        let entitlement_config = EntitlementConfig::from_env(env)?;
        let home = home_page(&success_config, env);
        Ok(Self {
            home,
            webhook: webhook::WebhookDeps::connect(webhook_config).await,
            success: success_redirect::SuccessDeps::connect(success_config).await,
            entitlement: entitlement::EntitlementDeps::connect(entitlement_config).await,
        })
    }

    /// Routes one request to its handler.
    pub async fn route(&self, request: lambda_http::Request) -> lambda_http::Response<Body> {
        let now = unix_now();
        match request.uri().path() {
            "/api/webhooks/dodo" => webhook::handle(&self.webhook, request, now).await,
            path if path.starts_with("/upgrade/") => {
                success_redirect::handle(&self.success, request, now).await
            }
            "/api/entitlement" => entitlement::handle(&self.entitlement, request, now).await,
            path if entitlement::usage::is_usage_path(path) => {
                entitlement::handle(&self.entitlement, request, now).await
            }
            "/" => static_file("text/html; charset=utf-8", &self.home),
            "/app.js" => static_file("text/javascript; charset=utf-8", HOME_SCRIPT),
            _ => {
                let mut response = lambda_http::Response::new(Body::from("not found"));
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }
        }
    }
}

/// Serves `api` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    api: Arc<LocalApi>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let api = Arc::clone(&api);
                let service = service_fn(move |request| {
                    let api = Arc::clone(&api);
                    async move { Ok::<_, Infallible>(handle(&api, request, peer).await) }
                });
                let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(error = %error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    graceful.shutdown().await;
}

async fn handle(
    api: &LocalApi,
    request: http::Request<Incoming>,
    peer: SocketAddr,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let request = to_lambda_request(parts, bytes);
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = api.route(request).await;
    llmxt_http::no_sniff(&mut response);
    tracing::debug!(%peer, %method, path, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "local request");
    let (parts, body) = response.into_parts();
    http::Response::from_parts(parts, Full::new(Bytes::copy_from_slice(body.as_ref())))
}

/// Builds the request `lambda_http` would hand the handler for the same HTTP request.
pub fn to_lambda_request(parts: http::request::Parts, body: Bytes) -> lambda_http::Request {
    let raw_path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(error) => Body::Binary(error.into_bytes()),
    };
    let query_map: lambda_http::aws_lambda_events::query_map::QueryMap =
        query.parse().unwrap_or_default();
    lambda_http::Request::from_parts(parts, body)
        .with_raw_http_path(raw_path)
        .with_query_string_parameters(query_map)
}

fn plain(status: StatusCode, text: &'static str) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "x-content-type-options",
        http::HeaderValue::from_static("nosniff"),
    );
    response
}

/// The landing page with the buyer's links: **Buy Pro** (a Checkout Session through
/// `/upgrade/checkout` when Dodo's API is configured, else the static checkout link),
/// **Change plan** (to the highest plan sold, and a link to each other plan), **Manage
/// billing**, **Restore on this device**, and the local SES emulator's mailbox.
fn home_page(success: &SuccessConfig, env: &Env) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;")
    };
    let mut links = Vec::new();
    let product = success.plans.products().first().map(|p| (*p).to_owned());
    match (&success.dodo_api, product, &success.checkout_url) {
        (Some(_), Some(product), _) => links.push(format!(
            "<a id=\"buy\" href=\"/upgrade/checkout?product={}\">Buy Pro</a>",
            escape(&product)
        )),
        (_, _, Some(url)) => links.push(format!(
            "<a id=\"buy\" href=\"{}\">Buy Pro</a>",
            escape(url)
        )),
        _ => {}
    }
    if success.dodo_api.is_some() {
        let ranking = success.plans.ranking();
        let mut by_plan: Vec<(&str, String)> = success
            .plans
            .products()
            .into_iter()
            .map(|p| (p, success.plans.plan_for(Some(p)).to_owned()))
            .collect();
        by_plan.sort_by_key(|(_, plan)| std::cmp::Reverse(ranking.rank(plan)));
        by_plan.dedup_by(|a, b| a.1 == b.1);
        if by_plan.len() > 1 {
            let change: Vec<String> = by_plan
                .iter()
                .enumerate()
                .map(|(i, (product, plan))| {
                    let (id, label) = if i == 0 {
                        ("change-plan".to_owned(), format!("Change plan (to {plan})"))
                    } else {
                        (format!("change-plan-{plan}"), format!("(to {plan})"))
                    };
                    format!(
                        "<a id=\"{}\" href=\"/upgrade/plan?product={}\">{}</a>",
                        escape(&id),
                        escape(product),
                        escape(&label)
                    )
                })
                .collect();
            links.push(change.join(" "));
        }
    }
    links.push("<a id=\"billing\" href=\"/upgrade/billing\">Manage billing</a>".to_owned());
    links.push("<a id=\"restore\" href=\"/upgrade/restore\">Restore on this device</a>".to_owned());
    if let Some(ses) = env.optional("SES_ENDPOINT") {
        links.push(format!(
            "<a id=\"mailbox\" href=\"{}/\">Local mailbox (sent sign-in links)</a>",
            escape(ses.trim_end_matches('/'))
        ));
    }
    HOME_PAGE.replace("<!--LINKS-->", &format!("<p>{}</p>", links.join(" · ")))
}

fn static_file(content_type: &'static str, content: &str) -> lambda_http::Response<Body> {
    let mut response = llmxt_http::html_response(StatusCode::OK, content.to_owned());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    headers.insert(
        "content-security-policy",
        http::HeaderValue::from_static(
            "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    response
}

/// The local landing page: shows whether this browser is Pro, as the real site would.
pub const HOME_PAGE: &str = include_str!("home.html");
/// Its script: asks `/api/entitlement` and shows the answer.
pub const HOME_SCRIPT: &str = include_str!("app.js");
