//! What a set of grants gives: Pro or not, the plan shown, the features unlocked
//! (`PLAN_FEATURES`) and the billing state of the grant that decides. Pure: the caller
//! passes the grants in scope (all of an email's grants, or those a purchase cookie names).

use std::collections::{BTreeMap, BTreeSet};

use crate::records::{Grant, PlanRanking, source, status};

/// What each plan unlocks (`PLAN_FEATURES`: `professional=export,api;enterprise=export,api,sso`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanFeatures(BTreeMap<String, Vec<String>>);

impl PlanFeatures {
    /// Features by plan.
    pub fn new(by_plan: BTreeMap<String, Vec<String>>) -> Self {
        Self(by_plan)
    }

    /// The features of `plan` (none for a plan not listed).
    pub fn of(&self, plan: &str) -> &[String] {
        self.0.get(plan).map_or(&[], Vec::as_slice)
    }
}

/// A grant's billing state, as `/api/entitlement` answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingState {
    /// A one-time purchase (or a grant without an end).
    Lifetime,
    /// A subscription in force, or a grant with an end date.
    Active,
    /// A subscription in its free trial.
    Trialing,
    /// A renewal failed inside the merchant's grace period.
    PastDue,
    /// A renewal failed; Dodo holds the subscription.
    OnHold,
    /// Cancelled: access until the paid period ends.
    Cancelled,
    /// Paused: access until the paid period ends.
    Paused,
    /// Ended.
    Expired,
    /// Taken away (refund, lost dispute, operator).
    Revoked,
}

impl BillingState {
    /// The word answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lifetime => "lifetime",
            Self::Active => "active",
            Self::Trialing => "trialing",
            Self::PastDue => "past_due",
            Self::OnHold => "on_hold",
            Self::Cancelled => "cancelled",
            Self::Paused => "paused",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// The billing of one grant at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billing {
    /// The state.
    pub state: BillingState,
    /// Next billing date (unix seconds) of a subscription in force.
    pub renews_at: Option<i64>,
    /// When access ends without another payment (unix seconds): the paid period's end for
    /// cancelled or paused, that end plus grace for on_hold and past_due.
    pub ends_at: Option<i64>,
    /// The plan a scheduled change moves to.
    pub scheduled_plan: Option<String>,
    /// When that change takes effect (unix seconds).
    pub scheduled_at: Option<i64>,
}

impl Billing {
    /// The billing of `grant` at `now`.
    pub fn of(grant: &Grant, now: i64) -> Self {
        let subscription = grant.source == source::SUBSCRIPTION;
        let dodo_status = grant
            .subscription_status
            .as_deref()
            .or(grant.reason.as_deref())
            .unwrap_or_default();
        let ended = grant.expires_at.is_some_and(|end| end <= now);
        let (state, renews_at, ends_at) = match grant.status.as_str() {
            status::REVOKED => (BillingState::Revoked, None, None),
            status::EXPIRED => (BillingState::Expired, None, None),
            _ if ended => (BillingState::Expired, None, None),
            status::CANCELLED => (BillingState::Cancelled, None, grant.expires_at),
            _ if !subscription => match grant.expires_at {
                None => (BillingState::Lifetime, None, None),
                Some(end) => (BillingState::Active, None, Some(end)),
            },
            _ => match dodo_status {
                "paused" => (BillingState::Paused, None, grant.expires_at),
                "past_due" => (BillingState::PastDue, None, grant.expires_at),
                "on_hold" => (BillingState::OnHold, None, grant.expires_at),
                _ if grant.trial_ends_at.is_some_and(|end| end > now) => {
                    (BillingState::Trialing, grant.period_end, None)
                }
                _ => (BillingState::Active, grant.period_end, None),
            },
        };
        let in_force = matches!(
            state,
            BillingState::Active
                | BillingState::Trialing
                | BillingState::PastDue
                | BillingState::OnHold
        );
        Self {
            state,
            renews_at,
            ends_at,
            scheduled_plan: grant.scheduled_plan.clone().filter(|_| in_force),
            scheduled_at: grant.scheduled_at.filter(|_| in_force),
        }
    }
}

/// What a set of grants gives at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSummary<'a> {
    /// The grant that decides what is shown: among grants giving access, the highest plan
    /// by ranking, then the latest expiry (lifetime last of all); when none gives access,
    /// the most recently changed grant.
    pub shown: Option<&'a Grant>,
    /// Some grant gives access.
    pub pro: bool,
    /// The union of the features of every grant giving access, sorted.
    pub features: Vec<String>,
    /// The shown grant's billing.
    pub billing: Option<Billing>,
}

/// Sums up `grants` (the grants in scope) at `now`.
pub fn access_summary<'a>(
    grants: impl Iterator<Item = &'a Grant>,
    now: i64,
    ranking: &PlanRanking,
    features: &PlanFeatures,
) -> AccessSummary<'a> {
    let grants: Vec<&Grant> = grants.collect();
    let giving: Vec<&Grant> = grants
        .iter()
        .copied()
        .filter(|g| g.gives_pro(now, ranking))
        .collect();
    let best = giving.iter().copied().max_by_key(|grant| {
        (
            ranking.rank(&grant.plan),
            grant.expires_at.map_or(i64::MAX, |end| end),
        )
    });
    let shown = best.or_else(|| grants.iter().copied().max_by_key(|g| g.updated_at));
    let unlocked: BTreeSet<&String> = giving
        .iter()
        .flat_map(|grant| features.of(&grant.plan))
        .collect();
    AccessSummary {
        shown,
        pro: best.is_some(),
        features: unlocked.into_iter().cloned().collect(),
        billing: shown.map(|grant| Billing::of(grant, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn features() -> PlanFeatures {
        PlanFeatures::new(BTreeMap::from([
            (
                "professional".to_owned(),
                vec!["export".to_owned(), "api".to_owned()],
            ),
            (
                "enterprise".to_owned(),
                vec!["export".to_owned(), "api".to_owned(), "sso".to_owned()],
            ),
        ]))
    }

    fn subscription(plan: &str, dodo_status: &str, grant_status: &str, end: i64) -> Grant {
        Grant {
            key: format!("sub_{plan}"),
            source: source::SUBSCRIPTION.to_owned(),
            plan: plan.to_owned(),
            status: grant_status.to_owned(),
            expires_at: Some(end),
            period_end: Some(end - 100),
            subscription_status: Some(dodo_status.to_owned()),
            ..Grant::default()
        }
    }

    #[test]
    fn features_are_the_union_over_grants_giving_access() {
        let lifetime = Grant {
            key: "pay_1".to_owned(),
            source: source::PAYMENT.to_owned(),
            plan: "professional".to_owned(),
            status: status::ACTIVE.to_owned(),
            ..Grant::default()
        };
        let ended = subscription("enterprise", "expired", status::EXPIRED, NOW - 1);
        let summary = access_summary(
            [&lifetime, &ended].into_iter(),
            NOW,
            &PlanRanking::standard(),
            &features(),
        );
        assert!(summary.pro);
        assert_eq!(summary.features, ["api", "export"]);
        assert_eq!(
            summary.billing.expect("billing").state,
            BillingState::Lifetime
        );

        let active = subscription("enterprise", "active", status::ACTIVE, NOW + 1000);
        let summary = access_summary(
            [&lifetime, &active].into_iter(),
            NOW,
            &PlanRanking::standard(),
            &features(),
        );
        assert_eq!(summary.shown.expect("shown").plan, "enterprise");
        assert_eq!(summary.features, ["api", "export", "sso"]);
        let billing = summary.billing.expect("billing");
        assert_eq!(billing.state, BillingState::Active);
        assert_eq!(billing.renews_at, Some(NOW + 900));
        assert_eq!(billing.ends_at, None);
    }

    #[test]
    fn billing_states_follow_dodo_statuses() {
        let state = |grant: &Grant| Billing::of(grant, NOW);
        let paused = subscription("professional", "paused", status::ACTIVE, NOW + 50);
        assert_eq!(state(&paused).state, BillingState::Paused);
        assert_eq!(state(&paused).ends_at, Some(NOW + 50));
        let past_due = subscription("professional", "past_due", status::ACTIVE, NOW + 50);
        assert_eq!(state(&past_due).state, BillingState::PastDue);
        let on_hold = subscription("professional", "on_hold", status::ACTIVE, NOW + 50);
        assert_eq!(state(&on_hold).state, BillingState::OnHold);
        let cancelled = subscription("professional", "cancelled", status::CANCELLED, NOW + 50);
        assert_eq!(state(&cancelled).state, BillingState::Cancelled);
        let over = subscription("professional", "active", status::ACTIVE, NOW);
        assert_eq!(state(&over).state, BillingState::Expired);
        let revoked = subscription("professional", "active", status::REVOKED, NOW + 50);
        assert_eq!(state(&revoked).state, BillingState::Revoked);
        let trial = Grant {
            trial_ends_at: Some(NOW + 10),
            ..subscription("professional", "active", status::ACTIVE, NOW + 50)
        };
        assert_eq!(state(&trial).state, BillingState::Trialing);
        let scheduled = Grant {
            scheduled_plan: Some("professional".to_owned()),
            scheduled_at: Some(NOW + 50),
            ..subscription("enterprise", "active", status::ACTIVE, NOW + 50)
        };
        assert_eq!(
            state(&scheduled).scheduled_plan.as_deref(),
            Some("professional")
        );
    }
}
