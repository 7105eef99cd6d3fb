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

pub mod chat;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod kv_cache;
pub mod model;
pub mod ops;
pub mod sampler;
pub mod session;
pub mod tokenizer;

pub use error::{Error, Result};
pub use generate::{CancelHandle, Completion, GenerateOptions, Stats, StopReason};
pub use kv_cache::KvType;
pub use model::{LoadOptions, Model};
pub use sampler::SamplerOptions;
pub use session::{Logits, Session, SessionOptions};
