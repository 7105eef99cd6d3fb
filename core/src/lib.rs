//! `fennec-core`: reads GGUF models and runs them.
//!
//! ```no_run
//! use fennec_core::{Logits, Model, LoadOptions, Session, SessionOptions};
//! let model = Model::load("SmolLM2-135M-Instruct.Q4_1.gguf", &LoadOptions::default())?;
//! let mut session = Session::new(model.clone(), SessionOptions::default())?;
//! let logits = session.eval(&[1, 2, 3], Logits::Last)?;
//! assert_eq!(logits.len(), model.n_vocab());
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
