//! Lambda entry point for `GET /upgrade/success`.
#![forbid(unsafe_code)]

use lambda_http::{Error, service_fn};
use llmxt_domain::config::Env;
use llmxt_domain::time::unix_now;
use success_redirect::config::SuccessConfig;
use success_redirect::{SuccessDeps, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    llmxt_http::init_tracing();
    let config = llmxt_http::config_or_exit(SuccessConfig::from_env(&Env::process()));
    let deps = SuccessDeps::connect(config).await;
    lambda_http::run(service_fn(|request| async {
        Ok::<_, Error>(handle(&deps, request, unix_now()).await)
    }))
    .await
}
