//! `fennec-core`: reads GGUF models and runs them.

pub mod gguf;
