//! Dodo Payments' API, over the official `dodopayments` SDK: checkout sessions, the customer
//! portal, plan changes, confirming a purchase whose webhook is late, and reconcile.
//!
//! Answers are applied through `llmxt-store`'s ledger with `llmxt-domain`'s policy, exactly
//! as a webhook is. It must not depend on Lambda or HTTP servers.
#![forbid(unsafe_code)]

pub mod config;
pub mod confirm;
pub mod dodo_api;
pub mod reconcile;
