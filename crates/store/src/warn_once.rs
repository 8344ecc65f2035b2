//! Warnings about a stored item that this instance gives once per item, not on every read:
//! an item a previous system wrote with a status or plan this code does not honour is read on
//! every check, and one line per instance is enough to find it.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Most items remembered; past it the memory starts again (a line may then repeat).
const MAX_REMEMBERED: usize = 10_000;

/// Whether `key` (an item and what is wrong with it) is seen for the first time by this
/// instance: log then, and not again.
pub fn first_time(key: &str) -> bool {
    static SEEN: OnceLock<(RandomState, Mutex<HashSet<u64>>)> = OnceLock::new();
    let (hasher, seen) = SEEN.get_or_init(|| (RandomState::new(), Mutex::new(HashSet::new())));
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    if seen.len() >= MAX_REMEMBERED {
        seen.clear();
    }
    seen.insert(hasher.hash_one(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_new_once() {
        assert!(first_time("a@example.com|gold"));
        assert!(!first_time("a@example.com|gold"));
        assert!(first_time("a@example.com|silver"));
    }
}
