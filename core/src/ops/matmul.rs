//! Quantized weight matrices times activation rows, split across threads by output row.

use fennec_quant::matmul::{matmul as tile_matmul, ActivationBatch, OutputTile};
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
    /// The rows' bytes.
    pub data: &'a [u8],
}

impl Weight<'_> {
    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.data.len() / self.n_out.max(1)
    }

    /// Dequantizes row `r` into `out` (embedding lookup).
    pub fn row_to_f32(&self, r: usize, out: &mut [f32]) -> Result<()> {
        let bytes = self.row_bytes();
        dequantize_row(self.ty, &self.data[r * bytes..(r + 1) * bytes], out)?;
        Ok(())
    }
}

/// Rows below which quantizing activations on several threads costs more than it saves.
const MIN_ROWS_PER_TASK: usize = 4;

/// Activation rows quantized once for every weight type they meet (Q, K and V share one).
pub struct Activations<'x> {
    x: &'x [f32],
    n_in: usize,
    quantized: Vec<ActivationBatch>,
}

impl<'x> Activations<'x> {
    /// Wraps `x`: rows of `n_in` f32.
    pub fn new(x: &'x [f32], n_in: usize) -> Self {
        Self {
            x,
            n_in,
            quantized: Vec::new(),
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.x.len() / self.n_in
    }

    fn for_weight(&mut self, ty: GgmlType, pool: &ThreadPool) -> Result<&ActivationBatch> {
        let a_ty = fennec_quant::dot::activation_type(ty);
        let pos = self.quantized.iter().position(|b| Some(b.ty()) == a_ty);
        let i = match pos {
            Some(i) => i,
            None => {
                let batch = match a_ty {
                    Some(a_ty) if self.n_rows() >= 2 * MIN_ROWS_PER_TASK => {
                        self.quantize_parallel(a_ty, pool)?
                    }
                    _ => ActivationBatch::quantize(ty, self.n_in, self.x)?,
                };
                self.quantized.push(batch);
                self.quantized.len() - 1
            }
        };
        Ok(&self.quantized[i])
    }

    /// Quantizes the rows to `a_ty` with runs of rows on each thread (same bytes as
    /// [`ActivationBatch::quantize`], which goes row by row on one).
    fn quantize_parallel(&self, a_ty: GgmlType, pool: &ThreadPool) -> Result<ActivationBatch> {
        let row_bytes = fennec_quant::row_bytes(a_ty, self.n_in)?;
        let n_rows = self.n_rows();
        let mut data = vec![0u8; n_rows * row_bytes];
        let per_task = n_rows.div_ceil(pool.n_threads() * 2).max(MIN_ROWS_PER_TASK);
        let tasks: Vec<(&[f32], &mut [u8])> = self
            .x
            .chunks(per_task * self.n_in)
            .zip(data.chunks_mut(per_task * row_bytes))
            .collect();
        let errors = std::sync::Mutex::new(None);
        pool.each_mut(tasks, |(src, dst)| {
            if let Err(e) = fennec_quant::quantize_activations(a_ty, src, dst) {
                *errors.lock().expect("error slot") = Some(e);
            }
        });
        if let Some(e) = errors.into_inner().expect("error slot") {
            return Err(e.into());
        }
        Ok(ActivationBatch::from_quantized(a_ty, self.n_in, data)?)
    }

    /// `out[t][r] = w.row(r) · x[t]` for every row `t` of `x`, on all of `pool`'s threads.
    pub fn matmul(&mut self, w: &Weight<'_>, out: &mut [f32], pool: &ThreadPool) -> Result<()> {
        let n_vecs = self.n_rows();
        let acts = self.for_weight(w.ty, pool)?;
        // A few tiles per thread, so a thread slowed by the OS does not hold up the rest;
        // cut at multiples of 16 rows, never below 64 rows per tile.
        let n_tiles = (pool.n_threads() * 4).min(w.n_out / 64).max(1);
        let cuts: Vec<usize> = (1..n_tiles)
            .map(|i| (w.n_out * i / n_tiles) / 16 * 16)
            .collect();
        let tiles = OutputTile::split(out, w.n_out, w.n_out, n_vecs, &cuts)?;
        let errors = std::sync::Mutex::new(None);
        pool.each_mut(tiles, |mut tile| {
            if let Err(e) = tile_matmul(w.ty, w.n_in, w.data, acts, &mut tile) {
                *errors.lock().expect("error slot") = Some(e);
            }
        });
        match errors.into_inner().expect("error slot") {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
