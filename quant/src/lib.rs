//! `fennec-quant`: the GGUF/ggml tensor element types, their block layouts and the
//! kernels that compute with them. Depends on nothing else in Fennec.
//!
//! Row-level entry points: [`quantize_row`], [`dequantize_row`], [`vec_dot`]; several rows
//! at once: [`matmul`].
//!
//! # Where a type's facts live
//!
//! * number, name, elements and bytes per block: [`types`] ([`GgmlType`], `ALL`, `name`,
//!   `block_len`, `block_bytes`);
//! * byte layout: a struct in [`blocks`], paired with its type (size checked) at the end;
//! * f32 ↔ bytes converters: [`formats`] (`formats/{legacy,kquants,iq4,float}.rs`), listed
//!   in its one converter table;
//! * activation pairing: [`dot::activation_type`], the one table every kernel reads;
//! * kernels: `dot/scalar.rs` (the reference), `dot/x86/int/mod.rs` and `dot/x86/float.rs`
//!   (tables per level), `dot/neon/mod.rs` (`pick!`), listing which body serves which type;
//! * matmul: `matmul.rs` runs the row-lane kernels of `lanes/` for Q4_0, Q4_1, Q8_0 and Q4_K at the
//!   scalar and x86 levels ([`matmul::arithmetic`] says which), the dot kernels otherwise;
//! * f32 slices (attention's dot and axpy): [`float_ops`].
//!
//! # Adding a quant type
//!
//! 1. `types.rs`: the variant, its place in `ALL`, `name`, `block_len`, `block_bytes`.
//! 2. `blocks.rs`: the block struct, and a line in the `impl_block!` list.
//! 3. `formats/`: quantize/dequantize functions, and a row in `formats/mod.rs`'s table.
//! 4. `dot/mod.rs`: its activation type; `dot/scalar.rs`: its reference kernel.
//! 5. SIMD bodies, if any: `dot/x86/int/` (plus its tables), `dot/neon/` (plus `pick!`).
//! 6. Tests (each keeps its own list, on purpose): fixtures for `golden.rs`/`ggml_ref.rs`;
//!    `SUPPORTED` in `properties.rs`, `PAIRS` in `dot.rs`; the SIMD type lists in
//!    `simd_x86.rs`, `simd_neon.rs` and `multi_vec.rs`.

#![warn(missing_docs)]

pub mod blocks;
pub mod bytes;
pub mod cpu;
pub mod dot;
mod error;
pub mod float_ops;
pub mod formats;
mod lanes;
pub mod matmul;
pub mod rng;
pub mod types;
#[cfg(target_arch = "x86_64")]
mod x86_transpose;

pub use bytes::{view_blocks, Block};
pub use cpu::CpuLevel;
pub use dot::vec_dot;
pub use error::QuantError;
pub use formats::{
    dequantize_row, quantize_activations, quantize_activations_as, quantize_row, row_bytes,
};
pub use types::{GgmlType, TypeError};
