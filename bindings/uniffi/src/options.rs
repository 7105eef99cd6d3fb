//! Plain records crossing the boundary: options, messages, pieces and results.

use std::sync::Arc;

use crate::image::Image;

/// How to load a model.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct LoadOptions {
    /// Worker threads (0 = one per core).
    #[uniffi(default = 0)]
    pub n_threads: u32,
    /// A vision projector (mmproj GGUF) to load beside the text model, for image messages.
    #[uniffi(default = None)]
    pub mmproj_path: Option<String>,
    /// Bytes of encoded images to keep, so a conversation re-sent each turn does not encode
    /// its images again (0 = no cache).
    #[uniffi(default = 67108864)]
    pub image_cache_bytes: u64,
}

/// Storage of a session's key/value cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Enum)]
pub enum KvCacheType {
    /// 32-bit floats: exact, largest.
    F32,
    /// 16-bit floats (the default, as llama.cpp).
    #[default]
    F16,
    /// 8-bit blocks: half of F16.
    Q8_0,
}

impl From<KvCacheType> for fennec_core::KvType {
    fn from(t: KvCacheType) -> Self {
        match t {
            KvCacheType::F32 => Self::F32,
            KvCacheType::F16 => Self::F16,
            KvCacheType::Q8_0 => Self::Q8_0,
        }
    }
}

/// A session's context.
#[derive(Clone, Debug, uniffi::Record)]
pub struct SessionOptions {
    /// Context length in tokens.
    #[uniffi(default = 4096)]
    pub n_ctx: u32,
    /// Key/value cache storage (absent = F16).
    #[uniffi(default = None)]
    pub kv_type: Option<KvCacheType>,
    /// Positions evaluated per micro-batch of a prompt.
    #[uniffi(default = 512)]
    pub n_ubatch: u32,
}

impl Default for SessionOptions {
    fn default() -> Self {
        let core = fennec_core::SessionOptions::default();
        Self {
            n_ctx: core.n_ctx as u32,
            kv_type: None,
            n_ubatch: core.n_ubatch as u32,
        }
    }
}

impl From<&SessionOptions> for fennec_core::SessionOptions {
    fn from(o: &SessionOptions) -> Self {
        Self {
            n_ctx: o.n_ctx as usize,
            kv_type: o.kv_type.unwrap_or_default().into(),
            n_ubatch: o.n_ubatch as usize,
        }
    }
}

/// What to generate and how to sample. The defaults are greedy: the same output every run.
#[derive(Clone, Debug, uniffi::Record)]
pub struct GenerateOptions {
    /// Most tokens to generate (0 = until the context is full).
    #[uniffi(default = 256)]
    pub max_tokens: u32,
    /// Sampling temperature; 0 picks the most likely token (greedy).
    #[uniffi(default = 0.0)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    #[uniffi(default = 40)]
    pub top_k: u32,
    /// Keep the smallest set of tokens whose probability reaches p (1 = all).
    #[uniffi(default = 0.95)]
    pub top_p: f32,
    /// Drop tokens less likely than min_p × the most likely (0 = none).
    #[uniffi(default = 0.05)]
    pub min_p: f32,
    /// Penalty on tokens seen in the last 64 (1 = none).
    #[uniffi(default = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed for sampling.
    #[uniffi(default = 24301)]
    pub seed: u64,
    /// Strings that end generation (not included in the output).
    #[uniffi(default = [])]
    pub stop_strings: Vec<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            seed: 0x5eed,
            stop_strings: Vec::new(),
        }
    }
}

impl From<&GenerateOptions> for fennec_core::GenerateOptions {
    fn from(o: &GenerateOptions) -> Self {
        let sampler = fennec_core::SamplerOptions {
            temperature: o.temperature,
            top_k: o.top_k as usize,
            top_p: o.top_p,
            min_p: o.min_p,
            repeat_penalty: o.repeat_penalty,
            seed: o.seed,
            ..fennec_core::SamplerOptions::default()
        };
        let mut opts = fennec_core::GenerateOptions::new(o.max_tokens as usize, sampler);
        opts.stop_strings = o.stop_strings.clone();
        opts
    }
}

/// One message of a conversation: a role (`system`, `user`, `assistant`), its text, and the
/// images it shows (placed before the text, as chat templates expect).
#[derive(Clone, Debug, uniffi::Record)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message's text.
    pub text: String,
    /// Images shown with the message (needs a model loaded with an mmproj).
    #[uniffi(default = [])]
    pub images: Vec<Arc<Image>>,
}

/// A piece of streamed output.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Piece {
    /// Text that became final with this token (may be empty: a character split across
    /// tokens, or text held back while it could still become a stop string).
    pub text: String,
    /// The token just generated; absent for the final piece that flushes held-back text.
    pub token: Option<u32>,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum StopReason {
    /// An end-of-generation token.
    Eos,
    /// `max_tokens` were generated.
    Length,
    /// A stop string appeared.
    StopString,
    /// The context is full.
    ContextFull,
    /// The cancel token was cancelled.
    Cancelled,
    /// The listener returned false.
    Listener,
}

impl From<fennec_core::StopReason> for StopReason {
    fn from(s: fennec_core::StopReason) -> Self {
        use fennec_core::StopReason as S;
        match s {
            S::Eos => Self::Eos,
            S::Length => Self::Length,
            S::StopString => Self::StopString,
            S::ContextFull => Self::ContextFull,
            S::Cancelled => Self::Cancelled,
            _ => Self::Listener,
        }
    }
}

/// Counts and timings of one call.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct TimingStats {
    /// Prompt positions evaluated (what was new since the kept prefix).
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub generated_tokens: u32,
    /// Seconds evaluating the prompt.
    pub prompt_seconds: f64,
    /// Seconds generating.
    pub generation_seconds: f64,
    /// Seconds from the call to the first token.
    pub time_to_first_token: f64,
    /// Seconds encoding images (0 when none, or all were cached).
    pub image_seconds: f64,
}

/// The result of a generation.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Completion {
    /// The generated text (end-of-generation tokens and stop strings excluded).
    pub text: String,
    /// The generated token ids.
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Counts and timings.
    pub stats: TimingStats,
}

impl Completion {
    pub(crate) fn from_core(c: fennec_core::Completion, image_seconds: f64) -> Self {
        Self {
            stats: TimingStats {
                prompt_tokens: c.stats.prompt_tokens as u32,
                generated_tokens: c.stats.generated_tokens as u32,
                prompt_seconds: c.stats.prompt_seconds,
                generation_seconds: c.stats.generation_seconds,
                time_to_first_token: c.stats.time_to_first_token,
                image_seconds,
            },
            text: c.text,
            tokens: c.tokens,
            stop_reason: c.stop.into(),
        }
    }
}
