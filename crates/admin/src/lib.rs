//! `llmxt-admin`: what an operator needs, working against AWS or `DYNAMODB_ENDPOINT`.
#![forbid(unsafe_code)]

use std::io::Write;

use llmxt_core::config::{ConfigError, Env, StoreConfig};
use llmxt_core::store::{ClientProfile, Store, StoreError};
use llmxt_core::webhook_signature::{self, WebhookSecrets};

/// Usage text.
pub const USAGE: &str = "\
usage: llmxt-admin <command> [options]

commands:
  create-tables                          create both tables (idempotent), with email-index and TTL
  sign-webhook --id ID --timestamp UNIX --body-file FILE
                                         print the webhook-signature for a body (DODO_WEBHOOK_SECRET)
  check-config webhook|success-redirect|entitlement
                                         validate a function's environment as it would at start;
                                         prints the variables it reads as JSON
  table-specs                            print both tables' definitions as JSON

environment: AWS_REGION, ENTITLEMENTS_TABLE, PAYMENTS_TABLE, DYNAMODB_ENDPOINT, DODO_WEBHOOK_SECRET";

/// Why a command failed; printed as one line, exit code 1 (2 for usage errors).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad arguments.
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    /// Bad environment.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// DynamoDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading a file or writing output failed.
    #[error("{0}")]
    Io(String),
}

impl AdminError {
    /// Process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Parsed `--name value` options after the command.
struct Options {
    values: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, AdminError> {
        let mut values = Vec::new();
        let mut positional = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let value = iter
                    .next()
                    .ok_or_else(|| AdminError::Usage(format!("--{name} needs a value")))?;
                values.push((name.to_owned(), value.clone()));
            } else {
                positional.push(arg.clone());
            }
        }
        Ok(Self { values, positional })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, AdminError> {
        self.get(name)
            .ok_or_else(|| AdminError::Usage(format!("--{name} is required")))
    }
}

/// Runs one command line (without the program name).
pub async fn run(args: &[String], env: &Env, out: &mut dyn Write) -> Result<(), AdminError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(AdminError::Usage("no command given".to_owned()));
    };
    let options = Options::parse(rest)?;
    let takes_positional = matches!(command.as_str(), "check-config");
    if let (false, Some(extra)) = (takes_positional, options.positional.first()) {
        return Err(AdminError::Usage(format!("unexpected argument {extra:?}")));
    }
    match command.as_str() {
        "create-tables" => {
            let store = connect(env).await?;
            store.create_tables().await?;
            let config = store.config();
            writeln!(
                out,
                "tables ready: {} and {}",
                config.entitlements_table, config.payments_table
            )
            .map_err(io)?;
            Ok(())
        }
        "sign-webhook" => {
            let secrets =
                WebhookSecrets::parse(&env.optional("DODO_WEBHOOK_SECRET").unwrap_or_default())
                    .map_err(|e| ConfigError {
                        variable: "DODO_WEBHOOK_SECRET",
                        problem: e.to_string(),
                    })?;
            let id = options.required("id")?;
            let timestamp: i64 = options
                .required("timestamp")?
                .parse()
                .map_err(|_| AdminError::Usage("--timestamp must be unix seconds".to_owned()))?;
            let path = options.required("body-file")?;
            let body = std::fs::read(path)
                .map_err(|e| AdminError::Io(format!("cannot read {path}: {e}")))?;
            let key = &secrets.keys()[0];
            writeln!(
                out,
                "{}",
                webhook_signature::sign(key, id, timestamp, &body)
            )
            .map_err(io)?;
            Ok(())
        }
        "check-config" => {
            let [function] = options.positional.as_slice() else {
                return Err(AdminError::Usage(
                    "check-config takes one function name".to_owned(),
                ));
            };
            let reads = check_config(function, env)?;
            writeln!(
                out,
                "{}",
                serde_json::json!({ "function": function, "reads": reads })
            )
            .map_err(io)
        }
        "table-specs" => {
            let config = StoreConfig::from_env(env)?;
            let specs: Vec<serde_json::Value> = llmxt_core::store::table_specs(&config)
                .iter()
                .map(|spec| {
                    serde_json::json!({
                        "name": spec.name,
                        "partition_key": spec.partition_key,
                        "attributes": spec.attributes,
                        "index": spec.index.map(|(name, hash, range)| serde_json::json!({"name": name, "hash": hash, "range": range})),
                        "ttl_attribute": spec.ttl_attribute,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::from(specs)).map_err(io)
        }
        "help" | "--help" | "-h" => writeln!(out, "{USAGE}").map_err(io),
        other => Err(AdminError::Usage(format!("unknown command {other:?}"))),
    }
}

/// Loads a function's configuration from `env` exactly as the function does at start, and
/// returns the names of the variables it read.
pub fn check_config(function: &str, env: &Env) -> Result<Vec<String>, AdminError> {
    use llmxt_core::config::{EntitlementConfig, SuccessConfig, WebhookConfig};
    let (env, names) = Env::recording(env);
    match function {
        "webhook" => WebhookConfig::from_env(&env).map(drop)?,
        "success-redirect" => SuccessConfig::from_env(&env).map(drop)?,
        "entitlement" => EntitlementConfig::from_env(&env).map(drop)?,
        other => return Err(AdminError::Usage(format!("unknown function {other:?}"))),
    }
    let names = names
        .lock()
        .map(|n| n.iter().cloned().collect())
        .unwrap_or_default();
    Ok(names)
}

async fn connect(env: &Env) -> Result<Store, AdminError> {
    let config = StoreConfig::from_env(env)?;
    Ok(Store::connect(&config, ClientProfile::patient()).await)
}

fn io(error: std::io::Error) -> AdminError {
    AdminError::Io(error.to_string())
}
