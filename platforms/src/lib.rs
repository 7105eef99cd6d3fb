//! `fennec-platforms`: adapters between device inputs and backends and `fennec-core`, one
//! crate per concern, re-exported here: [`camera`] (camera frames to images) and [`audio`]
//! (microphone, PCM and audio files to 16 kHz speech utterances), and [`gpu`] (feature `gpu`:
//! WGSL kernels on wgpu, Vulkan and Metal).

pub use fennec_audio as audio;
pub use fennec_camera as camera;
/// Microphone capture (feature `audio-capture`, on by default).
#[cfg(feature = "audio-capture")]
pub use fennec_capture as capture_audio;
pub use fennec_core as core;
/// The GPU backend (feature `gpu`).
#[cfg(feature = "gpu")]
pub use fennec_gpu as gpu;

/// The README's Rust examples, compiled as doc tests here: this crate sees both `fennec-core`
/// and the platform crates the examples use.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
