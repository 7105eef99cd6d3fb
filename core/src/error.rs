//! The error type of `fennec-core`'s model API, and [`ErrorKind`], its flat classification
//! that foreign callers see (C codes, Kotlin/Swift exception types).

use std::sync::Arc;

use crate::gguf::GgufError;
use crate::tokenizer::TokenizerError;
use fennec_quant::QuantError;

/// Everything that can go wrong loading or running a model.
///
/// Match on [`Error::kind`] rather than on variants when only the class matters: kinds are
/// stable across releases, variants may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not a valid GGUF, or cannot be read.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A kernel refused its input (an unsupported tensor type, a bad shape).
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// `general.architecture` names an architecture Fennec does not run.
    #[error("unknown architecture {0:?}: Fennec runs llama and llama4")]
    UnknownArchitecture(String),
    /// The model uses a feature Fennec does not implement (a RoPE scaling type, …).
    #[error("not supported: {0}")]
    Unsupported(String),
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
    /// A rewind to `n` positions was refused: chunked-attention layers keep only a ring of
    /// recent positions, and the earliest position the session can rewind to is `earliest`.
    #[error(
        "cannot rewind to {n} tokens: chunked-attention layers no longer hold them (they keep \
         one chunk plus one micro-batch; the earliest rewind point is {earliest}); clear the \
         session instead"
    )]
    CannotRewind {
        /// The position asked for.
        n: usize,
        /// The earliest position a rewind can reach now.
        earliest: usize,
    },
    /// The tokenizer refused the input (an id out of range, invalid UTF-8, …).
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The model's vocabulary cannot be used: why it could not be built at load.
    #[error("the model has no usable tokenizer: {0}")]
    NoTokenizer(Arc<TokenizerError>),
    /// The chat template failed to render.
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),
    /// The model's chat template is missing or does not compile: why, from load.
    #[error("the model has no usable chat template: {0}")]
    NoChatTemplate(Arc<crate::chat::ChatError>),
    /// A buffer of `bytes` could not be allocated (`what` names it, e.g. the KV cache).
    #[error("out of memory: cannot allocate {bytes} bytes for {what}")]
    OutOfMemory {
        /// What the memory was for.
        what: &'static str,
        /// Bytes asked for.
        bytes: u64,
    },
    /// The operation was cancelled through a [`crate::CancelHandle`] after `evaluated` new
    /// positions joined the context (they stay in it).
    #[error("cancelled after {evaluated} positions were evaluated")]
    Cancelled {
        /// Positions evaluated before the cancellation was seen.
        evaluated: usize,
    },
    /// A saved session belongs to another model or another session shape.
    #[error("saved session does not match: {0}")]
    SessionMismatch(String),
    /// A saved session is truncated, damaged or not a Fennec session file.
    #[error("corrupt session file: {0}")]
    CorruptSession(String),
    /// Reading or writing a stream (a saved session) failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The worker threads could not be started.
    #[error("cannot start worker threads: {0}")]
    ThreadPool(String),
    /// An image or camera frame that cannot be read: empty, truncated or corrupt, planes
    /// that disagree with their strides, or larger than the pixel budget.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// The backend a model runs on failed (a GPU device lost, a kernel that does not build,
    /// device memory exhausted).
    #[error("backend failed: {0}")]
    Backend(String),
}

/// The class of an [`Error`], with stable numeric codes for foreign callers: the C ABI
/// returns `code` as its status (0 is success), Kotlin/Swift/Python map each kind to one
/// exception type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum ErrorKind {
    /// A file or stream could not be read or written.
    Io = 1,
    /// The file is not a valid GGUF (corrupt, truncated, wrong magic, …).
    InvalidGguf = 2,
    /// A valid file Fennec cannot run: unknown architecture, tensor type or tokenizer.
    Unsupported = 3,
    /// The model's tensors or hyperparameters are missing or inconsistent.
    InvalidModel = 4,
    /// A caller-supplied option or argument is invalid.
    InvalidArgument = 5,
    /// The input does not fit the session's context.
    ContextFull = 6,
    /// A token id outside the vocabulary.
    InvalidToken = 7,
    /// A rewind past what chunked-attention layers still hold.
    CannotRewind = 8,
    /// Text could not be encoded or decoded, or the model has no usable tokenizer.
    Tokenizer = 9,
    /// The chat template is missing or failed to render.
    ChatTemplate = 10,
    /// Memory could not be allocated.
    OutOfMemory = 11,
    /// Cancelled through a cancel handle.
    Cancelled = 12,
    /// A saved session belongs to another model or session shape.
    SessionMismatch = 13,
    /// A saved session is damaged.
    CorruptSession = 14,
    /// Threads could not be started, or another failure of the runtime itself.
    Internal = 15,
    /// An image or camera frame is empty, corrupt, misdescribed or over budget.
    InvalidImage = 16,
}

impl ErrorKind {
    /// The stable numeric code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Short snake_case name (`"context_full"`), the same in every binding.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::InvalidGguf => "invalid_gguf",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::InvalidModel => "invalid_model",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::ContextFull => "context_full",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::CannotRewind => "cannot_rewind",
            ErrorKind::Tokenizer => "tokenizer",
            ErrorKind::ChatTemplate => "chat_template",
            ErrorKind::OutOfMemory => "out_of_memory",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::SessionMismatch => "session_mismatch",
            ErrorKind::CorruptSession => "corrupt_session",
            ErrorKind::Internal => "internal",
            ErrorKind::InvalidImage => "invalid_image",
        }
    }

    /// Every kind, in code order.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::Io,
        ErrorKind::InvalidGguf,
        ErrorKind::Unsupported,
        ErrorKind::InvalidModel,
        ErrorKind::InvalidArgument,
        ErrorKind::ContextFull,
        ErrorKind::InvalidToken,
        ErrorKind::CannotRewind,
        ErrorKind::Tokenizer,
        ErrorKind::ChatTemplate,
        ErrorKind::OutOfMemory,
        ErrorKind::Cancelled,
        ErrorKind::SessionMismatch,
        ErrorKind::CorruptSession,
        ErrorKind::Internal,
        ErrorKind::InvalidImage,
    ];

    /// The kind with this code, if any.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The class of this error: the one mapping to C codes and foreign exception types.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Gguf(e) => e.kind(),
            Error::Quant(QuantError::Unsupported { .. }) => ErrorKind::Unsupported,
            Error::Quant(_) => ErrorKind::InvalidModel,
            Error::UnknownArchitecture(_) | Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::InvalidModel(_) => ErrorKind::InvalidModel,
            Error::ContextFull { .. } => ErrorKind::ContextFull,
            Error::InvalidToken { .. } => ErrorKind::InvalidToken,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::CannotRewind { .. } => ErrorKind::CannotRewind,
            Error::Tokenizer(e) => e.kind(),
            Error::NoTokenizer(_) => ErrorKind::Tokenizer,
            Error::Chat(_) | Error::NoChatTemplate(_) => ErrorKind::ChatTemplate,
            Error::OutOfMemory { .. } => ErrorKind::OutOfMemory,
            Error::Cancelled { .. } => ErrorKind::Cancelled,
            Error::SessionMismatch(_) => ErrorKind::SessionMismatch,
            Error::CorruptSession(_) => ErrorKind::CorruptSession,
            Error::Io(_) => ErrorKind::Io,
            Error::ThreadPool(_) => ErrorKind::Internal,
            Error::InvalidImage(_) => ErrorKind::InvalidImage,
            Error::Backend(_) => ErrorKind::Internal,
        }
    }
}

impl GgufError {
    /// The class of this error: [`ErrorKind::Io`] when the file could not be read,
    /// [`ErrorKind::InvalidGguf`] otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            GgufError::Io { .. } => ErrorKind::Io,
            _ => ErrorKind::InvalidGguf,
        }
    }
}

impl TokenizerError {
    /// The class of this error: [`ErrorKind::InvalidToken`] for an id outside the
    /// vocabulary, [`ErrorKind::Tokenizer`] otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TokenizerError::InvalidTokenId { .. } => ErrorKind::InvalidToken,
            _ => ErrorKind::Tokenizer,
        }
    }
}

/// Result with an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A vector of `len` copies of `value`, or [`Error::OutOfMemory`] naming `what` instead of
/// aborting the process when the allocation fails.
pub(crate) fn try_vec<T: Clone>(len: usize, value: T, what: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    try_resize(&mut v, len, value, what)?;
    Ok(v)
}

/// Resizes `v` to `len` elements (filling with `value`), reporting a failed allocation as
/// [`Error::OutOfMemory`].
pub(crate) fn try_resize<T: Clone>(
    v: &mut Vec<T>,
    len: usize,
    value: T,
    what: &'static str,
) -> Result<()> {
    if len > v.len() {
        let oom = || Error::OutOfMemory {
            what,
            bytes: (len as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        };
        let extra = len - v.len();
        v.try_reserve_exact(extra).map_err(|_| oom())?;
    }
    v.resize(len, value);
    Ok(())
}
