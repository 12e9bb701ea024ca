//! The YAML boundary: the only module that touches a YAML library.
//!
//! Shared with `build.rs`. `parse` splits streams and deserializes documents: `fast` handles the plain
//! block YAML almost every document is written in, and serde_yaml (deprecated upstream, so it stays
//! behind this module) everything else and every error. `spans` maps field paths back to `line:column`
//! on the error path, and `emit` is knext's own fast, correctly quoting YAML writer.

pub mod emit;
pub mod fast;
pub mod parse;
pub mod spans;
