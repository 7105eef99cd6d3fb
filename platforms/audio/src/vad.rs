//! Speech endpointing over earshot's voice-activity scores (16 ms frames of 256 samples at
//! 16 kHz).
//!
//! [`Endpointer`] takes 16 kHz mono samples in pushes of any size and returns
//! [`Utterance`]s: speech starts after [`VadConfig::onset_frames`] voiced frames in a row
//! and keeps [`VadConfig::pre_roll_ms`] of audio before the first of them (from a ring
//! buffer); it ends once [`VadConfig::hangover_ms`] pass without a voiced frame, keeping
//! [`VadConfig::post_roll_ms`] after the last voiced frame. Utterances longer than
//! [`VadConfig::max_utterance_ms`] are cut there and continue in the next one; those with
//! less than [`VadConfig::min_speech_ms`] from first to last voiced frame are dropped.
//! [`speech_chunks`] cuts a whole recording into pieces that fit Whisper's 30 s window.

use std::collections::VecDeque;

use crate::error::{AudioError, Result};
use crate::pcm::TARGET_SAMPLE_RATE;

/// Samples per VAD frame (16 ms at 16 kHz), fixed by earshot.
pub const FRAME_SAMPLES: usize = 256;
/// Frames after a start or flush whose scores never count as voiced: earshot's window and
/// context fill during them, and noise there can score high.
pub const WARMUP_FRAMES: u64 = 6;
/// Samples in Whisper's 30 s window at 16 kHz.
pub const WHISPER_WINDOW_SAMPLES: usize = 30 * TARGET_SAMPLE_RATE as usize;

const SAMPLES_PER_MS: u64 = TARGET_SAMPLE_RATE as u64 / 1000;

/// Endpointing settings. Times are in milliseconds of 16 kHz audio.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VadConfig {
    /// A frame is voiced when earshot's score (0..1) is at least this (default 0.5).
    pub threshold: f32,
    /// Voiced frames in a row that start speech (default 3, 48 ms).
    pub onset_frames: u32,
    /// Audio kept before the first onset frame (default 300 ms).
    pub pre_roll_ms: u32,
    /// Silence after the last voiced frame that ends an utterance (default 600 ms).
    pub hangover_ms: u32,
    /// Audio kept after the last voiced frame, at most `hangover_ms` (default 200 ms).
    pub post_roll_ms: u32,
    /// Utterances whose voiced span (first to last voiced frame) is shorter are dropped (default 250 ms).
    pub min_speech_ms: u32,
    /// Longer utterances are cut at this length; the rest continues in the next (default 30 000 ms).
    pub max_utterance_ms: u32,
    /// Peak of the uniform noise added to what earshot scores, not to the output (default
    /// 3e-4, about −70 dBFS, under any microphone's noise floor). Without it, noise that
    /// follows exact digital silence scores as speech; 0 turns it off.
    pub dither: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            onset_frames: 3,
            pre_roll_ms: 300,
            hangover_ms: 600,
            post_roll_ms: 200,
            min_speech_ms: 250,
            max_utterance_ms: 30_000,
            dither: 3e-4,
        }
    }
}

impl VadConfig {
    /// Checks ranges: threshold in (0, 1], at least one onset frame, post-roll ≤ hangover,
    /// and a maximum length above pre-roll plus onset.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(AudioError::InvalidConfig(what));
        if self.threshold.is_nan() || self.threshold <= 0.0 || self.threshold > 1.0 {
            return bad(format!(
                "VAD threshold {} must be in (0, 1]",
                self.threshold
            ));
        }
        if !(0.0..=0.01).contains(&self.dither) {
            return bad(format!("dither {} must be in [0, 0.01]", self.dither));
        }
        if self.onset_frames == 0 {
            return bad("onset_frames must be at least 1".into());
        }
        if self.post_roll_ms > self.hangover_ms {
            return bad(format!(
                "post_roll_ms {} exceeds hangover_ms {}",
                self.post_roll_ms, self.hangover_ms
            ));
        }
        let onset_ms = u64::from(self.onset_frames) * FRAME_SAMPLES as u64 / SAMPLES_PER_MS;
        if u64::from(self.max_utterance_ms) <= u64::from(self.pre_roll_ms) + onset_ms + 16 {
            return bad(format!(
                "max_utterance_ms {} must exceed pre-roll plus onset ({} ms)",
                self.max_utterance_ms,
                u64::from(self.pre_roll_ms) + onset_ms
            ));
        }
        Ok(())
    }
}

/// Why an utterance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Silence lasted the hangover.
    Silence,
    /// The utterance reached the maximum length; speech goes on in the next one.
    MaxLength,
    /// The stream was flushed.
    EndOfStream,
}

/// One stretch of speech: 16 kHz mono samples and where they lie in the stream.
#[derive(Clone, PartialEq)]
pub struct Utterance {
    /// Samples at 16 kHz, mono.
    pub samples: Vec<f32>,
    /// Stream position (in 16 kHz samples since the start or last reset) of the first sample.
    pub start_sample: u64,
    /// Stream position just after the last sample (`start_sample + samples.len()`).
    pub end_sample: u64,
    /// Why it ended.
    pub end_reason: EndReason,
}

impl std::fmt::Debug for Utterance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Utterance")
            .field("samples", &format_args!("[{} samples]", self.samples.len()))
            .field("start_sample", &self.start_sample)
            .field("end_sample", &self.end_sample)
            .field("end_reason", &self.end_reason)
            .finish()
    }
}

impl Utterance {
    /// Start time in seconds from the start of the stream.
    pub fn start_seconds(&self) -> f64 {
        self.start_sample as f64 / f64::from(TARGET_SAMPLE_RATE)
    }

    /// End time in seconds from the start of the stream.
    pub fn end_seconds(&self) -> f64 {
        self.end_sample as f64 / f64::from(TARGET_SAMPLE_RATE)
    }

    /// Duration in seconds.
    pub fn duration_seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(TARGET_SAMPLE_RATE)
    }
}

/// An utterance being collected.
struct Speech {
    samples: Vec<f32>,
    /// Stream position of `samples[0]`.
    start: u64,
    /// Stream position of the first voiced frame (after a cut: the cut).
    voiced_start: u64,
    /// Stream position just after the last voiced frame.
    voiced_end: u64,
    /// Unvoiced frames since the last voiced one.
    silent_frames: u64,
}

impl Speech {
    fn end(&self) -> u64 {
        self.start + self.samples.len() as u64
    }
}

/// Streaming speech endpointer over 16 kHz mono samples.
pub struct Endpointer {
    config: VadConfig,
    detector: Box<earshot::Detector>,
    /// Samples of a frame not yet complete.
    partial: Vec<f32>,
    /// Stream position just after the last scored frame.
    pos: u64,
    /// Recent audio while not in speech (pre-roll plus onset), ending at `pos`.
    history: VecDeque<f32>,
    /// Voiced frames in a row while not in speech.
    onset_run: u32,
    speech: Option<Speech>,
    last_score: f32,
    /// Frames scored since the last start, flush or cancel (for the warm-up).
    frames_since_start: u64,
    /// xorshift state for the dither (deterministic).
    dither_state: u32,
}

const DITHER_SEED: u32 = 0x9E37_79B9;

impl Endpointer {
    /// An endpointer with `config` (validated).
    pub fn new(config: VadConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            detector: earshot::Detector::default_boxed(),
            partial: Vec::with_capacity(FRAME_SAMPLES),
            pos: 0,
            history: VecDeque::new(),
            onset_run: 0,
            speech: None,
            last_score: 0.0,
            frames_since_start: 0,
            dither_state: DITHER_SEED,
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    /// Whether an utterance is being collected (speech started and has not ended).
    pub fn in_speech(&self) -> bool {
        self.speech.is_some()
    }

    /// Earshot's score for the latest frame (0..1).
    pub fn last_score(&self) -> f32 {
        self.last_score
    }

    /// Stream position (16 kHz samples) of everything pushed so far.
    pub fn position(&self) -> u64 {
        self.pos + self.partial.len() as u64
    }

    /// Scores `samples` (16 kHz mono, any count) and returns the utterances that ended.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Utterance> {
        let mut done = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME_SAMPLES - self.partial.len()).min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() == FRAME_SAMPLES {
                let frame = std::mem::take(&mut self.partial);
                self.score_frame(&frame, &mut done);
                self.partial = frame;
                self.partial.clear();
            }
        }
        done
    }

    /// Ends the stream: returns the utterance in progress (if long enough) and clears the
    /// detector; positions keep counting.
    pub fn flush(&mut self) -> Vec<Utterance> {
        let mut done = Vec::new();
        let partial = std::mem::take(&mut self.partial);
        self.pos += partial.len() as u64;
        if let Some(mut speech) = self.speech.take() {
            speech.samples.extend_from_slice(&partial);
            self.finish_speech(speech, EndReason::EndOfStream, &mut done);
        }
        self.clear_state();
        done
    }

    /// Drops the utterance in progress and buffered audio; positions keep counting.
    pub fn cancel(&mut self) {
        self.pos += self.partial.len() as u64;
        self.partial.clear();
        self.speech = None;
        self.clear_state();
    }

    /// Back to a fresh endpointer: state dropped and positions restart at 0.
    pub fn reset(&mut self) {
        self.cancel();
        self.pos = 0;
    }

    fn clear_state(&mut self) {
        self.detector.reset();
        self.history.clear();
        self.onset_run = 0;
        self.last_score = 0.0;
        self.frames_since_start = 0;
        self.dither_state = DITHER_SEED;
    }

    /// The next dither value in [-dither, dither].
    fn next_dither(&mut self) -> f32 {
        let mut x = self.dither_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.dither_state = x;
        let unit = (x >> 8) as f32 / (1u32 << 24) as f32;
        (unit * 2.0 - 1.0) * self.config.dither
    }

    fn samples_for_ms(ms: u32) -> u64 {
        u64::from(ms) * SAMPLES_PER_MS
    }

    fn score_frame(&mut self, frame: &[f32], done: &mut Vec<Utterance>) {
        let mut scored = [0.0f32; FRAME_SAMPLES];
        for (c, &s) in scored.iter_mut().zip(frame) {
            let s = if s.is_finite() { s } else { 0.0 };
            // earshot wants [-1, 1]; resampled audio can overshoot slightly.
            *c = (s + self.next_dither()).clamp(-1.0, 1.0);
        }
        let score = self.detector.predict_f32(&scored);
        self.last_score = score;
        self.frames_since_start += 1;
        let voiced = score >= self.config.threshold && self.frames_since_start > WARMUP_FRAMES;
        self.pos += FRAME_SAMPLES as u64;
        match self.speech.take() {
            None => self.idle_frame(frame, voiced),
            Some(speech) => self.speech_frame(speech, frame, voiced, done),
        }
    }

    /// A frame outside speech: remember it, count onset, maybe start speech.
    fn idle_frame(&mut self, frame: &[f32], voiced: bool) {
        self.history.extend(frame.iter().copied());
        let onset_samples = u64::from(self.config.onset_frames) * FRAME_SAMPLES as u64;
        let cap = Self::samples_for_ms(self.config.pre_roll_ms) + onset_samples;
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        if self.history.len() > cap {
            let excess = self.history.len() - cap;
            self.history.drain(..excess);
        }
        self.onset_run = if voiced { self.onset_run + 1 } else { 0 };
        if self.onset_run < self.config.onset_frames {
            return;
        }
        let voiced_start = self.pos.saturating_sub(onset_samples);
        let history_start = self.pos - self.history.len() as u64;
        let start = voiced_start
            .saturating_sub(Self::samples_for_ms(self.config.pre_roll_ms))
            .max(history_start);
        let skip = usize::try_from(start - history_start).unwrap_or(0);
        let samples: Vec<f32> = self.history.iter().skip(skip).copied().collect();
        tracing::debug!(at = voiced_start, "speech started");
        self.history.clear();
        self.onset_run = 0;
        self.speech = Some(Speech {
            samples,
            start,
            voiced_start,
            voiced_end: self.pos,
            silent_frames: 0,
        });
    }

    /// A frame inside speech: extend, and end or cut the utterance when due.
    fn speech_frame(
        &mut self,
        mut speech: Speech,
        frame: &[f32],
        voiced: bool,
        done: &mut Vec<Utterance>,
    ) {
        speech.samples.extend_from_slice(frame);
        if voiced {
            speech.voiced_end = self.pos;
            speech.silent_frames = 0;
        } else {
            speech.silent_frames += 1;
        }
        let silence = speech.silent_frames * FRAME_SAMPLES as u64;
        let max_len = Self::samples_for_ms(self.config.max_utterance_ms);
        if silence >= Self::samples_for_ms(self.config.hangover_ms) {
            self.finish_speech(speech, EndReason::Silence, done);
        } else if speech.samples.len() as u64 >= max_len {
            self.speech = Some(self.cut_speech(speech, max_len, done));
        } else {
            self.speech = Some(speech);
        }
    }

    /// Emits the first `max_len` samples and returns the rest as a new utterance.
    fn cut_speech(
        &mut self,
        mut speech: Speech,
        max_len: u64,
        done: &mut Vec<Utterance>,
    ) -> Speech {
        let keep = usize::try_from(max_len)
            .unwrap_or(usize::MAX)
            .min(speech.samples.len());
        let rest = speech.samples.split_off(keep);
        let cut = speech.start + keep as u64;
        tracing::debug!(at = cut, "utterance cut at maximum length");
        done.push(Utterance {
            end_sample: cut,
            start_sample: speech.start,
            samples: speech.samples,
            end_reason: EndReason::MaxLength,
        });
        Speech {
            samples: rest,
            start: cut,
            voiced_start: cut,
            voiced_end: speech.voiced_end.max(cut),
            silent_frames: speech.silent_frames,
        }
    }

    /// Trims the trailing silence to the post-roll, keeps the rest as pre-roll history, and
    /// emits the utterance unless its voiced span is under the minimum.
    fn finish_speech(&mut self, mut speech: Speech, reason: EndReason, done: &mut Vec<Utterance>) {
        let end = (speech.voiced_end + Self::samples_for_ms(self.config.post_roll_ms))
            .min(speech.end())
            .max(speech.start);
        let keep = usize::try_from(end - speech.start).unwrap_or(usize::MAX);
        let tail = speech.samples.split_off(keep.min(speech.samples.len()));
        if reason != EndReason::EndOfStream {
            self.history.extend(tail);
        }
        let voiced_span = speech.voiced_end.saturating_sub(speech.voiced_start);
        let long_enough = voiced_span >= Self::samples_for_ms(self.config.min_speech_ms);
        if !long_enough || speech.samples.is_empty() {
            tracing::debug!(voiced_span, "speech too short: dropped");
            return;
        }
        tracing::debug!(start = speech.start, end, "utterance ended");
        done.push(Utterance {
            start_sample: speech.start,
            end_sample: end,
            samples: speech.samples,
            end_reason: reason,
        });
    }
}

/// Cuts a whole 16 kHz mono recording into speech chunks of at most `max_chunk_samples`
/// (e.g. [`WHISPER_WINDOW_SAMPLES`]): VAD utterances, with neighbours merged (gap included)
/// while the merged span still fits. Silence and noise give no chunk.
pub fn speech_chunks(
    samples: &[f32],
    config: &VadConfig,
    max_chunk_samples: usize,
) -> Result<Vec<Utterance>> {
    let max_ms = u32::try_from(max_chunk_samples as u64 / SAMPLES_PER_MS).unwrap_or(u32::MAX);
    let config = VadConfig {
        max_utterance_ms: config.max_utterance_ms.min(max_ms),
        ..*config
    };
    let mut endpointer = Endpointer::new(config)?;
    let mut utterances = endpointer.push(samples);
    utterances.extend(endpointer.flush());
    let mut chunks: Vec<Utterance> = Vec::new();
    for next in utterances {
        let merged = chunks
            .last_mut()
            .filter(|last| next.end_sample - last.start_sample <= max_chunk_samples as u64);
        match merged {
            Some(last) => {
                let from = usize::try_from(last.end_sample).unwrap_or(usize::MAX);
                let to = usize::try_from(next.end_sample).unwrap_or(usize::MAX);
                last.samples
                    .extend_from_slice(&samples[from.min(to)..to.min(samples.len())]);
                last.end_sample = next.end_sample;
                last.end_reason = next.end_reason;
            }
            None => chunks.push(next),
        }
    }
    Ok(chunks)
}
