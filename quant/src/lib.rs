//! `fennec-quant`: the GGUF/ggml tensor element types, their block layouts and the
//! kernels that compute with them. Depends on nothing else in Fennec.

pub mod blocks;
pub mod cpu;
pub mod dot;
pub mod types;

pub use cpu::CpuLevel;
pub use types::{GgmlType, TypeError};
