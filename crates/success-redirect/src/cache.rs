//! Per-instance caches of Dodo answers that are asked for again and again: a customer's
//! portal link (valid 24 hours at Dodo) and a plan-change preview (a minute).
//!
//! Kept in the instance's memory, not in DynamoDB: a portal link is a bearer credential to the
//! customer's invoices and payment method, and does not belong in a table that backups and
//! `llmxt-admin export` read; a preview is a minute's answer. A miss on another instance costs
//! one call, which the per-subject and site-wide budgets already count.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most entries one cache holds; beyond it, the entry closest to expiry goes.
pub const MAX_ENTRIES: usize = 1024;

/// A map whose entries expire at a given unix second.
pub struct TtlCache<V> {
    entries: Mutex<HashMap<String, (V, i64)>>,
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> std::fmt::Debug for TtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The values (portal links) are credentials: never shown.
        let len = self.entries.lock().map(|e| e.len()).unwrap_or_default();
        f.debug_struct("TtlCache").field("entries", &len).finish()
    }
}

impl<V: Clone> TtlCache<V> {
    /// The value under `key`, unless it expired by `now`.
    pub fn get(&self, key: &str, now: i64) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(value, _)| value.clone())
    }

    /// Keeps `value` under `key` until `until` (unix seconds).
    pub fn put(&self, key: String, value: V, until: i64, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        if entries.len() >= MAX_ENTRIES
            && let Some(soonest) = entries
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(key, _)| key.clone())
        {
            entries.remove(&soonest);
        }
        entries.insert(key, (value, until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let cache = TtlCache::default();
        cache.put("a".to_owned(), 1, 100, 0);
        assert_eq!(cache.get("a", 99), Some(1));
        assert_eq!(cache.get("a", 100), None);
        for n in 0..(MAX_ENTRIES + 10) {
            cache.put(format!("k{n}"), n, 1000 + i64::try_from(n).unwrap_or(0), 0);
        }
        assert_eq!(
            cache.entries.lock().map(|e| e.len()).unwrap_or(0),
            MAX_ENTRIES
        );
        assert_eq!(cache.get("k0", 1), None, "the soonest to expire went first");
        assert!(format!("{cache:?}").contains("entries"));
    }
}
