//! Reconciling with Dodo's API: what webhooks missed (an endpoint down or a secret wrong for
//! longer than Dodo's retries) is found by listing Dodo's payments and subscriptions and
//! comparing them with what is stored; `apply` writes the differences through the same
//! ledger as a delivery, recorded as coming from the API.
//!
//! Lists are read in 0-based pages of 100 until an empty page (this loop is ours: the SDKs'
//! paginators stop a page early or late on some versions). List items carry no
//! `product_cart`, so each payment to apply is fetched whole first. Calls are paced to Dodo's
//! documented 100 requests a minute, and the SDK backs off on `429`. Payments applied here
//! never open a one-time claim: their buyers restore access with the email link.
//!
//! Erased buyers (`llmxt-admin forget`) are not imported again from Dodo's history: a stored
//! payment or subscription that was erased keeps its pseudonym (a difference in its status is
//! applied under the pseudonym, never bringing the address back), and, with `PRIVACY_KEY`
//! set, an object Dodo lists for an address whose erasure receipt is newer than the object is
//! skipped. The report lists what was skipped.

use std::time::Duration;

use serde_json::Value;

use crate::dodo_api::{DodoApi, DodoApiError, apply_api_object, payment_status};
use llmxt_domain::email::Email;
use llmxt_domain::policy::PolicySettings;
use llmxt_domain::privacy::PrivacyKey;
use llmxt_domain::records::{PaymentRecord, SubscriptionRecord};
use llmxt_domain::time::{format_rfc3339, parse_rfc3339_seconds};
use llmxt_store::store::{RecordKeys, Store, StoreError};

/// Dodo's page size limit.
pub const PAGE_SIZE: u32 = 100;

/// What to do.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileOptions<'a> {
    /// Only objects created at or after this time (unix seconds).
    pub since: i64,
    /// Write the differences (otherwise only report them).
    pub apply: bool,
    /// At least this long between two API calls.
    pub min_interval: Duration,
    /// When the run started (unix seconds).
    pub now: i64,
    /// `PRIVACY_KEY`, to find erasure receipts by address (`None`: only records already
    /// stored as erased are recognised).
    pub privacy_key: Option<&'a PrivacyKey>,
}

/// One object whose stored state differs from Dodo's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `payment` or `subscription`.
    pub kind: &'static str,
    /// Its id.
    pub id: String,
    /// The buyer, when known.
    pub email: Option<String>,
    /// What differs.
    pub problem: String,
}

/// What a run found and did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Payments listed by Dodo.
    pub payments_listed: usize,
    /// Subscriptions listed by Dodo.
    pub subscriptions_listed: usize,
    /// Differences found.
    pub differences: Vec<Difference>,
    /// Differences written (with `apply`).
    pub applied: usize,
    /// Payments and subscriptions of erased buyers that were not imported (`kind id`).
    pub erased_skipped: Vec<String>,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Dodo's API failed (after the SDK's retries).
    #[error("Dodo API: {0}")]
    Api(#[from] DodoApiError),
    /// DynamoDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Paced<'a> {
    api: &'a DodoApi,
    interval: Duration,
    last: Option<tokio::time::Instant>,
}

impl Paced<'_> {
    async fn wait(&mut self) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.interval).await;
        }
        self.last = Some(tokio::time::Instant::now());
    }
}

/// Compares Dodo's payments and subscriptions created since `options.since` with the store;
/// with `options.apply`, writes each difference through the ledger. `progress` receives a
/// line now and then.
pub async fn reconcile(
    store: &Store,
    api: &DodoApi,
    settings: PolicySettings<'_>,
    options: ReconcileOptions<'_>,
    progress: &mut dyn FnMut(String),
) -> Result<Report, ReconcileError> {
    let mut receipts = ErasedBuyers {
        store,
        key: options.privacy_key,
        erased_at: std::collections::HashMap::new(),
    };
    let settings = PolicySettings {
        claim_ttl_seconds: 0,
        ..settings
    };
    let mut paced = Paced {
        api,
        interval: options.min_interval,
        last: None,
    };
    let filters = [("created_at_gte", format_rfc3339(options.since))];
    let mut report = Report::default();

    let subscriptions = list_all(&mut paced, "subscriptions", &filters, progress).await?;
    report.subscriptions_listed = subscriptions.len();
    for subscription in &subscriptions {
        let Some(id) = subscription.get("subscription_id").and_then(Value::as_str) else {
            continue;
        };
        let email = customer_email(subscription);
        let stored = store
            .read_records(RecordKeys {
                subscription_id: Some(id),
                email: email.as_ref(),
                ..RecordKeys::default()
            })
            .await?;
        let erased = stored
            .subscription
            .as_ref()
            .is_some_and(|s| s.erased_as.is_some());
        if stored.subscription.is_none() && receipts.erased(email.as_ref(), subscription).await? {
            report.erased_skipped.push(format!("subscription {id}"));
            continue;
        }
        let Some(problem) = subscription_difference(
            subscription,
            stored.subscription.as_ref(),
            stored
                .entitlement
                .as_ref()
                .is_some_and(|e| e.grants.contains_key(id)),
        ) else {
            if erased {
                report.erased_skipped.push(format!("subscription {id}"));
            }
            continue;
        };
        report.differences.push(Difference {
            kind: "subscription",
            id: id.to_owned(),
            email: email.filter(|_| !erased).map(|e| e.as_str().to_owned()),
            problem: erased_note(problem, erased),
        });
        if options.apply {
            apply(
                store,
                settings,
                "subscription",
                id,
                subscription.clone(),
                options.now,
            )
            .await?;
            report.applied += 1;
        }
    }

    let payments = list_all(&mut paced, "payments", &filters, progress).await?;
    report.payments_listed = payments.len();
    let total = payments.len();
    for (index, item) in payments.iter().enumerate() {
        let Some(id) = item.get("payment_id").and_then(Value::as_str) else {
            continue;
        };
        if !matches!(
            payment_status(item).as_str(),
            "succeeded" | "failed" | "cancelled"
        ) {
            continue;
        }
        let email = customer_email(item);
        let stored = store
            .read_records(RecordKeys {
                payment_id: Some(id),
                email: email.as_ref(),
                ..RecordKeys::default()
            })
            .await?;
        let grant_key = stored
            .payment
            .as_ref()
            .and_then(|p| p.subscription_id.clone())
            .or_else(|| text(item, "subscription_id"))
            .unwrap_or_else(|| id.to_owned());
        let has_grant = stored
            .entitlement
            .as_ref()
            .is_some_and(|e| e.grants.contains_key(&grant_key));
        let erased = stored
            .payment
            .as_ref()
            .is_some_and(|p| p.erased_as.is_some());
        if stored.payment.is_none() && receipts.erased(email.as_ref(), item).await? {
            report.erased_skipped.push(format!("payment {id}"));
            continue;
        }
        let Some(problem) = payment_difference(item, stored.payment.as_ref(), has_grant) else {
            if erased {
                report.erased_skipped.push(format!("payment {id}"));
            }
            continue;
        };
        report.differences.push(Difference {
            kind: "payment",
            id: id.to_owned(),
            email: email.filter(|_| !erased).map(|e| e.as_str().to_owned()),
            problem: erased_note(problem, erased),
        });
        if options.apply {
            paced.wait().await;
            let whole = paced.api.payment(id).await?;
            apply(store, settings, "payment", id, whole, options.now).await?;
            report.applied += 1;
            if report.applied % 25 == 0 {
                progress(format!(
                    "applied {} (payment {}/{total})",
                    report.applied,
                    index + 1
                ));
            }
        }
    }
    Ok(report)
}

/// Erasure receipts by address, read once per address.
struct ErasedBuyers<'a> {
    store: &'a Store,
    key: Option<&'a PrivacyKey>,
    erased_at: std::collections::HashMap<String, Option<i64>>,
}

impl ErasedBuyers<'_> {
    /// Whether `object` (listed by Dodo for `email`) was created before that address was last
    /// erased.
    async fn erased(&mut self, email: Option<&Email>, object: &Value) -> Result<bool, StoreError> {
        let (Some(key), Some(email)) = (self.key, email) else {
            return Ok(false);
        };
        let pseudonym = key.pseudonym(email);
        let erased_at = match self.erased_at.get(&pseudonym) {
            Some(at) => *at,
            None => {
                let at = self
                    .store
                    .get_erasure_receipt(&pseudonym)
                    .await?
                    .and_then(|r| r.last_erased_at());
                self.erased_at.insert(pseudonym, at);
                at
            }
        };
        let created_at = text(object, "created_at").and_then(|t| parse_rfc3339_seconds(&t));
        Ok(erased_at.is_some_and(|erased| created_at.is_none_or(|created| created <= erased)))
    }
}

fn erased_note(problem: String, erased: bool) -> String {
    if erased {
        format!("{problem} (erased buyer: applied under the pseudonym)")
    } else {
        problem
    }
}

async fn list_all(
    paced: &mut Paced<'_>,
    what: &str,
    filters: &[(&str, String)],
    progress: &mut dyn FnMut(String),
) -> Result<Vec<Value>, ReconcileError> {
    let mut all = Vec::new();
    for page_number in 0.. {
        paced.wait().await;
        let page = if what == "payments" {
            paced
                .api
                .payments_page(filters, page_number, PAGE_SIZE)
                .await?
        } else {
            paced
                .api
                .subscriptions_page(filters, page_number, PAGE_SIZE)
                .await?
        };
        if page.is_empty() {
            break;
        }
        all.extend(page);
        progress(format!(
            "listed {} {what} ({} page(s))",
            all.len(),
            page_number + 1
        ));
    }
    Ok(all)
}

fn payment_difference(
    item: &Value,
    stored: Option<&PaymentRecord>,
    has_grant: bool,
) -> Option<String> {
    let status = payment_status(item);
    let Some(stored) = stored else {
        return Some(format!("missing (Dodo: {status})"));
    };
    if stored.status != status {
        return Some(format!(
            "status differs (stored {}, Dodo {status})",
            stored.status
        ));
    }
    let refunded = text(item, "refund_status").is_some_and(|s| s.eq_ignore_ascii_case("full"));
    if refunded && stored.refund_status.is_none() {
        return Some("refund not applied".to_owned());
    }
    let dispute_lost = text(item, "dispute_status").is_some_and(|s| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "dispute_lost" | "dispute_accepted" | "lost" | "accepted"
        )
    });
    if dispute_lost && stored.access_revoked.is_none() {
        return Some("dispute not applied".to_owned());
    }
    let grants = status == "succeeded" && stored.email.is_some() && stored.access_revoked.is_none();
    if grants && !has_grant {
        return Some("entitlement missing".to_owned());
    }
    None
}

fn subscription_difference(
    item: &Value,
    stored: Option<&SubscriptionRecord>,
    has_grant: bool,
) -> Option<String> {
    let status = text(item, "status")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let next_billing = text(item, "next_billing_date").and_then(|t| parse_rfc3339_seconds(&t));
    let Some(stored) = stored else {
        return Some(format!("missing (Dodo: {status})"));
    };
    if stored.status != status {
        return Some(format!(
            "status differs (stored {}, Dodo {status})",
            stored.status
        ));
    }
    if next_billing.is_some() && stored.next_billing_date != next_billing {
        return Some("paid period differs".to_owned());
    }
    let gives_access = matches!(
        status.as_str(),
        "active" | "on_hold" | "past_due" | "cancelled"
    );
    if gives_access && !has_grant && customer_email_of(item).is_some() {
        return Some("entitlement missing".to_owned());
    }
    None
}

async fn apply(
    store: &Store,
    settings: PolicySettings<'_>,
    kind: &str,
    id: &str,
    object: Value,
    now: i64,
) -> Result<(), ReconcileError> {
    let read_id = format!("reconcile:{kind}:{id}:{now}");
    apply_api_object(store, settings, kind, object, &read_id, now).await?;
    Ok(())
}

fn text(object: &Value, field: &str) -> Option<String> {
    object.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn customer_email_of(object: &Value) -> Option<String> {
    object
        .get("customer")
        .and_then(|c| c.get("email"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn customer_email(object: &Value) -> Option<Email> {
    customer_email_of(object).and_then(|raw| Email::parse(&raw).ok())
}
