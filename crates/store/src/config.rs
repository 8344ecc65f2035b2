//! Where the tables are: `ENTITLEMENTS_TABLE`, `PAYMENTS_TABLE`, `DYNAMODB_ENDPOINT`.

use llmxt_domain::config::{ConfigError, DEFAULT_ENTITLEMENTS_TABLE, DEFAULT_PAYMENTS_TABLE, Env};

/// Where the tables are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `ENTITLEMENTS_TABLE`
    pub entitlements_table: String,
    /// `PAYMENTS_TABLE`
    pub payments_table: String,
    /// `DYNAMODB_ENDPOINT`, for DynamoDB Local.
    pub endpoint: Option<String>,
}

impl StoreConfig {
    /// Reads the table names and endpoint override.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let endpoint = env.optional("DYNAMODB_ENDPOINT");
        if let Some(url) = &endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "DYNAMODB_ENDPOINT",
                "must be an http(s) URL",
            ));
        }
        Ok(Self {
            entitlements_table: env
                .optional("ENTITLEMENTS_TABLE")
                .unwrap_or_else(|| DEFAULT_ENTITLEMENTS_TABLE.to_owned()),
            payments_table: env
                .optional("PAYMENTS_TABLE")
                .unwrap_or_else(|| DEFAULT_PAYMENTS_TABLE.to_owned()),
            endpoint,
        })
    }
}
