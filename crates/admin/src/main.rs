//! Command-line entry point of `llmxt-admin`.
#![forbid(unsafe_code)]

use llmxt_domain::config::Env;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stdout = std::io::stdout();
    match llmxt_admin::run(&args, &Env::process(), &mut stdout).await {
        Ok(()) | Err(llmxt_admin::AdminError::OutputClosed) => {}
        Err(error) => {
            eprintln!("llmxt-admin: {error}");
            std::process::exit(error.exit_code());
        }
    }
}
