//! The DynamoDB store: table definitions, how every record maps to an item, the ledger that
//! commits a decided delivery in one transaction, operator changes, counters, restore tokens
//! and erasure receipts.
//!
//! It decides nothing: decisions come from `llmxt-domain`. It must not depend on Dodo's API
//! (`llmxt-dodo`), Lambda or HTTP servers.
#![forbid(unsafe_code)]

pub mod config;
pub mod item;
pub mod ledger;
pub mod operator;
mod packs;
pub mod store;
pub mod usage;
pub mod warn_once;
