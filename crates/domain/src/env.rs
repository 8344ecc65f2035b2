//! Where configuration comes from and how a bad value is reported: the environment (or
//! pairs in tests), a [`ConfigError`] naming the variable, and the checks every setting shares.
//! [`crate::config`] builds each function's settings on it.

use std::collections::HashMap;

use crate::secret::Secret;

/// Shortest accepted `ENTITLEMENT_SECRET` / `HMAC_SECRET`, in bytes.
pub const MIN_SIGNING_SECRET_BYTES: usize = 32;
/// Shortest accepted decoded `whsec_` key, in bytes.
pub const MIN_WEBHOOK_KEY_BYTES: usize = 16;
/// A configuration value that stops the function from starting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable} {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    /// The error for `variable`, saying what is wrong with it.
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// Where configuration values come from: the process environment, or a map in tests.
#[derive(Clone)]
pub struct Env {
    lookup: Lookup,
}

type Lookup = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;
/// Names of the variables read through [`Env::recording`].
pub type ReadNames = std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>;

impl Env {
    /// Reads the process environment.
    pub fn process() -> Self {
        Self {
            lookup: std::sync::Arc::new(|name| std::env::var(name).ok()),
        }
    }

    /// Reads from fixed pairs (tests, tools).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self {
            lookup: std::sync::Arc::new(move |name| map.get(name).cloned()),
        }
    }

    /// `inner`, falling back to `defaults` for variables `inner` does not set: the
    /// environment wins over a `.env` file.
    pub fn with_defaults(inner: &Env, defaults: Vec<(String, String)>) -> Self {
        let inner = inner.clone();
        let map: HashMap<String, String> = defaults.into_iter().collect();
        Self {
            lookup: std::sync::Arc::new(move |name| {
                (inner.lookup)(name).or_else(|| map.get(name).cloned())
            }),
        }
    }

    /// Wraps `inner` so that the name of every variable read is recorded (sorted, unique),
    /// e.g. to check that a deployment sets what a function reads.
    pub fn recording(inner: &Env) -> (Self, ReadNames) {
        let names = ReadNames::default();
        let recorded = std::sync::Arc::clone(&names);
        let inner = inner.clone();
        let env = Self {
            lookup: std::sync::Arc::new(move |name| {
                if let Ok(mut names) = recorded.lock() {
                    names.insert(name.to_owned());
                }
                (inner.lookup)(name)
            }),
        };
        (env, names)
    }

    /// A set, non-blank value, trimmed.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// A variable that must be set (and not empty).
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    /// `true` or `false`, `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self
            .optional(name)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(_) => Err(ConfigError::new(name, "must be true or false")),
        }
    }

    /// A whole number of seconds within `min..=max`, or `default` when unset.
    pub fn seconds(
        &self,
        name: &'static str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let Some(text) = self.optional(name) else {
            return Ok(default);
        };
        match text.parse::<i64>() {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            _ => Err(ConfigError::new(
                name,
                format!("must be a whole number from {min} to {max}"),
            )),
        }
    }

    /// Several signing keys separated by whitespace (a rotation), each at least
    /// [`MIN_SIGNING_SECRET_BYTES`]; at least one.
    pub fn signing_keys(&self, name: &'static str) -> Result<Vec<Secret>, ConfigError> {
        let value = self.required(name)?;
        value
            .split_whitespace()
            .map(|key| {
                if key.len() < MIN_SIGNING_SECRET_BYTES {
                    return Err(ConfigError::new(
                        name,
                        format!(
                            "is too weak: use at least {MIN_SIGNING_SECRET_BYTES} bytes per key (e.g. `openssl rand -hex 32`)"
                        ),
                    ));
                }
                Ok(Secret::new(key.as_bytes().to_vec()))
            })
            .collect()
    }

    /// An optional signing secret of at least [`MIN_SIGNING_SECRET_BYTES`].
    pub fn signing_secret(&self, name: &'static str) -> Result<Option<Secret>, ConfigError> {
        let Some(value) = self.optional(name) else {
            return Ok(None);
        };
        if value.len() < MIN_SIGNING_SECRET_BYTES {
            return Err(ConfigError::new(
                name,
                format!(
                    "is too weak: use at least {MIN_SIGNING_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                ),
            ));
        }
        Ok(Some(Secret::new(value.into_bytes())))
    }
}

/// Reads a `.env` file's text as `scripts/dev.sh` does: `NAME=value` lines, blank lines and
/// `#` comments skipped, one pair of matching surrounding quotes (`"…"` or `'…'`) removed.
/// Lines that are not assignments are skipped.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .filter(|(name, _)| {
            let mut chars = name.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(|(name, value)| {
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| {
                    value
                        .strip_prefix(*q)
                        .and_then(|rest| rest.strip_suffix(*q))
                })
                .filter(|_| value.len() >= 2)
                .unwrap_or(value);
            (name.to_owned(), unquoted.to_owned())
        })
        .collect()
}

/// Whether `text` is a name such as a plan, product or meter id: letters, digits, `_`, `-`, `.`.
pub fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
