//! Lambda entry point for `POST /api/webhooks/dodo`.
#![forbid(unsafe_code)]

use lambda_http::{Error, service_fn};
use llmxt_domain::config::Env;
use llmxt_domain::time::unix_now;
use webhook::config::WebhookConfig;
use webhook::{WebhookDeps, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    llmxt_http::init_tracing();
    let config = llmxt_http::config_or_exit(WebhookConfig::from_env(&Env::process()));
    let deps = WebhookDeps::connect(config).await;
    lambda_http::run(service_fn(|request| async {
        Ok::<_, Error>(handle(&deps, request, unix_now()).await)
    }))
    .await
}
