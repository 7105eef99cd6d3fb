//! Hyperparameters of llama-family models, read from GGUF metadata with llama.cpp's defaults.

use crate::error::{Error, Result};
use crate::gguf::Metadata;
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

impl LlamaHparams {
    /// Reads `{arch}.*` keys; `n_vocab` comes from the embedding tensor when no key says.
    pub fn from_metadata(md: &Metadata, arch: &str, embd_rows: usize) -> Result<Self> {
        let n_embd = required_uint(md, &key(arch, "embedding_length"))?;
        let n_layer = required_uint(md, &key(arch, "block_count"))?;
        let n_ff = required_uint(md, &key(arch, "feed_forward_length"))?;
        let n_head = required_uint(md, &key(arch, "attention.head_count"))?;
        let n_head_kv = optional_uint(md, &key(arch, "attention.head_count_kv"))?.unwrap_or(n_head);
        if n_head % n_head_kv != 0 {
            return Err(Error::InvalidModel(format!(
                "{n_head} query heads cannot be grouped over {n_head_kv} key/value heads"
            )));
        }
        let head_dim =
            optional_uint(md, &key(arch, "attention.key_length"))?.unwrap_or(n_embd / n_head);
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
        Some(other) => Err(Error::InvalidModel(format!(
            "RoPE scaling type {other:?} is not supported (none, linear)"
        ))),
    }
}
