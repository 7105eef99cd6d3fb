//! Loaded models: a validated GGUF file, its architecture's weights, and worker threads.

mod blocks;
mod experts;
mod ffn;
mod hparams;
mod llama;
mod llama4;
mod weights;

use std::path::Path;
use std::sync::Arc;

pub use experts::{ExpertAdvice, ExpertLayerStats, ExpertResidencyOptions, ExpertStats};
pub use hparams::{Llama4Hparams, Llama4LayerKind, LlamaHparams};
pub use llama::Llama;
pub use llama4::Llama4;

use crate::chat::ChatTemplate;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::kv_cache::{KvCache, KvLayerSpec};
use crate::ops::{ThreadPool, DEFAULT_IDLE_SPIN};
use crate::tokenizer::{Tokenizer, TokenizerError};

/// How to load a model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Worker threads (0 = one per core).
    pub n_threads: usize,
}

/// The architectures Fennec runs.
// One value per loaded model: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Architecture {
    /// `llama`: Llama 2/3, SmolLM, TinyLlama, …
    Llama(Llama),
    /// `llama4`: Llama 4 Scout and Maverick (text).
    Llama4(Llama4),
}

/// A model ready to run: shareable between threads and sessions (`Arc<Model>`).
pub struct Model {
    file: GgufFile,
    arch: Architecture,
    pool: ThreadPool,
    /// The tokenizer, or why it could not be built (reported when text is used).
    tokenizer: std::result::Result<Tokenizer, String>,
}

impl Model {
    /// Maps and validates `path`, checks every tensor the architecture needs, and starts the
    /// worker threads. Weights stay in the mapping.
    pub fn load(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Arc<Self>> {
        let file = GgufFile::open(path)?;
        Self::from_gguf(file, opts)
    }

    /// Builds a model from an already opened file.
    pub fn from_gguf(file: GgufFile, opts: &LoadOptions) -> Result<Arc<Self>> {
        let name = file
            .metadata()
            .get_str("general.architecture")
            .map_err(|e| Error::InvalidModel(e.to_string()))?
            .to_string();
        let arch = match name.as_str() {
            "llama" => Architecture::Llama(Llama::load(&file, &name)?),
            "llama4" => Architecture::Llama4(Llama4::load(&file)?),
            _ => return Err(Error::UnknownArchitecture(name)),
        };
        let pool = ThreadPool::new(opts.n_threads, DEFAULT_IDLE_SPIN)?;
        let tokenizer = Tokenizer::from_gguf(file.metadata()).map_err(|e| e.to_string());
        if let Err(e) = &tokenizer {
            tracing::warn!("model loaded without a tokenizer: {e}");
        }
        Ok(Arc::new(Self {
            file,
            arch,
            pool,
            tokenizer,
        }))
    }

    /// The GGUF file.
    pub fn gguf(&self) -> &GgufFile {
        &self.file
    }

    /// The tokenizer; an error names why the model's vocabulary cannot be used.
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer
            .as_ref()
            .map_err(|e| Error::Tokenizer(TokenizerError::Backend(e.clone())))
    }

    /// The model's chat template (`tokenizer.chat_template`), compiled.
    pub fn chat_template(&self) -> Result<ChatTemplate> {
        Ok(ChatTemplate::from_gguf(self.file.metadata())?)
    }

    /// The architecture and its weights.
    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }

    /// Vocabulary size (the width of a logits row).
    pub fn n_vocab(&self) -> usize {
        self.hparams().n_vocab
    }

    /// Context length the model was trained with.
    pub fn n_ctx_train(&self) -> usize {
        self.hparams().n_ctx_train
    }

    /// Worker threads.
    pub fn n_threads(&self) -> usize {
        self.pool.n_threads()
    }

    /// The transformer shape shared by every architecture.
    pub fn hparams(&self) -> &LlamaHparams {
        match &self.arch {
            Architecture::Llama(m) => &m.hp,
            Architecture::Llama4(m) => &m.hp.base,
        }
    }

    /// The shape of each layer's KV cache.
    pub fn kv_layout(&self) -> Vec<KvLayerSpec> {
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

    /// Runs one micro-batch; see [`Llama::forward`].
    pub(crate) fn forward(
        &self,
        kv: &mut KvCache,
        tokens: &[u32],
        positions: &[usize],
        want_logits: &[bool],
    ) -> Result<Vec<f32>> {
        let (file, pool) = (self.file.as_bytes(), &self.pool);
        match &self.arch {
            Architecture::Llama(m) => m.forward(file, pool, kv, tokens, positions, want_logits),
            Architecture::Llama4(m) => m.forward(file, pool, kv, tokens, positions, want_logits),
        }
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("file", &self.file)
            .field("threads", &self.pool.n_threads())
            .finish()
    }
}
