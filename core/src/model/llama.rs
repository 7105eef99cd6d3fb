//! The `llama` architecture (Llama 2/3, SmolLM, TinyLlama, …), written top to bottom in ops.

use super::blocks::{attention_block, embed_into, output_logits, AttentionWeights, Workspace};
use super::ffn::swiglu_ffn;
use super::hparams::LlamaHparams;
use super::weights::{embedding_and_output, f32s, matrix_ref, optional_f32s, TensorRef};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::kv_cache::{KvCache, KvLayerSpec, KvWindow};
use crate::ops::{self, Activations, ThreadPool};
use crate::tensor_names::{
    blk, ATTN_K, ATTN_K_BIAS, ATTN_NORM, ATTN_OUTPUT, ATTN_OUTPUT_BIAS, ATTN_Q, ATTN_Q_BIAS,
    ATTN_V, ATTN_V_BIAS, FFN_DOWN, FFN_GATE, FFN_NORM, FFN_UP, OUTPUT_NORM, ROPE_FREQS, TOKEN_EMBD,
};

/// One transformer block's weights.
#[derive(Debug)]
struct Layer {
    attn_norm: Vec<f32>,
    wq: TensorRef,
    wk: TensorRef,
    wv: TensorRef,
    wo: TensorRef,
    bq: Option<Vec<f32>>,
    bk: Option<Vec<f32>>,
    bv: Option<Vec<f32>>,
    bo: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    w_gate: TensorRef,
    w_up: TensorRef,
    w_down: TensorRef,
}

/// A loaded llama-architecture model: hyperparameters and where each weight lives.
#[derive(Debug)]
pub(crate) struct Llama {
    /// Hyperparameters.
    pub(crate) hp: LlamaHparams,
    token_embd: TensorRef,
    output_norm: Vec<f32>,
    output: TensorRef,
    layers: Vec<Layer>,
}

impl Llama {
    /// Validates every tensor's presence and shape against the metadata.
    pub(crate) fn load(file: &GgufFile, arch: &str) -> Result<Self> {
        let embd = file
            .tensor(TOKEN_EMBD)
            .ok_or_else(|| Error::InvalidModel(format!("tensor \"{TOKEN_EMBD}\" is missing")))?;
        let embd_rows = embd.info.dims.get(1).copied().unwrap_or(1) as usize;
        let mut hp = LlamaHparams::from_metadata(file.metadata(), arch, embd_rows)?;
        let (d, v) = (hp.n_embd, hp.n_vocab);
        let q_dim = hp.n_head * hp.head_dim;
        let kv_dim = hp.n_head_kv * hp.head_dim;
        hp.rope.freq_factors = optional_f32s(file, ROPE_FREQS, &[hp.rope.n_rot / 2])?;
        let (token_embd, output) = embedding_and_output(file, d, v)?;
        let layers = (0..hp.n_layer)
            .map(|i| {
                let name = |t: &str| blk(i, t);
                Ok(Layer {
                    attn_norm: f32s(file, &name(ATTN_NORM), &[d])?,
                    wq: matrix_ref(file, &name(ATTN_Q), &[d, q_dim])?,
                    wk: matrix_ref(file, &name(ATTN_K), &[d, kv_dim])?,
                    wv: matrix_ref(file, &name(ATTN_V), &[d, kv_dim])?,
                    wo: matrix_ref(file, &name(ATTN_OUTPUT), &[q_dim, d])?,
                    bq: optional_f32s(file, &name(ATTN_Q_BIAS), &[q_dim])?,
                    bk: optional_f32s(file, &name(ATTN_K_BIAS), &[kv_dim])?,
                    bv: optional_f32s(file, &name(ATTN_V_BIAS), &[kv_dim])?,
                    bo: optional_f32s(file, &name(ATTN_OUTPUT_BIAS), &[d])?,
                    ffn_norm: f32s(file, &name(FFN_NORM), &[d])?,
                    w_gate: matrix_ref(file, &name(FFN_GATE), &[d, hp.n_ff])?,
                    w_up: matrix_ref(file, &name(FFN_UP), &[d, hp.n_ff])?,
                    w_down: matrix_ref(file, &name(FFN_DOWN), &[hp.n_ff, d])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let model = Self {
            output_norm: f32s(file, OUTPUT_NORM, &[d])?,
            hp,
            token_embd,
            output,
            layers,
        };
        Ok(model)
    }

    /// The matrices the forward pass multiplies by, and the token embedding (read by row).
    pub(crate) fn tensors_mut(&mut self) -> (Vec<&mut TensorRef>, Vec<&mut TensorRef>) {
        let mut matrices = vec![&mut self.output];
        for l in &mut self.layers {
            matrices.extend([
                &mut l.wq,
                &mut l.wk,
                &mut l.wv,
                &mut l.wo,
                &mut l.w_gate,
                &mut l.w_up,
                &mut l.w_down,
            ]);
        }
        (matrices, vec![&mut self.token_embd])
    }

    /// The shape of each layer's KV cache: every layer attends to the whole context.
    pub(crate) fn kv_layout(&self) -> Vec<KvLayerSpec> {
        let spec = KvLayerSpec {
            row_len: self.hp.n_head_kv * self.hp.head_dim,
            window: KvWindow::Full,
        };
        vec![spec; self.hp.n_layer]
    }

    /// Writes the embedding rows of `tokens` into `x`.
    pub(crate) fn embed(&self, file: &[u8], tokens: &[u32], x: &mut [f32]) -> Result<()> {
        embed_into(&self.token_embd, file, tokens, self.hp.n_embd, x)
    }

    /// Runs the rows of `ws.x` at `ws.positions` (each row's cache cell is its position)
    /// and writes the logits of the rows flagged in `ws.want` into `ws.logits`.
    pub(crate) fn forward(
        &self,
        file: &[u8],
        pool: &ThreadPool,
        kv: &mut KvCache,
        ws: &mut Workspace,
    ) -> Result<()> {
        let hp = &self.hp;
        let (d, hd) = (hp.n_embd, hp.head_dim);
        let n = ws.positions.len();
        ws.buffers.resize(hp, n)?;
        let (x, positions, b) = (&mut ws.x, &ws.positions, &mut ws.buffers);

        for (il, layer) in self.layers.iter().enumerate() {
            // Attention block.
            let weights = AttentionWeights {
                norm: &layer.attn_norm,
                wq: &layer.wq,
                wk: &layer.wk,
                wv: &layer.wv,
                wo: &layer.wo,
                bq: layer.bq.as_deref(),
                bk: layer.bk.as_deref(),
                bv: layer.bv.as_deref(),
                bo: layer.bo.as_deref(),
            };
            let rope = |q: &mut [f32], k: &mut [f32]| {
                hp.rope.apply(q, hd, positions, pool);
                hp.rope.apply(k, hd, positions, pool);
            };
            let cache = &mut kv.layers[il];
            attention_block(&weights, x, b, cache, positions, hp, file, pool, rope)?;

            // Feed-forward block.
            b.normed.copy_from_slice(x);
            ops::rms_norm(&mut b.normed, &layer.ffn_norm, hp.rms_eps, pool);
            swiglu_ffn(
                &mut Activations::new(&b.normed, d, &mut b.acts),
                &layer.w_gate.weight(file),
                &layer.w_up.weight(file),
                &layer.w_down.weight(file),
                &mut b.ffn,
                &mut b.h,
                pool,
            )?;
            ops::add_assign(x, &b.h);
        }

        // Only the rows whose logits are wanted go through the output head.
        output_logits(ws, &self.output_norm, &self.output, hp, file, pool)
    }
}
