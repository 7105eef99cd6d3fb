//! Errors as the foreign languages see them: one variant per [`ErrorKind`].

use fennec_core::{Error, ErrorKind};

/// A failed call. Kotlin and Python raise `FennecException.<Variant>` / `FennecError.<Variant>`,
/// Swift throws `FennecError.<variant>`; the message names the problem.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum FennecError {
    /// Reading or writing a file failed (a missing model path, a full disk).
    #[error("{0}")]
    Io(String),
    /// The file is not a valid GGUF (truncated, corrupt, malformed).
    #[error("{0}")]
    InvalidGguf(String),
    /// Valid but not supported: an unknown architecture, a tensor type without a kernel.
    #[error("{0}")]
    Unsupported(String),
    /// A supported architecture with missing or misshapen tensors or metadata.
    #[error("{0}")]
    InvalidModel(String),
    /// An argument out of range (an empty prompt, a zero context, a bad frame stride).
    #[error("{0}")]
    InvalidArgument(String),
    /// The prompt does not fit the session's context.
    #[error("{0}")]
    ContextFull(String),
    /// A token id outside the vocabulary.
    #[error("{0}")]
    InvalidToken(String),
    /// The session cannot rewind that far (a chunked-attention ring has moved on).
    #[error("{0}")]
    CannotRewind(String),
    /// The model's tokenizer failed or is missing.
    #[error("{0}")]
    Tokenizer(String),
    /// The chat template is missing or failed to render these messages.
    #[error("{0}")]
    ChatTemplate(String),
    /// An allocation (KV cache, buffers) failed.
    #[error("{0}")]
    OutOfMemory(String),
    /// The work was cancelled.
    #[error("{0}")]
    Cancelled(String),
    /// A saved session belongs to another model or other options.
    #[error("{0}")]
    SessionMismatch(String),
    /// Saved session bytes are damaged.
    #[error("{0}")]
    CorruptSession(String),
    /// A bug in Fennec (a broken invariant); please report it.
    #[error("{0}")]
    Internal(String),
    /// An image that cannot be used (undecodable, too large, a wrong size).
    #[error("{0}")]
    InvalidImage(String),
}

impl From<Error> for FennecError {
    fn from(e: Error) -> Self {
        Self::of_kind(e.kind(), e.to_string())
    }
}

impl From<fennec_camera::CameraError> for FennecError {
    fn from(e: fennec_camera::CameraError) -> Self {
        Error::from(e).into()
    }
}

impl FennecError {
    /// The variant for `kind`, carrying `message`.
    pub fn of_kind(kind: ErrorKind, message: String) -> Self {
        match kind {
            ErrorKind::Io => Self::Io(message),
            ErrorKind::InvalidGguf => Self::InvalidGguf(message),
            ErrorKind::Unsupported => Self::Unsupported(message),
            ErrorKind::InvalidModel => Self::InvalidModel(message),
            ErrorKind::InvalidArgument => Self::InvalidArgument(message),
            ErrorKind::ContextFull => Self::ContextFull(message),
            ErrorKind::InvalidToken => Self::InvalidToken(message),
            ErrorKind::CannotRewind => Self::CannotRewind(message),
            ErrorKind::Tokenizer => Self::Tokenizer(message),
            ErrorKind::ChatTemplate => Self::ChatTemplate(message),
            ErrorKind::OutOfMemory => Self::OutOfMemory(message),
            ErrorKind::Cancelled => Self::Cancelled(message),
            ErrorKind::SessionMismatch => Self::SessionMismatch(message),
            ErrorKind::CorruptSession => Self::CorruptSession(message),
            ErrorKind::InvalidImage => Self::InvalidImage(message),
            _ => Self::Internal(message),
        }
    }

    /// The stable code of the [`ErrorKind`] this variant stands for (as the C ABI returns).
    pub fn code(&self) -> u32 {
        let kind = match self {
            Self::Io(_) => ErrorKind::Io,
            Self::InvalidGguf(_) => ErrorKind::InvalidGguf,
            Self::Unsupported(_) => ErrorKind::Unsupported,
            Self::InvalidModel(_) => ErrorKind::InvalidModel,
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::ContextFull(_) => ErrorKind::ContextFull,
            Self::InvalidToken(_) => ErrorKind::InvalidToken,
            Self::CannotRewind(_) => ErrorKind::CannotRewind,
            Self::Tokenizer(_) => ErrorKind::Tokenizer,
            Self::ChatTemplate(_) => ErrorKind::ChatTemplate,
            Self::OutOfMemory(_) => ErrorKind::OutOfMemory,
            Self::Cancelled(_) => ErrorKind::Cancelled,
            Self::SessionMismatch(_) => ErrorKind::SessionMismatch,
            Self::CorruptSession(_) => ErrorKind::CorruptSession,
            Self::Internal(_) => ErrorKind::Internal,
            Self::InvalidImage(_) => ErrorKind::InvalidImage,
        };
        kind as u32
    }
}

/// Results of exported calls.
pub type Result<T> = std::result::Result<T, FennecError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_maps_to_the_variant_with_its_code() {
        let mut seen = 0;
        for code in 0..256 {
            let Some(kind) = ErrorKind::from_code(code) else {
                continue;
            };
            seen += 1;
            let e = FennecError::of_kind(kind, "m".into());
            assert_eq!(e.code(), code, "{kind:?} became {e:?}");
        }
        assert_eq!(seen, 16, "a new ErrorKind needs a FennecError variant");
    }

    #[test]
    fn a_core_error_keeps_its_message() {
        let e = FennecError::from(Error::ContextFull {
            needed: 10,
            n_ctx: 4,
        });
        assert!(
            matches!(e, FennecError::ContextFull(ref m) if m.contains("10")),
            "{e:?}"
        );
    }
}
