//! How every record maps to a DynamoDB item. The attribute names and types here are the stored
//! format (docs/data-model.md); each record type implements [`StoredItem`].

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use llmxt_domain::email::Email;
use llmxt_domain::privacy::{Erasure, ErasureReceipt, RestoreRecord, Tombstone};
use llmxt_domain::records::{
    Change, CorruptItem, DeliveryRecord, Entitlement, Freshness, Grant, PaymentRecord,
    SubscriptionRecord, TTL_ATTRIBUTE, source, status,
};
use llmxt_domain::records::{RATE_LIMIT_PREFIX, RESTORE_TOKEN_PREFIX};
use llmxt_domain::time::{format_rfc3339, parse_stored_time};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// A record that is stored as one DynamoDB item.
pub trait StoredItem: Sized {
    /// Reads the record from its item.
    fn from_item(item: &Item) -> Result<Self, CorruptItem>;
    /// Writes the record as an item.
    fn to_item(&self) -> Item;
}

/// The two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Payments, and the other records keyed in its `payment_id`.
    Payments,
    /// Entitlements, keyed by `email`.
    Entitlements,
}

/// A record written under optimistic concurrency: each write bumps `version`, conditioned on
/// the version that was read.
pub trait VersionedItem: StoredItem {
    /// Its table.
    const TABLE: Table;
    /// Its partition key attribute.
    const KEY: &'static str;
    /// Every attribute its mapping owns: a write sets those [`StoredItem::to_item`] gives and
    /// removes the others of this list. Attributes outside it (`metadata`, whatever a
    /// previous system stored) are left as they are.
    const ATTRIBUTES: &'static [&'static str];
    /// Attributes written only when the item does not hold them yet (`created_at`).
    const SET_ONCE: &'static [&'static str] = &[];
    /// The version it was read at (0: not stored yet).
    fn version(&self) -> i64;
    /// The same record at another version.
    fn at_version(&self, version: i64) -> Self;
}

macro_rules! versioned {
    ($record:ty, $table:expr, $key:literal, $attributes:expr $(, $set_once:expr)?) => {
        impl VersionedItem for $record {
            const TABLE: Table = $table;
            const KEY: &'static str = $key;
            const ATTRIBUTES: &'static [&'static str] = $attributes;
            $(const SET_ONCE: &'static [&'static str] = $set_once;)?
            fn version(&self) -> i64 {
                self.version
            }
            fn at_version(&self, version: i64) -> Self {
                Self {
                    version,
                    ..self.clone()
                }
            }
        }
    };
}

versioned!(
    PaymentRecord,
    Table::Payments,
    "payment_id",
    &[
        "payment_id",
        "email",
        "status",
        "product_id",
        "plan",
        "subscription_id",
        "customer_id",
        "checkout_ref",
        "total_amount",
        "amount",
        "currency",
        "provider",
        "created_at",
        "updated_at",
        "freshness",
        "claim_expires_at",
        "claim_redeemed_at",
        "refund_status",
        "refund_id",
        "dispute_status",
        "dispute_freshness",
        "access_revoked",
        "access_revoked_at",
        "attention",
        "last_webhook_id",
        "erased_as",
        "version",
    ],
    // When the first webhook of the payment arrived; a write that did not come from a
    // webhook (a read through Dodo's API) leaves it as it is.
    &["webhook_received_at"]
);
versioned!(
    SubscriptionRecord,
    Table::Payments,
    "payment_id",
    &[
        "payment_id",
        "record_type",
        "subscription_id",
        "customer_email",
        "status",
        "product_id",
        "next_billing_date",
        "freshness",
        "claim_payment_id",
        "revoked_period_end",
        "erased_as",
        "paid_at",
        "updated_at",
        "version",
    ]
);
versioned!(
    ErasureReceipt,
    Table::Payments,
    "payment_id",
    &[
        "payment_id",
        "record_type",
        "pseudonym",
        "erasures",
        "version"
    ]
);
versioned!(
    Entitlement,
    Table::Entitlements,
    "email",
    &[
        "email",
        "status",
        "plan",
        "expires_at",
        "source",
        "payment_id",
        "subscription_id",
        "product_id",
        "reason",
        "changed_by",
        "updated_at",
        "version",
        "grants",
        "history",
    ],
    &["created_at"]
);

/// What the original system's readers expect in `payment_provider` / `provider`.
pub const PROVIDER: &str = "dodo";

impl StoredItem for PaymentRecord {
    /// Reads a payment item.
    fn from_item(item: &Item) -> Result<Self, CorruptItem> {
        Ok(Self {
            payment_id: req_s(item, "payment_id")?,
            email: opt_s(item, "email").and_then(|e| Email::parse(&e).ok()),
            status: opt_s(item, "status").unwrap_or_else(|| "unknown".to_owned()),
            product_id: opt_s(item, "product_id"),
            plan: opt_s(item, "plan"),
            subscription_id: opt_s(item, "subscription_id"),
            customer_id: opt_s(item, "customer_id"),
            checkout_ref: opt_s(item, "checkout_ref"),
            // The original schema's `amount` when this code has not written the item yet.
            total_amount: opt_n(item, "total_amount").or_else(|| opt_n(item, "amount")),
            currency: opt_s(item, "currency"),
            created_at: opt_time(item, "created_at").unwrap_or(0),
            updated_at: opt_time(item, "updated_at").unwrap_or(0),
            freshness: opt_s(item, "freshness").and_then(|f| Freshness::decode(&f)),
            claim_expires_at: opt_time(item, "claim_expires_at"),
            claim_redeemed_at: opt_time(item, "claim_redeemed_at"),
            refund_status: opt_s(item, "refund_status"),
            refund_id: opt_s(item, "refund_id"),
            dispute_status: opt_s(item, "dispute_status"),
            dispute_freshness: opt_s(item, "dispute_freshness").and_then(|f| Freshness::decode(&f)),
            access_revoked: opt_s(item, "access_revoked"),
            access_revoked_at: opt_time(item, "access_revoked_at"),
            attention: opt_s(item, "attention"),
            last_webhook_id: opt_s(item, "last_webhook_id"),
            erased_as: opt_s(item, "erased_as"),
            version: opt_n(item, "version").unwrap_or(0),
        })
    }

    /// Writes a payment item.
    fn to_item(&self) -> Item {
        let mut item = Item::new();
        put_s(&mut item, "payment_id", Some(&self.payment_id));
        put_s(&mut item, "email", self.email.as_ref().map(Email::as_str));
        put_s(&mut item, "status", Some(&self.status));
        put_s(&mut item, "product_id", self.product_id.as_deref());
        put_s(&mut item, "plan", self.plan.as_deref());
        put_s(
            &mut item,
            "subscription_id",
            self.subscription_id.as_deref(),
        );
        put_s(&mut item, "customer_id", self.customer_id.as_deref());
        put_s(&mut item, "checkout_ref", self.checkout_ref.as_deref());
        put_n(&mut item, "total_amount", self.total_amount);
        put_n(&mut item, "amount", self.total_amount);
        put_s(&mut item, "currency", self.currency.as_deref());
        put_s(&mut item, "provider", Some(PROVIDER));
        if self.last_webhook_id.is_some() {
            put_s(
                &mut item,
                "webhook_received_at",
                Some(&format_rfc3339(self.updated_at)),
            );
        }
        put_s(
            &mut item,
            "created_at",
            Some(&format_rfc3339(self.created_at)),
        );
        put_s(
            &mut item,
            "updated_at",
            Some(&format_rfc3339(self.updated_at)),
        );
        put_s(
            &mut item,
            "freshness",
            self.freshness.map(Freshness::encode).as_deref(),
        );
        put_n(&mut item, "claim_expires_at", self.claim_expires_at);
        put_n(&mut item, "claim_redeemed_at", self.claim_redeemed_at);
        put_s(&mut item, "refund_status", self.refund_status.as_deref());
        put_s(&mut item, "refund_id", self.refund_id.as_deref());
        put_s(&mut item, "dispute_status", self.dispute_status.as_deref());
        put_s(
            &mut item,
            "dispute_freshness",
            self.dispute_freshness.map(Freshness::encode).as_deref(),
        );
        put_s(&mut item, "access_revoked", self.access_revoked.as_deref());
        put_s(
            &mut item,
            "access_revoked_at",
            self.access_revoked_at.map(format_rfc3339).as_deref(),
        );
        put_s(&mut item, "attention", self.attention.as_deref());
        put_s(
            &mut item,
            "last_webhook_id",
            self.last_webhook_id.as_deref(),
        );
        put_s(&mut item, "erased_as", self.erased_as.as_deref());
        put_n(&mut item, "version", Some(self.version));
        item
    }
}

impl StoredItem for SubscriptionRecord {
    /// Reads a subscription item.
    fn from_item(item: &Item) -> Result<Self, CorruptItem> {
        Ok(Self {
            subscription_id: req_s(item, "subscription_id")?,
            email: opt_s(item, "customer_email").and_then(|e| Email::parse(&e).ok()),
            status: opt_s(item, "status").unwrap_or_else(|| "unknown".to_owned()),
            product_id: opt_s(item, "product_id"),
            next_billing_date: opt_time(item, "next_billing_date"),
            freshness: opt_s(item, "freshness").and_then(|f| Freshness::decode(&f)),
            claim_payment_id: opt_s(item, "claim_payment_id"),
            revoked_period_end: opt_time(item, "revoked_period_end"),
            erased_as: opt_s(item, "erased_as"),
            paid_at: match item.get("paid_at") {
                Some(AttributeValue::L(times)) => times
                    .iter()
                    .filter_map(|t| match t {
                        AttributeValue::N(text) | AttributeValue::S(text) => {
                            parse_stored_time(text)
                        }
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            },
            updated_at: opt_time(item, "updated_at").unwrap_or(0),
            version: opt_n(item, "version").unwrap_or(0),
        })
    }

    /// Writes a subscription item.
    fn to_item(&self) -> Item {
        let mut item = Item::new();
        put_s(
            &mut item,
            "payment_id",
            Some(&SubscriptionRecord::key(&self.subscription_id)),
        );
        put_s(&mut item, "record_type", Some("subscription"));
        put_s(&mut item, "subscription_id", Some(&self.subscription_id));
        put_s(
            &mut item,
            "customer_email",
            self.email.as_ref().map(Email::as_str),
        );
        put_s(&mut item, "status", Some(&self.status));
        put_s(&mut item, "product_id", self.product_id.as_deref());
        put_n(&mut item, "next_billing_date", self.next_billing_date);
        put_s(
            &mut item,
            "freshness",
            self.freshness.map(Freshness::encode).as_deref(),
        );
        put_s(
            &mut item,
            "claim_payment_id",
            self.claim_payment_id.as_deref(),
        );
        put_n(&mut item, "revoked_period_end", self.revoked_period_end);
        put_s(&mut item, "erased_as", self.erased_as.as_deref());
        if !self.paid_at.is_empty() {
            item.insert(
                "paid_at".to_owned(),
                AttributeValue::L(
                    self.paid_at
                        .iter()
                        .map(|t| AttributeValue::N(t.to_string()))
                        .collect(),
                ),
            );
        }
        put_s(
            &mut item,
            "updated_at",
            Some(&format_rfc3339(self.updated_at)),
        );
        put_n(&mut item, "version", Some(self.version));
        item
    }
}

/// Reads one grant of an entitlement item's `grants` map.
fn grant_from_map(key: &str, fields: &Item) -> Grant {
    Grant {
        key: key.to_owned(),
        source: opt_s(fields, "source").unwrap_or_default(),
        plan: opt_s(fields, "plan").unwrap_or_default(),
        status: opt_s(fields, "status").unwrap_or_default(),
        expires_at: end_time(fields, "expires_at"),
        payment_id: opt_s(fields, "payment_id"),
        subscription_id: opt_s(fields, "subscription_id"),
        product_id: opt_s(fields, "product_id"),
        customer_id: opt_s(fields, "customer_id"),
        period_end: end_time(fields, "period_end"),
        revoked_period_end: opt_time(fields, "revoked_period_end"),
        revoked_period_pending: matches!(
            fields.get("revoked_period_pending"),
            Some(AttributeValue::Bool(true))
        ),
        revoked_at: opt_time(fields, "revoked_at"),
        reason: opt_s(fields, "reason"),
        changed_by: opt_s(fields, "changed_by"),
        updated_at: opt_time(fields, "updated_at").unwrap_or(0),
        subscription_status: opt_s(fields, "subscription_status"),
        trial_ends_at: opt_time(fields, "trial_ends_at"),
        scheduled_plan: opt_s(fields, "scheduled_plan"),
        scheduled_product_id: opt_s(fields, "scheduled_product_id"),
        scheduled_at: opt_time(fields, "scheduled_at"),
    }
}

/// Writes one grant as a map attribute.
fn grant_to_map(grant: &Grant) -> Item {
    let mut fields = Item::new();
    put_s(&mut fields, "source", Some(&grant.source));
    put_s(&mut fields, "plan", Some(&grant.plan));
    put_s(&mut fields, "status", Some(&grant.status));
    put_n(&mut fields, "expires_at", grant.expires_at);
    put_s(&mut fields, "payment_id", grant.payment_id.as_deref());
    put_s(
        &mut fields,
        "subscription_id",
        grant.subscription_id.as_deref(),
    );
    put_s(&mut fields, "product_id", grant.product_id.as_deref());
    put_s(&mut fields, "customer_id", grant.customer_id.as_deref());
    put_n(&mut fields, "period_end", grant.period_end);
    put_n(&mut fields, "revoked_period_end", grant.revoked_period_end);
    if grant.revoked_period_pending {
        fields.insert(
            "revoked_period_pending".to_owned(),
            AttributeValue::Bool(true),
        );
    }
    put_n(&mut fields, "revoked_at", grant.revoked_at);
    put_s(&mut fields, "reason", grant.reason.as_deref());
    put_s(&mut fields, "changed_by", grant.changed_by.as_deref());
    put_s(
        &mut fields,
        "updated_at",
        Some(&format_rfc3339(grant.updated_at)),
    );
    put_s(
        &mut fields,
        "subscription_status",
        grant.subscription_status.as_deref(),
    );
    put_n(&mut fields, "trial_ends_at", grant.trial_ends_at);
    put_s(
        &mut fields,
        "scheduled_plan",
        grant.scheduled_plan.as_deref(),
    );
    put_s(
        &mut fields,
        "scheduled_product_id",
        grant.scheduled_product_id.as_deref(),
    );
    put_n(&mut fields, "scheduled_at", grant.scheduled_at);
    fields
}

impl StoredItem for Entitlement {
    /// Reads an entitlement item. An item written before grants existed reads as one grant,
    /// keyed by its subscription (for a subscription), else its payment, else `manual#legacy`.
    fn from_item(item: &Item) -> Result<Self, CorruptItem> {
        let email =
            Email::parse(&req_s(item, "email")?).map_err(|_| CorruptItem { attribute: "email" })?;
        let mut entitlement = Self {
            email,
            grants: BTreeMap::new(),
            status: req_s(item, "status")?,
            plan: opt_s(item, "plan").unwrap_or_default(),
            expires_at: end_time(item, "expires_at"),
            source: opt_s(item, "source").unwrap_or_default(),
            payment_id: opt_s(item, "payment_id"),
            subscription_id: opt_s(item, "subscription_id"),
            product_id: opt_s(item, "product_id"),
            reason: opt_s(item, "reason"),
            changed_by: opt_s(item, "changed_by"),
            updated_at: opt_time(item, "updated_at").unwrap_or(0),
            version: opt_n(item, "version").unwrap_or(0),
            history: read_history(item),
        };
        match item.get("grants") {
            Some(AttributeValue::M(grants)) => {
                for (key, value) in grants {
                    let AttributeValue::M(fields) = value else {
                        return Err(CorruptItem {
                            attribute: "grants",
                        });
                    };
                    entitlement
                        .grants
                        .insert(key.clone(), grant_from_map(key, fields));
                }
            }
            Some(_) => {
                return Err(CorruptItem {
                    attribute: "grants",
                });
            }
            None => {
                let legacy = entitlement.legacy_grant();
                entitlement.grants.insert(legacy.key.clone(), legacy);
            }
        }
        // The stored summary speaks the original schema (`revoked` is written `expired`):
        // the state read back is the exact one of the grant it describes.
        if let Some(state) = entitlement
            .summary_grant()
            .map(|grant| grant.status.clone())
        {
            entitlement.status = state;
        }
        let unknown: Vec<&str> = entitlement
            .grants
            .values()
            .map(|grant| grant.status.as_str())
            .filter(|state| !status::is_known(state))
            .collect();
        if !unknown.is_empty()
            && crate::warn_once::first_time(&format!(
                "status|{}|{unknown:?}",
                entitlement.email.as_str()
            ))
        {
            tracing::warn!(
                email = %entitlement.email,
                statuses = ?unknown,
                "entitlement item has a status this code does not know; it gives no Pro"
            );
        }
        Ok(entitlement)
    }

    /// Writes an entitlement item: the grants and their summary.
    fn to_item(&self) -> Item {
        let mut item = Item::new();
        put_s(&mut item, "email", Some(self.email.as_str()));
        // In the original schema's words; the grants keep the exact state.
        put_s(
            &mut item,
            "status",
            Some(status::in_original_schema(&self.status)),
        );
        put_s(&mut item, "plan", Some(&self.plan));
        put_s(
            &mut item,
            "expires_at",
            self.expires_at.map(format_rfc3339).as_deref(),
        );
        put_s(&mut item, "source", Some(&self.source));
        if matches!(self.source.as_str(), source::PAYMENT | source::SUBSCRIPTION) {
            put_s(&mut item, "payment_provider", Some(PROVIDER));
        }
        put_s(
            &mut item,
            "created_at",
            Some(&format_rfc3339(self.updated_at)),
        );
        put_s(&mut item, "payment_id", self.payment_id.as_deref());
        put_s(
            &mut item,
            "subscription_id",
            self.subscription_id.as_deref(),
        );
        put_s(&mut item, "product_id", self.product_id.as_deref());
        put_s(&mut item, "reason", self.reason.as_deref());
        put_s(&mut item, "changed_by", self.changed_by.as_deref());
        put_s(
            &mut item,
            "updated_at",
            Some(&format_rfc3339(self.updated_at)),
        );
        put_n(&mut item, "version", Some(self.version));
        if !self.grants.is_empty() {
            let grants = self
                .grants
                .iter()
                .map(|(key, grant)| (key.clone(), AttributeValue::M(grant_to_map(grant))))
                .collect();
            item.insert("grants".to_owned(), AttributeValue::M(grants));
        }
        if !self.history.is_empty() {
            let entries = self
                .history
                .iter()
                .map(|change| {
                    let mut entry = Item::new();
                    put_s(&mut entry, "at", Some(&format_rfc3339(change.at)));
                    put_s(&mut entry, "by", Some(&change.by));
                    put_s(&mut entry, "grant", change.grant.as_deref());
                    put_s(&mut entry, "status", Some(&change.status));
                    put_s(&mut entry, "reason", change.reason.as_deref());
                    AttributeValue::M(entry)
                })
                .collect();
            item.insert("history".to_owned(), AttributeValue::L(entries));
        }
        item
    }
}

fn read_history(item: &Item) -> Vec<Change> {
    let Some(AttributeValue::L(entries)) = item.get("history") else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| match entry {
            AttributeValue::M(fields) => Some(Change {
                at: opt_time(fields, "at").unwrap_or(0),
                by: opt_s(fields, "by").unwrap_or_default(),
                grant: opt_s(fields, "grant"),
                status: opt_s(fields, "status").unwrap_or_default(),
                reason: opt_s(fields, "reason"),
            }),
            _ => None,
        })
        .collect()
}

impl StoredItem for DeliveryRecord {
    fn from_item(item: &Item) -> Result<Self, CorruptItem> {
        let key = req_s(item, "payment_id")?;
        Ok(Self {
            webhook_id: key
                .strip_prefix(llmxt_domain::records::DELIVERY_KEY_PREFIX)
                .unwrap_or(&key)
                .to_owned(),
            event_type: opt_s(item, "event_type").unwrap_or_default(),
            processed_at: opt_time(item, "processed_at").unwrap_or(0),
            expires_at: opt_n(item, TTL_ATTRIBUTE).unwrap_or(0),
        })
    }

    /// Writes a delivery item.
    fn to_item(&self) -> Item {
        let mut item = Item::new();
        put_s(
            &mut item,
            "payment_id",
            Some(&DeliveryRecord::key(&self.webhook_id)),
        );
        put_s(&mut item, "record_type", Some("webhook"));
        put_s(&mut item, "event_type", Some(&self.event_type));
        put_s(
            &mut item,
            "processed_at",
            Some(&format_rfc3339(self.processed_at)),
        );
        put_n(&mut item, TTL_ATTRIBUTE, Some(self.expires_at));
        item
    }
}

/// Reads a restore token or counter item; `None` for any other item.
pub fn restore_record_from_item(item: &Item) -> Option<RestoreRecord> {
    let key = opt_s(item, "payment_id")?;
    let ttl = opt_n(item, TTL_ATTRIBUTE);
    if key.starts_with(RESTORE_TOKEN_PREFIX) {
        return Some(RestoreRecord {
            key,
            kind: "restore_token",
            expires_at: end_time(item, "expires_at"),
            used_at: opt_time(item, "used_at"),
            count: None,
            ttl,
        });
    }
    if key.starts_with(RATE_LIMIT_PREFIX) {
        let window_end = key.rsplit('#').next().and_then(|w| w.parse().ok());
        return Some(RestoreRecord {
            key,
            kind: "rate_limit",
            expires_at: window_end,
            used_at: None,
            count: opt_n(item, "count"),
            ttl,
        });
    }
    None
}

impl StoredItem for ErasureReceipt {
    /// Reads a receipt item.
    fn from_item(item: &Item) -> Result<Self, CorruptItem> {
        let pseudonym = opt_s(item, "pseudonym").ok_or(CorruptItem {
            attribute: "pseudonym",
        })?;
        let erasures = match item.get("erasures") {
            Some(AttributeValue::L(entries)) => entries
                .iter()
                .filter_map(|entry| match entry {
                    AttributeValue::M(fields) => Some(Erasure {
                        at: opt_time(fields, "at").unwrap_or(0),
                        by: opt_s(fields, "by").unwrap_or_default(),
                        reason: opt_s(fields, "reason").unwrap_or_default(),
                        payment_ids: strings(fields, "payment_ids"),
                        subscription_ids: strings(fields, "subscription_ids"),
                        entitlement_deleted: matches!(
                            fields.get("entitlement_deleted"),
                            Some(AttributeValue::Bool(true))
                        ),
                        restore_records_deleted: opt_n(fields, "restore_records_deleted")
                            .unwrap_or(0)
                            .try_into()
                            .unwrap_or(0),
                    }),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            pseudonym,
            erasures,
            version: opt_n(item, "version").unwrap_or(0),
        })
    }

    /// Writes a receipt item: no `email` attribute (outside `email-index`), a `record_type`
    /// (outside listings), no TTL (kept as long as the payments).
    fn to_item(&self) -> Item {
        let mut item = Item::new();
        put_s(
            &mut item,
            "payment_id",
            Some(&ErasureReceipt::key(&self.pseudonym)),
        );
        put_s(&mut item, "record_type", Some("erasure"));
        put_s(&mut item, "pseudonym", Some(&self.pseudonym));
        let entries = self
            .erasures
            .iter()
            .map(|e| {
                let mut fields = Item::new();
                put_s(&mut fields, "at", Some(&format_rfc3339(e.at)));
                put_s(&mut fields, "by", Some(&e.by));
                put_s(&mut fields, "reason", Some(&e.reason));
                fields.insert("payment_ids".to_owned(), string_list(&e.payment_ids));
                fields.insert(
                    "subscription_ids".to_owned(),
                    string_list(&e.subscription_ids),
                );
                fields.insert(
                    "entitlement_deleted".to_owned(),
                    AttributeValue::Bool(e.entitlement_deleted),
                );
                put_n(
                    &mut fields,
                    "restore_records_deleted",
                    Some(e.restore_records_deleted as i64),
                );
                AttributeValue::M(fields)
            })
            .collect();
        item.insert("erasures".to_owned(), AttributeValue::L(entries));
        put_n(&mut item, "version", Some(self.version));
        item
    }
}

impl StoredItem for Tombstone {
    /// Reads a tombstone item.
    fn from_item(item: &Item) -> Result<Self, CorruptItem> {
        Ok(Self {
            key: req_s(item, "payment_id")?,
            pseudonym: req_s(item, "pseudonym")?,
            erased_at: opt_time(item, "erased_at").ok_or(CorruptItem {
                attribute: "erased_at",
            })?,
        })
    }

    /// Writes a tombstone item: its keyed key, the pseudonym and the erasure time; no `email`
    /// attribute (outside `email-index`), a `record_type` (outside listings), no TTL.
    fn to_item(&self) -> Item {
        let mut item = Item::new();
        put_s(&mut item, "payment_id", Some(&self.key));
        put_s(&mut item, "record_type", Some("erasure_tombstone"));
        put_s(&mut item, "pseudonym", Some(&self.pseudonym));
        put_s(
            &mut item,
            "erased_at",
            Some(&format_rfc3339(self.erased_at)),
        );
        item
    }
}

fn strings(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn string_list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().cloned().map(AttributeValue::S).collect())
}

pub(crate) fn put_s(item: &mut Item, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        item.insert(name.to_owned(), AttributeValue::S(value.to_owned()));
    }
}

pub(crate) fn put_n(item: &mut Item, name: &str, value: Option<i64>) {
    if let Some(value) = value {
        item.insert(name.to_owned(), AttributeValue::N(value.to_string()));
    }
}

pub(crate) fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

pub(crate) fn req_s(item: &Item, name: &'static str) -> Result<String, CorruptItem> {
    opt_s(item, name).ok_or(CorruptItem { attribute: name })
}

/// Reads a time attribute in either stored form: unix seconds (`N`, or a numeric `S`) or an
/// ISO 8601 string (`S`), through the one shared parser.
/// An end of access: absent, `NULL` or an empty string is no end; a value that reads as no
/// time (`"soon"`, `"31/12/2026"`) is an end long past, so access another system wrote in a
/// form this code cannot read is never taken as access without end.
pub(crate) fn end_time(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(text) | AttributeValue::S(text)) if !text.trim().is_empty() => {
            Some(parse_stored_time(text).unwrap_or_else(|| {
                tracing::warn!(
                    attribute = name,
                    "an end time this code cannot read; read as ended, so it gives no access"
                );
                0
            }))
        }
        _ => None,
    }
}

pub(crate) fn opt_time(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(text) | AttributeValue::S(text)) => parse_stored_time(text),
        _ => None,
    }
}

pub(crate) fn opt_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmxt_domain::records::PlanRanking;

    #[test]
    fn records_round_trip_through_items() {
        let payment = PaymentRecord {
            payment_id: "pay_1".into(),
            email: Email::parse("a@b.co").ok(),
            status: "succeeded".into(),
            created_at: 1_768_067_753,
            updated_at: 1_768_067_754,
            freshness: Some(Freshness {
                webhook_timestamp: 5,
                event_timestamp_micros: 6,
            }),
            claim_expires_at: Some(1_768_068_353),
            version: 3,
            ..PaymentRecord::default()
        };
        assert_eq!(PaymentRecord::from_item(&payment.to_item()), Ok(payment));
        let mut entitlement = Entitlement::new(Email::parse("a@b.co").expect("valid"));
        entitlement.grants.insert(
            "sub_1".into(),
            Grant {
                key: "sub_1".into(),
                source: source::SUBSCRIPTION.into(),
                plan: "professional".into(),
                status: status::ACTIVE.into(),
                expires_at: Some(10),
                subscription_id: Some("sub_1".into()),
                period_end: Some(9),
                revoked_period_end: Some(8),
                updated_at: 1_768_067_753,
                ..Grant::default()
            },
        );
        entitlement.summarise(0, &PlanRanking::standard());
        entitlement.version = 1;
        assert_eq!(
            Entitlement::from_item(&entitlement.to_item()),
            Ok(entitlement.clone())
        );
        let mut with_history = entitlement;
        with_history.record(Change {
            at: 1_768_067_000,
            by: "operator".into(),
            grant: Some("sub_1".into()),
            status: status::ACTIVE.into(),
            reason: Some("goodwill".into()),
        });
        assert_eq!(
            Entitlement::from_item(&with_history.to_item()),
            Ok(with_history)
        );
    }

    fn assert_mapped<R: VersionedItem>(record: &R) {
        for name in record.to_item().keys() {
            assert!(
                R::ATTRIBUTES.contains(&name.as_str())
                    || R::SET_ONCE.contains(&name.as_str())
                    || name == "payment_provider",
                "{name} is written but not listed, so a write would never remove it"
            );
        }
    }

    #[test]
    fn every_written_attribute_is_listed_for_removal() {
        let some = || Some("x".to_owned());
        assert_mapped(&PaymentRecord {
            payment_id: "pay_1".into(),
            email: Email::parse("a@b.co").ok(),
            status: "succeeded".into(),
            product_id: some(),
            plan: some(),
            subscription_id: some(),
            customer_id: some(),
            checkout_ref: some(),
            total_amount: Some(1),
            currency: some(),
            created_at: 1,
            updated_at: 1,
            freshness: Some(Freshness::default()),
            claim_expires_at: Some(1),
            claim_redeemed_at: Some(1),
            refund_status: some(),
            refund_id: some(),
            dispute_status: some(),
            dispute_freshness: Some(Freshness::default()),
            access_revoked: some(),
            access_revoked_at: Some(1),
            attention: some(),
            last_webhook_id: some(),
            erased_as: some(),
            version: 1,
        });
        assert_mapped(&SubscriptionRecord {
            subscription_id: "sub_1".into(),
            email: Email::parse("a@b.co").ok(),
            status: "active".into(),
            product_id: some(),
            next_billing_date: Some(1),
            freshness: Some(Freshness::default()),
            claim_payment_id: some(),
            revoked_period_end: Some(1),
            erased_as: some(),
            paid_at: vec![1],
            updated_at: 1,
            version: 1,
        });
        let mut entitlement = Entitlement::new(Email::parse("a@b.co").expect("valid"));
        entitlement.grants.insert("k".into(), Grant::default());
        entitlement.expires_at = Some(1);
        entitlement.source = source::PAYMENT.into();
        entitlement.payment_id = some();
        entitlement.subscription_id = some();
        entitlement.product_id = some();
        entitlement.reason = some();
        entitlement.changed_by = some();
        entitlement.record(Change {
            at: 1,
            by: "x".into(),
            grant: None,
            status: status::ACTIVE.into(),
            reason: None,
        });
        assert_mapped(&entitlement);
    }

    #[test]
    fn an_item_without_grants_reads_as_one_grant() {
        let email = Email::parse("a@b.co").expect("valid");
        let mut legacy = Entitlement::new(email.clone());
        legacy.status = status::ACTIVE.into();
        legacy.plan = "professional".into();
        legacy.source = source::SUBSCRIPTION.into();
        legacy.subscription_id = Some("sub_1".into());
        legacy.payment_id = Some("pay_1".into());
        legacy.expires_at = Some(1_000);
        let item = legacy.to_item();
        assert!(!item.contains_key("grants"));
        let read = Entitlement::from_item(&item).expect("readable");
        let only = read.grants.get("sub_1").expect("keyed by the subscription");
        assert_eq!(read.grants.len(), 1);
        assert_eq!(
            (only.status.as_str(), only.plan.as_str(), only.expires_at),
            (status::ACTIVE, "professional", Some(1_000))
        );
        assert!(read.is_pro(999) && !read.is_pro(1_000));

        legacy.source = source::PAYMENT.into();
        legacy.subscription_id = None;
        let read = Entitlement::from_item(&legacy.to_item()).expect("readable");
        assert!(read.grants.contains_key("pay_1"));
        legacy.source = source::MANUAL.into();
        legacy.payment_id = None;
        legacy.status = status::REVOKED.into();
        let item = legacy.to_item();
        // The original schema knows no `revoked`: access taken away is `expired` there.
        assert_eq!(
            item.get("status"),
            Some(&AttributeValue::S("expired".into()))
        );
        let read = Entitlement::from_item(&item).expect("readable");
        assert!(read.grants.contains_key("manual#legacy"));
        assert!(!read.is_pro(0));
    }
}
