//! Generating text in a session: prefill, sample, stream, stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::chat::ChatMessage;
use crate::error::{Error, Result};
use crate::sampler::{Sampler, SamplerOptions};
use crate::session::{Input, Logits, Session};
use crate::tokenizer::StreamDecoder;
use crate::vision::Prompt;

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

impl GenerateOptions {
    /// Up to `max_tokens` tokens with `sampler`, no extra stop strings or tokens.
    pub fn new(max_tokens: usize, sampler: SamplerOptions) -> Self {
        Self {
            max_tokens,
            sampler,
            ..Self::default()
        }
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// An end-of-generation token (EOS, end of turn, …) or a stop token.
    Eos,
    /// `max_tokens` were generated.
    Length,
    /// A stop string appeared.
    StopString,
    /// The context is full.
    ContextFull,
    /// [`CancelHandle::cancel`] was called (during the prompt or generation).
    Cancelled,
    /// The streaming callback returned `false`.
    Callback,
}

impl StopReason {
    /// Short name: `eos`, `length`, `stop`, `context`, `cancelled`, `callback`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::Length => "length",
            StopReason::StopString => "stop",
            StopReason::ContextFull => "context",
            StopReason::Cancelled => "cancelled",
            StopReason::Callback => "callback",
        }
    }
}

/// One step of streamed output, passed to the callback of [`Session::generate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece<'a> {
    /// The token just generated; `None` for the final call that flushes held-back text.
    pub token: Option<u32>,
    /// Text that is now final (possibly empty: a character split across tokens, or text
    /// held back because it could still become a stop string).
    pub text: &'a str,
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

/// Cancels a running evaluation or generation from another thread.
///
/// A handle stays cancelled until [`CancelHandle::reset`]: a cancel issued just before a
/// call is not lost, and every later call using the handle stops at once.
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// A handle that has not been cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the work to stop: prefill within one micro-batch, generation after the current
    /// token.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Clears a cancellation so the handle can be used again.
    pub fn reset(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Session {
    /// Evaluates `inputs` after what the session already holds, then samples tokens until a
    /// stop condition, calling `on_piece` after each token with the text that became final
    /// (and once more at the end to flush held-back text). `on_piece` returns whether to go
    /// on; `false` stops with [`StopReason::Callback`].
    ///
    /// `cancel` is checked before every prompt micro-batch and every token; a cancelled
    /// handle stops with [`StopReason::Cancelled`] (what was evaluated stays in the context).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for empty input, [`Error::ContextFull`] when the input does
    /// not fit (generation itself stops with [`StopReason::ContextFull`]), the errors of
    /// [`Session::eval`], and [`Error::NoTokenizer`] for a model without a vocabulary.
    pub fn generate(
        &mut self,
        inputs: &[Input<'_>],
        opts: &GenerateOptions,
        cancel: &CancelHandle,
        on_piece: &mut dyn FnMut(Piece<'_>) -> bool,
    ) -> Result<Completion> {
        let model = self.model().clone();
        let tokenizer = model.tokenizer()?;
        let n_prompt = Input::total_len(inputs)?;
        if n_prompt == 0 {
            return Err(Error::InvalidArgument(
                "generation needs at least one new input position".into(),
            ));
        }
        let start = Instant::now();
        let mut stats = Stats {
            prompt_tokens: n_prompt,
            ..Stats::default()
        };
        let mut logits = match self.eval_cancellable(inputs, Logits::Last, cancel) {
            Ok(l) => l.to_vec(),
            Err(Error::Cancelled { evaluated }) => {
                stats.prompt_tokens = evaluated;
                stats.prompt_seconds = start.elapsed().as_secs_f64();
                return Ok(Completion {
                    tokens: Vec::new(),
                    text: String::new(),
                    stop: StopReason::Cancelled,
                    stats,
                });
            }
            Err(e) => return Err(e),
        };
        stats.prompt_seconds = start.elapsed().as_secs_f64();
        let gen_start = Instant::now();
        let mut sampler = Sampler::new(opts.sampler.clone());
        let mut decoder = StreamDecoder::lossy(tokenizer.clone());
        let room = self.n_ctx() - self.n_past() + 1;
        let expected = if opts.max_tokens > 0 {
            opts.max_tokens.min(room)
        } else {
            room
        };
        // Sized up front (bounded) so the loop does not reallocate as the output grows.
        let mut tokens = Vec::with_capacity(expected.min(1 << 16));
        let mut text = String::with_capacity(expected.min(1 << 16) * 16);
        let mut emitted: usize = 0; // bytes of `text` already passed to on_piece
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
            decoder.push_into(token, &mut text)?;
            if let Some(at) =
                find_stop(&text, &opts.stop_strings, emitted.saturating_sub(hold_back))
            {
                text.truncate(at);
                break StopReason::StopString;
            }
            // Emit all but the tail that could still become a stop string.
            let safe =
                floor_char_boundary(&text, text.len().saturating_sub(hold_back)).max(emitted);
            let piece = Piece {
                token: Some(token),
                text: &text[emitted..safe],
            };
            emitted = safe;
            if !on_piece(piece) {
                break StopReason::Callback;
            }
            if self.n_past() >= self.n_ctx() {
                break StopReason::ContextFull;
            }
            let next = self.eval(&[Input::Tokens(&[token])], Logits::Last)?;
            logits.copy_from_slice(next);
        };
        if stop != StopReason::StopString {
            text.push_str(&decoder.flush()?);
        }
        if text.len() > emitted {
            on_piece(Piece {
                token: None,
                text: &text[emitted..],
            });
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
impl Session {
    /// Answers a conversation: renders `messages` with the model's chat template (the
    /// assistant header last), expands their images, keeps the prefix of the context that
    /// equals the rendering ([`Session::reuse_prefix`]) and generates from there. Calling it
    /// each turn with the whole conversation, the model's replies included, evaluates only
    /// the new turn.
    ///
    /// # Errors
    /// Those of [`Prompt::from_chat`](crate::vision::Prompt::from_chat) (no chat template,
    /// a template that ignores images) and of [`Session::generate`].
    pub fn chat(
        &mut self,
        messages: &[ChatMessage],
        opts: &GenerateOptions,
        cancel: &CancelHandle,
        on_piece: &mut dyn FnMut(Piece<'_>) -> bool,
    ) -> Result<Completion> {
        let model = self.model().clone();
        let prompt = Prompt::from_chat(&model, messages, true)?;
        let conversation = prompt.inputs();
        let kept = self.reuse_prefix(&conversation)?;
        self.generate(&Input::skip(&conversation, kept), opts, cancel, on_piece)
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
