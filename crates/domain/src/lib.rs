//! The domain of the Dodo Payments → DynamoDB entitlement backend: what Dodo's events mean,
//! the policy that turns them into grants, who has access, the records as plain Rust types,
//! cookie tokens, both signature schemes, and the settings these read.
//!
//! Pure code only: it must not depend on the AWS SDKs, an HTTP client, tokio or Dodo's SDK
//! (CI checks `cargo tree -p llmxt-domain -e normal`), so its tests need no service.
#![forbid(unsafe_code)]

pub mod access;
pub mod config;
pub mod credits;
pub mod crypto;
pub mod email;
pub mod env;
pub mod events;
pub mod jwt_crypto;
pub mod pass;
pub mod policy;
pub mod privacy;
pub mod records;
pub mod request_signature;
pub mod secret;
pub mod time;
pub mod token;
pub mod usage;
pub mod webhook_signature;
