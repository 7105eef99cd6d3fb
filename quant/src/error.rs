//! The error type of the row-level quantize, dequantize and dot-product entry points.

use crate::GgmlType;

/// Why a quantize, dequantize, dot-product or matmul call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// Fennec has no implementation of this operation for this type (yet).
    #[error("{op} is not supported for {ty}")]
    Unsupported {
        /// The type asked for.
        ty: GgmlType,
        /// The operation (`"quantize"`, `"dequantize"`, `"vec_dot"`).
        op: &'static str,
    },
    /// The element count is not a whole number of blocks.
    #[error("{n} elements is not a multiple of the {ty} block length {block_len}")]
    NotBlockMultiple {
        /// The type.
        ty: GgmlType,
        /// Elements asked for.
        n: usize,
        /// Elements per block of `ty`.
        block_len: usize,
    },
    /// A buffer has the wrong size for the element count.
    #[error("{what} buffer holds {got} {unit}, expected {expected} for {ty}")]
    BufferSize {
        /// The type the buffer holds.
        ty: GgmlType,
        /// Which buffer (`"source"`, `"destination"`, `"weights"`, `"activations"`, `"output"`).
        what: &'static str,
        /// Its actual length.
        got: usize,
        /// The length needed.
        expected: usize,
        /// `"bytes"` or `"elements"`.
        unit: &'static str,
    },
    /// A byte buffer is not a whole number of blocks.
    #[error("{len} bytes is not a whole number of {ty} blocks of {block_bytes} bytes")]
    BufferNotWholeBlocks {
        /// The type.
        ty: GgmlType,
        /// Bytes given.
        len: usize,
        /// Bytes per block.
        block_bytes: usize,
    },
    /// A byte buffer is not aligned for a block struct view.
    #[error("buffer is not {align}-byte aligned as {ty} blocks need")]
    Misaligned {
        /// The type.
        ty: GgmlType,
        /// Alignment needed.
        align: usize,
    },
    /// A matmul shape argument is inconsistent.
    #[error("bad matmul shape: {0}")]
    Shape(String),
}
