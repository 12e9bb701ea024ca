//! Shared test support.

pub mod fake_api;
#[cfg(feature = "operator")]
pub mod moto;
#[cfg(feature = "serve")]
pub mod serve;
