//! Hyperparameters of llama-family models, read from GGUF metadata with llama.cpp's defaults.

use crate::error::{Error, Result};
use crate::gguf::{Metadata, Value};
use crate::ops::{Rope, RopeMode};

/// Shape and numerics of a llama-family transformer.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaHparams {
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Hidden width of the feed-forward network.
    pub n_ff: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Elements per attention head.
    pub head_dim: usize,
    /// RMS norm epsilon.
    pub rms_eps: f32,
    /// Context length the model was trained with.
    pub n_ctx_train: usize,
    /// Rotary embedding.
    pub rope: Rope,
}

fn key(arch: &str, k: &str) -> String {
    format!("{arch}.{k}")
}

fn required_uint(md: &Metadata, k: &str) -> Result<usize> {
    let v = md.get_uint(k)?;
    usize::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| Error::InvalidModel(format!("{k} is {v}; it must be a positive size")))
}

fn optional_uint(md: &Metadata, k: &str) -> Result<Option<usize>> {
    if md.contains(k) {
        required_uint(md, k).map(Some)
    } else {
        Ok(None)
    }
}

fn optional_f32(md: &Metadata, k: &str) -> Result<Option<f32>> {
    Ok(md.get_opt_scalar::<f32>(k)?.copied())
}

/// An error unless `1 <= v <= max` for the size `{arch}.{name}`.
fn check_size(arch: &str, name: &str, v: usize, max: usize) -> Result<()> {
    if v == 0 || v > max {
        return Err(Error::InvalidModel(format!(
            "{arch}.{name} is {v}: expected 1..={max}"
        )));
    }
    Ok(())
}

impl LlamaHparams {
    /// Reads `{arch}.*` keys; `n_vocab` comes from the embedding tensor when no key says.
    pub fn from_metadata(md: &Metadata, arch: &str, embd_rows: usize) -> Result<Self> {
        let n_embd = required_uint(md, &key(arch, "embedding_length"))?;
        let n_layer = required_uint(md, &key(arch, "block_count"))?;
        let n_ff = required_uint(md, &key(arch, "feed_forward_length"))?;
        let n_head = required_uint(md, &key(arch, "attention.head_count"))?;
        let n_head_kv = optional_uint(md, &key(arch, "attention.head_count_kv"))?.unwrap_or(n_head);
        // Bounds far above any real model keep every product of sizes in range.
        for (name, v, max) in [
            ("embedding_length", n_embd, 1 << 20),
            ("block_count", n_layer, 1 << 12),
            ("feed_forward_length", n_ff, 1 << 22),
            ("attention.head_count", n_head, 1 << 12),
            ("attention.head_count_kv", n_head_kv, 1 << 12),
        ] {
            check_size(arch, name, v, max)?;
        }
        if n_head % n_head_kv != 0 {
            return Err(Error::InvalidModel(format!(
                "{n_head} query heads cannot be grouped over {n_head_kv} key/value heads"
            )));
        }
        let head_dim =
            optional_uint(md, &key(arch, "attention.key_length"))?.unwrap_or(n_embd / n_head);
        check_size(arch, "attention.key_length", head_dim, 1 << 14)?;
        let rms_eps = md.get_f32(&key(arch, "attention.layer_norm_rms_epsilon"))?;
        let n_ctx_train = optional_uint(md, &key(arch, "context_length"))?.unwrap_or(2048);
        let n_rot = optional_uint(md, &key(arch, "rope.dimension_count"))?.unwrap_or(head_dim);
        if n_rot > head_dim || n_rot % 2 != 0 {
            return Err(Error::InvalidModel(format!(
                "rope.dimension_count {n_rot} must be even and at most the head size {head_dim}"
            )));
        }
        let freq_base = optional_f32(md, &key(arch, "rope.freq_base"))?.unwrap_or(10000.0);
        let freq_scale = rope_freq_scale(md, arch)?;
        let n_vocab = match optional_uint(md, &key(arch, "vocab_size"))? {
            Some(n) if n != embd_rows => {
                return Err(Error::InvalidModel(format!(
                    "{arch}.vocab_size is {n} but token_embd.weight has {embd_rows} rows"
                )))
            }
            _ => embd_rows,
        };
        Ok(Self {
            n_vocab,
            n_embd,
            n_layer,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            rms_eps,
            n_ctx_train,
            rope: Rope {
                mode: RopeMode::Normal,
                n_rot,
                freq_base,
                freq_scale,
                freq_factors: None,
            },
        })
    }
}

/// `1 / factor` for linear RoPE scaling; 1 when there is none.
fn rope_freq_scale(md: &Metadata, arch: &str) -> Result<f32> {
    let kind = md.get_opt_scalar::<String>(&key(arch, "rope.scaling.type"))?;
    let factor = optional_f32(md, &key(arch, "rope.scaling.factor"))?
        .or(optional_f32(md, &key(arch, "rope.scale_linear"))?);
    match kind.map(String::as_str) {
        None | Some("none") | Some("linear") => {
            Ok(factor.filter(|f| *f > 0.0).map_or(1.0, |f| 1.0 / f))
        }
        Some(other) => Err(Error::Unsupported(format!(
            "RoPE scaling type {other:?} is not supported (none, linear)"
        ))),
    }
}

/// What Llama 4 adds to the llama hyperparameters. Values llama.cpp hard-codes are the
/// defaults; the keys named on each field override them (tiny test models need that).
#[derive(Clone, Debug, PartialEq)]
pub struct Llama4Hparams {
    /// The shared transformer shape (`feed_forward_length` is the dense layers' width).
    pub base: LlamaHparams,
    /// Routed experts per MoE layer (`expert_count`).
    pub n_expert: usize,
    /// Experts each token is routed to (`expert_used_count`).
    pub n_expert_used: usize,
    /// Width of each routed expert and of the shared expert (`expert_feed_forward_length`).
    pub n_ff_exp: usize,
    /// Every `moe_every`-th layer is MoE, the others dense (`interleave_moe_layer_step`).
    pub moe_every: usize,
    /// Every `nope_every`-th layer skips RoPE and attends globally (llama.cpp: 4).
    pub nope_every: usize,
    /// Chunk of chunked attention on RoPE layers; 0 = none (`attention.sliding_window`,
    /// Ollama's `attention.chunk_size`; llama.cpp: 8192).
    pub chunk_size: usize,
    /// Floor scale of NoPE layers' query temperature (`attention.temperature_length`; 8192).
    pub temp_length: f32,
    /// Strength of NoPE layers' query temperature (`attention.temperature_scale`; 0.1).
    pub temp_scale: f32,
    /// Unweighted RMS norm of Q and K after RoPE on RoPE layers (`attention.use_qk_norm`,
    /// Ollama's `use_qk_norm`; llama.cpp: on unless the model has 128 experts).
    pub use_qk_norm: bool,
}

/// How one Llama 4 layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Llama4LayerKind {
    /// RoPE on Q and K (otherwise NoPE with query temperature tuning).
    pub rope: bool,
    /// Attention limited to the query's chunk (otherwise causal over the whole context).
    pub chunked: bool,
    /// Unweighted RMS norm of Q and K heads after RoPE.
    pub qk_norm: bool,
    /// Mixture-of-experts feed-forward (otherwise a dense SwiGLU).
    pub moe: bool,
}

impl Llama4Hparams {
    /// Reads `llama4.*` keys; `n_vocab` comes from the embedding tensor when no key says.
    pub fn from_metadata(md: &Metadata, embd_rows: usize) -> Result<Self> {
        let arch = "llama4";
        let base = LlamaHparams::from_metadata(md, arch, embd_rows)?;
        let n_expert = required_uint(md, &key(arch, "expert_count"))?;
        let n_expert_used = required_uint(md, &key(arch, "expert_used_count"))?;
        if n_expert_used > n_expert {
            return Err(Error::InvalidModel(format!(
                "{arch}.expert_used_count is {n_expert_used} but the model has only {n_expert} experts"
            )));
        }
        let n_ff_exp = required_uint(md, &key(arch, "expert_feed_forward_length"))?;
        let moe_every = optional_uint(md, &key(arch, "interleave_moe_layer_step"))?.unwrap_or(1);
        for (name, v, max) in [
            ("expert_count", n_expert, 1 << 12),
            ("expert_used_count", n_expert_used, 1 << 12),
            ("expert_feed_forward_length", n_ff_exp, 1 << 22),
            ("interleave_moe_layer_step", moe_every, 1 << 12),
        ] {
            check_size(arch, name, v, max)?;
        }
        let chunk_size = match md.get_opt_uint(&key(arch, "attention.sliding_window"))? {
            Some(v) => Some(v),
            None => md.get_opt_uint(&key(arch, "attention.chunk_size"))?,
        };
        let chunk_size = usize::try_from(chunk_size.unwrap_or(8192))
            .map_err(|_| Error::InvalidModel(format!("{arch} chunk size does not fit")))?;
        let temp_length =
            optional_f32_lenient(md, &key(arch, "attention.temperature_length"))?.unwrap_or(8192.0);
        if temp_length <= 0.0 {
            return Err(Error::InvalidModel(format!(
                "{arch}.attention.temperature_length is {temp_length}; it must be positive"
            )));
        }
        let temp_scale =
            optional_f32_lenient(md, &key(arch, "attention.temperature_scale"))?.unwrap_or(0.1);
        let use_qk_norm = match md.get_opt_scalar::<bool>(&key(arch, "attention.use_qk_norm"))? {
            Some(&b) => b,
            None => match md.get_opt_scalar::<bool>(&key(arch, "use_qk_norm"))? {
                Some(&b) => b,
                None => n_expert != 128,
            },
        };
        Ok(Self {
            base,
            n_expert,
            n_expert_used,
            n_ff_exp,
            moe_every,
            nope_every: 4,
            chunk_size,
            temp_length,
            temp_scale,
            use_qk_norm,
        })
    }

    /// How layer `il` computes.
    pub fn layer_kind(&self, il: usize) -> Llama4LayerKind {
        let rope = !(il + 1).is_multiple_of(self.nope_every);
        Llama4LayerKind {
            rope,
            chunked: rope && self.chunk_size > 0,
            qk_norm: rope && self.use_qk_norm,
            moe: (il + 1).is_multiple_of(self.moe_every),
        }
    }

    /// The query temperature of NoPE layers at `pos`: `1 + s·ln(1 + ⌊(pos+1)/length⌋)`.
    pub fn temperature(&self, pos: usize) -> f32 {
        let steps = ((pos as f32 + 1.0) / self.temp_length).floor();
        1.0 + self.temp_scale * steps.ln_1p()
    }
}

/// An f32 key that may also be stored as an integer (converters differ).
fn optional_f32_lenient(md: &Metadata, k: &str) -> Result<Option<f32>> {
    let Some(value) = md.get(k) else {
        return Ok(None);
    };
    let v = match value {
        Value::F32(f) => Some(*f),
        Value::F64(f) => Some(*f as f32),
        other => other.as_u64_lossless().map(|u| u as f32),
    };
    v.map(Some).ok_or_else(|| {
        Error::InvalidModel(format!(
            "{k} must be a number, found {}",
            value.value_type().name()
        ))
    })
}
