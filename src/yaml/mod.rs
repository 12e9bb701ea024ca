//! The YAML boundary: the only module that touches a YAML library.
//!
//! Shared with `build.rs`. `parse` splits streams and deserializes documents (serde_yaml, deprecated
//! upstream, stays behind this module so it can be swapped), `spans` maps field paths back to
//! `line:column` on the error path, and `emit` is knext's own fast, correctly quoting YAML writer.

pub mod emit;
pub mod parse;
pub mod spans;
