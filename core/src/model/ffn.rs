//! The SwiGLU feed-forward network shared by dense layers, shared experts and routed experts.

use crate::error::Result;
use crate::ops::{self, ActivationScratch, Activations, ThreadPool, Weight};

/// Reusable buffers for the hidden activations of a feed-forward pass.
#[derive(Debug, Default)]
pub(crate) struct FfnScratch {
    gate: Vec<f32>,
    up: Vec<f32>,
    /// The quantized hidden activations (the down projection's input).
    hidden: ActivationScratch,
    /// The quantized input rows of one chunk of a long batch.
    chunk: ActivationScratch,
}

/// Rows of a batch the hidden activations are computed for at a time: a prefill of 512
/// tokens keeps a quarter of its gate and up rows (SmolLM2: about 5 MB less resident), and
/// 128 activation rows still fill the GEMM's tiles. Rows are computed independently, so
/// chunking never changes a result.
const FFN_ROWS: usize = 128;

/// `out = down · (silu(gate · x) ⊙ (up · x))` for every row `x` of `acts`, in chunks of at
/// most [`FFN_ROWS`] rows.
pub(crate) fn swiglu_ffn(
    acts: &mut Activations<'_>,
    gate: &Weight<'_>,
    up: &Weight<'_>,
    down: &Weight<'_>,
    scratch: &mut FfnScratch,
    out: &mut [f32],
    pool: &ThreadPool,
) -> Result<()> {
    if acts.n_rows() <= FFN_ROWS {
        return swiglu_rows(acts, gate, up, down, scratch, out, pool);
    }
    let (x, n_in) = acts.rows();
    let mut chunk = std::mem::take(&mut scratch.chunk);
    let result = x
        .chunks(FFN_ROWS * n_in)
        .zip(out.chunks_mut(FFN_ROWS * down.n_out))
        .try_for_each(|(x, out)| {
            let mut acts = Activations::new(x, n_in, &mut chunk);
            swiglu_rows(&mut acts, gate, up, down, scratch, out, pool)
        });
    scratch.chunk = chunk;
    result
}

/// [`swiglu_ffn`] on all rows of `acts` at once.
fn swiglu_rows(
    acts: &mut Activations<'_>,
    gate: &Weight<'_>,
    up: &Weight<'_>,
    down: &Weight<'_>,
    scratch: &mut FfnScratch,
    out: &mut [f32],
    pool: &ThreadPool,
) -> Result<()> {
    let len = acts.n_rows() * gate.n_out;
    scratch.gate.resize(len, 0.0);
    scratch.up.resize(len, 0.0);
    acts.matmul(gate, &mut scratch.gate, pool)?;
    acts.matmul(up, &mut scratch.up, pool)?;
    ops::swiglu(&mut scratch.gate, &scratch.up, gate.n_out, pool);
    Activations::new(&scratch.gate, gate.n_out, &mut scratch.hidden).matmul(down, out, pool)
}
