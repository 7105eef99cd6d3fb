//! The compute layer: the operations a forward pass is written in. Each op works on plain
//! row-major `f32` buffers (and quantized weights), the boundary a GPU backend implements.
//!
//! Numerics follow ggml's CPU ops so results agree with llama.cpp: RMS norm sums squares in
//! f64, matmuls quantize activations to the weight type's paired type, RoPE advances the
//! angle by repeated multiplication in f32, and attention rounds to f16 where an f16 cache
//! makes ggml do so.
//!
//! After a first call has sized the caller's scratch ([`ActivationScratch`],
//! [`AttentionScratch`]), repeating an op on inputs of the same shape allocates nothing, on
//! the calling thread or on the pool's.

mod attention;
mod dense;
mod matmul;
mod pool;
mod rope;

pub use attention::{attention, AttentionScratch, AttentionShape};
pub use dense::{bidirectional_attention, exp_approx, gelu, layer_norm, BidirectionalScratch};
pub use matmul::{ActivationScratch, Activations, Weight};
pub use pool::{ThreadPool, DEFAULT_IDLE_SPIN};
pub use rope::{Rope, RopeMode};

/// RMS-normalizes each row of `x` (rows of `weight.len()`) in place and scales it by
/// `weight`, rows split across `pool`.
pub fn rms_norm(x: &mut [f32], weight: &[f32], eps: f32, pool: &ThreadPool) {
    pool.for_rows(x, weight.len(), |rows, _| rms_norm_rows(rows, weight, eps));
}

fn rms_norm_rows(x: &mut [f32], weight: &[f32], eps: f32) {
    let n = weight.len();
    for row in x.chunks_exact_mut(n) {
        let sum: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let mean = (sum / n as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for (v, w) in row.iter_mut().zip(weight) {
            *v = (*v * scale) * w;
        }
    }
}

/// RMS-normalizes each consecutive segment of `n` elements of `x` in place, with no weight
/// (Llama 4's per-head QK norm).
pub fn rms_norm_unweighted(x: &mut [f32], n: usize, eps: f32) {
    for seg in x.chunks_exact_mut(n) {
        let sum: f64 = seg.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let scale = 1.0 / ((sum / n as f64) as f32 + eps).sqrt();
        seg.iter_mut().for_each(|v| *v *= scale);
    }
}

/// Multiplies row `t` of `x` (`scales.len()` equal rows) by `scales[t]`.
pub fn scale_rows(x: &mut [f32], scales: &[f32]) {
    let row_len = x.len() / scales.len().max(1);
    for (row, &s) in x.chunks_exact_mut(row_len).zip(scales) {
        row.iter_mut().for_each(|v| *v *= s);
    }
}

/// `gate = silu(gate) * up`, elementwise (the SwiGLU activation), on rows of `row_len`
/// split across `pool`.
pub fn swiglu(gate: &mut [f32], up: &[f32], row_len: usize, pool: &ThreadPool) {
    pool.for_rows(gate, row_len, |rows, first| {
        let up = &up[first * row_len..first * row_len + rows.len()];
        for (g, u) in rows.iter_mut().zip(up) {
            *g = silu(*g) * u;
        }
    });
}

/// `x / (1 + e^-x)`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// `x += y`, elementwise.
pub fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Adds `bias` to each row of `x`.
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        add_assign(row, bias);
    }
}
