//! Where credit packs live and how one is stored: the key of a buyer's usage item for a
//! meter, a pack's map (`k#<id>`), and the transaction item that adds or removes a pack beside
//! the payment it comes from. The ledger's commit and the usage operations both build on it.

use aws_sdk_dynamodb::types::AttributeValue;
use llmxt_domain::credits::CreditPack;
use llmxt_domain::policy::CreditChange;
use llmxt_domain::records::{CorruptItem, TTL_ATTRIBUTE};

use crate::item::Item;

/// Key prefix of usage items in the payments table.
pub const USAGE_KEY_PREFIX: &str = "usage#";
/// Set on a usage item that holds credit packs: such an item has no TTL, and a reserve that
/// read none may only set one while this is still absent.
pub(crate) const HAS_CREDITS: &str = "has_credits";

/// The key of `email`'s usage item for `meter`.
pub fn usage_key(email: &str, meter: &str) -> String {
    format!("{USAGE_KEY_PREFIX}{email}#{meter}")
}

/// A stored number (`N`).
pub(crate) fn number(value: Option<&AttributeValue>) -> Option<i64> {
    match value {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// A stored string (`S`).
pub(crate) fn text(value: Option<&AttributeValue>) -> Option<&str> {
    match value {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// Reads a stored credit pack (`k#<id>`).
pub(crate) fn pack_from(id: &str, value: &AttributeValue) -> Result<CreditPack, CorruptItem> {
    let corrupt = CorruptItem { attribute: "k#" };
    let AttributeValue::M(map) = value else {
        return Err(corrupt);
    };
    Ok(CreditPack {
        id: id.to_owned(),
        granted: number(map.get("g")).ok_or(corrupt.clone())?,
        left: number(map.get("l")).ok_or(corrupt.clone())?,
        added_at: number(map.get("t")).unwrap_or(0),
        expires_at: number(map.get("x")).ok_or(corrupt)?,
        removed_at: number(map.get("r")),
        removed_left: number(map.get("rl")),
        taken: number(map.get("tk")).unwrap_or(0),
        note: text(map.get("n")).map(str::to_owned),
    })
}

/// The stored form of a credit pack (`k#<id>`).
pub(crate) fn pack_value(pack: &CreditPack) -> AttributeValue {
    let n = |v: i64| AttributeValue::N(v.to_string());
    let mut map = Item::from([
        ("g".to_owned(), n(pack.granted)),
        ("l".to_owned(), n(pack.left)),
        ("t".to_owned(), n(pack.added_at)),
        ("x".to_owned(), n(pack.expires_at)),
        ("tk".to_owned(), n(pack.taken)),
    ]);
    if let Some(at) = pack.removed_at {
        map.insert("r".to_owned(), n(at));
    }
    if let Some(left) = pack.removed_left {
        map.insert("rl".to_owned(), n(left));
    }
    if let Some(note) = &pack.note {
        map.insert("n".to_owned(), AttributeValue::S(note.clone()));
    }
    AttributeValue::M(map)
}

/// The transaction item that writes a [`CreditChange`] beside the payment it comes from. Its
/// condition fails (and the ledger re-reads and decides again) when the pack changed since.
pub(crate) fn credit_change_item(
    payments_table: &str,
    change: &CreditChange,
) -> aws_sdk_dynamodb::types::TransactWriteItem {
    let (email, meter, update, condition, names, values) = match change {
        CreditChange::Add { email, meter, pack } => (
            email,
            meter,
            "SET #k = :pack, #credits = :true, record_type = :type REMOVE #ttl",
            "attribute_not_exists(#k)",
            vec![
                ("#k", format!("k#{}", pack.id)),
                ("#credits", HAS_CREDITS.to_owned()),
                ("#ttl", TTL_ATTRIBUTE.to_owned()),
            ],
            vec![
                (":pack", pack_value(pack)),
                (":true", AttributeValue::Bool(true)),
                (":type", AttributeValue::S("usage".to_owned())),
            ],
        ),
        CreditChange::Remove {
            email,
            meter,
            pack_id,
            at,
            reason,
        } => (
            email,
            meter,
            "SET #k.r = :at, #k.rl = #k.l, #k.n = :reason",
            "attribute_exists(#k) AND attribute_not_exists(#k.r)",
            vec![("#k", format!("k#{pack_id}"))],
            vec![
                (":at", AttributeValue::N(at.to_string())),
                (":reason", AttributeValue::S(reason.clone())),
            ],
        ),
    };
    let built = aws_sdk_dynamodb::types::Update::builder()
        .table_name(payments_table)
        .key(
            "payment_id",
            AttributeValue::S(usage_key(email.as_str(), meter)),
        )
        .update_expression(update)
        .condition_expression(condition)
        .set_expression_attribute_names(Some(
            names.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ))
        .set_expression_attribute_values(Some(
            values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ))
        .build()
        .unwrap_or_else(|_| unreachable!("table, key and expression are all set"));
    aws_sdk_dynamodb::types::TransactWriteItem::builder()
        .update(built)
        .build()
}
