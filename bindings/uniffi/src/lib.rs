//! Fennec for Kotlin, Swift and Python: one uniffi definition of the model, session and chat
//! API, generated into each language by `uniffi-bindgen` (see `bindings/uniffi/README.md`).
//!
//! The shape follows `fennec-core`, with owned data at the edge: a [`Model`] (optionally with
//! its vision projector), [`Session`]s that keep their own context, [`ChatMessage`]s with text
//! and [`Image`]s, streaming through a foreign [`PieceListener`], cancellation through a
//! [`CancelToken`], save/restore to a file or bytes, and errors as [`FennecError`] variants
//! mapped one to one from [`fennec_core::ErrorKind`]. Speech to text: a [`WhisperModel`]
//! transcribes buffers and files, a [`SpeechToText`] stream turns pushed microphone PCM into
//! transcribed utterances ([`Heard`]). Kotlin's `Flow` and Swift's
//! `AsyncThrowingStream` wrap the listener in hand-written files beside the generated ones.

uniffi::setup_scaffolding!("fennec");

mod error;
mod image;
mod log;
mod model;
mod options;
mod session;
mod speech;

pub use error::FennecError;
pub use image::{hand_over, CameraFrame, FrameFormat, FramePlane, Image};
pub use log::{set_log_listener, LogLevel, LogListener};
pub use model::{Model, ModelInfo};
pub use options::{
    ChatMessage, Completion, GenerateOptions, KvCacheType, LoadOptions, Piece, SessionOptions,
    StopReason, TimingStats,
};
pub use session::{measure_listener_ns, CancelToken, PieceListener, Session};
pub use speech::{
    Heard, SpeechToText, TranscribeOptions, Transcript, TranscriptSegment, VadConfig, WhisperModel,
};

/// Fennec's version (the crate version of the library the bindings were built from).
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
