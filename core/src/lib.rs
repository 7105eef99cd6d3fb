//! `fennec-core`: reads GGUF models and runs them on the CPU.
//!
//! A [`Model`] is loaded once (memory-mapped, shareable behind an `Arc` across threads);
//! each conversation is a [`Session`] with its own KV cache. A session evaluates
//! [`Input`]s — token ids or rows of embeddings (projected image patches) — and
//! [`Session::generate`] streams text after them.
//!
//! # Multi-turn chat
//!
//! Re-render the whole conversation each turn; [`Session::reuse_prefix`] keeps what the
//! session has already evaluated, so only the new turn is computed.
//!
//! ```no_run
//! use fennec_core::chat::ChatMessage;
//! use fennec_core::{CancelHandle, GenerateOptions, Input, LoadOptions, Model, SamplerOptions, Session, SessionOptions};
//!
//! let model = Model::load("SmolLM2-135M-Instruct.Q4_1.gguf", &LoadOptions::default())?;
//! let mut session = Session::new(model.clone(), SessionOptions::default())?;
//! let opts = GenerateOptions::new(64, SamplerOptions::greedy());
//! let mut messages = vec![ChatMessage::new("system", "Be brief.")];
//! for question in ["Hi!", "What is a fennec?"] {
//!     messages.push(ChatMessage::new("user", question));
//!     let ids = model.encode(&model.chat_template()?.render(&messages, true)?, false, true)?;
//!     let conversation = [Input::Tokens(&ids)];
//!     let kept = session.reuse_prefix(&conversation)?;
//!     let done = session.generate(&Input::skip(&conversation, kept), &opts, &CancelHandle::new(),
//!         &mut |piece| { print!("{}", piece.text); true })?;
//!     messages.push(ChatMessage::new("assistant", done.text.trim()));
//! }
//! # Ok::<(), fennec_core::Error>(())
//! ```
//!
//! # Images and other embeddings
//!
//! Rows of `n_embd` floats take one position each, beside token ids:
//!
//! ```no_run
//! # use fennec_core::{Input, Logits, Model, Session, SessionOptions, LoadOptions};
//! # let model = Model::load("m.gguf", &LoadOptions::default())?;
//! # let mut session = Session::new(model.clone(), SessionOptions::default())?;
//! # let (before, after) = (vec![1u32], vec![2u32]);
//! let patches: Vec<f32> = vec![0.0; 144 * model.n_embd()]; // from a vision encoder
//! let inputs = [
//!     Input::Tokens(&before),
//!     Input::Embeddings { data: &patches, n: 144 },
//!     Input::Tokens(&after),
//! ];
//! let logits = session.eval(&inputs, Logits::Last)?;
//! # Ok::<(), fennec_core::Error>(())
//! ```
//!
//! # Save and restore
//!
//! A session saves its inputs and occupied KV cells; restoring needs the same model
//! ([`Model::fingerprint`]) and refuses damaged files with [`ErrorKind::CorruptSession`]:
//!
//! ```no_run
//! # use fennec_core::{Input, Logits, Model, Session, SessionOptions, LoadOptions};
//! # let model = Model::load("m.gguf", &LoadOptions::default())?;
//! # let mut session = Session::new(model.clone(), SessionOptions::default())?;
//! session.save(&mut std::fs::File::create("system-prompt.fnss")?)?;
//! let restored = Session::restore(model.clone(), &mut std::fs::File::open("system-prompt.fnss")?)?;
//! let per_user = restored.fork()?; // one evaluated prefix, many conversations
//! # Ok::<(), fennec_core::Error>(())
//! ```
//!
//! # Speech
//!
//! [`speech::WhisperModel`] runs Whisper speech-to-text on the same loader, tokenizer,
//! kernels and threads: 16 kHz mono samples in, a [`Transcript`] out. [`Model::load`]
//! refuses a Whisper file and names this API.
//!
//! # Errors
//!
//! Every fallible call returns [`Error`]; [`Error::kind`] classifies it as an [`ErrorKind`]
//! with a stable numeric code, the one mapping the bindings use (C return codes, Kotlin and
//! Swift exception types). No public function panics on bad arguments: sizes that cannot be
//! allocated are [`ErrorKind::OutOfMemory`], not an abort.
//!
//! # Counts at the FFI edge
//!
//! The Rust API counts positions, tokens and rows in `usize` and token ids in `u32`; bytes
//! are `u64`. The bindings (`bindings/`) mirror counts as `u32` (a session holds at most
//! [`MAX_CTX`] = 2^24 positions, so every count fits) and bytes as `u64`, converting in one
//! place each; this is the one decision, made here.
//!
//! # Logging
//!
//! The library logs through [`tracing`](https://docs.rs/tracing) (model load, session
//! sizes, expert residency) and never prints. An application routes it by installing a
//! subscriber, e.g. `tracing_subscriber::fmt().with_env_filter("fennec_core=info").init()`;
//! on Android a `tracing-android` layer sends it to logcat, and the C ABI forwards events
//! to a callback the firmware registers.
//!
//! # Threads
//!
//! [`Model`] is `Send + Sync`: share it with `Arc`. [`Session`] is `Send`: one thread uses it
//! at a time; cancel it from another with a [`CancelHandle`]. Sessions on one model share its
//! worker threads ([`LoadOptions::n_threads`], idle spin in [`LoadOptions::idle_spin`]).

#![deny(missing_docs)]

pub mod backend;
pub mod chat;
mod error;
mod generate;
pub mod gguf;
mod kv_cache;
mod model;
mod ops;
pub mod sampler;
mod session;
pub mod speech;
pub mod tensor_names;
pub mod tokenizer;
pub mod vision;

pub use error::{Error, ErrorKind, Result};
pub use generate::{CancelHandle, Completion, GenerateOptions, Piece, Stats, StopReason};
pub use kv_cache::KvType;
pub use model::{
    ExpertAdvice, ExpertLayerStats, ExpertResidencyOptions, ExpertStats, Llama4Hparams,
    Llama4LayerKind, LlamaHparams, LoadOptions, Model, DEFAULT_EXPERT_LOOKAHEAD,
};
pub use sampler::SamplerOptions;
pub use session::{Input, Logits, Session, SessionOptions, EMBEDDING_TOKEN, MAX_CTX};
pub use speech::{TranscribeOptions, Transcript, WhisperModel};
