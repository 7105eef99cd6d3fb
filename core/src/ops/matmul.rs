//! Quantized weight matrices times activation rows, split across threads by output row.

use std::sync::Mutex;

use std::cell::RefCell;

use fennec_quant::matmul::{
    matmul as tile_matmul, repacked_row, ActivationBatch, OutputTiles, WeightLayout,
};
use fennec_quant::{dequantize_row, GgmlType};

use super::ThreadPool;
use crate::error::Result;

/// A 2-D weight matrix borrowed from the model file: `n_out` rows of `n_in` elements.
#[derive(Clone, Copy, Debug)]
pub struct Weight<'a> {
    /// Element type.
    pub ty: GgmlType,
    /// Elements per row (the input width).
    pub n_in: usize,
    /// Rows (the output width).
    pub n_out: usize,
    /// How the rows lie in `data`.
    pub layout: WeightLayout,
    /// The rows' bytes.
    pub data: &'a [u8],
}

thread_local! {
    /// One row put back into row layout by [`Weight::row_to_f32`], kept per thread.
    static ROW: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Weight<'_> {
    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.data.len() / self.n_out.max(1)
    }

    /// Dequantizes row `r` into `out` (embedding lookup).
    pub fn row_to_f32(&self, r: usize, out: &mut [f32]) -> Result<()> {
        let bytes = self.row_bytes();
        match self.layout {
            WeightLayout::Rows => {
                dequantize_row(self.ty, &self.data[r * bytes..(r + 1) * bytes], out)?;
            }
            WeightLayout::Panels => ROW.with_borrow_mut(|row| {
                row.resize(bytes, 0);
                repacked_row(self.ty, self.n_in, self.data, r, row)?;
                dequantize_row(self.ty, row, out)
            })?,
        }
        Ok(())
    }
}

/// Rows below which quantizing activations on several threads costs more than it saves.
const MIN_ROWS_PER_TASK: usize = 4;

/// Reusable quantized copies of activation rows: what [`Activations`] fills, kept by the
/// caller so that a repeated forward pass of the same shape allocates nothing.
#[derive(Debug, Default)]
pub struct ActivationScratch {
    /// One batch per activation type met since the last [`Activations::new`]; the first
    /// `live` hold the current rows, the rest are buffers waiting to be reused.
    batches: Vec<ActivationBatch>,
    live: usize,
}

/// Activation rows quantized once for every weight type they meet (Q, K and V share one),
/// into buffers borrowed from an [`ActivationScratch`].
pub struct Activations<'a> {
    x: &'a [f32],
    n_in: usize,
    scratch: &'a mut ActivationScratch,
}

impl<'a> Activations<'a> {
    /// Wraps `x` (rows of `n_in` f32), quantizing into `scratch`'s buffers, which forget
    /// whatever rows they held.
    pub fn new(x: &'a [f32], n_in: usize, scratch: &'a mut ActivationScratch) -> Self {
        scratch.live = 0;
        Self { x, n_in, scratch }
    }

    /// The f32 rows (`n_in` each) and `n_in`.
    pub fn rows(&self) -> (&'a [f32], usize) {
        (self.x, self.n_in)
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.x.len() / self.n_in
    }

    /// The rows quantized to `ty`'s activation type, quantizing them on first use.
    fn for_weight(&mut self, ty: GgmlType, pool: &ThreadPool) -> Result<&ActivationBatch> {
        let a_ty = fennec_quant::dot::activation_type(ty);
        let s = &mut *self.scratch;
        let live = &s.batches[..s.live];
        if let Some(i) = live.iter().position(|b| Some(b.ty()) == a_ty) {
            return Ok(&s.batches[i]);
        }
        if s.live == s.batches.len() {
            s.batches.push(ActivationBatch::default());
        }
        let batch = &mut s.batches[s.live];
        let n_rows = self.x.len() / self.n_in;
        match a_ty {
            Some(a_ty) if n_rows >= 2 * MIN_ROWS_PER_TASK => {
                quantize_parallel(batch, ty, a_ty, self.x, self.n_in, pool)?
            }
            _ => batch.quantize_into(ty, self.n_in, self.x)?,
        }
        s.live += 1;
        Ok(&s.batches[s.live - 1])
    }

    /// `out[t][r] = w.row(r) · x[t]` for every row `t` of `x`, on all of `pool`'s threads.
    pub fn matmul(&mut self, w: &Weight<'_>, out: &mut [f32], pool: &ThreadPool) -> Result<()> {
        let n_vecs = self.n_rows();
        let acts = self.for_weight(w.ty, pool)?;
        // A few tiles per thread, so a thread slowed by the OS does not hold up the rest;
        // cut at multiples of 16 rows, never below 64 rows per tile.
        let n_tiles = (pool.n_threads() * 4).min(w.n_out / 64).max(1);
        let tiles = OutputTiles::new(out, w.n_out, w.n_out, n_vecs, n_tiles, 16)?;
        let errors = Mutex::new(None);
        pool.for_each(tiles.n_tiles(), |_| {
            let Some(mut tile) = tiles.claim() else {
                return;
            };
            if let Err(e) = tile_matmul(w.ty, w.layout, w.n_in, w.data, acts, &mut tile) {
                *errors.lock().expect("error slot") = Some(e);
            }
        });
        match errors.into_inner().expect("error slot") {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// Quantizes the rows of `x` (`n_in` each) for weight type `ty` (activation type `a_ty`)
/// into `batch` with runs of rows on each thread (same bytes as
/// [`ActivationBatch::quantize`], which goes row by row on one).
fn quantize_parallel(
    batch: &mut ActivationBatch,
    ty: GgmlType,
    a_ty: GgmlType,
    x: &[f32],
    n_in: usize,
    pool: &ThreadPool,
) -> Result<()> {
    let row_bytes = fennec_quant::row_bytes(a_ty, n_in)?;
    let n_rows = x.len() / n_in;
    let per_task = n_rows.div_ceil(pool.n_threads() * 2).max(MIN_ROWS_PER_TASK);
    batch.quantize_with(ty, n_in, n_rows, |data| {
        let errors = Mutex::new(None);
        pool.for_chunks_mut(data, per_task * row_bytes, |dst, i| {
            let src = &x[i * per_task * n_in..][..dst.len() / row_bytes * n_in];
            if let Err(e) = fennec_quant::quantize_activations(a_ty, src, dst) {
                *errors.lock().expect("error slot") = Some(e);
            }
        });
        errors.into_inner().expect("error slot").map_or(Ok(()), Err)
    })?;
    Ok(())
}
