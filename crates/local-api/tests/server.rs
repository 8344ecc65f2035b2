//! local-api over real HTTP: routes reach the real handlers; unknown paths are 404; it stops
//! cleanly when asked.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use llmxt_domain::config::Env;
use llmxt_domain::time::unix_now;
use llmxt_testkit::{dodo_body, fresh_store, function_env, sign_webhook};

async fn raw_request(port: u16, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn routes_reach_the_handlers_and_shutdown_is_clean() {
    let store = fresh_store().await;
    let env = Env::from_pairs(
        function_env(&store)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    let api = Arc::new(local_api::LocalApi::from_env(&env).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(local_api::serve(api, listener, async {
        let _ = stopped.await;
    }));

    let body = dodo_body("payment.succeeded.cli-generator", |_| {});
    let now = unix_now();
    let webhook = format!(
        "POST /api/webhooks/dodo HTTP/1.1\r\nhost: pro.example.com\r\nconnection: close\r\ncontent-type: application/json\r\n\
         webhook-id: msg_local\r\nwebhook-timestamp: {now}\r\nwebhook-signature: {}\r\ncontent-length: {}\r\n\r\n{body}",
        sign_webhook("msg_local", now, &body),
        body.len()
    );
    let response = raw_request(port, &webhook).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"{"outcome":"processed"}"#),
        "{response}"
    );

    let success = raw_request(port, "GET /upgrade/success?payment_id=pay_test&status=succeeded HTTP/1.1\r\nhost: pro.example.com\r\nconnection: close\r\n\r\n").await;
    assert!(success.starts_with("HTTP/1.1 302"), "{success}");
    assert!(
        success.contains("location: https://pro.example.com/?upgrade=success"),
        "{success}"
    );
    let token = success
        .split("__Host-llmxt_pro=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();

    let check = raw_request(port, &format!("GET /api/entitlement HTTP/1.1\r\nhost: pro.example.com\r\nconnection: close\r\ncookie: __Host-llmxt_pro={token}\r\n\r\n")).await;
    assert!(check.contains(r#""pro":true"#), "{check}");

    let signed_email = {
        let path = "/api/entitlement?email=john.doe%40example.com";
        let signature = llmxt_domain::request_signature::sign(
            &llmxt_testkit::hmac_secret(),
            now,
            llmxt_domain::request_signature::SignedRequest {
                method: "GET",
                path_and_query: path,
                body: b"",
            },
        );
        raw_request(port, &format!("GET {path} HTTP/1.1\r\nhost: pro.example.com\r\nconnection: close\r\nx-llmxt-timestamp: {now}\r\nx-llmxt-signature: {signature}\r\n\r\n")).await
    };
    assert!(
        signed_email.contains(r#""pro":true"#),
        "path and query reach the signature check as sent: {signed_email}"
    );

    let home = raw_request(
        port,
        "GET / HTTP/1.1\r\nhost: pro.example.com\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(
        home.starts_with("HTTP/1.1 200") && home.contains("/app.js"),
        "{home}"
    );
    let missing = raw_request(
        port,
        "GET /nope HTTP/1.1\r\nhost: pro.example.com\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn refuses_to_start_with_incomplete_configuration() {
    let env = Env::from_pairs([("DODO_WEBHOOK_SECRET", llmxt_testkit::TEST_WEBHOOK_SECRET)]);
    let error = local_api::LocalApi::from_env(&env)
        .await
        .err()
        .expect("incomplete");
    assert_eq!(error.variable, "ENTITLEMENT_SECRET");
}

#[test]
fn a_configuration_error_is_one_line_on_stderr_in_a_terminal() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_local-api"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env(
            "DODO_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .env("ENTITLEMENT_SECRET", "too-short")
        .env("NEXT_PUBLIC_SITE_URL", "http://localhost:3000")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.contains("ENTITLEMENT_SECRET"), "{stderr}");
    assert_eq!(stdout, "", "a terminal shows stdout too");
}

#[tokio::test]
async fn every_response_kind_says_nosniff() {
    let store = fresh_store().await;
    let mut pairs: Vec<(String, String)> = function_env(&store)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    pairs.push(("RESTORE_EMAIL_FROM".into(), "access@pro.example.com".into()));
    pairs.push(("SES_ENDPOINT".into(), llmxt_testkit::ses_endpoint()));
    let api = Arc::new(
        local_api::LocalApi::from_env(&Env::from_pairs(pairs))
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(local_api::serve(api, listener, async {
        let _ = stopped.await;
    }));
    let form = "content-type: application/x-www-form-urlencoded\r\ncontent-length: 5\r\n\r\nemail";
    let cases = [
        (
            "POST /api/webhooks/dodo",
            "content-length: 2\r\n\r\n{}",
            "401",
        ),
        ("GET /api/webhooks/dodo", "\r\n", "405"),
        ("GET /api/entitlement", "\r\n", "200"),
        ("PUT /api/entitlement", "\r\n", "405"),
        ("GET /api/entitlement?email=x", "\r\n", "401"),
        ("GET /upgrade/success?payment_id=pay_none", "\r\n", "200"),
        ("GET /upgrade/success", "\r\n", "400"),
        ("PUT /upgrade/success", "\r\n", "405"),
        ("GET /upgrade/billing", "\r\n", "200"),
        ("GET /upgrade/checkout?product=pdt_unknown", "\r\n", "400"),
        ("GET /upgrade/restore", "\r\n", "200"),
        ("POST /upgrade/restore", form, "403"),
        ("GET /upgrade/nope", "\r\n", "404"),
        ("GET /", "\r\n", "200"),
        ("GET /app.js", "\r\n", "200"),
        ("GET /nope", "\r\n", "404"),
    ];
    for (request_line, rest, status) in cases {
        let response = raw_request(
            port,
            &format!(
                "{request_line} HTTP/1.1\r\nhost: pro.example.com\r\nconnection: close\r\n{rest}"
            ),
        )
        .await;
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{request_line}: {response}"
        );
        let head = response
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            head.contains("\r\nx-content-type-options: nosniff"),
            "{request_line}: {head}"
        );
    }
    stop.send(()).unwrap();
    server.await.unwrap();
}
