//! The webhook function's settings, composed from the settings of the crates it uses.

use llmxt_domain::config::{ConfigError, Env, MIN_WEBHOOK_KEY_BYTES, PlanCatalog};
use llmxt_domain::secret::Secret;
use llmxt_domain::webhook_signature::{WebhookSecretError, WebhookSecrets};
use llmxt_store::config::StoreConfig;

/// Configuration of `POST /api/webhooks/dodo`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `DODO_WEBHOOK_SECRET`: one or more `whsec_` secrets.
    pub secrets: WebhookSecrets,
    /// Product → plan.
    pub plans: PlanCatalog,
    /// Tables.
    pub store: StoreConfig,
    /// `CLAIM_TTL_SECONDS` (default 600): how long a paid payment's one-time claim stays open.
    pub claim_ttl_seconds: i64,
    /// `SUBSCRIPTION_GRACE_SECONDS` (default 3 days): access kept past a subscription's
    /// paid period while a renewal is retried.
    pub grace_seconds: i64,
    /// `ENTITLEMENT_SECRET`: the keys an erased address's tombstone is found under
    /// (`llmxt-admin forget`), so a late delivery does not bring the address back.
    pub erasure_keys: Vec<Secret>,
}

impl WebhookConfig {
    /// Reads and validates the webhook function's variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let secrets =
            WebhookSecrets::parse(&env.required("DODO_WEBHOOK_SECRET")?).map_err(|error| {
                let problem = match error {
                    WebhookSecretError::Empty => "is empty".to_owned(),
                    other => {
                        format!("{other} (each space-separated secret looks like whsec_<base64>)")
                    }
                };
                ConfigError::new("DODO_WEBHOOK_SECRET", problem)
            })?;
        if secrets
            .keys()
            .iter()
            .any(|key| key.len() < MIN_WEBHOOK_KEY_BYTES)
        {
            return Err(ConfigError::new(
                "DODO_WEBHOOK_SECRET",
                format!(
                    "is too weak: each key must decode to at least {MIN_WEBHOOK_KEY_BYTES} bytes"
                ),
            ));
        }
        Ok(Self {
            secrets,
            plans: PlanCatalog::from_env(env)?,
            store: StoreConfig::from_env(env)?,
            claim_ttl_seconds: env.seconds("CLAIM_TTL_SECONDS", 600, 60, 86_400)?,
            grace_seconds: env.seconds("SUBSCRIPTION_GRACE_SECONDS", 3 * 86_400, 0, 30 * 86_400)?,
            erasure_keys: match env.optional("ENTITLEMENT_SECRET") {
                Some(_) => env.signing_keys("ENTITLEMENT_SECRET")?,
                None => {
                    return Err(ConfigError::new(
                        "ENTITLEMENT_SECRET",
                        "is required: an erased address's tombstone is found under it (give the webhook the success-redirect function's value)",
                    ));
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmxt_domain::config::CookieConfig;

    const GOOD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const STRONG: &str = "0123456789abcdef0123456789abcdef";

    /// `pairs`, with `ENTITLEMENT_SECRET` unless they name it.
    fn env(pairs: &[(&str, &str)]) -> Env {
        let mut all: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !pairs.iter().any(|(k, _)| *k == "ENTITLEMENT_SECRET") {
            all.push(("ENTITLEMENT_SECRET".into(), STRONG.into()));
        }
        Env::from_pairs(all)
    }

    #[test]
    fn the_erasure_keys_are_required_and_checked() {
        let missing = WebhookConfig::from_env(&Env::from_pairs([(
            "DODO_WEBHOOK_SECRET".to_owned(),
            GOOD_SECRET.to_owned(),
        )]))
        .expect_err("required")
        .to_string();
        assert!(
            missing.contains("ENTITLEMENT_SECRET is required") && !missing.contains('\n'),
            "{missing}"
        );
        assert!(
            webhook_error(&[
                ("DODO_WEBHOOK_SECRET", GOOD_SECRET),
                ("ENTITLEMENT_SECRET", "short")
            ])
            .contains("ENTITLEMENT_SECRET is too weak")
        );
        let rotated = format!("{STRONG} {STRONG}-old");
        let config = WebhookConfig::from_env(&env(&[
            ("DODO_WEBHOOK_SECRET", GOOD_SECRET),
            ("ENTITLEMENT_SECRET", &rotated),
        ]))
        .expect("valid");
        assert_eq!(config.erasure_keys.len(), 2);
        assert!(!format!("{config:?}").contains(STRONG));
    }

    fn webhook_error(pairs: &[(&str, &str)]) -> String {
        WebhookConfig::from_env(&env(pairs))
            .expect_err("should fail")
            .to_string()
    }

    #[test]
    fn webhook_config_reads_defaults() {
        let config =
            WebhookConfig::from_env(&env(&[("DODO_WEBHOOK_SECRET", GOOD_SECRET)])).expect("valid");
        assert_eq!(config.store.entitlements_table, "llmxt-entitlements");
        assert_eq!(config.store.payments_table, "llmxt-payments");
        assert_eq!(config.claim_ttl_seconds, 600);
        assert_eq!(config.plans.plan_for(Some("pdt_x")), "professional");
        assert_eq!(config.secrets.keys().len(), 1);
    }

    #[test]
    fn webhook_secret_problems_name_the_variable() {
        assert!(webhook_error(&[]).contains("DODO_WEBHOOK_SECRET is required"));
        assert!(
            webhook_error(&[("DODO_WEBHOOK_SECRET", "  ")])
                .contains("DODO_WEBHOOK_SECRET is required")
        );
        assert!(
            webhook_error(&[("DODO_WEBHOOK_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")])
                .contains("whsec_")
        );
        assert!(
            webhook_error(&[("DODO_WEBHOOK_SECRET", "whsec_!!!not-base64!!!")]).contains("base64")
        );
        assert!(
            webhook_error(&[("DODO_WEBHOOK_SECRET", "whsec_c2VjcmV0Cg==")]).contains("too weak")
        );
        assert!(
            webhook_error(&[("DODO_WEBHOOK_SECRET", &format!("{GOOD_SECRET} whsec_"))])
                .contains("DODO_WEBHOOK_SECRET")
        );
    }

    #[test]
    fn rotation_accepts_several_secrets() {
        let both = format!("{GOOD_SECRET} whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        let config =
            WebhookConfig::from_env(&env(&[("DODO_WEBHOOK_SECRET", &both)])).expect("valid");
        assert_eq!(config.secrets.keys().len(), 2);
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let config =
            WebhookConfig::from_env(&env(&[("DODO_WEBHOOK_SECRET", GOOD_SECRET)])).expect("valid");
        let printed = format!("{config:?}");
        assert!(!printed.contains("MfKQ9r8"), "{printed}");
        let cookie = CookieConfig::from_env(&env(&[
            ("ENTITLEMENT_SECRET", STRONG),
            ("NEXT_PUBLIC_SITE_URL", "https://example.com"),
        ]))
        .expect("valid");
        assert!(!format!("{cookie:?}").contains(STRONG));
    }

    #[test]
    fn plan_ranking_defaults_and_rejects_malformed_lists() {
        let config =
            WebhookConfig::from_env(&env(&[("DODO_WEBHOOK_SECRET", GOOD_SECRET)])).expect("valid");
        let ranking = config.plans.ranking();
        assert!(ranking.rank("enterprise") > ranking.rank("professional"));
        assert!(ranking.rank("professional") > ranking.rank("free"));
        assert!(ranking.rank("free") > ranking.rank("unlisted"));
        let custom = WebhookConfig::from_env(&env(&[
            ("DODO_WEBHOOK_SECRET", GOOD_SECRET),
            ("PLAN_RANKING", "gold, silver"),
            ("DEFAULT_PLAN", "gold"),
        ]))
        .expect("valid");
        assert!(custom.plans.ranking().rank("silver") > custom.plans.ranking().rank("gold"));
        for bad in ["a,,b", "a,a", "pro plan"] {
            let error = WebhookConfig::from_env(&env(&[
                ("DODO_WEBHOOK_SECRET", GOOD_SECRET),
                ("PLAN_RANKING", bad),
            ]))
            .expect_err(bad);
            assert_eq!(error.variable, "PLAN_RANKING", "{bad}");
        }
    }

    #[test]
    fn numeric_knobs_are_bounded() {
        let error = WebhookConfig::from_env(&env(&[
            ("DODO_WEBHOOK_SECRET", GOOD_SECRET),
            ("CLAIM_TTL_SECONDS", "5"),
        ]))
        .expect_err("too short");
        assert_eq!(error.variable, "CLAIM_TTL_SECONDS");
    }
}
