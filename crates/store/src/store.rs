//! The DynamoDB store: both tables, deduplicated transactional commits, claim redemption.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem,
};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use llmxt_domain::email::Email;
use llmxt_domain::policy::Changes;
use llmxt_domain::privacy::{ErasurePlan, ErasureReceipt, Found, RestoreRecord, Tombstone};
use llmxt_domain::records::{
    CorruptItem, DeliveryRecord, Entitlement, PaymentRecord, SubscriptionRecord, TTL_ATTRIBUTE,
};
use llmxt_domain::secret::Secret;
use llmxt_domain::time::format_rfc3339;

use crate::config::StoreConfig;
use crate::item::{Item, StoredItem, Table, VersionedItem, restore_record_from_item};

/// Name of the payments table's index by buyer.
pub const EMAIL_INDEX: &str = "email-index";

// The key prefixes live with the other record keys; named here too for the callers that
// already take them from the store.
pub use llmxt_domain::records::{RATE_LIMIT_PREFIX, RESTORE_TOKEN_PREFIX};
/// How long DynamoDB keeps a used or expired token or counter before its TTL deletes it.
const SHORT_LIVED_RETENTION: i64 = 86_400;

/// Whether an id may be looked up at Dodo now ([`Store::take_lookup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupGate {
    /// Counted; ask.
    Allowed,
    /// Already asked twice within the window.
    TooSoon,
    /// Dodo answered 404 for it recently.
    RememberedNotFound,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB could not be reached, timed out, throttled or failed: try again later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A table does not exist.
    #[error("a table does not exist ({0}); create it with scripts/setup-dynamodb-tables.sh")]
    MissingTable(String),
    /// A stored item is not in the shape we write.
    #[error("corrupt item: {0}")]
    Corrupt(#[from] CorruptItem),
    /// AWS rejected the credentials or denied access.
    #[error("AWS credentials rejected or access denied: {0}")]
    Credentials(String),
    /// DynamoDB refused the request itself (validation and other client errors): a
    /// deployment or code problem that retrying will not fix.
    #[error("request refused by DynamoDB: {0}")]
    Rejected(String),
    /// The named item does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Concurrent writers kept winning; gave up.
    #[error("too much contention on the same records")]
    Contention,
}

impl<E: ProvideErrorMetadata + std::error::Error + 'static> From<SdkError<E, HttpResponse>>
    for StoreError
{
    fn from(error: SdkError<E, HttpResponse>) -> Self {
        if matches!(
            error.code(),
            Some(
                "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "AccessDeniedException"
                    | "ExpiredTokenException"
                    | "MissingAuthenticationTokenException"
            )
        ) {
            return Self::Credentials(error.message().unwrap_or("no detail").to_owned());
        }
        if error.code() == Some("ResourceNotFoundException") {
            let message = error.message().unwrap_or("requested table").to_owned();
            return Self::MissingTable(message);
        }
        // Throttling and 5xx are the database being unavailable for now; any other error
        // DynamoDB answers (4xx) is a refusal of the request itself.
        let throttled = matches!(
            error.code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "TransactionInProgressException"
            )
        );
        let client_error = error
            .raw_response()
            .map(|response| response.status().as_u16())
            .is_some_and(|status| (400..500).contains(&status));
        if client_error && !throttled {
            let code = error.code().unwrap_or("client error");
            let message = error.message().unwrap_or("no detail");
            return Self::Rejected(format!("{code}: {message}"));
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        let mut credentials_failed = false;
        while let Some(current) = source {
            credentials_failed |= current
                .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
                .is_some();
            source = current.source();
        }
        let detail = error_chain(&error);
        if credentials_failed {
            return Self::Credentials(
                "no usable AWS credentials (configure a profile or AWS_ACCESS_KEY_ID, or set \
                 DYNAMODB_ENDPOINT for DynamoDB Local)"
                    .to_owned(),
            );
        }
        Self::Unavailable(detail)
    }
}

/// An error and its causes in one line (`dispatch failure: io error: … Connection refused`),
/// each said once, without the Debug dump that `DisplayErrorContext` appends.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(cause) = current {
        let text = cause.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        current = cause.source();
    }
    parts.join(": ").replace(['\n', '\r'], " ")
}

impl StoreError {
    /// Whether the database is only unreachable, too slow, throttled or failing (5xx) for
    /// now, as opposed to refusing us (credentials, access, missing table, bad request): only
    /// the former may let a valid cookie answer alone.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Contention)
    }
}

/// How patient the client is: the webhook can wait (Dodo allows 15 s), the entitlement API
/// must answer well under a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientProfile {
    /// Whole operation, retries included.
    pub operation_timeout: Duration,
    /// One attempt.
    pub attempt_timeout: Duration,
    /// TCP/TLS connect.
    pub connect_timeout: Duration,
    /// Attempts, the first included.
    pub max_attempts: u32,
}

impl ClientProfile {
    /// For the webhook and tools: a few seconds, three attempts.
    pub fn patient() -> Self {
        Self {
            operation_timeout: Duration::from_secs(8),
            attempt_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
            max_attempts: 3,
        }
    }

    /// For the operator's tool: an operator can wait, so a database slowed by a bulk import
    /// or a busy table gets long attempts and several of them before a command gives up.
    pub fn operator() -> Self {
        Self {
            operation_timeout: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(2),
            max_attempts: 4,
        }
    }

    fn timeouts(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_timeout(self.operation_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .connect_timeout(self.connect_timeout)
            .build()
    }

    /// For user-facing reads: everything, retry included, within `budget`.
    pub fn within(budget: Duration) -> Self {
        Self {
            operation_timeout: budget,
            attempt_timeout: budget / 2,
            connect_timeout: budget / 2,
            max_attempts: 2,
        }
    }
}

/// What happened to a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Everything was written.
    Committed,
    /// This delivery was already committed; nothing was written.
    Duplicate,
    /// A record changed since it was read; nothing was written. Read again and retry.
    Conflict,
}

/// Waits before trying again after a conflicting writer or unprocessed keys: 2, 4, … 256 ms.
/// Waits before retrying a write whose records changed under it (the store's own back-off),
/// for callers outside the store that retry a [`CommitOutcome::Conflict`].
pub async fn wait_before_retry(attempt: u32) {
    back_off(attempt).await;
}

pub(crate) async fn back_off(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(2 << attempt.min(7))).await;
}

/// What to read for one delivery, in one batched request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordKeys<'a> {
    /// A delivery's `webhook-id` (its deduplication record).
    pub webhook_id: Option<&'a str>,
    /// A payment.
    pub payment_id: Option<&'a str>,
    /// A subscription.
    pub subscription_id: Option<&'a str>,
    /// An entitlement.
    pub email: Option<&'a Email>,
    /// Erasure tombstones ([`Store::tombstone_keys`] of the delivery's address).
    pub tombstones: &'a [String],
}

/// What [`Store::read_records`] found.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// The delivery was already committed.
    pub delivery_seen: bool,
    /// The payment.
    pub payment: Option<PaymentRecord>,
    /// The subscription.
    pub subscription: Option<SubscriptionRecord>,
    /// The entitlement.
    pub entitlement: Option<Entitlement>,
    /// The latest of the tombstones asked for, when the address was erased.
    pub tombstone: Option<Tombstone>,
}

/// Result of trying to redeem a payment's one-time claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This caller won the claim.
    Redeemed(Box<PaymentRecord>),
    /// Nothing is stored for this payment id (the webhook may still come).
    NotStored,
    /// The payment is stored, but not (yet) a successful, attributable one.
    Pending,
    /// Someone already redeemed it.
    AlreadyClaimed,
    /// The claim window closed before anyone redeemed it.
    Expired,
    /// The payment failed, was cancelled, refunded or lost a dispute.
    Failed,
    /// The purchase was started in another browser (its checkout binding does not match);
    /// the claim stays open for that browser.
    BoundElsewhere,
    /// A paid payment that never opens a claim: a subscription's renewal.
    NoClaim,
    /// A paid credit pack (`PRODUCT_CREDITS`): it adds credits and opens no claim.
    Credits,
}

/// Both tables, through one DynamoDB client built at start.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    config: StoreConfig,
    erasure_keys: std::sync::Arc<[Secret]>,
}

impl Store {
    /// Builds the client: region from `AWS_REGION`, credentials from the usual chain, or fixed
    /// local credentials when `DYNAMODB_ENDPOINT` points at DynamoDB Local.
    pub async fn connect(config: &StoreConfig, profile: ClientProfile) -> Self {
        let http_client = https_client();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http_client)
            .timeout_config(profile.timeouts())
            .retry_config(RetryConfig::standard().with_max_attempts(profile.max_attempts));
        if let Some(endpoint) = &config.endpoint {
            let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
            loader = loader
                .endpoint_url(endpoint)
                .region(Region::new(region))
                .credentials_provider(Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "dynamodb-local",
                ));
        }
        Self::new(Client::new(&loader.load().await), config.clone())
    }

    /// The same store through a client with other timeouts and attempts. It shares this
    /// client's HTTP connections, credentials and region, so no configuration is loaded again.
    pub fn with_profile(&self, profile: ClientProfile) -> Self {
        let config = self
            .client
            .config()
            .to_builder()
            .timeout_config(profile.timeouts())
            .retry_config(RetryConfig::standard().with_max_attempts(profile.max_attempts))
            .build();
        Self {
            client: Client::from_conf(config),
            ..self.clone()
        }
    }

    /// Wraps an existing client.
    pub fn new(client: Client, config: StoreConfig) -> Self {
        Self {
            client,
            config,
            erasure_keys: std::sync::Arc::from([]),
        }
    }

    /// The same store, finding erasure tombstones under `keys` (the `ENTITLEMENT_SECRET` keys:
    /// the functions that apply deliveries hold them). Without keys no tombstone is read.
    #[must_use]
    pub fn with_erasure_keys(mut self, keys: &[Secret]) -> Self {
        self.erasure_keys = std::sync::Arc::from(keys);
        self
    }

    /// The keys of `email`'s erasure tombstones, one per key [`Store::with_erasure_keys`]
    /// was given.
    pub fn tombstone_keys(&self, email: &Email) -> Vec<String> {
        self.erasure_keys
            .iter()
            .map(|key| Tombstone::key(key.expose(), email))
            .collect()
    }

    /// The table names in use.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn get(&self, table: &str, key: &str, value: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(key, AttributeValue::S(value.to_owned()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item)
    }

    /// A payment, read consistently.
    pub async fn get_payment(&self, payment_id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let item = self
            .get(&self.config.payments_table, "payment_id", payment_id)
            .await?;
        Ok(item.as_ref().map(PaymentRecord::from_item).transpose()?)
    }

    /// A subscription's record, read consistently.
    pub async fn get_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        let key = SubscriptionRecord::key(subscription_id);
        let item = self
            .get(&self.config.payments_table, "payment_id", &key)
            .await?;
        Ok(item
            .as_ref()
            .map(SubscriptionRecord::from_item)
            .transpose()?)
    }

    /// An entitlement, read consistently.
    pub async fn get_entitlement(&self, email: &Email) -> Result<Option<Entitlement>, StoreError> {
        let item = self
            .get(&self.config.entitlements_table, "email", email.as_str())
            .await?;
        Ok(item.as_ref().map(Entitlement::from_item).transpose()?)
    }

    /// The entitlements of `emails` (those stored), read consistently with `BatchGetItem`,
    /// 100 keys a request.
    pub async fn get_entitlements(&self, emails: &[Email]) -> Result<Vec<Entitlement>, StoreError> {
        let table = &self.config.entitlements_table;
        let mut found = Vec::new();
        for chunk in emails.chunks(100) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|email| {
                    Item::from([(
                        "email".to_owned(),
                        AttributeValue::S(email.as_str().to_owned()),
                    )])
                })
                .collect();
            let batch = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let mut request = std::collections::HashMap::from([(table.clone(), batch)]);
            let mut attempt = 0;
            while !request.is_empty() {
                let output = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(request))
                    .send()
                    .await?;
                for item in output
                    .responses
                    .unwrap_or_default()
                    .remove(table)
                    .unwrap_or_default()
                {
                    found.push(Entitlement::from_item(&item)?);
                }
                request = output.unprocessed_keys.unwrap_or_default();
                attempt += 1;
                if !request.is_empty() {
                    if attempt >= 8 {
                        return Err(StoreError::Unavailable(
                            "DynamoDB left keys unprocessed after 8 attempts".to_owned(),
                        ));
                    }
                    back_off(attempt).await;
                }
            }
        }
        Ok(found)
    }

    /// Reads every record named in `keys` in one consistent `BatchGetItem` over both tables
    /// (re-asking only for keys DynamoDB left unprocessed).
    pub async fn read_records(&self, keys: RecordKeys<'_>) -> Result<Records, StoreError> {
        let payments_table = &self.config.payments_table;
        let entitlements_table = &self.config.entitlements_table;
        let mut payment_keys: Vec<Item> = Vec::new();
        let delivery_key = keys.webhook_id.map(DeliveryRecord::key);
        let subscription_key = keys.subscription_id.map(SubscriptionRecord::key);
        for key in [
            keys.payment_id,
            delivery_key.as_deref(),
            subscription_key.as_deref(),
        ]
        .into_iter()
        .flatten()
        .chain(keys.tombstones.iter().map(String::as_str))
        {
            payment_keys.push(Item::from([(
                "payment_id".to_owned(),
                AttributeValue::S(key.to_owned()),
            )]));
        }
        let mut request: std::collections::HashMap<String, KeysAndAttributes> =
            std::collections::HashMap::new();
        let batch = |keys: Vec<Item>| {
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        };
        if !payment_keys.is_empty() {
            request.insert(payments_table.clone(), batch(payment_keys)?);
        }
        if let Some(email) = keys.email {
            let key = Item::from([(
                "email".to_owned(),
                AttributeValue::S(email.as_str().to_owned()),
            )]);
            request.insert(entitlements_table.clone(), batch(vec![key])?);
        }
        let mut found: Vec<(String, Item)> = Vec::new();
        let mut attempt = 0;
        while !request.is_empty() {
            let output = self
                .client
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await?;
            for (table, items) in output.responses.unwrap_or_default() {
                found.extend(items.into_iter().map(|item| (table.clone(), item)));
            }
            request = output.unprocessed_keys.unwrap_or_default();
            attempt += 1;
            if !request.is_empty() {
                if attempt >= 5 {
                    return Err(StoreError::Unavailable(
                        "DynamoDB left keys unprocessed after 5 attempts".to_owned(),
                    ));
                }
                back_off(attempt).await;
            }
        }
        let mut records = Records::default();
        for (table, item) in found {
            if &table == entitlements_table {
                records.entitlement = Some(Entitlement::from_item(&item)?);
                continue;
            }
            let key = match item.get("payment_id") {
                Some(AttributeValue::S(key)) => key.as_str(),
                _ => continue,
            };
            if Some(key) == delivery_key.as_deref() {
                records.delivery_seen = true;
            } else if Some(key) == subscription_key.as_deref() {
                records.subscription = Some(SubscriptionRecord::from_item(&item)?);
            } else if Some(key) == keys.payment_id {
                records.payment = Some(PaymentRecord::from_item(&item)?);
            } else if keys.tombstones.iter().any(|t| t == key) {
                let tombstone = Tombstone::from_item(&item)?;
                if records
                    .tombstone
                    .as_ref()
                    .is_none_or(|t| t.erased_at < tombstone.erased_at)
                {
                    records.tombstone = Some(tombstone);
                }
            }
        }
        Ok(records)
    }

    /// Whether a delivery with this `webhook-id` was already committed.
    pub async fn delivery_seen(&self, webhook_id: &str) -> Result<bool, StoreError> {
        let key = DeliveryRecord::key(webhook_id);
        Ok(self
            .get(&self.config.payments_table, "payment_id", &key)
            .await?
            .is_some())
    }

    /// An email's payments, newest first, through `email-index`.
    pub async fn payments_for_email(
        &self,
        email: &Email,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        let mut payments = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.config.payments_table)
                .index_name(EMAIL_INDEX)
                .key_condition_expression("email = :email")
                .expression_attribute_values(":email", AttributeValue::S(email.as_str().to_owned()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in output.items() {
                payments.push(PaymentRecord::from_item(item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(payments);
            }
        }
    }

    /// Payments created at or after `since` (unix seconds), newest first, by a scan that reads
    /// at most `max_scanned` items (the schema indexes payments by buyer only). Returns the
    /// payments and whether the whole table was read.
    pub async fn recent_payments(
        &self,
        since: i64,
        max_scanned: i32,
    ) -> Result<(Vec<PaymentRecord>, bool), StoreError> {
        let mut payments = Vec::new();
        let mut scanned = 0;
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.config.payments_table)
                .filter_expression("created_at >= :since AND attribute_not_exists(record_type)")
                .expression_attribute_values(":since", AttributeValue::S(format_rfc3339(since)))
                .limit((max_scanned - scanned).clamp(1, 1000))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            scanned += output.scanned_count;
            for item in output.items() {
                payments.push(PaymentRecord::from_item(item)?);
            }
            start = output.last_evaluated_key;
            let complete = start.is_none();
            if complete || scanned >= max_scanned {
                payments.sort_by_key(|p| std::cmp::Reverse(p.created_at));
                return Ok((payments, complete));
            }
        }
    }

    /// Writes the delivery record (if any) and every changed record in one transaction: all
    /// or nothing. Each record is written only if its version is still the one that was read.
    pub async fn commit(
        &self,
        delivery: Option<&DeliveryRecord>,
        changes: &Changes,
    ) -> Result<CommitOutcome, StoreError> {
        self.commit_many(delivery, std::slice::from_ref(changes))
            .await
    }

    /// Writes several sets of changes (each record at most once) in one transaction.
    pub async fn commit_all(&self, changes: &[Changes]) -> Result<CommitOutcome, StoreError> {
        self.commit_many(None, changes).await
    }

    async fn commit_many(
        &self,
        delivery: Option<&DeliveryRecord>,
        all_changes: &[Changes],
    ) -> Result<CommitOutcome, StoreError> {
        let mut items = Vec::new();
        if let Some(delivery) = delivery {
            items.push(put(
                &self.config.payments_table,
                delivery.to_item(),
                "attribute_not_exists(payment_id)",
                None,
            ));
        }
        for changes in all_changes {
            items.extend(self.change_items(changes));
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(CommitOutcome::Committed),
            Err(error) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                let cancelled = match error.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(e)) => Some(
                        e.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_owned())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                };
                match cancelled {
                    Some(codes)
                        if delivery.is_some()
                            && codes.first().map(String::as_str)
                                == Some("ConditionalCheckFailed") =>
                    {
                        Ok(CommitOutcome::Duplicate)
                    }
                    Some(codes)
                        if codes.iter().any(|c| {
                            c == "ConditionalCheckFailed" || c == "TransactionConflict"
                        }) =>
                    {
                        Ok(CommitOutcome::Conflict)
                    }
                    _ => Err(error.into()),
                }
            }
        }
    }

    fn change_items(&self, changes: &Changes) -> Vec<TransactWriteItem> {
        let mut items = Vec::new();
        if let Some(payment) = &changes.payment {
            items.push(self.versioned_put(payment));
        }
        if let Some(subscription) = &changes.subscription {
            items.push(self.versioned_put(subscription));
        }
        if let Some(entitlement) = &changes.entitlement {
            items.push(self.versioned_put(entitlement));
        }
        if let Some(credits) = &changes.credits {
            items.push(crate::packs::credit_change_item(
                &self.config.payments_table,
                credits,
            ));
        }
        items
    }

    /// The name of a table.
    fn table(&self, table: Table) -> &str {
        match table {
            Table::Payments => &self.config.payments_table,
            Table::Entitlements => &self.config.entitlements_table,
        }
    }

    /// The one way a record is written: the record at its next version, on the condition
    /// that it is still at the version it was read at.
    ///
    /// It is an `UpdateItem` that sets the attributes the record maps and removes the mapped
    /// ones it no longer holds, so attributes it does not know survive. Version 0 means "no
    /// version stored": a new item, or one another system wrote, which the first write adopts.
    fn versioned_put<R: VersionedItem>(&self, read: &R) -> TransactWriteItem {
        let update = versioned_update(read);
        let built = aws_sdk_dynamodb::types::Update::builder()
            .table_name(self.table(R::TABLE))
            .set_key(Some(update.key))
            .update_expression(update.expression)
            .condition_expression(update.condition)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .build()
            .unwrap_or_else(|_| unreachable!("table, key and expression are all set"));
        TransactWriteItem::builder().update(built).build()
    }

    /// A versioned write that replaces the whole item (erasure: nothing the record does not
    /// map may survive, it could name the buyer).
    fn versioned_replace<R: VersionedItem>(&self, read: &R) -> TransactWriteItem {
        let (condition, values) = version_condition(read.version());
        let next = read.at_version(read.version() + 1);
        put(self.table(R::TABLE), next.to_item(), &condition, values)
    }

    /// The one way a short-lived counter item (`limit#…`, removed by the TTL) is written: an
    /// `UpdateItem` of the payments table whose expression the caller completes; it must
    /// `SET record_type = :type, #ttl = :ttl`.
    fn counter_update(
        &self,
        counter: &str,
        ttl: i64,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.config.payments_table)
            .key(
                "payment_id",
                AttributeValue::S(format!("{RATE_LIMIT_PREFIX}{counter}")),
            )
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":type", AttributeValue::S("rate_limit".to_owned()))
            .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
    }

    /// Replaces an entitlement if its version is still `entitlement.version` (operator tools,
    /// dev mode).
    pub async fn put_entitlement(
        &self,
        entitlement: &Entitlement,
    ) -> Result<CommitOutcome, StoreError> {
        let update = versioned_update(entitlement);
        let result = self
            .client
            .update_item()
            .table_name(&self.config.entitlements_table)
            .set_key(Some(update.key))
            .update_expression(update.expression)
            .condition_expression(update.condition)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(CommitOutcome::Committed),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(CommitOutcome::Conflict)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The payment whose claim a subscription's success redirect redeems.
    pub async fn claim_payment_for_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_subscription(subscription_id)
            .await?
            .and_then(|subscription| subscription.claim_payment_id))
    }

    /// Redeems a payment's one-time claim at `now` from a request that presents no checkout
    /// binding (see [`Store::redeem_claim_bound`]).
    pub async fn redeem_claim(
        &self,
        payment_id: &str,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.redeem_claim_bound(payment_id, now, &[]).await
    }

    /// Redeems a payment's one-time claim at `now`: of any number of concurrent callers,
    /// exactly one gets [`ClaimOutcome::Redeemed`]. A payment bound to a checkout
    /// (`checkout_ref`) is redeemed only by a caller presenting that binding among
    /// `checkout_refs` (a browser keeps its few most recent checkouts); any other gets
    /// [`ClaimOutcome::BoundElsewhere`] and the claim stays open.
    pub async fn redeem_claim_bound(
        &self,
        payment_id: &str,
        now: i64,
        checkout_refs: &[String],
    ) -> Result<ClaimOutcome, StoreError> {
        let placeholders: Vec<String> = (0..checkout_refs.len())
            .map(|i| format!(":checkout_ref{i}"))
            .collect();
        let binding = if checkout_refs.is_empty() {
            "attribute_not_exists(checkout_ref)".to_owned()
        } else {
            format!(
                "(attribute_not_exists(checkout_ref) OR checkout_ref IN ({}))",
                placeholders.join(", ")
            )
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.config.payments_table)
            .key("payment_id", AttributeValue::S(payment_id.to_owned()))
            .update_expression("SET claim_redeemed_at = :now, updated_at = :now_text, #version = #version + :one")
            .condition_expression(format!(
                "attribute_exists(email) AND #status = :succeeded AND attribute_not_exists(access_revoked) \
                 AND attribute_exists(claim_expires_at) AND attribute_not_exists(claim_redeemed_at) \
                 AND claim_expires_at > :now AND {binding}",
            ))
            .set_expression_attribute_values((!checkout_refs.is_empty()).then(|| {
                placeholders
                    .iter()
                    .cloned()
                    .zip(checkout_refs.iter().map(|r| AttributeValue::S(r.clone())))
                    .collect()
            }))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":now_text", AttributeValue::S(format_rfc3339(now)))
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .expression_attribute_values(":succeeded", AttributeValue::S("succeeded".to_owned()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                Ok(ClaimOutcome::Redeemed(Box::new(PaymentRecord::from_item(
                    &item,
                )?)))
            }
            Err(error) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                match error.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                        let payment = failed.item().map(PaymentRecord::from_item).transpose()?;
                        Ok(classify_unredeemable(payment.as_ref(), now, checkout_refs))
                    }
                    _ => Err(error.into()),
                }
            }
        }
    }

    /// Stores a restore-link token by its SHA-256 (hex), for `email`, usable until
    /// `expires_at`. The item carries no `email` attribute, so it never shows in
    /// `email-index`, and a `record_type`, so listings skip it; TTL removes it later.
    pub async fn put_restore_token(
        &self,
        token_hash: &str,
        email: &Email,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.config.payments_table)
            .item(
                "payment_id",
                AttributeValue::S(format!("{RESTORE_TOKEN_PREFIX}{token_hash}")),
            )
            .item("record_type", AttributeValue::S("restore_token".to_owned()))
            .item(
                "restore_email",
                AttributeValue::S(email.as_str().to_owned()),
            )
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .item(
                TTL_ATTRIBUTE,
                AttributeValue::N((expires_at + SHORT_LIVED_RETENTION).to_string()),
            )
            .condition_expression("attribute_not_exists(payment_id)")
            .send()
            .await?;
        Ok(())
    }

    /// Uses a restore-link token once: of any number of callers, one gets its email, and only
    /// before it expires (the condition checks the expiry: TTL deletion lags).
    pub async fn redeem_restore_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<Email>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.config.payments_table)
            .key(
                "payment_id",
                AttributeValue::S(format!("{RESTORE_TOKEN_PREFIX}{token_hash}")),
            )
            .update_expression("SET used_at = :now")
            .condition_expression(
                "attribute_exists(restore_email) AND attribute_not_exists(used_at) AND expires_at > :now",
            )
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                Ok(output
                    .attributes
                    .as_ref()
                    .and_then(|item| match item.get("restore_email") {
                        Some(AttributeValue::S(email)) => Email::parse(email).ok(),
                        _ => None,
                    }))
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Makes `token_hash` the one open sign-in link of an address: `counter` names the
    /// address's short-lived item (`email#<key>#latest`, under its counter prefix, so erasure
    /// deletes it with the counters), kept until `ttl`. An earlier link of the address stops
    /// working ([`Store::latest_restore`]).
    pub async fn set_latest_restore(
        &self,
        counter: &str,
        token_hash: &str,
        ttl: i64,
    ) -> Result<(), StoreError> {
        self.counter_update(counter, ttl)
            .update_expression("SET latest = :latest, record_type = :type, #ttl = :ttl")
            .expression_attribute_values(":latest", AttributeValue::S(token_hash.to_owned()))
            .send()
            .await?;
        Ok(())
    }

    /// The token hash [`Store::set_latest_restore`] last stored under `counter`.
    pub async fn latest_restore(&self, counter: &str) -> Result<Option<String>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.config.payments_table)
            .key(
                "payment_id",
                AttributeValue::S(format!("{RATE_LIMIT_PREFIX}{counter}")),
            )
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.and_then(|item| match item.get("latest") {
            Some(AttributeValue::S(hash)) => Some(hash.clone()),
            _ => None,
        }))
    }

    /// The email of a restore-link token that was already used, until a day after its
    /// expiry; `None` for an unused or unknown one, or later.
    pub async fn used_restore_token_email(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<Email>, StoreError> {
        let item = self
            .get(
                &self.config.payments_table,
                "payment_id",
                &format!("{RESTORE_TOKEN_PREFIX}{token_hash}"),
            )
            .await?;
        Ok(item.and_then(|item| {
            let used = item.contains_key("used_at");
            let live = matches!(item.get("expires_at"), Some(AttributeValue::N(at)) if at.parse::<i64>().is_ok_and(|at| at > now - 86_400));
            match item.get("restore_email") {
                Some(AttributeValue::S(email)) if used && live => Email::parse(email).ok(),
                _ => None,
            }
        }))
    }

    /// Counts one more event for `counter` (e.g. `email#<hash>`) in the fixed window ending at
    /// `window_end` (unix seconds), and returns the count so far.
    pub async fn count_in_window(&self, counter: &str, window_end: i64) -> Result<i64, StoreError> {
        self.add_in_window(counter, 1, window_end).await
    }

    /// Counts `amount` more events for `counter` in the fixed window ending at `window_end`
    /// (one `UpdateItem`), and returns the count so far.
    pub async fn add_in_window(
        &self,
        counter: &str,
        amount: i64,
        window_end: i64,
    ) -> Result<i64, StoreError> {
        let output = self
            .counter_update(
                &format!("{counter}#{window_end}"),
                window_end + SHORT_LIVED_RETENTION,
            )
            .update_expression("ADD #count :amount SET record_type = :type, #ttl = :ttl")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":amount", AttributeValue::N(amount.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await?;
        Ok(output
            .attributes
            .as_ref()
            .and_then(|item| match item.get("count") {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            })
            .unwrap_or(i64::MAX))
    }

    /// The records of the payments table that name `email` outside `email-index`: its
    /// sign-in tokens (by their stored `restore_email`), its per-email counters (keys starting
    /// with one of `counter_prefixes`, [`llmxt_domain::privacy::email_counter_prefix`] under
    /// each signing key), and subscription records whose `customer_email` it is, by a scan
    /// (operator tools only).
    pub async fn records_naming_email(
        &self,
        email: &Email,
        counter_prefixes: &[String],
    ) -> Result<(Vec<RestoreRecord>, Vec<SubscriptionRecord>), StoreError> {
        let mut restore_records = Vec::new();
        let mut subscriptions = Vec::new();
        let mut start = None;
        let mut filter = "restore_email = :email OR customer_email = :email".to_owned();
        for n in 0..counter_prefixes.len() {
            filter.push_str(&format!(" OR begins_with(payment_id, :counter{n})"));
        }
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.config.payments_table)
                .filter_expression(filter.as_str())
                .expression_attribute_values(
                    ":email",
                    AttributeValue::S(email.as_str().to_owned()),
                );
            for (n, prefix) in counter_prefixes.iter().enumerate() {
                scan = scan.expression_attribute_values(
                    format!(":counter{n}"),
                    AttributeValue::S(prefix.clone()),
                );
            }
            let output = scan
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in output.items() {
                if let Some(record) = restore_record_from_item(item) {
                    restore_records.push(record);
                } else if item.contains_key("customer_email") {
                    subscriptions.push(SubscriptionRecord::from_item(item)?);
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok((restore_records, subscriptions));
            }
        }
    }

    /// The erasure receipt kept under `pseudonym`, read consistently.
    pub async fn get_erasure_receipt(
        &self,
        pseudonym: &str,
    ) -> Result<Option<ErasureReceipt>, StoreError> {
        let key = ErasureReceipt::key(pseudonym);
        let item = self
            .get(&self.config.payments_table, "payment_id", &key)
            .await?;
        Ok(item.as_ref().map(ErasureReceipt::from_item).transpose()?)
    }

    /// Everything stored about `email`: its entitlement, its payments (`email-index`), the
    /// subscription records of its grants and payments, its restore tokens and counters, the
    /// erasure receipt under `pseudonym` when one is given, and its tombstones under
    /// `tombstone_keys`. Counters are found by `counter_prefixes`
    /// ([`Store::records_naming_email`]).
    pub async fn find_by_email(
        &self,
        email: &Email,
        pseudonym: Option<&str>,
        counter_prefixes: &[String],
        tombstone_keys: &[String],
    ) -> Result<Found, StoreError> {
        let entitlement = self.get_entitlement(email).await?;
        let payments = self.payments_for_email(email).await?;
        let mut subscription_ids: Vec<String> = entitlement
            .iter()
            .flat_map(|e| e.grants.values())
            .filter_map(|g| g.subscription_id.clone())
            .chain(payments.iter().filter_map(|p| p.subscription_id.clone()))
            .collect();
        subscription_ids.sort();
        subscription_ids.dedup();
        let (restore_records, mut subscriptions) =
            self.records_naming_email(email, counter_prefixes).await?;
        for id in subscription_ids {
            if subscriptions.iter().any(|s| s.subscription_id == id) {
                continue;
            }
            if let Some(subscription) = self.get_subscription(&id).await?
                && subscription.email.as_ref().is_none_or(|e| e == email)
            {
                subscriptions.push(subscription);
            }
        }
        subscriptions.sort_by(|a, b| a.subscription_id.cmp(&b.subscription_id));
        let receipt = match pseudonym {
            Some(pseudonym) => self.get_erasure_receipt(pseudonym).await?,
            None => None,
        };
        let mut tombstones = Vec::new();
        for key in tombstone_keys {
            if let Some(item) = self
                .get(&self.config.payments_table, "payment_id", key)
                .await?
            {
                tombstones.push(Tombstone::from_item(&item)?);
            }
        }
        Ok(Found {
            entitlement,
            payments,
            subscriptions,
            restore_records,
            receipt,
            tombstones,
        })
    }

    /// Writes an erasure: the receipt, the tombstones, the pseudonymised payments and
    /// subscriptions, the entitlement's deletion and the restore records' deletion, each
    /// record guarded by the version that was read (a tombstone replaces its key's). One transaction when it fits DynamoDB's 100 items (the usual
    /// case); otherwise several, the receipt first, so a run cut short is finished by running
    /// it again. `Conflict` when a record changed since it was read (read again and retry).
    pub async fn erase(&self, plan: &ErasurePlan) -> Result<CommitOutcome, StoreError> {
        let table = &self.config.payments_table;
        let mut items = vec![self.versioned_put(&plan.receipt)];
        items.extend(plan.tombstones.iter().map(|t| {
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(t.to_item()))
                .build()
                .unwrap_or_else(|_| unreachable!("table name and item are both set"));
            TransactWriteItem::builder().put(put).build()
        }));
        items.extend(plan.payments.iter().map(|p| self.versioned_replace(p)));
        items.extend(plan.subscriptions.iter().map(|s| self.versioned_replace(s)));
        if let Some(entitlement) = &plan.entitlement {
            let (condition, values) = version_condition(entitlement.version);
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.config.entitlements_table)
                .key(
                    "email",
                    AttributeValue::S(entitlement.email.as_str().to_owned()),
                )
                .condition_expression(condition)
                .set_expression_attribute_names(Some(version_name()))
                .set_expression_attribute_values(values)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        for key in &plan.restore_keys {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(table)
                .key("payment_id", AttributeValue::S(key.clone()))
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        for chunk in items.chunks(100) {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(chunk.to_vec()))
                .send()
                .await;
            if let Err(error) = result {
                let conflict = error
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception());
                if conflict {
                    return Ok(CommitOutcome::Conflict);
                }
                return Err(error.into());
            }
        }
        Ok(CommitOutcome::Committed)
    }

    /// Takes one of the two API look-ups an id may cause per `window` seconds (a sliding
    /// window: the item keeps the last two attempt times), unless Dodo's last answer for it
    /// was a 404 that is still remembered ([`Store::remember_not_found`]). One conditional
    /// `UpdateItem`; a refusal returns the old item, so it costs no second read.
    pub async fn take_lookup(
        &self,
        id: &str,
        now: i64,
        window: i64,
    ) -> Result<LookupGate, StoreError> {
        let result = self
            .counter_update(
                &format!("lookup#{id}"),
                now + window + SHORT_LIVED_RETENTION,
            )
            // Right-hand sides read the item as it was: `previous` takes the old `last`.
            .update_expression(
                "SET previous_try = if_not_exists(last_try, :never), last_try = :now, \
                 record_type = :type, #ttl = :ttl",
            )
            .condition_expression(
                "(attribute_not_exists(previous_try) OR previous_try <= :cutoff) \
                 AND (attribute_not_exists(not_found_until) OR not_found_until <= :now)",
            )
            .expression_attribute_values(":never", AttributeValue::N("0".to_owned()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":cutoff", AttributeValue::N((now - window).to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(LookupGate::Allowed),
            Err(error) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                match error.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                        let remembered = failed
                            .item()
                            .and_then(|item| item.get("not_found_until"))
                            .and_then(|value| value.as_n().ok())
                            .and_then(|n| n.parse::<i64>().ok())
                            .is_some_and(|until| until > now);
                        Ok(if remembered {
                            LookupGate::RememberedNotFound
                        } else {
                            LookupGate::TooSoon
                        })
                    }
                    _ => Err(error.into()),
                }
            }
        }
    }

    /// Remembers until `until` that Dodo answered 404 for `id`: [`Store::take_lookup`]
    /// refuses it meanwhile.
    pub async fn remember_not_found(&self, id: &str, until: i64) -> Result<(), StoreError> {
        self.counter_update(&format!("lookup#{id}"), until + SHORT_LIVED_RETENTION)
            .update_expression("SET not_found_until = :until, record_type = :type, #ttl = :ttl")
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .send()
            .await?;
        Ok(())
    }

    /// Creates both tables (with `email-index` and TTL) if they do not exist; waits until
    /// they are active. Against AWS it also turns on point-in-time recovery.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        for spec in table_specs(&self.config) {
            let mut request = self
                .client
                .create_table()
                .table_name(&spec.name)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key(spec.partition_key, KeyType::Hash));
            for attribute in spec.attributes {
                request = request.attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(*attribute)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                );
            }
            if let Some((index, hash, range)) = spec.index {
                request = request.global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index)
                        .key_schema(key(hash, KeyType::Hash))
                        .key_schema(key(range, KeyType::Range))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                );
            }
            match request.send().await {
                Ok(_) => {}
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(error) => return Err(error.into()),
            }
            self.wait_until_active(&spec.name).await?;
            if let Some(attribute) = spec.ttl_attribute {
                self.enable_ttl(&spec.name, attribute).await?;
            }
            if self.config.endpoint.is_none() {
                self.client
                    .update_continuous_backups()
                    .table_name(&spec.name)
                    .point_in_time_recovery_specification(
                        aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                            .point_in_time_recovery_enabled(true)
                            .build()
                            .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                    )
                    .send()
                    .await?;
            }
        }
        Ok(())
    }

    async fn wait_until_active(&self, table: &str) -> Result<(), StoreError> {
        for _ in 0..120 {
            let description = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await?;
            let status = description
                .table()
                .and_then(|t| t.table_status())
                .map(|s| s.as_str().to_owned());
            if status.as_deref() == Some("ACTIVE") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(StoreError::Unavailable(format!(
            "table {table} did not become active"
        )))
    }

    async fn enable_ttl(&self, table: &str, attribute: &str) -> Result<(), StoreError> {
        let current = self
            .client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await?;
        let enabled = current
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status())
            .is_some_and(|s| matches!(s.as_str(), "ENABLED" | "ENABLING"));
        if !enabled {
            self.client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(attribute)
                        .build()
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                )
                .send()
                .await?;
        }
        Ok(())
    }
}

/// Root CAs trusted for AWS endpoints: the Amazon Trust Services roots, which every AWS
/// service endpoint chains to. Loading five certificates instead of parsing the system's
/// whole store takes about 90% of the instructions out of a cold start.
const AWS_ROOT_CAS: &[u8] = include_bytes!("aws-root-cas.pem");

/// The HTTPS client for AWS services (DynamoDB, SES): rustls with ring, trusting
/// [`AWS_ROOT_CAS`].
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{
        Provider, TlsContext, TrustStore, rustls_provider::CryptoMode,
    };
    let builder =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AWS_ROOT_CAS);
    match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // The bundled certificates are fixed at build time; a test proves they load.
        Err(_) => aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https(),
    }
}

/// The shape of one table, shared by table creation and the template check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Table name.
    pub name: String,
    /// Partition key (string).
    pub partition_key: &'static str,
    /// Every key attribute (all strings).
    pub attributes: &'static [&'static str],
    /// Global secondary index: name, partition key, sort key (projection ALL).
    pub index: Option<(&'static str, &'static str, &'static str)>,
    /// TTL attribute.
    pub ttl_attribute: Option<&'static str>,
}

/// Both tables' definitions.
pub fn table_specs(config: &StoreConfig) -> [TableSpec; 2] {
    [
        TableSpec {
            name: config.entitlements_table.clone(),
            partition_key: "email",
            attributes: &["email"],
            index: None,
            ttl_attribute: None,
        },
        TableSpec {
            name: config.payments_table.clone(),
            partition_key: "payment_id",
            attributes: &["payment_id", "email", "created_at"],
            index: Some((EMAIL_INDEX, "email", "created_at")),
            ttl_attribute: Some(TTL_ATTRIBUTE),
        },
    ]
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .unwrap_or_else(|_| unreachable!("name and key type are both set"))
}

fn version_name() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([("#version".to_owned(), "version".to_owned())])
}

/// The condition a versioned write holds to: the version read (0: the item holds none, for it
/// is new or another system wrote it; the first write adopts it, and a concurrent one then
/// finds a version and fails).
fn version_condition(version: i64) -> (String, Option<Item>) {
    if version == 0 {
        ("attribute_not_exists(#version)".to_owned(), None)
    } else {
        (
            "#version = :expected_version".to_owned(),
            Some(Item::from([(
                ":expected_version".to_owned(),
                AttributeValue::N(version.to_string()),
            )])),
        )
    }
}

/// The parts of a versioned `UpdateItem`.
struct VersionedUpdate {
    key: Item,
    expression: String,
    condition: String,
    names: std::collections::HashMap<String, String>,
    values: Item,
}

/// The `UpdateItem` writing `read` at its next version: `SET` each attribute the record gives
/// (those in `SET_ONCE` only when absent), `REMOVE` the mapped ones it does not give.
fn versioned_update<R: VersionedItem>(read: &R) -> VersionedUpdate {
    let (condition, expected) = version_condition(read.version());
    let mut item = read.at_version(read.version() + 1).to_item();
    let key_value = item
        .remove(R::KEY)
        .unwrap_or_else(|| AttributeValue::S(String::new()));
    let mut names = version_name();
    let mut values = expected.unwrap_or_default();
    let mut set = Vec::new();
    let mut attributes: Vec<(String, AttributeValue)> = item.into_iter().collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    for (index, (name, value)) in attributes.iter().enumerate() {
        let (placeholder, value_name) = (format!("#a{index}"), format!(":a{index}"));
        if R::SET_ONCE.contains(&name.as_str()) {
            set.push(format!(
                "{placeholder} = if_not_exists({placeholder}, {value_name})"
            ));
        } else if name == "version" {
            set.push(format!("#version = {value_name}"));
        } else {
            set.push(format!("{placeholder} = {value_name}"));
        }
        if name != "version" {
            names.insert(placeholder, name.clone());
        }
        values.insert(value_name, value.clone());
    }
    let removed: Vec<String> = R::ATTRIBUTES
        .iter()
        .filter(|name| **name != R::KEY && !attributes.iter().any(|(set, _)| set == *name))
        .enumerate()
        .map(|(index, name)| {
            let placeholder = format!("#r{index}");
            names.insert(placeholder.clone(), (*name).to_owned());
            placeholder
        })
        .collect();
    let mut expression = format!("SET {}", set.join(", "));
    if !removed.is_empty() {
        expression.push_str(&format!(" REMOVE {}", removed.join(", ")));
    }
    VersionedUpdate {
        key: Item::from([(R::KEY.to_owned(), key_value)]),
        expression,
        condition,
        names,
        values,
    }
}

fn put(table: &str, item: Item, condition: &str, values: Option<Item>) -> TransactWriteItem {
    let names = condition.contains("#version").then(version_name);
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .build()
        .unwrap_or_else(|_| unreachable!("table name and item are both set"));
    TransactWriteItem::builder().put(put).build()
}

fn classify_unredeemable(
    payment: Option<&PaymentRecord>,
    now: i64,
    checkout_refs: &[String],
) -> ClaimOutcome {
    let Some(payment) = payment else {
        return ClaimOutcome::NotStored;
    };
    if payment.access_revoked.is_some() || matches!(payment.status.as_str(), "failed" | "cancelled")
    {
        return ClaimOutcome::Failed;
    }
    if payment.claim_redeemed_at.is_some() {
        return ClaimOutcome::AlreadyClaimed;
    }
    // An erased buyer's payment never opens a claim: its link has expired, rather than
    // waiting (and asking Dodo) for a confirmation that cannot come.
    if payment.erased_as.is_some() {
        return ClaimOutcome::Expired;
    }
    if payment.status == "succeeded"
        && payment.email.is_some()
        && payment.subscription_id.is_some()
        && payment.claim_expires_at.is_none()
    {
        return ClaimOutcome::NoClaim;
    }
    if payment.status == "succeeded"
        && payment.email.is_some()
        && payment.product_id.is_some()
        && payment.plan.is_none()
        && payment.claim_expires_at.is_none()
    {
        return ClaimOutcome::Credits;
    }
    match payment.claim_expires_at {
        Some(expires_at) if expires_at <= now => ClaimOutcome::Expired,
        Some(_)
            if payment
                .checkout_ref
                .as_ref()
                .is_some_and(|bound| !checkout_refs.contains(bound)) =>
        {
            ClaimOutcome::BoundElsewhere
        }
        _ => ClaimOutcome::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_root_cas_load() {
        use aws_smithy_http_client::tls::{TlsContext, TrustStore};
        assert_eq!(
            String::from_utf8_lossy(AWS_ROOT_CAS)
                .matches("BEGIN CERTIFICATE")
                .count(),
            5
        );
        let trust = TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(AWS_ROOT_CAS);
        assert!(
            TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .is_ok()
        );
    }
}
