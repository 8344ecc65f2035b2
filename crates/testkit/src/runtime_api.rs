//! A minimal local Lambda Runtime API, to run the real function binaries through their real
//! runtime loop: it hands out queued events on `next` and collects the responses.

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    queue: VecDeque<(String, String)>,
    responses: Vec<(String, String)>,
    errors: Vec<String>,
    next_requests: Vec<Instant>,
}

/// A running Runtime API on 127.0.0.1.
#[derive(Clone)]
pub struct RuntimeApi {
    state: Arc<Mutex<State>>,
    queued: Arc<Notify>,
    answered: Arc<Notify>,
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
}

impl RuntimeApi {
    /// Starts the server on a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let api = Self {
            state: Arc::default(),
            queued: Arc::new(Notify::new()),
            answered: Arc::new(Notify::new()),
            address,
        };
        crate::serve_http(listener, api.clone(), |server, request| async move {
            server.serve(request).await
        });
        api
    }

    async fn serve(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        if path.ends_with("/invocation/next") {
            self.state
                .lock()
                .unwrap()
                .next_requests
                .push(Instant::now());
            loop {
                let notified = self.queued.notified();
                if let Some((id, event)) = self.state.lock().unwrap().queue.pop_front() {
                    let deadline = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis()
                        + 30_000;
                    return Response::builder()
                        .header("lambda-runtime-aws-request-id", id)
                        .header("lambda-runtime-deadline-ms", deadline.to_string())
                        .header(
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:test",
                        )
                        .header(
                            "lambda-runtime-trace-id",
                            "Root=1-5759e988-bd862e3fe1be46a994272793",
                        )
                        .body(Full::new(Bytes::from(event)))
                        .unwrap();
                }
                notified.await;
            }
        }
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).into_owned();
        {
            let mut state = self.state.lock().unwrap();
            if let Some(id) = path
                .strip_suffix("/response")
                .and_then(|p| p.rsplit('/').next())
            {
                state.responses.push((id.to_owned(), text));
            } else {
                state.errors.push(format!("{path}: {text}"));
            }
        }
        self.answered.notify_waiters();
        Response::builder()
            .status(202)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    }

    /// Queues an invocation and waits (up to `timeout`) for its response body.
    pub async fn invoke(
        &self,
        request_id: &str,
        event: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        self.state
            .lock()
            .unwrap()
            .queue
            .push_back((request_id.to_owned(), event.to_owned()));
        self.queued.notify_waiters();
        let deadline = Instant::now() + timeout;
        loop {
            let answered = self.answered.notified();
            {
                let state = self.state.lock().unwrap();
                if let Some((_, body)) = state.responses.iter().find(|(id, _)| id == request_id) {
                    return Ok(body.clone());
                }
                if let Some(error) = state.errors.last() {
                    return Err(error.clone());
                }
            }
            if tokio::time::timeout_at(deadline.into(), answered)
                .await
                .is_err()
            {
                return Err(format!("no response to {request_id} within {timeout:?}"));
            }
        }
    }

    /// When the binary first asked for work (its init ended), if it has.
    pub fn first_next_request(&self) -> Option<Instant> {
        self.state.lock().unwrap().next_requests.first().copied()
    }

    /// Starts a function binary against this Runtime API with `env` (its own configuration).
    pub fn spawn_function(&self, binary: &str, env: &[(&str, String)]) -> FunctionProcess {
        self.spawn(Command::new(binary), env)
    }

    /// Starts `command` (e.g. `node index.mjs`) as a function against this Runtime API.
    pub fn spawn(&self, mut command: Command, env: &[(&str, String)]) -> FunctionProcess {
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &self.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let program = command.get_program().to_string_lossy().into_owned();
        FunctionProcess {
            child: command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {program}: {e}")),
        }
    }
}

/// A function process; killed when dropped.
pub struct FunctionProcess {
    /// The child process.
    pub child: Child,
}

impl FunctionProcess {
    /// Waits for the process to exit and returns its exit code and stderr (for start-up failures).
    pub fn wait_exit(mut self) -> (Option<i32>, String) {
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            use std::io::Read;
            let _ = pipe.read_to_string(&mut stderr);
        }
        let status = self.child.wait().ok().and_then(|s| s.code());
        (status, stderr)
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
