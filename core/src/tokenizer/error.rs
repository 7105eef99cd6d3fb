//! Everything that can go wrong building or using a tokenizer.

use crate::gguf::GgufError;

/// An error building a tokenizer from GGUF metadata, encoding or decoding.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A required metadata key is missing or has the wrong type.
    #[error("tokenizer metadata: {0}")]
    Metadata(#[from] GgufError),
    /// `tokenizer.ggml.model` names a tokenizer Fennec does not implement.
    #[error("unsupported tokenizer model '{0}' (Fennec supports \"gpt2\" byte-level BPE)")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer Fennec does not implement.
    #[error(
        "unsupported pre-tokenizer '{0}' (Fennec supports: default, gpt-2, llama-bpe/llama3, \
         smollm, starcoder, qwen2, gpt-4o/llama4)"
    )]
    UnsupportedPre(String),
    /// The vocabulary in the metadata is inconsistent.
    #[error("invalid vocabulary: {0}")]
    InvalidVocab(String),
    /// The `tokenizers` crate rejected the vocabulary or the text.
    #[error("tokenizer backend: {0}")]
    Backend(String),
    /// A token id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    InvalidTokenId {
        /// The id.
        id: u32,
        /// Number of tokens in the vocabulary.
        vocab_size: usize,
    },
    /// Decoded token bytes that are not valid UTF-8.
    #[error("token bytes are not valid UTF-8: {bytes:02x?}")]
    InvalidUtf8 {
        /// The offending bytes (dropped from the stream).
        bytes: Vec<u8>,
    },
}

/// Result type of the tokenizer module.
pub type Result<T, E = TokenizerError> = std::result::Result<T, E>;
