//! Generating text in a session: prefill, sample, stream, stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::sampler::{Sampler, SamplerOptions};
use crate::session::{Logits, Session};

/// What to generate.
#[derive(Clone, Debug, Default)]
pub struct GenerateOptions {
    /// Most tokens to generate (0 = until the context is full).
    pub max_tokens: usize,
    /// Sampling settings.
    pub sampler: SamplerOptions,
    /// Strings that end generation when they appear in the output (not included in it).
    pub stop_strings: Vec<String>,
    /// Token ids that end generation, besides the model's end-of-generation tokens.
    pub stop_tokens: Vec<u32>,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// An end-of-generation token (EOS, end of turn, …) or a stop token.
    Eos,
    /// `max_tokens` were generated.
    Length,
    /// A stop string appeared.
    StopString,
    /// The context is full.
    ContextFull,
    /// [`CancelHandle::cancel`] was called.
    Cancelled,
}

impl StopReason {
    /// Short name: `eos`, `length`, `stop`, `context`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::Length => "length",
            StopReason::StopString => "stop",
            StopReason::ContextFull => "context",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// Timing and counts of one generation call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Prompt tokens evaluated.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Seconds spent evaluating the prompt.
    pub prompt_seconds: f64,
    /// Seconds spent generating (after the prompt).
    pub generation_seconds: f64,
    /// Seconds from the call to the first generated token.
    pub time_to_first_token: f64,
}

impl Stats {
    /// Prompt tokens per second.
    pub fn prompt_tok_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prompt_seconds.max(1e-9)
    }

    /// Generated tokens per second.
    pub fn generation_tok_s(&self) -> f64 {
        self.generated_tokens as f64 / self.generation_seconds.max(1e-9)
    }
}

/// The result of a generation call.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// Generated token ids (the end-of-generation token included when it stopped on one).
    pub tokens: Vec<u32>,
    /// Generated text (end-of-generation tokens and stop strings excluded).
    pub text: String,
    /// Why it stopped.
    pub stop: StopReason,
    /// Counts and timings.
    pub stats: Stats,
}

/// Cancels a running generation from another thread.
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// A handle that has not been cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the generation to stop after the current token.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn reset(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Session {
    /// Evaluates `prompt` after what the session already holds, then samples tokens until a
    /// stop condition, calling `on_text` with each piece of text as soon as it is complete
    /// UTF-8. The prompt must fit the context; generation stops with
    /// [`StopReason::ContextFull`] when the context fills up.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        cancel: &CancelHandle,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion> {
        cancel.reset();
        let model = self.model().clone();
        let tokenizer = model.tokenizer()?;
        if prompt.is_empty() {
            return Err(Error::InvalidArgument(
                "generation needs at least one new prompt token".into(),
            ));
        }
        let start = Instant::now();
        let mut logits = self.eval(prompt, Logits::Last)?;
        let prompt_seconds = start.elapsed().as_secs_f64();
        let mut stats = Stats {
            prompt_tokens: prompt.len(),
            prompt_seconds,
            ..Stats::default()
        };
        let gen_start = Instant::now();
        let mut sampler = Sampler::new(opts.sampler.clone());
        let mut decoder = crate::tokenizer::StreamDecoder::lossy(tokenizer);
        let mut tokens = Vec::new();
        let mut text = String::new();
        let mut emitted: usize = 0; // bytes of `text` already passed to on_text
        let hold_back = opts.stop_strings.iter().map(String::len).max().unwrap_or(0);
        let stop = loop {
            if cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            if opts.max_tokens > 0 && tokens.len() >= opts.max_tokens {
                break StopReason::Length;
            }
            let token = sampler.sample(&mut logits, self.tokens());
            if tokens.is_empty() {
                stats.time_to_first_token = start.elapsed().as_secs_f64();
            }
            tokens.push(token);
            if tokenizer.is_eog(token) || opts.stop_tokens.contains(&token) {
                break StopReason::Eos;
            }
            text.push_str(&decoder.push(token)?);
            if let Some(at) =
                find_stop(&text, &opts.stop_strings, emitted.saturating_sub(hold_back))
            {
                text.truncate(at);
                break StopReason::StopString;
            }
            // Emit all but the tail that could still become a stop string.
            let safe = floor_char_boundary(&text, text.len().saturating_sub(hold_back));
            if safe > emitted {
                on_text(&text[emitted..safe]);
                emitted = safe;
            }
            if self.n_past() >= self.n_ctx() {
                break StopReason::ContextFull;
            }
            logits = self.eval(&[token], Logits::Last)?;
        };
        if stop != StopReason::StopString {
            text.push_str(&decoder.flush()?);
        }
        if text.len() > emitted {
            on_text(&text[emitted..]);
        }
        stats.generated_tokens = tokens.len();
        stats.generation_seconds = gen_start.elapsed().as_secs_f64();
        Ok(Completion {
            tokens,
            text,
            stop,
            stats,
        })
    }
}

/// Byte offset of the first stop string found at or after `from`.
fn find_stop(text: &str, stops: &[String], from: usize) -> Option<usize> {
    let from = floor_char_boundary(text, from);
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text[from..].find(s.as_str()).map(|i| from + i))
        .min()
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
