//! Baseline for init time: a bare `lambda_http` function that builds the same DynamoDB client
//! at init and answers 200, with no configuration, tracing or handler logic.
#![forbid(unsafe_code)]

use lambda_http::{Body, Error, Request, Response, service_fn};
use llmxt_store::config::StoreConfig;
use llmxt_store::store::{ClientProfile, Store};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = StoreConfig {
        entitlements_table: "llmxt-entitlements".to_owned(),
        payments_table: "llmxt-payments".to_owned(),
        endpoint: std::env::var("DYNAMODB_ENDPOINT").ok(),
    };
    let store = Store::connect(&config, ClientProfile::patient()).await;
    lambda_http::run(service_fn(|_request: Request| {
        let _client = store.client();
        async { Ok::<_, Error>(Response::new(Body::from("ok"))) }
    }))
    .await
}
