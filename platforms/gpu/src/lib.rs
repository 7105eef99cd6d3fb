//! `fennec-gpu`: Fennec's GPU path. WGSL compute kernels (`shaders/`) over the GGUF blocks
//! themselves, run by `wgpu` on Vulkan (Android, Linux) and Metal (iOS, macOS).
//!
//! Today: opening an adapter with its own limits ([`Gpu`]), weight matrices uploaded once and
//! split by whole rows to fit every binding ([`GpuMatrix`]), activations quantized on the GPU
//! the way the CPU quantizes them, and matrix-vector products for F32, F16, Q4_0, Q4_1, Q5_0,
//! Q5_1, Q8_0, Q4_K, Q5_K and Q6_K with integer dots (`dot4I8Packed`), each with a subgroup and a
//! shared-memory reduction ([`Reduction`]). The CPU path in `fennec-core` stays the
//! always-correct fallback.

#![warn(missing_docs)]

mod attention;
mod backend;
mod device;
mod error;
pub mod kernels;
mod matrix;
mod matvec;
mod pool;
mod recorder;
mod selftest;

pub use attention::{AttentionShape, GpuKvLayer, MAX_HEAD_DIM};
pub use backend::{GpuSession, WgpuBackend};
pub use device::{AdapterSummary, Gpu, GpuOptions};
pub use error::GpuError;
pub use kernels::Reduction;
pub use matrix::GpuMatrix;
pub use recorder::{GpuIndices, GpuTensor, Recorder, RopePairs};
