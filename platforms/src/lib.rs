//! `fennec-platforms`: adapters between device inputs and backends and `fennec-core`, one
//! crate per concern, re-exported here: [`camera`] (camera frames to images). Microphone
//! audio and the wgpu GPU backend join with their issues.

pub use fennec_camera as camera;
pub use fennec_core as core;

/// The README's Rust examples, compiled as doc tests here: this crate sees both `fennec-core`
/// and the platform crates the examples use.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
