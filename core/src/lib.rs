//! `fennec-core`: reads GGUF models and runs them.
//!
//! ```no_run
//! use fennec_core::chat::ChatMessage;
//! use fennec_core::{CancelHandle, GenerateOptions, LoadOptions, Model, SamplerOptions, Session, SessionOptions};
//!
//! let model = Model::load("SmolLM2-135M-Instruct.Q4_1.gguf", &LoadOptions::default())?;
//! let prompt = model.chat_template()?.render(&[ChatMessage::new("user", "Hi!")], true)?;
//! let tokens = model.tokenizer()?.encode(&prompt, false, true)?;
//! let mut session = Session::new(model.clone(), SessionOptions::default())?;
//! let opts = GenerateOptions { max_tokens: 64, sampler: SamplerOptions::greedy(), ..Default::default() };
//! let done = session.generate(&tokens, &opts, &CancelHandle::new(), &mut |text| print!("{text}"))?;
//! println!("\n{:?}: {:.1} tok/s", done.stop, done.stats.generation_tok_s());
//! # Ok::<(), fennec_core::Error>(())
//! ```

#![deny(missing_docs)]

pub mod chat;
mod error;
mod generate;
pub mod gguf;
mod kv_cache;
mod model;
mod ops;
pub mod sampler;
mod session;
pub mod tokenizer;

pub use error::{Error, ErrorKind, Result};
pub use generate::{CancelHandle, Completion, GenerateOptions, Piece, Stats, StopReason};
pub use kv_cache::KvType;
pub use model::{
    ExpertAdvice, ExpertLayerStats, ExpertResidencyOptions, ExpertStats, Llama4Hparams,
    Llama4LayerKind, LlamaHparams, LoadOptions, Model,
};
pub use sampler::SamplerOptions;
pub use session::{Input, Logits, Session, SessionOptions, EMBEDDING_TOKEN, MAX_CTX};
