//! Tensor descriptions from the GGUF header, and their byte sizes.

use fennec_quant::GgmlType;

use super::error::{GgufError, Result};

/// Most dimensions a ggml tensor has.
pub const MAX_DIMS: usize = 4;

/// One tensor's entry in the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in GGML order: `dims[0]` is the contiguous (row) length.
    pub dims: Vec<u64>,
    /// Element type.
    pub ty: GgmlType,
    /// Offset of the first byte, relative to the start of the data section.
    pub offset: u64,
    /// Bytes of data.
    pub size: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Number of rows (all dims but the first).
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }

    /// Bytes in one row.
    pub fn row_bytes(&self) -> u64 {
        self.size / self.n_rows().max(1)
    }
}

/// Bytes taken by a tensor of type `ty` and `dims` (GGML order), checking that the first
/// dimension is whole blocks and that nothing overflows.
pub fn tensor_bytes(name: &str, ty: GgmlType, dims: &[u64]) -> Result<u64> {
    if dims.len() > MAX_DIMS {
        return Err(GgufError::TooManyDims {
            tensor: name.to_string(),
            n_dims: dims.len() as u32,
        });
    }
    if dims.contains(&0) {
        return Err(GgufError::ZeroDim {
            tensor: name.to_string(),
            dims: dims.to_vec(),
        });
    }
    let overflow = || GgufError::ShapeOverflow {
        tensor: name.to_string(),
        dims: dims.to_vec(),
    };
    // ggml stores dims and byte counts as int64.
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(overflow)?;
    let ne0 = dims.first().copied().unwrap_or(1);
    let row = ty.row_bytes(ne0).ok_or_else(|| GgufError::PartialBlock {
        tensor: name.to_string(),
        ty,
        ne0,
        block: ty.block_len(),
    })?;
    let rows = n_elements / ne0;
    row.checked_mul(rows)
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or_else(overflow)
}
