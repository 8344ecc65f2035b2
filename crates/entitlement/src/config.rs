//! The entitlement function's settings, composed from the settings of the crates it uses.

use llmxt_domain::config::{
    ConfigError, CookieConfig, Env, plan_features_from_env, plan_ranking_from_env,
};
use llmxt_domain::records::PlanRanking;
use llmxt_domain::secret::Secret;
use llmxt_domain::usage::PlanLimits;
use llmxt_store::config::StoreConfig;

/// Configuration of `GET /api/entitlement`.
#[derive(Debug, Clone)]
pub struct EntitlementConfig {
    /// Cookie verification key and attributes (for clearing a bad cookie).
    pub cookie: CookieConfig,
    /// `HMAC_SECRET`: verifies server-to-server requests; without it email lookups are refused.
    pub hmac_secret: Option<Secret>,
    /// `REQUIRE_HMAC_SIGNATURE` (default true): every request must be signed.
    pub require_signature: bool,
    /// `ENTITLEMENT_DB_BUDGET_MS` (default 400): how long the database may take before the
    /// answer falls back to the cookie.
    pub db_budget_ms: u64,
    /// `PLAN_RANKING`: picks the plan answered when several grants give access.
    pub ranking: PlanRanking,
    /// `PLAN_FEATURES`: what each plan unlocks.
    pub features: llmxt_domain::access::PlanFeatures,
    /// `USAGE_DB_TIMEOUT_MS` (default 3000): how long each database round trip of a usage
    /// request may take before it answers `503` (it never falls back to the cookie).
    pub usage_timeout_ms: u64,
    /// `PLAN_LIMITS`: each plan's meters and allowances (docs/usage.md).
    pub limits: PlanLimits,
    /// Tables.
    pub store: StoreConfig,
}

impl EntitlementConfig {
    /// Reads and validates the entitlement function's variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let require_signature = env.flag("REQUIRE_HMAC_SIGNATURE", true)?;
        let hmac_secret = env.signing_secret("HMAC_SECRET")?;
        if require_signature && hmac_secret.is_none() {
            return Err(ConfigError::new(
                "HMAC_SECRET",
                "is required while REQUIRE_HMAC_SIGNATURE=true",
            ));
        }
        let db_budget_ms = env.seconds("ENTITLEMENT_DB_BUDGET_MS", 400, 50, 900)?;
        Ok(Self {
            cookie: CookieConfig::from_env(env)?,
            hmac_secret,
            require_signature,
            db_budget_ms: u64::try_from(db_budget_ms).unwrap_or(400),
            ranking: plan_ranking_from_env(env)?,
            features: plan_features_from_env(env)?,
            limits: PlanLimits::from_env(env)?,
            usage_timeout_ms: u64::try_from(env.seconds(
                "USAGE_DB_TIMEOUT_MS",
                3_000,
                100,
                60_000,
            )?)
            .unwrap_or(3_000),
            store: StoreConfig::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRONG: &str = "0123456789abcdef0123456789abcdef";

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn entitlement_config_requires_hmac_secret_by_default() {
        let error = EntitlementConfig::from_env(&env(&[("ENTITLEMENT_SECRET", STRONG)]))
            .expect_err("no hmac");
        assert_eq!(error.variable, "HMAC_SECRET");
        let relaxed = EntitlementConfig::from_env(&env(&[
            ("ENTITLEMENT_SECRET", STRONG),
            ("REQUIRE_HMAC_SIGNATURE", "false"),
            ("NEXT_PUBLIC_SITE_URL", "https://example.com"),
        ]))
        .expect("valid");
        assert!(!relaxed.require_signature);
        assert!(relaxed.hmac_secret.is_none());
        let error = EntitlementConfig::from_env(&env(&[
            ("ENTITLEMENT_SECRET", STRONG),
            ("HMAC_SECRET", "weak"),
        ]))
        .expect_err("weak");
        assert_eq!(error.variable, "HMAC_SECRET");
        let error = EntitlementConfig::from_env(&env(&[
            ("ENTITLEMENT_SECRET", STRONG),
            ("HMAC_SECRET", STRONG),
            ("REQUIRE_HMAC_SIGNATURE", "maybe"),
        ]))
        .expect_err("bad flag");
        assert_eq!(error.variable, "REQUIRE_HMAC_SIGNATURE");
    }
}
