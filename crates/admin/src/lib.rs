//! `llmxt-admin`: what an operator needs, working against AWS or `DYNAMODB_ENDPOINT`.
#![forbid(unsafe_code)]

use std::io::Write;
use std::time::Duration;

use llmxt_domain::config::{ConfigError, CookieConfig, Env, PlanCatalog};
use llmxt_domain::email::Email;
use llmxt_domain::privacy::{ErasureReceipt, ErasureRequest, Found, PrivacyKey, plan_erasure};
use llmxt_domain::records::{Entitlement, PaymentRecord, PlanRanking, SubscriptionRecord};
use llmxt_domain::time::{format_rfc3339, unix_now};
use llmxt_domain::token::{CookieIssuer, Session};
use llmxt_domain::webhook_signature::{self, WebhookSecrets};
use llmxt_store::config::StoreConfig;
use llmxt_store::operator::{self, Actor};
use llmxt_store::store::CommitOutcome;
use llmxt_store::store::{ClientProfile, Store, StoreError};
use serde_json::{Value, json};

pub mod import;

/// Usage text.
pub const USAGE: &str = "\
usage: llmxt-admin <command> [options]

commands:
  show EMAIL [--json]                    the entitlement (its grants and history) and the email's payments
  payments [--since 24h] [--attention] [--max-scan N] [--json]
                                         recent payments (a scan reading at most N items, default 10000);
                                         --attention: only those an operator must look at
  grant EMAIL --plan PLAN [--until DATE] --reason TEXT [--by NAME]
                                         add a manual grant (DATE: 2026-12-31 or RFC 3339)
  revoke EMAIL --reason TEXT [--by NAME] end every current grant, and the purchases behind them
  credit EMAIL --meter METER --amount N --reason TEXT [--by NAME]
                                         add N credits to a meter (a pack that expires after
                                         CREDITS_EXPIRE_DAYS), or take them with a negative N
                                         (earliest-expiring packs first, never below zero); audited
  export EMAIL                           everything stored about an address, as one JSON document
  forget EMAIL --reason TEXT [--by NAME] [--dry-run]
                                         erase an address: delete its entitlement and sign-in
                                         records, keep its payments under a pseudonym (PRIVACY_KEY),
                                         record an erasure receipt and a tombstone (ENTITLEMENT_SECRET);
                                         --dry-run only prints the plan
  reconcile [--since 72h] [--apply] [--requests-per-minute 100]
                                         compare Dodo's payments and subscriptions (DODO_PAYMENTS_API_KEY)
                                         with the tables; --apply writes the differences through the ledger
  import FILE [--dry-run] [--by NAME]   grant Pro to buyers of a previous system: CSV with a header or
                                         JSON lines (email, plan, expires_at, provider, payment_id, note);
                                         each line a grant import#<provider>#<payment_id>; --dry-run
                                         only prints the plan; exit 1 if any line failed
  mint-cookie EMAIL [--plan PLAN] [--days N]
                                         print an account cookie (every grant of EMAIL) signed with ENTITLEMENT_SECRET
  create-tables                          create both tables (idempotent), with email-index and TTL
  sign-webhook --id ID --timestamp UNIX --body-file FILE
                                         print the webhook-signature for a body (DODO_WEBHOOK_SECRET)
  check-config webhook|success-redirect|entitlement
                                         validate a function's environment as it would at start;
                                         prints the variables it reads as JSON
  table-specs                            print both tables' definitions as JSON

COMMAND --help prints that command's usage.
--by defaults to LLMXT_OPERATOR, then USER, then the login name of the process's user.
environment: AWS_REGION, ENTITLEMENTS_TABLE, PAYMENTS_TABLE, DYNAMODB_ENDPOINT,
             DODO_WEBHOOK_SECRET, ENTITLEMENT_SECRET, NEXT_PUBLIC_SITE_URL, PRODUCT_PLANS,
             DEFAULT_PLAN, PLAN_RANKING, PRODUCT_CREDITS, CREDITS_EXPIRE_DAYS, DODO_PAYMENTS_API_KEY, DODO_PAYMENTS_ENVIRONMENT,
             DODO_PAYMENTS_BASE_URL, PRIVACY_KEY (forget; export, show and reconcile use it
             to find erasure receipts); export and forget find per-address counters under
             every ENTITLEMENT_SECRET key";

/// Why a command failed; printed as one line, exit code 1 (2 for usage errors).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad arguments.
    #[error("{0}")]
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
    /// Some lines of an import could not be read: `line N: problem` for each, repeated on
    /// stderr after the report so that a script reading only errors sees them.
    #[error("{} line(s) failed, the others were applied: {}", .0.len(), .0.join("; "))]
    LinesFailed(Vec<String>),
    /// Whoever read the output stopped reading (`llmxt-admin show … | head`): not a failure.
    #[error("output closed")]
    OutputClosed,
}

impl AdminError {
    /// Process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
            Self::OutputClosed => 0,
            _ => 1,
        }
    }
}

/// Options that take no value.
const FLAGS: &[&str] = &["json", "attention", "apply", "dry-run"];

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
                if FLAGS.contains(&name) {
                    values.push((name.to_owned(), String::new()));
                    continue;
                }
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

    fn flag(&self, name: &str) -> bool {
        self.values.iter().any(|(n, _)| n == name)
    }

    fn required(&self, name: &str) -> Result<&str, AdminError> {
        self.get(name)
            .ok_or_else(|| AdminError::Usage(format!("--{name} is required")))
    }
}

/// The lines of [`USAGE`] that describe `command`, `None` for an unknown command.
fn usage_lines(command: &str) -> Option<Vec<&'static str>> {
    let mut lines = USAGE
        .lines()
        .skip_while(|line| *line != "commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .skip_while(|line| {
            line.split_whitespace().next() != Some(command)
                || !line.starts_with("  ")
                || line.starts_with("   ")
        });
    let first = lines.next()?;
    let mut found = vec![first];
    found.extend(lines.take_while(|line| line.starts_with("          ")));
    Some(found)
}

/// The usage of one command, laid out like `git help`: the synopsis, a blank line, then the
/// description indented. `None` for an unknown command.
pub fn command_usage(command: &str) -> Option<String> {
    let lines = usage_lines(command)?;
    let (first, rest) = lines.split_first()?;
    // The first line is the synopsis, then (after a run of spaces) the description's first
    // line; every further line is description.
    let (synopsis, first_description) = first
        .trim_start()
        .split_once("  ")
        .unwrap_or((first.trim_start(), ""));
    let description: Vec<String> = std::iter::once(first_description)
        .chain(rest.iter().copied())
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| format!("    {line}"))
        .collect();
    let mut text = format!("usage: llmxt-admin {}", synopsis.trim_end());
    if !description.is_empty() {
        text.push_str("\n\n");
        text.push_str(&description.join("\n"));
    }
    Some(text)
}

/// The `--options` a command's usage names.
fn known_options(command: &str) -> Vec<&'static str> {
    usage_lines(command)
        .unwrap_or_default()
        .iter()
        .flat_map(|line| line.split(|c: char| c.is_whitespace() || c == '[' || c == ']'))
        .filter_map(|word| word.strip_prefix("--"))
        .map(|word| word.trim_end_matches([',', ':', ';', ')']))
        .filter(|word| !word.is_empty())
        .collect()
}

/// The environment, with `.env` at `path` (when the file exists) filling in what the
/// environment does not set, as `scripts/dev.sh` reads it; the environment wins. The note
/// says which file was read, for the operator.
pub fn env_with_dotenv(
    env: &Env,
    path: &std::path::Path,
) -> Result<(Env, Option<String>), AdminError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((env.clone(), None));
        }
        Err(error) => {
            return Err(AdminError::Io(format!(
                "cannot read {}: {error}",
                path.display()
            )));
        }
    };
    let pairs = llmxt_domain::config::parse_dotenv(&text);
    let note = format!(
        "read {} ({} variables; the environment wins)",
        path.display(),
        pairs.len()
    );
    Ok((Env::with_defaults(env, pairs), Some(note)))
}

/// Runs one command line (without the program name). A usage error names where to look.
pub async fn run(args: &[String], env: &Env, out: &mut dyn Write) -> Result<(), AdminError> {
    let command = args.first().cloned();
    run_command(args, env, out)
        .await
        .map_err(|error| match error {
            AdminError::Usage(message) => {
                let help = match command.as_deref().filter(|c| command_usage(c).is_some()) {
                    Some(command) => format!("llmxt-admin {command} --help"),
                    None => "llmxt-admin --help".to_owned(),
                };
                AdminError::Usage(format!("{message} (see `{help}`)"))
            }
            other => other,
        })
}

async fn run_command(args: &[String], env: &Env, out: &mut dyn Write) -> Result<(), AdminError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(AdminError::Usage("no command given".to_owned()));
    };
    if rest.iter().any(|arg| arg == "--help" || arg == "-h") {
        let usage = command_usage(command)
            .ok_or_else(|| AdminError::Usage(format!("unknown command {command:?}")))?;
        return writeln!(out, "{usage}").map_err(io);
    }
    let known = known_options(command);
    if let Some(unknown) = rest
        .iter()
        .filter_map(|arg| arg.strip_prefix("--"))
        .find(|name| command_usage(command).is_some() && !known.contains(name))
    {
        return Err(AdminError::Usage(format!("unknown option --{unknown}")));
    }
    let options = Options::parse(rest)?;
    let takes_positional = matches!(
        command.as_str(),
        "check-config"
            | "show"
            | "grant"
            | "credit"
            | "revoke"
            | "mint-cookie"
            | "export"
            | "forget"
            | "import"
            | "help"
    );
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
        "show" => {
            let email = one_email(&options)?;
            let privacy_key = PrivacyKey::optional_from_env(env)?;
            let store = connect(env).await?;
            let plans = ShownPlans {
                ranking: llmxt_domain::config::plan_ranking_from_env(env)?,
                features: llmxt_domain::config::plan_features_from_env(env)?,
                names: llmxt_domain::config::PlanNames::parse(
                    &env.optional("PLAN_NAMES").unwrap_or_default(),
                )?,
            };
            show(
                &store,
                &email,
                privacy_key.as_ref(),
                &plans,
                options.flag("json"),
                out,
            )
            .await
        }
        "export" => {
            let email = one_email(&options)?;
            let privacy_key = PrivacyKey::optional_from_env(env)?;
            let counters = counter_prefixes(env, &email)?;
            let tombstones = tombstone_keys(env, &email, false)?;
            let store = connect(env).await?;
            let keys = FoundBy {
                counters: &counters,
                tombstones: &tombstones,
            };
            export(&store, &email, privacy_key.as_ref(), keys, out).await
        }
        "forget" => {
            let email = one_email(&options)?;
            let reason = options.required("reason")?;
            if reason.trim().is_empty() {
                return Err(AdminError::Usage(
                    "--reason must say why (e.g. the request's reference)".to_owned(),
                ));
            }
            if reason.to_ascii_lowercase().contains(email.as_str()) {
                return Err(AdminError::Usage(
                    "--reason must not contain the address: the receipt is kept without it"
                        .to_owned(),
                ));
            }
            let by = operator(&options, env)?;
            let privacy_key = PrivacyKey::from_env(env)?;
            let counters = counter_prefixes(env, &email)?;
            let tombstones = tombstone_keys(env, &email, true)?;
            let store = connect(env).await?;
            let request = ErasureRequest {
                by: &by,
                reason,
                now: now(),
                tombstone_keys: &tombstones,
            };
            forget(
                &store,
                &email,
                &privacy_key,
                &counters,
                request,
                options.flag("dry-run"),
                out,
            )
            .await
        }
        "payments" => {
            let since = parse_since(options.get("since").unwrap_or("24h"), now())?;
            let max_scan: i32 = options
                .get("max-scan")
                .unwrap_or("10000")
                .parse()
                .map_err(|_| AdminError::Usage("--max-scan must be a number".to_owned()))?;
            let store = connect(env).await?;
            let (mut payments, complete) = store.recent_payments(since, max_scan).await?;
            if options.flag("attention") {
                payments.retain(|p| p.attention.is_some());
            }
            print_payments(&payments, options.flag("json"), out)?;
            if !complete {
                writeln!(
                    out,
                    "(stopped after scanning {max_scan} items: raise --max-scan to read further)"
                )
                .map_err(io)?;
            }
            Ok(())
        }
        "grant" => {
            let email = one_email(&options)?;
            let plan = options.required("plan")?;
            let reason = options.required("reason")?;
            let until = options.get("until").map(parse_date).transpose()?;
            let plans = PlanCatalog::from_env(env)?;
            check_grant(plans.ranking(), plan, until, now())?;
            let by = operator(&options, env)?;
            let store = connect(env).await?;
            let actor = Actor {
                by: &by,
                now: now(),
            };
            operator::grant(&store, plans.ranking(), &email, plan, until, reason, actor).await?;
            writeln!(
                out,
                "granted {plan} to {} until {} (by {by})",
                email.as_str(),
                until.map_or("no end".to_owned(), format_rfc3339)
            )
            .map_err(io)
        }
        "credit" => {
            let email = one_email(&options)?;
            let meter = options.required("meter")?;
            let reason = options.required("reason")?;
            let amount = parse_credit_amount(options.required("amount")?)?;
            if !llmxt_domain::config::is_token(meter) {
                return Err(AdminError::Usage(format!(
                    "--meter {meter:?} is not a meter name (letters, digits, _ - .)"
                )));
            }
            let credits = llmxt_domain::credits::CreditProducts::from_env(env)?;
            let by = operator(&options, env)?;
            let store = connect(env).await?;
            let now = now();
            let order = llmxt_store::usage::CreditOrder {
                email: &email,
                meter,
                amount,
                expires_at: now + credits.lifetime_seconds,
                by: &by,
                reason,
                now,
            };
            store.adjust_credits(order).await.map_err(|e| match e {
                llmxt_store::usage::CreditError::Store(e) => AdminError::from(e),
                refused => AdminError::Usage(refused.to_string()),
            })?;
            let left = store
                .usage_of(&email)
                .await?
                .get(meter)
                .map_or(0, |item| item.credits(now));
            let verb = if amount > 0 { "added" } else { "took" };
            writeln!(
                out,
                "{verb} {} {meter} credits {} {} (by {by}); {left} left",
                amount.abs(),
                if amount > 0 { "to" } else { "from" },
                email.as_str()
            )
            .map_err(io)
        }
        "import" => {
            let [path] = options.positional.as_slice() else {
                return Err(AdminError::Usage("give one FILE".to_owned()));
            };
            let text = std::fs::read_to_string(path)
                .map_err(|e| AdminError::Io(format!("cannot read {path}: {e}")))?;
            let plans = PlanCatalog::from_env(env)?;
            let by = operator(&options, env)?;
            let store = connect(env).await?;
            import::run(
                &store,
                plans.ranking(),
                &text,
                &by,
                now(),
                options.flag("dry-run"),
                out,
            )
            .await
        }
        "revoke" => {
            let email = one_email(&options)?;
            let reason = options.required("reason")?;
            let by = operator(&options, env)?;
            let store = connect(env).await?;
            let actor = Actor {
                by: &by,
                now: now(),
            };
            let plans = PlanCatalog::from_env(env)?;
            match operator::revoke(&store, plans.ranking(), &email, reason, actor).await {
                Err(StoreError::NotFound(_)) => {
                    // The operator typed the address: show it as typed, not masked.
                    return Err(AdminError::Io(format!(
                        "no entitlement for {}",
                        email.as_str()
                    )));
                }
                other => other?,
            };
            writeln!(out, "revoked {} (by {by}): {reason}", email.as_str()).map_err(io)
        }
        "reconcile" => {
            let since = parse_since(options.get("since").unwrap_or("72h"), now())?;
            let per_minute: u32 = options
                .get("requests-per-minute")
                .unwrap_or("100")
                .parse()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    AdminError::Usage("--requests-per-minute must be from 1 to 100000".to_owned())
                })?;
            let api_config =
                llmxt_dodo::config::DodoApiConfig::from_env(env)?.ok_or(ConfigError {
                    variable: "DODO_PAYMENTS_API_KEY",
                    problem: "is required for reconcile (a read-only key is enough)".to_owned(),
                })?;
            let api = llmxt_dodo::dodo_api::DodoApi::new(api_config, Duration::from_secs(15), 5);
            let plans = PlanCatalog::from_env(env)?;
            let settings = llmxt_domain::policy::PolicySettings {
                plans: &plans,
                claim_ttl_seconds: 0,
                grace_seconds: env.seconds(
                    "SUBSCRIPTION_GRACE_SECONDS",
                    3 * 86_400,
                    0,
                    30 * 86_400,
                )?,
            };
            let apply = options.flag("apply");
            let privacy_key = PrivacyKey::optional_from_env(env)?;
            let run = llmxt_dodo::reconcile::ReconcileOptions {
                since,
                apply,
                min_interval: Duration::from_secs(60) / per_minute,
                now: now(),
                privacy_key: privacy_key.as_ref(),
            };
            let store = connect(env).await?;
            let mut progress = |line: String| eprintln!("reconcile: {line}");
            let report =
                llmxt_dodo::reconcile::reconcile(&store, &api, settings, run, &mut progress)
                    .await
                    .map_err(|e| AdminError::Io(e.to_string()))?;
            print_reconcile(&report, apply, out)
        }
        "mint-cookie" => {
            let email = one_email(&options)?;
            let cookie = CookieConfig::from_env(env)?;
            let plan = match options.get("plan") {
                Some(plan) => plan.to_owned(),
                None => PlanCatalog::from_env(env)?.default_plan().to_owned(),
            };
            let days: i64 = options
                .get("days")
                .map_or(Ok(cookie.lifetime_seconds / 86_400), str::parse)
                .map_err(|_| AdminError::Usage("--days must be a whole number".to_owned()))?;
            if !(1..=400).contains(&days) {
                return Err(AdminError::Usage("--days must be from 1 to 400".to_owned()));
            }
            // The operator vouches for the mailbox: an account cookie.
            let issuer = CookieIssuer::new(&cookie).with_lifetime(days * 86_400);
            let now = now();
            let issued = issuer
                .issue(&email, &plan, &Session::account(now), now)
                .ok_or_else(|| AdminError::Usage("the cookie would expire at once".to_owned()))?;
            writeln!(out, "{}={}", issuer.name(), issued.token).map_err(io)
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
            let specs: Vec<serde_json::Value> = llmxt_store::store::table_specs(&config)
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
        "help" | "--help" | "-h" => match options.positional.as_slice() {
            [] => writeln!(out, "{USAGE}").map_err(io),
            [command] => {
                let usage = command_usage(command)
                    .ok_or_else(|| AdminError::Usage(format!("unknown command {command:?}")))?;
                writeln!(out, "{usage}").map_err(io)
            }
            _ => Err(AdminError::Usage(
                "help takes at most one command".to_owned(),
            )),
        },
        other => Err(AdminError::Usage(format!("unknown command {other:?}"))),
    }
}

/// Loads a function's configuration from `env` exactly as the function does at start, and
/// returns the names of the variables it read.
pub fn check_config(function: &str, env: &Env) -> Result<Vec<String>, AdminError> {
    use entitlement::config::EntitlementConfig;
    use success_redirect::config::SuccessConfig;
    use webhook::config::WebhookConfig;
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

fn now() -> i64 {
    unix_now()
}

fn one_email(options: &Options) -> Result<Email, AdminError> {
    let [raw] = options.positional.as_slice() else {
        return Err(AdminError::Usage("give one EMAIL".to_owned()));
    };
    Email::parse(raw).map_err(|_| AdminError::Usage(format!("{raw:?} is not an email address")))
}

fn operator(options: &Options, env: &Env) -> Result<String, AdminError> {
    options
        .get("by")
        .map(str::to_owned)
        .or_else(|| env.optional("LLMXT_OPERATOR"))
        .or_else(|| env.optional("USER"))
        .or_else(login_name)
        .ok_or_else(|| {
            AdminError::Usage("say who you are with --by NAME (or set LLMXT_OPERATOR)".to_owned())
        })
}

/// The login name of the process's user (its real uid looked up in /etc/passwd), for
/// attributing changes when neither `--by`, `LLMXT_OPERATOR` nor `USER` says who.
fn login_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    });
    Some(name.unwrap_or_else(|| format!("uid {uid}")))
}

/// `2026-12-31` (midnight UTC) or an RFC 3339 date-time, to unix seconds.
fn parse_date(text: &str) -> Result<i64, AdminError> {
    llmxt_domain::time::parse_iso8601_seconds(text)
        .ok_or_else(|| AdminError::Usage(format!("--until {text:?} is not a date (2026-12-31)")))
}

/// A manual grant must give something: a plan of `PLAN_RANKING` other than `free`, until a
/// time in the future.
fn check_grant(
    ranking: &PlanRanking,
    plan: &str,
    until: Option<i64>,
    now: i64,
) -> Result<(), AdminError> {
    let grantable: Vec<&str> = ranking
        .plans()
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "free")
        .collect();
    if !grantable.contains(&plan) {
        return Err(AdminError::Usage(format!(
            "--plan {plan:?} is not a plan to grant: use one of {} (PLAN_RANKING)",
            grantable.join(", ")
        )));
    }
    if let Some(until) = until.filter(|until| *until <= now) {
        return Err(AdminError::Usage(format!(
            "--until {} is not in the future: the grant would give nothing",
            format_rfc3339(until)
        )));
    }
    Ok(())
}

/// A non-zero whole number of credits, at most 10^12 either way.
fn parse_credit_amount(text: &str) -> Result<i64, AdminError> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n != 0 && n.abs() <= llmxt_domain::usage::MAX_AMOUNT)
        .ok_or_else(|| {
            AdminError::Usage(format!(
                "--amount {text:?} must be a non-zero whole number up to 10^12 (negative takes credits)"
            ))
        })
}

/// `24h`, `7d`, `30m` before `now`.
fn parse_since(text: &str, now: i64) -> Result<i64, AdminError> {
    let invalid = || {
        AdminError::Usage(format!(
            "--since {text:?} is not a duration like 24h, 7d or 30m"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let amount: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    Ok(now - amount.saturating_mul(seconds))
}

/// What `show` needs to sum up the grants as `/api/entitlement` does.
struct ShownPlans {
    ranking: llmxt_domain::records::PlanRanking,
    features: llmxt_domain::access::PlanFeatures,
    /// `PLAN_NAMES`: what buyers read, shown beside each id.
    names: llmxt_domain::config::PlanNames,
}

impl ShownPlans {
    /// `professional ("Pro")`: the id, and the name buyers read.
    fn label(&self, plan: &str) -> String {
        format!("{plan} (\"{}\")", self.names.display(plan))
    }
}

/// `billing: active, renews …, scheduled: professional on …`.
fn billing_line(billing: &llmxt_domain::access::Billing) -> String {
    let mut line = billing.state.as_str().to_owned();
    if let Some(at) = billing.renews_at {
        line.push_str(&format!(", renews {}", format_rfc3339(at)));
    }
    if let Some(at) = billing.ends_at {
        line.push_str(&format!(", ends {}", format_rfc3339(at)));
    }
    if let Some(plan) = &billing.scheduled_plan {
        let at = billing.scheduled_at.map_or("-".to_owned(), format_rfc3339);
        line.push_str(&format!(", scheduled: {plan} on {at}"));
    }
    line
}

fn billing_json(billing: &llmxt_domain::access::Billing) -> Value {
    json!({
        "state": billing.state.as_str(),
        "renews_at": billing.renews_at.map(format_rfc3339),
        "ends_at": billing.ends_at.map(format_rfc3339),
        "scheduled_plan": billing.scheduled_plan,
        "scheduled_at": billing.scheduled_at.map(format_rfc3339),
    })
}

use llmxt_store::usage::UsageItem;
use std::collections::BTreeMap;

async fn show(
    store: &Store,
    email: &Email,
    privacy_key: Option<&PrivacyKey>,
    plans: &ShownPlans,
    as_json: bool,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let entitlement = store.get_entitlement(email).await?;
    let payments = store.payments_for_email(email).await?;
    let usage = store.usage_of(email).await?;
    let receipt = match privacy_key {
        Some(key) => store.get_erasure_receipt(&key.pseudonym(email)).await?,
        None => None,
    };
    if entitlement.is_none() && payments.is_empty() && receipt.is_none() && usage.is_empty() {
        let hint = if privacy_key.is_none() {
            " (set PRIVACY_KEY to look for an erasure receipt)"
        } else {
            ""
        };
        return Err(StoreError::NotFound(format!(
            "no entitlement and no payments for {}{hint}",
            email.as_str()
        ))
        .into());
    }
    let now = now();
    let summary = llmxt_domain::access::access_summary(
        entitlement.iter().flat_map(|e| e.grants.values()),
        now,
        &plans.ranking,
        &plans.features,
    );
    if as_json {
        let value = json!({
            "email": email.as_str(),
            "pro": entitlement.as_ref().is_some_and(|e| e.has_pro(now, &plans.ranking)),
            "features": summary.features,
            "billing": summary.billing.as_ref().map(billing_json),
            "entitlement": entitlement.as_ref().map(|e| entitlement_json(e, now)),
            "payments": payments.iter().map(payment_json).collect::<Vec<_>>(),
            "usage": usage_json(&usage, now),
            "credits": credits_json(&usage, now),
            "erasure_receipt": receipt.as_ref().map(receipt_json),
        });
        return writeln!(out, "{value:#}").map_err(io);
    }
    writeln!(out, "{}", email.as_str()).map_err(io)?;
    if let Some(receipt) = &receipt {
        print_receipt(receipt, out)?;
    }
    match &entitlement {
        None => writeln!(out, "  entitlement: none").map_err(io)?,
        Some(e) => {
            writeln!(
                out,
                "  entitlement: {} — {} plan {}, until {}, source {}{}{}",
                if e.has_pro(now, &plans.ranking) {
                    "PRO"
                } else {
                    "not pro"
                },
                e.status,
                plans.label(&e.plan),
                e.expires_at.map_or("no end".to_owned(), format_rfc3339),
                e.source,
                e.payment_id
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default(),
                e.reason
                    .as_ref()
                    .map(|r| format!(", reason: {r}"))
                    .unwrap_or_default(),
            )
            .map_err(io)?;
            writeln!(out, "  features: {}", summary.features.join(", ")).map_err(io)?;
            if let Some(billing) = &summary.billing {
                writeln!(out, "  billing: {}", billing_line(billing)).map_err(io)?;
            }
            writeln!(out, "  grants: {}", e.grants.len()).map_err(io)?;
            for grant in e.grants.values() {
                writeln!(
                    out,
                    "    {:<28} {:<7} {:<12} {:<9} until {}{}; {} plan, billing: {}",
                    grant.key,
                    if grant.gives_pro(now, &plans.ranking) {
                        "PRO"
                    } else {
                        "-"
                    },
                    grant.source,
                    grant.status,
                    grant.expires_at.map_or("no end".to_owned(), format_rfc3339),
                    grant
                        .reason
                        .as_ref()
                        .map(|r| format!(", reason: {r}"))
                        .unwrap_or_default(),
                    plans.label(&grant.plan),
                    billing_line(&llmxt_domain::access::Billing::of(grant, now)),
                )
                .map_err(io)?;
            }
            writeln!(out, "  history:").map_err(io)?;
            for change in &e.history {
                writeln!(
                    out,
                    "    {}  {:<28} {:<9} by {}{}",
                    format_rfc3339(change.at),
                    change.grant.as_deref().unwrap_or("-"),
                    change.status,
                    change.by,
                    change
                        .reason
                        .as_ref()
                        .map(|r| format!(" — {r}"))
                        .unwrap_or_default()
                )
                .map_err(io)?;
            }
        }
    }
    print_usage(&usage, now, out)?;
    writeln!(out, "  payments: {}", payments.len()).map_err(io)?;
    print_payment_lines(&payments, out)
}

/// `usage:` lines of `show`: each meter's periods, with the allowance the last reserve saw.
fn print_usage(
    usage: &BTreeMap<String, UsageItem>,
    now: i64,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if usage.is_empty() {
        return Ok(());
    }
    writeln!(out, "  usage:").map_err(io)?;
    for (meter, item) in usage {
        let holds: Vec<&llmxt_domain::usage::Hold> = item.holds.values().collect();
        for pack in item.packs.values() {
            writeln!(
                out,
                "    {meter:<12} credits {:<10} of {:<10} {:<8} expires {}  (pack {}){}",
                pack.left.max(0),
                pack.granted,
                llmxt_domain::credits::pack_state(pack, &holds, now),
                format_rfc3339(pack.expires_at),
                pack.id,
                pack.removed_left
                    .map(|left| format!(
                        " removed {left} left, {} used",
                        pack.granted - pack.taken - left
                    ))
                    .unwrap_or_default(),
            )
            .map_err(io)?;
        }
        for adjustment in &item.adjustments {
            writeln!(
                out,
                "    {meter:<12} credit {:+} at {} by {}: {}",
                adjustment.amount,
                format_rfc3339(adjustment.at),
                adjustment.by,
                adjustment.reason
            )
            .map_err(io)?;
        }
        for (bucket, balance) in item.periods(now) {
            let amount = |v: Option<i64>| v.map_or("unlimited".to_owned(), |v| v.to_string());
            writeln!(
                out,
                "    {meter:<12} used {:<10} reserved {:<8} limit {:<10} remaining {:<10} resets {}  (grant {})",
                balance.used,
                balance.reserved,
                amount(balance.limit),
                amount(balance.remaining),
                format_rfc3339(bucket.resets_at),
                bucket.grant,
            )
            .map_err(io)?;
        }
    }
    Ok(())
}

/// Usage for `show --json` and `export`: per meter, every stored period.
fn usage_json(usage: &BTreeMap<String, UsageItem>, now: i64) -> Value {
    let meters: serde_json::Map<String, Value> = usage
        .iter()
        .map(|(meter, item)| {
            let periods: Vec<Value> = item
                .periods(now)
                .into_iter()
                .map(|(bucket, balance)| {
                    json!({
                        "grant": bucket.grant,
                        "resets_at": format_rfc3339(bucket.resets_at),
                        "limit": balance.limit,
                        "used": balance.used,
                        "reserved": balance.reserved,
                        "remaining": balance.remaining,
                    })
                })
                .collect();
            (
                meter.clone(),
                json!({
                    "periods": periods,
                    "holds": item.holds.len(),
                    "credits": item.credits(now),
                }),
            )
        })
        .collect();
    Value::Object(meters)
}

/// Credit packs and operators' credit changes for `show --json` and `export`, per meter.
fn credits_json(usage: &BTreeMap<String, UsageItem>, now: i64) -> Value {
    let meters: serde_json::Map<String, Value> = usage
        .iter()
        .filter(|(_, item)| !item.packs.is_empty() || !item.adjustments.is_empty())
        .map(|(meter, item)| {
            let holds: Vec<&llmxt_domain::usage::Hold> = item.holds.values().collect();
            let packs: Vec<Value> = item
                .packs
                .values()
                .map(|pack| {
                    json!({
                        "pack": pack.id,
                        "granted": pack.granted,
                        "left": pack.left.max(0),
                        "taken_by_operator": pack.taken,
                        "state": llmxt_domain::credits::pack_state(pack, &holds, now),
                        "added_at": format_rfc3339(pack.added_at),
                        "expires_at": format_rfc3339(pack.expires_at),
                        "removed_at": pack.removed_at.map(format_rfc3339),
                        "removed_left": pack.removed_left,
                        "note": pack.note,
                    })
                })
                .collect();
            let adjustments: Vec<Value> = item
                .adjustments
                .iter()
                .map(|a| json!({"at": format_rfc3339(a.at), "amount": a.amount, "by": a.by, "reason": a.reason}))
                .collect();
            (
                meter.clone(),
                json!({"available": item.credits(now), "packs": packs, "operator_changes": adjustments}),
            )
        })
        .collect();
    Value::Object(meters)
}

fn print_receipt(receipt: &ErasureReceipt, out: &mut dyn Write) -> Result<(), AdminError> {
    for erasure in &receipt.erasures {
        writeln!(
            out,
            "  erased {} by {}: {} ({} payment(s) kept as {})",
            format_rfc3339(erasure.at),
            erasure.by,
            erasure.reason,
            erasure.payment_ids.len(),
            receipt.pseudonym
        )
        .map_err(io)?;
    }
    Ok(())
}

fn receipt_json(receipt: &ErasureReceipt) -> Value {
    json!({
        "pseudonym": receipt.pseudonym,
        "erasures": receipt.erasures.iter().map(|e| json!({
            "at": format_rfc3339(e.at),
            "by": e.by,
            "reason": e.reason,
            "payment_ids": e.payment_ids,
            "subscription_ids": e.subscription_ids,
            "entitlement_deleted": e.entitlement_deleted,
            "restore_records_deleted": e.restore_records_deleted,
        })).collect::<Vec<_>>(),
    })
}

fn subscription_json(s: &SubscriptionRecord) -> Value {
    json!({
        "subscription_id": s.subscription_id,
        "email": s.email.as_ref().map(Email::as_str),
        "status": s.status,
        "product_id": s.product_id,
        "next_billing_date": s.next_billing_date.map(format_rfc3339),
        "claim_payment_id": s.claim_payment_id,
        "revoked_period_end": s.revoked_period_end.map(format_rfc3339),
        "erased_as": s.erased_as,
        "updated_at": format_rfc3339(s.updated_at),
    })
}

/// `export EMAIL`: everything stored about the address, as one JSON document. Sign-in
/// tokens and counters appear as metadata only (never a token or its hash).
/// The key prefixes of `email`'s per-address counters under every `ENTITLEMENT_SECRET` key
/// (the functions key them with the first; a rotation keeps older ones); none when it is
/// not set.
fn counter_prefixes(env: &Env, email: &Email) -> Result<Vec<String>, AdminError> {
    if env.optional("ENTITLEMENT_SECRET").is_none() {
        return Ok(Vec::new());
    }
    Ok(env
        .signing_keys("ENTITLEMENT_SECRET")?
        .iter()
        .map(|key| llmxt_domain::privacy::email_counter_prefix(key.expose(), email))
        .collect())
}

/// The keys an address's records are found by besides the address itself.
#[derive(Debug, Clone, Copy)]
struct FoundBy<'a> {
    /// Counter key prefixes ([`counter_prefixes`]).
    counters: &'a [String],
    /// Tombstone keys ([`tombstone_keys`]).
    tombstones: &'a [String],
}

/// The keys of `email`'s erasure tombstones under every `ENTITLEMENT_SECRET` key (the
/// functions find them under the keys they hold). `forget` requires the variable: without it
/// the functions could not tell a late delivery of the erased buyer.
fn tombstone_keys(env: &Env, email: &Email, required: bool) -> Result<Vec<String>, AdminError> {
    if env.optional("ENTITLEMENT_SECRET").is_none() {
        if required {
            return Err(ConfigError::new(
                "ENTITLEMENT_SECRET",
                "is required by forget: the erasure tombstone that stops late deliveries from bringing the address back is keyed under it (set it as the functions have it)",
            )
            .into());
        }
        return Ok(Vec::new());
    }
    Ok(env
        .signing_keys("ENTITLEMENT_SECRET")?
        .iter()
        .map(|key| llmxt_domain::privacy::Tombstone::key(key.expose(), email))
        .collect())
}

async fn export(
    store: &Store,
    email: &Email,
    privacy_key: Option<&PrivacyKey>,
    keys: FoundBy<'_>,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let counters = keys.counters;
    let pseudonym = privacy_key.map(|key| key.pseudonym(email));
    let found = store
        .find_by_email(email, pseudonym.as_deref(), counters, keys.tombstones)
        .await?;
    let usage = store.usage_of(email).await?;
    let now = now();
    let mut not_included = vec![
        "Dodo Payments' own records of this customer (ask Dodo: see docs/privacy.md)",
        "CloudWatch logs (emails are masked there) and table backups",
    ];
    if privacy_key.is_none() {
        not_included.push("erasure receipts (PRIVACY_KEY is not set)");
    }
    if counters.is_empty() {
        not_included
            .push("per-address counters (ENTITLEMENT_SECRET is not set; they expire within a day)");
    }
    let value = json!({
        "email": email.as_str(),
        "exported_at": format_rfc3339(now),
        "pro": found.entitlement.as_ref().is_some_and(|e| e.is_pro(now)),
        "entitlement": found.entitlement.as_ref().map(|e| entitlement_json(e, now)),
        "payments": found.payments.iter().map(payment_json).collect::<Vec<_>>(),
        "subscriptions": found.subscriptions.iter().map(subscription_json).collect::<Vec<_>>(),
        "restore_records": found.restore_records.iter().map(|r| json!({
            "kind": r.kind,
            "expires_at": r.expires_at.map(format_rfc3339),
            "used_at": r.used_at.map(format_rfc3339),
            "count": r.count,
            "deleted_by_ttl_after": r.ttl.map(format_rfc3339),
        })).collect::<Vec<_>>(),
        "usage": usage_json(&usage, now),
        "credits": credits_json(&usage, now),
        "erasure_receipt": found.receipt.as_ref().map(receipt_json),
        "erasure_tombstones": found.tombstones.iter().map(|t| json!({
            "pseudonym": t.pseudonym,
            "erased_at": format_rfc3339(t.erased_at),
        })).collect::<Vec<_>>(),
        "not_included": not_included,
    });
    writeln!(out, "{value:#}").map_err(io)
}

/// `forget EMAIL`: reads everything stored about the address, plans the erasure, prints the
/// plan and (unless a dry run) writes it; re-reads and re-plans when a webhook changed a
/// record meanwhile. A second run finds nothing left and changes nothing.
async fn forget(
    store: &Store,
    email: &Email,
    key: &PrivacyKey,
    counters: &[String],
    request: ErasureRequest<'_>,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let pseudonym = key.pseudonym(email);
    let usage = store.usage_of(email).await?;
    let meters: Vec<&str> = usage.keys().map(String::as_str).collect();
    if !meters.is_empty() {
        if !dry_run {
            store.delete_usage(email, &meters).await?;
        }
        let verb = if dry_run { "would delete" } else { "deleted" };
        let packs: usize = usage.values().map(|item| item.packs.len()).sum();
        let credits = if packs > 0 {
            format!(" and {packs} credit pack(s)")
        } else {
            String::new()
        };
        writeln!(
            out,
            "usage: {verb} the counters{credits} of {}",
            meters.join(", ")
        )
        .map_err(io)?;
    }
    for _ in 0..5 {
        let found = store
            .find_by_email(email, Some(&pseudonym), counters, request.tombstone_keys)
            .await?;
        let plan = plan_erasure(&found, &pseudonym, request);
        if plan.is_empty() {
            writeln!(
                out,
                "nothing stored for {}: nothing changed{}",
                email.as_str(),
                found
                    .receipt
                    .as_ref()
                    .and_then(ErasureReceipt::last_erased_at)
                    .map(|at| format!(" (erased {}, receipt {pseudonym})", format_rfc3339(at)))
                    .unwrap_or_default()
            )
            .map_err(io)?;
            return Ok(());
        }
        if !dry_run && store.erase(&plan).await? == CommitOutcome::Conflict {
            continue;
        }
        return print_erasure(email, &found, &plan, dry_run, out);
    }
    Err(StoreError::Contention.into())
}

fn print_erasure(
    email: &Email,
    found: &Found,
    plan: &llmxt_domain::privacy::ErasurePlan,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let verb = |done: &'static str, planned: &'static str| if dry_run { planned } else { done };
    writeln!(
        out,
        "{} {} as {}{}",
        verb("erased", "would erase"),
        email.as_str(),
        plan.pseudonym,
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    )
    .map_err(io)?;
    if let Some(entitlement) = &plan.entitlement {
        writeln!(
            out,
            "  entitlement {}: {} grant(s), {} history entr(ies)",
            verb("deleted", "to delete"),
            entitlement.grants.len(),
            entitlement.history.len()
        )
        .map_err(io)?;
    }
    let ids = |ids: Vec<&str>| {
        if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.join(", ")
        }
    };
    writeln!(
        out,
        "  payments {} (id, amount, currency, status, product, dates, refunds kept): {}",
        verb("pseudonymised", "to pseudonymise"),
        ids(plan
            .payments
            .iter()
            .map(|p| p.payment_id.as_str())
            .collect())
    )
    .map_err(io)?;
    writeln!(
        out,
        "  subscription records {}: {}",
        verb("pseudonymised", "to pseudonymise"),
        ids(plan
            .subscriptions
            .iter()
            .map(|s| s.subscription_id.as_str())
            .collect())
    )
    .map_err(io)?;
    writeln!(
        out,
        "  sign-in tokens and rate-limit counters {}: {}",
        verb("deleted", "to delete"),
        plan.restore_keys.len()
    )
    .map_err(io)?;
    if !plan.tombstones.is_empty() {
        writeln!(
            out,
            "  tombstone {} (keyed, no address): later deliveries of purchases made before {} are stored under the pseudonym",
            verb("recorded", "to record"),
            plan.tombstones
                .first()
                .map_or_else(String::new, |t| format_rfc3339(t.erased_at)),
        )
        .map_err(io)?;
    }
    let last = plan.receipt.erasures.last();
    writeln!(
        out,
        "  receipt {} {}: by {}, reason: {}",
        verb("recorded", "to record"),
        ErasureReceipt::key(&plan.pseudonym),
        last.map_or("", |e| e.by.as_str()),
        last.map_or("", |e| e.reason.as_str()),
    )
    .map_err(io)?;
    for subscription in &plan.live_subscriptions {
        writeln!(
            out,
            "  warning: subscription {subscription} still gives access: cancel it at Dodo, or its renewals are kept under the pseudonym only"
        )
        .map_err(io)?;
    }
    let mut customers: Vec<&str> = found
        .payments
        .iter()
        .filter_map(|p| p.customer_id.as_deref())
        .collect();
    customers.sort_unstable();
    customers.dedup();
    writeln!(
        out,
        "  Dodo keeps its own records of this buyer{}: ask Dodo to erase them (docs/privacy.md)",
        if customers.is_empty() {
            String::new()
        } else {
            format!(" (customer {})", customers.join(", "))
        }
    )
    .map_err(io)
}

fn print_reconcile(
    report: &llmxt_dodo::reconcile::Report,
    applied: bool,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    writeln!(
        out,
        "Dodo lists {} payment(s) and {} subscription(s) in the window; {} difference(s){}",
        report.payments_listed,
        report.subscriptions_listed,
        report.differences.len(),
        if applied {
            format!(", {} applied", report.applied)
        } else if report.differences.is_empty() {
            String::new()
        } else {
            " (dry run: --apply writes them)".to_owned()
        }
    )
    .map_err(io)?;
    if !report.erased_skipped.is_empty() {
        writeln!(
            out,
            "skipped {} object(s) of erased buyers (erasure receipts): {}",
            report.erased_skipped.len(),
            report.erased_skipped.join(", ")
        )
        .map_err(io)?;
    }
    for difference in &report.differences {
        writeln!(
            out,
            "    {:<12} {:<28} {:<32} {}",
            difference.kind,
            difference.id,
            difference.email.as_deref().unwrap_or("(no email)"),
            difference.problem
        )
        .map_err(io)?;
    }
    Ok(())
}

fn print_payments(
    payments: &[PaymentRecord],
    as_json: bool,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if as_json {
        let list: Vec<Value> = payments.iter().map(payment_json).collect();
        return writeln!(out, "{:#}", Value::from(list)).map_err(io);
    }
    writeln!(out, "{} payment(s)", payments.len()).map_err(io)?;
    print_payment_lines(payments, out)
}

fn print_payment_lines(payments: &[PaymentRecord], out: &mut dyn Write) -> Result<(), AdminError> {
    for p in payments {
        let flags = [
            p.refund_status.clone(),
            p.dispute_status.clone(),
            p.access_revoked.as_ref().map(|r| format!("revoked: {r}")),
            p.attention.as_ref().map(|a| format!("ATTENTION: {a}")),
            p.claim_redeemed_at.map(|_| "claimed".to_owned()),
        ];
        let flags: Vec<String> = flags.into_iter().flatten().collect();
        writeln!(
            out,
            "    {}  {:<24} {:<10} {:>8} {:<3}  {}  {}",
            format_rfc3339(p.created_at),
            p.payment_id,
            p.status,
            p.total_amount.map(|a| a.to_string()).unwrap_or_default(),
            p.currency.as_deref().unwrap_or(""),
            p.email.as_ref().map_or("(no email)", Email::as_str),
            flags.join(", ")
        )
        .map_err(io)?;
    }
    Ok(())
}

fn entitlement_json(e: &Entitlement, now: i64) -> Value {
    json!({
        "grants": e.grants.values().map(|g| json!({
            "key": g.key,
            "source": g.source,
            "plan": g.plan,
            "status": g.status,
            "gives_access": g.gives_access(now),
            "expires_at": g.expires_at.map(format_rfc3339),
            "payment_id": g.payment_id,
            "subscription_id": g.subscription_id,
            "product_id": g.product_id,
            "revoked_period_end": g.revoked_period_end.map(format_rfc3339),
            "subscription_status": g.subscription_status,
            "billing": billing_json(&llmxt_domain::access::Billing::of(g, now)),
            "scheduled_plan": g.scheduled_plan,
            "scheduled_product_id": g.scheduled_product_id,
            "scheduled_at": g.scheduled_at.map(format_rfc3339),
            "reason": g.reason,
            "changed_by": g.changed_by,
            "updated_at": format_rfc3339(g.updated_at),
        })).collect::<Vec<_>>(),
        "status": e.status,
        "plan": e.plan,
        "expires_at": e.expires_at.map(format_rfc3339),
        "source": e.source,
        "payment_id": e.payment_id,
        "subscription_id": e.subscription_id,
        "product_id": e.product_id,
        "reason": e.reason,
        "changed_by": e.changed_by,
        "updated_at": format_rfc3339(e.updated_at),
        "history": e.history.iter().map(|c| json!({
            "at": format_rfc3339(c.at), "by": c.by, "grant": c.grant, "status": c.status, "reason": c.reason,
        })).collect::<Vec<_>>(),
    })
}

fn payment_json(p: &PaymentRecord) -> Value {
    json!({
        "payment_id": p.payment_id,
        "email": p.email.as_ref().map(Email::as_str),
        "customer_id": p.customer_id,
        "status": p.status,
        "product_id": p.product_id,
        "plan": p.plan,
        "subscription_id": p.subscription_id,
        "total_amount": p.total_amount,
        "currency": p.currency,
        "created_at": format_rfc3339(p.created_at),
        "claim_expires_at": p.claim_expires_at.map(format_rfc3339),
        "claim_redeemed_at": p.claim_redeemed_at.map(format_rfc3339),
        "refund_status": p.refund_status,
        "dispute_status": p.dispute_status,
        "access_revoked": p.access_revoked,
        "attention": p.attention,
        "erased_as": p.erased_as,
    })
}

async fn connect(env: &Env) -> Result<Store, AdminError> {
    let config = StoreConfig::from_env(env)?;
    let store = Store::connect(&config, ClientProfile::operator()).await;
    // Deliveries applied here (reconcile, send) honour erasure tombstones as the functions do.
    if env.optional("ENTITLEMENT_SECRET").is_some() {
        return Ok(store.with_erasure_keys(&env.signing_keys("ENTITLEMENT_SECRET")?));
    }
    Ok(store)
}

fn io(error: std::io::Error) -> AdminError {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        return AdminError::OutputClosed;
    }
    AdminError::Io(error.to_string())
}
