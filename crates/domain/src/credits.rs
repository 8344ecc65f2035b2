//! Credit packs (`PRODUCT_CREDITS`): one-time products that add units to a meter, spent after
//! the period's allowance runs out (docs/usage.md). Pure code: which products are packs, what
//! a pack holds, how much is left, and which packs a reserve draws from. `llmxt-store` keeps
//! the packs on the buyer's usage item for the meter.

use std::collections::BTreeMap;

use crate::env::{ConfigError, Env, is_token};
use crate::usage::{Hold, HoldState, MAX_AMOUNT};

/// Days a pack lasts when `CREDITS_EXPIRE_DAYS` is unset.
pub const DEFAULT_EXPIRE_DAYS: i64 = 365;
/// Longest `CREDITS_EXPIRE_DAYS` allowed (ten years).
pub const MAX_EXPIRE_DAYS: i64 = 3_650;
/// Prefix of packs an operator added with `llmxt-admin credit`.
pub const OPERATOR_PACK_PREFIX: &str = "op#";

const VARIABLE: &str = "PRODUCT_CREDITS";

/// What one pack product adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackProduct {
    /// The meter it tops up.
    pub meter: String,
    /// Units per purchase.
    pub amount: i64,
}

/// `PRODUCT_CREDITS` and `CREDITS_EXPIRE_DAYS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditProducts {
    by_product: BTreeMap<String, PackProduct>,
    /// How long a pack lasts, in seconds.
    pub lifetime_seconds: i64,
}

impl Default for CreditProducts {
    fn default() -> Self {
        Self {
            by_product: BTreeMap::new(),
            lifetime_seconds: DEFAULT_EXPIRE_DAYS * 86_400,
        }
    }
}

impl CreditProducts {
    /// Parses `pdt_pack=tokens:500000,pdt_big=tokens:2000000` (an empty list is allowed).
    pub fn parse(text: &str, expire_days: i64) -> Result<Self, ConfigError> {
        let mut by_product = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let malformed = || {
                ConfigError::new(
                    VARIABLE,
                    format!(
                        "has a malformed entry {entry:?}; expected product_id=meter:amount (amount a whole number from 1 to 10^12)"
                    ),
                )
            };
            let (product, pack) = entry.split_once('=').ok_or_else(malformed)?;
            let (meter, amount) = pack.split_once(':').ok_or_else(malformed)?;
            let (product, meter, amount) = (product.trim(), meter.trim(), amount.trim());
            let amount = amount
                .parse::<i64>()
                .ok()
                .filter(|a| {
                    (1..=MAX_AMOUNT).contains(a) && amount.chars().all(|c| c.is_ascii_digit())
                })
                .ok_or_else(malformed)?;
            if !is_token(product) || !is_token(meter) {
                return Err(malformed());
            }
            let pack = PackProduct {
                meter: meter.to_owned(),
                amount,
            };
            if by_product.insert(product.to_owned(), pack).is_some() {
                return Err(ConfigError::new(
                    VARIABLE,
                    format!("names product {product:?} twice"),
                ));
            }
        }
        Ok(Self {
            by_product,
            lifetime_seconds: expire_days * 86_400,
        })
    }

    /// Reads `PRODUCT_CREDITS` (empty when unset) and `CREDITS_EXPIRE_DAYS` (default 365).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let days = env.seconds(
            "CREDITS_EXPIRE_DAYS",
            DEFAULT_EXPIRE_DAYS,
            1,
            MAX_EXPIRE_DAYS,
        )?;
        Self::parse(&env.optional(VARIABLE).unwrap_or_default(), days)
    }

    /// The pack a product sells, when it is a credit product.
    pub fn pack(&self, product_id: Option<&str>) -> Option<&PackProduct> {
        self.by_product.get(product_id?)
    }

    /// Whether `product_id` is a credit product.
    pub fn sells(&self, product_id: &str) -> bool {
        self.by_product.contains_key(product_id)
    }

    /// The credit products, sorted.
    pub fn products(&self) -> Vec<&str> {
        self.by_product.keys().map(String::as_str).collect()
    }
}

/// One pack on a buyer's usage item, as stored under `k#<pack id>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditPack {
    /// The payment that bought it, or `op#<time>` for an operator's credit.
    pub id: String,
    /// Units it added.
    pub granted: i64,
    /// Units not drawn (may be below zero while lapsed holds still count against it; see
    /// [`pack_balances`]).
    pub left: i64,
    /// When it was added (unix seconds).
    pub added_at: i64,
    /// When it stops being usable (unix seconds).
    pub expires_at: i64,
    /// When a refund or lost dispute (or an operator) removed it.
    pub removed_at: Option<i64>,
    /// What was left of it when it was removed (the rest had been used).
    pub removed_left: Option<i64>,
    /// Units an operator took from it (`llmxt-admin credit` with a negative amount).
    pub taken: i64,
    /// Why it was added or removed (operator credits and removals).
    pub note: Option<String>,
}

impl CreditPack {
    /// Whether draws may come from it at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.removed_at.is_none() && self.expires_at > now
    }
}

/// A usable pack's balance at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackBalance<'a> {
    /// The pack.
    pub pack: &'a CreditPack,
    /// Units that may be drawn.
    pub available: i64,
    /// Units lapsed holds drew from it: counted back in `available`, not yet in `left`.
    pub lapsed: i64,
}

/// Each pack's balance at `now`: what is left plus what lapsed holds drew from it (a hold
/// never committed gives its draws back the same way it gives back allowance, without a
/// write). Only usable packs, earliest-expiring first (the order draws take them in).
pub fn pack_balances<'a>(
    packs: impl IntoIterator<Item = &'a CreditPack>,
    holds: impl IntoIterator<Item = &'a Hold> + Clone,
    now: i64,
) -> Vec<PackBalance<'a>> {
    let mut usable: Vec<PackBalance<'a>> = packs
        .into_iter()
        .filter(|pack| pack.usable(now))
        .map(|pack| {
            let lapsed: i64 = holds
                .clone()
                .into_iter()
                .filter(|hold| hold.lapsed(now))
                .map(|hold| hold.drawn_from(&pack.id))
                .sum();
            PackBalance {
                pack,
                available: (pack.left + lapsed).max(0),
                lapsed,
            }
        })
        .collect();
    usable.sort_by(|a, b| (a.pack.expires_at, &a.pack.id).cmp(&(b.pack.expires_at, &b.pack.id)));
    usable
}

/// Units available across `balances`.
pub fn total(balances: &[PackBalance<'_>]) -> i64 {
    balances.iter().map(|b| b.available).sum()
}

/// One draw a reserve makes from a pack: `amount` units, on the condition that the stored
/// `left` is still at least `floor` (`amount` minus what lapsed holds give back, as read;
/// lapsed draws only grow, so a floor computed from a read is never too generous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    /// The pack.
    pub pack: String,
    /// Units drawn.
    pub amount: i64,
    /// The least stored `left` the write may find.
    pub floor: i64,
}

/// Which packs cover `need` units, earliest-expiring first; `None` when they cannot.
pub fn plan_draws(balances: &[PackBalance<'_>], need: i64) -> Option<Vec<Draw>> {
    let mut draws = Vec::new();
    let mut missing = need;
    for balance in balances {
        if missing <= 0 {
            break;
        }
        let amount = missing.min(balance.available);
        if amount <= 0 {
            continue;
        }
        draws.push(Draw {
            pack: balance.pack.id.clone(),
            amount,
            floor: amount - balance.lapsed,
        });
        missing -= amount;
    }
    (missing <= 0).then_some(draws)
}

/// What a commit of `kept` units of `hold` gives back: `(allowance, by pack)`. The allowance
/// is kept first, then the packs in the order they were drawn; what goes back goes to the
/// latest-drawn pack first.
pub fn returns(hold: &Hold, kept: i64) -> (i64, BTreeMap<String, i64>) {
    let drawn = hold.drawn();
    let allowance = hold.amount - drawn;
    let kept_allowance = kept.min(allowance);
    let mut credits_back = drawn - (kept - kept_allowance).max(0);
    let mut back = BTreeMap::new();
    for (pack, amount) in hold.draws.iter().rev() {
        if credits_back <= 0 {
            break;
        }
        let give = credits_back.min(*amount);
        back.insert(pack.clone(), give);
        credits_back -= give;
    }
    (allowance - kept_allowance, back)
}

/// What became of a pack, for `show` and `export`.
pub fn pack_state(pack: &CreditPack, holds: &[&Hold], now: i64) -> &'static str {
    if pack.removed_at.is_some() {
        "removed"
    } else if pack.expires_at <= now {
        "expired"
    } else if pack.left + lapsed_draws(pack, holds, now) <= 0 {
        "used"
    } else {
        "active"
    }
}

fn lapsed_draws(pack: &CreditPack, holds: &[&Hold], now: i64) -> i64 {
    holds
        .iter()
        .filter(|hold| hold.state == HoldState::Live && hold.lapsed(now))
        .map(|hold| hold.drawn_from(&pack.id))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(id: &str, left: i64, expires_at: i64) -> CreditPack {
        CreditPack {
            id: id.into(),
            granted: 100,
            left,
            expires_at,
            ..CreditPack::default()
        }
    }

    fn hold(amount: i64, draws: &[(&str, i64)], expires_at: i64) -> Hold {
        Hold {
            id: "h".into(),
            bucket: "9999999999#g".into(),
            amount,
            committed: 0,
            created_at: 0,
            expires_at,
            state: HoldState::Live,
            remaining: None,
            draws: draws.iter().map(|(p, a)| ((*p).to_owned(), *a)).collect(),
        }
    }

    #[test]
    fn product_credits_parse_and_bad_values_name_the_variable() {
        let products = CreditProducts::parse("pdt_pack=tokens:500000, pdt_big=requests:20", 30)
            .expect("valid");
        assert_eq!(
            products.pack(Some("pdt_pack")),
            Some(&PackProduct {
                meter: "tokens".into(),
                amount: 500_000
            })
        );
        assert_eq!(products.lifetime_seconds, 30 * 86_400);
        assert!(products.pack(Some("pdt_other")).is_none());
        assert!(products.sells("pdt_big"));
        for bad in [
            "pdt_pack",
            "pdt_pack=tokens",
            "pdt_pack=tokens:0",
            "pdt_pack=tokens:-5",
            "pdt_pack=tokens:+5",
            "pdt_pack=tokens:1.5",
            "pdt_pack=tok ens:5",
            "pdt_pack=tokens:1000000000001",
            "a=t:1,a=t:2",
        ] {
            let error = CreditProducts::parse(bad, 365).expect_err(bad);
            assert_eq!(error.variable, "PRODUCT_CREDITS", "{bad}");
        }
        let env = Env::from_pairs([("CREDITS_EXPIRE_DAYS", "0")]);
        assert_eq!(
            CreditProducts::from_env(&env).expect_err("zero").variable,
            "CREDITS_EXPIRE_DAYS"
        );
    }

    #[test]
    fn draws_take_the_earliest_expiring_packs_first_and_never_an_unusable_one() {
        let mut removed = pack("refunded", 100, 500);
        removed.removed_at = Some(10);
        let packs = [
            pack("late", 100, 900),
            pack("early", 30, 400),
            pack("gone", 100, 50),
            removed,
        ];
        let balances = pack_balances(&packs, &[] as &[Hold], 100);
        assert_eq!(
            balances
                .iter()
                .map(|b| (b.pack.id.as_str(), b.available))
                .collect::<Vec<_>>(),
            [("early", 30), ("late", 100)]
        );
        assert_eq!(total(&balances), 130);
        let draws = plan_draws(&balances, 50).expect("fits");
        assert_eq!(
            draws,
            [
                Draw {
                    pack: "early".into(),
                    amount: 30,
                    floor: 30
                },
                Draw {
                    pack: "late".into(),
                    amount: 20,
                    floor: 20
                }
            ]
        );
        assert!(plan_draws(&balances, 131).is_none());
    }

    #[test]
    fn a_lapsed_hold_gives_its_draws_back_without_a_write() {
        let packs = [pack("p", 10, 10_000)];
        let lapsed = hold(40, &[("p", 30)], 100);
        let during = pack_balances(&packs, [&lapsed], 99);
        assert_eq!(during[0].available, 10);
        let after = pack_balances(&packs, [&lapsed], 200);
        assert_eq!(after[0].available, 40);
        // The write may find the stored 10 and still draw 35: 30 of them came back.
        let draws = plan_draws(&after, 35).expect("fits");
        assert_eq!(draws[0].floor, 5);
        // Stored left already below zero (an earlier draw counted the lapsed hold too).
        let drawn = [pack("p", -25, 10_000)];
        let rest = pack_balances(&drawn, [&lapsed], 200);
        assert_eq!(rest[0].available, 5);
        assert_eq!(plan_draws(&rest, 5).expect("fits")[0].floor, -25);
        assert!(plan_draws(&rest, 6).is_none());
    }

    #[test]
    fn commits_keep_the_allowance_first_and_give_credits_back_latest_first() {
        let h = hold(100, &[("a", 30), ("b", 20)], 1_000);
        // 50 from the allowance, 30 from a, 20 from b.
        let (allowance, packs) = returns(&h, 60);
        assert_eq!(allowance, 0);
        assert_eq!(packs, BTreeMap::from([("b".into(), 20), ("a".into(), 20)]));
        let (allowance, packs) = returns(&h, 20);
        assert_eq!(allowance, 30);
        assert_eq!(packs, BTreeMap::from([("b".into(), 20), ("a".into(), 30)]));
        let (allowance, packs) = returns(&h, 100);
        assert_eq!((allowance, packs.len()), (0, 0));
    }
}
