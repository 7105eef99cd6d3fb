//! Several weight rows times one or more quantized activation vectors, written into an
//! output laid out `[vector][row]`, so that threads can each take a range of rows.
//!
//! ```
//! use fennec_quant::matmul::{matmul, ActivationBatch, OutputTile};
//! use fennec_quant::{quantize_row, GgmlType};
//!
//! let (n_rows, n_cols, n_vecs) = (4, 64, 2);
//! let w_f32: Vec<f32> = (0..n_rows * n_cols).map(|i| (i % 7) as f32 - 3.0).collect();
//! let mut weights = vec![0u8; n_rows * 2 * 34];
//! quantize_row(GgmlType::Q8_0, &w_f32, &mut weights).unwrap();
//! let x: Vec<f32> = (0..n_vecs * n_cols).map(|i| (i % 5) as f32).collect();
//! let acts = ActivationBatch::quantize(GgmlType::Q8_0, n_cols, &x).unwrap();
//!
//! let mut out = vec![0.0f32; n_vecs * n_rows];
//! // Two "threads": rows 0..1 and 1..4.
//! let tiles = OutputTile::split(&mut out, n_rows, n_rows, n_vecs, &[1]).unwrap();
//! for mut tile in tiles {
//!     matmul(GgmlType::Q8_0, n_cols, &weights, &acts, &mut tile).unwrap();
//! }
//! ```

use std::ops::Range;

use crate::dot::{activation_type, kernel, kernel_multi, widen_scales, VecDotMultiFn};
use crate::formats::{quantize_activations, row_bytes};
use crate::{cpu, GgmlType, QuantError};

/// One or more activation rows, quantized to the activation type of a weight type.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationBatch {
    /// The activation type (`Q8_0`, `Q8_1`, `Q8_K`, `F16`, …).
    ty: GgmlType,
    /// Elements per row.
    n_cols: usize,
    /// Number of rows (vectors).
    n_vecs: usize,
    /// The rows' blocks, back to back.
    data: Vec<u8>,
}

impl ActivationBatch {
    /// Quantizes `x` (`n_vecs * n_cols` f32, row-major) into the activation type llama.cpp
    /// pairs with `weight_ty`.
    pub fn quantize(weight_ty: GgmlType, n_cols: usize, x: &[f32]) -> Result<Self, QuantError> {
        let mut batch = Self {
            ty: paired_activation(weight_ty)?,
            n_cols,
            n_vecs: 0,
            data: Vec::new(),
        };
        batch.requantize(x)?;
        Ok(batch)
    }

    /// Quantizes new rows of the same width into this batch, reusing its buffer.
    pub fn requantize(&mut self, x: &[f32]) -> Result<(), QuantError> {
        let n_vecs = vectors_in(x.len(), self.n_cols)?;
        let bytes = row_bytes(self.ty, self.n_cols)?;
        self.data.resize(n_vecs * bytes, 0);
        for (src, dst) in x
            .chunks_exact(self.n_cols.max(1))
            .zip(self.data.chunks_exact_mut(bytes.max(1)))
        {
            quantize_activations(self.ty, src, dst)?;
        }
        self.n_vecs = n_vecs;
        Ok(())
    }

    /// Wraps rows already quantized to `ty` (`n_cols` elements each, back to back).
    pub fn from_quantized(ty: GgmlType, n_cols: usize, data: Vec<u8>) -> Result<Self, QuantError> {
        let bytes = row_bytes(ty, n_cols)?;
        if bytes == 0 || !data.len().is_multiple_of(bytes) {
            return Err(QuantError::Shape(format!(
                "{} bytes is not a whole number of {ty} rows of {n_cols} elements",
                data.len()
            )));
        }
        Ok(Self {
            ty,
            n_cols,
            n_vecs: data.len() / bytes,
            data,
        })
    }

    /// The activation type of the rows.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Elements per row.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Number of rows (vectors).
    pub fn n_vecs(&self) -> usize {
        self.n_vecs
    }

    /// All rows' bytes, back to back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The bytes of row `v`.
    pub fn row(&self, v: usize) -> &[u8] {
        let bytes = self.data.len() / self.n_vecs.max(1);
        &self.data[v * bytes..(v + 1) * bytes]
    }
}

/// The activation type of `weight_ty`, or `Unsupported`.
fn paired_activation(weight_ty: GgmlType) -> Result<GgmlType, QuantError> {
    activation_type(weight_ty).ok_or(QuantError::Unsupported {
        ty: weight_ty,
        op: "matmul",
    })
}

/// How many rows of `n_cols` make `len` elements.
fn vectors_in(len: usize, n_cols: usize) -> Result<usize, QuantError> {
    if n_cols == 0 || !len.is_multiple_of(n_cols) {
        return Err(QuantError::Shape(format!(
            "{len} elements is not a whole number of rows of {n_cols}"
        )));
    }
    Ok(len / n_cols)
}

/// The part of a `[vector][row]` output that covers weight rows `rows`: one mutable slice
/// per vector. Tiles from [`OutputTile::split`] are disjoint, so each can go to a thread.
#[derive(Debug)]
pub struct OutputTile<'a> {
    /// The weight rows this tile covers.
    rows: Range<usize>,
    /// `per_vector[v][r - rows.start]` is the output for vector `v`, weight row `r`.
    per_vector: Vec<&'a mut [f32]>,
}

impl<'a> OutputTile<'a> {
    /// The whole output: `out[v * stride + r]` for `r < n_rows`, `v < n_vecs`.
    pub fn whole(
        out: &'a mut [f32],
        n_rows: usize,
        stride: usize,
        n_vecs: usize,
    ) -> Result<Self, QuantError> {
        let mut tiles = Self::split(out, n_rows, stride, n_vecs, &[])?;
        Ok(tiles.pop().expect("one tile"))
    }

    /// Splits the output `out[v * stride + r]` (`r < n_rows`, `v < n_vecs`) at the
    /// ascending row boundaries `cuts`, giving `cuts.len() + 1` disjoint tiles.
    pub fn split(
        out: &'a mut [f32],
        n_rows: usize,
        stride: usize,
        n_vecs: usize,
        cuts: &[usize],
    ) -> Result<Vec<Self>, QuantError> {
        if stride < n_rows {
            return Err(QuantError::Shape(format!(
                "stride {stride} < {n_rows} rows"
            )));
        }
        let needed = if n_vecs == 0 {
            0
        } else {
            (n_vecs - 1) * stride + n_rows
        };
        if out.len() < needed {
            return Err(QuantError::BufferSize {
                ty: GgmlType::F32,
                what: "output",
                got: out.len(),
                expected: needed,
                unit: "elements",
            });
        }
        let mut bounds = Vec::with_capacity(cuts.len() + 2);
        bounds.push(0);
        for &c in cuts {
            if c < *bounds.last().expect("non-empty") || c > n_rows {
                return Err(QuantError::Shape(format!(
                    "row cuts {cuts:?} are not ascending within 0..={n_rows}"
                )));
            }
            bounds.push(c);
        }
        bounds.push(n_rows);
        let mut tiles: Vec<Self> = bounds
            .windows(2)
            .map(|w| Self {
                rows: w[0]..w[1],
                per_vector: Vec::with_capacity(n_vecs),
            })
            .collect();
        let mut rest = &mut out[..needed];
        for _ in 0..n_vecs {
            let take = rest.len().min(stride);
            let (vector, tail) = rest.split_at_mut(take);
            rest = tail;
            let mut vector = &mut vector[..n_rows];
            for tile in tiles.iter_mut() {
                let (part, tail) = vector.split_at_mut(tile.rows.len());
                vector = tail;
                tile.per_vector.push(part);
            }
        }
        Ok(tiles)
    }

    /// The weight rows this tile covers.
    pub fn rows(&self) -> Range<usize> {
        self.rows.clone()
    }

    /// Number of vectors.
    pub fn n_vecs(&self) -> usize {
        self.per_vector.len()
    }

    /// The outputs of vector `v` for this tile's rows.
    pub fn vector(&self, v: usize) -> &[f32] {
        self.per_vector[v]
    }
}

/// Computes `out[v][r] = dot(weight row r, activation row v)` for every row `r` of `tile`
/// and every vector of `acts`. `weights` holds whole rows of `n_cols` elements of `ty`,
/// starting at row 0 (at least `tile.rows().end` rows); the kernel is chosen once per call.
pub fn matmul(
    ty: GgmlType,
    n_cols: usize,
    weights: &[u8],
    acts: &ActivationBatch,
    tile: &mut OutputTile<'_>,
) -> Result<(), QuantError> {
    let a_ty = paired_activation(ty)?;
    let dot = kernel(cpu::level(), ty).ok_or(QuantError::Unsupported { ty, op: "matmul" })?;
    if acts.ty != a_ty || acts.n_cols != n_cols {
        return Err(QuantError::Shape(format!(
            "activations are {} x {} {}, weights need {a_ty} rows of {n_cols}",
            acts.n_vecs, acts.n_cols, acts.ty
        )));
    }
    if acts.n_vecs != tile.n_vecs() {
        return Err(QuantError::Shape(format!(
            "{} activation vectors but the output tile has {}",
            acts.n_vecs,
            tile.n_vecs()
        )));
    }
    let w_row = row_bytes(ty, n_cols)?;
    let rows = tile.rows();
    let needed = rows.end * w_row;
    if weights.len() < needed || (w_row > 0 && !weights.len().is_multiple_of(w_row)) {
        return Err(QuantError::BufferSize {
            ty,
            what: "weights",
            got: weights.len(),
            expected: needed,
            unit: "bytes",
        });
    }
    let a_row = row_bytes(a_ty, n_cols)?;
    let act_rows: Vec<&[u8]> = (0..acts.n_vecs)
        .map(|v| &acts.data[v * a_row..(v + 1) * a_row])
        .collect();
    // Vectors go in groups of eight, then one of four, through the multi-vector kernels,
    // which unpack each weight block once per group; the rest one by one. The multi-vector
    // results equal `dot`'s bit for bit, so the grouping never changes the output.
    let level = cpu::level();
    let (multi8, multi4) = (kernel_multi::<8>(level, ty), kernel_multi::<4>(level, ty));
    let n_vecs = act_rows.len();
    let by8 = if multi8.is_some() { n_vecs / 8 * 8 } else { 0 };
    let by4 = if multi4.is_some() {
        by8 + (n_vecs - by8) / 4 * 4
    } else {
        by8
    };
    // The grouped vectors' block scales, widened to f32 once for all rows.
    let scales: Vec<Vec<f32>> = act_rows[..by4]
        .iter()
        .map(|a| {
            let mut s = Vec::new();
            widen_scales(a_ty, n_cols, a, &mut s);
            s
        })
        .collect();
    let outs = &mut tile.per_vector;
    let row_at = |i: usize| {
        let r = rows.start + i;
        &weights[r * w_row..(r + 1) * w_row]
    };
    // Cache blocking: a block of weight rows meets a block of vectors at a time, so each
    // weight row is reused from L1 across the vectors and each vector from L2 across the
    // rows, instead of streaming every vector once per weight row.
    let n_rows = rows.len();
    for row_block in (0..n_rows).step_by(ROW_BLOCK) {
        let block = row_block..(row_block + ROW_BLOCK).min(n_rows);
        if let Some(dot8) = multi8 {
            for v0 in (0..by8).step_by(VEC_BLOCK) {
                let vs = v0..(v0 + VEC_BLOCK).min(by8);
                for i in block.clone() {
                    grouped(
                        dot8,
                        n_cols,
                        row_at(i),
                        i,
                        &mut outs[vs.clone()],
                        &act_rows[vs.clone()],
                        &scales[vs.clone()],
                    );
                }
            }
        }
        if let Some(dot4) = multi4 {
            let vs = by8..by4;
            for i in block.clone() {
                grouped(
                    dot4,
                    n_cols,
                    row_at(i),
                    i,
                    &mut outs[vs.clone()],
                    &act_rows[vs.clone()],
                    &scales[vs.clone()],
                );
            }
        }
        for v0 in (by4..n_vecs).step_by(VEC_BLOCK) {
            let vs = v0..(v0 + VEC_BLOCK).min(n_vecs);
            for i in block.clone() {
                let w = row_at(i);
                for (out, a) in outs[vs.clone()].iter_mut().zip(&act_rows[vs.clone()]) {
                    out[i] = dot(n_cols, w, a);
                }
            }
        }
    }
    Ok(())
}

/// Weight rows per cache block of [`matmul`].
const ROW_BLOCK: usize = 16;
/// Activation vectors per cache block of [`matmul`] (a multiple of 8).
const VEC_BLOCK: usize = 16;

/// Output `i` of each vector in `outs` (a whole number of groups of `N`): weight row `w`
/// times the activation rows `acts` (widened scales `scales`), `N` at a time.
fn grouped<const N: usize>(
    dot: VecDotMultiFn<N>,
    n_cols: usize,
    w: &[u8],
    i: usize,
    outs: &mut [&mut [f32]],
    acts: &[&[u8]],
    scales: &[Vec<f32>],
) {
    for ((outs, a), s) in outs
        .chunks_exact_mut(N)
        .zip(acts.chunks_exact(N))
        .zip(scales.chunks_exact(N))
    {
        let res = dot(
            n_cols,
            w,
            std::array::from_fn(|k| a[k]),
            std::array::from_fn(|k| s[k].as_slice()),
        );
        for (out, x) in outs.iter_mut().zip(res) {
            out[i] = x;
        }
    }
}
