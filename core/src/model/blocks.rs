//! Pieces every llama-family forward pass shares: the embedding lookup, the activation
//! buffers of one micro-batch, storing keys and values, and the output head.

use super::ffn::FfnScratch;
use super::hparams::LlamaHparams;
use super::weights::TensorRef;
use crate::error::{try_resize, Result};
use crate::kv_cache::KvLayer;
use crate::ops::ThreadPool;
use crate::ops::{self, ActivationScratch, Activations, AttentionScratch, AttentionShape};

/// Writes the embedding rows of `tokens` into `x` (`tokens.len()` rows of `d`).
pub(crate) fn embed_into(
    token_embd: &TensorRef,
    file: &[u8],
    tokens: &[u32],
    d: usize,
    x: &mut [f32],
) -> Result<()> {
    let embd = token_embd.weight(file);
    for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
        embd.row_to_f32(t as usize, row)?;
    }
    Ok(())
}

/// Everything one forward pass writes, owned by a session and reused by every call so the
/// decode loop does not allocate once the buffers have grown to their working size.
#[derive(Default)]
pub(crate) struct Workspace {
    /// The residual stream: `n` rows of `n_embd`, filled by the caller before a forward.
    pub x: Vec<f32>,
    /// Position of each row.
    pub positions: Vec<usize>,
    /// Whether each row's logits are wanted.
    pub want: Vec<bool>,
    /// Logits of the wanted rows, back to back (`n_vocab` each).
    pub logits: Vec<f32>,
    /// The wanted rows of the residual stream, normalized for the output head.
    pub out_rows: Vec<f32>,
    /// Per-layer activation buffers.
    pub buffers: Buffers,
    /// Llama 4 NoPE query temperatures, one per row.
    pub temperatures: Vec<f32>,
    /// Mixture-of-experts routing and expert buffers.
    pub moe: MoeScratch,
}

/// Buffers of a mixture-of-experts feed-forward.
#[derive(Default)]
pub(crate) struct MoeScratch {
    /// Router logits, `n_expert` per row.
    pub router_logits: Vec<f32>,
    /// For each expert, the rows routed to it with their gates.
    pub routes: Vec<Vec<(usize, f32)>>,
    /// Experts ordered by logit for one row.
    pub order: Vec<usize>,
    /// The gated input rows of one expert.
    pub inputs: Vec<f32>,
    /// One expert's output rows.
    pub expert_out: Vec<f32>,
}

impl Workspace {
    /// Sizes the per-row vectors for `n` rows of a model shaped like `hp`.
    pub(crate) fn resize(&mut self, hp: &LlamaHparams, n: usize) -> Result<()> {
        try_resize(&mut self.x, n * hp.n_embd, 0.0, "activations")?;
        self.buffers.resize(hp, n)
    }
}

/// Activation buffers of one micro-batch of `n` tokens, reused by every layer.
#[derive(Default)]
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
    /// Sizes every buffer for `n` rows of a model shaped like `hp` (no allocation when they
    /// already have the capacity).
    pub(crate) fn resize(&mut self, hp: &LlamaHparams, n: usize) -> Result<()> {
        let q_dim = hp.n_head * hp.head_dim;
        let kv_dim = hp.n_head_kv * hp.head_dim;
        for (buf, len) in [
            (&mut self.h, n * hp.n_embd),
            (&mut self.normed, n * hp.n_embd),
            (&mut self.q, n * q_dim),
            (&mut self.k, n * kv_dim),
            (&mut self.v, n * kv_dim),
            (&mut self.attn, n * q_dim),
        ] {
            buf.clear();
            try_resize(buf, len, 0.0, "activations")?;
        }
        self.shape = AttentionShape {
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim: hp.head_dim,
            scale: 1.0 / (hp.head_dim as f32).sqrt(),
        };
        Ok(())
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

/// The final norm and output head of the rows of `ws.x` flagged in `ws.want`: their logits,
/// back to back, into `ws.logits`.
pub(crate) fn output_logits(
    ws: &mut Workspace,
    output_norm: &[f32],
    output: &TensorRef,
    hp: &LlamaHparams,
    file: &[u8],
    pool: &ThreadPool,
) -> Result<()> {
    let d = hp.n_embd;
    let n_out = ws.want.iter().filter(|&&w| w).count();
    try_resize(&mut ws.out_rows, n_out * d, 0.0, "output rows")?;
    let wanted = ws.x.chunks_exact(d).zip(&ws.want).filter(|(_, &w)| w);
    for (dst, (src, _)) in ws.out_rows.chunks_exact_mut(d).zip(wanted) {
        dst.copy_from_slice(src);
    }
    ws.out_rows.truncate(n_out * d);
    ops::rms_norm(&mut ws.out_rows, output_norm, hp.rms_eps, pool);
    ws.logits.clear();
    try_resize(&mut ws.logits, n_out * hp.n_vocab, 0.0, "logits")?;
    if n_out > 0 {
        let acts = &mut ws.buffers.acts;
        Activations::new(&ws.out_rows, d, acts).matmul(
            &output.weight(file),
            &mut ws.logits,
            pool,
        )?;
    }
    Ok(())
}

/// One layer's attention weights, borrowed: the pre-norm, the four projections and their
/// optional biases (Llama 4 has none).
pub(crate) struct AttentionWeights<'w> {
    pub norm: &'w [f32],
    pub wq: &'w TensorRef,
    pub wk: &'w TensorRef,
    pub wv: &'w TensorRef,
    pub wo: &'w TensorRef,
    pub bq: Option<&'w [f32]>,
    pub bk: Option<&'w [f32]>,
    pub bv: Option<&'w [f32]>,
    pub bo: Option<&'w [f32]>,
}

/// The attention block every llama-family layer shares: `x += wo · attention(q, k, v)` with
/// `q, k, v` projected from the RMS-normalized `x`. `position_qk` places the queries and keys
/// (RoPE, Llama 4's QK norm or NoPE temperature) before keys and values are cached.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_block(
    w: &AttentionWeights<'_>,
    x: &mut [f32],
    b: &mut Buffers,
    cache: &mut KvLayer,
    positions: &[usize],
    hp: &LlamaHparams,
    file: &[u8],
    pool: &ThreadPool,
    position_qk: impl FnOnce(&mut [f32], &mut [f32]),
) -> Result<()> {
    let d = hp.n_embd;
    let q_dim = hp.n_head * hp.head_dim;
    b.normed.copy_from_slice(x);
    ops::rms_norm(&mut b.normed, w.norm, hp.rms_eps, pool);
    let mut acts = Activations::new(&b.normed, d, &mut b.acts);
    acts.matmul(&w.wq.weight(file), &mut b.q, pool)?;
    acts.matmul(&w.wk.weight(file), &mut b.k, pool)?;
    acts.matmul(&w.wv.weight(file), &mut b.v, pool)?;
    for (buf, bias) in [(&mut b.q, w.bq), (&mut b.k, w.bk), (&mut b.v, w.bv)] {
        if let Some(bias) = bias {
            ops::add_bias(buf, bias);
        }
    }
    position_qk(&mut b.q, &mut b.k);
    b.store_kv(cache, positions)?;
    let scratch = &mut b.attention;
    ops::attention(&b.q, positions, cache, b.shape, &mut b.attn, scratch, pool);
    let acts = &mut b.acts;
    Activations::new(&b.attn, q_dim, acts).matmul(&w.wo.weight(file), &mut b.h, pool)?;
    if let Some(bias) = w.bo {
        ops::add_bias(&mut b.h, bias);
    }
    ops::add_assign(x, &b.h);
    Ok(())
}
