//! The error type of `fennec-core`'s model API.

use crate::gguf::GgufError;
use fennec_quant::QuantError;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is not a valid GGUF.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A kernel refused its input (an unsupported tensor type, a bad shape).
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// `general.architecture` names an architecture Fennec does not run.
    #[error("unknown architecture {0:?}: Fennec runs llama and llama4")]
    UnknownArchitecture(String),
    /// The file is GGUF but not a model Fennec can run (missing or misshapen tensors, …).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// Tokens would not fit the session's context.
    #[error("context is full: {needed} tokens needed, the context holds {n_ctx}")]
    ContextFull {
        /// Tokens the call needed in the context.
        needed: usize,
        /// The session's context size.
        n_ctx: usize,
    },
    /// A token id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary ({n_vocab} tokens)")]
    InvalidToken {
        /// The id.
        id: u32,
        /// Vocabulary size.
        n_vocab: usize,
    },
    /// A caller-supplied option or argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The model's tokenizer is missing, unsupported, or refused the input.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    /// The chat template is missing or failed to render.
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),
    /// The worker threads could not be started.
    #[error("cannot start worker threads: {0}")]
    ThreadPool(String),
}

/// Result with an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
