//! Speech to text: a Whisper model transcribing sample buffers or files, and
//! [`SpeechToText`], which endpoints pushed microphone PCM into utterances and transcribes
//! each. The host app owns the microphone (Android `AudioRecord`, iOS `AVAudioEngine`) and
//! pushes what it records.

use std::sync::{Arc, Mutex, MutexGuard};

use fennec_audio::{AudioError, FileOptions};
use fennec_core::speech::{self, DecodeOptions};
use fennec_core::{CancelHandle, ErrorKind};

use crate::error::{FennecError, Result};
use crate::options::LoadOptions;
use crate::session::CancelToken;

impl From<AudioError> for FennecError {
    fn from(e: AudioError) -> Self {
        Self::of_kind(audio_error_kind(&e), e.to_string())
    }
}

/// The error kind of an audio error: bad buffers, formats and settings are the caller's
/// arguments; model errors keep their own kind.
fn audio_error_kind(e: &AudioError) -> ErrorKind {
    match e {
        AudioError::Speech(core) => core.kind(),
        AudioError::Io(_) | AudioError::Device(_) => ErrorKind::Io,
        AudioError::Unsupported(_) => ErrorKind::Unsupported,
        AudioError::ZeroSampleRate
        | AudioError::ZeroChannels
        | AudioError::SampleRateOutOfRange { .. }
        | AudioError::PartialFrame { .. }
        | AudioError::TooLong { .. }
        | AudioError::Empty(_)
        | AudioError::NotAudio(_)
        | AudioError::Corrupt(_)
        | AudioError::InvalidConfig(_) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    }
}

/// How to transcribe. The defaults are faster-whisper's (greedy, no-speech windows dropped).
#[derive(Clone, Debug, uniffi::Record)]
pub struct TranscribeOptions {
    /// Language code of the speech (`"en"`, `"de"`, …) for multilingual models; absent means
    /// English. English-only models ignore it.
    #[uniffi(default = None)]
    pub language: Option<String>,
    /// Most tokens generated per 30-second window (0 = up to the decoder's context).
    #[uniffi(default = 0)]
    pub max_tokens: u32,
    /// Drop a window that looks like no speech (its no-speech probability above
    /// `no_speech_threshold` and its average log-probability at most `log_prob_threshold`).
    #[uniffi(default = true)]
    pub skip_no_speech: bool,
    /// See `skip_no_speech`.
    #[uniffi(default = 0.6)]
    pub no_speech_threshold: f32,
    /// See `skip_no_speech`.
    #[uniffi(default = -1.0)]
    pub log_prob_threshold: f32,
    /// Longest audio accepted, in seconds (longer is an `InvalidArgument` error).
    #[uniffi(default = 600.0)]
    pub max_audio_s: f32,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        let core = speech::TranscribeOptions::default();
        Self {
            language: None,
            max_tokens: 0,
            skip_no_speech: core.skip_no_speech,
            no_speech_threshold: core.no_speech_threshold,
            log_prob_threshold: core.log_prob_threshold,
            max_audio_s: core.max_audio_s,
        }
    }
}

impl From<&TranscribeOptions> for speech::TranscribeOptions {
    fn from(o: &TranscribeOptions) -> Self {
        Self {
            max_audio_s: o.max_audio_s,
            decode: DecodeOptions {
                language: o.language.clone(),
                max_tokens: (o.max_tokens > 0).then_some(o.max_tokens as usize),
                ..DecodeOptions::default()
            },
            skip_no_speech: o.skip_no_speech,
            no_speech_threshold: o.no_speech_threshold,
            log_prob_threshold: o.log_prob_threshold,
            ..speech::TranscribeOptions::default()
        }
    }
}

/// One 30-second window of a transcript.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct TranscriptSegment {
    /// Start of the window in the audio, seconds.
    pub start_s: f32,
    /// End of the window's content, seconds.
    pub end_s: f32,
    /// The window's text (empty when dropped as no speech).
    pub text: String,
    /// The window's generated tokens.
    pub tokens: Vec<u32>,
    /// Probability of the no-speech token at the window's start.
    pub no_speech_prob: f32,
    /// Mean log-probability per token.
    pub avg_logprob: f32,
    /// Dropped by the no-speech rule.
    pub skipped_as_no_speech: bool,
}

/// The transcript of a clip, with the time each stage took.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Transcript {
    /// The text of every kept window, joined and trimmed.
    pub text: String,
    /// The text tokens of every kept window, in order.
    pub tokens: Vec<u32>,
    /// The lowest no-speech probability of the windows (1.0 when there is none).
    pub no_speech_prob: f32,
    /// Mean log-probability per token over all windows.
    pub avg_logprob: f32,
    /// Whether every window was dropped as no speech (the text is then empty).
    pub skipped_as_no_speech: bool,
    /// The windows, kept or dropped.
    pub segments: Vec<TranscriptSegment>,
    /// Seconds of audio transcribed (at 16 kHz, after any resampling).
    pub audio_seconds: f64,
    /// Seconds computing the log-mel features.
    pub mel_seconds: f64,
    /// Seconds in the encoder.
    pub encode_seconds: f64,
    /// Seconds in the decoder.
    pub decode_seconds: f64,
}

impl Transcript {
    fn from_core(t: speech::Transcript, n_samples: usize) -> Self {
        Self {
            segments: t
                .segments
                .into_iter()
                .map(|s| TranscriptSegment {
                    start_s: s.start_s,
                    end_s: s.end_s,
                    text: s.text,
                    tokens: s.tokens,
                    no_speech_prob: s.no_speech_prob,
                    avg_logprob: s.avg_logprob,
                    skipped_as_no_speech: s.skipped_as_no_speech,
                })
                .collect(),
            text: t.text,
            tokens: t.tokens,
            no_speech_prob: t.no_speech_prob,
            avg_logprob: t.avg_logprob,
            skipped_as_no_speech: t.skipped_as_no_speech,
            audio_seconds: n_samples as f64 / f64::from(fennec_audio::TARGET_SAMPLE_RATE),
            mel_seconds: t.timings.mel.as_secs_f64(),
            encode_seconds: t.timings.encode.as_secs_f64(),
            decode_seconds: t.timings.decode.as_secs_f64(),
        }
    }
}

/// A Whisper speech-to-text model (GGUF, `general.architecture = whisper`). Thread-safe:
/// share one between any number of callers and [`SpeechToText`] streams.
#[derive(uniffi::Object)]
pub struct WhisperModel {
    inner: Arc<speech::WhisperModel>,
}

#[uniffi::export]
impl WhisperModel {
    /// Maps the Whisper GGUF at `path` with `options.n_threads` workers (the vision and
    /// image-cache options do not apply).
    #[uniffi::constructor]
    pub fn load(path: String, options: LoadOptions) -> Result<Arc<Self>> {
        let core_opts = fennec_core::LoadOptions::with_threads(options.n_threads as usize);
        let inner = speech::WhisperModel::load(&path, &core_opts)?;
        Ok(Arc::new(Self { inner }))
    }

    /// Transcribes mono `samples` in [-1, 1] at `sample_rate` Hz (resampled to 16 kHz when
    /// it differs). `options` absent = defaults; `cancel` stops it between encoder blocks and
    /// tokens (a `Cancelled` error).
    #[uniffi::method(default(options = None, cancel = None))]
    pub fn transcribe(
        &self,
        samples: Vec<f32>,
        sample_rate: u32,
        options: Option<TranscribeOptions>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<Transcript> {
        let samples = if sample_rate == fennec_audio::TARGET_SAMPLE_RATE {
            samples
        } else {
            fennec_audio::to_mono_16k(&samples, sample_rate, 1)?
        };
        self.run(&samples, options, cancel)
    }

    /// Transcribes a WAV (PCM 8/16/24/32-bit or float) or FLAC file, any rate and channels.
    #[uniffi::method(default(options = None, cancel = None))]
    pub fn transcribe_file(
        &self,
        path: String,
        options: Option<TranscribeOptions>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<Transcript> {
        let max_seconds = f64::from(
            options
                .as_ref()
                .map_or(TranscribeOptions::default().max_audio_s, |o| o.max_audio_s),
        );
        let audio = fennec_audio::read_audio_file(&path, &FileOptions { max_seconds })?;
        self.run(&audio.samples, options, cancel)
    }
}

impl WhisperModel {
    fn run(
        &self,
        samples_16k: &[f32],
        options: Option<TranscribeOptions>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<Transcript> {
        let opts = speech::TranscribeOptions::from(&options.unwrap_or_default());
        let cancel = cancel.map_or_else(CancelHandle::new, |c| c.handle());
        let t = self.inner.transcribe(samples_16k, &opts, &cancel)?;
        Ok(Transcript::from_core(t, samples_16k.len()))
    }
}

/// Endpointing settings of [`SpeechToText`] (milliseconds of audio).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct VadConfig {
    /// A frame is voiced when the detector's score (0..1] reaches this.
    #[uniffi(default = 0.5)]
    pub threshold: f32,
    /// Voiced 16 ms frames in a row that start speech.
    #[uniffi(default = 3)]
    pub onset_frames: u32,
    /// Audio kept before speech starts.
    #[uniffi(default = 300)]
    pub pre_roll_ms: u32,
    /// Silence after the last voiced frame that ends an utterance.
    #[uniffi(default = 600)]
    pub hangover_ms: u32,
    /// Audio kept after the last voiced frame (at most `hangover_ms`).
    #[uniffi(default = 200)]
    pub post_roll_ms: u32,
    /// Utterances with less voiced audio than this are dropped.
    #[uniffi(default = 250)]
    pub min_speech_ms: u32,
    /// Longer utterances are cut here (Whisper reads 30 s at once).
    #[uniffi(default = 30000)]
    pub max_utterance_ms: u32,
    /// Peak of the noise added to what the detector scores (not to the audio), so noise after
    /// exact digital silence is not taken for speech; 0 turns it off.
    #[uniffi(default = 0.0003)]
    pub dither: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        let d = fennec_audio::VadConfig::default();
        Self {
            threshold: d.threshold,
            onset_frames: d.onset_frames,
            pre_roll_ms: d.pre_roll_ms,
            hangover_ms: d.hangover_ms,
            post_roll_ms: d.post_roll_ms,
            min_speech_ms: d.min_speech_ms,
            max_utterance_ms: d.max_utterance_ms,
            dither: d.dither,
        }
    }
}

impl From<&VadConfig> for fennec_audio::VadConfig {
    fn from(c: &VadConfig) -> Self {
        Self {
            threshold: c.threshold,
            onset_frames: c.onset_frames,
            pre_roll_ms: c.pre_roll_ms,
            hangover_ms: c.hangover_ms,
            post_roll_ms: c.post_roll_ms,
            min_speech_ms: c.min_speech_ms,
            max_utterance_ms: c.max_utterance_ms,
            dither: c.dither,
        }
    }
}

/// One utterance heard in pushed audio, with its transcript.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Heard {
    /// Start in the stream, seconds since the first push (or the last reset).
    pub start_s: f64,
    /// End in the stream, seconds.
    pub end_s: f64,
    /// What was said (empty when Whisper judged it no speech).
    pub text: String,
    /// Whisper's text tokens.
    pub tokens: Vec<u32>,
    /// Whisper's no-speech probability for it.
    pub no_speech_prob: f32,
    /// Seconds from the utterance being complete to its transcript.
    pub transcribe_seconds: f64,
}

impl From<fennec_audio::Heard> for Heard {
    fn from(h: fennec_audio::Heard) -> Self {
        Self {
            start_s: h.start_s,
            end_s: h.end_s,
            text: h.transcript.text,
            tokens: h.transcript.tokens,
            no_speech_prob: h.transcript.no_speech_prob,
            transcribe_seconds: h.transcribe_time.as_secs_f64(),
        }
    }
}

/// Speech to text over audio the app pushes as it records: each push returns the utterances
/// it completed (voice activity ended), transcribed on the calling thread. Calls run one at a
/// time (a second caller waits); [`SpeechToText::cancel_token`] stops a transcription from
/// another thread.
#[derive(uniffi::Object)]
pub struct SpeechToText {
    inner: Mutex<fennec_audio::SpeechToText>,
    cancel: CancelHandle,
}

#[uniffi::export]
impl SpeechToText {
    /// A stream on `model`, endpointing with `vad` and transcribing with `options` (absent =
    /// defaults).
    #[uniffi::constructor(default(options = None))]
    pub fn new(
        model: Arc<WhisperModel>,
        vad: VadConfig,
        options: Option<TranscribeOptions>,
    ) -> Result<Arc<Self>> {
        let opts = speech::TranscribeOptions::from(&options.unwrap_or_default());
        let inner = fennec_audio::SpeechToText::new(model.inner.clone(), (&vad).into(), opts)?;
        let cancel = inner.cancel_handle();
        Ok(Arc::new(Self {
            inner: Mutex::new(inner),
            cancel,
        }))
    }

    /// Adds interleaved 16-bit PCM (`AudioRecord`'s `ENCODING_PCM_16BIT`) at `sample_rate` Hz
    /// with `channels` per frame; returns the utterances it completed, oldest first.
    pub fn push_pcm_i16(
        &self,
        samples: Vec<i16>,
        sample_rate: u32,
        channels: u16,
    ) -> Result<Vec<Heard>> {
        let heard = self.lock().push_pcm(&samples, sample_rate, channels)?;
        Ok(heard.into_iter().map(Heard::from).collect())
    }

    /// Adds interleaved 16-bit little-endian PCM as bytes: what `AudioRecord.read(ByteArray,
    /// …)` fills with `ENCODING_PCM_16BIT`, passed without boxing each sample (Kotlin gets a
    /// `ByteArray`, Swift `Data`). An odd byte count is an `InvalidArgument` error.
    pub fn push_pcm_i16_le(
        &self,
        bytes: Vec<u8>,
        sample_rate: u32,
        channels: u16,
    ) -> Result<Vec<Heard>> {
        if !bytes.len().is_multiple_of(2) {
            return Err(FennecError::InvalidArgument(format!(
                "{} bytes is not a whole number of 16-bit samples",
                bytes.len()
            )));
        }
        let samples: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        self.push_pcm_i16(samples, sample_rate, channels)
    }

    /// Adds interleaved float PCM in [-1, 1] (`AVAudioEngine`'s format); otherwise as
    /// `push_pcm_i16`.
    pub fn push_pcm_f32(
        &self,
        samples: Vec<f32>,
        sample_rate: u32,
        channels: u16,
    ) -> Result<Vec<Heard>> {
        let heard = self.lock().push_pcm(&samples, sample_rate, channels)?;
        Ok(heard.into_iter().map(Heard::from).collect())
    }

    /// End of input (push-to-talk released): speech in progress becomes an utterance and is
    /// transcribed.
    pub fn finish(&self) -> Result<Vec<Heard>> {
        let heard = self.lock().finish()?;
        Ok(heard.into_iter().map(Heard::from).collect())
    }

    /// Drops speech in progress and buffered audio; the stream clock restarts at 0.
    pub fn reset(&self) {
        self.lock().reset();
    }

    /// Whether speech is in progress (for a "listening" indicator).
    pub fn in_speech(&self) -> bool {
        self.lock().in_speech()
    }

    /// A token whose `cancel()` stops the transcription in progress (that call fails with
    /// `Cancelled`); the stream goes on with the next push. Shared by every call of this
    /// stream, and reset after each cancelled transcription.
    pub fn cancel_token(&self) -> Arc<CancelToken> {
        Arc::new(CancelToken::from_handle(self.cancel.clone()))
    }
}

impl SpeechToText {
    fn lock(&self) -> MutexGuard<'_, fennec_audio::SpeechToText> {
        // A panic inside a call is turned into an error by uniffi; the stream it left
        // behind is still memory-safe to use.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_core_defaults() {
        assert_eq!(
            fennec_audio::VadConfig::from(&VadConfig::default()),
            fennec_audio::VadConfig::default()
        );
        assert_eq!(
            speech::TranscribeOptions::from(&TranscribeOptions::default()),
            speech::TranscribeOptions::default()
        );
    }

    #[test]
    fn audio_errors_map_to_their_kinds() {
        let bad_rate = AudioError::SampleRateOutOfRange {
            rate: 1,
            min: 4000,
            max: 384_000,
        };
        assert!(matches!(
            FennecError::from(bad_rate),
            FennecError::InvalidArgument(_)
        ));
        let cancelled = AudioError::Speech(fennec_core::Error::Cancelled { evaluated: 0 });
        assert!(matches!(
            FennecError::from(cancelled),
            FennecError::Cancelled(_)
        ));
        let io = AudioError::Io(std::io::Error::other("x"));
        assert!(matches!(FennecError::from(io), FennecError::Io(_)));
    }
}
