//! `dodo-local`: the Dodo API stand-in served on loopback for `scripts/dev.sh`, with a hosted
//! checkout page (**Pay** sends the signed webhook to local-api; **Pay, but lose the
//! webhook** leaves the success page to confirm through the API) and a customer portal page.
//!
//! Environment: `DODO_LOCAL_PORT` (8006), `DODO_PAYMENTS_API_KEY`, `DODO_WEBHOOK_SECRET`,
//! `DODO_LOCAL_WEBHOOK_URL` (where to deliver webhooks), `DODO_LOCAL_SUBSCRIPTION_PRODUCTS`
//! (products its checkout sells as monthly subscriptions, comma-separated) and
//! `DODO_LOCAL_PRICES` (`product=cents,…`, for plan-change previews) and
//! `DODO_LOCAL_UNAVAILABLE_PRODUCTS` (products whose checkout sessions fail with a 500, as in
//! an outage; comma-separated).
#![forbid(unsafe_code)]

use llmxt_testkit::dodo::{DodoStandIn, StandInOptions};

#[tokio::main]
async fn main() {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let port: u16 = env("DODO_LOCAL_PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or(8006);
    let Some(api_key) = env("DODO_PAYMENTS_API_KEY") else {
        eprintln!("dodo-local: DODO_PAYMENTS_API_KEY is required (the key local-api presents)");
        std::process::exit(1);
    };
    let options = StandInOptions {
        api_key,
        webhook_url: env("DODO_LOCAL_WEBHOOK_URL"),
        webhook_secret: env("DODO_WEBHOOK_SECRET"),
    };
    let stand_in = match DodoStandIn::bind(options, port).await {
        Ok(stand_in) => stand_in,
        Err(error) => {
            eprintln!("dodo-local: cannot listen on 127.0.0.1:{port}: {error}");
            std::process::exit(1);
        }
    };
    let list = |name: &str| env(name).unwrap_or_default();
    let subscriptions = list("DODO_LOCAL_SUBSCRIPTION_PRODUCTS");
    let products: Vec<&str> = subscriptions
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    stand_in.set_subscription_products(&products);
    let unavailable = list("DODO_LOCAL_UNAVAILABLE_PRODUCTS");
    let unavailable: Vec<&str> = unavailable
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    stand_in.set_unavailable_products(&unavailable);
    for entry in list("DODO_LOCAL_PRICES").split(',') {
        if let Some((product, cents)) = entry.split_once('=') {
            match cents.trim().parse() {
                Ok(cents) => stand_in.set_price(product.trim(), cents),
                Err(_) => {
                    eprintln!("dodo-local: DODO_LOCAL_PRICES must be product=cents,…");
                    std::process::exit(1);
                }
            }
        }
    }
    eprintln!("dodo-local: Dodo API stand-in on {}", stand_in.base_url);
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("dodo-local stopped");
}
