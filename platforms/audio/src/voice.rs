//! [`VoiceInput`]: the push API apps use — PCM in any format in, utterances out.

use std::collections::VecDeque;

use crate::error::Result;
use crate::pcm::{PcmConverter, PcmFormat, Sample};
use crate::vad::{Endpointer, Utterance, VadConfig};

/// PCM buffers in (any rate and channel count), 16 kHz mono speech utterances out.
///
/// ```
/// use fennec_audio::{VadConfig, VoiceInput};
///
/// let mut voice = VoiceInput::new(VadConfig::default())?;
/// let silence = vec![0i16; 4800 * 2]; // 100 ms of 48 kHz stereo
/// for _ in 0..10 {
///     voice.push_pcm(&silence, 48_000, 2)?;
/// }
/// voice.finish()?;
/// assert_eq!(voice.utterances().count(), 0);
/// # Ok::<(), fennec_audio::AudioError>(())
/// ```
pub struct VoiceInput {
    converter: Option<PcmConverter>,
    endpointer: Endpointer,
    converted: Vec<f32>,
    ready: VecDeque<Utterance>,
}

impl VoiceInput {
    /// A voice input endpointing with `config` (validated).
    pub fn new(config: VadConfig) -> Result<Self> {
        Ok(Self {
            converter: None,
            endpointer: Endpointer::new(config)?,
            converted: Vec::new(),
            ready: VecDeque::new(),
        })
    }

    /// Adds interleaved PCM (`i16`, `i32`, `u8`, `f32` or `f64`) at `sample_rate` with
    /// `channels` per frame; returns how many utterances are ready. A format change flushes
    /// the resampler (the stream clock keeps running).
    pub fn push_pcm<S: Sample>(
        &mut self,
        samples: &[S],
        sample_rate: u32,
        channels: u16,
    ) -> Result<usize> {
        let format = PcmFormat::new(sample_rate, channels)?;
        format.frames_in(samples.len())?;
        self.converted.clear();
        if self.converter.as_ref().map(PcmConverter::format) != Some(format) {
            if let Some(old) = &mut self.converter {
                old.flush(&mut self.converted)?;
            }
            self.converter = Some(PcmConverter::new(sample_rate, channels)?);
        }
        if let Some(converter) = &mut self.converter {
            converter.push(samples, &mut self.converted)?;
        }
        self.ready.extend(self.endpointer.push(&self.converted));
        Ok(self.ready.len())
    }

    /// Adds samples that are already 16 kHz mono; returns how many utterances are ready.
    pub fn push_16k_mono(&mut self, samples: &[f32]) -> Result<usize> {
        self.push_pcm(samples, crate::pcm::TARGET_SAMPLE_RATE, 1)
    }

    /// End of input (e.g. push-to-talk released): flushes the resampler and the endpointer,
    /// so speech still in progress becomes an utterance; returns how many are ready.
    pub fn finish(&mut self) -> Result<usize> {
        self.converted.clear();
        if let Some(converter) = &mut self.converter {
            converter.flush(&mut self.converted)?;
        }
        self.ready.extend(self.endpointer.push(&self.converted));
        self.ready.extend(self.endpointer.flush());
        Ok(self.ready.len())
    }

    /// The next finished utterance, oldest first.
    pub fn next_utterance(&mut self) -> Option<Utterance> {
        self.ready.pop_front()
    }

    /// Takes all finished utterances, oldest first.
    pub fn utterances(&mut self) -> impl Iterator<Item = Utterance> + '_ {
        self.ready.drain(..)
    }

    /// Whether speech is in progress (for a "listening" indicator).
    pub fn in_speech(&self) -> bool {
        self.endpointer.in_speech()
    }

    /// Drops speech in progress, buffered audio and unread utterances; the clock keeps running.
    pub fn cancel(&mut self) {
        if let Some(converter) = &mut self.converter {
            converter.reset();
        }
        self.endpointer.cancel();
        self.ready.clear();
    }

    /// Back to a fresh state: like [`VoiceInput::cancel`], and the clock restarts at 0.
    pub fn reset(&mut self) {
        self.cancel();
        self.converter = None;
        self.endpointer.reset();
    }

    /// The endpointing settings.
    pub fn config(&self) -> &VadConfig {
        self.endpointer.config()
    }
}
