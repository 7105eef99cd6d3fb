//! The `llama` architecture (Llama 2/3, SmolLM, TinyLlama, …), written top to bottom in ops.

use super::blocks::embed_into;
use super::hparams::LlamaHparams;
use super::weights::{embedding_and_output, f32s, matrix_ref, optional_f32s, TensorRef};
use crate::backend::{Buf, Encoder, Matrix, Vector};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::kv_cache::{KvLayerSpec, KvWindow};
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

    /// Runs one micro-batch on `enc` (its rows, positions and wanted logits were given to
    /// the encoder): every layer, then the output head of the wanted rows.
    pub(crate) fn forward(&self, file: &[u8], enc: &mut dyn Encoder) -> Result<()> {
        let hp = &self.hp;
        let m = |tensor| Matrix { tensor, file };
        for (il, layer) in self.layers.iter().enumerate() {
            // Attention block: x += wo · attention(rope(q), rope(k), v).
            enc.rms_norm(Buf::Normed, Buf::X, Vector(&layer.attn_norm), hp.rms_eps)?;
            let qkv = [
                (m(&layer.wq), Buf::Q),
                (m(&layer.wk), Buf::K),
                (m(&layer.wv), Buf::V),
            ];
            enc.matmul(Buf::Normed, &qkv)?;
            for (buf, bias) in [
                (Buf::Q, &layer.bq),
                (Buf::K, &layer.bk),
                (Buf::V, &layer.bv),
            ] {
                if let Some(bias) = bias {
                    enc.add_bias(buf, Vector(bias))?;
                }
            }
            enc.rope(Buf::Q, &hp.rope, hp.head_dim)?;
            enc.rope(Buf::K, &hp.rope, hp.head_dim)?;
            enc.attention(il)?;
            enc.matmul(Buf::Attn, &[(m(&layer.wo), Buf::H)])?;
            if let Some(bias) = &layer.bo {
                enc.add_bias(Buf::H, Vector(bias))?;
            }
            enc.add(Buf::X, Buf::H)?;

            // Feed-forward block: x += down · (silu(gate · x̂) ⊙ up · x̂).
            enc.rms_norm(Buf::Normed, Buf::X, Vector(&layer.ffn_norm), hp.rms_eps)?;
            let (gate, up, down) = (m(&layer.w_gate), m(&layer.w_up), m(&layer.w_down));
            enc.ffn(Buf::Normed, gate, up, down, Buf::H)?;
            enc.add(Buf::X, Buf::H)?;
        }
        // Only the rows whose logits are wanted go through the output head.
        enc.logits(Vector(&self.output_norm), hp.rms_eps, m(&self.output))
    }

    /// Every matrix the forward pass multiplies by, for a backend to check and upload.
    pub(crate) fn matrices(&self) -> Vec<&TensorRef> {
        let mut all = vec![&self.output];
        for l in &self.layers {
            all.extend([&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]);
        }
        all
    }
}
