//! Configuration from the environment, read once at cold start.
//!
//! Each function reads only what it needs. A missing, empty or weak value is a
//! [`ConfigError`] whose message names the variable, so the function refuses to start with
//! one clear line.

use std::collections::HashMap;
use std::fmt;

pub use crate::env::{
    ConfigError, Env, MIN_SIGNING_SECRET_BYTES, MIN_WEBHOOK_KEY_BYTES, ReadNames, is_token,
    parse_dotenv,
};
use crate::records::PlanRanking;
use crate::secret::Secret;

/// Default entitlements table name.
pub const DEFAULT_ENTITLEMENTS_TABLE: &str = "llmxt-entitlements";
/// Default payments table name.
pub const DEFAULT_PAYMENTS_TABLE: &str = "llmxt-payments";

/// Which plan each product grants (`PRODUCT_PLANS`, `DEFAULT_PLAN`), and their order
/// (`PLAN_RANKING`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCatalog {
    by_product: HashMap<String, String>,
    default_plan: String,
    ranking: PlanRanking,
    names: PlanNames,
    credits: crate::credits::CreditProducts,
}

/// What buyers read for each plan id (`PLAN_NAMES`, e.g. `professional=Pro,enterprise=Business`).
/// Pages and emails show these; the API, the cookie and the tables keep the ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanNames {
    by_plan: HashMap<String, String>,
}

impl PlanNames {
    /// Parses `plan=Display name,plan=Display name`; an empty list is allowed.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut by_plan = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry
                .split_once('=')
                .map(|(plan, name)| (plan.trim(), name.trim()))
                .filter(|(plan, name)| {
                    is_token(plan)
                        && !name.is_empty()
                        && name.chars().count() <= 40
                        && !name.chars().any(char::is_control)
                });
            let Some((plan, name)) = parsed else {
                return Err(ConfigError::new(
                    "PLAN_NAMES",
                    format!(
                        "has a malformed entry {entry:?}; expected plan=Name,plan=Name (names up to 40 characters)"
                    ),
                ));
            };
            if by_plan.insert(plan.to_owned(), name.to_owned()).is_some() {
                return Err(ConfigError::new(
                    "PLAN_NAMES",
                    format!("names plan {plan:?} twice"),
                ));
            }
        }
        Ok(Self { by_plan })
    }

    /// The name buyers read for `plan`: the configured one, else the id with its first letter
    /// in capitals (`professional` → `Professional`).
    pub fn display(&self, plan: &str) -> String {
        if let Some(name) = self.by_plan.get(plan) {
            return name.clone();
        }
        let mut chars = plan.chars();
        chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    }
}

impl PlanCatalog {
    /// Parses `pdt_a=professional,pdt_b=enterprise`; an empty list is allowed.
    pub fn parse(product_plans: &str, default_plan: &str) -> Result<Self, ConfigError> {
        let mut by_product = HashMap::new();
        for entry in product_plans
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let parsed = entry
                .split_once('=')
                .map(|(product, plan)| (product.trim(), plan.trim()))
                .filter(|(product, plan)| is_token(product) && is_token(plan));
            let Some((product, plan)) = parsed else {
                return Err(ConfigError::new(
                    "PRODUCT_PLANS",
                    format!(
                        "has a malformed entry {entry:?}; expected product_id=plan,product_id=plan"
                    ),
                ));
            };
            if by_product
                .insert(product.to_owned(), plan.to_owned())
                .is_some()
            {
                return Err(ConfigError::new(
                    "PRODUCT_PLANS",
                    format!("names product {product:?} twice"),
                ));
            }
        }
        if !is_token(default_plan) {
            return Err(ConfigError::new(
                "DEFAULT_PLAN",
                "must be a single word such as professional",
            ));
        }
        Ok(Self {
            by_product,
            default_plan: default_plan.to_owned(),
            ranking: PlanRanking::standard(),
            names: PlanNames::default(),
            credits: crate::credits::CreditProducts::default(),
        })
    }

    /// Reads `PRODUCT_PLANS`, `DEFAULT_PLAN` (default `professional`), `PLAN_RANKING`,
    /// `PLAN_NAMES`, `PRODUCT_CREDITS` and `CREDITS_EXPIRE_DAYS`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let default_plan = env
            .optional("DEFAULT_PLAN")
            .unwrap_or_else(|| "professional".to_owned());
        let catalog = Self::parse(
            &env.optional("PRODUCT_PLANS").unwrap_or_default(),
            &default_plan,
        )?;
        let names = PlanNames::parse(&env.optional("PLAN_NAMES").unwrap_or_default())?;
        let credits = crate::credits::CreditProducts::from_env(env)?;
        let catalog = catalog
            .with_ranking(plan_ranking_from_env(env)?)
            .with_names(names)
            .with_credits(credits)?;
        catalog.check_plans_are_paid()?;
        Ok(catalog)
    }

    /// The same catalog with these credit products; a product may not both grant a plan and
    /// sell credits.
    pub fn with_credits(
        self,
        credits: crate::credits::CreditProducts,
    ) -> Result<Self, ConfigError> {
        if let Some(product) = credits.products().into_iter().find(|p| self.lists(p)) {
            return Err(ConfigError::new(
                "PRODUCT_CREDITS",
                format!(
                    "names {product:?}, which PRODUCT_PLANS also lists; a product either grants a plan or sells credits"
                ),
            ));
        }
        Ok(Self { credits, ..self })
    }

    /// The credit products (`PRODUCT_CREDITS`).
    pub fn credits(&self) -> &crate::credits::CreditProducts {
        &self.credits
    }

    /// Whether checkout sells `product_id`: a plan's product or a credit pack.
    pub fn sells(&self, product_id: &str) -> bool {
        self.lists(product_id) || self.credits.sells(product_id)
    }

    /// Every plan a sale can grant (each of `PRODUCT_PLANS`, and `DEFAULT_PLAN`) must be a paid
    /// plan of `PLAN_RANKING`: only those give Pro ([`PlanRanking::is_paid`]), so a buyer of
    /// any other would pay and get nothing.
    fn check_plans_are_paid(&self) -> Result<(), ConfigError> {
        let paid = |plan: &str| self.ranking.is_paid(plan);
        let listed = self.ranking.plans().join(",");
        let mut products: Vec<(&String, &String)> = self.by_product.iter().collect();
        products.sort();
        if let Some((product, plan)) = products.into_iter().find(|(_, plan)| !paid(plan)) {
            return Err(ConfigError::new(
                "PRODUCT_PLANS",
                format!(
                    "grants {product} plan {plan:?}, which is not a paid plan of PLAN_RANKING \
                     ({listed}); list it there (lowest first), or its buyers get no Pro"
                ),
            ));
        }
        if !paid(&self.default_plan) {
            return Err(ConfigError::new(
                "DEFAULT_PLAN",
                format!(
                    "is {:?}, which is not a paid plan of PLAN_RANKING ({listed}); list it \
                     there (lowest first), or buyers of unlisted products get no Pro",
                    self.default_plan
                ),
            ));
        }
        Ok(())
    }

    /// The same catalog with these display names.
    pub fn with_names(self, names: PlanNames) -> Self {
        Self { names, ..self }
    }

    /// The name buyers read for a plan id ([`PlanNames::display`]).
    pub fn display_name(&self, plan: &str) -> String {
        self.names.display(plan)
    }

    /// The same catalog with another order of plans.
    pub fn with_ranking(self, ranking: PlanRanking) -> Self {
        Self { ranking, ..self }
    }

    /// The order of plans, lowest first.
    pub fn ranking(&self) -> &PlanRanking {
        &self.ranking
    }

    /// The plan for a product, or the default plan.
    pub fn plan_for(&self, product_id: Option<&str>) -> &str {
        product_id
            .and_then(|id| self.by_product.get(id))
            .map_or(&self.default_plan, |plan| plan)
    }

    /// Whether `product_id` is listed in `PRODUCT_PLANS`.
    pub fn lists(&self, product_id: &str) -> bool {
        self.by_product.contains_key(product_id)
    }

    /// The listed products, sorted.
    pub fn products(&self) -> Vec<&str> {
        let mut products: Vec<&str> = self.by_product.keys().map(String::as_str).collect();
        products.sort_unstable();
        products
    }

    /// The plan for products not listed.
    pub fn default_plan(&self) -> &str {
        &self.default_plan
    }
}

/// Parses `PLAN_RANKING` (`free,professional,enterprise` when unset): plan names, lowest
/// first, each at most once.
pub fn plan_ranking_from_env(env: &Env) -> Result<PlanRanking, ConfigError> {
    let Some(text) = env.optional("PLAN_RANKING") else {
        return Ok(PlanRanking::standard());
    };
    let mut plans: Vec<String> = Vec::new();
    for plan in text.split(',').map(str::trim) {
        if !is_token(plan) || plans.iter().any(|p| p == plan) {
            return Err(ConfigError::new(
                "PLAN_RANKING",
                "must list distinct plan names, lowest first, e.g. free,professional,enterprise",
            ));
        }
        plans.push(plan.to_owned());
    }
    Ok(PlanRanking::new(plans))
}

/// Parses `PLAN_FEATURES` (`professional=export,api;enterprise=export,api,sso`; empty when
/// unset): what each plan unlocks.
pub fn plan_features_from_env(env: &Env) -> Result<crate::access::PlanFeatures, ConfigError> {
    let mut by_plan = std::collections::BTreeMap::new();
    let text = env.optional("PLAN_FEATURES").unwrap_or_default();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once('=').and_then(|(plan, list)| {
            let features: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
            (is_token(plan.trim()) && features.iter().all(|f| is_token(f)))
                .then(|| (plan.trim().to_owned(), features))
        });
        let Some((plan, features)) = parsed else {
            return Err(ConfigError::new(
                "PLAN_FEATURES",
                format!(
                    "has a malformed entry {entry:?}; expected plan=feature,feature;plan=feature"
                ),
            ));
        };
        if by_plan.insert(plan.clone(), features).is_some() {
            return Err(ConfigError::new(
                "PLAN_FEATURES",
                format!("names plan {plan:?} twice"),
            ));
        }
    }
    Ok(crate::access::PlanFeatures::new(by_plan))
}

/// Dodo's `proration_billing_mode` values, accepted by `PLAN_CHANGE_PRORATION`.
pub const PRORATION_MODES: [&str; 3] = [
    "prorated_immediately",
    "full_immediately",
    "difference_immediately",
];

/// Reads `PLAN_CHANGE_PRORATION` (default `prorated_immediately`): how Dodo bills an upgrade.
pub fn plan_change_proration_from_env(env: &Env) -> Result<String, ConfigError> {
    let mode = env
        .optional("PLAN_CHANGE_PRORATION")
        .unwrap_or_else(|| PRORATION_MODES[0].to_owned());
    if PRORATION_MODES.contains(&mode.as_str()) {
        Ok(mode)
    } else {
        Err(ConfigError::new(
            "PLAN_CHANGE_PRORATION",
            "must be prorated_immediately, full_immediately or difference_immediately",
        ))
    }
}

/// Default `COOKIE_SESSION_MAX_SECONDS`: 400 days.
pub const DEFAULT_SESSION_MAX_SECONDS: i64 = 400 * 86_400;

/// How the entitlement cookie is signed and set.
#[derive(Debug, Clone)]
pub struct CookieConfig {
    /// `ENTITLEMENT_SECRET`: one or more keys separated by spaces, each at least 32 bytes;
    /// the first signs, all verify.
    pub keys: Vec<Secret>,
    /// The token's `aud`: the origin of `NEXT_PUBLIC_SITE_URL`.
    pub audience: String,
    /// `COOKIE_MAX_AGE_SECONDS` (default 30 days): token lifetime and `Max-Age`.
    pub lifetime_seconds: i64,
    /// `COOKIE_SESSION_MAX_SECONDS` (default 400 days): how long refreshes may extend a
    /// session past its `auth_time`.
    pub session_max_seconds: i64,
    /// `COOKIE_DOMAIN`: widen the cookie to a parent domain.
    pub domain: Option<String>,
    /// `COOKIE_OLD_NAME_UNTIL` (RFC 3339, default [`DEFAULT_OLD_NAME_UNTIL`]): until when a
    /// cookie under the other name than the one issued is still read (unix seconds).
    pub old_name_until: i64,
    /// `PASS_*`: the edge pass issued beside the cookie; `None` without `PASS_SIGNING_KEY`.
    pub pass: Option<crate::pass::PassConfig>,
}

/// Default of `COOKIE_OLD_NAME_UNTIL`: three months after cookies moved to
/// `__Host-llmxt_pro` (2026-12-01). A cookie under the old name lived at most
/// `COOKIE_MAX_AGE_SECONDS` (30 days by default) and moves to the new name at its first
/// entitlement check, so by then only planted cookies are left under it.
pub const DEFAULT_OLD_NAME_UNTIL: &str = "2027-03-01T00:00:00Z";

impl CookieConfig {
    /// Reads the cookie settings (keys, audience from `NEXT_PUBLIC_SITE_URL`, lifetime,
    /// domain).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let keys = env.signing_keys("ENTITLEMENT_SECRET")?;
        let audience = SiteUrl::parse(&env.required("NEXT_PUBLIC_SITE_URL")?)?
            .origin()
            .to_owned();
        let domain = env.optional("COOKIE_DOMAIN");
        if let Some(domain) = &domain
            && !domain
                .trim_start_matches('.')
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(ConfigError::new(
                "COOKIE_DOMAIN",
                "must be a bare domain such as example.com",
            ));
        }
        Ok(Self {
            keys,
            audience,
            lifetime_seconds: env.seconds(
                "COOKIE_MAX_AGE_SECONDS",
                30 * 86_400,
                60,
                400 * 86_400,
            )?,
            session_max_seconds: env.seconds(
                "COOKIE_SESSION_MAX_SECONDS",
                DEFAULT_SESSION_MAX_SECONDS,
                3600,
                10 * 366 * 86_400,
            )?,
            domain,
            old_name_until: old_name_until(env)?,
            pass: pass_config_from_env(env)?,
        })
    }
}

fn old_name_until(env: &Env) -> Result<i64, ConfigError> {
    let text = env
        .optional("COOKIE_OLD_NAME_UNTIL")
        .unwrap_or_else(|| DEFAULT_OLD_NAME_UNTIL.to_owned());
    crate::time::parse_rfc3339_seconds(&text).ok_or_else(|| {
        ConfigError::new(
            "COOKIE_OLD_NAME_UNTIL",
            "must be an RFC 3339 date and time, e.g. 2027-03-01T00:00:00Z",
        )
    })
}

/// The edge pass settings: `PASS_SIGNING_KEY` (Ed25519, PKCS#8 PEM; unset: no pass),
/// `PASS_VERIFY_KEYS_PREVIOUS` (retired public keys, PEM, still published),
/// `PASS_TTL_SECONDS` (default 60, 5–3600), `PASS_STALE_SECONDS` (default a day, 0 = no
/// stale window) and `PLAN_FEATURES`.
pub fn pass_config_from_env(env: &Env) -> Result<Option<crate::pass::PassConfig>, ConfigError> {
    use crate::pass::{self, PassKeys, PublicKey};
    // Every setting is checked even without a key, so a deployment that sets them is told of
    // a bad value before the key is added.
    let ttl_seconds = env.seconds(
        "PASS_TTL_SECONDS",
        pass::DEFAULT_TTL_SECONDS,
        pass::MIN_TTL_SECONDS,
        pass::MAX_TTL_SECONDS,
    )?;
    let stale_seconds = env.seconds(
        "PASS_STALE_SECONDS",
        pass::DEFAULT_STALE_SECONDS,
        0,
        400 * 86_400,
    )?;
    let previous = match env.optional("PASS_VERIFY_KEYS_PREVIOUS") {
        Some(text) => PublicKey::all_from_pem(&text).map_err(|_| {
            ConfigError::new(
                "PASS_VERIFY_KEYS_PREVIOUS",
                "must hold Ed25519 public keys in PEM (`openssl pkey -in old.pem -pubout`)",
            )
        })?,
        None => Vec::new(),
    };
    let features = plan_features_from_env(env)?;
    let Some(private) = env.optional("PASS_SIGNING_KEY") else {
        return Ok(None);
    };
    let keys = PassKeys::from_pem(&private, previous).map_err(|_| {
        ConfigError::new(
            "PASS_SIGNING_KEY",
            "must be an Ed25519 private key in PKCS#8 PEM (`openssl genpkey -algorithm ed25519`)",
        )
    })?;
    Ok(Some(pass::PassConfig {
        keys,
        ttl_seconds,
        stale_seconds,
        features,
    }))
}

/// `NEXT_PUBLIC_SITE_URL`: the only place buyers are redirected to.
#[derive(Clone, PartialEq, Eq)]
pub struct SiteUrl(String, String);

impl SiteUrl {
    /// Accepts `https://host[:port][/path]`, or `http://` for localhost only; no query,
    /// fragment or credentials.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid = |problem: &str| ConfigError::new("NEXT_PUBLIC_SITE_URL", problem.to_owned());
        let rest = if let Some(rest) = text.strip_prefix("https://") {
            rest
        } else if let Some(rest) = text.strip_prefix("http://") {
            let host = rest.split(['/', ':']).next().unwrap_or_default();
            if !matches!(host, "localhost" | "127.0.0.1") && !host.ends_with(".localhost") {
                return Err(invalid(
                    "must use https:// (http:// is allowed for localhost only)",
                ));
            }
            rest
        } else {
            return Err(invalid("must be an absolute https:// URL"));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let bad_char = |c: char| {
            c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '\\' | '"' | '<' | '>')
        };
        if authority.is_empty() || authority.contains('@') || text.chars().any(bad_char) {
            return Err(invalid(
                "must be a plain URL with a host and no query, fragment or credentials",
            ));
        }
        let mut base = text.trim_end_matches('/').to_owned();
        if !rest.contains('/') || rest.trim_end_matches('/') == authority {
            base.push('/');
        }
        let scheme = if text.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        let origin = format!("{scheme}://{}", authority.to_ascii_lowercase());
        Ok(Self(base, origin))
    }

    /// `scheme://host[:port]`, no trailing slash: the cookie token's audience.
    pub fn origin(&self) -> &str {
        &self.1
    }

    /// Whether this is a loopback development URL (`http://localhost[:port]` or
    /// `http://127.0.0.1[:port]`).
    pub fn is_loopback_http(&self) -> bool {
        let Some(authority) = self.1.strip_prefix("http://") else {
            return false;
        };
        let host = authority.split(':').next().unwrap_or_default();
        let port_ok = authority
            .split_once(':')
            .is_none_or(|(_, port)| !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()));
        matches!(host, "localhost" | "127.0.0.1") && port_ok
    }

    /// The site URL as configured (ends with `/` when it has no path).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The site URL with `?upgrade={outcome}` added.
    pub fn with_upgrade_outcome(&self, outcome: &str) -> String {
        format!("{}?upgrade={outcome}", self.0)
    }
}

impl fmt::Debug for SiteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteUrl({})", self.0)
    }
}

/// Budgets that keep public routes from being turned against the merchant (docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseLimits {
    /// `DODO_API_CALLS_PER_MINUTE`: Dodo API calls caused by unauthenticated requests, shared
    /// by every instance.
    pub dodo_api_calls_per_minute: i64,
    /// `CHECKOUTS_PER_HOUR_PER_IP`: Checkout Sessions one client IP may create an hour.
    pub checkouts_per_hour_per_ip: i64,
    /// `RESTORE_EMAILS_PER_HOUR`: sign-in emails sent an hour, site-wide.
    pub restore_emails_per_hour: i64,
    /// `CLIENT_IP_HEADER`: the header (lower-case) the merchant's own proxy sets to the
    /// client's address; `None`: API Gateway's `sourceIp`.
    pub client_ip_header: Option<String>,
}

impl AbuseLimits {
    /// Reads the limits (defaults 60, 20, 200; no client-IP header).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let client_ip_header = env
            .optional("CLIENT_IP_HEADER")
            .map(|name| name.to_ascii_lowercase());
        if let Some(name) = &client_ip_header
            && !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new(
                "CLIENT_IP_HEADER",
                "must be a header name, e.g. cloudfront-viewer-address, x-forwarded-for or x-real-ip",
            ));
        }
        // `seconds` reads any bounded whole number.
        Ok(Self {
            dodo_api_calls_per_minute: env.seconds("DODO_API_CALLS_PER_MINUTE", 60, 1, 100_000)?,
            checkouts_per_hour_per_ip: env.seconds("CHECKOUTS_PER_HOUR_PER_IP", 20, 1, 100_000)?,
            restore_emails_per_hour: env.seconds("RESTORE_EMAILS_PER_HOUR", 200, 1, 1_000_000)?,
            client_ip_header,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn plan_names_default_to_the_capitalised_id_and_refuse_malformed_lists() {
        let names =
            PlanNames::parse("professional=Pro, enterprise = Business plus").expect("valid");
        assert_eq!(names.display("professional"), "Pro");
        assert_eq!(names.display("enterprise"), "Business plus");
        assert_eq!(names.display("starter"), "Starter");
        assert_eq!(PlanNames::default().display("émigré"), "Émigré");
        for bad in [
            "professional",
            "=Pro",
            "pro plan=Pro",
            "a=Pro,a=Max",
            "a=",
            "a=\u{7}",
        ] {
            let error = PlanNames::parse(bad).expect_err(bad);
            assert_eq!(error.variable, "PLAN_NAMES", "{bad}");
        }
        let catalog =
            PlanCatalog::from_env(&Env::from_pairs([("PLAN_NAMES", "enterprise=Business")]))
                .expect("valid");
        assert_eq!(catalog.display_name("enterprise"), "Business");
        assert_eq!(catalog.display_name("professional"), "Professional");
        let error = PlanCatalog::from_env(&Env::from_pairs([("PLAN_NAMES", "enterprise")]))
            .expect_err("malformed");
        assert_eq!(error.variable, "PLAN_NAMES");
    }

    #[test]
    fn dotenv_lines_read_as_the_dev_script_reads_them() {
        let text = "# comment\n\nPLAN_FEATURES=\"professional=export;enterprise=export,sso\"\nBRAND_NAME='My site'\nPORT=3000\nnot an assignment\n1BAD=x\nEMPTY=\nQUOTE=\"\n";
        let pairs = parse_dotenv(text);
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("PLAN_FEATURES"),
            Some("professional=export;enterprise=export,sso")
        );
        assert_eq!(get("BRAND_NAME"), Some("My site"));
        assert_eq!(get("PORT"), Some("3000"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(get("QUOTE"), Some("\""));
        assert_eq!(get("1BAD"), None);
        assert_eq!(pairs.len(), 5);
        let env = Env::with_defaults(&Env::from_pairs([("PORT", "4000")]), parse_dotenv(text));
        assert_eq!(
            env.optional("PORT").as_deref(),
            Some("4000"),
            "the environment wins"
        );
        assert_eq!(env.optional("BRAND_NAME").as_deref(), Some("My site"));
    }

    #[test]
    fn product_plans_parse_and_reject_malformed_lists() {
        let plans =
            PlanCatalog::parse("pdt_a=professional, pdt_b=enterprise", "starter").expect("valid");
        assert_eq!(plans.plan_for(Some("pdt_b")), "enterprise");
        assert_eq!(plans.plan_for(Some("pdt_zzz")), "starter");
        assert_eq!(plans.plan_for(None), "starter");
        for bad in [
            "pdt_a",
            "pdt_a=",
            "=pro",
            "pdt_a=pro=x",
            "pdt a=pro",
            "pdt_a=pro,pdt_a=ent",
        ] {
            let error = PlanCatalog::parse(bad, "professional").expect_err(bad);
            assert_eq!(error.variable, "PRODUCT_PLANS", "{bad}");
        }
        assert_eq!(
            PlanCatalog::parse("", "pro plan")
                .expect_err("space")
                .variable,
            "DEFAULT_PLAN"
        );
    }

    #[test]
    fn every_plan_a_sale_grants_is_a_paid_plan_of_the_ranking() {
        let catalog = PlanCatalog::from_env(&env(&[
            ("PRODUCT_PLANS", "pdt_a=gold"),
            ("DEFAULT_PLAN", "gold"),
            ("PLAN_RANKING", "free,gold"),
        ]))
        .expect("valid");
        assert_eq!(catalog.plan_for(Some("pdt_a")), "gold");
        for (pairs, variable) in [
            (vec![("PRODUCT_PLANS", "pdt_a=gold")], "PRODUCT_PLANS"),
            (vec![("PRODUCT_PLANS", "pdt_a=free")], "PRODUCT_PLANS"),
            (vec![("DEFAULT_PLAN", "starter")], "DEFAULT_PLAN"),
            (vec![("PLAN_RANKING", "gold,silver")], "DEFAULT_PLAN"),
        ] {
            let error = PlanCatalog::from_env(&env(&pairs)).expect_err(variable);
            assert_eq!(error.variable, variable, "{pairs:?}");
            assert!(error.to_string().contains("PLAN_RANKING"), "{error}");
        }
    }

    #[test]
    fn entitlement_secret_must_be_strong() {
        let error =
            CookieConfig::from_env(&env(&[("ENTITLEMENT_SECRET", "short")])).expect_err("weak");
        assert_eq!(error.variable, "ENTITLEMENT_SECRET");
        assert!(error.to_string().contains("at least 32 bytes"));
        let error = CookieConfig::from_env(&env(&[])).expect_err("missing");
        assert_eq!(error.variable, "ENTITLEMENT_SECRET");
    }

    #[test]
    fn site_url_allows_only_safe_targets() {
        assert_eq!(
            SiteUrl::parse("https://example.com").expect("ok").as_str(),
            "https://example.com/"
        );
        assert_eq!(
            SiteUrl::parse("https://example.com/").expect("ok").as_str(),
            "https://example.com/"
        );
        assert_eq!(
            SiteUrl::parse("https://example.com/app/")
                .expect("ok")
                .with_upgrade_outcome("success"),
            "https://example.com/app?upgrade=success"
        );
        assert_eq!(
            SiteUrl::parse("http://127.0.0.1:3000")
                .expect("ok")
                .with_upgrade_outcome("expired"),
            "http://127.0.0.1:3000/?upgrade=expired"
        );
        for bad in [
            "example.com",
            "http://example.com",
            "https://",
            "https://user@evil.com",
            "https://example.com/?x=1",
            "https://example.com/#top",
            "https://exa mple.com",
            "javascript:alert(1)",
            "https://example.com\\@evil.com",
        ] {
            assert_eq!(
                SiteUrl::parse(bad).expect_err(bad).variable,
                "NEXT_PUBLIC_SITE_URL",
                "{bad}"
            );
        }
    }

    #[test]
    fn abuse_limits_default_and_refuse_bad_values() {
        let limits = AbuseLimits::from_env(&env(&[])).expect("defaults");
        assert_eq!(
            limits,
            AbuseLimits {
                dodo_api_calls_per_minute: 60,
                checkouts_per_hour_per_ip: 20,
                restore_emails_per_hour: 200,
                client_ip_header: None,
            }
        );
        let set = AbuseLimits::from_env(&env(&[("CLIENT_IP_HEADER", "CloudFront-Viewer-Address")]))
            .expect("valid");
        assert_eq!(
            set.client_ip_header.as_deref(),
            Some("cloudfront-viewer-address")
        );
        for (name, bad) in [
            ("CLIENT_IP_HEADER", "x forwarded for"),
            ("DODO_API_CALLS_PER_MINUTE", "0"),
            ("CHECKOUTS_PER_HOUR_PER_IP", "many"),
            ("RESTORE_EMAILS_PER_HOUR", "-1"),
        ] {
            let error = AbuseLimits::from_env(&env(&[(name, bad)])).expect_err(bad);
            assert_eq!(error.variable, name);
        }
    }

    #[test]
    fn plan_features_and_proration_are_validated_in_one_line() {
        let features = plan_features_from_env(&env(&[(
            "PLAN_FEATURES",
            "professional=export,api; enterprise=export,api,sso",
        )]))
        .expect("valid");
        assert_eq!(features.of("enterprise"), ["export", "api", "sso"]);
        assert!(features.of("free").is_empty());
        assert!(
            plan_features_from_env(&env(&[]))
                .expect("empty")
                .of("x")
                .is_empty()
        );
        for bad in ["professional", "pro plan=x", "a=x;a=y", "a=b c", "=x"] {
            let error = plan_features_from_env(&env(&[("PLAN_FEATURES", bad)])).expect_err(bad);
            assert_eq!(error.variable, "PLAN_FEATURES", "{bad}");
            assert!(!error.to_string().contains('\n'), "{bad}");
        }
        assert_eq!(
            plan_change_proration_from_env(&env(&[])).expect("default"),
            "prorated_immediately"
        );
        assert_eq!(
            plan_change_proration_from_env(&env(&[("PLAN_CHANGE_PRORATION", "full_immediately")]))
                .expect("valid"),
            "full_immediately"
        );
        let error = plan_change_proration_from_env(&env(&[("PLAN_CHANGE_PRORATION", "later")]))
            .expect_err("unknown mode");
        assert_eq!(error.variable, "PLAN_CHANGE_PRORATION");
    }

    #[test]
    fn pass_settings_are_optional_bounded_and_checked_at_start() {
        const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIexPclLmn4fZgHqFF8GFERwlb8/IKwYrJkxURyEjlDg\n-----END PRIVATE KEY-----";
        const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----";
        let base = [
            ("ENTITLEMENT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("NEXT_PUBLIC_SITE_URL", "https://pro.example.com"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            CookieConfig::from_env(&env(&pairs))
        };
        assert!(with(&[]).expect("valid").pass.is_none(), "unset: no pass");
        let pass = with(&[("PASS_SIGNING_KEY", KEY)])
            .expect("valid")
            .pass
            .expect("configured");
        assert_eq!((pass.ttl_seconds, pass.stale_seconds), (60, 86_400));
        assert_eq!(pass.keys.jwks().keys.len(), 1);
        let rotated = with(&[
            ("PASS_SIGNING_KEY", KEY),
            ("PASS_VERIFY_KEYS_PREVIOUS", PUBLIC),
            ("PASS_TTL_SECONDS", "5"),
            ("PASS_STALE_SECONDS", "0"),
        ])
        .expect("valid")
        .pass
        .expect("configured");
        assert_eq!((rotated.ttl_seconds, rotated.stale_seconds), (5, 0));
        assert_eq!(
            rotated.keys.jwks().keys[1].x,
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        for (name, value, variable) in [
            ("PASS_SIGNING_KEY", "hunter2", "PASS_SIGNING_KEY"),
            ("PASS_SIGNING_KEY", PUBLIC, "PASS_SIGNING_KEY"),
            (
                "PASS_VERIFY_KEYS_PREVIOUS",
                KEY,
                "PASS_VERIFY_KEYS_PREVIOUS",
            ),
            ("PASS_TTL_SECONDS", "4", "PASS_TTL_SECONDS"),
            ("PASS_TTL_SECONDS", "3601", "PASS_TTL_SECONDS"),
            ("PASS_STALE_SECONDS", "-1", "PASS_STALE_SECONDS"),
        ] {
            let mut extra = vec![("PASS_SIGNING_KEY", KEY)];
            extra.retain(|(n, _)| *n != name);
            extra.push((name, value));
            let error = with(&extra).expect_err(value);
            assert_eq!(error.variable, variable, "{name}={value}");
            assert!(!error.to_string().contains("MC4C"), "no key in the message");
        }
    }
}
