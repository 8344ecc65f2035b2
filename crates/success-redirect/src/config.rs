//! The success-redirect function's settings (every buyer-facing `/upgrade/*` route),
//! composed from the settings of the crates it uses.

use llmxt_dodo::config::DodoApiConfig;
use llmxt_domain::config::{
    AbuseLimits, ConfigError, CookieConfig, Env, PlanCatalog, SiteUrl,
    plan_change_proration_from_env,
};
use llmxt_domain::secret::Secret;
use llmxt_store::config::StoreConfig;

use crate::brand::BrandConfig;

/// Configuration of `GET /upgrade/success`.
#[derive(Debug, Clone)]
pub struct SuccessConfig {
    /// Cookie signing and attributes.
    pub cookie: CookieConfig,
    /// `NEXT_PUBLIC_SITE_URL`.
    pub site_url: SiteUrl,
    /// `NEXT_PUBLIC_CHECKOUT_URL`, offered again when a payment failed or expired.
    pub checkout_url: Option<String>,
    /// `ENTITLEMENT_ALLOW_UNVERIFIED`: dev mode, grants without a payment.
    pub allow_unverified: bool,
    /// Plans, for dev-mode grants and purchases confirmed through the API.
    pub plans: PlanCatalog,
    /// Tables.
    pub store: StoreConfig,
    /// Dodo's API (`DODO_PAYMENTS_API_KEY` …), when configured: asked when nothing is stored
    /// for the purchase a buyer comes back from.
    pub dodo_api: Option<DodoApiConfig>,
    /// `CLAIM_TTL_SECONDS`, as the webhook reads it: for purchases confirmed through the API.
    pub claim_ttl_seconds: i64,
    /// `SUBSCRIPTION_GRACE_SECONDS`, as the webhook reads it.
    pub grace_seconds: i64,
    /// Restore by email link: `RESTORE_EMAIL_FROM` (and `SES_ENDPOINT`); `None` when unset,
    /// and the restore form then says it is not enabled.
    pub restore: Option<RestoreConfig>,
    /// `HMAC_SECRET`: verifies checkout links that prefill the buyer's email; without it an
    /// `email` in a checkout link is ignored.
    pub hmac_secret: Option<Secret>,
    /// `BRAND_*` and `SUPPORT_*`: how buyer pages and sign-in emails look.
    pub brand: BrandConfig,
    /// Abuse budgets and the trusted client-IP header.
    pub limits: AbuseLimits,
    /// `PLAN_CHANGE_PRORATION`: Dodo's `proration_billing_mode` for upgrades.
    pub plan_change_proration: String,
}

/// Sign-in links by email (SES v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreConfig {
    /// `RESTORE_EMAIL_FROM`: the sender, an SES-verified identity.
    pub from: String,
    /// `SES_ENDPOINT`: an SES endpoint override (the local emulator).
    pub ses_endpoint: Option<String>,
}

impl RestoreConfig {
    /// Reads `RESTORE_EMAIL_FROM` and `SES_ENDPOINT`.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let ses_endpoint = env.optional("SES_ENDPOINT");
        if let Some(url) = &ses_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::new("SES_ENDPOINT", "must be an http(s) URL"));
        }
        let Some(from) = env.optional("RESTORE_EMAIL_FROM") else {
            return Ok(None);
        };
        if llmxt_domain::email::Email::parse(&from).is_err() || !from.contains('.') {
            return Err(ConfigError::new(
                "RESTORE_EMAIL_FROM",
                "must be an email address (an SES-verified identity), e.g. access@example.com",
            ));
        }
        Ok(Some(Self { from, ses_endpoint }))
    }
}

impl SuccessConfig {
    /// Reads and validates the success function's variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let checkout_url = env.optional("NEXT_PUBLIC_CHECKOUT_URL");
        if let Some(url) = &checkout_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError::new(
                "NEXT_PUBLIC_CHECKOUT_URL",
                "must be an absolute http(s) URL",
            ));
        }
        let cookie = CookieConfig::from_env(env)?;
        let site_url = SiteUrl::parse(&env.required("NEXT_PUBLIC_SITE_URL")?)?;
        let allow_unverified = env.flag("ENTITLEMENT_ALLOW_UNVERIFIED", false)?;
        if allow_unverified && !site_url.is_loopback_http() {
            return Err(ConfigError::new(
                "ENTITLEMENT_ALLOW_UNVERIFIED",
                "is refused unless NEXT_PUBLIC_SITE_URL is http://localhost[:port] or http://127.0.0.1[:port] (dev mode grants Pro to anyone)",
            ));
        }
        let brand = BrandConfig::from_env(env, &site_url)?;
        Ok(Self {
            cookie,
            site_url,
            checkout_url,
            allow_unverified,
            plans: PlanCatalog::from_env(env)?,
            store: StoreConfig::from_env(env)?,
            dodo_api: DodoApiConfig::from_env(env)?,
            claim_ttl_seconds: env.seconds("CLAIM_TTL_SECONDS", 600, 60, 86_400)?,
            grace_seconds: env.seconds("SUBSCRIPTION_GRACE_SECONDS", 3 * 86_400, 0, 30 * 86_400)?,
            restore: RestoreConfig::from_env(env)?,
            hmac_secret: env.signing_secret("HMAC_SECRET")?,
            brand,
            limits: AbuseLimits::from_env(env)?,
            plan_change_proration: plan_change_proration_from_env(env)?,
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
    fn success_config_requires_site_url() {
        let error =
            SuccessConfig::from_env(&env(&[("ENTITLEMENT_SECRET", STRONG)])).expect_err("no site");
        assert_eq!(error.variable, "NEXT_PUBLIC_SITE_URL");
        let config = SuccessConfig::from_env(&env(&[
            ("ENTITLEMENT_SECRET", STRONG),
            ("NEXT_PUBLIC_SITE_URL", "https://example.com"),
        ]))
        .expect("valid");
        assert!(!config.allow_unverified);
    }
}
