//! Several weight rows times one or more quantized activation vectors, written into an
//! output laid out `[vector][row]`, so that threads can each take a range of rows. Weights
//! are rows as a GGUF file stores them, or, for Q4_0/Q4_1/Q8_0/Q4_K, panels rewritten once by
//! [`repack`] for the row-lane kernels ([`WeightLayout`]).
//!
//! ```
//! use fennec_quant::matmul::{matmul, ActivationBatch, OutputTile, WeightLayout};
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
//!     matmul(GgmlType::Q8_0, WeightLayout::Rows, n_cols, &weights, &acts, &mut tile).unwrap();
//! }
//! ```

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::dot::{
    activation_type, kernel, kernel_multi4, kernel_multi8, widen_scales, VecDotMultiFn,
};
use crate::formats::{quantize_activations, row_bytes};
use crate::{cpu, lanes, CpuLevel, GgmlType, QuantError};

/// One or more activation rows, quantized to the activation type of a weight type.
/// Its buffers are kept when it is refilled, so a batch reused for rows of the same shape
/// allocates nothing.
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
    /// Each row's block scales widened to f32 (see [`widen_scales`]), for the multi-vector
    /// kernels; only kept for batches of at least [`MIN_GROUP`] rows.
    scales: Vec<Vec<f32>>,
    /// Each row's `(d, s)` per block for the row-lane kernels (Q8_0 and Q8_1 batches),
    /// `2 × blocks` per row, rows back to back.
    lane_scales: Vec<f32>,
}

/// The smallest group of vectors the multi-vector kernels take.
const MIN_GROUP: usize = 4;

impl Default for ActivationBatch {
    /// An empty batch (no rows) to be filled later.
    fn default() -> Self {
        Self {
            ty: GgmlType::F32,
            n_cols: 0,
            n_vecs: 0,
            data: Vec::new(),
            scales: Vec::new(),
            lane_scales: Vec::new(),
        }
    }
}

impl ActivationBatch {
    /// Quantizes `x` (`n_vecs * n_cols` f32, row-major) into the activation type llama.cpp
    /// pairs with `weight_ty`.
    pub fn quantize(weight_ty: GgmlType, n_cols: usize, x: &[f32]) -> Result<Self, QuantError> {
        let mut batch = Self::default();
        batch.quantize_into(weight_ty, n_cols, x)?;
        Ok(batch)
    }

    /// Quantizes new rows of the same width into this batch, reusing its buffer.
    pub fn requantize(&mut self, x: &[f32]) -> Result<(), QuantError> {
        let n_vecs = vectors_in(x.len(), self.n_cols)?;
        let (ty, n_cols) = (self.ty, self.n_cols);
        self.fill(ty, n_cols, n_vecs, |data| {
            quantize_rows(ty, n_cols, x, data)
        })
    }

    /// Quantizes `x` (rows of `n_cols`) into this batch as [`quantize`](Self::quantize)
    /// would, reusing the batch's buffers whatever it held before.
    pub fn quantize_into(
        &mut self,
        weight_ty: GgmlType,
        n_cols: usize,
        x: &[f32],
    ) -> Result<(), QuantError> {
        let ty = paired_activation(weight_ty)?;
        let n_vecs = vectors_in(x.len(), n_cols)?;
        self.fill(ty, n_cols, n_vecs, |data| {
            quantize_rows(ty, n_cols, x, data)
        })
    }

    /// Makes this batch `n_vecs` rows of `n_cols` elements of the activation type paired
    /// with `weight_ty`, whose bytes `quantize` writes (given the whole buffer, rows back to
    /// back), reusing the batch's buffers: for callers that quantize on several threads.
    pub fn quantize_with(
        &mut self,
        weight_ty: GgmlType,
        n_cols: usize,
        n_vecs: usize,
        quantize: impl FnOnce(&mut [u8]) -> Result<(), QuantError>,
    ) -> Result<(), QuantError> {
        let ty = paired_activation(weight_ty)?;
        self.fill(ty, n_cols, n_vecs, quantize)
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
        let mut batch = Self {
            ty,
            n_cols,
            n_vecs: data.len() / bytes,
            data,
            scales: Vec::new(),
            lane_scales: Vec::new(),
        };
        batch.widen();
        Ok(batch)
    }

    /// Sizes the buffer for `n_vecs` rows of `n_cols` `ty`, lets `write` fill it, and
    /// widens the scales.
    fn fill(
        &mut self,
        ty: GgmlType,
        n_cols: usize,
        n_vecs: usize,
        write: impl FnOnce(&mut [u8]) -> Result<(), QuantError>,
    ) -> Result<(), QuantError> {
        let bytes = row_bytes(ty, n_cols)?;
        self.data.resize(n_vecs * bytes, 0);
        // A failed fill leaves an empty batch rather than a half-written one.
        self.n_vecs = 0;
        (self.ty, self.n_cols) = (ty, n_cols);
        write(&mut self.data)?;
        self.n_vecs = n_vecs;
        self.widen();
        Ok(())
    }

    /// Recomputes the widened scales of every row, when there are enough rows to group.
    fn widen(&mut self) {
        let n = if self.n_vecs >= MIN_GROUP {
            self.n_vecs
        } else {
            0
        };
        self.scales.resize_with(n, Vec::new);
        let bytes = self.data.len() / self.n_vecs.max(1);
        for (s, row) in self
            .scales
            .iter_mut()
            .zip(self.data.chunks_exact(bytes.max(1)))
        {
            widen_scales(self.ty, self.n_cols, row, s);
        }
        self.lane_scales.clear();
        for v in 0..self.n_vecs {
            lanes::activation_scales(
                self.ty,
                &self.data[v * bytes..(v + 1) * bytes],
                &mut self.lane_scales,
            );
        }
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

/// Quantizes the rows of `x` (`n_cols` each) to `ty`, one after another, into `data`.
fn quantize_rows(
    ty: GgmlType,
    n_cols: usize,
    x: &[f32],
    data: &mut [u8],
) -> Result<(), QuantError> {
    let bytes = row_bytes(ty, n_cols)?;
    for (src, dst) in x
        .chunks_exact(n_cols.max(1))
        .zip(data.chunks_exact_mut(bytes.max(1)))
    {
        quantize_activations(ty, src, dst)?;
    }
    Ok(())
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

/// The part of a `[vector][row]` output that covers weight rows `rows`: for each vector,
/// a run of `rows.len()` elements. Tiles from [`OutputTile::split`] or [`OutputTiles`]
/// are disjoint, so each can go to a thread.
#[derive(Debug)]
pub struct OutputTile<'a> {
    /// The weight rows this tile covers.
    rows: Range<usize>,
    /// Number of vectors.
    n_vecs: usize,
    /// Elements from one vector's output to the next.
    stride: usize,
    /// Vector 0, row `rows.start` of the output.
    base: *mut f32,
    _out: PhantomData<&'a mut [f32]>,
}

// SAFETY: a tile is the only way to reach its elements (tiles never overlap, and the
// output they came from stays mutably borrowed while they live), like a set of `&mut [f32]`.
unsafe impl Send for OutputTile<'_> {}
// SAFETY: through `&OutputTile` its elements can only be read.
unsafe impl Sync for OutputTile<'_> {}

/// Checks that `out` holds `n_vecs` vectors of `n_rows` at `stride`; returns the elements
/// that spans.
fn output_span(
    out: &[f32],
    n_rows: usize,
    stride: usize,
    n_vecs: usize,
) -> Result<usize, QuantError> {
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
    Ok(needed)
}

impl<'a> OutputTile<'a> {
    /// The whole output: `out[v * stride + r]` for `r < n_rows`, `v < n_vecs`.
    pub fn whole(
        out: &'a mut [f32],
        n_rows: usize,
        stride: usize,
        n_vecs: usize,
    ) -> Result<Self, QuantError> {
        output_span(out, n_rows, stride, n_vecs)?;
        Ok(Self::at(out.as_mut_ptr(), 0..n_rows, stride, n_vecs))
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
        output_span(out, n_rows, stride, n_vecs)?;
        let mut start = 0;
        for &c in cuts {
            if c < start || c > n_rows {
                return Err(QuantError::Shape(format!(
                    "row cuts {cuts:?} are not ascending within 0..={n_rows}"
                )));
            }
            start = c;
        }
        let base = out.as_mut_ptr();
        let ends = cuts.iter().copied().chain([n_rows]);
        let starts = [0].into_iter().chain(cuts.iter().copied());
        Ok(starts
            .zip(ends)
            .map(|(a, b)| Self::at(base, a..b, stride, n_vecs))
            .collect())
    }

    /// The tile of rows `rows` of the output that starts at `out`. The caller has checked
    /// the output's span and hands each row out once.
    fn at(out: *mut f32, rows: Range<usize>, stride: usize, n_vecs: usize) -> Self {
        Self {
            // `wrapping_add`: for an empty tile at the end this may point one past it.
            base: out.wrapping_add(rows.start),
            rows,
            n_vecs,
            stride,
            _out: PhantomData,
        }
    }

    /// The weight rows this tile covers.
    pub fn rows(&self) -> Range<usize> {
        self.rows.clone()
    }

    /// Number of vectors.
    pub fn n_vecs(&self) -> usize {
        self.n_vecs
    }

    /// The outputs of vector `v` for this tile's rows.
    pub fn vector(&self, v: usize) -> &[f32] {
        assert!(v < self.n_vecs, "vector {v} of {}", self.n_vecs);
        // SAFETY: vector `v`'s run lies inside the output (checked by `output_span`) and
        // belongs to this tile alone.
        unsafe { std::slice::from_raw_parts(self.base.add(v * self.stride), self.rows.len()) }
    }

    /// The outputs of vector `v` for this tile's rows, to write.
    pub(crate) fn vector_mut(&mut self, v: usize) -> &mut [f32] {
        assert!(v < self.n_vecs, "vector {v} of {}", self.n_vecs);
        // SAFETY: as in `vector`; `&mut self` makes this the only borrow of the tile.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(v * self.stride), self.rows.len()) }
    }
}

/// An output `[vector][row]` cut into `n_tiles` tiles of rows that threads claim one at a
/// time, without a list of tiles: tile `i` starts at row `⌊n_rows·i/n_tiles⌋` rounded down
/// to a multiple of `align`.
#[derive(Debug)]
pub struct OutputTiles<'a> {
    base: *mut f32,
    n_rows: usize,
    stride: usize,
    n_vecs: usize,
    n_tiles: usize,
    align: usize,
    /// The next tile to hand out.
    next: AtomicUsize,
    _out: PhantomData<&'a mut [f32]>,
}

// SAFETY: tiles are handed out at most once each (an atomic counter), they never overlap,
// and the output stays mutably borrowed while this or any tile lives.
unsafe impl Sync for OutputTiles<'_> {}
// SAFETY: as above; the output is borrowed mutably, so moving the handle moves that borrow.
unsafe impl Send for OutputTiles<'_> {}

impl<'a> OutputTiles<'a> {
    /// Cuts `out[v * stride + r]` (`r < n_rows`, `v < n_vecs`) into `n_tiles` (at least
    /// one) tiles whose boundaries are multiples of `align` (at least one).
    pub fn new(
        out: &'a mut [f32],
        n_rows: usize,
        stride: usize,
        n_vecs: usize,
        n_tiles: usize,
        align: usize,
    ) -> Result<Self, QuantError> {
        output_span(out, n_rows, stride, n_vecs)?;
        Ok(Self {
            base: out.as_mut_ptr(),
            n_rows,
            stride,
            n_vecs,
            n_tiles: n_tiles.max(1),
            align: align.max(1),
            next: AtomicUsize::new(0),
            _out: PhantomData,
        })
    }

    /// Number of tiles (at least one, perhaps of no rows).
    pub fn n_tiles(&self) -> usize {
        self.n_tiles
    }

    /// The first row of tile `i` (`n_rows` for `i == n_tiles`).
    fn boundary(&self, i: usize) -> usize {
        if i >= self.n_tiles {
            self.n_rows
        } else {
            (self.n_rows * i / self.n_tiles) / self.align * self.align
        }
    }

    /// The next tile nobody has claimed yet, or `None` once all are out.
    pub fn claim(&self) -> Option<OutputTile<'_>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.n_tiles {
            return None;
        }
        let rows = self.boundary(i)..self.boundary(i + 1);
        Some(OutputTile::at(self.base, rows, self.stride, self.n_vecs))
    }
}

/// How a weight matrix's rows lie in its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightLayout {
    /// Row after row, as a GGUF file stores them.
    #[default]
    Rows,
    /// Rewritten by [`repack`]: each whole group of eight rows interleaved block by block
    /// for the row-lane kernels, in the same bytes (a last group of fewer rows stays rows).
    Panels,
}

/// Whether weights of type `ty` can be rewritten into [`WeightLayout::Panels`] (Q4_0,
/// Q4_1, Q8_0 and Q4_K).
pub fn can_repack(ty: GgmlType) -> bool {
    lanes::supports(ty)
}

/// Whether repacking `ty` speeds up this CPU's [`matmul`]: panels feed its SIMD row-lane
/// kernels directly (x86 AVX2 and AVX-512); elsewhere they would only be read by the
/// scalar twin.
pub fn repack_pays_off(ty: GgmlType) -> bool {
    lanes::supports(ty) && lanes::has_simd(cpu::level())
}

/// The row-lane format of `ty` and the blocks per row of `n_cols`, or why there is none.
fn panel_format(ty: GgmlType, n_cols: usize) -> Result<(lanes::Format, usize), QuantError> {
    let f = lanes::Format::of(ty).ok_or(QuantError::Unsupported { ty, op: "repack" })?;
    row_bytes(ty, n_cols)?;
    Ok((f, n_cols / ty.block_len()))
}

/// Rewrites `weights` (whole rows of `n_cols` elements of `ty`) from
/// [`WeightLayout::Rows`] into [`WeightLayout::Panels`], in place.
pub fn repack(ty: GgmlType, n_cols: usize, weights: &mut [u8]) -> Result<(), QuantError> {
    let (f, nb) = panel_format(ty, n_cols)?;
    whole_rows(ty, n_cols, weights.len())?;
    lanes::repack(&f, nb, weights);
    Ok(())
}

/// Row `r` of a matrix in [`WeightLayout::Panels`] (whole rows of `n_cols` elements of
/// `ty`), as the row's bytes in [`WeightLayout::Rows`], written to `out`.
pub fn repacked_row(
    ty: GgmlType,
    n_cols: usize,
    weights: &[u8],
    r: usize,
    out: &mut [u8],
) -> Result<(), QuantError> {
    let (f, nb) = panel_format(ty, n_cols)?;
    let n_rows = whole_rows(ty, n_cols, weights.len())?;
    let w_row = row_bytes(ty, n_cols)?;
    if r >= n_rows || out.len() != w_row {
        return Err(QuantError::Shape(format!(
            "row {r} into {} bytes, of a matrix of {n_rows} rows of {w_row} bytes",
            out.len()
        )));
    }
    lanes::repacked_row(&f, nb, weights, n_rows, r, out);
    Ok(())
}

/// The number of rows of `n_cols` elements of `ty` in `len` bytes, which must be whole.
fn whole_rows(ty: GgmlType, n_cols: usize, len: usize) -> Result<usize, QuantError> {
    let w_row = row_bytes(ty, n_cols)?;
    if w_row == 0 || !len.is_multiple_of(w_row) {
        return Err(QuantError::BufferSize {
            ty,
            what: "weights",
            got: len,
            expected: len.next_multiple_of(w_row.max(1)),
            unit: "bytes",
        });
    }
    Ok(len / w_row)
}

/// Computes `out[v][r] = dot(weight row r, activation row v)` for every row `r` of `tile`
/// and every vector of `acts`. `weights` holds whole rows of `n_cols` elements of `ty`,
/// starting at row 0 (at least `tile.rows().end` rows), laid out as `layout` says; the
/// kernel is chosen once per call.
pub fn matmul(
    ty: GgmlType,
    layout: WeightLayout,
    n_cols: usize,
    weights: &[u8],
    acts: &ActivationBatch,
    tile: &mut OutputTile<'_>,
) -> Result<(), QuantError> {
    matmul_at(cpu::level(), ty, layout, n_cols, weights, acts, tile)
}

/// Which arithmetic [`matmul`] uses for weight type `ty` in [`WeightLayout::Rows`] at
/// `level`: `"row-lane"` (Q4_0, Q4_1, Q8_0 and Q4_K at the scalar and x86 levels, and always for
/// panels: eight rows per vector, a panel GEMM; see the `lanes` module) or `"dot"` (the [`crate::dot`] kernels, bit for bit
/// [`crate::vec_dot`]).
pub fn arithmetic(level: CpuLevel, ty: GgmlType) -> &'static str {
    if uses_lanes(level, ty) {
        "row-lane"
    } else {
        "dot"
    }
}

/// Whether [`matmul_at`] takes the row-lane path.
fn uses_lanes(level: CpuLevel, ty: GgmlType) -> bool {
    lanes::supports(ty) && (level == CpuLevel::Scalar || lanes::has_simd(level))
}

/// [`matmul`] with the kernels of `level` rather than this CPU's (a level the CPU cannot
/// run falls back to the scalar kernels): for tests that compare levels.
pub fn matmul_at(
    level: CpuLevel,
    ty: GgmlType,
    layout: WeightLayout,
    n_cols: usize,
    weights: &[u8],
    acts: &ActivationBatch,
    tile: &mut OutputTile<'_>,
) -> Result<(), QuantError> {
    let level = if level.is_supported() {
        level
    } else {
        CpuLevel::Scalar
    };
    let a_ty = paired_activation(ty)?;
    let dot = kernel(level, ty).ok_or(QuantError::Unsupported { ty, op: "matmul" })?;
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
    let panels = layout == WeightLayout::Panels;
    if panels {
        check_panel_rows(ty, &rows, weights.len() / w_row.max(1))?;
    }
    if let Some(f) = lanes::Format::of(ty).filter(|_| panels || uses_lanes(level, ty)) {
        let n_rows = rows.len();
        let problem = lanes::Problem {
            f,
            nb: n_cols / ty.block_len(),
            panels,
            w: &weights[rows.start * w_row..rows.end * w_row],
            w_row,
            n_rows,
            a: &acts.data,
            a_row: acts.data.len() / acts.n_vecs.max(1),
            ds: &acts.lane_scales,
            n_vecs: acts.n_vecs,
        };
        lanes::run(level, &problem, tile);
        return Ok(());
    }
    // Vectors go in groups of eight, then one of four, through the multi-vector kernels,
    // which unpack each weight block once per group; the rest one by one. The multi-vector
    // results equal `dot`'s bit for bit, so the grouping never changes the output.
    let (multi8, multi4) = (kernel_multi8(level, ty), kernel_multi4(level, ty));
    let n_vecs = acts.n_vecs;
    let by8 = if multi8.is_some() { n_vecs / 8 * 8 } else { 0 };
    let by4 = if multi4.is_some() {
        by8 + (n_vecs - by8) / 4 * 4
    } else {
        by8
    };
    // The grouped vectors' block scales were widened to f32 when the batch was quantized.
    debug_assert!(by4 == 0 || acts.scales.len() == n_vecs);
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
                    grouped(dot8, n_cols, row_at(i), i, tile, vs.clone(), acts);
                }
            }
        }
        if let Some(dot4) = multi4 {
            for i in block.clone() {
                grouped(dot4, n_cols, row_at(i), i, tile, by8..by4, acts);
            }
        }
        for v0 in (by4..n_vecs).step_by(VEC_BLOCK) {
            let vs = v0..(v0 + VEC_BLOCK).min(n_vecs);
            for i in block.clone() {
                let w = row_at(i);
                for v in vs.clone() {
                    tile.vector_mut(v)[i] = dot(n_cols, w, acts.row(v));
                }
            }
        }
    }
    Ok(())
}

/// Checks that weights of `ty` can be in panels and that the tile's `rows` of a matrix of
/// `n_rows` start at a panel and end at one or at the matrix's end.
fn check_panel_rows(ty: GgmlType, rows: &Range<usize>, n_rows: usize) -> Result<(), QuantError> {
    if !can_repack(ty) {
        return Err(QuantError::Unsupported {
            ty,
            op: "panel matmul",
        });
    }
    let at_panel = |r: usize| r.is_multiple_of(lanes::PANEL_ROWS);
    if !at_panel(rows.start) || !(at_panel(rows.end) || rows.end == n_rows) {
        return Err(QuantError::Shape(format!(
            "rows {rows:?} of a {n_rows}-row panel matrix do not start and end at panels of {}",
            lanes::PANEL_ROWS
        )));
    }
    Ok(())
}

/// Weight rows per cache block of [`matmul`].
const ROW_BLOCK: usize = 16;
/// Activation vectors per cache block of [`matmul`] (a multiple of 8).
const VEC_BLOCK: usize = 16;

/// Output `i` of the vectors `vs` of `tile` (a whole number of groups of `N`): weight row
/// `w` times those rows of `acts`, `N` at a time.
fn grouped<const N: usize>(
    dot: VecDotMultiFn<N>,
    n_cols: usize,
    w: &[u8],
    i: usize,
    tile: &mut OutputTile<'_>,
    vs: Range<usize>,
    acts: &ActivationBatch,
) {
    for v0 in vs.step_by(N) {
        let res = dot(
            n_cols,
            w,
            std::array::from_fn(|k| acts.row(v0 + k)),
            std::array::from_fn(|k| acts.scales[v0 + k].as_slice()),
        );
        for (k, x) in res.into_iter().enumerate() {
            tile.vector_mut(v0 + k)[i] = x;
        }
    }
}
