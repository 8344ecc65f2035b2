//! Dodo's API as a second source of truth: the official `dodopayments` SDK's client (Bearer
//! auth, base URL per environment, retries with backoff on 429 and 5xx, timeouts), through
//! its `request`/`send` calls, with answers parsed permissively.
//!
//! The SDK's typed models require about twenty fields each that this backend never reads; a
//! payment must not be lost because Dodo added, renamed or nulled one of them. Answers are
//! therefore read as JSON and go through the same permissive parser and ledger as webhook
//! deliveries ([`api_event`]): statuses we do not know (`past_due`, …) and metadata values
//! that are numbers or booleans parse. The local stand-in (testkit) serves objects the SDK's
//! typed models accept, and a test proves it.
//!
//! The HTTP client is built on first use, not at cold start: most success pages never need
//! the API, and building it loads a TLS root store.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::config::DodoApiConfig;
use llmxt_domain::events::{DodoEvent, EventParseError, parse_event};

/// Why an API call gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DodoApiError {
    /// `404`: Dodo does not know the object.
    #[error("not found")]
    NotFound,
    /// Another error status, with Dodo's `{"code","message"}` when it sent one.
    #[error("Dodo answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Dodo's message (never the request).
        message: String,
    },
    /// Unreachable, timed out or a broken answer.
    #[error("Dodo API unavailable: {0}")]
    Unavailable(String),
}

/// A client for the few calls this backend makes.
pub struct DodoApi {
    config: DodoApiConfig,
    timeout: Duration,
    max_retries: u32,
    client: OnceLock<Result<dodopayments::Client, String>>,
}

impl std::fmt::Debug for DodoApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DodoApi")
            .field("base_url", &self.config.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl DodoApi {
    /// A client whose every call (retries included) fits in `timeout`, retrying at most
    /// `max_retries` times (429 and 5xx, honouring `Retry-After`).
    pub fn new(config: DodoApiConfig, timeout: Duration, max_retries: u32) -> Self {
        Self {
            config,
            timeout,
            max_retries,
            client: OnceLock::new(),
        }
    }

    /// The base URL in use.
    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    fn client(&self) -> Result<&dodopayments::Client, DodoApiError> {
        self.client
            .get_or_init(|| {
                let key = String::from_utf8_lossy(self.config.api_key.expose()).into_owned();
                let config = dodopayments::ClientConfig::new(self.config.base_url.clone())
                    .with_api_key(key)
                    .with_timeout(self.timeout)
                    .with_max_retries(self.max_retries);
                dodopayments::Client::new(config).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| DodoApiError::Unavailable(e.clone()))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, DodoApiError> {
        let client = self.client()?;
        let mut request = client.request(method, path);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let sent = async {
            let response = client
                .send(request)
                .await
                .map_err(|e| DodoApiError::Unavailable(e.to_string()))?;
            let status = response.status().as_u16();
            let text = response
                .text()
                .await
                .map_err(|e| DodoApiError::Unavailable(e.to_string()))?;
            match status {
                200..=299 => serde_json::from_str(&text)
                    .map_err(|_| DodoApiError::Unavailable("answer is not JSON".to_owned())),
                404 => Err(DodoApiError::NotFound),
                _ => {
                    if status == 429 || status >= 500 {
                        // The template's alarm counts these lines (`dodo_status`).
                        tracing::warn!(
                            dodo_status = status,
                            path,
                            "Dodo's API is throttling or failing"
                        );
                    }
                    let message = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_default();
                    Err(DodoApiError::Status { status, message })
                }
            }
        };
        // The SDK bounds each attempt; this bounds the whole call, retries included.
        let overall = self.timeout.saturating_mul(self.max_retries + 1) + Duration::from_secs(1);
        tokio::time::timeout(overall, sent)
            .await
            .map_err(|_| DodoApiError::Unavailable("timed out".to_owned()))?
    }

    /// `GET /payments/{id}`.
    pub async fn payment(&self, payment_id: &str) -> Result<Value, DodoApiError> {
        self.call(
            reqwest::Method::GET,
            &format!("/payments/{payment_id}"),
            &[],
            None,
        )
        .await
    }

    /// `GET /subscriptions/{id}`.
    pub async fn subscription(&self, subscription_id: &str) -> Result<Value, DodoApiError> {
        let path = format!("/subscriptions/{subscription_id}");
        self.call(reqwest::Method::GET, &path, &[], None).await
    }

    /// One page of `GET /payments` (`page_number` from 0, `page_size` ≤ 100) with `filters`.
    pub async fn payments_page(
        &self,
        filters: &[(&str, String)],
        page_number: u32,
        page_size: u32,
    ) -> Result<Vec<Value>, DodoApiError> {
        self.page("/payments", filters, page_number, page_size)
            .await
    }

    /// One page of `GET /subscriptions`.
    pub async fn subscriptions_page(
        &self,
        filters: &[(&str, String)],
        page_number: u32,
        page_size: u32,
    ) -> Result<Vec<Value>, DodoApiError> {
        self.page("/subscriptions", filters, page_number, page_size)
            .await
    }

    async fn page(
        &self,
        path: &str,
        filters: &[(&str, String)],
        page_number: u32,
        page_size: u32,
    ) -> Result<Vec<Value>, DodoApiError> {
        let mut query = filters.to_vec();
        query.push(("page_number", page_number.to_string()));
        query.push(("page_size", page_size.min(100).to_string()));
        let answer = self.call(reqwest::Method::GET, path, &query, None).await?;
        match answer.get("items") {
            Some(Value::Array(items)) => Ok(items.clone()),
            _ => Err(DodoApiError::Unavailable(
                "list answer without items".to_owned(),
            )),
        }
    }

    /// A subscription's first payment: the oldest of `GET /payments?subscription_id=`.
    pub async fn first_payment_of(
        &self,
        subscription_id: &str,
    ) -> Result<Option<Value>, DodoApiError> {
        match self.first_payment_id_of(subscription_id).await? {
            Some(payment_id) => self.payment(&payment_id).await.map(Some),
            None => Ok(None),
        }
    }

    /// The id of a subscription's oldest payment, from one page of `GET /payments` (one call).
    pub async fn first_payment_id_of(
        &self,
        subscription_id: &str,
    ) -> Result<Option<String>, DodoApiError> {
        let filters = [("subscription_id", subscription_id.to_owned())];
        let items = self.payments_page(&filters, 0, 100).await?;
        let oldest = items
            .into_iter()
            .filter(|p| p.get("payment_id").and_then(Value::as_str).is_some())
            .min_by(|a, b| {
                let at = |v: &Value| {
                    v.get("created_at")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                at(a).cmp(&at(b))
            });
        Ok(oldest.and_then(|p| {
            p.get("payment_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }))
    }

    /// `POST /checkouts`: a Checkout Session; returns its `checkout_url`.
    pub async fn create_checkout(&self, body: &Value) -> Result<String, DodoApiError> {
        let answer = self
            .call(reqwest::Method::POST, "/checkouts", &[], Some(body))
            .await?;
        answer
            .get("checkout_url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| DodoApiError::Unavailable("session without checkout_url".to_owned()))
    }

    /// `POST /customers/{id}/customer-portal/session?return_url=…`; returns its `link`.
    pub async fn customer_portal(
        &self,
        customer_id: &str,
        return_url: &str,
    ) -> Result<String, DodoApiError> {
        let path = format!("/customers/{customer_id}/customer-portal/session");
        let query = [("return_url", return_url.to_owned())];
        let answer = self
            .call(reqwest::Method::POST, &path, &query, None)
            .await?;
        answer
            .get("link")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| DodoApiError::Unavailable("portal session without link".to_owned()))
    }
}

/// What Dodo's `POST /subscriptions/{id}/change-plan/preview` says a change would do, read
/// permissively from [`dodopayments::models::SubscriptionPreviewChangePlanResponse`]
/// (`immediate_charge.summary`, `new_plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChangePreview {
    /// `immediate_charge.summary.total_amount`: charged now, in the smallest currency unit.
    pub charged_now: i64,
    /// `immediate_charge.summary.currency`.
    pub currency: String,
    /// `new_plan.product_id`.
    pub new_product_id: Option<String>,
    /// `new_plan.next_billing_date`, unix seconds.
    pub next_billing_date: Option<i64>,
    /// `new_plan.recurring_pre_tax_amount`: what each period costs after the change, in the
    /// smallest unit of `new_plan.currency`.
    pub recurring_amount: Option<i64>,
    /// `new_plan.currency`.
    pub recurring_currency: Option<String>,
    /// `new_plan.payment_frequency_interval` (`Day`, `Week`, `Month`, `Year`).
    pub interval: Option<String>,
    /// `new_plan.payment_frequency_count`: how many intervals one period lasts.
    pub interval_count: Option<i64>,
    /// `new_plan.payment_method_id`: the card the subscription is charged to.
    pub payment_method_id: Option<String>,
    /// `new_plan.customer.customer_id`.
    pub customer_id: Option<String>,
}

/// A saved card as Dodo's `GET /customers/{id}/payment-methods` describes it
/// (`items[].card`): its network and last four digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardOnFile {
    /// `card.card_network`, e.g. `VISA`.
    pub network: String,
    /// `card.last4_digits`.
    pub last_four: String,
}

/// What a subscription product costs each period (`price` of `GET /products/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurringPrice {
    /// `price.price`, in the smallest unit of `currency`.
    pub amount: i64,
    /// `price.currency`.
    pub currency: String,
    /// `price.payment_frequency_interval` (`Day`, `Week`, `Month`, `Year`).
    pub interval: String,
    /// `price.payment_frequency_count`.
    pub interval_count: i64,
}

impl PlanChangePreview {
    /// The new plan's recurring price when the preview carries it: an immediate change's
    /// `new_plan` is already the new product.
    pub fn new_price(&self, product_id: &str) -> Option<RecurringPrice> {
        if self.new_product_id.as_deref() != Some(product_id) {
            return None;
        }
        Some(RecurringPrice {
            amount: self.recurring_amount?,
            currency: self
                .recurring_currency
                .clone()
                .unwrap_or_else(|| self.currency.clone()),
            interval: self.interval.clone().unwrap_or_else(|| "Month".to_owned()),
            interval_count: self.interval_count.unwrap_or(1),
        })
    }

    fn from_answer(answer: &Value) -> Result<Self, DodoApiError> {
        let summary = &answer["immediate_charge"]["summary"];
        let charged_now = summary["total_amount"].as_i64().ok_or_else(|| {
            DodoApiError::Unavailable("preview without immediate_charge.summary".to_owned())
        })?;
        let date = |value: &Value| {
            value
                .as_str()
                .and_then(llmxt_domain::time::parse_rfc3339_seconds)
        };
        let new_plan = &answer["new_plan"];
        let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(Self {
            charged_now,
            currency: summary["currency"].as_str().unwrap_or_default().to_owned(),
            new_product_id: answer["new_plan"]["product_id"].as_str().map(str::to_owned),
            next_billing_date: date(&answer["new_plan"]["next_billing_date"]),
            recurring_amount: new_plan["recurring_pre_tax_amount"].as_i64(),
            recurring_currency: text(&new_plan["currency"]),
            interval: text(&new_plan["payment_frequency_interval"]),
            interval_count: new_plan["payment_frequency_count"].as_i64(),
            payment_method_id: text(&new_plan["payment_method_id"]),
            customer_id: text(&new_plan["customer"]["customer_id"]),
        })
    }
}

/// The request of a plan change or its preview, in the SDK's type: `product_id`, `quantity`
/// 1, `proration_billing_mode`, `effective_at` (`immediately` or `next_billing_date`), and,
/// for the change itself, where a payment page returns to.
pub fn plan_change_request(
    product_id: &str,
    proration_billing_mode: &str,
    effective_at: &str,
    return_url: Option<&str>,
) -> dodopayments::models::SubscriptionsChangePlanParams {
    dodopayments::models::SubscriptionsChangePlanParams {
        product_id: Some(product_id.to_owned()),
        quantity: Some(1),
        proration_billing_mode: Some(proration_billing_mode.to_owned()),
        effective_at: Some(effective_at.to_owned()),
        return_url: return_url.map(str::to_owned),
        ..Default::default()
    }
}

impl DodoApi {
    /// `POST /subscriptions/{id}/change-plan/preview`: what the change would charge now.
    pub async fn preview_change_plan(
        &self,
        subscription_id: &str,
        request: &dodopayments::models::SubscriptionsChangePlanParams,
    ) -> Result<PlanChangePreview, DodoApiError> {
        let path = format!("/subscriptions/{subscription_id}/change-plan/preview");
        let body =
            serde_json::to_value(request).map_err(|e| DodoApiError::Unavailable(e.to_string()))?;
        let answer = self
            .call(reqwest::Method::POST, &path, &[], Some(&body))
            .await?;
        PlanChangePreview::from_answer(&answer)
    }

    /// `GET /customers/{id}/payment-methods`: the saved card `payment_method_id` names, when
    /// Dodo lists one with a network and last four digits.
    pub async fn card_on_file(
        &self,
        customer_id: &str,
        payment_method_id: &str,
    ) -> Result<Option<CardOnFile>, DodoApiError> {
        let path = format!("/customers/{customer_id}/payment-methods");
        let answer = self.call(reqwest::Method::GET, &path, &[], None).await?;
        let answer: dodopayments::models::CustomerRetrievePaymentMethodsResponse =
            serde_json::from_value(answer).map_err(|_| {
                DodoApiError::Unavailable("unreadable payment-methods answer".to_owned())
            })?;
        Ok(answer
            .items
            .iter()
            .find(|item| item["payment_method_id"].as_str() == Some(payment_method_id))
            .and_then(|item| {
                let card = &item["card"];
                let network = card["card_network"].as_str()?.trim();
                let last_four = card["last4_digits"].as_str()?.trim();
                (!network.is_empty()
                    && last_four.len() == 4
                    && last_four.bytes().all(|b| b.is_ascii_digit()))
                .then(|| CardOnFile {
                    network: network.to_owned(),
                    last_four: last_four.to_owned(),
                })
            }))
    }

    /// `GET /products/{id}`: the product's recurring price (`None` for a one-time price or a
    /// price Dodo describes in another form).
    pub async fn recurring_price(
        &self,
        product_id: &str,
    ) -> Result<Option<RecurringPrice>, DodoApiError> {
        let path = format!("/products/{product_id}");
        let answer = self.call(reqwest::Method::GET, &path, &[], None).await?;
        let product: dodopayments::models::Product = serde_json::from_value(answer)
            .map_err(|_| DodoApiError::Unavailable("unreadable product answer".to_owned()))?;
        let price = match *product.price {
            dodopayments::models::Price::Variant0(v)
            | dodopayments::models::Price::Variant1(v)
            | dodopayments::models::Price::Variant2(v) => v,
        };
        if price["type"].as_str() != Some("recurring_price") {
            return Ok(None);
        }
        Ok((|| {
            Some(RecurringPrice {
                amount: price["price"].as_i64()?,
                currency: price["currency"].as_str()?.to_owned(),
                interval: price["payment_frequency_interval"].as_str()?.to_owned(),
                interval_count: price["payment_frequency_count"].as_i64().unwrap_or(1),
            })
        })())
    }

    /// `POST /subscriptions/{id}/change-plan`. A `payment_link` in the answer means the buyer
    /// must pay there before the change happens.
    pub async fn change_plan(
        &self,
        subscription_id: &str,
        request: &dodopayments::models::SubscriptionsChangePlanParams,
    ) -> Result<dodopayments::models::SubscriptionChangePlanResponse, DodoApiError> {
        let path = format!("/subscriptions/{subscription_id}/change-plan");
        let body =
            serde_json::to_value(request).map_err(|e| DodoApiError::Unavailable(e.to_string()))?;
        let answer = self
            .call(reqwest::Method::POST, &path, &[], Some(&body))
            .await?;
        serde_json::from_value(answer)
            .map_err(|_| DodoApiError::Unavailable("unreadable change-plan answer".to_owned()))
    }
}

/// An object read from the API, as the event the ledger applies: `kind` is `payment` or
/// `subscription`; the event type names its status and origin.
pub fn api_event(kind: &str, object: Value) -> Result<DodoEvent, EventParseError> {
    let status = object
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("read")
        .to_ascii_lowercase();
    let mut data = object;
    if let Value::Object(map) = &mut data {
        map.insert("payload_type".to_owned(), Value::from(kind));
    }
    let event = serde_json::json!({
        "type": format!("{kind}.{status}"),
        "data": data,
    });
    parse_event(event.to_string().as_bytes())
}

/// Applies an object read from the API (`kind`: `payment` or `subscription`) through the
/// ledger, exactly as a delivery: recorded as coming from the API, its freshness the time of
/// the read (`now`), deduplicated under `read_id`. An object the parser cannot read is
/// ignored.
pub async fn apply_api_object(
    store: &llmxt_store::store::Store,
    settings: llmxt_domain::policy::PolicySettings<'_>,
    kind: &str,
    object: Value,
    read_id: &str,
    now: i64,
) -> Result<llmxt_store::ledger::Outcome, llmxt_store::store::StoreError> {
    let Ok(event) = api_event(kind, object) else {
        return Ok(llmxt_store::ledger::Outcome::Ignored(
            "unreadable API object",
        ));
    };
    let delivery = llmxt_store::ledger::Delivery {
        webhook_id: read_id,
        origin: llmxt_store::ledger::Origin::Api,
        webhook_timestamp: now,
        received_at: now,
    };
    llmxt_store::ledger::apply_delivery(store, settings, delivery, &event).await
}

/// The status of a payment read from the API, lower-cased.
pub fn payment_status(object: &Value) -> String {
    object
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase()
}
