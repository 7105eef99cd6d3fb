//! The steps encoder and decoder blocks share, over `n` rows of the model's width: a
//! pre-LayerNorm copy, a linear layer with bias, the Q/K/V projections, the output projection
//! added back to the residual stream, and the GELU MLP. (The encoder and decoder widths are
//! equal, as loading checks.)

use crate::error::Result;
use crate::ops::{add_assign, add_bias, gelu, layer_norm, ActivationScratch, Activations};

use super::model::{AttentionWeights, Block, Matrix, WhisperModel};

/// The buffers a block step reads and writes: the residual stream `x`, the normed copy /
/// projection output `h`, and the activation scratch.
pub(super) struct Residual<'b> {
    pub x: &'b mut [f32],
    pub h: &'b mut [f32],
    pub acts: &'b mut ActivationScratch,
}

impl WhisperModel {
    /// `out = input · Wᵀ (+ bias)`, `input` rows of `n_in`.
    pub(super) fn linear(
        &self,
        w: &Matrix,
        bias: Option<&[f32]>,
        input: &[f32],
        n_in: usize,
        out: &mut [f32],
        acts: &mut ActivationScratch,
    ) -> Result<()> {
        let file = self.file.as_bytes();
        Activations::new(input, n_in, acts).matmul(&w.weight(file), out, &self.pool)?;
        if let Some(b) = bias {
            add_bias(out, b);
        }
        Ok(())
    }

    /// `h = layer_norm(x)` with this LayerNorm's weight and bias.
    pub(super) fn pre_norm(&self, r: &mut Residual, w: &[f32], b: &[f32]) {
        r.h.copy_from_slice(r.x);
        layer_norm(r.h, w, b, self.hp.eps, &self.pool);
    }

    /// The query, key (no bias) and value projections of the normed rows `h`.
    pub(super) fn project_qkv(
        &self,
        a: &AttentionWeights,
        r: &mut Residual,
        q: &mut [f32],
        k: &mut [f32],
        v: &mut [f32],
    ) -> Result<()> {
        let (file, pool, d) = (self.file.as_bytes(), &*self.pool, self.hp.n_audio_embd);
        let mut acts = Activations::new(r.h, d, r.acts);
        acts.matmul(&a.q.weight(file), q, pool)?;
        acts.matmul(&a.k.weight(file), k, pool)?;
        acts.matmul(&a.v.weight(file), v, pool)?;
        add_bias(q, &a.q_b);
        add_bias(v, &a.v_b);
        Ok(())
    }

    /// `x += attn · Woᵀ + b_o`: an attention's output projection into the residual stream.
    pub(super) fn add_attention_output(
        &self,
        a: &AttentionWeights,
        attn: &[f32],
        r: &mut Residual,
    ) -> Result<()> {
        let d = self.hp.n_audio_embd;
        self.linear(&a.o, Some(&a.o_b), attn, d, r.h, r.acts)?;
        add_assign(r.x, r.h);
        Ok(())
    }

    /// `x += mlp(mlp_ln(x))` with `mlp = down(gelu(up(·)))`; `ff` holds the hidden rows.
    pub(super) fn add_mlp(&self, blk: &Block, r: &mut Residual, ff: &mut [f32]) -> Result<()> {
        let (d, n_ff) = (self.hp.n_audio_embd, self.hp.n_ff);
        self.pre_norm(r, &blk.mlp_ln_w, &blk.mlp_ln_b);
        self.linear(&blk.up, Some(&blk.up_b), r.h, d, ff, r.acts)?;
        gelu(ff, &self.pool);
        self.linear(&blk.down, Some(&blk.down_b), ff, n_ff, r.h, r.acts)?;
        add_assign(r.x, r.h);
        Ok(())
    }
}
