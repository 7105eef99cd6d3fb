//! Greedy decoding with Whisper's prompt and token rules, the no-speech check, and
//! transcription of whole clips in consecutive 30-second windows.

use std::time::{Duration, Instant};

use crate::error::{try_vec, Error, Result};
use crate::generate::CancelHandle;

use super::encoder::EncoderOutput;
use super::mel::{log_mel, LogMel, MelSpec};
use super::model::WhisperModel;

/// What the decoder is asked to do (multilingual models only; English-only models always
/// transcribe).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Task {
    /// Transcribe in the spoken language.
    #[default]
    Transcribe,
    /// Translate into English.
    Translate,
}

/// Options of [`WhisperModel::decode_greedy`].
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeOptions {
    /// Language code of the speech (`"en"`, `"de"`, …) for multilingual models; `None`
    /// means English. Ignored by English-only models.
    pub language: Option<String>,
    /// Transcribe or translate (multilingual models).
    pub task: Task,
    /// Most tokens generated per window (at least one is); `None`: up to the decoder's
    /// context (448 positions including the prompt).
    pub max_tokens: Option<usize>,
    /// Also suppress the timestamp tokens. faster-whisper / CTranslate2 do not without
    /// timestamps (the no-timestamps token makes them unlikely, and they count in each
    /// step's log-probability), so the default `false` reproduces their scores.
    pub suppress_timestamps: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            language: None,
            task: Task::Transcribe,
            max_tokens: None,
            suppress_timestamps: false,
        }
    }
}

/// How many encoder positions (20 ms each) a window is encoded over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncoderFrames {
    /// The whole 30-second window (1500 positions), silence padding included: what Whisper
    /// was trained on and what the references (faster-whisper, whisper.cpp by default)
    /// compute.
    #[default]
    Full,
    /// Only the positions the window's audio covers, plus `margin_positions` of the
    /// padding after it, rounded up to a multiple of 16, at least `min_positions` and at
    /// most the whole window (whisper.cpp's `audio_ctx`, per window). Much faster on short
    /// utterances (the attention's cost goes with the square of the positions), but the
    /// model never saw a short context in training: a transcript may differ from
    /// [`Full`](Self::Full)'s. A window whose decode loops (a run of tokens three times over,
    /// or no end before the length limit) is decoded again over the whole window.
    Fit {
        /// Positions after the audio's end that are encoded too.
        margin_positions: usize,
        /// Fewest positions encoded.
        min_positions: usize,
    },
}

impl EncoderFrames {
    /// [`Fit`](Self::Fit) as measured on the reference clips: 1 s (50 positions) after the
    /// audio, at least 8 s (400 positions) in all. Shorter contexts made tiny.en loop
    /// ("Good morning Good morning …") on a 0.9 s clip.
    pub const FIT: Self = Self::Fit {
        margin_positions: 50,
        min_positions: 400,
    };

    /// Positions to encode for a window whose audio fills `content_frames` mel frames, of
    /// a model with `n_audio_ctx` positions.
    pub fn positions(self, content_frames: usize, n_audio_ctx: usize) -> usize {
        match self {
            Self::Full => n_audio_ctx,
            Self::Fit {
                margin_positions,
                min_positions,
            } => (content_frames.div_ceil(2) + margin_positions)
                .next_multiple_of(16)
                .max(min_positions)
                .clamp(1, n_audio_ctx),
        }
    }
}

/// Options of [`WhisperModel::transcribe`].
#[derive(Clone, Debug, PartialEq)]
pub struct TranscribeOptions {
    /// Sample rate of the samples passed in; must be the model's (16 000 Hz): resample
    /// before (Fennec's voice front end does).
    pub sample_rate: u32,
    /// Longest audio accepted, in seconds (longer is an error; split it at pauses).
    pub max_audio_s: f32,
    /// Prompt and length settings.
    pub decode: DecodeOptions,
    /// Drop a window that looks like no speech (faster-whisper's rule): its no-speech
    /// probability is above `no_speech_threshold` and its average log-probability is not
    /// above `log_prob_threshold`.
    pub skip_no_speech: bool,
    /// See `skip_no_speech` (0.6).
    pub no_speech_threshold: f32,
    /// See `skip_no_speech` (−1.0).
    pub log_prob_threshold: f32,
    /// Encoder positions per window: [`EncoderFrames::Full`] (the default, the references'
    /// computation) or [`EncoderFrames::Fit`] (faster on short clips).
    pub encoder_frames: EncoderFrames,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            max_audio_s: 600.0,
            decode: DecodeOptions::default(),
            skip_no_speech: true,
            no_speech_threshold: 0.6,
            log_prob_threshold: -1.0,
            encoder_frames: EncoderFrames::Full,
        }
    }
}

/// The result of greedy decoding of one window.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The generated text tokens (end of transcript excluded).
    pub tokens: Vec<u32>,
    /// Probability of the no-speech token at the start-of-transcript position (softmax of
    /// the raw logits there).
    pub no_speech_prob: f32,
    /// Sum of the chosen tokens' log-probabilities (end of transcript included), taken over
    /// the logits after suppression.
    pub sum_logprob: f64,
    /// `sum_logprob / (tokens.len() + 1)` (faster-whisper's `avg_logprob`).
    pub avg_logprob: f32,
    /// Whether decoding ended at the end-of-transcript token (else at the length limit).
    pub reached_eot: bool,
}

/// One step of greedy decoding, as [`WhisperModel::decode_greedy_steps`] reports it.
#[derive(Debug)]
pub struct Step<'a> {
    /// Step index (0: the first generated token).
    pub index: usize,
    /// The logits after suppression (suppressed ids at −∞).
    pub logits: &'a [f32],
    /// The chosen token (the arg-max).
    pub token: u32,
    /// Its log-probability.
    pub logprob: f32,
}

/// One 30-second window of a transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Start of the window in the audio, seconds.
    pub start_s: f32,
    /// End of the window's content, seconds.
    pub end_s: f32,
    /// Generated tokens, end of transcript excluded (empty when skipped).
    pub tokens: Vec<u32>,
    /// The decoded text (empty when skipped).
    pub text: String,
    /// See [`Decoded::no_speech_prob`].
    pub no_speech_prob: f32,
    /// See [`Decoded::avg_logprob`].
    pub avg_logprob: f32,
    /// Dropped by the no-speech rule ([`TranscribeOptions::skip_no_speech`]).
    pub skipped_as_no_speech: bool,
}

/// Time spent in each stage of a transcription, summed over windows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpeechTimings {
    /// The log-mel front end.
    pub mel: Duration,
    /// The encoder.
    pub encode: Duration,
    /// The decoder, including each window's cross-attention keys and values.
    pub decode: Duration,
}

/// The transcript of a clip.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// The text of every kept window, joined and trimmed.
    pub text: String,
    /// The text tokens of every kept window, in order.
    pub tokens: Vec<u32>,
    /// The windows, kept or skipped.
    pub segments: Vec<Segment>,
    /// The lowest no-speech probability of the windows (that of the only window for a clip
    /// up to 30 s); 1.0 when there is no window.
    pub no_speech_prob: f32,
    /// Log-probability per token over all windows (faster-whisper's `avg_logprob` for one
    /// window).
    pub avg_logprob: f32,
    /// Whether every window was dropped as no speech (the transcript is then empty).
    pub skipped_as_no_speech: bool,
    /// Time per stage.
    pub timings: SpeechTimings,
}

impl WhisperModel {
    /// The log-mel spectrogram of `samples` (mono at the model's sample rate), computed as
    /// faster-whisper does: `n_samples / hop_length` content frames.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] for empty or non-finite samples.
    pub fn log_mel(&self, samples: &[f32]) -> Result<LogMel> {
        check_samples(samples)?;
        let hp = &self.hp;
        log_mel(
            samples,
            &MelSpec {
                n_fft: hp.n_fft,
                hop: hp.hop_length,
                filters: &self.w.mel_filters,
                n_mels: hp.n_mels,
            },
        )
    }

    /// The decoder prompt: start of transcript, then (multilingual models) the language and
    /// task, then no-timestamps.
    pub fn prompt(&self, opts: &DecodeOptions) -> Result<Vec<u32>> {
        let t = &self.tokens;
        let mut prompt = vec![t.sot];
        if self.hp.multilingual {
            prompt.push(self.language_token(opts.language.as_deref().unwrap_or("en"))?);
            prompt.push(match opts.task {
                Task::Transcribe => t.transcribe,
                Task::Translate => t.translate,
            });
        }
        prompt.push(t.no_timestamps);
        Ok(prompt)
    }

    /// Greedy decoding of one encoded window: Whisper's prompt, the file's suppressed ids at
    /// each step, blank (space, end of transcript) at the first step;
    /// stops at end of transcript or the length limit. Checks `cancel` between tokens.
    pub fn decode_greedy(
        &self,
        enc: &EncoderOutput,
        opts: &DecodeOptions,
        cancel: &CancelHandle,
    ) -> Result<Decoded> {
        self.decode_greedy_steps(enc, opts, cancel, &mut |_| {})
    }

    /// [`decode_greedy`](Self::decode_greedy), calling `on_step` with each step's
    /// suppressed logits and choice.
    pub fn decode_greedy_steps(
        &self,
        enc: &EncoderOutput,
        opts: &DecodeOptions,
        cancel: &CancelHandle,
        on_step: &mut dyn FnMut(&Step<'_>),
    ) -> Result<Decoded> {
        let t = &self.tokens;
        let prompt = self.prompt(opts)?;
        let limit = self.hp.n_text_ctx.saturating_sub(prompt.len());
        let max_tokens = opts.max_tokens.unwrap_or(limit).min(limit);
        let mut dec = self.decoder(enc)?;
        let mut work = try_vec(self.hp.n_vocab, 0.0f32, "whisper logits")?;

        // The start-of-transcript position's logits give the no-speech probability.
        let first = dec.feed(prompt[0])?;
        let no_speech_prob = softmax_at(first, t.no_speech as usize);
        work.copy_from_slice(first);
        if let [_, middle @ .., last] = prompt.as_slice() {
            for &tok in middle {
                dec.feed_silent(tok)?;
            }
            work.copy_from_slice(dec.feed(*last)?);
        }

        let mut tokens = Vec::new();
        let mut sum_logprob = 0.0f64;
        let mut reached_eot = false;
        for index in 0.. {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled {
                    evaluated: dec.n_past(),
                });
            }
            self.suppress(&mut work, index == 0, opts.suppress_timestamps);
            let token = argmax(&work);
            let logprob = work[token as usize] - log_sum_exp(&work);
            on_step(&Step {
                index,
                logits: &work,
                token,
                logprob,
            });
            sum_logprob += f64::from(logprob);
            if token == t.eot {
                reached_eot = true;
                break;
            }
            tokens.push(token);
            if tokens.len() >= max_tokens {
                break;
            }
            work.copy_from_slice(dec.feed(token)?);
        }
        let avg_logprob = (sum_logprob / (tokens.len() + 1) as f64) as f32;
        Ok(Decoded {
            tokens,
            no_speech_prob,
            sum_logprob,
            avg_logprob,
            reached_eot,
        })
    }

    /// Sets the ids never generated (and, at the first step, blank ones; with `timestamps`,
    /// every timestamp) to −∞.
    fn suppress(&self, logits: &mut [f32], first_step: bool, timestamps: bool) {
        let t = &self.tokens;
        let mut off = |id: u32| {
            if let Some(x) = logits.get_mut(id as usize) {
                *x = f32::NEG_INFINITY;
            }
        };
        t.suppress.iter().for_each(|&id| off(id));
        if first_step {
            t.suppress_begin.iter().for_each(|&id| off(id));
        }
        if timestamps {
            let ts = (t.timestamp_begin as usize).min(logits.len());
            logits[ts..].fill(f32::NEG_INFINITY);
        }
    }

    /// Transcribes `samples` (mono at [`TranscribeOptions::sample_rate`], which must be the
    /// model's 16 kHz): log-mel of the whole clip, then for each consecutive 30-second
    /// window the encoder and greedy decoding, dropping windows that look like no speech
    /// when [`TranscribeOptions::skip_no_speech`] is set. Checks `cancel` between encoder
    /// blocks and tokens. Audio shorter than one hop (10 ms) has no frame and no window:
    /// its transcript is empty.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] for empty or non-finite samples, a wrong
    /// sample rate, audio longer than [`TranscribeOptions::max_audio_s`] or a language the
    /// model lacks; [`crate::ErrorKind::Cancelled`]; [`crate::ErrorKind::OutOfMemory`].
    pub fn transcribe(
        &self,
        samples: &[f32],
        opts: &TranscribeOptions,
        cancel: &CancelHandle,
    ) -> Result<Transcript> {
        let hp = &self.hp;
        if opts.sample_rate != hp.sample_rate {
            return Err(Error::InvalidArgument(format!(
                "audio at {} Hz: this Whisper model takes {} Hz mono (resample first)",
                opts.sample_rate, hp.sample_rate
            )));
        }
        let seconds = samples.len() as f64 / f64::from(hp.sample_rate);
        let within = seconds <= f64::from(opts.max_audio_s); // false for a NaN limit
        if !within {
            return Err(Error::InvalidArgument(format!(
                "{seconds:.1} s of audio is longer than the {} s limit (max_audio_s): split it \
                 at pauses",
                opts.max_audio_s
            )));
        }
        let mut timings = SpeechTimings::default();
        let started = Instant::now();
        let mel = self.log_mel(samples)?;
        timings.mel = started.elapsed();

        let n_window = hp.n_window_frames();
        let frame_s = hp.hop_length as f32 / hp.sample_rate as f32;
        let mut segments = Vec::new();
        let mut start = 0;
        while start < mel.n_frames {
            let window = mel.window(start, n_window)?;
            let end = mel.n_frames.min(start + n_window);
            let n_ctx = opts.encoder_frames.positions(end - start, hp.n_audio_ctx);
            let mut decoded = self.encode_decode(&window, n_ctx, opts, cancel, &mut timings)?;
            if n_ctx < hp.n_audio_ctx && looks_like_a_loop(&decoded) {
                // A fitted window can send tiny models into a loop; the whole window is what
                // Whisper was trained on.
                tracing::debug!(n_ctx, "fitted window looped: decoding the whole window");
                decoded =
                    self.encode_decode(&window, hp.n_audio_ctx, opts, cancel, &mut timings)?;
            }
            let skipped = opts.skip_no_speech
                && decoded.no_speech_prob > opts.no_speech_threshold
                && decoded.avg_logprob <= opts.log_prob_threshold;
            segments.push(self.segment(decoded, start, end, frame_s, skipped)?);
            start = end;
        }
        Ok(self.join(segments, timings))
    }

    /// Encodes `n_ctx` positions of `window` and decodes them, adding to `timings`.
    fn encode_decode(
        &self,
        window: &[f32],
        n_ctx: usize,
        opts: &TranscribeOptions,
        cancel: &CancelHandle,
        timings: &mut SpeechTimings,
    ) -> Result<Decoded> {
        let started = Instant::now();
        let enc = self.encode_positions(window, n_ctx, cancel)?;
        timings.encode += started.elapsed();
        let started = Instant::now();
        let decoded = self.decode_greedy(&enc, &opts.decode, cancel)?;
        timings.decode += started.elapsed();
        Ok(decoded)
    }

    fn segment(
        &self,
        d: Decoded,
        start: usize,
        end: usize,
        frame_s: f32,
        skipped: bool,
    ) -> Result<Segment> {
        let (tokens, text) = if skipped {
            (Vec::new(), String::new())
        } else {
            // Text tokens only (a timestamp that won a step is not text), as faster-whisper.
            let eot = self.tokens.eot;
            let text_ids: Vec<u32> = d.tokens.iter().copied().filter(|&t| t < eot).collect();
            let text = self.tokenizer.decode(&text_ids)?;
            (d.tokens, text)
        };
        Ok(Segment {
            start_s: start as f32 * frame_s,
            end_s: end as f32 * frame_s,
            tokens,
            text,
            no_speech_prob: d.no_speech_prob,
            avg_logprob: d.avg_logprob,
            skipped_as_no_speech: skipped,
        })
    }

    fn join(&self, segments: Vec<Segment>, timings: SpeechTimings) -> Transcript {
        let text: String = segments.iter().map(|s| s.text.as_str()).collect();
        let tokens: Vec<u32> = segments.iter().flat_map(|s| s.tokens.clone()).collect();
        let no_speech_prob = segments
            .iter()
            .map(|s| s.no_speech_prob)
            .fold(1.0f32, f32::min);
        // Each window's log-prob sum over its tokens plus its end of transcript.
        let (sum, count) = segments.iter().fold((0.0f64, 0usize), |(s, c), seg| {
            let n = seg.tokens.len() + 1;
            (s + f64::from(seg.avg_logprob) * n as f64, c + n)
        });
        Transcript {
            text: text.trim().to_string(),
            tokens,
            no_speech_prob,
            avg_logprob: if count == 0 {
                0.0
            } else {
                (sum / count as f64) as f32
            },
            skipped_as_no_speech: !segments.is_empty()
                && segments.iter().all(|s| s.skipped_as_no_speech),
            segments,
            timings,
        }
    }
}

fn check_samples(samples: &[f32]) -> Result<()> {
    if samples.is_empty() {
        return Err(Error::InvalidArgument(
            "no audio: the sample buffer is empty".into(),
        ));
    }
    if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "audio sample {i} is {} (samples must be finite, in [-1, 1])",
            samples[i]
        )));
    }
    Ok(())
}

/// Index of the largest value (the first on ties).
fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

/// `ln Σ e^x`, in f64.
fn log_sum_exp(x: &[f32]) -> f32 {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    if max == f32::NEG_INFINITY {
        return max;
    }
    let sum: f64 = x.iter().map(|&v| f64::from(v - max).exp()).sum();
    max + sum.ln() as f32
}

/// `softmax(x)[i]`.
fn softmax_at(x: &[f32], i: usize) -> f32 {
    match x.get(i) {
        Some(&v) => (v - log_sum_exp(x)).exp(),
        None => 0.0,
    }
}

/// Whether a decode looks degenerate: it ran to the length limit, or some run of 1 to 8
/// tokens comes three times in a row ("Good morning Good morning Good morning"). Speech
/// can repeat a word too ("no no no"); then the check only costs a second decode.
fn looks_like_a_loop(d: &Decoded) -> bool {
    let t = &d.tokens;
    !d.reached_eot
        || (1..=8).any(|k| {
            (0..(t.len() + 1).saturating_sub(3 * k)).any(|i| {
                t[i..i + k] == t[i + k..i + 2 * k] && t[i..i + k] == t[i + 2 * k..i + 3 * k]
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(tokens: &[u32], reached_eot: bool) -> Decoded {
        Decoded {
            tokens: tokens.to_vec(),
            no_speech_prob: 0.0,
            sum_logprob: 0.0,
            avg_logprob: 0.0,
            reached_eot,
        }
    }

    #[test]
    fn loops_are_runs_repeated_three_times_or_no_end() {
        assert!(!looks_like_a_loop(&decoded(&[], true)));
        assert!(!looks_like_a_loop(&decoded(&[1, 2, 3, 1, 2, 4], true)));
        assert!(!looks_like_a_loop(&decoded(&[5, 6, 5, 6, 7], true)));
        assert!(looks_like_a_loop(&decoded(&[9, 9, 9], true)));
        assert!(looks_like_a_loop(&decoded(
            &[0, 1, 2, 1, 2, 1, 2, 13],
            true
        )));
        let eight: Vec<u32> = (0..8).chain(0..8).chain(0..8).collect();
        assert!(looks_like_a_loop(&decoded(&eight, true)));
        let nine: Vec<u32> = (0..9).chain(0..9).chain(0..9).collect();
        assert!(!looks_like_a_loop(&decoded(&nine, true)));
        assert!(looks_like_a_loop(&decoded(&[1, 2, 3], false)));
    }
}
