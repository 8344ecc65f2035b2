//! Lambda entry point for `GET /api/entitlement`.
#![forbid(unsafe_code)]

use entitlement::config::EntitlementConfig;
use entitlement::{EntitlementDeps, handle};
use lambda_http::{Error, service_fn};
use llmxt_domain::config::Env;
use llmxt_domain::time::unix_now;

#[tokio::main]
async fn main() -> Result<(), Error> {
    llmxt_http::init_tracing();
    let config = llmxt_http::config_or_exit(EntitlementConfig::from_env(&Env::process()));
    let deps = EntitlementDeps::connect(config).await;
    lambda_http::run(service_fn(|request| async {
        Ok::<_, Error>(handle(&deps, request, unix_now()).await)
    }))
    .await
}
