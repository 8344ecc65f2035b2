//! Usage counters (docs/usage.md): one item per buyer and meter in the payments table,
//! `usage#<email>#<meter>`, holding each period's counters and the holds of the last day.
//!
//! Attributes: `s#<bucket>` (spent) and `u#<bucket>` (used) per period ([`Bucket::id`]),
//! `l#<bucket>` (the allowance the last reserve saw), `h#<hold id>` (a map: `b` bucket, `a`
//! reserved, `c` committed, `t` made at, `x` expires at, `s` state, `r` remaining answered),
//! `record_type = "usage"` and `ttl`. A reserve, commit or release is one `UpdateItem` whose
//! condition makes it correct under any concurrency: no locks, no read-modify-write cycles.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use llmxt_domain::credits::{CreditPack, Draw, pack_balances, returns, total};
use llmxt_domain::email::Email;
use llmxt_domain::records::{CorruptItem, Entitlement, TTL_ATTRIBUTE};
use llmxt_domain::usage::{
    Balance, Bucket, Counters, Hold, HoldState, IDEMPOTENCY_SECONDS, Reservation, balance,
    spent_ceiling,
};

use crate::item::{Item, StoredItem};
use crate::packs::{HAS_CREDITS, number, pack_from, pack_value, text, usage_key};
use crate::store::{Store, StoreError, back_off};

/// Most stale holds and counters one write removes.
const MAX_PRUNED_PER_WRITE: usize = 40;
/// How long a usage item outlives the last period written to it.
const RETENTION_AFTER_PERIOD: i64 = 2 * IDEMPOTENCY_SECONDS;
/// One buyer's usage of one meter, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageItem {
    /// Counters by [`Bucket::id`].
    pub counters: BTreeMap<String, Counters>,
    /// Holds by id.
    pub holds: BTreeMap<String, Hold>,
    /// The allowance the last reserve of each period saw (`None` = unlimited), by bucket.
    pub limits: BTreeMap<String, Option<i64>>,
    /// Credit packs by id (`k#<id>`), kept after they are used, expired or removed.
    pub packs: BTreeMap<String, CreditPack>,
    /// Operators' credit changes (`adj#<time>`), oldest first.
    pub adjustments: Vec<CreditAdjustment>,
}

fn hold_from(id: &str, value: &AttributeValue) -> Result<Hold, CorruptItem> {
    let corrupt = CorruptItem { attribute: "h#" };
    let AttributeValue::M(map) = value else {
        return Err(corrupt);
    };
    let draws = match map.get("k") {
        None => Vec::new(),
        Some(AttributeValue::M(draws)) => draws
            .iter()
            .map(|(pack, amount)| Some((pack.clone(), number(Some(amount))?)))
            .collect::<Option<Vec<_>>>()
            .ok_or(corrupt.clone())?,
        Some(_) => return Err(corrupt),
    };
    Ok(Hold {
        draws,
        id: id.to_owned(),
        bucket: text(map.get("b")).ok_or(corrupt.clone())?.to_owned(),
        amount: number(map.get("a")).ok_or(corrupt.clone())?,
        committed: number(map.get("c")).unwrap_or(0),
        created_at: number(map.get("t")).unwrap_or(0),
        expires_at: number(map.get("x")).ok_or(corrupt.clone())?,
        state: text(map.get("s"))
            .and_then(HoldState::parse)
            .ok_or(corrupt)?,
        remaining: number(map.get("r")),
    })
}

fn hold_value(hold: &Hold) -> AttributeValue {
    let n = |v: i64| AttributeValue::N(v.to_string());
    let mut map = Item::from([
        ("b".to_owned(), AttributeValue::S(hold.bucket.clone())),
        ("a".to_owned(), n(hold.amount)),
        ("c".to_owned(), n(hold.committed)),
        ("t".to_owned(), n(hold.created_at)),
        ("x".to_owned(), n(hold.expires_at)),
        (
            "s".to_owned(),
            AttributeValue::S(hold.state.as_str().to_owned()),
        ),
    ]);
    if let Some(remaining) = hold.remaining {
        map.insert("r".to_owned(), n(remaining));
    }
    if !hold.draws.is_empty() {
        let draws = hold
            .draws
            .iter()
            .map(|(pack, amount)| (pack.clone(), n(*amount)))
            .collect();
        map.insert("k".to_owned(), AttributeValue::M(draws));
    }
    AttributeValue::M(map)
}

impl UsageItem {
    /// Reads a usage item.
    pub fn from_item(item: &Item) -> Result<Self, CorruptItem> {
        let mut usage = Self::default();
        for (name, value) in item {
            if let Some(bucket) = name.strip_prefix("s#") {
                let counters = usage.counters.entry(bucket.to_owned()).or_default();
                counters.spent = number(Some(value)).ok_or(CorruptItem { attribute: "s#" })?;
            } else if let Some(bucket) = name.strip_prefix("u#") {
                let counters = usage.counters.entry(bucket.to_owned()).or_default();
                counters.used = number(Some(value)).ok_or(CorruptItem { attribute: "u#" })?;
            } else if let Some(bucket) = name.strip_prefix("l#") {
                usage.limits.insert(bucket.to_owned(), number(Some(value)));
            } else if let Some(id) = name.strip_prefix("h#") {
                usage.holds.insert(id.to_owned(), hold_from(id, value)?);
            } else if let Some(id) = name.strip_prefix("k#") {
                usage.packs.insert(id.to_owned(), pack_from(id, value)?);
            } else if let Some(at) = name.strip_prefix("adj#") {
                usage.adjustments.extend(adjustment_from(at, value));
            }
        }
        usage.adjustments.sort_by_key(|a| a.at);
        Ok(usage)
    }

    /// The balance of `bucket` at `now` under `limit`.
    pub fn balance(&self, bucket: &str, limit: Option<i64>, now: i64) -> Balance {
        let counters = self.counters.get(bucket).copied().unwrap_or_default();
        balance(
            limit,
            counters,
            self.holds.values().filter(|hold| hold.bucket == bucket),
            now,
        )
    }

    /// Credit units that may be drawn at `now`, across usable packs.
    pub fn credits(&self, now: i64) -> i64 {
        total(&pack_balances(
            self.packs.values(),
            self.holds.values(),
            now,
        ))
    }

    /// Which packs would cover `need` units at `now`, earliest-expiring first.
    pub fn plan_draws(&self, need: i64, now: i64) -> Option<Vec<Draw>> {
        llmxt_domain::credits::plan_draws(
            &pack_balances(self.packs.values(), self.holds.values(), now),
            need,
        )
    }

    /// The balance of `bucket` under the allowance its last reserve saw.
    pub fn balance_as_stored(&self, bucket: &str, now: i64) -> Balance {
        let limit = self.limits.get(bucket).copied().flatten();
        self.balance(bucket, limit, now)
    }

    /// Attribute names a write may remove: holds past their use, counters of ended periods.
    fn stale(&self, now: i64) -> Vec<String> {
        let holds = self
            .holds
            .values()
            .filter(|hold| hold.prunable(now))
            .map(|hold| format!("h#{}", hold.id));
        let counters = self
            .counters
            .keys()
            .filter(|bucket| Bucket::from_id(bucket).is_none_or(|b| b.resets_at <= now))
            .flat_map(|bucket| {
                [
                    format!("s#{bucket}"),
                    format!("u#{bucket}"),
                    format!("l#{bucket}"),
                ]
            });
        holds.chain(counters).take(MAX_PRUNED_PER_WRITE).collect()
    }
}

/// One period of an item, for operator listings: `(bucket, counters, balance)` under the
/// allowance its last reserve saw.
impl UsageItem {
    /// Each period's counters and balance at `now`, oldest first.
    pub fn periods(&self, now: i64) -> Vec<(Bucket, Balance)> {
        self.counters
            .keys()
            .filter_map(|id| Some((Bucket::from_id(id)?, self.balance_as_stored(id, now))))
            .collect()
    }
}

/// A reserve (or a consume: reserve and commit at once) decided from the first read.
#[derive(Debug, Clone)]
pub struct ReserveWrite<'a> {
    /// The buyer.
    pub email: &'a Email,
    /// The meter.
    pub meter: &'a str,
    /// The period and grant counted.
    pub bucket: &'a Bucket,
    /// The allowance; `None` = unlimited.
    pub limit: Option<i64>,
    /// How much.
    pub amount: i64,
    /// [`llmxt_domain::usage::hold_id`] of the idempotency key.
    pub hold_id: &'a str,
    /// When the hold expires.
    pub expires_at: i64,
    /// Units drawn from credit packs (the rest comes from the allowance).
    pub draws: &'a [Draw],
    /// Commit at once (`consume`).
    pub consume: bool,
    /// The item as read (for the holds that lapsed and what is stale).
    pub read: &'a UsageItem,
    /// Now (unix seconds).
    pub now: i64,
}

/// What became of a reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Granted now.
    Granted {
        /// The hold written.
        hold: Hold,
        /// The balance after it.
        balance: Balance,
    },
    /// The key was used before: its first answer.
    Repeated {
        /// The hold made then.
        hold: Hold,
        /// The period's balance now.
        balance: Balance,
    },
    /// Not enough left, or the item changed since it was read; nothing was written. The
    /// item as the failed write found it, for one more decision.
    LimitReached(Balance, Box<UsageItem>),
}

/// What became of a commit or release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    /// Done now, or done before (counted once); the period's balance after it.
    Settled {
        /// What became of the hold.
        state: HoldState,
        /// The period's balance.
        balance: Balance,
    },
    /// The hold expired before it was committed; its amount is back in the balance.
    Expired,
    /// Released before; cannot be committed now.
    Released,
    /// No such hold (unknown, or forgotten after a day).
    Unknown,
}

/// Whether two lists of draws name the same packs and amounts, in any order.
fn same_draws(a: &[(String, i64)], b: &[(String, i64)]) -> bool {
    let sorted = |d: &[(String, i64)]| {
        let mut d = d.to_vec();
        d.sort();
        d
    };
    sorted(a) == sorted(b)
}

impl Store {
    /// Reads an entitlement and the usage items of `meters` in one batched request.
    pub async fn read_usage(
        &self,
        email: &Email,
        meters: &[&str],
        with_entitlement: bool,
    ) -> Result<(Option<Entitlement>, BTreeMap<String, UsageItem>), StoreError> {
        let keys: Vec<String> = meters
            .iter()
            .map(|meter| usage_key(email.as_str(), meter))
            .collect();
        let records = self
            .read_batch(with_entitlement.then_some(email), &keys)
            .await?;
        let mut items = BTreeMap::new();
        for (meter, key) in meters.iter().zip(&keys) {
            let usage = match records.1.get(key) {
                Some(item) => UsageItem::from_item(item)?,
                None => UsageItem::default(),
            };
            items.insert((*meter).to_owned(), usage);
        }
        Ok((records.0, items))
    }

    /// One consistent `BatchGetItem`: the entitlement of `email` (when given) and the payments
    /// table's items under `keys`, by key.
    async fn read_batch(
        &self,
        email: Option<&Email>,
        keys: &[String],
    ) -> Result<(Option<Entitlement>, BTreeMap<String, Item>), StoreError> {
        let payments_table = &self.config().payments_table;
        let entitlements_table = &self.config().entitlements_table;
        let batch = |keys: Vec<Item>| {
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        };
        let mut request: HashMap<String, KeysAndAttributes> = HashMap::new();
        if !keys.is_empty() {
            let keys = keys
                .iter()
                .map(|key| Item::from([("payment_id".to_owned(), AttributeValue::S(key.clone()))]))
                .collect();
            request.insert(payments_table.clone(), batch(keys)?);
        }
        if let Some(email) = email {
            let key = Item::from([(
                "email".to_owned(),
                AttributeValue::S(email.as_str().to_owned()),
            )]);
            request.insert(entitlements_table.clone(), batch(vec![key])?);
        }
        let mut entitlement = None;
        let mut items = BTreeMap::new();
        let mut attempt = 0;
        while !request.is_empty() {
            let output = self
                .client()
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await?;
            for (table, found) in output.responses.unwrap_or_default() {
                for item in found {
                    if &table == entitlements_table {
                        entitlement = Some(Entitlement::from_item(&item)?);
                    } else if let Some(key) = text(item.get("payment_id")) {
                        items.insert(key.to_owned(), item);
                    }
                }
            }
            request = output.unprocessed_keys.unwrap_or_default();
            attempt += 1;
            if !request.is_empty() && attempt >= 3 {
                return Err(StoreError::Unavailable(
                    "DynamoDB left keys unprocessed after 3 attempts".to_owned(),
                ));
            }
        }
        Ok((entitlement, items))
    }

    /// Writes a reserve decided from `write.read` in one conditional `UpdateItem`: the hold,
    /// the allowance it takes, and what it draws from credit packs, each under a condition
    /// that still holds only if the balance read is still there.
    pub async fn reserve(&self, write: ReserveWrite<'_>) -> Result<ReserveOutcome, StoreError> {
        let bucket_id = write.bucket.id();
        let before = write.read.balance(&bucket_id, write.limit, write.now);
        let drawn: i64 = write.draws.iter().map(|d| d.amount).sum();
        let allowance = write.amount - drawn;
        let remaining = write.limit.map(|limit| {
            limit - write.read.counters.get(&bucket_id).map_or(0, |c| c.spent) + before.lapsed
                - allowance
        });
        let hold = Hold {
            id: write.hold_id.to_owned(),
            bucket: bucket_id.clone(),
            amount: write.amount,
            committed: if write.consume { write.amount } else { 0 },
            created_at: write.now,
            expires_at: write.expires_at,
            state: if write.consume {
                HoldState::Committed
            } else {
                HoldState::Live
            },
            remaining: None,
            draws: write
                .draws
                .iter()
                .map(|d| (d.pack.clone(), d.amount))
                .collect(),
        };
        let stale = write.read.stale(write.now);
        let mut update = String::from(
            "SET #h = :hold, #s = if_not_exists(#s, :zero) + :a, #l = :limit, record_type = :type",
        );
        update.push_str(if write.consume {
            ", #u = if_not_exists(#u, :zero) + :a"
        } else {
            ", #u = if_not_exists(#u, :zero)"
        });
        let mut condition = String::from("attribute_not_exists(#h)");
        let mut request = self
            .client()
            .update_item()
            .table_name(&self.config().payments_table)
            .key(
                "payment_id",
                AttributeValue::S(usage_key(write.email.as_str(), write.meter)),
            )
            .expression_attribute_names("#h", format!("h#{}", write.hold_id))
            .expression_attribute_names("#s", format!("s#{bucket_id}"))
            .expression_attribute_names("#u", format!("u#{bucket_id}"))
            .expression_attribute_names("#l", format!("l#{bucket_id}"))
            .expression_attribute_values(":zero", AttributeValue::N("0".to_owned()))
            .expression_attribute_values(":a", AttributeValue::N(allowance.to_string()))
            .expression_attribute_values(
                ":limit",
                write
                    .limit
                    .map_or(AttributeValue::S("unlimited".to_owned()), |l| {
                        AttributeValue::N(l.to_string())
                    }),
            )
            .expression_attribute_values(":type", AttributeValue::S("usage".to_owned()))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if write.read.packs.is_empty() {
            // An item with packs keeps no TTL; one read without packs may gain some meanwhile.
            update.push_str(", #ttl = :ttl");
            condition.push_str(" AND attribute_not_exists(#credits)");
            request = request
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_names("#credits", HAS_CREDITS)
                .expression_attribute_values(
                    ":ttl",
                    AttributeValue::N(
                        (write.bucket.resets_at + RETENTION_AFTER_PERIOD).to_string(),
                    ),
                );
        }
        if let Some(limit) = write.limit {
            condition.push_str(" AND (attribute_not_exists(#s) OR #s <= :ceiling)");
            request = request.expression_attribute_values(
                ":ceiling",
                AttributeValue::N(spent_ceiling(limit, allowance, before.lapsed).to_string()),
            );
        }
        for (i, draw) in write.draws.iter().enumerate() {
            update.push_str(&format!(", #k{i}.l = #k{i}.l - :d{i}"));
            condition.push_str(&format!(
                " AND #k{i}.l >= :f{i} AND attribute_not_exists(#k{i}.r) AND #k{i}.x > :now"
            ));
            request = request
                .expression_attribute_names(format!("#k{i}"), format!("k#{}", draw.pack))
                .expression_attribute_values(
                    format!(":d{i}"),
                    AttributeValue::N(draw.amount.to_string()),
                )
                .expression_attribute_values(
                    format!(":f{i}"),
                    AttributeValue::N(draw.floor.to_string()),
                );
        }
        if !write.draws.is_empty() {
            request = request
                .expression_attribute_values(":now", AttributeValue::N(write.now.to_string()));
        }
        if !stale.is_empty() {
            update.push_str(" REMOVE ");
            for (i, name) in stale.iter().enumerate() {
                if i > 0 {
                    update.push_str(", ");
                }
                update.push_str(&format!("#p{i}"));
                request = request.expression_attribute_names(format!("#p{i}"), name);
            }
        }
        let stored = Hold {
            remaining,
            ..hold.clone()
        };
        let result = request
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":hold", hold_value(&stored))
            .send()
            .await;
        match result {
            Ok(output) => {
                let new = output.attributes.unwrap_or_default();
                let spent = number(new.get(&format!("s#{bucket_id}"))).unwrap_or(allowance);
                let used = number(new.get(&format!("u#{bucket_id}"))).unwrap_or(0);
                let counters = Counters { spent, used };
                let lapsed = before.lapsed;
                let reserved = (spent - used - lapsed).max(0);
                Ok(ReserveOutcome::Granted {
                    hold: stored,
                    balance: Balance {
                        limit: write.limit,
                        used: counters.used,
                        reserved,
                        lapsed,
                        remaining: write
                            .limit
                            .map(|limit| (limit - counters.used - reserved).max(0)),
                    },
                })
            }
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    let old = failed
                        .item()
                        .map(UsageItem::from_item)
                        .transpose()?
                        .unwrap_or_default();
                    let balance = old.balance(&bucket_id, write.limit, write.now);
                    Ok(match old.holds.get(write.hold_id) {
                        Some(first) => ReserveOutcome::Repeated {
                            hold: first.clone(),
                            balance,
                        },
                        None => ReserveOutcome::LimitReached(balance, Box::new(old)),
                    })
                }
                _ => Err(error.into()),
            },
        }
    }

    /// Commits `amount` of a reservation (the rest goes back), or releases all of it
    /// (`commit = false`), in one conditional `UpdateItem`. A second commit or release of the
    /// same hold changes nothing and answers as the first did.
    pub async fn settle(
        &self,
        reservation: &Reservation,
        amount: i64,
        commit: bool,
        now: i64,
    ) -> Result<SettleOutcome, StoreError> {
        let bucket = &reservation.bucket;
        let as_held = Hold {
            amount: reservation.amount,
            draws: reservation.draws.clone(),
            ..Hold::default()
        };
        let kept = if commit { amount } else { 0 };
        let (back, packs_back) = returns(&as_held, kept);
        let kept_allowance = kept.min(as_held.from_allowance());
        let state = if commit {
            HoldState::Committed
        } else {
            HoldState::Released
        };
        let mut update = String::from(
            "SET #s = if_not_exists(#s, :zero) - :back, #u = if_not_exists(#u, :zero) + :c, #h.s = :state",
        );
        if commit {
            update.push_str(", #h.c = :kept");
        }
        let mut condition =
            String::from("#h.s = :live AND #h.a = :reserved AND #h.b = :bucket AND #h.x > :now");
        let mut request = self
            .client()
            .update_item()
            .table_name(&self.config().payments_table)
            .key(
                "payment_id",
                AttributeValue::S(usage_key(&reservation.email, &reservation.meter)),
            )
            .expression_attribute_names("#h", format!("h#{}", reservation.hold))
            .expression_attribute_names("#s", format!("s#{bucket}"))
            .expression_attribute_names("#u", format!("u#{bucket}"))
            .expression_attribute_values(":zero", AttributeValue::N("0".to_owned()))
            .expression_attribute_values(":back", AttributeValue::N(back.to_string()))
            .expression_attribute_values(":c", AttributeValue::N(kept_allowance.to_string()))
            .expression_attribute_values(":state", AttributeValue::S(state.as_str().to_owned()))
            .expression_attribute_values(":live", AttributeValue::S("live".to_owned()))
            .expression_attribute_values(
                ":reserved",
                AttributeValue::N(reservation.amount.to_string()),
            )
            .expression_attribute_values(":bucket", AttributeValue::S(bucket.clone()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if commit {
            request =
                request.expression_attribute_values(":kept", AttributeValue::N(kept.to_string()));
        }
        if reservation.draws.is_empty() {
            condition.push_str(" AND attribute_not_exists(#h.k)");
        } else {
            condition.push_str(" AND size(#h.k) = :draws");
            request = request.expression_attribute_values(
                ":draws",
                AttributeValue::N(reservation.draws.len().to_string()),
            );
        }
        for (i, (pack, drawn)) in reservation.draws.iter().enumerate() {
            condition.push_str(&format!(" AND #h.k.#k{i} = :k{i}"));
            request = request
                .expression_attribute_names(format!("#k{i}"), pack)
                .expression_attribute_values(
                    format!(":k{i}"),
                    AttributeValue::N(drawn.to_string()),
                );
            if let Some(give) = packs_back.get(pack).filter(|give| **give > 0) {
                // A pack removed meanwhile gets nothing usable back: it stays removed.
                update.push_str(&format!(", #p{i}.l = #p{i}.l + :b{i}"));
                request = request
                    .expression_attribute_names(format!("#p{i}"), format!("k#{pack}"))
                    .expression_attribute_values(
                        format!(":b{i}"),
                        AttributeValue::N(give.to_string()),
                    );
            }
        }
        match request
            .update_expression(update)
            .condition_expression(condition)
            .send()
            .await
        {
            Ok(output) => {
                let new = UsageItem::from_item(&output.attributes.unwrap_or_default())?;
                Ok(SettleOutcome::Settled {
                    state,
                    balance: new.balance_as_stored(bucket, now),
                })
            }
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    let old = failed
                        .item()
                        .map(UsageItem::from_item)
                        .transpose()?
                        .unwrap_or_default();
                    let Some(hold) = old.holds.get(&reservation.hold).filter(|h| {
                        h.bucket == *bucket
                            && h.amount == reservation.amount
                            && same_draws(&h.draws, &reservation.draws)
                    }) else {
                        return Ok(SettleOutcome::Unknown);
                    };
                    let balance = old.balance_as_stored(bucket, now);
                    Ok(match hold.state {
                        HoldState::Live if !commit => SettleOutcome::Settled {
                            state: HoldState::Released,
                            balance,
                        },
                        HoldState::Live => SettleOutcome::Expired,
                        HoldState::Released if commit => SettleOutcome::Released,
                        settled => SettleOutcome::Settled {
                            state: settled,
                            balance,
                        },
                    })
                }
                _ => Err(error.into()),
            },
        }
    }

    /// Every usage item of `email`, by meter, found by a scan (operator tools only).
    pub async fn usage_of(&self, email: &Email) -> Result<BTreeMap<String, UsageItem>, StoreError> {
        let prefix = usage_key(email.as_str(), "");
        let mut found = BTreeMap::new();
        let mut start = None;
        loop {
            let output = self
                .client()
                .scan()
                .table_name(&self.config().payments_table)
                .filter_expression("begins_with(payment_id, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in output.items() {
                if let Some(meter) =
                    text(item.get("payment_id")).and_then(|k| k.strip_prefix(&prefix))
                {
                    found.insert(meter.to_owned(), UsageItem::from_item(item)?);
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(found);
            }
        }
    }

    /// Deletes the usage items of `email` for `meters` (for `forget`).
    pub async fn delete_usage(&self, email: &Email, meters: &[&str]) -> Result<(), StoreError> {
        for meter in meters {
            self.client()
                .delete_item()
                .table_name(&self.config().payments_table)
                .key(
                    "payment_id",
                    AttributeValue::S(usage_key(email.as_str(), meter)),
                )
                .send()
                .await?;
        }
        Ok(())
    }
}

impl Store {
    /// The credit pack `pack_id` on `email`'s usage item for `meter`, read consistently.
    pub async fn credit_pack(
        &self,
        email: &Email,
        meter: &str,
        pack_id: &str,
    ) -> Result<Option<CreditPack>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(&self.config().payments_table)
            .key(
                "payment_id",
                AttributeValue::S(usage_key(email.as_str(), meter)),
            )
            .consistent_read(true)
            .send()
            .await?;
        let item = output.item.unwrap_or_default();
        Ok(UsageItem::from_item(&item)?.packs.remove(pack_id))
    }
}

/// One operator's change of a buyer's credits (`llmxt-admin credit`), kept on the usage item
/// as `adj#<time>`: who, why, how much (negative: taken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditAdjustment {
    /// When (unix seconds).
    pub at: i64,
    /// Units added (negative: taken).
    pub amount: i64,
    /// The operator.
    pub by: String,
    /// Why.
    pub reason: String,
}

fn adjustment_from(at: &str, value: &AttributeValue) -> Option<CreditAdjustment> {
    let AttributeValue::M(map) = value else {
        return None;
    };
    Some(CreditAdjustment {
        at: at.parse().ok()?,
        amount: number(map.get("a"))?,
        by: text(map.get("w")).unwrap_or_default().to_owned(),
        reason: text(map.get("n")).unwrap_or_default().to_owned(),
    })
}

/// Why an operator's credit change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    /// Taking more than is left.
    #[error("only {available} credits of {meter} are left to take")]
    NotEnough {
        /// The meter.
        meter: String,
        /// What could be taken.
        available: i64,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An operator's change of credits: who and why, at `now`.
#[derive(Debug, Clone, Copy)]
pub struct CreditOrder<'a> {
    /// The buyer.
    pub email: &'a Email,
    /// The meter.
    pub meter: &'a str,
    /// Units to add (negative: to take, earliest-expiring packs first).
    pub amount: i64,
    /// When an added pack expires.
    pub expires_at: i64,
    /// The operator.
    pub by: &'a str,
    /// Why.
    pub reason: &'a str,
    /// Unix seconds.
    pub now: i64,
}

impl Store {
    /// Adds a pack of `order.amount` credits (`op#<time>`), or takes `-order.amount` from the
    /// buyer's usable packs, never below zero; either way records who and why on the item.
    pub async fn adjust_credits(&self, order: CreditOrder<'_>) -> Result<i64, CreditError> {
        let key = usage_key(order.email.as_str(), order.meter);
        let adjustment = AttributeValue::M(Item::from([
            ("a".to_owned(), AttributeValue::N(order.amount.to_string())),
            ("w".to_owned(), AttributeValue::S(order.by.to_owned())),
            ("n".to_owned(), AttributeValue::S(order.reason.to_owned())),
        ]));
        for attempt in 0..MAX_ADJUST_ATTEMPTS {
            let at = order.now + i64::from(attempt);
            let mut request = self
                .client()
                .update_item()
                .table_name(&self.config().payments_table)
                .key("payment_id", AttributeValue::S(key.clone()))
                .expression_attribute_names("#adj", format!("adj#{at}"))
                .expression_attribute_values(":adj", adjustment.clone())
                .expression_attribute_values(":type", AttributeValue::S("usage".to_owned()));
            let mut update = String::from("SET #adj = :adj, record_type = :type");
            let mut condition = String::from("attribute_not_exists(#adj)");
            if order.amount > 0 {
                let pack = CreditPack {
                    id: format!("{}{}", llmxt_domain::credits::OPERATOR_PACK_PREFIX, at),
                    granted: order.amount,
                    left: order.amount,
                    added_at: order.now,
                    expires_at: order.expires_at,
                    note: Some(order.reason.to_owned()),
                    ..CreditPack::default()
                };
                update.push_str(", #k = :pack, #credits = :true REMOVE #ttl");
                condition.push_str(" AND attribute_not_exists(#k)");
                request = request
                    .expression_attribute_names("#k", format!("k#{}", pack.id))
                    .expression_attribute_names("#credits", HAS_CREDITS)
                    .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                    .expression_attribute_values(":pack", pack_value(&pack))
                    .expression_attribute_values(":true", AttributeValue::Bool(true));
            } else {
                let output = self
                    .client()
                    .get_item()
                    .table_name(&self.config().payments_table)
                    .key("payment_id", AttributeValue::S(key.clone()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(StoreError::from)?;
                let read = UsageItem::from_item(&output.item.unwrap_or_default())
                    .map_err(StoreError::from)?;
                let Some(draws) = read.plan_draws(-order.amount, order.now) else {
                    return Err(CreditError::NotEnough {
                        meter: order.meter.to_owned(),
                        available: read.credits(order.now),
                    });
                };
                for (i, draw) in draws.iter().enumerate() {
                    update.push_str(&format!(
                        ", #k{i}.l = #k{i}.l - :d{i}, #k{i}.tk = #k{i}.tk + :d{i}"
                    ));
                    condition.push_str(&format!(
                        " AND #k{i}.l >= :f{i} AND attribute_not_exists(#k{i}.r)"
                    ));
                    request = request
                        .expression_attribute_names(format!("#k{i}"), format!("k#{}", draw.pack))
                        .expression_attribute_values(
                            format!(":d{i}"),
                            AttributeValue::N(draw.amount.to_string()),
                        )
                        .expression_attribute_values(
                            format!(":f{i}"),
                            AttributeValue::N(draw.floor.to_string()),
                        );
                }
            }
            let result = request
                .update_expression(update)
                .condition_expression(condition)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(at),
                Err(error)
                    if matches!(
                        error.as_service_error(),
                        Some(UpdateItemError::ConditionalCheckFailedException(_))
                    ) =>
                {
                    back_off(attempt).await;
                }
                Err(error) => return Err(StoreError::from(error).into()),
            }
        }
        Err(StoreError::Contention.into())
    }
}

/// Attempts of an operator's credit change while reserves keep changing the item.
const MAX_ADJUST_ATTEMPTS: u32 = 8;
