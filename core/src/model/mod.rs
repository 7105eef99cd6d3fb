//! Loaded models: a validated GGUF file, its architecture's weights, and worker threads.

mod hparams;
mod llama;

use std::path::Path;
use std::sync::Arc;

pub use hparams::LlamaHparams;
pub use llama::Llama;

use crate::chat::ChatTemplate;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::kv_cache::KvCache;
use crate::ops::ThreadPool;
use crate::tokenizer::{Tokenizer, TokenizerError};

/// How to load a model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Worker threads (0 = one per core).
    pub n_threads: usize,
}

/// The architectures Fennec runs.
#[derive(Debug)]
pub enum Architecture {
    /// `llama`: Llama 2/3, SmolLM, TinyLlama, …
    Llama(Llama),
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
            _ => return Err(Error::UnknownArchitecture(name)),
        };
        let pool = ThreadPool::new(opts.n_threads)?;
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
        match &self.arch {
            Architecture::Llama(m) => m.hp.n_vocab,
        }
    }

    /// Context length the model was trained with.
    pub fn n_ctx_train(&self) -> usize {
        match &self.arch {
            Architecture::Llama(m) => m.hp.n_ctx_train,
        }
    }

    /// Worker threads.
    pub fn n_threads(&self) -> usize {
        self.pool.n_threads()
    }

    /// K/V row width of each layer.
    pub(crate) fn kv_row_lens(&self) -> Vec<usize> {
        match &self.arch {
            Architecture::Llama(m) => m.kv_row_lens(),
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
        match &self.arch {
            Architecture::Llama(m) => m.forward(
                self.file.as_bytes(),
                &self.pool,
                kv,
                tokens,
                positions,
                want_logits,
            ),
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
