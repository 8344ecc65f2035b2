//! Dodo's API settings: `DODO_PAYMENTS_API_KEY`, `DODO_PAYMENTS_ENVIRONMENT`,
//! `DODO_PAYMENTS_BASE_URL`.

use llmxt_domain::config::{ConfigError, Env};
use llmxt_domain::secret::Secret;

/// `DODO_PAYMENTS_API_KEY`, `DODO_PAYMENTS_ENVIRONMENT`, `DODO_PAYMENTS_BASE_URL`.
#[derive(Debug, Clone)]
pub struct DodoApiConfig {
    /// The API key (Bearer token).
    pub api_key: Secret,
    /// `https://live.dodopayments.com`, `https://test.dodopayments.com`, or the override.
    pub base_url: String,
}

impl DodoApiConfig {
    /// Reads the API settings; `None` when `DODO_PAYMENTS_API_KEY` is unset (no API calls).
    /// The environment and base URL are validated even without a key.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let api_key = env.optional("DODO_PAYMENTS_API_KEY");
        let environment = env
            .optional("DODO_PAYMENTS_ENVIRONMENT")
            .unwrap_or_else(|| "live_mode".to_owned());
        let default_url = match environment.as_str() {
            "live_mode" => dodopayments::LIVE_MODE_BASE_URL,
            "test_mode" => dodopayments::TEST_MODE_BASE_URL,
            _ => {
                return Err(ConfigError {
                    variable: "DODO_PAYMENTS_ENVIRONMENT",
                    problem: "must be live_mode or test_mode".to_owned(),
                });
            }
        };
        let base_url = match env.optional("DODO_PAYMENTS_BASE_URL") {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                url.trim_end_matches('/').to_owned()
            }
            Some(_) => {
                return Err(ConfigError {
                    variable: "DODO_PAYMENTS_BASE_URL",
                    problem: "must be an absolute http(s) URL".to_owned(),
                });
            }
            None => default_url.to_owned(),
        };
        Ok(api_key.map(|key| Self {
            api_key: Secret::new(key.into_bytes()),
            base_url,
        }))
    }
}
