//! `llmxt-bench usage`: reserve latency and reserves per second through local-api on
//! loopback, against DynamoDB Local (docs/benchmarks.md, section 7).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, Grant, source, status};
use llmxt_domain::request_signature::{SignedRequest, sign};
use llmxt_domain::time::unix_now;
use llmxt_testkit::{fresh_store, function_env, hmac_secret};
use serde_json::json;

use crate::measure::{millis, percentile};

/// Buyers the reserves are spread over (one usage item each).
const BUYERS: usize = 200;

/// Runs `in_flight` clients for `seconds`, each reserving 1 unit with a fresh key for one of
/// [`BUYERS`] buyers, and prints reserve p50/p99 and reserves per second; then the same for
/// commits of those reservations.
pub async fn usage(bin_dir: &Path, seconds: u64, in_flight: usize) {
    let store = fresh_store().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env = function_env(&store);
    env.push(("PORT", port.to_string()));
    env.push((
        "PLAN_LIMITS",
        "professional=requests:1000000000/month".to_owned(),
    ));
    let mut command = Command::new(bin_dir.join("local-api"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn");
    for (name, value) in &env {
        command.env(name, value);
    }
    let mut server = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for n in 0..BUYERS {
        let email = Email::parse(&format!("bench{n}@example.com")).unwrap();
        let mut entitlement = Entitlement::new(email);
        let grant = Grant {
            key: format!("pay_bench_{n}"),
            source: source::PAYMENT.to_owned(),
            plan: "professional".to_owned(),
            status: status::ACTIVE.to_owned(),
            ..Grant::default()
        };
        entitlement.grants.insert(grant.key.clone(), grant);
        store.put_entitlement(&entitlement).await.unwrap();
    }
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://127.0.0.1:{port}");
    let post = move |path: &'static str, body: String| {
        let now = unix_now();
        let signature = sign(
            &hmac_secret(),
            now,
            SignedRequest {
                method: "POST",
                path_and_query: path,
                body: body.as_bytes(),
            },
        );
        hyper::Request::post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .header("x-llmxt-timestamp", now.to_string())
            .header("x-llmxt-signature", signature)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (client, counter, errors, post) = (
            client.clone(),
            Arc::clone(&counter),
            Arc::clone(&errors),
            post.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut reservations = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = json!({
                    "email": format!("bench{}@example.com", n as usize % BUYERS),
                    "meter": "requests",
                    "amount": 1,
                    "idempotency_key": format!("bench-{n}"),
                })
                .to_string();
                let begun = Instant::now();
                match client.request(post("/api/usage/reserve", body)).await {
                    Ok(response) if response.status() == 200 => {
                        let bytes = response.into_body().collect().await.unwrap().to_bytes();
                        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                        reservations.push(value["reservation"].as_str().unwrap().to_owned());
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies.push(begun.elapsed());
            }
            (latencies, reservations)
        }));
    }
    let mut reserve_latencies = Vec::new();
    let mut reservations = Vec::new();
    for task in tasks {
        let (latencies, held) = task.await.unwrap();
        reserve_latencies.extend(latencies);
        reservations.push(held);
    }
    let reserve_elapsed = started.elapsed().as_secs_f64();
    let commit_started = Instant::now();
    let mut tasks = Vec::new();
    for held in reservations {
        let (client, errors, post) = (client.clone(), Arc::clone(&errors), post.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for reservation in held {
                let body = json!({ "reservation": reservation }).to_string();
                let begun = Instant::now();
                match client.request(post("/api/usage/commit", body)).await {
                    Ok(response) if response.status() == 200 => {}
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies.push(begun.elapsed());
            }
            latencies
        }));
    }
    let mut commit_latencies = Vec::new();
    for task in tasks {
        commit_latencies.extend(task.await.unwrap());
    }
    let commit_elapsed = commit_started.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    println!("| request | count | per second | p50 (ms) | p99 (ms) |");
    println!("|---|---:|---:|---:|---:|");
    for (label, samples, elapsed) in [
        (
            "reserve (2 round trips)",
            &mut reserve_latencies,
            reserve_elapsed,
        ),
        (
            "commit (1 round trip)",
            &mut commit_latencies,
            commit_elapsed,
        ),
    ] {
        let count = samples.len();
        println!(
            "| {label}, {in_flight} in flight | {count} | {:.0} | {:.2} | {:.2} |",
            count as f64 / elapsed,
            millis(percentile(samples, 0.5)),
            millis(percentile(samples, 0.99))
        );
    }
    println!();
    println!(
        "Errors: {}. {BUYERS} buyers, one usage item each; every reserve a fresh idempotency key.",
        errors.load(Ordering::Relaxed)
    );
}
