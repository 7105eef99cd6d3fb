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
}

/// `out = down · (silu(gate · x) ⊙ (up · x))` for every row `x` of `acts`.
pub(crate) fn swiglu_ffn(
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
