//! `local-api`: the three functions behind one local HTTP server (default 127.0.0.1:3000).
#![forbid(unsafe_code)]

use std::sync::Arc;

use llmxt_domain::config::Env;

#[tokio::main]
async fn main() {
    llmxt_http::init_tracing();
    let env = Env::process();
    let port: u16 = match env.optional("PORT").map(|p| p.parse()) {
        None => 3000,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("configuration error: PORT must be a port number");
            std::process::exit(1);
        }
    };
    let api = llmxt_http::config_or_exit(local_api::LocalApi::from_env(&env).await);
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("local-api: cannot listen on 127.0.0.1:{port}: {error}");
            std::process::exit(1);
        }
    };
    tracing::info!("local-api listening on http://127.0.0.1:{port}");
    eprintln!("local-api listening on http://127.0.0.1:{port} (Ctrl-C to stop)");
    local_api::serve(Arc::new(api), listener, shutdown_signal()).await;
    eprintln!("local-api stopped");
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
