//! Where each weight lives in the mapped file, with the shape the model expects of it.

use fennec_quant::matmul::WeightLayout;
use fennec_quant::GgmlType;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::ops::Weight;
use crate::tensor_names::{OUTPUT, TOKEN_EMBD};

/// Where a tensor lives in the file, with its matrix shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TensorRef {
    pub(crate) ty: GgmlType,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    /// How its rows lie in the bytes: as in the file, or repacked at load.
    pub(crate) layout: WeightLayout,
    /// Byte offset in the file.
    pub(crate) start: usize,
    /// Bytes.
    pub(crate) len: usize,
}

impl TensorRef {
    pub(crate) fn weight<'a>(&self, file: &'a [u8]) -> Weight<'a> {
        Weight {
            ty: self.ty,
            n_in: self.n_in,
            n_out: self.n_out,
            layout: self.layout,
            data: &file[self.start..self.start + self.len],
        }
    }

    pub(crate) fn f32s(&self, file: &[u8]) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.n_in * self.n_out];
        fennec_quant::dequantize_row(self.ty, &file[self.start..self.start + self.len], &mut out)?;
        Ok(out)
    }
}

/// Looks up tensor `name`, checking its dims (GGML order) against `dims`.
pub(crate) fn tensor_ref(file: &GgufFile, name: &str, dims: &[usize]) -> Result<TensorRef> {
    optional_ref(file, name, dims)?
        .ok_or_else(|| Error::InvalidModel(format!("tensor {name:?} is missing")))
}

/// Like [`tensor_ref`] but `None` when the tensor is absent.
pub(crate) fn optional_ref(
    file: &GgufFile,
    name: &str,
    dims: &[usize],
) -> Result<Option<TensorRef>> {
    let Some(view) = file.tensor(name) else {
        return Ok(None);
    };
    let found: Vec<u64> = view.info.dims.clone();
    let mut expected: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
    // Trailing dims of 1 are the same shape.
    let trim = |v: &mut Vec<u64>| {
        while v.len() > 1 && v.last() == Some(&1) {
            v.pop();
        }
    };
    let mut found_trimmed = found.clone();
    trim(&mut found_trimmed);
    trim(&mut expected);
    if found_trimmed != expected {
        return Err(Error::InvalidModel(format!(
            "tensor {name:?} has dims {found:?}, expected {expected:?}"
        )));
    }
    let base = view.data.as_ptr() as usize - file.as_bytes().as_ptr() as usize;
    Ok(Some(TensorRef {
        ty: view.info.ty,
        n_in: dims[0],
        n_out: dims[1..].iter().product(),
        layout: WeightLayout::Rows,
        start: base,
        len: view.data.len(),
    }))
}

pub(crate) fn optional_f32s(
    file: &GgufFile,
    name: &str,
    dims: &[usize],
) -> Result<Option<Vec<f32>>> {
    optional_ref(file, name, dims)?
        .map(|r| r.f32s(file.as_bytes()))
        .transpose()
}

pub(crate) fn f32s(file: &GgufFile, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
    tensor_ref(file, name, dims)?.f32s(file.as_bytes())
}

/// Refuses at load time a weight type the kernels cannot multiply.
fn check_kernel(ty: GgmlType, name: &str) -> Result<()> {
    if fennec_quant::dot::activation_type(ty).is_none() {
        return Err(Error::InvalidModel(format!(
            "tensor {name:?}: weights of type {ty} are not supported yet"
        )));
    }
    Ok(())
}

/// Like [`tensor_ref`], for a matrix the model multiplies by: its type must have a kernel.
pub(crate) fn matrix_ref(file: &GgufFile, name: &str, dims: &[usize]) -> Result<TensorRef> {
    let r = tensor_ref(file, name, dims)?;
    check_kernel(r.ty, name)?;
    Ok(r)
}

/// Like [`optional_ref`], for a matrix the model multiplies by.
pub(crate) fn optional_matrix_ref(
    file: &GgufFile,
    name: &str,
    dims: &[usize],
) -> Result<Option<TensorRef>> {
    let r = optional_ref(file, name, dims)?;
    if let Some(r) = &r {
        check_kernel(r.ty, name)?;
    }
    Ok(r)
}

/// The token embedding (`[n_embd, n_vocab]`) and the output head: `output.weight`, or the
/// embedding itself when the model ties them.
pub(crate) fn embedding_and_output(
    file: &GgufFile,
    n_embd: usize,
    n_vocab: usize,
) -> Result<(TensorRef, TensorRef)> {
    let dims = [n_embd, n_vocab];
    let token_embd = tensor_ref(file, TOKEN_EMBD, &dims)?;
    let output = match optional_matrix_ref(file, OUTPUT, &dims)? {
        Some(output) => output,
        None => matrix_ref(file, TOKEN_EMBD, &dims)?,
    };
    Ok((token_embd, output))
}

/// A 3-D tensor of `n_expert` matrices stacked along its outermost dimension (MoE experts):
/// expert `e` is the contiguous `rows × n_in` matrix at `e · expert_bytes`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExpertTensor {
    pub(crate) ty: GgmlType,
    pub(crate) n_in: usize,
    pub(crate) rows: usize,
    /// Byte offset of expert 0 in the file.
    pub(crate) start: usize,
    /// Bytes of one expert's matrix.
    pub(crate) expert_bytes: usize,
    /// Number of experts.
    n_expert: usize,
    /// How each expert's rows lie in its bytes: as in the file, or repacked at load (each
    /// expert on its own, as a matrix of `rows` rows).
    pub(crate) layout: WeightLayout,
}

impl ExpertTensor {
    /// Looks up the 3-D tensor `name` with dims `[n_in, rows, n_expert]`, naming the expert
    /// count in the error when only the expert dimension disagrees.
    pub(crate) fn find(
        file: &GgufFile,
        name: &str,
        n_in: usize,
        rows: usize,
        n_expert: usize,
    ) -> Result<Self> {
        let view = file
            .tensor(name)
            .ok_or_else(|| Error::InvalidModel(format!("tensor {name:?} is missing")))?;
        let dims = &view.info.dims;
        if dims.len() == 3 && dims[0] == n_in as u64 && dims[1] == rows as u64 {
            if dims[2] != n_expert as u64 {
                return Err(Error::InvalidModel(format!(
                    "tensor {name:?} holds {} experts but expert_count is {n_expert}",
                    dims[2]
                )));
            }
        } else {
            return Err(Error::InvalidModel(format!(
                "tensor {name:?} has dims {dims:?}, expected [{n_in}, {rows}, {n_expert}]"
            )));
        }
        let r = matrix_ref(file, name, &[n_in, rows, n_expert])?;
        Ok(Self {
            ty: r.ty,
            n_in,
            rows,
            start: r.start,
            expert_bytes: r.len / n_expert,
            n_expert,
            layout: WeightLayout::Rows,
        })
    }

    /// Byte range of expert `e` in the file.
    pub(crate) fn range(&self, e: usize) -> std::ops::Range<usize> {
        let start = self.start + e * self.expert_bytes;
        start..start + self.expert_bytes
    }

    /// Number of experts.
    pub(crate) fn n_expert(&self) -> usize {
        self.n_expert
    }

    /// Expert `e`'s matrix, borrowed from the mapping.
    pub(crate) fn weight<'a>(&self, file: &'a [u8], e: usize) -> Weight<'a> {
        Weight {
            ty: self.ty,
            n_in: self.n_in,
            n_out: self.rows,
            layout: self.layout,
            data: &file[self.range(e)],
        }
    }
}
