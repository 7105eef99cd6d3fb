//! The `llama` architecture (Llama 2/3, SmolLM, TinyLlama, …), written top to bottom in ops.

use fennec_quant::GgmlType;

use super::hparams::LlamaHparams;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::kv_cache::KvCache;
use crate::ops::{self, Activations, AttentionShape, ThreadPool, Weight};

/// Where a tensor lives in the file, with its matrix shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TensorRef {
    ty: GgmlType,
    n_in: usize,
    n_out: usize,
    start: usize,
    len: usize,
}

impl TensorRef {
    fn weight<'a>(&self, file: &'a [u8]) -> Weight<'a> {
        Weight {
            ty: self.ty,
            n_in: self.n_in,
            n_out: self.n_out,
            data: &file[self.start..self.start + self.len],
        }
    }

    fn f32s(&self, file: &[u8]) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.n_in * self.n_out];
        fennec_quant::dequantize_row(self.ty, &file[self.start..self.start + self.len], &mut out)?;
        Ok(out)
    }
}

/// Looks up tensor `name`, checking its dims (GGML order) against `dims`.
pub(crate) fn tensor_ref(file: &GgufFile, name: &str, dims: &[usize]) -> Result<TensorRef> {
    optional_ref(file, name, dims)?
        .ok_or_else(|| Error::InvalidModel(format!("tensor {name:?} is missing")))
}

/// Like [`tensor_ref`] but `None` when the tensor is absent.
pub(crate) fn optional_ref(
    file: &GgufFile,
    name: &str,
    dims: &[usize],
) -> Result<Option<TensorRef>> {
    let Some(view) = file.tensor(name) else {
        return Ok(None);
    };
    let found: Vec<u64> = view.info.dims.clone();
    let mut expected: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
    // Trailing dims of 1 are the same shape.
    let trim = |v: &mut Vec<u64>| {
        while v.len() > 1 && v.last() == Some(&1) {
            v.pop();
        }
    };
    let mut found_trimmed = found.clone();
    trim(&mut found_trimmed);
    trim(&mut expected);
    if found_trimmed != expected {
        return Err(Error::InvalidModel(format!(
            "tensor {name:?} has dims {found:?}, expected {expected:?}"
        )));
    }
    let base = view.data.as_ptr() as usize - file.as_bytes().as_ptr() as usize;
    Ok(Some(TensorRef {
        ty: view.info.ty,
        n_in: dims[0],
        n_out: dims[1..].iter().product(),
        start: base,
        len: view.data.len(),
    }))
}

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
pub struct Llama {
    /// Hyperparameters.
    pub hp: LlamaHparams,
    token_embd: TensorRef,
    output_norm: Vec<f32>,
    output: TensorRef,
    layers: Vec<Layer>,
}

fn optional_f32s(file: &GgufFile, name: &str, dims: &[usize]) -> Result<Option<Vec<f32>>> {
    optional_ref(file, name, dims)?
        .map(|r| r.f32s(file.as_bytes()))
        .transpose()
}

fn f32s(file: &GgufFile, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
    tensor_ref(file, name, dims)?.f32s(file.as_bytes())
}

impl Llama {
    /// Validates every tensor's presence and shape against the metadata.
    pub fn load(file: &GgufFile, arch: &str) -> Result<Self> {
        let embd = file
            .tensor("token_embd.weight")
            .ok_or_else(|| Error::InvalidModel("tensor \"token_embd.weight\" is missing".into()))?;
        let embd_rows = embd.info.dims.get(1).copied().unwrap_or(1) as usize;
        let mut hp = LlamaHparams::from_metadata(file.metadata(), arch, embd_rows)?;
        let (d, v) = (hp.n_embd, hp.n_vocab);
        let q_dim = hp.n_head * hp.head_dim;
        let kv_dim = hp.n_head_kv * hp.head_dim;
        hp.rope.freq_factors = optional_f32s(file, "rope_freqs.weight", &[hp.rope.n_rot / 2])?;
        let token_embd = tensor_ref(file, "token_embd.weight", &[d, v])?;
        let output = optional_ref(file, "output.weight", &[d, v])?.unwrap_or(token_embd);
        let layers = (0..hp.n_layer)
            .map(|i| {
                let name = |t: &str| format!("blk.{i}.{t}");
                Ok(Layer {
                    attn_norm: f32s(file, &name("attn_norm.weight"), &[d])?,
                    wq: tensor_ref(file, &name("attn_q.weight"), &[d, q_dim])?,
                    wk: tensor_ref(file, &name("attn_k.weight"), &[d, kv_dim])?,
                    wv: tensor_ref(file, &name("attn_v.weight"), &[d, kv_dim])?,
                    wo: tensor_ref(file, &name("attn_output.weight"), &[q_dim, d])?,
                    bq: optional_f32s(file, &name("attn_q.bias"), &[q_dim])?,
                    bk: optional_f32s(file, &name("attn_k.bias"), &[kv_dim])?,
                    bv: optional_f32s(file, &name("attn_v.bias"), &[kv_dim])?,
                    bo: optional_f32s(file, &name("attn_output.bias"), &[d])?,
                    ffn_norm: f32s(file, &name("ffn_norm.weight"), &[d])?,
                    w_gate: tensor_ref(file, &name("ffn_gate.weight"), &[d, hp.n_ff])?,
                    w_up: tensor_ref(file, &name("ffn_up.weight"), &[d, hp.n_ff])?,
                    w_down: tensor_ref(file, &name("ffn_down.weight"), &[hp.n_ff, d])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let model = Self {
            output_norm: f32s(file, "output_norm.weight", &[d])?,
            hp,
            token_embd,
            output,
            layers,
        };
        model.check_kernels()?;
        Ok(model)
    }

    /// Refuses at load time any weight type the kernels cannot multiply.
    fn check_kernels(&self) -> Result<()> {
        let mut refs = vec![self.token_embd, self.output];
        for l in &self.layers {
            refs.extend([l.wq, l.wk, l.wv, l.wo, l.w_gate, l.w_up, l.w_down]);
        }
        for r in refs {
            if fennec_quant::dot::activation_type(r.ty).is_none() {
                return Err(Error::InvalidModel(format!(
                    "weights of type {} are not supported yet",
                    r.ty
                )));
            }
        }
        Ok(())
    }

    /// K/V row width of each layer.
    pub fn kv_row_lens(&self) -> Vec<usize> {
        vec![self.hp.n_head_kv * self.hp.head_dim; self.hp.n_layer]
    }

    /// Runs `tokens` at `positions` (each token's cache cell is its position) and returns
    /// the logits of the rows flagged in `want_logits`, back to back.
    pub fn forward(
        &self,
        file: &[u8],
        pool: &ThreadPool,
        kv: &mut KvCache,
        tokens: &[u32],
        positions: &[usize],
        want_logits: &[bool],
    ) -> Result<Vec<f32>> {
        let hp = &self.hp;
        let n = tokens.len();
        let (d, hd) = (hp.n_embd, hp.head_dim);
        let q_dim = hp.n_head * hd;
        let kv_dim = hp.n_head_kv * hd;

        let mut x = vec![0.0f32; n * d];
        let embd = self.token_embd.weight(file);
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            embd.row_to_f32(t as usize, row)?;
        }

        let mut h = vec![0.0f32; n * d];
        let mut q = vec![0.0f32; n * q_dim];
        let mut k = vec![0.0f32; n * kv_dim];
        let mut v = vec![0.0f32; n * kv_dim];
        let mut attn = vec![0.0f32; n * q_dim];
        let mut gate = vec![0.0f32; n * hp.n_ff];
        let mut up = vec![0.0f32; n * hp.n_ff];
        let shape = AttentionShape {
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim: hd,
            scale: 1.0 / (hd as f32).sqrt(),
        };
        let causal = |t: usize| (0..=positions[t]).collect::<Vec<_>>();

        for (il, layer) in self.layers.iter().enumerate() {
            // Attention block.
            h.copy_from_slice(&x);
            ops::rms_norm(&mut h, &layer.attn_norm, hp.rms_eps);
            let mut acts = Activations::new(&h, d);
            acts.matmul(&layer.wq.weight(file), &mut q, pool)?;
            acts.matmul(&layer.wk.weight(file), &mut k, pool)?;
            acts.matmul(&layer.wv.weight(file), &mut v, pool)?;
            for (buf, bias) in [
                (&mut q, &layer.bq),
                (&mut k, &layer.bk),
                (&mut v, &layer.bv),
            ] {
                if let Some(b) = bias {
                    ops::add_bias(buf, b);
                }
            }
            hp.rope.apply(&mut q, hd, positions);
            hp.rope.apply(&mut k, hd, positions);
            let cache = &mut kv.layers[il];
            for ((kr, vr), &pos) in k
                .chunks_exact(kv_dim)
                .zip(v.chunks_exact(kv_dim))
                .zip(positions)
            {
                cache.store(pos, kr, vr)?;
            }
            ops::attention(&q, n, cache, &causal, shape, &mut attn, pool);
            Activations::new(&attn, q_dim).matmul(&layer.wo.weight(file), &mut h, pool)?;
            if let Some(b) = &layer.bo {
                ops::add_bias(&mut h, b);
            }
            ops::add_assign(&mut x, &h);

            // Feed-forward block.
            h.copy_from_slice(&x);
            ops::rms_norm(&mut h, &layer.ffn_norm, hp.rms_eps);
            let mut acts = Activations::new(&h, d);
            acts.matmul(&layer.w_gate.weight(file), &mut gate, pool)?;
            acts.matmul(&layer.w_up.weight(file), &mut up, pool)?;
            ops::swiglu(&mut gate, &up);
            Activations::new(&gate, hp.n_ff).matmul(&layer.w_down.weight(file), &mut h, pool)?;
            ops::add_assign(&mut x, &h);
        }

        // Only the rows whose logits are wanted go through the output head.
        let rows: Vec<f32> = x
            .chunks_exact(d)
            .zip(want_logits)
            .filter(|(_, &w)| w)
            .flat_map(|(r, _)| r.iter().copied())
            .collect();
        let n_out = rows.len() / d;
        let mut normed = rows;
        ops::rms_norm(&mut normed, &self.output_norm, hp.rms_eps);
        let mut logits = vec![0.0f32; n_out * hp.n_vocab];
        if n_out > 0 {
            Activations::new(&normed, d).matmul(&self.output.weight(file), &mut logits, pool)?;
        }
        Ok(logits)
    }
}
