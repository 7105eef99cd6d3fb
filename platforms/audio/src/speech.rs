//! [`SpeechToText`]: pushed audio in, utterances with their Whisper transcripts out — the
//! voice front end ([`VoiceInput`]) and [`WhisperModel`] joined, as apps and the bindings
//! use them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fennec_core::speech::{TranscribeOptions, Transcript, WhisperModel};
use fennec_core::CancelHandle;

use crate::error::Result;
use crate::pcm::Sample;
use crate::vad::{Utterance, VadConfig};
use crate::voice::VoiceInput;

/// One utterance heard and transcribed.
#[derive(Clone, Debug)]
pub struct Heard {
    /// Start of the utterance in the stream, seconds (pre-roll included).
    pub start_s: f64,
    /// End of the utterance in the stream, seconds.
    pub end_s: f64,
    /// Whisper's transcript (empty text when it judged the audio no speech).
    pub transcript: Transcript,
    /// Wall time from the utterance being complete to its transcript.
    pub transcribe_time: Duration,
}

/// Speech to text over pushed audio: `push_pcm` buffers in any format, get back each
/// utterance's transcript once voice activity says it ended.
///
/// ```no_run
/// use fennec_audio::{SpeechToText, VadConfig};
/// use fennec_core::speech::{TranscribeOptions, WhisperModel};
/// use fennec_core::LoadOptions;
///
/// let whisper = WhisperModel::load("whisper-tiny.en-q8_0.gguf", &LoadOptions::default())?;
/// let mut stt = SpeechToText::new(whisper, VadConfig::default(), TranscribeOptions::default())?;
/// let buffer = vec![0i16; 480 * 2]; // 10 ms of 48 kHz stereo from the app's microphone
/// for heard in stt.push_pcm(&buffer, 48_000, 2)? {
///     println!("{:.1} s: {}", heard.start_s, heard.transcript.text);
/// }
/// # Ok::<(), fennec_audio::AudioError>(())
/// ```
pub struct SpeechToText {
    voice: VoiceInput,
    whisper: Arc<WhisperModel>,
    options: TranscribeOptions,
    cancel: CancelHandle,
}

impl SpeechToText {
    /// Endpointing with `vad`, transcribing with `whisper` and `options`.
    pub fn new(
        whisper: Arc<WhisperModel>,
        vad: VadConfig,
        options: TranscribeOptions,
    ) -> Result<Self> {
        Ok(Self {
            voice: VoiceInput::new(vad)?,
            whisper,
            options,
            cancel: CancelHandle::new(),
        })
    }

    /// Adds interleaved PCM at `sample_rate` with `channels` per frame and transcribes the
    /// utterances it completes (on the calling thread), oldest first.
    pub fn push_pcm<S: Sample>(
        &mut self,
        samples: &[S],
        sample_rate: u32,
        channels: u16,
    ) -> Result<Vec<Heard>> {
        self.voice.push_pcm(samples, sample_rate, channels)?;
        self.transcribe_ready()
    }

    /// End of input (push-to-talk released, stream closed): speech in progress becomes an
    /// utterance and is transcribed.
    pub fn finish(&mut self) -> Result<Vec<Heard>> {
        self.voice.finish()?;
        self.transcribe_ready()
    }

    /// A handle that stops a transcription in progress from another thread (the call
    /// returns a `Cancelled` error); the next push starts afresh.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Drops speech in progress and buffered audio; the stream clock restarts at 0.
    pub fn reset(&mut self) {
        self.voice.reset();
    }

    /// Whether speech is in progress (for a "listening" indicator).
    pub fn in_speech(&self) -> bool {
        self.voice.in_speech()
    }

    fn transcribe_ready(&mut self) -> Result<Vec<Heard>> {
        let mut heard = Vec::new();
        while let Some(utterance) = self.voice.next_utterance() {
            heard.push(self.transcribe(&utterance)?);
        }
        Ok(heard)
    }

    fn transcribe(&self, utterance: &Utterance) -> Result<Heard> {
        let start = Instant::now();
        let transcript = self
            .whisper
            .transcribe(&utterance.samples, &self.options, &self.cancel);
        if transcript.is_err() {
            // A cancelled (or failed) utterance must not stop the next one.
            self.cancel.reset();
        }
        Ok(Heard {
            start_s: utterance.start_seconds(),
            end_s: utterance.end_seconds(),
            transcript: transcript?,
            transcribe_time: start.elapsed(),
        })
    }
}
