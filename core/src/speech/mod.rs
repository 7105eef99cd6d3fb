//! Speech to text: OpenAI's Whisper on Fennec's own GGUF loader, tokenizer, kernels and
//! threads (`general.architecture = whisper`; the layout is documented in
//! `tests/fixtures/whisper/README.md`).
//!
//! [`WhisperModel::transcribe`] takes 16 kHz mono samples and returns a [`Transcript`]; the
//! stages are public too: [`WhisperModel::log_mel`] (faster-whisper's features),
//! [`WhisperModel::encode`] (one 30-second window), [`WhisperModel::decode_greedy`] and,
//! token by token, [`WhisperModel::decoder`].
//!
//! ```no_run
//! use fennec_core::speech::{TranscribeOptions, WhisperModel};
//! use fennec_core::{CancelHandle, LoadOptions};
//!
//! let whisper = WhisperModel::load("whisper-tiny.en-q8_0.gguf", &LoadOptions::with_threads(2))?;
//! # let samples_16k_mono = vec![0.0f32; 16_000];
//! let t = whisper.transcribe(&samples_16k_mono, &TranscribeOptions::default(), &CancelHandle::new())?;
//! println!("{} ({:?} to encode)", t.text, t.timings.encode);
//! # Ok::<(), fennec_core::Error>(())
//! ```

mod decoder;
mod encoder;
mod ggml_bin;
mod layers;
mod mel;
mod model;
mod transcribe;

pub use decoder::DecoderState;
pub use encoder::EncoderOutput;
pub use ggml_bin::{gguf_from_ggml_bin, is_ggml_bin, GGML_BIN_MAGIC};
pub use mel::LogMel;
pub use model::{WhisperHparams, WhisperModel, WhisperTokens};
pub use transcribe::{
    DecodeOptions, Decoded, EncoderFrames, Segment, SpeechTimings, Step, Task, TranscribeOptions,
    Transcript,
};
