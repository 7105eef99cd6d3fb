//! The `llama4` architecture (Llama 4 Scout and Maverick text), written top to bottom in ops.
//!
//! Per layer (shared/specs/llama4.md §2): RoPE layers rotate Q and K (interleaved pairs, with
//! `rope_freqs` divisors), optionally RMS-normalize them without a weight, and attend within
//! their chunk; every 4th layer skips RoPE, scales Q by a position-dependent temperature and
//! attends to the whole context. The feed-forward is a dense SwiGLU or a mixture of experts:
//! top-k on the raw router logits, each chosen expert fed `sigmoid(logit) · x` (the gate
//! scales the expert's input), plus an always-on shared expert.

use super::blocks::{attention_block, embed_into, output_logits, AttentionWeights};
use super::blocks::{MoeScratch, Workspace};
use super::experts::{ExpertResidency, ExpertResidencyOptions, ExpertStats};
use super::ffn::{swiglu_ffn, FfnScratch};
use super::hparams::{Llama4Hparams, Llama4LayerKind};
use super::weights::optional_matrix_ref;
use super::weights::{embedding_and_output, f32s, matrix_ref, optional_f32s};
use super::weights::{ExpertTensor, TensorRef};
use crate::error::{try_resize, Error, Result};
use crate::gguf::GgufFile;
use crate::kv_cache::{KvCache, KvLayerSpec, KvWindow};
use crate::ops::{self, ActivationScratch, Activations, ThreadPool};
use crate::tensor_names::{
    blk, ATTN_K, ATTN_NORM, ATTN_OUTPUT, ATTN_Q, ATTN_V, FFN_DOWN, FFN_DOWN_EXPS, FFN_DOWN_SHEXP,
    FFN_GATE, FFN_GATE_EXPS, FFN_GATE_INP, FFN_GATE_SHEXP, FFN_NORM, FFN_UP, FFN_UP_EXPS,
    FFN_UP_SHEXP, OUTPUT_NORM, ROPE_FREQS, TOKEN_EMBD,
};

/// The routed and shared experts of one MoE layer.
#[derive(Debug)]
struct Moe {
    /// Router: one row of `n_embd` per expert.
    router: TensorRef,
    gate_exps: ExpertTensor,
    up_exps: ExpertTensor,
    down_exps: ExpertTensor,
    shared_gate: TensorRef,
    shared_up: TensorRef,
    shared_down: TensorRef,
    /// This layer's index among the MoE layers (for the residency counters).
    moe_index: usize,
}

/// A layer's feed-forward network.
#[derive(Debug)]
enum Ffn {
    Dense {
        gate: TensorRef,
        up: TensorRef,
        down: TensorRef,
    },
    Moe(Moe),
}

/// One transformer block's weights.
#[derive(Debug)]
struct Layer {
    kind: Llama4LayerKind,
    attn_norm: Vec<f32>,
    wq: TensorRef,
    wk: TensorRef,
    wv: TensorRef,
    wo: TensorRef,
    ffn_norm: Vec<f32>,
    ffn: Ffn,
}

/// A loaded Llama 4 text model: hyperparameters, where each weight lives, and expert residency.
#[derive(Debug)]
pub(crate) struct Llama4 {
    /// Hyperparameters.
    pub(crate) hp: Llama4Hparams,
    token_embd: TensorRef,
    output_norm: Vec<f32>,
    output: TensorRef,
    layers: Vec<Layer>,
    residency: ExpertResidency,
}

impl Llama4 {
    /// The dense matrices the forward pass multiplies by (attention, dense and shared
    /// FFNs, routers, output), and the token embedding (read by row). Routed experts are
    /// not among them: they stay as the file stores them.
    pub(crate) fn tensors_mut(&mut self) -> (Vec<&mut TensorRef>, Vec<&mut TensorRef>) {
        let mut matrices = vec![&mut self.output];
        for l in &mut self.layers {
            matrices.extend([&mut l.wq, &mut l.wk, &mut l.wv, &mut l.wo]);
            match &mut l.ffn {
                Ffn::Dense { gate, up, down } => matrices.extend([gate, up, down]),
                Ffn::Moe(m) => matrices.extend([
                    &mut m.router,
                    &mut m.shared_gate,
                    &mut m.shared_up,
                    &mut m.shared_down,
                ]),
            }
        }
        (matrices, vec![&mut self.token_embd])
    }

    /// The routed experts' stacked tensors, for repacking at load.
    pub(crate) fn experts_mut(&mut self) -> Vec<&mut ExpertTensor> {
        let mut experts = Vec::new();
        for l in &mut self.layers {
            if let Ffn::Moe(m) = &mut l.ffn {
                experts.extend([&mut m.gate_exps, &mut m.up_exps, &mut m.down_exps]);
            }
        }
        experts
    }

    /// Validates every tensor's presence and shape against the metadata.
    pub(crate) fn load(file: &GgufFile) -> Result<Self> {
        let embd = file
            .tensor(TOKEN_EMBD)
            .ok_or_else(|| Error::InvalidModel(format!("tensor \"{TOKEN_EMBD}\" is missing")))?;
        let embd_rows = embd.info.dims.get(1).copied().unwrap_or(1) as usize;
        let mut hp = Llama4Hparams::from_metadata(file.metadata(), embd_rows)?;
        let b = &hp.base;
        let (d, v) = (b.n_embd, b.n_vocab);
        let q_dim = b.n_head * b.head_dim;
        let kv_dim = b.n_head_kv * b.head_dim;
        let (n_exp, n_ff_exp) = (hp.n_expert, hp.n_ff_exp);
        hp.base.rope.freq_factors = optional_f32s(file, ROPE_FREQS, &[hp.base.rope.n_rot / 2])?;
        let (token_embd, output) = embedding_and_output(file, d, v)?;
        let mut moe_layers = Vec::new();
        let mut ranges = Vec::new();
        let mut layers = Vec::new();
        for il in 0..hp.base.n_layer {
            let name = |t: &str| blk(il, t);
            let kind = hp.layer_kind(il);
            let ffn = if kind.moe {
                let exps =
                    |t: &str, n_in, rows| ExpertTensor::find(file, &name(t), n_in, rows, n_exp);
                let moe = Moe {
                    router: router(file, &name(FFN_GATE_INP), d, n_exp)?,
                    gate_exps: exps(FFN_GATE_EXPS, d, n_ff_exp)?,
                    up_exps: exps(FFN_UP_EXPS, d, n_ff_exp)?,
                    down_exps: exps(FFN_DOWN_EXPS, n_ff_exp, d)?,
                    shared_gate: shared_expert(file, &name(FFN_GATE_SHEXP), d, n_ff_exp)?,
                    shared_up: shared_expert(file, &name(FFN_UP_SHEXP), d, n_ff_exp)?,
                    shared_down: shared_expert(file, &name(FFN_DOWN_SHEXP), n_ff_exp, d)?,
                    moe_index: moe_layers.len(),
                };
                moe_layers.push(il);
                ranges.push(
                    (0..n_exp)
                        .map(|e| {
                            [
                                moe.gate_exps.range(e),
                                moe.up_exps.range(e),
                                moe.down_exps.range(e),
                            ]
                        })
                        .collect(),
                );
                Ffn::Moe(moe)
            } else {
                let n_ff = hp.base.n_ff;
                Ffn::Dense {
                    gate: matrix_ref(file, &name(FFN_GATE), &[d, n_ff])?,
                    up: matrix_ref(file, &name(FFN_UP), &[d, n_ff])?,
                    down: matrix_ref(file, &name(FFN_DOWN), &[n_ff, d])?,
                }
            };
            layers.push(Layer {
                kind,
                attn_norm: f32s(file, &name(ATTN_NORM), &[d])?,
                wq: matrix_ref(file, &name(ATTN_Q), &[d, q_dim])?,
                wk: matrix_ref(file, &name(ATTN_K), &[d, kv_dim])?,
                wv: matrix_ref(file, &name(ATTN_V), &[d, kv_dim])?,
                wo: matrix_ref(file, &name(ATTN_OUTPUT), &[q_dim, d])?,
                ffn_norm: f32s(file, &name(FFN_NORM), &[d])?,
                ffn,
            });
        }
        let model = Self {
            output_norm: f32s(file, OUTPUT_NORM, &[d])?,
            hp,
            token_embd,
            output,
            layers,
            residency: ExpertResidency::new(moe_layers, ranges),
        };
        Ok(model)
    }

    /// The shape of each layer's KV cache: chunked layers keep a ring, NoPE layers everything.
    pub(crate) fn kv_layout(&self) -> Vec<KvLayerSpec> {
        let row_len = self.hp.base.n_head_kv * self.hp.base.head_dim;
        self.layers
            .iter()
            .map(|l| KvLayerSpec {
                row_len,
                window: if l.kind.chunked {
                    KvWindow::Chunked(self.hp.chunk_size)
                } else {
                    KvWindow::Full
                },
            })
            .collect()
    }

    /// Expert hit counters and residency.
    pub(crate) fn expert_stats(&self) -> ExpertStats {
        self.residency.stats()
    }

    /// Changes how expert weights are kept in memory.
    pub(crate) fn set_expert_residency(&self, map: &[u8], options: ExpertResidencyOptions) {
        self.residency.configure(map, options);
    }

    /// Writes the embedding rows of `tokens` into `x`.
    pub(crate) fn embed(&self, file: &[u8], tokens: &[u32], x: &mut [f32]) -> Result<()> {
        embed_into(&self.token_embd, file, tokens, self.hp.base.n_embd, x)
    }

    /// Runs the rows of `ws.x` at `ws.positions` and writes the logits of the rows flagged
    /// in `ws.want` into `ws.logits`.
    pub(crate) fn forward(
        &self,
        file: &[u8],
        pool: &ThreadPool,
        kv: &mut KvCache,
        ws: &mut Workspace,
    ) -> Result<()> {
        let hp = &self.hp.base;
        let (d, hd) = (hp.n_embd, hp.head_dim);
        let n = ws.positions.len();
        ws.buffers.resize(hp, n)?;
        ws.temperatures.clear();
        let temperature = |&p| self.hp.temperature(p);
        ws.temperatures.extend(ws.positions.iter().map(temperature));
        let (x, positions, b) = (&mut ws.x, &ws.positions, &mut ws.buffers);

        for (il, layer) in self.layers.iter().enumerate() {
            let scratch = (&mut b.normed, &mut b.acts, &mut ws.moe);
            self.prefetch_predicted_experts(il, x, scratch, file, pool)?;

            // Attention block: RoPE (+ QK norm) on chunked layers, temperature on NoPE ones.
            let weights = AttentionWeights {
                norm: &layer.attn_norm,
                wq: &layer.wq,
                wk: &layer.wk,
                wv: &layer.wv,
                wo: &layer.wo,
                bq: None,
                bk: None,
                bv: None,
                bo: None,
            };
            let temperatures = &ws.temperatures;
            let place = |q: &mut [f32], k: &mut [f32]| {
                if layer.kind.rope {
                    hp.rope.apply(q, hd, positions, pool);
                    hp.rope.apply(k, hd, positions, pool);
                    if layer.kind.qk_norm {
                        ops::rms_norm_unweighted(q, hd, hp.rms_eps);
                        ops::rms_norm_unweighted(k, hd, hp.rms_eps);
                    }
                } else {
                    ops::scale_rows(q, temperatures);
                }
            };
            let cache = &mut kv.layers[il];
            attention_block(&weights, x, b, cache, positions, hp, file, pool, place)?;

            // Feed-forward block.
            b.normed.copy_from_slice(x);
            ops::rms_norm(&mut b.normed, &layer.ffn_norm, hp.rms_eps, pool);
            match &layer.ffn {
                Ffn::Dense { gate, up, down } => swiglu_ffn(
                    &mut Activations::new(&b.normed, d, &mut b.acts),
                    &gate.weight(file),
                    &up.weight(file),
                    &down.weight(file),
                    &mut b.ffn,
                    &mut b.h,
                    pool,
                )?,
                Ffn::Moe(moe) => {
                    let scratch = (&mut b.ffn, &mut b.acts, &mut ws.moe);
                    self.moe(moe, file, &b.normed, &mut b.h, scratch, pool)?
                }
            }
            ops::add_assign(x, &b.h);
        }
        self.residency.after_batch(file);

        // Only the rows whose logits are wanted go through the output head.
        output_logits(ws, &self.output_norm, &self.output, hp, file, pool)
    }

    /// Predicts the experts that the rows of `x` (the hidden state entering layer `il`) will
    /// route to in the current MoE layer and the next `lookahead` ones, by applying each
    /// layer's FFN norm and router to `x` as it is now, and hands them to the background
    /// reader, so that reading them from storage overlaps the compute of the layers before.
    /// The hidden state changes little from layer to layer (it is a residual sum), which is
    /// what makes the prediction good; a wrong one costs a read, never a result.
    fn prefetch_predicted_experts(
        &self,
        il: usize,
        x: &[f32],
        (normed, acts_scratch, m): (&mut Vec<f32>, &mut ActivationScratch, &mut MoeScratch),
        file: &[u8],
        pool: &ThreadPool,
    ) -> Result<()> {
        let lookahead = self.residency.lookahead();
        if lookahead == 0 {
            return Ok(());
        }
        let (d, n_exp) = (self.hp.base.n_embd, self.hp.n_expert);
        let n = x.len() / d;
        let moe_layers = self.layers[il..].iter().filter_map(|l| match &l.ffn {
            Ffn::Moe(moe) => Some((l, moe)),
            Ffn::Dense { .. } => None,
        });
        for (layer, moe) in moe_layers.take(lookahead.saturating_add(1)) {
            normed.copy_from_slice(x);
            ops::rms_norm(normed, &layer.ffn_norm, self.hp.base.rms_eps, pool);
            m.router_logits.clear();
            try_resize(&mut m.router_logits, n * n_exp, 0.0, "router logits")?;
            Activations::new(normed, d, acts_scratch).matmul(
                &moe.router.weight(file),
                &mut m.router_logits,
                pool,
            )?;
            let k = self.hp.n_expert_used;
            route(&m.router_logits, n_exp, k, &mut m.routes, &mut m.order);
            for (e, tokens) in m.routes.iter().enumerate() {
                if !tokens.is_empty() {
                    self.residency.prefetch(file, moe.moe_index, e);
                }
            }
        }
        Ok(())
    }

    /// The mixture-of-experts feed-forward of the rows of `x` into `out`. Tokens are grouped
    /// by expert so each chosen expert's weights are read once per batch.
    fn moe(
        &self,
        moe: &Moe,
        file: &[u8],
        x: &[f32],
        out: &mut [f32],
        (ffn, acts_scratch, m): (&mut FfnScratch, &mut ActivationScratch, &mut MoeScratch),
        pool: &ThreadPool,
    ) -> Result<()> {
        let d = self.hp.base.n_embd;
        let n = x.len() / d;
        let n_exp = self.hp.n_expert;
        let mut acts = Activations::new(x, d, acts_scratch);
        m.router_logits.clear();
        try_resize(&mut m.router_logits, n * n_exp, 0.0, "router logits")?;
        acts.matmul(&moe.router.weight(file), &mut m.router_logits, pool)?;
        route(
            &m.router_logits,
            n_exp,
            self.hp.n_expert_used,
            &mut m.routes,
            &mut m.order,
        );

        // Shared expert on every token.
        swiglu_ffn(
            &mut acts,
            &moe.shared_gate.weight(file),
            &moe.shared_up.weight(file),
            &moe.shared_down.weight(file),
            ffn,
            out,
            pool,
        )?;

        // Routed experts, each on the gated inputs of its tokens.
        for (e, tokens) in m.routes.iter().enumerate() {
            if tokens.is_empty() {
                continue;
            }
            self.residency
                .before_use(file, moe.moe_index, e, tokens.len());
            m.inputs.clear();
            for &(t, gate) in tokens {
                m.inputs
                    .extend(x[t * d..(t + 1) * d].iter().map(|v| v * gate));
            }
            try_resize(&mut m.expert_out, tokens.len() * d, 0.0, "expert output")?;
            swiglu_ffn(
                &mut Activations::new(&m.inputs, d, acts_scratch),
                &moe.gate_exps.weight(file, e),
                &moe.up_exps.weight(file, e),
                &moe.down_exps.weight(file, e),
                ffn,
                &mut m.expert_out,
                pool,
            )?;
            for (row, &(t, _)) in m.expert_out.chunks_exact(d).zip(tokens) {
                ops::add_assign(&mut out[t * d..(t + 1) * d], row);
            }
        }
        Ok(())
    }
}

/// The router matrix, with an error naming the expert count when its rows disagree with it.
fn router(file: &GgufFile, name: &str, n_embd: usize, n_expert: usize) -> Result<TensorRef> {
    if let Some(view) = file.tensor(name) {
        let dims = &view.info.dims;
        if dims.len() == 2 && dims[0] == n_embd as u64 && dims[1] != n_expert as u64 {
            return Err(Error::InvalidModel(format!(
                "tensor {name:?} routes to {} experts but expert_count is {n_expert}",
                dims[1]
            )));
        }
    }
    matrix_ref(file, name, &[n_embd, n_expert])
}

/// A shared-expert matrix, with an error that says what a missing one means.
fn shared_expert(file: &GgufFile, name: &str, n_in: usize, n_out: usize) -> Result<TensorRef> {
    optional_matrix_ref(file, name, &[n_in, n_out])?.ok_or_else(|| {
        Error::InvalidModel(format!(
            "tensor {name:?} is missing: Llama 4 MoE layers need a shared expert"
        ))
    })
}

/// For each expert, the tokens routed to it with their gates (into `m.routes`): each token
/// goes to the `k` experts with the highest raw router logits (ties to the lower index),
/// gated by the sigmoid of the logit.
fn route(
    logits: &[f32],
    n_expert: usize,
    k: usize,
    routes: &mut Vec<Vec<(usize, f32)>>,
    order: &mut Vec<usize>,
) {
    routes.resize_with(n_expert, Vec::new);
    routes.iter_mut().for_each(Vec::clear);
    for (t, row) in logits.chunks_exact(n_expert).enumerate() {
        order.clear();
        order.extend(0..n_expert);
        order.sort_unstable_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        for &e in &order[..k] {
            routes[e].push((t, sigmoid(row[e])));
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_top_k_on_raw_logits_with_sigmoid_gates() {
        let logits = [
            0.5, -1.0, 2.0, 2.0, /* token 1 */ -3.0, -2.0, -1.0, -4.0,
        ];
        let mut m = MoeScratch::default();
        route(&logits, 4, 2, &mut m.routes, &mut m.order);
        let routes = &m.routes;
        assert_eq!(routes[2], vec![(0, sigmoid(2.0)), (1, sigmoid(-1.0))]);
        assert_eq!(routes[3], vec![(0, sigmoid(2.0))]);
        assert_eq!(routes[1], vec![(1, sigmoid(-2.0))]);
        assert!(routes[0].is_empty());
        let gate = routes[2][0].1;
        assert!((gate - 0.880_797).abs() < 1e-6);
    }
}
