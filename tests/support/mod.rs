//! Shared test support.

pub mod fake_api;
#[cfg(feature = "serve")]
pub mod serve;
