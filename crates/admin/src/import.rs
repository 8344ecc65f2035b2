//! `llmxt-admin import FILE [--dry-run]`: paying buyers from a previous system, each line a
//! grant `import#<provider>#<payment_id>` audited in the entitlement's history.
//!
//! The file is CSV with a header, or JSON lines, with the fields `email, plan, expires_at`
//! (ISO 8601, or empty for no end), `provider, payment_id, note`. A bad line is reported with
//! its line number and skipped whole. A grant already there (a second run) is left as it is,
//! and so is a purchase Dodo already granted. Writes go 100 entitlements per transaction,
//! several transactions at a time.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use llmxt_domain::email::Email;
use llmxt_domain::records::{Entitlement, Grant, PlanRanking, source, status};
use llmxt_domain::time::{format_rfc3339, parse_iso8601_seconds};
use llmxt_store::store::{CommitOutcome, Store, StoreError};
use serde_json::Value;

use crate::AdminError;

/// Key prefix of imported grants.
pub const IMPORT_GRANT_PREFIX: &str = "import#";

/// Buyers read per `BatchGetItem` (DynamoDB's limit is 100 keys).
const PER_CHUNK: usize = 100;
/// Chunks in flight at once.
const IN_FLIGHT: usize = 4;
/// Attempts for a buyer whose entitlement keeps changing under the import.
const MAX_ATTEMPTS: u32 = 8;

/// One valid line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    /// Its line number in the file (1 is the first line, the header for CSV).
    pub line: usize,
    /// The buyer.
    pub email: Email,
    /// The plan granted.
    pub plan: String,
    /// End of access; `None` for no end.
    pub expires_at: Option<i64>,
    /// The previous system's payment provider (`stripe`, …), lower-cased.
    pub provider: String,
    /// The payment's id at that provider.
    pub payment_id: String,
    /// The operator's note, kept as the grant's reason.
    pub note: Option<String>,
}

impl ImportLine {
    /// The grant's key: `import#<provider>#<payment_id>`.
    pub fn key(&self) -> String {
        format!("{IMPORT_GRANT_PREFIX}{}#{}", self.provider, self.payment_id)
    }
}

/// A line that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// Its line number.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// The columns read; any other column or JSON member is ignored.
const COLUMNS: [&str; 6] = [
    "email",
    "plan",
    "expires_at",
    "provider",
    "payment_id",
    "note",
];

/// Reads the file: JSON lines when its first non-blank character is `{`, else CSV with a
/// header (a leading byte-order mark is skipped). Each line is checked alone; `plans` are
/// those that may be granted.
pub fn parse_file(text: &str, ranking: &PlanRanking) -> (Vec<ImportLine>, Vec<BadLine>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows = if text.trim_start().starts_with('{') {
        json_rows(text)
    } else {
        csv_rows(text)
    };
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    // A payment twice: the same grant again is harmless (reported unchanged, as on a second
    // run); other values for it are a line error.
    let mut seen: HashMap<String, ImportLine> = HashMap::new();
    for row in rows {
        let line = row.0;
        let checked = row
            .1
            .and_then(|fields| check(line, &fields, ranking))
            .and_then(|parsed| match seen.get(&parsed.key()) {
                Some(first)
                    if (&first.email, &first.plan, first.expires_at)
                        != (&parsed.email, &parsed.plan, parsed.expires_at) =>
                {
                    Err(format!(
                        "repeats the payment of line {} with another email, plan or end",
                        first.line
                    ))
                }
                _ => Ok(parsed),
            });
        match checked {
            Ok(parsed) => {
                seen.entry(parsed.key()).or_insert_with(|| parsed.clone());
                lines.push(parsed);
            }
            Err(problem) => bad.push(BadLine { line, problem }),
        }
    }
    (lines, bad)
}

type Fields = HashMap<String, String>;

fn csv_rows(text: &str) -> Vec<(usize, Result<Fields, String>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(|h| h.to_ascii_lowercase()).collect(),
        Err(error) => return vec![(1, Err(format!("unreadable header: {error}")))],
    };
    if let Some(missing) = ["email", "plan", "expires_at", "provider", "payment_id"]
        .into_iter()
        .find(|name| !header.iter().any(|h| h == name))
    {
        return vec![(1, Err(format!("the header has no {missing} column")))];
    }
    reader
        .records()
        .map(|record| match record {
            Ok(record) => {
                let line = record
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
                if record.len() != header.len() {
                    return (
                        line,
                        Err(format!(
                            "has {} fields, the header {}",
                            record.len(),
                            header.len()
                        )),
                    );
                }
                let fields = header
                    .iter()
                    .cloned()
                    .zip(record.iter().map(str::to_owned))
                    .collect();
                (line, Ok(fields))
            }
            Err(error) => {
                let line = error
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
                (line, Err(format!("unreadable: {error}")))
            }
        })
        .collect()
}

fn json_rows(text: &str) -> Vec<(usize, Result<Fields, String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            // Only the columns are read: an export's other members (`amount`, `metadata`)
            // are ignored, and a number where a column expects text is read as its digits.
            let parsed = match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(object)) => object
                    .into_iter()
                    .filter(|(name, _)| COLUMNS.contains(&name.to_ascii_lowercase().as_str()))
                    .map(|(name, value)| {
                        let name = name.to_ascii_lowercase();
                        match value {
                            Value::String(text) => Ok((name, text.trim().to_owned())),
                            Value::Null => Ok((name, String::new())),
                            Value::Number(number) => Ok((name, number.to_string())),
                            _ => Err(format!("{name} is not a string")),
                        }
                    })
                    .collect(),
                _ => Err("is not a JSON object".to_owned()),
            };
            (index + 1, parsed)
        })
        .collect()
}

fn check(line: usize, fields: &Fields, ranking: &PlanRanking) -> Result<ImportLine, String> {
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let email = Email::parse(field("email"))
        .map_err(|_| format!("email {:?} is not an email address", field("email")))?;
    let plan = field("plan");
    if !ranking.is_paid(plan) {
        return Err(format!(
            "plan {plan:?} is not a paid plan of PLAN_RANKING ({})",
            ranking.plans().join(",")
        ));
    }
    let expires_at = match field("expires_at") {
        "" => None,
        text => Some(parse_iso8601_seconds(text).ok_or_else(|| {
            format!("expires_at {text:?} is not an ISO 8601 date (2026-12-31 or RFC 3339)")
        })?),
    };
    let provider = field("provider").to_ascii_lowercase();
    let token = |text: &str| {
        !text.is_empty()
            && text.len() <= 100
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
    };
    if !token(&provider) {
        return Err(format!(
            "provider {:?} must be a word such as stripe",
            field("provider")
        ));
    }
    let payment_id = field("payment_id");
    if !token(payment_id) {
        return Err(format!(
            "payment_id {payment_id:?} must be the previous system's payment id (letters, digits, _-.:)"
        ));
    }
    let note = Some(field("note").to_owned()).filter(|n| !n.is_empty());
    Ok(ImportLine {
        line,
        email,
        plan: plan.to_owned(),
        expires_at,
        provider,
        payment_id: payment_id.to_owned(),
        note,
    })
}

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The grant was added (or, in a dry run, would be).
    Granted,
    /// The grant is already there: nothing changes.
    Unchanged,
    /// Dodo already granted this purchase: the import never overrides it.
    FromDodo,
}

/// Adds each line's grant (none when `dry_run`), reading 100 entitlements a request; returns
/// each line's outcome, in the file's order.
pub async fn import(
    store: &Store,
    ranking: &PlanRanking,
    lines: &[ImportLine],
    by: &str,
    now: i64,
    dry_run: bool,
) -> Result<Vec<(usize, Outcome)>, StoreError> {
    let mut by_email: BTreeMap<&str, Vec<&ImportLine>> = BTreeMap::new();
    for line in lines {
        by_email.entry(line.email.as_str()).or_default().push(line);
    }
    let groups: Vec<Vec<&ImportLine>> = by_email.into_values().collect();
    let mut outcomes = Vec::new();
    for wave in groups.chunks(PER_CHUNK * IN_FLIGHT) {
        let chunks = wave
            .chunks(PER_CHUNK)
            .map(|chunk| import_chunk(store, ranking, chunk, by, now, dry_run));
        for result in futures::future::join_all(chunks).await {
            outcomes.extend(result?);
        }
    }
    outcomes.sort_by_key(|(line, _)| *line);
    Ok(outcomes)
}

/// A chunk of buyers: read their entitlements in one batch, add the grants, and write each
/// changed entitlement conditioned on the version read (one `UpdateItem` each, all in flight
/// at once); a buyer whose entitlement changed meanwhile is read and decided again.
async fn import_chunk(
    store: &Store,
    ranking: &PlanRanking,
    groups: &[Vec<&ImportLine>],
    by: &str,
    now: i64,
    dry_run: bool,
) -> Result<Vec<(usize, Outcome)>, StoreError> {
    let mut pending: Vec<&Vec<&ImportLine>> = groups.iter().collect();
    let mut outcomes = Vec::new();
    for attempt in 0..MAX_ATTEMPTS {
        let emails: Vec<Email> = pending.iter().map(|g| g[0].email.clone()).collect();
        let mut stored: HashMap<String, Entitlement> = store
            .get_entitlements(&emails)
            .await?
            .into_iter()
            .map(|e| (e.email.as_str().to_owned(), e))
            .collect();
        let mut writes = Vec::new();
        for group in pending {
            let email = &group[0].email;
            let before = stored.remove(email.as_str());
            let mut next = before
                .clone()
                .unwrap_or_else(|| Entitlement::new(email.clone()));
            let decided: Vec<(usize, Outcome)> = group
                .iter()
                .map(|line| (line.line, add_grant(&mut next, line, by, now, attempt > 0)))
                .collect();
            if dry_run || before.as_ref() == Some(&next) {
                outcomes.extend(decided);
                continue;
            }
            next.summarise(now, ranking);
            next.updated_at = now;
            next.record_grant_changes(before.as_ref(), now, &format!("import by {by}"));
            writes.push((group, decided, next));
        }
        let results = futures::future::join_all(
            writes
                .iter()
                .map(|(_, _, next)| store.put_entitlement(next)),
        )
        .await;
        pending = Vec::new();
        for ((group, decided, _), result) in writes.into_iter().zip(results) {
            match result? {
                CommitOutcome::Committed => outcomes.extend(decided),
                _ => pending.push(group),
            }
        }
        if pending.is_empty() {
            return Ok(outcomes);
        }
        llmxt_store::store::wait_before_retry(attempt).await;
    }
    Err(StoreError::Contention)
}

fn add_grant(
    entitlement: &mut Entitlement,
    line: &ImportLine,
    by: &str,
    now: i64,
    retry: bool,
) -> Outcome {
    let key = line.key();
    if let Some(existing) = entitlement.grants.get(&key) {
        // Written by this very run (a write retried after a timeout that had in fact
        // succeeded): report it as granted.
        let ours =
            retry && existing.changed_by.as_deref() == Some(by) && existing.updated_at == now;
        return if ours {
            Outcome::Granted
        } else {
            Outcome::Unchanged
        };
    }
    let from_dodo = entitlement.grants.values().any(|grant| {
        matches!(
            grant.source.as_str(),
            source::PAYMENT | source::SUBSCRIPTION
        ) && (grant.key == line.payment_id
            || grant.payment_id.as_deref() == Some(line.payment_id.as_str()))
    });
    if from_dodo {
        return Outcome::FromDodo;
    }
    entitlement.grants.insert(
        key.clone(),
        Grant {
            key,
            // Not billed through Dodo: outside the billing portal, like an operator's grant.
            source: source::MANUAL.to_owned(),
            plan: line.plan.clone(),
            status: status::ACTIVE.to_owned(),
            expires_at: line.expires_at,
            reason: Some(
                line.note.clone().unwrap_or_else(|| {
                    format!("imported from {} {}", line.provider, line.payment_id)
                }),
            ),
            changed_by: Some(by.to_owned()),
            updated_at: now,
            ..Grant::default()
        },
    );
    Outcome::Granted
}

/// Runs the command: parses, applies (or plans), prints one line per line of the file and
/// a total. Fails (exit 1) when any line was bad; the good ones are applied all the same.
pub async fn run(
    store: &Store,
    ranking: &PlanRanking,
    text: &str,
    by: &str,
    now: i64,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let (lines, bad) = parse_file(text, ranking);
    let outcomes = import(store, ranking, &lines, by, now, dry_run).await?;
    let by_line: HashMap<usize, &ImportLine> = lines.iter().map(|l| (l.line, l)).collect();
    let mut report: Vec<(usize, String)> = bad
        .iter()
        .map(|b| (b.line, format!("line {}: error: {}", b.line, b.problem)))
        .collect();
    let (mut granted, mut unchanged, mut dodo) = (0, 0, 0);
    for (number, outcome) in &outcomes {
        let line = by_line[number];
        let what = match outcome {
            Outcome::Granted => {
                granted += 1;
                format!(
                    "{} {} to {} until {}",
                    if dry_run { "would grant" } else { "granted" },
                    line.plan,
                    line.email.as_str(),
                    line.expires_at.map_or("no end".to_owned(), format_rfc3339)
                )
            }
            Outcome::Unchanged => {
                unchanged += 1;
                format!("unchanged: {} already holds it", line.email.as_str())
            }
            Outcome::FromDodo => {
                dodo += 1;
                format!(
                    "skipped: Dodo already granted payment {} to {}",
                    line.payment_id,
                    line.email.as_str()
                )
            }
        };
        report.push((*number, format!("line {number}: {what} ({})", line.key())));
    }
    report.sort_by_key(|(line, _)| *line);
    let io = |e: std::io::Error| AdminError::Io(e.to_string());
    for (_, text) in &report {
        writeln!(out, "{text}").map_err(io)?;
    }
    writeln!(
        out,
        "{}{granted} granted, {unchanged} unchanged, {dodo} already from Dodo, {} failed",
        if dry_run {
            "dry run (nothing written): "
        } else {
            ""
        },
        bad.len()
    )
    .map_err(io)?;
    if bad.is_empty() {
        Ok(())
    } else {
        Err(AdminError::LinesFailed(
            bad.iter()
                .map(|b| format!("line {}: {}", b.line, b.problem))
                .collect(),
        ))
    }
}
