//! A Whisper model loaded from GGUF (`general.architecture = whisper`): its shape from the
//! `whisper.*` keys, its special tokens, and where each weight lies in the mapped file.

use std::path::Path;
use std::sync::Arc;

use super::ggml_bin;
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, Metadata};
use crate::model::weights::{matrix_ref, tensor_ref, TensorRef};
use crate::model::LoadOptions;
use crate::ops::{ThreadPool, Weight};
use crate::tokenizer::Tokenizer;
use fennec_quant::matmul::WeightLayout;
use fennec_quant::GgmlType;

/// Shape of a Whisper model (read from the `whisper.*` keys and the tensors).
#[derive(Clone, Debug, PartialEq)]
pub struct WhisperHparams {
    /// Mel bins of the input (`whisper.audio.num_mel_bins`, 80).
    pub n_mels: usize,
    /// Sample rate the model was trained on (`whisper.audio.sample_rate`, 16000).
    pub sample_rate: u32,
    /// FFT window (`whisper.audio.n_fft`, 400).
    pub n_fft: usize,
    /// Samples between frames (`whisper.audio.hop_length`, 160).
    pub hop_length: usize,
    /// Seconds in one encoder window (`whisper.audio.chunk_length_s`, 30).
    pub chunk_length_s: usize,
    /// Encoder positions (`whisper.encoder.context_length`, 1500).
    pub n_audio_ctx: usize,
    /// Encoder width (`whisper.encoder.embedding_length`).
    pub n_audio_embd: usize,
    /// Encoder attention heads.
    pub n_audio_head: usize,
    /// Encoder blocks.
    pub n_audio_layer: usize,
    /// Decoder positions (`whisper.decoder.context_length`, 448).
    pub n_text_ctx: usize,
    /// Decoder width (equal to the encoder's in every Whisper).
    pub n_text_embd: usize,
    /// Decoder attention heads.
    pub n_text_head: usize,
    /// Decoder blocks.
    pub n_text_layer: usize,
    /// MLP width (`whisper.feed_forward_length`, 4 × width).
    pub n_ff: usize,
    /// Vocabulary size (rows of the token embedding).
    pub n_vocab: usize,
    /// LayerNorm epsilon.
    pub eps: f32,
    /// Whether the model is multilingual (takes language and task tokens).
    pub multilingual: bool,
}

impl WhisperHparams {
    /// Mel frames of one encoder window (3000: twice the encoder positions).
    pub fn n_window_frames(&self) -> usize {
        2 * self.n_audio_ctx
    }

    /// Audio samples of one encoder window (480 000).
    pub fn n_window_samples(&self) -> usize {
        self.n_window_frames() * self.hop_length
    }
}

/// The special token ids of a Whisper vocabulary (`whisper.token.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct WhisperTokens {
    /// End of transcript.
    pub eot: u32,
    /// Start of transcript.
    pub sot: u32,
    /// Task: translate to English.
    pub translate: u32,
    /// Task: transcribe.
    pub transcribe: u32,
    /// Start of a language-model-only prompt.
    pub start_of_lm: u32,
    /// Start of the previous window's text.
    pub start_of_prev: u32,
    /// The token whose probability at the start-of-transcript position says "no speech".
    pub no_speech: u32,
    /// No timestamps in the output.
    pub no_timestamps: u32,
    /// First timestamp token (`<|0.00|>`); every id from here up is a timestamp.
    pub timestamp_begin: u32,
    /// First language token (`<|en|>`), multilingual models only.
    pub language_first: Option<u32>,
    /// Number of language tokens.
    pub language_count: usize,
    /// Ids never produced (faster-whisper's `suppress_tokens=[-1]`, `whisper.suppress_ids`).
    pub suppress: Vec<u32>,
    /// Ids not produced at the first step (`whisper.suppress_ids_begin`; faster-whisper's
    /// `suppress_blank`: the space and end of transcript).
    pub suppress_begin: Vec<u32>,
}

/// A matrix the model multiplies by: in the file's mapping, or widened to f32 at load.
#[derive(Debug)]
pub(super) enum Matrix {
    /// As stored.
    Mapped(TensorRef),
    /// An f32 copy of an F16/BF16 matrix: multiplying it keeps activations in f32 instead
    /// of rounding them to 16 bits, which the encoder's 1e-3 accuracy needs.
    Widened {
        n_in: usize,
        n_out: usize,
        data: Vec<f32>,
    },
}

impl Matrix {
    /// The matrix as the matmul takes it.
    pub fn weight<'a>(&'a self, file: &'a [u8]) -> Weight<'a> {
        match self {
            Matrix::Mapped(r) => r.weight(file),
            Matrix::Widened { n_in, n_out, data } => Weight {
                ty: GgmlType::F32,
                n_in: *n_in,
                n_out: *n_out,
                layout: WeightLayout::Rows,
                data: fennec_quant::bytes::f32_bytes(data),
            },
        }
    }

    /// `r`, widened to f32 when `widen` is set and it is stored as F16 or BF16.
    fn new(file: &GgufFile, r: TensorRef, widen: bool) -> Result<Self> {
        if widen && matches!(r.ty, GgmlType::F16 | GgmlType::BF16) {
            Ok(Matrix::Widened {
                n_in: r.n_in,
                n_out: r.n_out,
                data: r.f32s(file.as_bytes())?,
            })
        } else {
            Ok(Matrix::Mapped(r))
        }
    }
}

impl WhisperWeights {
    /// Every matrix still in the mapping (the tied token embedding among them), for
    /// repacking at load.
    fn mapped_matrices_mut(&mut self) -> Vec<&mut TensorRef> {
        let mut all: Vec<&mut Matrix> = vec![&mut self.conv1, &mut self.conv2];
        for blk in self.enc_blocks.iter_mut().chain(&mut self.dec_blocks) {
            let Block {
                attn,
                cross,
                up,
                down,
                ..
            } = blk;
            for a in std::iter::once(attn).chain(cross.as_mut().map(|c| &mut c.2)) {
                all.extend([&mut a.q, &mut a.k, &mut a.v, &mut a.o]);
            }
            all.extend([up, down]);
        }
        let mut out: Vec<&mut TensorRef> = all
            .into_iter()
            .filter_map(|m| match m {
                Matrix::Mapped(r) => Some(r),
                Matrix::Widened { .. } => None,
            })
            .collect();
        out.push(&mut self.token_embd);
        out
    }
}

/// One encoder or decoder block's tensors. Cross-attention is absent in encoder blocks.
#[derive(Debug)]
pub(super) struct Block {
    pub attn_ln_w: Vec<f32>,
    pub attn_ln_b: Vec<f32>,
    pub attn: AttentionWeights,
    pub cross: Option<(Vec<f32>, Vec<f32>, AttentionWeights)>,
    pub mlp_ln_w: Vec<f32>,
    pub mlp_ln_b: Vec<f32>,
    pub up: Matrix,
    pub up_b: Vec<f32>,
    pub down: Matrix,
    pub down_b: Vec<f32>,
}

/// Query, key (no bias), value and output projections of one attention.
#[derive(Debug)]
pub(super) struct AttentionWeights {
    pub q: Matrix,
    pub q_b: Vec<f32>,
    pub k: Matrix,
    pub v: Matrix,
    pub v_b: Vec<f32>,
    pub o: Matrix,
    pub o_b: Vec<f32>,
}

/// Every tensor of the model.
#[derive(Debug)]
pub(super) struct WhisperWeights {
    /// `[n_mels, 201]` Slaney filters, row per mel bin.
    pub mel_filters: Vec<f32>,
    /// Conv kernels as matrices: `d` rows of `in · 3` (input channel major, tap minor).
    pub conv1: Matrix,
    pub conv1_b: Vec<f32>,
    pub conv2: Matrix,
    pub conv2_b: Vec<f32>,
    /// `[n_audio_ctx × d]` sinusoidal positions.
    pub enc_pos: Vec<f32>,
    pub enc_blocks: Vec<Block>,
    pub ln_post_w: Vec<f32>,
    pub ln_post_b: Vec<f32>,
    /// `[n_vocab × d]`: the input embedding and, tied, the output projection.
    pub token_embd: TensorRef,
    /// `[n_text_ctx × d]` learned positions.
    pub dec_pos: Vec<f32>,
    pub dec_blocks: Vec<Block>,
    pub ln_w: Vec<f32>,
    pub ln_b: Vec<f32>,
}

/// A loaded Whisper model: shareable between threads (`Arc<WhisperModel>`); weights stay in
/// the file's mapping.
pub struct WhisperModel {
    pub(super) file: GgufFile,
    pub(super) hp: WhisperHparams,
    pub(super) tokens: WhisperTokens,
    pub(super) w: WhisperWeights,
    pub(super) pool: Arc<ThreadPool>,
    pub(super) tokenizer: Arc<Tokenizer>,
    /// The encoder's activations between passes (about 25 MB for tiny at a full window).
    pub(super) encoder_scratch: std::sync::Mutex<Option<super::encoder::EncoderBuffers>>,
}

impl std::fmt::Debug for WhisperModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperModel")
            .field("hparams", &self.hp)
            .field("threads", &self.pool.n_threads())
            .finish_non_exhaustive()
    }
}

// Bindings share one speech model between threads.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<WhisperModel>();
};

impl WhisperModel {
    /// Maps and validates the Whisper GGUF at `path` (or reads a whisper.cpp `ggml-*.bin`
    /// into memory: see [`crate::speech::gguf_from_ggml_bin`]), checks every tensor, builds
    /// the tokenizer and starts `opts.n_threads` worker threads. Weights stay in the mapping,
    /// repacked in place when `opts.repack` is set, except F16/BF16 encoder matrices: those
    /// are widened to f32 copies at load (twice their size in memory, 30 MB for tiny), so
    /// that the encoder multiplies f32 activations — rounding them to f16 as ggml does
    /// moves tiny.en's encoder output by 2e-3, widening keeps it within 3e-5 of
    /// CTranslate2's f32 compute.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Io`] / [`crate::ErrorKind::InvalidGguf`] for an unreadable or
    /// invalid file, [`crate::ErrorKind::Unsupported`] when it is not a Whisper model,
    /// [`crate::ErrorKind::InvalidModel`] for missing or misshapen tensors and keys or a
    /// malformed `.bin`.
    pub fn load(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Arc<Self>> {
        let path = path.as_ref();
        let file = ggml_bin::open_either(|| GgufFile::open(path), || ggml_bin::open(path))?;
        Self::from_file(file, opts)
    }

    /// Loads the model stored in `len` bytes of `file` from `offset` (`len = 0`: to the end):
    /// a model inside an app bundle, mapped, not copied (a whisper.cpp `.bin` is copied).
    pub fn load_range(
        file: &std::fs::File,
        offset: u64,
        len: u64,
        opts: &LoadOptions,
    ) -> Result<Arc<Self>> {
        let gguf = ggml_bin::open_either(
            || GgufFile::open_range(file, offset, len),
            || ggml_bin::open_range(file, offset, len),
        )?;
        Self::from_file(gguf, opts)
    }

    /// Builds a model from an already opened GGUF file, with its own worker threads.
    pub fn from_file(mut file: GgufFile, opts: &LoadOptions) -> Result<Arc<Self>> {
        let md = file.metadata();
        let arch = md
            .get_str("general.architecture")
            .map_err(|e| Error::InvalidModel(e.to_string()))?;
        if arch != "whisper" {
            return Err(Error::Unsupported(format!(
                "general.architecture is {arch:?}; a speech-to-text model has \"whisper\""
            )));
        }
        let mut hp = read_hparams(md)?;
        let mut w = load_weights(&file, &mut hp)?;
        let tokens = read_tokens(md, &hp)?;
        let tokenizer = Tokenizer::from_gguf(md)
            .map_err(|e| Error::InvalidModel(format!("whisper: tokenizer: {e}")))?;
        if tokenizer.vocab_size() != hp.n_vocab {
            return Err(Error::InvalidModel(format!(
                "whisper: the tokenizer has {} tokens but the token embedding {} rows",
                tokenizer.vocab_size(),
                hp.n_vocab
            )));
        }
        if opts.repack {
            crate::model::repack::repack_matrices(&mut file, w.mapped_matrices_mut(), Vec::new());
        }
        let pool = Arc::new(ThreadPool::new(opts.n_threads, opts.idle_spin)?);
        tracing::info!(
            layers = hp.n_audio_layer,
            width = hp.n_audio_embd,
            vocab = hp.n_vocab,
            threads = pool.n_threads(),
            "whisper model loaded"
        );
        Ok(Arc::new(Self {
            file,
            hp,
            tokens,
            w,
            pool,
            tokenizer: Arc::new(tokenizer),
            encoder_scratch: std::sync::Mutex::new(None),
        }))
    }

    /// The model's shape.
    pub fn hparams(&self) -> &WhisperHparams {
        &self.hp
    }

    /// The special token ids.
    pub fn special_tokens(&self) -> &WhisperTokens {
        &self.tokens
    }

    /// The tokenizer (decodes transcript ids to text).
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    /// The GGUF file.
    pub fn gguf(&self) -> &GgufFile {
        &self.file
    }

    /// Worker threads.
    pub fn n_threads(&self) -> usize {
        self.pool.n_threads()
    }

    /// The language token of `code` (`"en"` → `<|en|>`) on a multilingual model.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] when the vocabulary has no such language token.
    pub fn language_token(&self, code: &str) -> Result<u32> {
        // Hebrew is `he` in OpenAI's vocabulary and `iw` in Hugging Face's.
        let alias = match code {
            "he" => Some("iw"),
            "iw" => Some("he"),
            _ => None,
        };
        let id = self
            .tokenizer
            .token_id(&format!("<|{code}|>"))
            .or_else(|| alias.and_then(|a| self.tokenizer.token_id(&format!("<|{a}|>"))));
        let first = self.tokens.language_first;
        match (id, first) {
            (Some(id), Some(first))
                if id >= first && ((id - first) as usize) < self.tokens.language_count =>
            {
                Ok(id)
            }
            _ => Err(Error::InvalidArgument(format!(
                "language {code:?} is not one of this model's languages"
            ))),
        }
    }
}

fn md_err(e: impl std::fmt::Display) -> Error {
    Error::InvalidModel(format!("whisper: {e}"))
}

fn md_size(md: &Metadata, key: &str, max: usize) -> Result<usize> {
    let v = md.get_uint(key).map_err(md_err)?;
    usize::try_from(v)
        .ok()
        .filter(|&v| (1..=max).contains(&v))
        .ok_or_else(|| md_err(format!("{key} is {v}; expected 1..={max}")))
}

fn md_size_or(md: &Metadata, key: &str, max: usize, default: usize) -> Result<usize> {
    if md.contains(key) {
        md_size(md, key, max)
    } else {
        Ok(default)
    }
}

fn md_id(md: &Metadata, name: &str) -> Result<u32> {
    let key = format!("whisper.token.{name}_id");
    let v = md.get_uint(&key).map_err(md_err)?;
    u32::try_from(v).map_err(|_| md_err(format!("{key} is {v}")))
}

fn md_ids(md: &Metadata, key: &str) -> Result<Vec<u32>> {
    if !md.contains(key) {
        return Ok(Vec::new());
    }
    let ids: Vec<u32> = if let Ok(v) = md.get_array_of::<i32>(key) {
        v.iter().filter_map(|&x| u32::try_from(x).ok()).collect()
    } else if let Ok(v) = md.get_array_of::<u32>(key) {
        v.to_vec()
    } else {
        return Err(md_err(format!("{key} is not an array of token ids")));
    };
    Ok(ids)
}

fn read_hparams(md: &Metadata) -> Result<WhisperHparams> {
    const W: usize = 1 << 14;
    let eps = match md
        .get_opt_scalar::<f32>("whisper.attention.layer_norm_epsilon")
        .map_err(md_err)?
    {
        Some(&e) if e.is_finite() && e >= 0.0 => e,
        Some(&e) => return Err(md_err(format!("layer_norm_epsilon is {e}"))),
        None => 1e-5,
    };
    let multilingual = match md.get("whisper.multilingual") {
        None => false,
        Some(crate::gguf::Value::Bool(b)) => *b,
        Some(_) => md.get_uint("whisper.multilingual").map_err(md_err)? != 0,
    };
    let sample_rate = md_size_or(md, "whisper.audio.sample_rate", 1 << 20, 16000)?;
    let hp = WhisperHparams {
        n_mels: md_size_or(md, "whisper.audio.num_mel_bins", 512, 80)?,
        sample_rate: sample_rate as u32,
        n_fft: md_size_or(md, "whisper.audio.n_fft", 1 << 14, 400)?,
        hop_length: md_size_or(md, "whisper.audio.hop_length", 1 << 14, 160)?,
        chunk_length_s: md_size_or(md, "whisper.audio.chunk_length_s", 600, 30)?,
        n_audio_ctx: md_size(md, "whisper.encoder.context_length", 1 << 16)?,
        n_audio_embd: md_size(md, "whisper.encoder.embedding_length", W)?,
        n_audio_head: md_size(md, "whisper.encoder.attention.head_count", 1024)?,
        n_audio_layer: md_size(md, "whisper.encoder.block_count", 1024)?,
        n_text_ctx: md_size(md, "whisper.decoder.context_length", 1 << 16)?,
        n_text_embd: md_size(md, "whisper.decoder.embedding_length", W)?,
        n_text_head: md_size(md, "whisper.decoder.attention.head_count", 1024)?,
        n_text_layer: md_size(md, "whisper.decoder.block_count", 1024)?,
        n_ff: md_size(md, "whisper.feed_forward_length", 1 << 17)?,
        n_vocab: 0, // from the token embedding
        eps,
        multilingual,
    };
    if hp.n_audio_embd != hp.n_text_embd {
        return Err(md_err(format!(
            "encoder width {} differs from decoder width {}",
            hp.n_audio_embd, hp.n_text_embd
        )));
    }
    for (width, heads, what) in [
        (hp.n_audio_embd, hp.n_audio_head, "encoder"),
        (hp.n_text_embd, hp.n_text_head, "decoder"),
    ] {
        if width % heads != 0 {
            return Err(md_err(format!(
                "{what} width {width} is not a whole number of {heads} heads"
            )));
        }
    }
    if hp.n_fft < 2 || hp.n_fft > hp.n_window_samples() {
        return Err(md_err(format!("n_fft {} is out of range", hp.n_fft)));
    }
    Ok(hp)
}

fn read_tokens(md: &Metadata, hp: &WhisperHparams) -> Result<WhisperTokens> {
    let language_first = if md.contains("whisper.token.language_first_id") {
        Some(md_id(md, "language_first")?)
    } else {
        None
    };
    let language_count = if md.contains("whisper.token.language_count") {
        md.get_uint("whisper.token.language_count")
            .map_err(md_err)? as usize
    } else {
        0
    };
    let t = WhisperTokens {
        eot: md_id(md, "eot")?,
        sot: md_id(md, "sot")?,
        translate: md_id(md, "translate")?,
        transcribe: md_id(md, "transcribe")?,
        start_of_lm: md_id(md, "startoflm")?,
        start_of_prev: md_id(md, "startofprev")?,
        no_speech: md_id(md, "no_speech")?,
        no_timestamps: md_id(md, "no_timestamps")?,
        timestamp_begin: md_id(md, "timestamp_begin")?,
        language_first,
        language_count,
        suppress: md_ids(md, "whisper.suppress_ids")?,
        suppress_begin: md_ids(md, "whisper.suppress_ids_begin")?,
    };
    let n = hp.n_vocab as u64;
    let named = [
        t.eot,
        t.sot,
        t.translate,
        t.transcribe,
        t.start_of_lm,
        t.start_of_prev,
        t.no_speech,
        t.no_timestamps,
        t.timestamp_begin,
    ];
    if let Some(bad) = named
        .iter()
        .chain(&t.suppress)
        .chain(&t.suppress_begin)
        .find(|&&id| u64::from(id) >= n)
    {
        return Err(md_err(format!(
            "special token id {bad} is outside the {n}-token vocabulary"
        )));
    }
    if hp.multilingual && (language_first.is_none() || language_count == 0) {
        return Err(md_err(
            "a multilingual model needs whisper.token.language_first_id and language_count",
        ));
    }
    Ok(t)
}

/// A 1-D tensor of `n` floats, whatever trailing or leading dims of 1 it is stored with.
fn vector(file: &GgufFile, name: &str, n: usize) -> Result<Vec<f32>> {
    let view = file
        .tensor(name)
        .ok_or_else(|| Error::InvalidModel(format!("whisper: tensor {name:?} is missing")))?;
    let dims = &view.info.dims;
    let non_unit: Vec<u64> = dims.iter().copied().filter(|&d| d != 1).collect();
    if dims.iter().product::<u64>() != n as u64 || non_unit.len() > 1 {
        return Err(Error::InvalidModel(format!(
            "whisper: tensor {name:?} has dims {dims:?}, expected [{n}]"
        )));
    }
    tensor_ref(
        file,
        name,
        &dims.iter().map(|&d| d as usize).collect::<Vec<_>>(),
    )?
    .f32s(file.as_bytes())
}

/// A conv kernel `[3, c_in, c_out]` (GGML order) as a `[c_in·3, c_out]` matrix, widened to
/// f32 when F16/BF16.
fn conv(file: &GgufFile, name: &str, c_in: usize, c_out: usize) -> Result<Matrix> {
    let mut r = matrix_ref(file, name, &[3, c_in, c_out])?;
    r.n_in = 3 * c_in;
    r.n_out = c_out;
    if fennec_quant::row_bytes(r.ty, r.n_in).is_err() {
        return Err(Error::InvalidModel(format!(
            "whisper: {name} of type {} cannot be multiplied with rows of {}",
            r.ty, r.n_in
        )));
    }
    Matrix::new(file, r, true)
}

/// Matrix `name` of dims `[n_in, n_out]`, widened to f32 when `widen` is set.
fn matrix(file: &GgufFile, name: &str, n_in: usize, n_out: usize, widen: bool) -> Result<Matrix> {
    Matrix::new(file, matrix_ref(file, name, &[n_in, n_out])?, widen)
}

fn attention_weights(
    file: &GgufFile,
    prefix: &str,
    d: usize,
    widen: bool,
) -> Result<AttentionWeights> {
    let name = |s: &str| format!("{prefix}.{s}");
    Ok(AttentionWeights {
        q: matrix(file, &name("query.weight"), d, d, widen)?,
        q_b: vector(file, &name("query.bias"), d)?,
        k: matrix(file, &name("key.weight"), d, d, widen)?,
        v: matrix(file, &name("value.weight"), d, d, widen)?,
        v_b: vector(file, &name("value.bias"), d)?,
        o: matrix(file, &name("out.weight"), d, d, widen)?,
        o_b: vector(file, &name("out.bias"), d)?,
    })
}

/// An encoder block (`cross = false`, matrices widened to f32 when F16/BF16) or a decoder
/// block (`cross = true`, matrices as stored: decoding is bound by reading them).
fn block(file: &GgufFile, prefix: &str, d: usize, ff: usize, cross: bool) -> Result<Block> {
    let name = |s: &str| format!("{prefix}.{s}");
    let widen = !cross;
    let cross = if cross {
        Some((
            vector(file, &name("cross_attn_ln.weight"), d)?,
            vector(file, &name("cross_attn_ln.bias"), d)?,
            attention_weights(file, &name("cross_attn"), d, false)?,
        ))
    } else {
        None
    };
    Ok(Block {
        attn_ln_w: vector(file, &name("attn_ln.weight"), d)?,
        attn_ln_b: vector(file, &name("attn_ln.bias"), d)?,
        attn: attention_weights(file, &name("attn"), d, widen)?,
        cross,
        mlp_ln_w: vector(file, &name("mlp_ln.weight"), d)?,
        mlp_ln_b: vector(file, &name("mlp_ln.bias"), d)?,
        up: matrix(file, &name("mlp.0.weight"), d, ff, widen)?,
        up_b: vector(file, &name("mlp.0.bias"), ff)?,
        down: matrix(file, &name("mlp.2.weight"), ff, d, widen)?,
        down_b: vector(file, &name("mlp.2.bias"), d)?,
    })
}

/// Reads every tensor, setting `hp.n_vocab` from the token embedding.
fn load_weights(file: &GgufFile, hp: &mut WhisperHparams) -> Result<WhisperWeights> {
    let d = hp.n_audio_embd;
    let n_bins = hp.n_fft / 2 + 1;
    let mel_filters = tensor_ref(file, "mel_filters", &[n_bins, hp.n_mels])
        .map_err(|e| Error::InvalidModel(format!("whisper: {e}")))?
        .f32s(file.as_bytes())?;
    let emb = file
        .tensor("decoder.token_embedding.weight")
        .ok_or_else(|| {
            Error::InvalidModel(
                "whisper: tensor \"decoder.token_embedding.weight\" is missing".into(),
            )
        })?;
    hp.n_vocab = match emb.info.dims.as_slice() {
        [w, n] if *w == d as u64 && *n > 0 && *n < 1 << 24 => *n as usize,
        dims => {
            return Err(Error::InvalidModel(format!(
                "whisper: tensor \"decoder.token_embedding.weight\" has dims {dims:?}, expected \
                 [{d}, n_vocab]"
            )))
        }
    };
    let enc_blocks = (0..hp.n_audio_layer)
        .map(|i| block(file, &format!("encoder.blocks.{i}"), d, hp.n_ff, false))
        .collect::<Result<Vec<_>>>()?;
    let dec_blocks = (0..hp.n_text_layer)
        .map(|i| block(file, &format!("decoder.blocks.{i}"), d, hp.n_ff, true))
        .collect::<Result<Vec<_>>>()?;
    let pos = |name: &str, n: usize| -> Result<Vec<f32>> {
        tensor_ref(file, name, &[d, n])?.f32s(file.as_bytes())
    };
    Ok(WhisperWeights {
        mel_filters,
        conv1: conv(file, "encoder.conv1.weight", hp.n_mels, d)?,
        conv1_b: vector(file, "encoder.conv1.bias", d)?,
        conv2: conv(file, "encoder.conv2.weight", d, d)?,
        conv2_b: vector(file, "encoder.conv2.bias", d)?,
        enc_pos: pos("encoder.positional_embedding", hp.n_audio_ctx)?,
        enc_blocks,
        ln_post_w: vector(file, "encoder.ln_post.weight", d)?,
        ln_post_b: vector(file, "encoder.ln_post.bias", d)?,
        token_embd: matrix_ref(file, "decoder.token_embedding.weight", &[d, hp.n_vocab])?,
        dec_pos: pos("decoder.positional_embedding", hp.n_text_ctx)?,
        dec_blocks,
        ln_w: vector(file, "decoder.ln.weight", d)?,
        ln_b: vector(file, "decoder.ln.bias", d)?,
    })
}
