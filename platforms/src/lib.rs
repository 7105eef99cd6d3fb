//! `fennec-platforms`: adapters between device inputs and backends (camera frames,
//! microphone audio, the wgpu GPU backend) and `fennec-core`. Filled by later issues;
//! it exists now so the dependency direction (platforms → core → quant) is fixed.

pub use fennec_camera as camera;
pub use fennec_core as core;
