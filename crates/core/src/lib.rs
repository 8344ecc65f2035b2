//! Core of the Dodo Payments → DynamoDB entitlement backend: configuration, signatures,
//! the event policy and the store. It knows nothing of Lambda or HTTP frameworks.
#![forbid(unsafe_code)]

pub mod access;
pub mod brand;
pub mod config;
pub mod crypto;
pub mod dodo_api;
pub mod email;
pub mod events;
pub mod ledger;
pub mod operator;
pub mod policy;
pub mod privacy;
pub mod reconcile;
pub mod records;
pub mod request_signature;
pub mod secret;
pub mod store;
pub mod time;
pub mod token;
pub mod webhook_signature;
