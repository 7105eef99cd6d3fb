//! Pieces every llama-family forward pass shares: the embedding lookup, the activation
//! buffers of one micro-batch, storing keys and values, and the output head.

use super::ffn::FfnScratch;
use super::hparams::LlamaHparams;
use super::weights::TensorRef;
use crate::error::Result;
use crate::kv_cache::KvLayer;
use crate::ops::ThreadPool;
use crate::ops::{self, ActivationScratch, Activations, AttentionScratch, AttentionShape};

/// The residual stream of `tokens`: their rows of the embedding matrix.
pub(crate) fn embed(
    token_embd: &TensorRef,
    file: &[u8],
    tokens: &[u32],
    d: usize,
) -> Result<Vec<f32>> {
    let mut x = vec![0.0f32; tokens.len() * d];
    let embd = token_embd.weight(file);
    for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
        embd.row_to_f32(t as usize, row)?;
    }
    Ok(x)
}

/// Activation buffers of one micro-batch of `n` tokens, reused by every layer.
pub(crate) struct Buffers {
    /// A block's output before it joins the residual stream.
    pub h: Vec<f32>,
    /// The normalized residual stream.
    pub normed: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// Attention output (all heads).
    pub attn: Vec<f32>,
    pub ffn: FfnScratch,
    /// Quantized copies of the rows a block's matmuls read.
    pub acts: ActivationScratch,
    /// Per-thread buffers of attention.
    pub attention: AttentionScratch,
    /// Head layout with the usual `1/sqrt(head_dim)` score scale.
    pub shape: AttentionShape,
}

impl Buffers {
    pub(crate) fn new(hp: &LlamaHparams, n: usize) -> Self {
        let q_dim = hp.n_head * hp.head_dim;
        let kv_dim = hp.n_head_kv * hp.head_dim;
        Self {
            h: vec![0.0; n * hp.n_embd],
            normed: vec![0.0; n * hp.n_embd],
            q: vec![0.0; n * q_dim],
            k: vec![0.0; n * kv_dim],
            v: vec![0.0; n * kv_dim],
            attn: vec![0.0; n * q_dim],
            ffn: FfnScratch::default(),
            acts: ActivationScratch::default(),
            attention: AttentionScratch::default(),
            shape: AttentionShape {
                n_head: hp.n_head,
                n_head_kv: hp.n_head_kv,
                head_dim: hp.head_dim,
                scale: 1.0 / (hp.head_dim as f32).sqrt(),
            },
        }
    }

    /// Writes the rows of `k` and `v` into `cache` at their positions.
    pub(crate) fn store_kv(&self, cache: &mut KvLayer, positions: &[usize]) -> Result<()> {
        let kv_dim = self.k.len() / positions.len().max(1);
        for ((kr, vr), &pos) in self
            .k
            .chunks_exact(kv_dim)
            .zip(self.v.chunks_exact(kv_dim))
            .zip(positions)
        {
            cache.store(pos, kr, vr)?;
        }
        Ok(())
    }
}

/// The final norm and output head of the rows of `x` flagged in `want_logits`: their logits,
/// back to back.
#[allow(clippy::too_many_arguments)]
pub(crate) fn output_logits(
    x: &[f32],
    want_logits: &[bool],
    output_norm: &[f32],
    output: &TensorRef,
    hp: &LlamaHparams,
    file: &[u8],
    acts: &mut ActivationScratch,
    pool: &ThreadPool,
) -> Result<Vec<f32>> {
    let d = hp.n_embd;
    let mut rows: Vec<f32> = x
        .chunks_exact(d)
        .zip(want_logits)
        .filter(|(_, &w)| w)
        .flat_map(|(r, _)| r.iter().copied())
        .collect();
    let n_out = rows.len() / d;
    ops::rms_norm(&mut rows, output_norm, hp.rms_eps, pool);
    let mut logits = vec![0.0f32; n_out * hp.n_vocab];
    if n_out > 0 {
        Activations::new(&rows, d, acts).matmul(&output.weight(file), &mut logits, pool)?;
    }
    Ok(logits)
}
