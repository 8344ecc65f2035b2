//! Budgets for the Dodo API calls requests cause, shared by every instance through counters
//! in the payments table (`limit#…`, with a TTL). Only a path that is about to call the API
//! writes a counter. Over budget the caller makes no call and stores nothing, and a line with
//! `outcome = "over_budget"` is logged (the template's alarm counts them).
//!
//! `DODO_API_CALLS_PER_MINUTE` is two budgets of that size ([`Pool`]): one for creating
//! checkout sessions, one for everything else (success-page look-ups, billing portals,
//! plan-change previews), so look-ups can never shut checkout. Success-page look-ups are also
//! capped per client IP ([`LOOKUPS_PER_HOUR_PER_IP`]); billing and plan previews per cookie
//! subject ([`count_per_subject_hour`]).

use llmxt_domain::email::Email;
use llmxt_store::store::LookupGate;

use crate::SuccessDeps;

/// How long a look-up budget per id lasts, and how long a 404 from Dodo is remembered.
pub const LOOKUP_WINDOW_SECONDS: i64 = 600;
/// Look-ups of one id within [`LOOKUP_WINDOW_SECONDS`] (kept by the store's two slots).
pub const LOOKUPS_PER_ID: i64 = 2;

/// Success-page look-ups one client IP may cause an hour (a buyer's pending page asks twice).
pub const LOOKUPS_PER_HOUR_PER_IP: i64 = 10;

/// Which of the two per-minute budgets a call comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Creating checkout sessions: nothing else spends it.
    Checkout,
    /// Success-page look-ups, billing portals, plan-change previews and changes.
    Other,
}

impl Pool {
    fn counter(self) -> &'static str {
        match self {
            Self::Checkout => "dodo_api_checkout",
            Self::Other => "dodo_api",
        }
    }
}

/// Takes `calls` from `pool`'s `DODO_API_CALLS_PER_MINUTE`; `false` when over it (or when it
/// cannot be counted: then no call is made either).
pub async fn take_api_calls(
    deps: &SuccessDeps,
    pool: Pool,
    route: &'static str,
    calls: i64,
    now: i64,
) -> bool {
    let limit = deps.config.limits.dodo_api_calls_per_minute;
    let window_end = (now / 60 + 1) * 60;
    match deps
        .store
        .add_in_window(pool.counter(), calls, window_end)
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

/// Whether the success page may ask Dodo about `id` now, making its first call: at most
/// [`LOOKUPS_PER_ID`] times per id in [`LOOKUP_WINDOW_SECONDS`], never while a 404 for it is
/// remembered, at most [`LOOKUPS_PER_HOUR_PER_IP`] from `client_ip`, and within the
/// look-up budget. Further calls are charged as they are made ([`LookupBudget`]).
pub async fn may_look_up(deps: &SuccessDeps, id: &str, client_ip: &str, now: i64) -> bool {
    match deps.store.take_lookup(id, now, LOOKUP_WINDOW_SECONDS).await {
        Ok(LookupGate::Allowed) => {
            let per_ip = count_per_ip_hour(deps, "lookup_ip", client_ip, now).await;
            if per_ip.is_none_or(|count| count > LOOKUPS_PER_HOUR_PER_IP) {
                tracing::warn!(
                    route = "success",
                    budget = "lookups_per_hour_per_ip",
                    outcome = "over_budget",
                    "success-page look-ups from this client spent for this hour: no call made"
                );
                return false;
            }
            take_api_calls(deps, Pool::Other, "success", 1, now).await
        }
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

/// Charges each further call of a confirmation to the look-up budget as it is made.
#[derive(Debug, Clone, Copy)]
pub struct LookupBudget<'a> {
    /// Where the counter lives.
    pub deps: &'a SuccessDeps,
    /// Unix seconds.
    pub now: i64,
}

impl llmxt_dodo::confirm::CallBudget for LookupBudget<'_> {
    fn take(&self, calls: i64) -> impl std::future::Future<Output = bool> + Send {
        take_api_calls(self.deps, Pool::Other, "success", calls, self.now)
    }
}

/// Counts one more request of `subject` (a cookie's email) under `scope` in the current
/// hour; `Some(count)` so far, `None` when it could not be counted. The counter lives under the
/// address's keyed prefix ([`email_counter`]), so erasure finds and deletes it.
pub async fn count_per_subject_hour(
    deps: &SuccessDeps,
    scope: &str,
    subject: &Email,
    now: i64,
) -> Option<i64> {
    let window_end = (now / 3600 + 1) * 3600;
    let key = format!("{}#{scope}", email_counter(deps, subject));
    match deps.store.count_in_window(&key, window_end).await {
        Ok(count) => Some(count),
        Err(error) => {
            tracing::error!(scope, error = %error, "could not count the request");
            None
        }
    }
}

/// The counter name of an address (`email#<keyed hex>`), as
/// [`llmxt_domain::privacy::email_counter_prefix`] builds it under the signing key of
/// `ENTITLEMENT_SECRET`: never the address, nor a bare hash of it.
pub fn email_counter(deps: &SuccessDeps, email: &Email) -> String {
    let prefix = llmxt_domain::privacy::email_counter_prefix(counter_key(deps), email);
    prefix
        .strip_prefix(llmxt_domain::records::RATE_LIMIT_PREFIX)
        .unwrap_or(&prefix)
        .trim_end_matches('#')
        .to_owned()
}

/// The key counters are keyed under: the signing key of `ENTITLEMENT_SECRET`.
fn counter_key(deps: &SuccessDeps) -> &[u8] {
    deps.config
        .cookie
        .keys
        .first()
        .map_or(&[][..], |k| k.expose())
}

/// The counter name part of a client IP: [`llmxt_domain::privacy::keyed_digest`] under the
/// signing key of `ENTITLEMENT_SECRET` (label `llmxt client ip`), never the address nor a bare
/// hash of it (the IPv4 space is small enough to reverse a bare hash by trying all).
pub fn client_ip_digest(deps: &SuccessDeps, client_ip: &str) -> String {
    llmxt_domain::privacy::keyed_digest(counter_key(deps), "llmxt client ip", client_ip)
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
    let key = format!("{scope}#{}", client_ip_digest(deps, client_ip));
    match deps.store.count_in_window(&key, window_end).await {
        Ok(count) => Some(count),
        Err(error) => {
            tracing::error!(scope, error = %error, "could not count the request");
            None
        }
    }
}
