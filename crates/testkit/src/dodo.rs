//! A stand-in for Dodo's API, written to the public types of the official SDK: Bearer auth,
//! `{"code","message"}` errors, `{"items":[…]}` lists in 0-based pages of at most 100, and
//! payment and subscription objects the SDK's typed models accept (with numeric and boolean
//! metadata). It also serves a hosted checkout page and a customer portal page, so that the
//! whole purchase can be clicked through locally (`dodo-local`, started by scripts/dev.sh).
//! Its ids carry the run's start time (a restart never repeats one that a database may still
//! hold) and a hosted-checkout payment is created at the current time.
//!
//! Faults for tests: down (503), slow, and `429` for the next N calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use llmxt_domain::webhook_signature::{self, WebhookSecrets};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::dodo_body;

/// How the stand-in is reached and what it does on a hosted-checkout payment.
#[derive(Clone)]
pub struct StandInOptions {
    /// The API key callers must present (`Authorization: Bearer …`).
    pub api_key: String,
    /// Where the hosted checkout posts the signed `payment.succeeded` webhook.
    pub webhook_url: Option<String>,
    /// The secret it signs webhooks with.
    pub webhook_secret: Option<String>,
}

#[derive(Default)]
struct State {
    payments: BTreeMap<String, Value>,
    subscriptions: BTreeMap<String, Value>,
    checkouts: BTreeMap<String, Value>,
    portal_sessions: Vec<(String, String)>,
    requests: Vec<String>,
    down: bool,
    delay_ms: u64,
    rate_limited: u32,
    counter: u64,
    run: String,
    subscription_products: Vec<String>,
    unavailable_products: Vec<String>,
    prices: BTreeMap<String, i64>,
    payment_link_for_changes: bool,
    plan_changes: Vec<(String, Value)>,
}

/// Price of a product without [`DodoStandIn::set_price`], in cents.
pub const DEFAULT_PRICE: i64 = 1000;

/// Length of a subscription period the stand-in bills.
pub const PERIOD_SECONDS: i64 = 30 * 86_400;

/// A running stand-in on 127.0.0.1.
#[derive(Clone)]
pub struct DodoStandIn {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    options: StandInOptions,
    state: Arc<Mutex<State>>,
}

/// The API key tests use.
pub const TEST_API_KEY: &str = "test-dodo-api-key";

impl DodoStandIn {
    /// Starts one on a free port.
    pub async fn start(options: StandInOptions) -> Self {
        Self::start_on(options, 0).await
    }

    /// Starts one on `port` (0: any free port).
    pub async fn start_on(options: StandInOptions, port: u16) -> Self {
        Self::bind(options, port).await.unwrap()
    }

    /// Starts one on `port` (0: any free port), or says why it cannot listen there.
    pub async fn bind(options: StandInOptions, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let stand_in = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            options,
            state: Arc::new(Mutex::new(State {
                run: run_id(),
                ..State::default()
            })),
        };
        crate::serve_http(listener, stand_in.clone(), |server, request| async move {
            server.answer(request).await
        });
        Ok(stand_in)
    }

    /// With [`TEST_API_KEY`] and no webhook target.
    pub async fn for_tests() -> Self {
        Self::start(StandInOptions {
            api_key: TEST_API_KEY.to_owned(),
            webhook_url: None,
            webhook_secret: None,
        })
        .await
    }

    /// Stores a payment object (as [`payment_object`] builds them).
    pub fn add_payment(&self, payment: Value) {
        let id = payment["payment_id"].as_str().unwrap().to_owned();
        self.state.lock().unwrap().payments.insert(id, payment);
    }

    /// Stores a subscription object.
    pub fn add_subscription(&self, subscription: Value) {
        let id = subscription["subscription_id"].as_str().unwrap().to_owned();
        self.state
            .lock()
            .unwrap()
            .subscriptions
            .insert(id, subscription);
    }

    /// Answers `503` to everything while `down`.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Holds every answer back by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay_ms = delay.as_millis() as u64;
    }

    /// Answers `429` (with `Retry-After: 0`) to the next `calls` API calls.
    pub fn rate_limit_next(&self, calls: u32) {
        self.state.lock().unwrap().rate_limited = calls;
    }

    /// Every API call received (`METHOD /path?query`), in order; clears the list.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }

    /// The bodies of the Checkout Sessions created, by session id.
    pub fn checkouts(&self) -> BTreeMap<String, Value> {
        self.state.lock().unwrap().checkouts.clone()
    }

    /// The portal sessions created: (customer id, return URL).
    pub fn portal_sessions(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().portal_sessions.clone()
    }

    /// Products the hosted checkout sells as monthly subscriptions (others are one-time).
    pub fn set_subscription_products(&self, products: &[&str]) {
        self.state.lock().unwrap().subscription_products =
            products.iter().map(|p| (*p).to_owned()).collect();
    }

    /// Checkout sessions for these products fail with a 500, as when Dodo is down.
    pub fn set_unavailable_products(&self, products: &[&str]) {
        self.state.lock().unwrap().unavailable_products =
            products.iter().map(|p| (*p).to_owned()).collect();
    }

    /// The recurring price of `product`, in cents.
    pub fn set_price(&self, product: &str, cents: i64) {
        self.state
            .lock()
            .unwrap()
            .prices
            .insert(product.to_owned(), cents);
    }

    /// While set, a plan change answers with a `payment_link` and changes nothing.
    pub fn require_payment_for_changes(&self, required: bool) {
        self.state.lock().unwrap().payment_link_for_changes = required;
    }

    /// The plan-change requests received (`preview` or `change`, body), in order.
    pub fn plan_changes(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().plan_changes.clone()
    }

    /// A stored subscription object.
    pub fn subscription(&self, subscription_id: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .subscriptions
            .get(subscription_id)
            .cloned()
    }

    fn price(&self, product: &str) -> i64 {
        self.state
            .lock()
            .unwrap()
            .prices
            .get(product)
            .copied()
            .unwrap_or(DEFAULT_PRICE)
    }

    /// A new monthly subscription of `product` for `email`, paid now: stores the subscription
    /// and its first payment and sends `subscription.active` and `payment.succeeded`.
    /// Returns (subscription id, payment id).
    pub async fn subscribe(&self, email: &str, product: &str) -> (String, String) {
        self.subscribe_with(email, product, true, |_| {}).await
    }

    async fn subscribe_with(
        &self,
        email: &str,
        product: &str,
        send_webhooks: bool,
        edit_payment: impl FnOnce(&mut Value),
    ) -> (String, String) {
        let now = llmxt_domain::time::unix_now();
        let subscription_id = self.next_id("sub");
        let payment_id = self.next_id("pay");
        let mut subscription = subscription_object(
            &subscription_id,
            email,
            "active",
            product,
            &llmxt_domain::time::format_rfc3339(now + PERIOD_SECONDS),
        );
        subscription["previous_billing_date"] = json!(llmxt_domain::time::format_rfc3339(now));
        subscription["created_at"] = json!(llmxt_domain::time::format_rfc3339(now));
        let customer_id = format!("cus_{}", email.split('@').next().unwrap_or("x"));
        subscription["payment_method_id"] = json!(format!("pm_{customer_id}"));
        subscription["customer"]["customer_id"] = json!(customer_id);
        subscription["recurring_pre_tax_amount"] = json!(self.price(product));
        subscription["trial_period_days"] = json!(0);
        subscription["scheduled_change"] = Value::Null;
        let price = self.price(product);
        let payment = payment_object(
            &payment_id,
            email,
            "succeeded",
            product,
            Some(&subscription_id),
            |p| {
                p["total_amount"] = json!(price);
                p["created_at"] = json!(llmxt_domain::time::format_rfc3339(now));
                edit_payment(p);
            },
        );
        self.add_subscription(subscription.clone());
        self.add_payment(payment.clone());
        if send_webhooks {
            self.send_webhook("subscription.active", &subscription)
                .await;
            self.send_webhook("payment.succeeded", &payment).await;
        }
        (subscription_id, payment_id)
    }

    /// Changes a subscription as Dodo would (`edit`), then sends `event_type` with the new
    /// snapshot: e.g. status `paused` with `subscription.paused`.
    pub async fn update_subscription(
        &self,
        subscription_id: &str,
        event_type: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Value {
        let snapshot = {
            let mut state = self.state.lock().unwrap();
            let subscription = state.subscriptions.get_mut(subscription_id).unwrap();
            edit(subscription);
            subscription.clone()
        };
        self.send_webhook(event_type, &snapshot).await;
        snapshot
    }

    /// The paid period ends and the subscription renews: a scheduled change takes effect,
    /// the period moves on a month, the renewal is paid. Sends `subscription.renewed` (and
    /// `subscription.plan_changed` when a scheduled change applied) and `payment.succeeded`.
    pub async fn renew(&self, subscription_id: &str) {
        let (snapshot, plan_changed) = {
            let mut state = self.state.lock().unwrap();
            let subscription = state.subscriptions.get_mut(subscription_id).unwrap();
            let plan_changed = subscription["scheduled_change"].is_object();
            if plan_changed {
                subscription["product_id"] = subscription["scheduled_change"]["product_id"].clone();
                subscription["scheduled_change"] = Value::Null;
            }
            let end = subscription["next_billing_date"]
                .as_str()
                .and_then(llmxt_domain::time::parse_rfc3339_seconds)
                .unwrap_or_else(llmxt_domain::time::unix_now);
            subscription["previous_billing_date"] = json!(llmxt_domain::time::format_rfc3339(end));
            subscription["next_billing_date"] =
                json!(llmxt_domain::time::format_rfc3339(end + PERIOD_SECONDS));
            (subscription.clone(), plan_changed)
        };
        let product = snapshot["product_id"].as_str().unwrap_or("").to_owned();
        let email = snapshot["customer"]["email"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let payment_id = self.next_id("pay");
        let price = self.price(&product);
        let payment = payment_object(
            &payment_id,
            &email,
            "succeeded",
            &product,
            Some(subscription_id),
            |p| {
                p["total_amount"] = json!(price);
                p["created_at"] = json!(llmxt_domain::time::format_rfc3339(
                    llmxt_domain::time::unix_now()
                ));
            },
        );
        self.add_payment(payment.clone());
        if plan_changed {
            self.send_webhook("subscription.plan_changed", &snapshot)
                .await;
        }
        self.send_webhook("subscription.renewed", &snapshot).await;
        self.send_webhook("payment.succeeded", &payment).await;
    }

    /// `POST /subscriptions/{id}/change-plan[/preview]`, to the SDK's
    /// `SubscriptionsChangePlanParams`: `product_id`, `quantity` and
    /// `proration_billing_mode` required. An immediate change is charged (per
    /// `proration_billing_mode`) and applied, with `subscription.plan_changed` and
    /// `payment.succeeded` sent; a change at `next_billing_date` is recorded as the
    /// subscription's `scheduled_change` (sent as `subscription.updated`) and applied by
    /// [`DodoStandIn::renew`].
    async fn change_plan(
        &self,
        subscription_id: &str,
        body: &[u8],
        apply: bool,
    ) -> Response<Full<Bytes>> {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REQUEST",
                "body is not JSON",
            );
        };
        self.state.lock().unwrap().plan_changes.push((
            if apply { "change" } else { "preview" }.to_owned(),
            request.clone(),
        ));
        let (Some(product), Some(mode), Some(1)) = (
            request["product_id"].as_str(),
            request["proration_billing_mode"].as_str(),
            request["quantity"].as_i64(),
        ) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REQUEST",
                "product_id, proration_billing_mode and quantity 1 are required",
            );
        };
        let immediately = match request["effective_at"].as_str() {
            None | Some("immediately") => true,
            Some("next_billing_date") => false,
            Some(_) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "INVALID_REQUEST",
                    "effective_at must be immediately or next_billing_date",
                );
            }
        };
        let Some(current) = self.subscription(subscription_id) else {
            return error(StatusCode::NOT_FOUND, "NOT_FOUND", "subscription not found");
        };
        if current["status"].as_str() != Some("active") {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REQUEST",
                "only an active subscription can change plan",
            );
        }
        let now = llmxt_domain::time::unix_now();
        let date = |field: &str| {
            current[field]
                .as_str()
                .and_then(llmxt_domain::time::parse_rfc3339_seconds)
                .unwrap_or(now)
        };
        let (start, end) = (date("previous_billing_date"), date("next_billing_date"));
        let old_price = self.price(current["product_id"].as_str().unwrap_or(""));
        let new_price = self.price(product);
        let difference = (new_price - old_price).max(0);
        let charge = if !immediately {
            0
        } else {
            match mode {
                "full_immediately" => new_price,
                "difference_immediately" => difference,
                "prorated_immediately" => {
                    let day = 86_400;
                    let remaining_days = (end - now + day - 1).max(0) / day;
                    let period_days = ((end - start) / day).max(1);
                    difference * remaining_days.min(period_days) / period_days
                }
                _ => {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "INVALID_REQUEST",
                        "unknown proration_billing_mode",
                    );
                }
            }
        };
        let mut new_plan = current.clone();
        if immediately {
            new_plan["product_id"] = json!(product);
            new_plan["recurring_pre_tax_amount"] = json!(new_price);
            new_plan["scheduled_change"] = Value::Null;
        } else {
            new_plan["scheduled_change"] = json!({
                "id": self.next_id("spc"),
                "addons": [],
                "created_at": llmxt_domain::time::format_rfc3339(now),
                "effective_at": current["next_billing_date"],
                "product_id": product,
                "quantity": 1,
                "product_description": null,
                "product_name": null,
            });
        }
        let currency = current["currency"].as_str().unwrap_or("USD").to_owned();
        if !apply {
            return ok(json!({
                "immediate_charge": {
                    "line_items": [{
                        "currency": currency,
                        "id": subscription_id,
                        "product_id": product,
                        "proration_factor": 1,
                        "quantity": 1,
                        "tax_inclusive": true,
                        "type": "subscription",
                        "unit_price": charge,
                    }],
                    "summary": {
                        "currency": currency,
                        "customer_credits": 0,
                        "settlement_amount": charge,
                        "settlement_currency": currency,
                        "total_amount": charge,
                        "tax": 0,
                    },
                },
                "new_plan": new_plan,
            }));
        }
        let payment_link = self.state.lock().unwrap().payment_link_for_changes;
        let payment_id = (immediately && charge > 0).then(|| self.next_id("pay"));
        if payment_link {
            let link = format!(
                "{}/checkout/plan-change/{subscription_id}?return_url={}",
                self.base_url,
                encode(request["return_url"].as_str().unwrap_or(""))
            );
            return ok(json!({
                "payment_id": payment_id,
                "payment_link": link,
                "client_secret": null,
                "expires_on": null,
            }));
        }
        self.add_subscription(new_plan.clone());
        let payment = payment_id.as_ref().map(|payment_id| {
            let email = current["customer"]["email"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            payment_object(
                payment_id,
                &email,
                "succeeded",
                product,
                Some(subscription_id),
                |p| {
                    p["total_amount"] = json!(charge);
                    p["created_at"] = json!(llmxt_domain::time::format_rfc3339(now));
                },
            )
        });
        if let Some(payment) = &payment {
            self.add_payment(payment.clone());
        }
        // Dodo answers first and delivers the webhooks on its own time.
        let stand_in = self.clone();
        tokio::spawn(async move {
            let event = if immediately {
                "subscription.plan_changed"
            } else {
                "subscription.updated"
            };
            stand_in.send_webhook(event, &new_plan).await;
            if let Some(payment) = payment {
                stand_in.send_webhook("payment.succeeded", &payment).await;
            }
        });
        ok(json!({
            "payment_id": payment_id,
            "payment_link": null,
            "client_secret": null,
            "expires_on": null,
        }))
    }

    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        let authorised = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {}", self.options.api_key).as_str());
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let params = parse_query(&query);
        if path.starts_with("/checkout/") || path.starts_with("/portal/") {
            return self.hosted_page(&method, &path, &params, &body).await;
        }
        let (delay, down, limited) = {
            let mut state = self.state.lock().unwrap();
            state.requests.push(if query.is_empty() {
                format!("{method} {path}")
            } else {
                format!("{method} {path}?{query}")
            });
            let limited = state.rate_limited > 0;
            state.rate_limited = state.rate_limited.saturating_sub(1);
            (state.delay_ms, state.down, limited)
        };
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if down {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "try again later",
            );
        }
        if !authorised {
            return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid API key");
        }
        if limited {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "slow down");
            response
                .headers_mut()
                .insert("retry-after", "0".parse().unwrap());
            return response;
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let state = &self.state;
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["payments", id]) => match state.lock().unwrap().payments.get(*id) {
                Some(payment) => ok(payment.clone()),
                None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "payment not found"),
            },
            ("GET", ["subscriptions", id]) => match state.lock().unwrap().subscriptions.get(*id) {
                Some(subscription) => ok(subscription.clone()),
                None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "subscription not found"),
            },
            ("GET", ["payments"]) => {
                let all: Vec<Value> = state.lock().unwrap().payments.values().cloned().collect();
                list(all, &params, payment_list_item)
            }
            ("GET", ["subscriptions"]) => {
                let all: Vec<Value> = state
                    .lock()
                    .unwrap()
                    .subscriptions
                    .values()
                    .cloned()
                    .collect();
                list(all, &params, Value::clone)
            }
            ("POST", ["checkouts"]) => self.create_checkout(&body),
            ("POST", ["subscriptions", id, "change-plan", "preview"]) => {
                self.change_plan(id, &body, false).await
            }
            ("POST", ["subscriptions", id, "change-plan"]) => {
                self.change_plan(id, &body, true).await
            }
            ("GET", ["customers", customer_id, "payment-methods"]) => {
                ok(self.payment_methods(customer_id))
            }
            ("GET", ["products", id]) => ok(self.product(id)),
            ("POST", ["customers", customer_id, "customer-portal", "session"]) => {
                let Some(return_url) = params.get("return_url") else {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "INVALID_REQUEST",
                        "return_url is required",
                    );
                };
                state
                    .lock()
                    .unwrap()
                    .portal_sessions
                    .push(((*customer_id).to_owned(), return_url.clone()));
                let link = format!(
                    "{}/portal/{customer_id}?return_url={}",
                    self.base_url,
                    encode(return_url)
                );
                ok(json!({ "link": link }))
            }
            _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route"),
        }
    }

    /// `GET /products/{id}`, to the SDK's `Product`: a monthly recurring price of the
    /// product's price (`set_price`) in USD.
    fn product(&self, product_id: &str) -> Value {
        let now = llmxt_domain::time::format_rfc3339(llmxt_domain::time::unix_now());
        json!({
            "product_id": product_id,
            "brand_id": "bnd_test",
            "business_id": "bus_test",
            "created_at": now,
            "updated_at": now,
            "credit_entitlements": [],
            "entitlements": [],
            "is_recurring": true,
            "license_key_enabled": false,
            "metadata": {},
            "tax_category": "saas",
            "name": product_id,
            "price": {
                "type": "recurring_price",
                "price": self.price(product_id),
                "currency": "USD",
                "discount": 0,
                "purchasing_power_parity": false,
                "payment_frequency_count": 1,
                "payment_frequency_interval": "Month",
                "subscription_period_count": 1,
                "subscription_period_interval": "Year",
                "tax_inclusive": false,
                "trial_period_days": 0
            }
        })
    }

    /// `GET /customers/{id}/payment-methods`, to the SDK's
    /// `CustomerRetrievePaymentMethodsResponse`: one saved Visa card ending 4242 for each
    /// `payment_method_id` of the customer's subscriptions.
    fn payment_methods(&self, customer_id: &str) -> Value {
        let state = self.state.lock().unwrap();
        let mut ids: Vec<&str> = state
            .subscriptions
            .values()
            .filter(|s| s["customer"]["customer_id"].as_str() == Some(customer_id))
            .filter_map(|s| s["payment_method_id"].as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let items: Vec<Value> = ids
            .into_iter()
            .map(|id| {
                json!({
                    "payment_method": "card",
                    "payment_method_id": id,
                    "card": {
                        "card_holder_name": null,
                        "card_issuing_country": "US",
                        "card_network": "VISA",
                        "card_type": "CREDIT",
                        "expiry_month": "12",
                        "expiry_year": "2030",
                        "last4_digits": "4242",
                    },
                    "last_used_at": null,
                    "payment_method_type": "credit",
                    "recurring_enabled": true,
                })
            })
            .collect();
        json!({ "items": items })
    }

    fn create_checkout(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REQUEST",
                "body is not JSON",
            );
        };
        let valid_cart = request["product_cart"].as_array().is_some_and(|cart| {
            !cart.is_empty() && cart.iter().all(|item| item["product_id"].is_string())
        });
        if !valid_cart {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REQUEST",
                "product_cart is required",
            );
        }
        let unavailable = {
            let state = self.state.lock().unwrap();
            request["product_cart"][0]["product_id"]
                .as_str()
                .is_some_and(|p| state.unavailable_products.iter().any(|u| u == p))
        };
        if unavailable {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "the stand-in plays a provider outage for this product",
            );
        }
        let session_id = self.next_id("cks");
        let mut state = self.state.lock().unwrap();
        state.checkouts.insert(session_id.clone(), request);
        ok(json!({
            "session_id": session_id,
            "checkout_url": format!("{}/checkout/{session_id}", self.base_url),
        }))
    }

    /// The hosted checkout (`/checkout/{session}`, with **Pay** and **Pay, but lose the
    /// webhook**) and the customer portal (`/portal/{customer}`).
    async fn hosted_page(
        &self,
        method: &str,
        path: &str,
        params: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        if let Some(rest) = path.strip_prefix("/portal/") {
            return self.portal(method, rest, params, body).await;
        }
        let rest = path.trim_start_matches("/checkout/");
        let (session_id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(session) = self
            .state
            .lock()
            .unwrap()
            .checkouts
            .get(session_id)
            .cloned()
        else {
            return error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such checkout session",
            );
        };
        let product = session["product_cart"][0]["product_id"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if method == "GET" {
            let email = session["customer"]["email"]
                .as_str()
                .unwrap_or("buyer@example.com");
            return html(&format!(
                "<h1>Dodo Payments (local stand-in)</h1><p>Checkout for <code>{}</code></p>\
                 <form method=\"post\" action=\"/checkout/{session_id}/pay\">\
                 <label>Email <input name=\"email\" type=\"email\" value=\"{}\" required></label>\
                 <p><button name=\"webhook\" value=\"send\">Pay</button> \
                 <button name=\"webhook\" value=\"lose\">Pay, but lose the webhook</button> \
                 <button name=\"webhook\" value=\"decline\">Decline the card</button></p></form>",
                escape(&product),
                escape(email)
            ));
        }
        if method != "POST" || action != "pay" {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "use the form",
            );
        }
        let form = parse_query(&String::from_utf8_lossy(body));
        let email = form
            .get("email")
            .cloned()
            .unwrap_or_else(|| "buyer@example.com".to_owned());
        let metadata = session["metadata"].clone();
        let return_url = session["return_url"].as_str().unwrap_or("/").to_owned();
        let separator = if return_url.contains('?') { '&' } else { '?' };
        if form.get("webhook").map(String::as_str) == Some("decline") {
            // A declined card: a failed payment, `payment.failed`, back with `status=failed`.
            let payment_id = self.next_id("pay");
            let payment = payment_object(&payment_id, &email, "failed", &product, None, |p| {
                p["checkout_session_id"] = json!(session_id);
                p["error_code"] = json!("CARD_DECLINED");
                p["error_message"] = json!("The card was declined");
            });
            self.add_payment(payment.clone());
            self.send_webhook("payment.failed", &payment).await;
            return see_other(&format!(
                "{return_url}{separator}payment_id={payment_id}&status=failed"
            ));
        }
        let sells_subscription = self
            .state
            .lock()
            .unwrap()
            .subscription_products
            .contains(&product);
        if sells_subscription {
            let send = form.get("webhook").map(String::as_str) != Some("lose");
            let (_, payment_id) = self
                .subscribe_with(&email, &product, send, |p| {
                    if metadata.is_object() {
                        p["metadata"] = metadata.clone();
                    }
                    p["checkout_session_id"] = json!(session_id);
                })
                .await;
            let location =
                format!("{return_url}{separator}payment_id={payment_id}&status=succeeded");
            return see_other(&location);
        }
        let payment_id = self.next_id("pay");
        let payment = payment_object(&payment_id, &email, "succeeded", &product, None, |p| {
            if metadata.is_object() {
                p["metadata"] = metadata.clone();
            }
            p["checkout_session_id"] = json!(session_id);
            p["created_at"] = json!(llmxt_domain::time::format_rfc3339(
                llmxt_domain::time::unix_now()
            ));
        });
        self.add_payment(payment.clone());
        if form.get("webhook").map(String::as_str) != Some("lose") {
            self.send_webhook("payment.succeeded", &payment).await;
        }
        let location = format!("{return_url}{separator}payment_id={payment_id}&status=succeeded");
        see_other(&location)
    }

    /// The customer portal (`/portal/{customer}`): the customer's subscriptions, each with
    /// **Cancel at the end of the period** or **Resume**. Either sets the subscription's
    /// `cancel_at_next_billing_date` and sends a signed `subscription.updated`, as Dodo does;
    /// the status stays `active` until the period ends.
    async fn portal(
        &self,
        method: &str,
        rest: &str,
        params: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let (customer_id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let back = params.get("return_url").cloned().unwrap_or_default();
        if method == "POST" {
            let form = parse_query(&String::from_utf8_lossy(body));
            let cancel = match action {
                "cancel" => true,
                "resume" => false,
                _ => return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such action"),
            };
            let subscription_id = form.get("subscription_id").cloned().unwrap_or_default();
            let owned = self
                .state
                .lock()
                .unwrap()
                .subscriptions
                .get(&subscription_id)
                .is_some_and(|s| s["customer"]["customer_id"] == json!(customer_id));
            if !owned {
                return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such subscription");
            }
            self.update_subscription(&subscription_id, "subscription.updated", |s| {
                s["cancel_at_next_billing_date"] = json!(cancel);
            })
            .await;
            return see_other(&format!(
                "/portal/{}?return_url={}",
                encode(customer_id),
                encode(&back)
            ));
        }
        let subscriptions: Vec<Value> = self
            .state
            .lock()
            .unwrap()
            .subscriptions
            .values()
            .filter(|s| s["customer"]["customer_id"] == json!(customer_id))
            .cloned()
            .collect();
        let mut rows = String::new();
        for subscription in &subscriptions {
            let id = subscription["subscription_id"].as_str().unwrap_or("");
            let ends = subscription["next_billing_date"].as_str().unwrap_or("");
            let cancelling = subscription["cancel_at_next_billing_date"] == json!(true);
            let (state, action, label) = if cancelling {
                (format!("cancelled, ends {ends}"), "resume", "Resume")
            } else {
                (
                    format!("active, renews {ends}"),
                    "cancel",
                    "Cancel at the end of the period",
                )
            };
            rows.push_str(&format!(
                "<li><code>{}</code> ({}): <span class=\"state\">{}</span> \
                 <form method=\"post\" action=\"/portal/{}/{action}?return_url={}\">\
                 <input type=\"hidden\" name=\"subscription_id\" value=\"{}\">\
                 <button>{label}</button></form></li>",
                escape(id),
                escape(subscription["product_id"].as_str().unwrap_or("")),
                escape(&state),
                escape(customer_id),
                escape(&encode(&back)),
                escape(id),
            ));
        }
        html(&format!(
            "<h1>Customer portal</h1><p>Billing for <code>{}</code>: invoices, payment \
             method, subscriptions.</p><ul>{rows}</ul><p><a id=\"back\" href=\"{}\">Back to the site</a></p>",
            escape(customer_id),
            escape(&back)
        ))
    }

    /// A new id with `prefix` (`pay`, `cks`, `msg`): a counter after this run's start time,
    /// so that a restarted stand-in never hands out an id an earlier run gave to something
    /// a database may still hold.
    fn next_id(&self, prefix: &str) -> String {
        let mut state = self.state.lock().unwrap();
        state.counter += 1;
        format!("{prefix}_local_{}_{}", state.run, state.counter)
    }

    /// Posts a signed delivery of `object` to the webhook URL, as Dodo would.
    pub async fn send_webhook(&self, event_type: &str, object: &Value) {
        let (Some(url), Some(secret)) = (&self.options.webhook_url, &self.options.webhook_secret)
        else {
            return;
        };
        let Ok(secrets) = WebhookSecrets::parse(secret) else {
            return;
        };
        let mut data = object.clone();
        data["payload_type"] = json!(if event_type.starts_with("subscription") {
            "Subscription"
        } else {
            "Payment"
        });
        let body = json!({
            "business_id": "bus_local",
            "type": event_type,
            "timestamp": llmxt_domain::time::format_rfc3339(llmxt_domain::time::unix_now()),
            "data": data,
        })
        .to_string();
        let id = self.next_id("msg");
        let now = llmxt_domain::time::unix_now();
        let signature = webhook_signature::sign(&secrets.keys()[0], &id, now, body.as_bytes());
        let _ = post(url, &id, now, &signature, body).await;
    }
}

async fn post(url: &str, id: &str, timestamp: i64, signature: &str, body: String) -> Option<u16> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    let response = tokio::time::timeout(Duration::from_secs(15), client.request(request))
        .await
        .ok()?
        .ok()?;
    Some(response.status().as_u16())
}

/// A payment object as `GET /payments/{id}` returns it (the SDK's `Payment`), from the
/// fixture, with `edit` applied. `subscription_id` fills both the old and the new
/// (`subscription_ids`) forms; metadata carries a number and a boolean.
pub fn payment_object(
    payment_id: &str,
    email: &str,
    status: &str,
    product_id: &str,
    subscription_id: Option<&str>,
    edit: impl FnOnce(&mut Value),
) -> Value {
    let mut event: Value =
        serde_json::from_str(&dodo_body("payment.succeeded.cli-generator", |_| {})).unwrap();
    let mut payment = event["data"].take();
    let object = payment.as_object_mut().unwrap();
    object.remove("payload_type");
    payment["payment_id"] = json!(payment_id);
    payment["status"] = json!(status);
    payment["customer"]["email"] = json!(email);
    payment["customer"]["customer_id"] =
        json!(format!("cus_{}", email.split('@').next().unwrap_or("x")));
    payment["product_cart"] = json!([{ "product_id": product_id, "quantity": 1 }]);
    payment["subscription_id"] = json!(subscription_id);
    payment["subscription_ids"] = json!(subscription_id.into_iter().collect::<Vec<_>>());
    payment["metadata"] = json!({ "source": "stand-in", "attempt": 1, "gift": false });
    for (field, value) in [
        ("includes_usage", json!(false)),
        ("is_multi_subscription", json!(false)),
        ("is_update_payment_method", json!(false)),
        ("payment_provider", json!("stripe")),
        ("retry_attempt", json!(0)),
        ("service_periods", json!([])),
    ] {
        payment[field] = value;
    }
    edit(&mut payment);
    payment
}

/// A subscription object as `GET /subscriptions/{id}` returns it (the SDK's `Subscription`).
pub fn subscription_object(
    subscription_id: &str,
    email: &str,
    status: &str,
    product_id: &str,
    next_billing_date: &str,
) -> Value {
    let mut event: Value =
        serde_json::from_str(&dodo_body("subscription.active.cli-generator", |_| {})).unwrap();
    let mut subscription = event["data"].take();
    subscription.as_object_mut().unwrap().remove("payload_type");
    subscription["subscription_id"] = json!(subscription_id);
    subscription["status"] = json!(status);
    subscription["customer"]["email"] = json!(email);
    subscription["product_id"] = json!(product_id);
    subscription["next_billing_date"] = json!(next_billing_date);
    subscription["metadata"] = json!({ "seats": 3, "trial": true });
    for (field, value) in [
        ("brand_id", json!("bdr_local")),
        ("credit_entitlement_cart", json!([])),
        ("meter_credit_entitlement_cart", json!([])),
        ("has_payment_method", json!(true)),
    ] {
        subscription[field] = value;
    }
    subscription
}

/// This run's start, in milliseconds since 1970, base 36 (8 characters until 2059).
fn run_id() -> String {
    let mut millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let mut digits = Vec::new();
    while millis > 0 || digits.is_empty() {
        digits.push(char::from_digit((millis % 36) as u32, 36).unwrap_or('0'));
        millis /= 36;
    }
    digits.iter().rev().collect()
}

/// What `GET /payments` lists for a payment: no `product_cart`, no billing or refunds.
fn payment_list_item(payment: &Value) -> Value {
    let mut item = payment.clone();
    if let Some(object) = item.as_object_mut() {
        for field in [
            "product_cart",
            "billing",
            "refunds",
            "disputes",
            "business_id",
            "is_update_payment_method",
            "settlement_amount",
            "settlement_currency",
        ] {
            object.remove(field);
        }
        object.insert("has_license_key".to_owned(), json!(false));
    }
    item
}

fn list(
    objects: Vec<Value>,
    params: &BTreeMap<String, String>,
    shape: fn(&Value) -> Value,
) -> Response<Full<Bytes>> {
    let page_size: usize = params
        .get("page_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let page_number: usize = params
        .get("page_number")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if !(1..=100).contains(&page_size) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST",
            "page_size must be from 1 to 100",
        );
    }
    let mut matching: Vec<&Value> = objects
        .iter()
        .filter(|o| {
            params
                .get("subscription_id")
                .is_none_or(|id| o["subscription_id"].as_str() == Some(id.as_str()))
                && params.get("created_at_gte").is_none_or(|since| {
                    o["created_at"]
                        .as_str()
                        .is_some_and(|at| at >= since.as_str())
                })
                && params
                    .get("customer_id")
                    .is_none_or(|id| o["customer"]["customer_id"].as_str() == Some(id.as_str()))
        })
        .collect();
    // Newest first, as Dodo lists.
    matching.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    let items: Vec<Value> = matching
        .into_iter()
        .skip(page_number * page_size)
        .take(page_size)
        .map(shape)
        .collect();
    ok(json!({ "items": items }))
}

fn see_other(location: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert("location", location.parse().unwrap());
    response
}

fn ok(body: Value) -> Response<Full<Bytes>> {
    respond(StatusCode::OK, "application/json", body.to_string())
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/json",
        json!({ "code": code, "message": message }).to_string(),
    )
}

fn html(body: &str) -> Response<Full<Bytes>> {
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Dodo Payments (local)</title></head>\
             <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem\">{body}</body></html>"
        ),
    )
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", content_type.parse().unwrap());
    response
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
