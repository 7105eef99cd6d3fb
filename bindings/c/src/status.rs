//! Status codes, the thread-local last-error message and the guard every entry point runs in.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use fennec_core::ErrorKind;

/// What every fallible function returns: `FENNEC_OK` (0) or an error code.
///
/// Codes 1..=99 are `fennec-core`'s stable `ErrorKind` codes (the same numbers in every
/// binding); codes from 100 are the C ABI's own. `fennec_last_error()` has the message.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum fennec_status {
    /// Success.
    FENNEC_OK = 0,
    /// A file or stream could not be read or written (a missing model file, …).
    FENNEC_ERR_IO = 1,
    /// The file is not a valid GGUF (corrupt, truncated, wrong magic, …).
    FENNEC_ERR_INVALID_GGUF = 2,
    /// A valid file Fennec cannot run: unknown architecture, tensor type or tokenizer.
    FENNEC_ERR_UNSUPPORTED = 3,
    /// The model's tensors or hyperparameters are missing or inconsistent.
    FENNEC_ERR_INVALID_MODEL = 4,
    /// A caller-supplied option or argument is invalid.
    FENNEC_ERR_INVALID_ARGUMENT = 5,
    /// The input does not fit the session's context.
    FENNEC_ERR_CONTEXT_FULL = 6,
    /// A token id outside the vocabulary.
    FENNEC_ERR_INVALID_TOKEN = 7,
    /// A rewind past what chunked-attention layers still hold.
    FENNEC_ERR_CANNOT_REWIND = 8,
    /// Text could not be encoded or decoded, or the model has no usable tokenizer.
    FENNEC_ERR_TOKENIZER = 9,
    /// The chat template is missing or failed to render.
    FENNEC_ERR_CHAT_TEMPLATE = 10,
    /// Memory could not be allocated.
    FENNEC_ERR_OUT_OF_MEMORY = 11,
    /// Cancelled through a cancel handle.
    FENNEC_ERR_CANCELLED = 12,
    /// A saved session belongs to another model or session shape.
    FENNEC_ERR_SESSION_MISMATCH = 13,
    /// A saved session is damaged.
    FENNEC_ERR_CORRUPT_SESSION = 14,
    /// Threads could not be started, or another failure of the runtime itself.
    FENNEC_ERR_INTERNAL = 15,
    /// An image or camera frame is empty, corrupt, misdescribed or over budget.
    FENNEC_ERR_INVALID_IMAGE = 16,
    /// A required pointer argument was NULL.
    FENNEC_ERR_NULL_ARGUMENT = 100,
    /// A string argument was not valid UTF-8.
    FENNEC_ERR_INVALID_UTF8 = 101,
    /// A Rust panic was caught at the ABI edge (a bug in Fennec: please report the message).
    FENNEC_ERR_PANIC = 102,
    /// The session is being used by another call (another thread, or a callback calling back
    /// into the session it was called from).
    FENNEC_ERR_BUSY = 103,
}

use fennec_status::*;

impl fennec_status {
    /// The status for a core error kind; a kind newer than this crate is `FENNEC_ERR_INTERNAL`
    /// (the unit test `every_error_kind_has_a_status` keeps the list complete).
    pub(crate) fn from_kind(kind: ErrorKind) -> Self {
        Self::from_code(kind.code()).unwrap_or(FENNEC_ERR_INTERNAL)
    }

    /// The status with this numeric code, if any.
    pub(crate) fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u32 == code)
    }

    /// Every status, in code order.
    pub(crate) const ALL: [fennec_status; 21] = [
        FENNEC_OK,
        FENNEC_ERR_IO,
        FENNEC_ERR_INVALID_GGUF,
        FENNEC_ERR_UNSUPPORTED,
        FENNEC_ERR_INVALID_MODEL,
        FENNEC_ERR_INVALID_ARGUMENT,
        FENNEC_ERR_CONTEXT_FULL,
        FENNEC_ERR_INVALID_TOKEN,
        FENNEC_ERR_CANNOT_REWIND,
        FENNEC_ERR_TOKENIZER,
        FENNEC_ERR_CHAT_TEMPLATE,
        FENNEC_ERR_OUT_OF_MEMORY,
        FENNEC_ERR_CANCELLED,
        FENNEC_ERR_SESSION_MISMATCH,
        FENNEC_ERR_CORRUPT_SESSION,
        FENNEC_ERR_INTERNAL,
        FENNEC_ERR_INVALID_IMAGE,
        FENNEC_ERR_NULL_ARGUMENT,
        FENNEC_ERR_INVALID_UTF8,
        FENNEC_ERR_PANIC,
        FENNEC_ERR_BUSY,
    ];

    /// Short snake_case name, NUL-terminated; the core codes use `ErrorKind::as_str`'s names.
    pub(crate) fn name(self) -> &'static CStr {
        match self {
            FENNEC_OK => c"ok",
            FENNEC_ERR_IO => c"io",
            FENNEC_ERR_INVALID_GGUF => c"invalid_gguf",
            FENNEC_ERR_UNSUPPORTED => c"unsupported",
            FENNEC_ERR_INVALID_MODEL => c"invalid_model",
            FENNEC_ERR_INVALID_ARGUMENT => c"invalid_argument",
            FENNEC_ERR_CONTEXT_FULL => c"context_full",
            FENNEC_ERR_INVALID_TOKEN => c"invalid_token",
            FENNEC_ERR_CANNOT_REWIND => c"cannot_rewind",
            FENNEC_ERR_TOKENIZER => c"tokenizer",
            FENNEC_ERR_CHAT_TEMPLATE => c"chat_template",
            FENNEC_ERR_OUT_OF_MEMORY => c"out_of_memory",
            FENNEC_ERR_CANCELLED => c"cancelled",
            FENNEC_ERR_SESSION_MISMATCH => c"session_mismatch",
            FENNEC_ERR_CORRUPT_SESSION => c"corrupt_session",
            FENNEC_ERR_INTERNAL => c"internal",
            FENNEC_ERR_INVALID_IMAGE => c"invalid_image",
            FENNEC_ERR_NULL_ARGUMENT => c"null_argument",
            FENNEC_ERR_INVALID_UTF8 => c"invalid_utf8",
            FENNEC_ERR_PANIC => c"panic",
            FENNEC_ERR_BUSY => c"busy",
        }
    }
}

/// Why an entry point failed: a core error or a problem found at the ABI edge.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FfiError {
    /// An error from `fennec-core`.
    #[error(transparent)]
    Core(#[from] fennec_core::Error),
    /// Audio refused (a bad buffer, format or setting) or a speech model error.
    #[error(transparent)]
    Audio(fennec_audio::AudioError),
    /// A file named by the caller could not be opened or written.
    #[error("{path}: {source}")]
    File {
        /// The path as given.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A required pointer was NULL.
    #[error("{0} is NULL")]
    Null(&'static str),
    /// A string was not UTF-8.
    #[error("{0} is not valid UTF-8: {1}")]
    Utf8(&'static str, std::str::Utf8Error),
    /// An argument the ABI itself checks.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The session's lock is held.
    #[error(
        "the session is in use by another call (sessions are used by one thread at a time; \
         a callback must not call back into its own session)"
    )]
    Busy,
    /// A panic, caught.
    #[error("panic: {0}")]
    Panic(String),
    /// Something outside Fennec's control (another tracing subscriber, …).
    #[error("{0}")]
    Internal(String),
}

impl FfiError {
    /// The status code for this error.
    pub(crate) fn status(&self) -> fennec_status {
        match self {
            FfiError::Core(e) => fennec_status::from_kind(e.kind()),
            FfiError::Audio(e) => fennec_status::from_kind(crate::speech::audio_error_kind(e)),
            FfiError::File { .. } => FENNEC_ERR_IO,
            FfiError::Null(_) => FENNEC_ERR_NULL_ARGUMENT,
            FfiError::Utf8(..) => FENNEC_ERR_INVALID_UTF8,
            FfiError::InvalidArgument(_) => FENNEC_ERR_INVALID_ARGUMENT,
            FfiError::Busy => FENNEC_ERR_BUSY,
            FfiError::Panic(_) => FENNEC_ERR_PANIC,
            FfiError::Internal(_) => FENNEC_ERR_INTERNAL,
        }
    }
}

/// Result of the bodies of entry points.
pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `msg` as this thread's last error (interior NULs become spaces).
pub(crate) fn set_last_error(msg: &str) {
    let bytes: Vec<u8> = msg.bytes().map(|b| if b == 0 { b' ' } else { b }).collect();
    let msg = CString::new(bytes).unwrap_or_default();
    // try_with: a call during thread teardown must not panic.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = msg;
        }
    });
}

/// Pointer to this thread's last error message (never NULL).
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs the body of an entry point: a panic becomes `FENNEC_ERR_PANIC`, an error its status;
/// both leave their message in `fennec_last_error()`. Nothing unwinds past this.
pub(crate) fn guard(body: impl FnOnce() -> FfiResult) -> fennec_status {
    let outcome = catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(FfiError::Panic(panic_message(payload.as_ref()))));
    match outcome {
        Ok(()) => FENNEC_OK,
        Err(e) => {
            set_last_error(&e.to_string());
            e.status()
        }
    }
}

/// Runs the body of an entry point that has no status to return (a `free`): a panic is
/// swallowed, its message kept in `fennec_last_error()`.
pub(crate) fn guard_void(body: impl FnOnce()) {
    let _ = guard(|| {
        body();
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_a_status() {
        for kind in ErrorKind::ALL {
            let status = fennec_status::from_code(kind.code())
                .unwrap_or_else(|| panic!("no fennec_status for ErrorKind {kind:?}"));
            assert_eq!(status as u32, kind.code());
            assert_eq!(status.name().to_str().unwrap(), kind.as_str());
            assert_eq!(fennec_status::from_kind(kind), status);
        }
        // Every code 1..=99 that is a status is a core kind, and the reverse.
        for status in fennec_status::ALL {
            let code = status as u32;
            if (1..100).contains(&code) {
                assert!(
                    ErrorKind::from_code(code).is_some(),
                    "{status:?} is not a core kind"
                );
            }
        }
        let n_kinds = ErrorKind::ALL.len();
        assert_eq!(
            fennec_status::ALL
                .iter()
                .filter(|s| (1..100).contains(&(**s as u32)))
                .count(),
            n_kinds
        );
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<_> = fennec_status::ALL.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), fennec_status::ALL.len());
    }

    #[test]
    fn panic_is_caught_and_reported() {
        let status = guard(|| panic!("boom {}", 42));
        assert_eq!(status, FENNEC_ERR_PANIC);
        // SAFETY: last_error_ptr returns a NUL-terminated string owned by this thread.
        let msg = unsafe { CStr::from_ptr(last_error_ptr()) };
        assert_eq!(msg.to_str().unwrap(), "panic: boom 42");
        let status = guard(|| std::panic::panic_any(7u8));
        assert_eq!(status, FENNEC_ERR_PANIC);
        guard_void(|| panic!("in a free"));
        // SAFETY: as above.
        let msg = unsafe { CStr::from_ptr(last_error_ptr()) };
        assert_eq!(msg.to_str().unwrap(), "panic: in a free");
    }

    #[test]
    fn interior_nul_does_not_lose_the_message() {
        set_last_error("a\0b");
        // SAFETY: as above.
        let msg = unsafe { CStr::from_ptr(last_error_ptr()) };
        assert_eq!(msg.to_str().unwrap(), "a b");
    }
}
