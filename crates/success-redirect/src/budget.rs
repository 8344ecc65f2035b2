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
//!
//! A database outage must not stop sales: when DynamoDB cannot be reached or answers too
//! slowly to count, checkout sessions per client IP and the checkout pool are counted in this
//! instance's memory instead ([`MemoryCounters`], the same limits), with one warning line
//! naming the scope. Every other count refuses while it cannot be counted: those routes
//! (success-page look-ups, billing, plan changes, sign-in links) need the database anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use llmxt_domain::email::Email;
use llmxt_store::store::{LookupGate, StoreError};

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

    /// Creating checkout sessions goes on in an outage; the other calls wait for the database.
    fn in_outage(self) -> InOutage {
        match self {
            Self::Checkout => InOutage::CountInMemory,
            Self::Other => InOutage::Refuse,
        }
    }
}

/// What a count does when DynamoDB cannot be reached or is too slow
/// ([`StoreError::is_transient`]). A refusal by DynamoDB (credentials, a missing table, a
/// rejected request) is a deployment fault and always refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InOutage {
    /// Not counted: the request is refused.
    Refuse,
    /// Counted in this instance's memory ([`MemoryCounters`]) under the same limit.
    CountInMemory,
}

/// Most counters [`MemoryCounters`] holds in their current windows; a new one beyond it is
/// refused rather than evicting another (evicting would reset someone's count).
pub const MEMORY_COUNTERS_MAX: usize = 10_000;

/// Fixed-window counters in this instance's memory, used while DynamoDB cannot count
/// ([`InOutage::CountInMemory`]). Each instance counts alone, so during an outage the limits
/// hold per instance, not site-wide.
#[derive(Debug)]
pub struct MemoryCounters {
    /// Counter name → (end of its window, count in that window).
    counts: Mutex<HashMap<String, (i64, i64)>>,
    /// The arrival second of the last request whose count DynamoDB failed: requests that
    /// arrived in that second count in memory without waiting for the database again.
    failed_at: AtomicI64,
}

impl Default for MemoryCounters {
    fn default() -> Self {
        Self {
            counts: Mutex::default(),
            failed_at: AtomicI64::new(i64::MIN),
        }
    }
}

impl MemoryCounters {
    /// Whether a count of a request that arrived at `now` already found DynamoDB down.
    fn failed_in(&self, now: i64) -> bool {
        self.failed_at.load(Ordering::Relaxed) == now
    }

    /// Remembers that the database failed a request that arrived at `now` (a count, or another
    /// read of the same request): that second's counts go to memory at once.
    pub fn note_failure(&self, now: i64) {
        self.failed_at.store(now, Ordering::Relaxed);
    }

    /// Counts `amount` more for `counter` in the window ending at `window_end`, and returns the
    /// count so far; `None` when [`MEMORY_COUNTERS_MAX`] other counters are still in their
    /// windows at `now`.
    pub fn add(&self, counter: &str, amount: i64, window_end: i64, now: i64) -> Option<i64> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if !counts.contains_key(counter) && counts.len() >= MEMORY_COUNTERS_MAX {
            counts.retain(|_, (end, _)| *end > now);
            if counts.len() >= MEMORY_COUNTERS_MAX {
                return None;
            }
        }
        let (end, count) = counts.entry(counter.to_owned()).or_insert((window_end, 0));
        if *end != window_end {
            (*end, *count) = (window_end, 0);
        }
        *count += amount;
        Some(*count)
    }
}

/// Adds `amount` to `counter` in the window ending at `window_end`, in DynamoDB, or, when it
/// cannot count and `in_outage` allows, in this instance's memory. `None` when not counted.
/// A request that arrived in the same second as one whose count failed does not wait for the
/// database again (a checkout counts twice; each wait can take the whole database budget).
async fn add_to_counter(
    deps: &SuccessDeps,
    scope: &str,
    counter: &str,
    amount: i64,
    window_end: i64,
    now: i64,
    in_outage: InOutage,
) -> Option<i64> {
    let memory = &deps.memory_counters;
    let in_memory = in_outage == InOutage::CountInMemory;
    let error = if in_memory && memory.failed_in(now) {
        "the database failed earlier in this second".to_owned()
    } else {
        match deps.store.add_in_window(counter, amount, window_end).await {
            Ok(count) => return Some(count),
            Err(error) if in_memory && error.is_transient() => {
                memory.note_failure(now);
                error.to_string()
            }
            Err(error) => {
                not_counted(scope, &error);
                return None;
            }
        }
    };
    let counted = memory.add(counter, amount, window_end, now);
    tracing::warn!(
        scope,
        error,
        outcome = if counted.is_some() {
            "counted_in_memory"
        } else {
            "memory_counters_full"
        },
        "the database could not count the request: counted in this instance's memory"
    );
    counted
}

fn not_counted(scope: &str, error: &StoreError) {
    tracing::error!(scope, error = %error, "could not count the request");
}

/// Takes `calls` from `pool`'s `DODO_API_CALLS_PER_MINUTE`; `false` when over it, or when it
/// cannot be counted (then no call is made either), except for [`Pool::Checkout`], which an
/// outage counts in memory.
pub async fn take_api_calls(
    deps: &SuccessDeps,
    pool: Pool,
    route: &'static str,
    calls: i64,
    now: i64,
) -> bool {
    let limit = deps.config.limits.dodo_api_calls_per_minute;
    let window_end = (now / 60 + 1) * 60;
    match add_to_counter(
        deps,
        pool.counter(),
        pool.counter(),
        calls,
        window_end,
        now,
        pool.in_outage(),
    )
    .await
    {
        Some(count) if count <= limit => true,
        Some(count) => {
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
        None => {
            tracing::error!(route, "could not count a Dodo API call: no call made");
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
            let per_ip =
                count_per_ip_hour(deps, "lookup_ip", client_ip, now, InOutage::Refuse).await;
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
    add_to_counter(deps, scope, &key, 1, window_end, now, InOutage::Refuse).await
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
/// so far, `None` when it could not be counted (`in_outage` says what an outage does).
pub async fn count_per_ip_hour(
    deps: &SuccessDeps,
    scope: &str,
    client_ip: &str,
    now: i64,
    in_outage: InOutage,
) -> Option<i64> {
    let window_end = (now / 3600 + 1) * 3600;
    let key = format!("{scope}#{}", client_ip_digest(deps, client_ip));
    add_to_counter(deps, scope, &key, 1, window_end, now, in_outage).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_counters_count_per_window_and_stay_bounded() {
        let counters = MemoryCounters::default();
        assert_eq!(counters.add("a", 1, 3600, 0), Some(1));
        assert_eq!(counters.add("a", 2, 3600, 10), Some(3));
        assert_eq!(counters.add("a", 1, 7200, 3600), Some(1), "a new window");
        for n in 1..MEMORY_COUNTERS_MAX {
            assert!(counters.add(&format!("k{n}"), 1, 7200, 3600).is_some());
        }
        assert_eq!(counters.add("new", 1, 7200, 3600), None, "full");
        assert_eq!(
            counters.add("a", 1, 7200, 3600),
            Some(2),
            "known ones still count"
        );
        assert_eq!(
            counters.add("new", 1, 10_800, 7200),
            Some(1),
            "ended windows make room"
        );
    }
}
