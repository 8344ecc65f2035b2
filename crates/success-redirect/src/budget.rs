//! Budgets for the Dodo API calls anonymous requests cause, shared by every instance through
//! counters in the payments table (`limit#…`, with a TTL). Only a path that is about to call
//! the API writes a counter. Over budget the caller makes no call and stores nothing, and a
//! line with `outcome = "over_budget"` is logged (the template's alarm counts them).

use llmxt_domain::crypto::hex_encode;
use llmxt_store::store::LookupGate;
use sha2::{Digest, Sha256};

use crate::SuccessDeps;

/// How long a look-up budget per id lasts, and how long a 404 from Dodo is remembered.
pub const LOOKUP_WINDOW_SECONDS: i64 = 600;
/// Look-ups of one id within [`LOOKUP_WINDOW_SECONDS`] (kept by the store's two slots).
pub const LOOKUPS_PER_ID: i64 = 2;

/// Takes `calls` from the site-wide `DODO_API_CALLS_PER_MINUTE`; `false` when over it (or
/// when it cannot be counted: then no call is made either).
pub async fn take_api_calls(deps: &SuccessDeps, route: &'static str, calls: i64, now: i64) -> bool {
    let limit = deps.config.limits.dodo_api_calls_per_minute;
    let window_end = (now / 60 + 1) * 60;
    match deps
        .store
        .add_in_window("dodo_api", calls, window_end)
        .await
    {
        Ok(count) if count <= limit => true,
        Ok(count) => {
            tracing::warn!(
                route,
                budget = "dodo_api_calls_per_minute",
                count,
                limit,
                outcome = "over_budget",
                "Dodo API budget spent for this minute: no call made"
            );
            false
        }
        Err(error) => {
            tracing::error!(route, error = %error, "could not count a Dodo API call: no call made");
            false
        }
    }
}

/// Whether the success page may ask Dodo about `id` now, making up to `calls` calls: at most
/// [`LOOKUPS_PER_ID`] times per id in [`LOOKUP_WINDOW_SECONDS`], never while a 404 for it is
/// remembered, and within the site-wide budget.
pub async fn may_look_up(deps: &SuccessDeps, id: &str, calls: i64, now: i64) -> bool {
    match deps.store.take_lookup(id, now, LOOKUP_WINDOW_SECONDS).await {
        Ok(LookupGate::Allowed) => take_api_calls(deps, "success", calls, now).await,
        Ok(gate) => {
            let outcome = match gate {
                LookupGate::RememberedNotFound => "remembered_not_found",
                _ => "lookups_spent",
            };
            tracing::info!(id, outcome, "Dodo's API not asked again for this id yet");
            false
        }
        Err(error) => {
            tracing::error!(id, error = %error, "could not count a look-up: Dodo not asked");
            false
        }
    }
}

/// Remembers for [`LOOKUP_WINDOW_SECONDS`] that Dodo does not know `id`.
pub async fn remember_not_found(deps: &SuccessDeps, id: &str, now: i64) {
    if let Err(error) = deps
        .store
        .remember_not_found(id, now + LOOKUP_WINDOW_SECONDS)
        .await
    {
        tracing::warn!(id, error = %error, "could not remember Dodo's 404");
    }
}

/// Counts one more request from `client_ip` under `scope` in the current hour; `Some(count)`
/// so far, `None` when it could not be counted.
pub async fn count_per_ip_hour(
    deps: &SuccessDeps,
    scope: &str,
    client_ip: &str,
    now: i64,
) -> Option<i64> {
    let window_end = (now / 3600 + 1) * 3600;
    let key = format!(
        "{scope}#{}",
        hex_encode(&Sha256::digest(client_ip.as_bytes()))
    );
    match deps.store.count_in_window(&key, window_end).await {
        Ok(count) => Some(count),
        Err(error) => {
            tracing::error!(scope, error = %error, "could not count the request");
            None
        }
    }
}
