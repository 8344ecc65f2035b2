//! Command-line entry point of `llmxt-admin`.
#![forbid(unsafe_code)]

use llmxt_domain::config::Env;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stdout = std::io::stdout();
    let env = match llmxt_admin::env_with_dotenv(&Env::process(), std::path::Path::new(".env")) {
        Ok((env, Some(note))) => {
            eprintln!("llmxt-admin: {note}");
            env
        }
        Ok((env, None)) => env,
        Err(error) => {
            eprintln!("llmxt-admin: {error}");
            std::process::exit(error.exit_code());
        }
    };
    match llmxt_admin::run(&args, &env, &mut stdout).await {
        Ok(()) | Err(llmxt_admin::AdminError::OutputClosed) => {}
        Err(error) => {
            eprintln!("llmxt-admin: {error}");
            std::process::exit(error.exit_code());
        }
    }
}
