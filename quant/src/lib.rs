//! `fennec-quant`: the GGUF/ggml tensor element types, their block layouts and the
//! kernels that compute with them. Depends on nothing else in Fennec.
//!
//! Row-level entry points: [`quantize_row`], [`dequantize_row`], [`vec_dot`]; several rows
//! at once: [`matmul`].

#![warn(missing_docs)]

pub mod blocks;
pub mod bytes;
pub mod cpu;
pub mod dot;
mod error;
pub mod formats;
pub mod matmul;
pub mod rng;
pub mod types;

pub use bytes::{view_blocks, Block};
pub use cpu::CpuLevel;
pub use dot::vec_dot;
pub use error::QuantError;
pub use formats::{dequantize_row, quantize_activations, quantize_row, row_bytes};
pub use types::{GgmlType, TypeError};
