//! Loaded models: a validated GGUF file, its architecture's weights, its tokenizer and chat
//! template, and worker threads.

pub(crate) mod blocks;
mod experts;
pub(crate) mod ffn;
mod hparams;
mod llama;
mod llama4;
pub(crate) mod repack;
pub(crate) mod weights;

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use experts::{
    ExpertAdvice, ExpertLayerStats, ExpertResidencyOptions, ExpertStats, DEFAULT_EXPERT_LOOKAHEAD,
};
pub use hparams::{Llama4Hparams, Llama4LayerKind, LlamaHparams};

pub(crate) use blocks::Workspace;
use llama::Llama;
use llama4::Llama4;

use crate::backend::{Backend, CpuEncoder, DeviceSession};
use crate::chat::{ChatError, ChatTemplate};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::kv_cache::{KvCache, KvLayerSpec, KvType};
use crate::ops::ThreadPool;
use crate::tokenizer::{StreamDecoder, Tokenizer, TokenizerError};

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Worker threads (0 = one per core).
    pub n_threads: usize,
    /// How long an idle worker thread spins waiting for the next op before it yields and
    /// then sleeps. Spinning makes the ~250 small ops of a decoded token start in under a
    /// microsecond; zero saves battery (a phone on battery, a background assistant).
    pub idle_spin: Duration,
    /// Rewrite the dense Q4_0/Q4_1/Q8_0/Q4_K matrices at load into the row-lane panels this
    /// CPU's kernels read directly, where that is faster (x86 with AVX2 or AVX-512): in
    /// place in the private mapping, so resident memory stays the file's size. Decode runs
    /// about 3× faster per matrix; loading touches every dense weight once. Skipped when
    /// those matrices exceed half of physical memory (such a model pages from its file).
    /// MoE routed experts are repacked too when the whole model fits comfortably in the
    /// memory available at load (half of it); otherwise they stream from the
    /// file as stored.
    pub repack: bool,
    /// Hardware to run on instead of the CPU (e.g. `fennec-gpu`'s wgpu backend), or `None`
    /// for the CPU. A model loaded for a backend keeps its weights as the file stores them
    /// (no repacking). A model the backend cannot run (not `llama`, so far, or a weight type
    /// whose kernel failed its self-test on this driver) loads on the CPU with a warning:
    /// [`Model::backend`] tells which.
    pub backend: Option<Arc<dyn Backend>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            n_threads: 0,
            idle_spin: crate::ops::DEFAULT_IDLE_SPIN,
            repack: true,
            backend: None,
        }
    }
}

impl LoadOptions {
    /// Default options with `n_threads` worker threads.
    pub fn with_threads(n_threads: usize) -> Self {
        Self {
            n_threads,
            ..Self::default()
        }
    }
}

/// [`Model::fingerprint`] of `file`'s bytes as they are now.
fn file_fingerprint(file: &GgufFile) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(file.header_bytes());
    for info in file.tensor_infos() {
        if let Some(t) = file.tensor(&info.name) {
            h.update(&t.data[..t.data.len().min(64)]);
        }
    }
    h.finalize().into()
}

/// The architectures Fennec runs.
// One value per loaded model: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Architecture {
    /// `llama`: Llama 2/3, SmolLM, TinyLlama, …
    Llama(Llama),
    /// `llama4`: Llama 4 Scout and Maverick (text).
    Llama4(Llama4),
}

/// A model ready to run: shareable between threads and sessions (`Arc<Model>`).
///
/// The weights stay in the file's mapping; the tokenizer and chat template are built once at
/// load and shared by every session.
pub struct Model {
    file: GgufFile,
    arch: Architecture,
    pool: Arc<ThreadPool>,
    /// The tokenizer, or why it could not be built (reported when text is used).
    tokenizer: std::result::Result<Arc<Tokenizer>, Arc<TokenizerError>>,
    /// The compiled chat template, or why there is none.
    chat_template: std::result::Result<Arc<ChatTemplate>, Arc<ChatError>>,
    /// SHA-256 of the header and a sample of every tensor as stored in the file: computed
    /// at load when weights are repacked, else on first use.
    fingerprint: OnceLock<[u8; 32]>,
    /// Bytes of weights rewritten into row-lane panels at load ([`LoadOptions::repack`]).
    repacked_bytes: u64,
    /// The weight types of those matrices.
    repacked_types: Vec<fennec_quant::GgmlType>,
    /// Where sessions run, when not on the CPU.
    backend: Option<Arc<dyn Backend>>,
}

/// Where a session's micro-batches run, with its KV cache.
pub(crate) enum Engine {
    /// Fennec's CPU kernels; the cache in host memory.
    Cpu(KvCache),
    /// A backend's session, which owns its cache.
    Device(Box<dyn DeviceSession>),
}

// Bindings share one model between threads; keep it so.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Model>();
};

impl Model {
    /// Maps and validates `path`, checks every tensor the architecture needs, builds the
    /// tokenizer and chat template, and starts the worker threads. Weights stay in the
    /// mapping.
    ///
    /// # Errors
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when the file cannot be read,
    /// [`ErrorKind::InvalidGguf`](crate::ErrorKind::InvalidGguf) when it is not valid GGUF,
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) for an architecture or tensor
    /// type Fennec does not run, [`ErrorKind::InvalidModel`](crate::ErrorKind::InvalidModel)
    /// for missing or misshapen tensors.
    pub fn load(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Arc<Self>> {
        let file = GgufFile::open(path)?;
        Self::from_gguf(file, opts)
    }

    /// Loads the model stored in `len` bytes of `file` from `offset` (`len = 0`: to the
    /// end): a model inside an Android asset or an iOS bundle, opened as a descriptor. The
    /// range is mapped, not copied.
    pub fn load_range(file: &File, offset: u64, len: u64, opts: &LoadOptions) -> Result<Arc<Self>> {
        Self::from_gguf(GgufFile::open_range(file, offset, len)?, opts)
    }

    /// Builds a model from an already opened file.
    pub fn from_gguf(mut file: GgufFile, opts: &LoadOptions) -> Result<Arc<Self>> {
        let name = file
            .metadata()
            .get_str("general.architecture")
            .map_err(|e| Error::InvalidModel(e.to_string()))?
            .to_string();
        let mut arch = match name.as_str() {
            "llama" => Architecture::Llama(Llama::load(&file, &name)?),
            "llama4" => Architecture::Llama4(Llama4::load(&file)?),
            "whisper" => {
                return Err(Error::Unsupported(
                    "this is a Whisper speech-to-text model, not a text model: load it with \
                     fennec_core::speech::WhisperModel::load"
                        .into(),
                ))
            }
            _ => return Err(Error::UnknownArchitecture(name)),
        };
        // The fingerprint hashes the file's bytes as stored, so it is taken before any
        // rewrite: a session saved with repacking on restores with it off, and back.
        // A backend that cannot run this model (another architecture, a weight type whose
        // kernel is missing or failed its self-test on this driver) leaves it on the CPU.
        let backend = opts.backend.as_ref().and_then(|backend| {
            match check_backend(backend.as_ref(), &arch, &name) {
                Ok(()) => Some(backend.clone()),
                Err(e) => {
                    tracing::warn!("{e}; running on the CPU instead");
                    None
                }
            }
        });
        let fingerprint = OnceLock::new();
        let (mut repacked_bytes, mut repacked_types) = (0, Vec::new());
        // A backend reads the weights as the file stores them.
        if opts.repack && backend.is_none() {
            let _ = fingerprint.set(file_fingerprint(&file));
            let (matrices, lookup) = match &mut arch {
                Architecture::Llama(m) => m.tensors_mut(),
                Architecture::Llama4(m) => m.tensors_mut(),
            };
            (repacked_bytes, repacked_types) = repack::repack_matrices(&mut file, matrices, lookup);
            if let Architecture::Llama4(m) = &mut arch {
                let (bytes, types) =
                    repack::repack_experts(&mut file, m.experts_mut(), repacked_bytes);
                repacked_bytes += bytes;
                for ty in types {
                    if !repacked_types.contains(&ty) {
                        repacked_types.push(ty);
                    }
                }
            }
        }
        let pool = Arc::new(ThreadPool::new(opts.n_threads, opts.idle_spin)?);
        let tokenizer = Tokenizer::from_gguf(file.metadata())
            .map(Arc::new)
            .map_err(Arc::new);
        if let Err(e) = &tokenizer {
            tracing::warn!("model loaded without a tokenizer: {e}");
        }
        let chat_template = ChatTemplate::from_gguf(file.metadata())
            .map(Arc::new)
            .map_err(Arc::new);
        Ok(Arc::new(Self {
            file,
            arch,
            pool,
            tokenizer,
            chat_template,
            fingerprint,
            repacked_bytes,
            repacked_types,
            backend,
        }))
    }

    /// The backend sessions run on; `None` for the CPU (also when the backend asked for in
    /// [`LoadOptions::backend`] could not run this model).
    pub fn backend(&self) -> Option<&Arc<dyn Backend>> {
        self.backend.as_ref()
    }

    /// The GGUF file.
    pub fn gguf(&self) -> &GgufFile {
        &self.file
    }

    /// The tokenizer, shared; an error names why the model's vocabulary cannot be used.
    pub fn tokenizer(&self) -> Result<&Arc<Tokenizer>> {
        self.tokenizer
            .as_ref()
            .map_err(|e| Error::NoTokenizer(e.clone()))
    }

    /// The model's chat template (`tokenizer.chat_template`), compiled once at load.
    pub fn chat_template(&self) -> Result<&Arc<ChatTemplate>> {
        self.chat_template
            .as_ref()
            .map_err(|e| Error::NoChatTemplate(e.clone()))
    }

    /// Token ids of `text`; `add_bos` prepends BOS when the vocabulary has one,
    /// `parse_special` turns control-token texts (`<|im_start|>`) into their ids.
    pub fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>> {
        Ok(self.tokenizer()?.encode(text, add_bos, parse_special)?)
    }

    /// The text of `ids` (invalid UTF-8 replaced by U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.tokenizer()?.decode(ids)?)
    }

    /// The vocabulary entry of `id` as stored (byte-level BPE spelling).
    pub fn token_text(&self, id: u32) -> Result<String> {
        Ok(self.tokenizer()?.token_text(id)?.to_string())
    }

    /// A decoder that turns generated ids into complete UTF-8 text; it holds its own handle
    /// to the tokenizer, so it can outlive this borrow.
    pub fn stream_decoder(&self) -> Result<StreamDecoder> {
        Ok(StreamDecoder::lossy(self.tokenizer()?.clone()))
    }

    /// Vocabulary size (the width of a logits row).
    pub fn n_vocab(&self) -> usize {
        self.hparams().n_vocab
    }

    /// Width of the residual stream: the length of one row of [`crate::Input::Embeddings`].
    pub fn n_embd(&self) -> usize {
        self.hparams().n_embd
    }

    /// Context length the model was trained with.
    pub fn n_ctx_train(&self) -> usize {
        self.hparams().n_ctx_train
    }

    /// Worker threads.
    pub fn n_threads(&self) -> usize {
        self.pool.n_threads()
    }

    /// The worker threads, for a companion model (an image encoder) to share.
    pub(crate) fn pool_handle(&self) -> Arc<ThreadPool> {
        self.pool.clone()
    }

    /// `general.architecture`: `"llama"` or `"llama4"`.
    pub fn architecture_name(&self) -> &'static str {
        match &self.arch {
            Architecture::Llama(_) => "llama",
            Architecture::Llama4(_) => "llama4",
        }
    }

    /// The transformer shape shared by every architecture.
    pub fn hparams(&self) -> &LlamaHparams {
        match &self.arch {
            Architecture::Llama(m) => &m.hp,
            Architecture::Llama4(m) => &m.hp.base,
        }
    }

    /// Llama 4's own hyperparameters (chunking, temperature tuning, experts); `None` for
    /// other architectures.
    pub fn llama4_hparams(&self) -> Option<&Llama4Hparams> {
        match &self.arch {
            Architecture::Llama(_) => None,
            Architecture::Llama4(m) => Some(&m.hp),
        }
    }

    /// Bytes a session's KV cache of `n_ctx` positions (evaluated at most `n_ubatch` at a
    /// time) will hold, computed without allocating it.
    pub fn kv_cache_bytes(&self, kv_type: KvType, n_ctx: usize, n_ubatch: usize) -> Result<u64> {
        KvCache::planned_bytes(kv_type, &self.kv_layout(), n_ctx, n_ubatch)
    }

    /// Bytes of weights rewritten at load into the panels this CPU's kernels read directly
    /// ([`LoadOptions::repack`]); 0 when nothing was.
    pub fn repacked_bytes(&self) -> u64 {
        self.repacked_bytes
    }

    /// The weight types of the matrices repacked at load (empty when none were).
    pub fn repacked_types(&self) -> &[fennec_quant::GgmlType] {
        &self.repacked_types
    }

    /// A hash identifying this model: SHA-256 over the GGUF header (metadata and tensor
    /// table) and the first bytes of every tensor as the file stores them. Saved sessions
    /// carry it, so one is never restored into another model. Computed on first call (it
    /// touches one page per tensor), or at load when weights are repacked.
    pub fn fingerprint(&self) -> [u8; 32] {
        *self
            .fingerprint
            .get_or_init(|| file_fingerprint(&self.file))
    }

    /// The shape of each layer's KV cache.
    pub(crate) fn kv_layout(&self) -> Vec<KvLayerSpec> {
        match &self.arch {
            Architecture::Llama(m) => m.kv_layout(),
            Architecture::Llama4(m) => m.kv_layout(),
        }
    }

    /// Expert hit counters and residency; `None` for models without experts.
    pub fn expert_stats(&self) -> Option<ExpertStats> {
        match &self.arch {
            Architecture::Llama(_) => None,
            Architecture::Llama4(m) => Some(m.expert_stats()),
        }
    }

    /// Changes how expert weights are kept in memory (a no-op for models without experts):
    /// the `madvise` hint for routed experts and the budget of hottest experts pinned in RAM.
    /// Can be called at any time, e.g. to shrink the budget under memory pressure.
    pub fn set_expert_residency(&self, options: ExpertResidencyOptions) {
        if let Architecture::Llama4(m) = &self.arch {
            m.set_expert_residency(self.file.as_bytes(), options);
        }
    }

    /// The rows of the token-embedding matrix for `tokens` (`n_embd` floats each): what
    /// [`crate::Input::Tokens`] feeds the first layer.
    pub fn token_embeddings(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.check_tokens(tokens)?;
        let len = tokens
            .len()
            .checked_mul(self.n_embd())
            .ok_or_else(|| Error::InvalidArgument("token count times n_embd overflows".into()))?;
        let mut x = crate::error::try_vec(len, 0.0, "token embeddings")?;
        self.embed(tokens, &mut x)?;
        Ok(x)
    }

    /// An error naming the first id of `tokens` outside the vocabulary.
    pub(crate) fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let n_vocab = self.n_vocab();
        match tokens.iter().find(|&&t| t as usize >= n_vocab) {
            Some(&id) => Err(Error::InvalidToken { id, n_vocab }),
            None => Ok(()),
        }
    }

    /// Writes the embedding rows of `tokens` (checked ids) into `x`.
    pub(crate) fn embed(&self, tokens: &[u32], x: &mut [f32]) -> Result<()> {
        let file = self.file.as_bytes();
        match &self.arch {
            Architecture::Llama(m) => m.embed(file, tokens, x),
            Architecture::Llama4(m) => m.embed(file, tokens, x),
        }
    }

    /// A session's engine: the backend's own session when the model has a backend, else a
    /// CPU KV cache.
    pub(crate) fn new_engine(
        &self,
        kv_type: KvType,
        n_ctx: usize,
        n_ubatch: usize,
    ) -> Result<Engine> {
        let layout = self.kv_layout();
        match &self.backend {
            Some(backend) => {
                if kv_type != KvType::F16 {
                    return Err(Error::Unsupported(format!(
                        "a {kv_type} KV cache on {}: backends keep an f16 cache",
                        backend.describe()
                    )));
                }
                Ok(Engine::Device(
                    backend.new_session(&layout, n_ctx, n_ubatch)?,
                ))
            }
            None => Ok(Engine::Cpu(KvCache::new(
                kv_type, &layout, n_ctx, n_ubatch,
            )?)),
        }
    }

    /// Runs one micro-batch held in `ws` (rows `ws.x` at `ws.positions`) and leaves the
    /// wanted rows' logits in `ws.logits`.
    pub(crate) fn forward(&self, engine: &mut Engine, ws: &mut Workspace) -> Result<()> {
        let (file, pool) = (self.file.as_bytes(), &self.pool);
        match (&self.arch, engine) {
            (Architecture::Llama(m), Engine::Cpu(kv)) => {
                let mut enc = CpuEncoder::new(file, pool, &m.hp, kv, ws)?;
                m.forward(file, &mut enc)
            }
            (Architecture::Llama(m), Engine::Device(device)) => {
                device.begin(&m.hp, &ws.positions, &ws.want, &ws.x)?;
                m.forward(file, device.as_mut())?;
                device.finish(&mut ws.logits)
            }
            (Architecture::Llama4(m), Engine::Cpu(kv)) => m.forward(file, pool, kv, ws),
            (Architecture::Llama4(_), Engine::Device(_)) => Err(Error::Unsupported(
                "llama4 models run on the CPU only, so far".into(),
            )),
        }
    }
}

/// Refuses at load a model `backend` cannot run: another architecture than `llama`, or a
/// matrix type it has no kernel for.
fn check_backend(backend: &dyn Backend, arch: &Architecture, name: &str) -> Result<()> {
    let Architecture::Llama(m) = arch else {
        return Err(Error::Unsupported(format!(
            "{} runs llama models only, so far; load this {name} model on the CPU",
            backend.describe()
        )));
    };
    if let Some(t) = m.matrices().into_iter().find(|t| !backend.supports(t.ty)) {
        return Err(Error::Unsupported(format!(
            "{} has no kernel for {} matrices; load this model on the CPU",
            backend.describe(),
            t.ty
        )));
    }
    Ok(())
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("file", &self.file)
            .field("architecture", &self.architecture_name())
            .field("threads", &self.pool.n_threads())
            .finish()
    }
}
