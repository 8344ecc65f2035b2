//! Fault injection: a DynamoDB Local process the test can stop and restart, and a TCP proxy
//! that can pass, delay, refuse or black-hole traffic.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::repo_root;

/// A DynamoDB Local of the test's own, persisted to a directory so it survives a restart.
pub struct DynamoDbProcess {
    /// Its port on 127.0.0.1.
    pub port: u16,
    db_path: std::path::PathBuf,
}

impl DynamoDbProcess {
    /// Starts one on a free port, keeping its data under a fresh temporary directory.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let db_path = std::env::temp_dir().join(format!("llmxt-ddb-{}-{port}", std::process::id()));
        let process = Self { port, db_path };
        process.run("start");
        process
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the process (as a crash or a restart would).
    pub fn stop(&self) {
        self.run("stop");
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&self) {
        self.run("start");
    }

    fn run(&self, action: &str) {
        let status = Command::new(repo_root().join("scripts/dynamodb-local.sh"))
            .args([action, &self.port.to_string()])
            .env("DYNAMODB_LOCAL_DB_PATH", &self.db_path)
            .status()
            .expect("run scripts/dynamodb-local.sh");
        assert!(
            status.success(),
            "scripts/dynamodb-local.sh {action} {} failed (is Java installed?)",
            self.port
        );
    }
}

impl Drop for DynamoDbProcess {
    fn drop(&mut self) {
        self.run("stop");
        let _ = std::fs::remove_dir_all(&self.db_path);
    }
}

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward everything.
    Pass,
    /// Forward, holding each chunk from the server back by this many milliseconds.
    Delay(u64),
    /// Close new connections at once and cut the open ones.
    Refuse,
    /// Accept connections and never answer.
    Blackhole,
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`.
#[derive(Clone)]
pub struct FaultProxy {
    mode: Arc<AtomicU8>,
    delay_ms: Arc<AtomicU64>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    operations: Arc<std::sync::Mutex<Vec<String>>>,
    /// Its port.
    pub port: u16,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            mode: Arc::new(AtomicU8::new(0)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            generation: Arc::new(tokio::sync::watch::channel(0).0),
            operations: Arc::default(),
            port: listener.local_addr().unwrap().port(),
        };
        let state = proxy.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move { state.handle(client, &upstream).await });
            }
        });
        proxy
    }

    /// A proxy in front of the tests' DynamoDB Local ([`crate::dynamodb_endpoint`]).
    pub async fn for_dynamodb() -> Self {
        Self::start(
            crate::dynamodb_endpoint()
                .trim_start_matches("http://")
                .to_owned(),
        )
        .await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The DynamoDB operations (`X-Amz-Target`, e.g. `DynamoDB_20120810.GetItem`) forwarded
    /// since the last call, in order: each one is a round trip.
    pub fn take_operations(&self) -> Vec<String> {
        std::mem::take(&mut *self.operations.lock().unwrap())
    }

    fn note_operations(&self, chunk: &[u8]) {
        let text = String::from_utf8_lossy(chunk);
        let mut operations = self.operations.lock().unwrap();
        for line in text.split("\r\n") {
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("x-amz-target")
            {
                operations.push(value.trim().to_owned());
            }
        }
    }

    /// Changes what the proxy does; leaving `Pass` cuts open connections.
    pub fn set(&self, mode: ProxyMode) {
        let (code, delay) = match mode {
            ProxyMode::Pass => (0, 0),
            ProxyMode::Delay(ms) => (1, ms),
            ProxyMode::Refuse => (2, 0),
            ProxyMode::Blackhole => (3, 0),
        };
        self.delay_ms.store(delay, Ordering::SeqCst);
        self.mode.store(code, Ordering::SeqCst);
        if code >= 2 {
            self.generation.send_modify(|generation| *generation += 1);
        }
    }

    async fn handle(&self, mut client: TcpStream, upstream: &str) {
        match self.mode.load(Ordering::SeqCst) {
            2 => return,
            3 => {
                let mut sink = [0_u8; 4096];
                while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            _ => {}
        }
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        let mut cut_signal = self.generation.subscribe();
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let to_server = async {
            let mut buffer = [0_u8; 16384];
            loop {
                match client_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        self.note_operations(&buffer[..n]);
                        if server_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        let to_client = async {
            let mut buffer = [0_u8; 16384];
            loop {
                match server_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let delay = self.delay_ms.load(Ordering::SeqCst);
                        if delay > 0 {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                        }
                        if client_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        // Checked first, so a connection cut before it was next polled forwards nothing more.
        tokio::select! {
            biased;
            _ = cut_signal.changed() => {}
            () = async { tokio::join!(to_server, to_client); } => {}
        }
    }
}

/// A stand-in for DynamoDB that answers every request with one error, exactly as DynamoDB
/// sends it (status, `__type`, message): for checking how each error type is treated.
pub struct DynamoDbErrorStandIn {
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl DynamoDbErrorStandIn {
    /// Starts one answering `status` with `error_type` (e.g.
    /// `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException`) and `message`.
    pub async fn start(status: u16, error_type: &str, message: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = serde_json::json!({ "__type": error_type, "message": message }).to_string();
        let reason = match status {
            400 => "Bad Request",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: stand-in\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0_u8; 65536];
                    let _ = stream.read(&mut buffer).await;
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
