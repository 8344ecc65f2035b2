//! The measurements. Each prints a Markdown table to stdout.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use entitlement::config::EntitlementConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use llmxt_domain::config::Env;
use llmxt_domain::email::Email;
use llmxt_domain::records::{DeliveryRecord, Entitlement, PaymentRecord, source, status};
use llmxt_domain::time::unix_now;
use llmxt_store::item::StoredItem;
use llmxt_store::store::Store;
use llmxt_testkit::runtime_api::RuntimeApi;
use llmxt_testkit::{
    ApiGatewayEvent, TEST_ENTITLEMENT_SECRET, dodo_body, fresh_store, function_env,
    request_from_event, sign_webhook, webhook_event,
};
use serde_json::json;
use success_redirect::config::SuccessConfig;
use webhook::config::WebhookConfig;

const FUNCTIONS: [(&str, &str); 5] = [
    ("hello-lambda (lambda_http, no SDK)", "hello-lambda"),
    ("bare-lambda (lambda_http + same SDK client)", "bare-lambda"),
    ("webhook", "webhook"),
    ("success-redirect", "success-redirect"),
    ("entitlement", "entitlement"),
];

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub(crate) fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    let rank = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// Configuration for every function as deployed (no endpoint override: the default
/// credential and region chain, fed by the environment as on Lambda). Init contacts nothing.
fn offline_env() -> Vec<(&'static str, String)> {
    vec![
        (
            "DODO_WEBHOOK_SECRET",
            llmxt_testkit::TEST_WEBHOOK_SECRET.to_owned(),
        ),
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET.to_owned()),
        ("HMAC_SECRET", llmxt_testkit::TEST_HMAC_SECRET.to_owned()),
        ("NEXT_PUBLIC_SITE_URL", "https://pro.example.com".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
    ]
}

/// Init time: from spawning the process until its first Runtime API `next` request.
pub async fn init(bin_dir: &Path, runs: usize, node: Option<String>) {
    println!("| function | median init (ms) | p90 init (ms) | median vs bare-lambda |");
    println!("|---|---:|---:|---:|");
    let mut bare_median = None;
    let mut programs: Vec<(String, Command)> = FUNCTIONS
        .iter()
        .map(|(label, binary)| ((*label).to_owned(), Command::new(bin_dir.join(binary))))
        .collect();
    if let Some(dir) = node {
        let mut command = Command::new("node");
        command.arg(Path::new(&dir).join("index.mjs"));
        programs.push((
            "webhook, seed's Node stack (AWS SDK v3 + standardwebhooks)".to_owned(),
            command,
        ));
    }
    // Round-robin over the programs, so that the machine's noise falls on all of them alike.
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); programs.len()];
    for _ in 0..runs {
        for ((label, command), samples) in programs.iter().zip(samples.iter_mut()) {
            let api = RuntimeApi::start().await;
            let mut command_copy = Command::new(command.get_program());
            command_copy.args(command.get_args());
            let started = Instant::now();
            let process = api.spawn(command_copy, &offline_env());
            loop {
                if let Some(at) = api.first_next_request() {
                    samples.push(at - started);
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{label} never asked for work"
                );
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            drop(process);
        }
    }
    for ((label, _), samples) in programs.iter().zip(samples.iter_mut()) {
        let median = percentile(samples, 0.5);
        let p90 = percentile(samples, 0.9);
        if label.starts_with("bare-lambda") {
            bare_median = Some(median);
        }
        let ratio = bare_median.map_or("—".to_owned(), |bare| {
            format!("{:.2}×", median.as_secs_f64() / bare.as_secs_f64())
        });
        println!(
            "| {label} | {:.2} | {:.2} | {ratio} |",
            millis(median),
            millis(p90)
        );
    }
}

/// Init instruction count under callgrind: the process is pointed at a closed Runtime API
/// port, so it runs its whole init, fails its first `next` and exits.
pub fn instructions(bin_dir: &Path) {
    println!("| function | init instructions (callgrind) |");
    println!("|---|---:|");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for (label, binary) in FUNCTIONS {
        let out = std::env::temp_dir().join(format!("llmxt-callgrind-{binary}.out"));
        let status = Command::new("valgrind")
            .args(["--tool=callgrind", "--quiet"])
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(bin_dir.join(binary))
            .env_clear()
            .envs(offline_env())
            .env("AWS_LAMBDA_RUNTIME_API", closed.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let Ok(_) = status else {
            println!("| {label} | valgrind not available |");
            continue;
        };
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let total = text
            .lines()
            .find_map(|line| {
                line.strip_prefix("summary: ")
                    .or_else(|| line.strip_prefix("totals: "))
            })
            .and_then(|n| n.trim().parse::<u64>().ok());
        let _ = std::fs::remove_file(&out);
        match total {
            Some(total) => println!("| {label} | {} |", group_digits(total)),
            None => println!("| {label} | (no callgrind output) |"),
        }
    }
}

fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

async fn seed_payment(store: &Store, payment_id: &str, email: &str) {
    let body = dodo_body("payment.succeeded.cli-generator", |v| {
        v["data"]["payment_id"] = json!(payment_id);
        v["data"]["customer"]["email"] = json!(email);
    });
    llmxt_testkit::apply_body(store, &format!("seed_{payment_id}"), &body).await;
}

fn row(label: &str, handler: &mut [Duration], floor: &mut [Duration]) {
    let (h50, h90) = (percentile(handler, 0.5), percentile(handler, 0.9));
    let (f50, f90) = (percentile(floor, 0.5), percentile(floor, 0.9));
    println!(
        "| {label} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3}× |",
        millis(h50),
        millis(h90),
        millis(f50),
        millis(f90),
        h50.as_secs_f64() / f50.as_secs_f64()
    );
}

/// The three handlers and, for each, the bare SDK calls it must make.
struct Handlers {
    store: Store,
    webhook: webhook::WebhookDeps,
    success: success_redirect::SuccessDeps,
    entitlement: entitlement::EntitlementDeps,
    cookie: String,
}

impl Handlers {
    async fn new(shared: &Store, store: Store) -> Self {
        let env = Env::from_pairs(
            function_env(shared)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        let email = Email::parse("cookie@example.com").unwrap();
        let granted = Entitlement {
            status: status::ACTIVE.to_owned(),
            plan: "professional".to_owned(),
            source: source::PAYMENT.to_owned(),
            ..Entitlement::new(email.clone())
        };
        let _ = shared.put_entitlement(&granted).await;
        Self {
            webhook: webhook::WebhookDeps::new(
                WebhookConfig::from_env(&env).unwrap(),
                store.clone(),
            ),
            success: success_redirect::SuccessDeps::new(
                SuccessConfig::from_env(&env).unwrap(),
                store.clone(),
            ),
            entitlement: entitlement::EntitlementDeps::new(
                EntitlementConfig::from_env(&env).unwrap(),
                store.clone(),
            ),
            cookie: llmxt_testkit::token_signer().issue(&email, "professional", unix_now(), 86_400),
            store,
        }
    }

    /// A new payment's delivery through the webhook handler.
    async fn webhook(&self, key: &str) -> Duration {
        let now = unix_now();
        let body = dodo_body("payment.succeeded.cli-generator", |v| {
            v["data"]["payment_id"] = json!(format!("pay_{key}"));
            v["data"]["customer"]["email"] = json!(format!("{key}@example.com"));
        });
        let request =
            request_from_event(&webhook_event(&format!("msg_{key}"), now, &body, None).to_string());
        let started = Instant::now();
        let response = webhook::handle(&self.webhook, request, now).await;
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 200);
        elapsed
    }

    /// What the webhook must do for it: the three reads, then the transaction.
    /// What the webhook must do for a new payment: one consistent `BatchGetItem` (delivery
    /// record, payment, entitlement) and one `TransactWriteItems`.
    async fn webhook_floor(&self, key: &str) -> Duration {
        self.webhook_pattern(key, true).await
    }

    /// The previous round's access pattern: three sequential consistent `GetItem`s, then the
    /// transaction.
    async fn webhook_previous_pattern(&self, key: &str) -> Duration {
        self.webhook_pattern(key, false).await
    }

    async fn webhook_pattern(&self, key: &str, batched: bool) -> Duration {
        let config = self.store.config();
        let client = self.store.client();
        let now = unix_now();
        let email = format!("{key}@example.com");
        let payment = PaymentRecord {
            payment_id: format!("pay_{key}"),
            email: Email::parse(&email).ok(),
            status: "succeeded".to_owned(),
            created_at: now,
            updated_at: now,
            version: 1,
            ..PaymentRecord::default()
        };
        let entitlement = Entitlement {
            status: status::ACTIVE.to_owned(),
            plan: "professional".to_owned(),
            source: source::PAYMENT.to_owned(),
            version: 1,
            ..Entitlement::new(Email::parse(&email).unwrap())
        };
        let delivery = DeliveryRecord {
            webhook_id: format!("msg_{key}"),
            event_type: "payment.succeeded".to_owned(),
            processed_at: now,
            expires_at: now + 1,
        };
        let put = |table: &str, item, key: &str| {
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item))
                        .condition_expression(format!("attribute_not_exists({key})"))
                        .build()
                        .unwrap(),
                )
                .build()
        };
        let items = vec![
            put(&config.payments_table, delivery.to_item(), "payment_id"),
            put(&config.payments_table, payment.to_item(), "payment_id"),
            put(&config.entitlements_table, entitlement.to_item(), "email"),
        ];
        let reads = [
            (
                &config.payments_table,
                "payment_id",
                format!("webhook#msg_{key}"),
            ),
            (&config.payments_table, "payment_id", format!("pay_{key}")),
            (&config.entitlements_table, "email", email.clone()),
        ];
        let started = Instant::now();
        if batched {
            let mut request: std::collections::HashMap<String, KeysAndAttributes> =
                std::collections::HashMap::new();
            for (table, name, value) in reads {
                let entry = request.entry(table.clone()).or_insert_with(|| {
                    KeysAndAttributes::builder()
                        .consistent_read(true)
                        .set_keys(Some(Vec::new()))
                        .build()
                        .unwrap()
                });
                let mut keys = entry.keys().to_vec();
                keys.push(std::collections::HashMap::from([(
                    name.to_owned(),
                    AttributeValue::S(value),
                )]));
                *entry = KeysAndAttributes::builder()
                    .consistent_read(true)
                    .set_keys(Some(keys))
                    .build()
                    .unwrap();
            }
            client
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .unwrap();
        } else {
            for (table, name, value) in reads {
                client
                    .get_item()
                    .table_name(table)
                    .key(name, AttributeValue::S(value))
                    .consistent_read(true)
                    .send()
                    .await
                    .unwrap();
            }
        }
        client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .unwrap();
        started.elapsed()
    }

    /// Redeeming the claim of `pay_{key}` through the success handler.
    async fn success(&self, key: &str) -> Duration {
        let query = format!("payment_id=pay_{key}&status=succeeded");
        let event = ApiGatewayEvent {
            method: "GET",
            path: "/upgrade/success",
            query: &query,
            headers: vec![],
            cookies: vec![],
            body: None,
        };
        let request = request_from_event(&event.to_json().to_string());
        let started = Instant::now();
        let response = success_redirect::handle(&self.success, request, unix_now()).await;
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 302);
        elapsed
    }

    /// What it must do: the conditional update.
    async fn success_floor(&self, key: &str) -> Duration {
        let now = unix_now();
        let started = Instant::now();
        self.store
            .client()
            .update_item()
            .table_name(&self.store.config().payments_table)
            .key("payment_id", AttributeValue::S(format!("pay_{key}")))
            .update_expression("SET claim_redeemed_at = :now, #version = #version + :one")
            .condition_expression("attribute_exists(email) AND #status = :succeeded AND attribute_not_exists(access_revoked) AND attribute_exists(claim_expires_at) AND attribute_not_exists(claim_redeemed_at) AND claim_expires_at > :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .expression_attribute_values(":succeeded", AttributeValue::S("succeeded".to_owned()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .unwrap();
        started.elapsed()
    }

    /// A cookie check through the entitlement handler.
    async fn entitlement(&self) -> Duration {
        let event = ApiGatewayEvent {
            method: "GET",
            path: "/api/entitlement",
            query: "",
            headers: vec![],
            cookies: vec![format!("__Host-llmxt_pro={}", self.cookie)],
            body: None,
        };
        let request = request_from_event(&event.to_json().to_string());
        let started = Instant::now();
        let response = entitlement::handle(&self.entitlement, request, unix_now()).await;
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 200);
        elapsed
    }

    /// What it must do: one GetItem.
    async fn entitlement_floor(&self) -> Duration {
        let started = Instant::now();
        self.store
            .client()
            .get_item()
            .table_name(&self.store.config().entitlements_table)
            .key("email", AttributeValue::S("cookie@example.com".to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        started.elapsed()
    }
}

/// Handler latency in-process against DynamoDB Local, beside the bare SDK calls the handler
/// must make (the floor): first invocations on fresh clients, then warm, interleaved so both
/// see the same machine.
pub async fn warm(iterations: usize) {
    use llmxt_store::store::ClientProfile;
    let store = fresh_store().await;
    let trials = 10;
    for i in 0..(iterations + trials) * 2 {
        seed_payment(&store, &format!("pay_s{i}"), &format!("s{i}@example.com")).await;
    }
    let fresh = || Store::connect(store.config(), ClientProfile::patient());

    println!(
        "First invocation: each on a freshly built client (a new connection, as after a cold start), median of {trials}."
    );
    println!();
    println!("| handler | first call (ms) | floor's first calls (ms) | ratio |");
    println!("|---|---:|---:|---:|");
    let (
        mut webhook,
        mut webhook_floor,
        mut success,
        mut success_floor,
        mut check,
        mut check_floor,
    ) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for trial in 0..trials {
        // Alternate which goes first, so neither always meets the warmer database.
        for handler_first in [trial % 2 == 0, trial % 2 == 1] {
            let handlers = Handlers::new(&store, fresh().await).await;
            if handler_first {
                webhook.push(handlers.webhook(&format!("first{trial}")).await);
                success.push(handlers.success(&format!("s{trial}")).await);
                check.push(handlers.entitlement().await);
            } else {
                webhook_floor.push(handlers.webhook_floor(&format!("firstfloor{trial}")).await);
                success_floor.push(
                    handlers
                        .success_floor(&format!("s{}", trials + trial))
                        .await,
                );
                check_floor.push(handlers.entitlement_floor().await);
            }
        }
    }
    let mut webhook_previous = Vec::new();
    for trial in 0..trials {
        let handlers = Handlers::new(&store, fresh().await).await;
        webhook_previous.push(
            handlers
                .webhook_previous_pattern(&format!("firstprev{trial}"))
                .await,
        );
    }
    let mut webhook_again = webhook.clone();
    for (label, handler, floor) in [
        ("webhook", &mut webhook, &mut webhook_floor),
        (
            "webhook vs the previous round's 3 reads + 1 transaction",
            &mut webhook_again,
            &mut webhook_previous,
        ),
        ("success-redirect", &mut success, &mut success_floor),
        ("entitlement", &mut check, &mut check_floor),
    ] {
        let (h, f) = (percentile(handler, 0.5), percentile(floor, 0.5));
        println!(
            "| {label} | {:.2} | {:.2} | {:.2}× |",
            millis(h),
            millis(f),
            h.as_secs_f64() / f.as_secs_f64()
        );
    }

    println!();
    println!("Warm, {iterations} iterations each:");
    println!();
    println!("| handler | p50 (ms) | p90 (ms) | floor p50 (ms) | floor p90 (ms) | p50 / floor |");
    println!("|---|---:|---:|---:|---:|---:|");
    let handlers = Handlers::new(&store, store.clone()).await;
    let (mut handler, mut floor, mut previous) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..iterations {
        handler.push(handlers.webhook(&format!("warm{i}")).await);
        floor.push(handlers.webhook_floor(&format!("warmfloor{i}")).await);
        previous.push(
            handlers
                .webhook_previous_pattern(&format!("warmprev{i}"))
                .await,
        );
    }
    let mut handler_again = handler.clone();
    row(
        "webhook: payment.succeeded (1 batched read + 1 transaction)",
        &mut handler,
        &mut floor,
    );
    row(
        "webhook vs the previous round's pattern (3 sequential reads + 1 transaction)",
        &mut handler_again,
        &mut previous,
    );
    let (mut handler, mut floor) = (Vec::new(), Vec::new());
    let offset = 2 * trials;
    for i in 0..iterations {
        handler.push(handlers.success(&format!("s{}", offset + 2 * i)).await);
        floor.push(
            handlers
                .success_floor(&format!("s{}", offset + 2 * i + 1))
                .await,
        );
    }
    row(
        "success-redirect: redeem claim + cookie (1 conditional update)",
        &mut handler,
        &mut floor,
    );
    let (mut handler, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..iterations * 3 {
        handler.push(handlers.entitlement().await);
        floor.push(handlers.entitlement_floor().await);
    }
    row(
        "entitlement: cookie check (1 GetItem)",
        &mut handler,
        &mut floor,
    );
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn current_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak RSS of each release binary across `invocations` through its real runtime loop.
pub async fn rss(bin_dir: &Path, invocations: usize) {
    let store = fresh_store().await;
    let env = function_env(&store);
    println!("| function | invocations | peak RSS (MiB) |");
    println!("|---|---:|---:|");
    for i in 0..invocations {
        seed_payment(
            &store,
            &format!("pay_rss_{i}"),
            &format!("rss{i}@example.com"),
        )
        .await;
    }
    let token = llmxt_testkit::token_signer().issue(
        &Email::parse("rss0@example.com").unwrap(),
        "professional",
        unix_now(),
        86_400,
    );
    for binary in ["webhook", "success-redirect", "entitlement"] {
        let api = RuntimeApi::start().await;
        let process = api.spawn_function(&bin_dir.join(binary).to_string_lossy(), &env);
        let pid = process.child.id();
        for i in 0..invocations {
            let event = match binary {
                "webhook" => {
                    let body = dodo_body("payment.succeeded.cli-generator", |v| {
                        v["data"]["payment_id"] = json!(format!("pay_rssw_{i}"));
                        v["data"]["customer"]["email"] = json!(format!("rssw{i}@example.com"));
                    });
                    webhook_event(&format!("msg_rss_{i}"), unix_now(), &body, None)
                }
                "success-redirect" => {
                    let query = format!("payment_id=pay_rss_{i}&status=succeeded");
                    ApiGatewayEvent {
                        method: "GET",
                        path: "/upgrade/success",
                        query: &query,
                        headers: vec![],
                        cookies: vec![],
                        body: None,
                    }
                    .to_json()
                }
                _ => ApiGatewayEvent {
                    method: "GET",
                    path: "/api/entitlement",
                    query: "",
                    headers: vec![],
                    cookies: vec![format!("__Host-llmxt_pro={token}")],
                    body: None,
                }
                .to_json(),
            };
            let response = api
                .invoke(
                    &format!("req-{binary}-{i}"),
                    &event.to_string(),
                    Duration::from_secs(30),
                )
                .await
                .unwrap();
            let parsed: serde_json::Value = serde_json::from_str(&response).unwrap();
            assert!(
                matches!(parsed["statusCode"].as_i64(), Some(200 | 302)),
                "{binary}: {response}"
            );
        }
        let peak = peak_rss_kib(pid).unwrap_or(0);
        println!("| {binary} | {invocations} | {:.1} |", peak as f64 / 1024.0);
        drop(process);
    }
}

/// Throughput through local-api: `in_flight` concurrent signed deliveries (plus a quarter as
/// many entitlement checks) for `seconds`; errors counted; local-api's memory before and after.
pub async fn load(bin_dir: &Path, seconds: u64, in_flight: usize) {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let store = fresh_store().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env = function_env(&store);
    env.push(("PORT", port.to_string()));
    env.push(("AWS_LAMBDA_LOG_LEVEL", "warn".to_owned()));
    let mut command = Command::new(bin_dir.join("local-api"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1");
    for (name, value) in &env {
        command.env(name, value);
    }
    let mut server = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://127.0.0.1:{port}");
    let email = Email::parse("loadcheck@example.com").unwrap();
    let granted = Entitlement {
        status: status::ACTIVE.to_owned(),
        plan: "professional".to_owned(),
        source: source::PAYMENT.to_owned(),
        ..Entitlement::new(email.clone())
    };
    store.put_entitlement(&granted).await.unwrap();
    let token = llmxt_testkit::token_signer().issue(&email, "professional", unix_now(), 86_400);

    // Warm up, then note the resident memory.
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let run = |deadline: Instant, record: bool| {
        let mut tasks = Vec::new();
        for worker in 0..in_flight + in_flight / 4 {
            let (client, base, counter, errors, token) = (
                client.clone(),
                base.clone(),
                Arc::clone(&counter),
                Arc::clone(&errors),
                token.clone(),
            );
            let is_webhook = worker < in_flight;
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let request = if is_webhook {
                        let body = dodo_body("payment.succeeded.cli-generator", |v| {
                            v["data"]["payment_id"] = json!(format!("pay_load_{record}_{n}"));
                            v["data"]["customer"]["email"] =
                                json!(format!("load{}@example.com", n % 500));
                        });
                        let now = unix_now();
                        let id = format!("msg_load_{record}_{n}");
                        hyper::Request::post(format!("{base}/api/webhooks/dodo"))
                            .header("content-type", "application/json")
                            .header("webhook-id", &id)
                            .header("webhook-timestamp", now.to_string())
                            .header("webhook-signature", sign_webhook(&id, now, &body))
                            .body(Full::new(Bytes::from(body)))
                            .unwrap()
                    } else {
                        hyper::Request::get(format!("{base}/api/entitlement"))
                            .header("cookie", format!("__Host-llmxt_pro={token}"))
                            .body(Full::new(Bytes::new()))
                            .unwrap()
                    };
                    let started = Instant::now();
                    match client.request(request).await {
                        Ok(response) => {
                            let ok = response.status() == 200;
                            let body = response
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            if !ok || (!is_webhook && !body.starts_with(b"{")) {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    latencies.push(started.elapsed());
                }
                (is_webhook, latencies)
            }));
        }
        tasks
    };
    for task in run(Instant::now() + Duration::from_secs(2), false) {
        task.await.unwrap();
    }
    let rss_after_warmup = current_rss_kib(pid).unwrap_or(0);
    errors.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let (mut webhook_latencies, mut check_latencies) = (Vec::new(), Vec::new());
    for task in run(started + Duration::from_secs(seconds), true) {
        let (is_webhook, latencies) = task.await.unwrap();
        if is_webhook {
            webhook_latencies.extend(latencies);
        } else {
            check_latencies.extend(latencies);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = current_rss_kib(pid).unwrap_or(0);
    let peak = peak_rss_kib(pid).unwrap_or(0);
    let _ = server.kill();
    let _ = server.wait();
    println!("| traffic | requests | per second | p50 (ms) | p99 (ms) |");
    println!("|---|---:|---:|---:|---:|");
    for (label, samples) in [
        (
            format!("webhook deliveries, {in_flight} in flight"),
            &mut webhook_latencies,
        ),
        (
            format!("entitlement checks, {} in flight", in_flight / 4),
            &mut check_latencies,
        ),
    ] {
        let count = samples.len();
        println!(
            "| {label} | {count} | {:.0} | {:.2} | {:.2} |",
            count as f64 / elapsed,
            millis(percentile(samples, 0.5)),
            millis(percentile(samples, 0.99))
        );
    }
    println!();
    println!(
        "Errors: {}. local-api resident memory: {:.1} MiB after warm-up, {:.1} MiB after {seconds} s of load (peak {:.1} MiB).",
        errors.load(Ordering::Relaxed),
        rss_after_warmup as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}

/// The restore answer's timing: a sign-in link request for a buyer (entitlement read, email
/// counter, token write, SES send) and for an address without a purchase (entitlement read
/// only), through the real handler with no answer floor, against DynamoDB Local and the SES
/// emulator. The first send of each instance also builds the SES client (`cold`).
pub async fn restore(iterations: usize) {
    let store = fresh_store().await;
    let config = SuccessConfig::from_env(&Env::from_pairs([
        ("ENTITLEMENT_SECRET", TEST_ENTITLEMENT_SECRET.to_owned()),
        ("NEXT_PUBLIC_SITE_URL", "https://pro.example.com".to_owned()),
        ("RESTORE_EMAIL_FROM", "access@pro.example.com".to_owned()),
        ("SES_ENDPOINT", llmxt_testkit::ses_endpoint()),
        // One address per request, so no limit is reached.
        ("RESTORE_EMAILS_PER_HOUR", "1000000".to_owned()),
        ("CLIENT_IP_HEADER", "x-real-ip".to_owned()),
    ]))
    .unwrap();
    let trials = 10;
    for i in 0..iterations + trials {
        seed_payment(&store, &format!("pay_r{i}"), &format!("r{i}@example.com")).await;
    }
    let post = |email: String, n: usize| {
        let event = ApiGatewayEvent {
            method: "POST",
            path: "/upgrade/restore",
            query: "",
            headers: vec![
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("sec-fetch-site", "same-origin".to_owned()),
                (
                    "x-real-ip",
                    format!("10.{}.{}.{}", n / 65536, n / 256 % 256, n % 256),
                ),
            ],
            cookies: vec![],
            body: Some(format!("email={}", email.replace('@', "%40"))),
        };
        request_from_event(&event.to_json().to_string())
    };
    let timed = |deps: success_redirect::SuccessDeps, request| async move {
        let started = Instant::now();
        success_redirect::handle(&deps, request, unix_now()).await;
        started.elapsed()
    };
    let mut deps = success_redirect::SuccessDeps::new(config.clone(), store.clone());
    deps.restore_floor = Duration::ZERO;
    let mut cold = Vec::new();
    for i in 0..trials {
        let mut fresh = success_redirect::SuccessDeps::new(config.clone(), store.clone());
        fresh.restore_floor = Duration::ZERO;
        cold.push(timed(fresh, post(format!("r{i}@example.com"), i)).await);
    }
    let (mut paid, mut unpaid) = (Vec::new(), Vec::new());
    for i in trials..trials + iterations {
        paid.push(timed(deps.clone(), post(format!("r{i}@example.com"), 2 * i)).await);
        unpaid.push(
            timed(
                deps.clone(),
                post(format!("none{i}@example.com"), 2 * i + 1),
            )
            .await,
        );
    }
    println!("| restore request (no floor) | runs | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, samples) in [
        (
            "buyer, first email of an instance (SES client built)",
            &mut cold,
        ),
        ("buyer (token stored, email sent)", &mut paid),
        ("address without a purchase", &mut unpaid),
    ] {
        let runs = samples.len();
        let (p50, p90, p99, max) = (
            percentile(samples, 0.5),
            percentile(samples, 0.9),
            percentile(samples, 0.99),
            percentile(samples, 1.0),
        );
        println!(
            "| {label} | {runs} | {:.1} | {:.1} | {:.1} | {:.1} |",
            millis(p50),
            millis(p90),
            millis(p99),
            millis(max)
        );
    }
}
