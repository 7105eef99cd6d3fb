//! Interleaved PCM at any rate and channel count → mono `f32` at 16 kHz.
//!
//! [`PcmConverter`] averages the channels of each frame, then resamples with a streaming
//! FFT resampler (rubato) that keeps its state between pushes, so a stream cut into any
//! chunk sizes gives the same output as one push. At 16 kHz input it copies the mono
//! samples unchanged. The resampler's delay is trimmed, so output sample `n` lies at time
//! `n / 16000` s of the input, and [`PcmConverter::flush`] ends a stream of `N` input
//! frames at exactly `ceil(N · 16000 / rate)` output samples.

use rubato::audioadapter_buffers::direct::{InterleavedSlice, SequentialSlice};
use rubato::{Fft, FixedSync, Indexing, Resampler};

use crate::error::{AudioError, Result};

/// The sample rate everything in this crate produces: Whisper's and the VAD's.
pub const TARGET_SAMPLE_RATE: u32 = 16_000;
/// The lowest input sample rate accepted.
pub const MIN_SAMPLE_RATE: u32 = 4_000;
/// The highest input sample rate accepted.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// The most channels accepted in one frame.
pub const MAX_CHANNELS: u16 = 64;

/// Input frames the resampler transforms per call (about 21 ms at 48 kHz).
const RESAMPLER_CHUNK: usize = 1024;

/// A PCM sample type this crate converts to `f32` in [-1, 1].
pub trait Sample: Copy + Send + 'static {
    /// The sample as `f32`; integers are scaled by 2^(bits−1), non-finite floats become 0.
    fn to_f32(self) -> f32;
}

impl Sample for i16 {
    fn to_f32(self) -> f32 {
        f32::from(self) / 32_768.0
    }
}

impl Sample for i32 {
    fn to_f32(self) -> f32 {
        (f64::from(self) / 2_147_483_648.0) as f32
    }
}

impl Sample for u8 {
    fn to_f32(self) -> f32 {
        (f32::from(self) - 128.0) / 128.0
    }
}

impl Sample for f32 {
    fn to_f32(self) -> f32 {
        if self.is_finite() {
            self
        } else {
            0.0
        }
    }
}

impl Sample for f64 {
    fn to_f32(self) -> f32 {
        if self.is_finite() {
            self as f32
        } else {
            0.0
        }
    }
}

/// The layout of an interleaved PCM stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PcmFormat {
    /// Frames per second.
    pub sample_rate: u32,
    /// Samples per frame.
    pub channels: u16,
}

impl PcmFormat {
    /// A format, checked: rate in [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`], 1..=[`MAX_CHANNELS`] channels.
    pub fn new(sample_rate: u32, channels: u16) -> Result<Self> {
        if sample_rate == 0 {
            return Err(AudioError::ZeroSampleRate);
        }
        if channels == 0 {
            return Err(AudioError::ZeroChannels);
        }
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(AudioError::SampleRateOutOfRange {
                rate: sample_rate,
                min: MIN_SAMPLE_RATE,
                max: MAX_SAMPLE_RATE,
            });
        }
        if channels > MAX_CHANNELS {
            return Err(AudioError::InvalidConfig(format!(
                "{channels} channels (at most {MAX_CHANNELS})"
            )));
        }
        Ok(Self {
            sample_rate,
            channels,
        })
    }

    /// Mono 16 kHz: what [`PcmConverter`] produces.
    pub const fn target() -> Self {
        Self {
            sample_rate: TARGET_SAMPLE_RATE,
            channels: 1,
        }
    }

    /// Frames in an interleaved buffer of `len` samples, or an error if a frame is cut.
    pub fn frames_in(&self, len: usize) -> Result<usize> {
        let channels = usize::from(self.channels);
        if !len.is_multiple_of(channels) {
            return Err(AudioError::PartialFrame {
                len,
                channels: self.channels,
            });
        }
        Ok(len / channels)
    }
}

/// Appends the mean of each frame's channels to `out` (`channels` ≥ 1; a trailing partial
/// frame is ignored — callers check whole frames first).
pub fn downmix_into<S: Sample>(interleaved: &[S], channels: u16, out: &mut Vec<f32>) {
    let channels = usize::from(channels.max(1));
    if channels == 1 {
        out.extend(interleaved.iter().map(|s| s.to_f32()));
        return;
    }
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().map(|s| s.to_f32()).sum::<f32>() * scale),
    );
}

/// Streaming mono resampler to 16 kHz: exact passthrough at 16 kHz, rubato's FFT
/// resampler otherwise, with its delay trimmed so output stays aligned with input time.
pub struct MonoResampler {
    input_rate: u32,
    fft: Option<FftState>,
    /// Input frames pushed since the last flush or reset.
    frames_in: u64,
    /// Output samples handed out since the last flush or reset.
    frames_out: u64,
}

/// The FFT resampler with what it has not consumed yet.
struct FftState {
    resampler: Fft<f32>,
    /// Input frames waiting for a full resampler chunk.
    pending: Vec<f32>,
    /// Output scratch, sized for the largest chunk the resampler writes.
    scratch: Vec<f32>,
    /// Leading output samples still to drop (the resampler's delay).
    delay_left: usize,
}

impl MonoResampler {
    /// A resampler from `input_rate` (checked like [`PcmFormat::new`]) to 16 kHz.
    pub fn new(input_rate: u32) -> Result<Self> {
        PcmFormat::new(input_rate, 1)?;
        let fft = if input_rate == TARGET_SAMPLE_RATE {
            None
        } else {
            Some(FftState::new(input_rate)?)
        };
        Ok(Self {
            input_rate,
            fft,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// The input rate this resampler converts from.
    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    /// Resamples `mono` and appends what is ready to `out`; keeps the rest for the next push.
    pub fn push(&mut self, mono: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.frames_in += mono.len() as u64;
        let before = out.len();
        match &mut self.fft {
            None => out.extend_from_slice(mono),
            Some(state) => state.push(mono, out)?,
        }
        self.frames_out += (out.len() - before) as u64;
        Ok(())
    }

    /// Ends the stream: appends the remaining output so the total is exactly
    /// `ceil(frames_in · 16000 / rate)`, then starts afresh.
    pub fn flush(&mut self, out: &mut Vec<f32>) -> Result<()> {
        if let Some(state) = &mut self.fft {
            let expected = expected_output_len(self.frames_in, self.input_rate);
            let missing = expected.saturating_sub(self.frames_out);
            let missing = usize::try_from(missing)
                .map_err(|_| AudioError::Resampler("stream too long to flush".into()))?;
            state.drain(missing, out)?;
        }
        self.reset();
        Ok(())
    }

    /// Drops all state: the next push starts a new stream.
    pub fn reset(&mut self) {
        if let Some(state) = &mut self.fft {
            state.reset();
        }
        self.frames_in = 0;
        self.frames_out = 0;
    }
}

/// Output samples a stream of `frames_in` frames at `rate` yields at 16 kHz (rounded up).
pub fn expected_output_len(frames_in: u64, rate: u32) -> u64 {
    let num = u128::from(frames_in) * u128::from(TARGET_SAMPLE_RATE);
    let rate = u128::from(rate.max(1));
    u64::try_from(num.div_ceil(rate)).unwrap_or(u64::MAX)
}

impl FftState {
    fn new(input_rate: u32) -> Result<Self> {
        let resampler = Fft::<f32>::new(
            input_rate as usize,
            TARGET_SAMPLE_RATE as usize,
            RESAMPLER_CHUNK,
            1,
            FixedSync::Input,
        )
        .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let scratch = vec![0.0; resampler.output_frames_max()];
        let delay_left = resampler.output_delay();
        Ok(Self {
            resampler,
            pending: Vec::new(),
            scratch,
            delay_left,
        })
    }

    fn push(&mut self, mono: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.pending.extend_from_slice(mono);
        let chunk = self.resampler.input_frames_next();
        let mut start = 0;
        while self.pending.len() - start >= chunk {
            let (consumed, _) = self.process(start, None, out)?;
            start += consumed;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Feeds the pending frames, then silence, until `missing` more samples are out.
    fn drain(&mut self, missing: usize, out: &mut Vec<f32>) -> Result<()> {
        let target = out.len() + missing;
        let chunk = self.resampler.input_frames_next();
        let mut start = 0;
        while out.len() < target {
            let left = (self.pending.len() - start).min(chunk);
            let (consumed, _) = self.process(start, Some(left), out)?;
            start += consumed.min(left);
        }
        out.truncate(target);
        self.pending.clear();
        Ok(())
    }

    /// One resampler call on `pending[start..]` (`partial`: frames really there, rest silence).
    fn process(
        &mut self,
        start: usize,
        partial: Option<usize>,
        out: &mut Vec<f32>,
    ) -> Result<(usize, usize)> {
        let chunk = self.resampler.input_frames_next();
        let zeros;
        let input: &[f32] = if partial.is_some_and(|n| n < chunk) {
            let n = partial.unwrap_or(0);
            let mut padded = vec![0.0; chunk];
            padded[..n].copy_from_slice(&self.pending[start..start + n]);
            zeros = padded;
            &zeros
        } else {
            &self.pending[start..start + chunk]
        };
        let adapter_in = SequentialSlice::new(input, 1, chunk)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let scratch_len = self.scratch.len();
        let mut adapter_out = InterleavedSlice::new_mut(&mut self.scratch, 1, scratch_len)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let indexing = Indexing::new();
        let (consumed, produced) = self
            .resampler
            .process_into_buffer(&adapter_in, &mut adapter_out, Some(&indexing))
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        out.extend_from_slice(&self.scratch[skip..produced]);
        Ok((consumed, produced))
    }

    fn reset(&mut self) {
        self.resampler.reset();
        self.pending.clear();
        self.delay_left = self.resampler.output_delay();
    }
}

/// Interleaved PCM in one fixed [`PcmFormat`] → mono 16 kHz `f32`, streaming.
pub struct PcmConverter {
    format: PcmFormat,
    resampler: MonoResampler,
    mono: Vec<f32>,
}

impl PcmConverter {
    /// A converter for `sample_rate` Hz, `channels`-channel interleaved input (checked).
    pub fn new(sample_rate: u32, channels: u16) -> Result<Self> {
        let format = PcmFormat::new(sample_rate, channels)?;
        Ok(Self {
            format,
            resampler: MonoResampler::new(sample_rate)?,
            mono: Vec::new(),
        })
    }

    /// The input format.
    pub fn format(&self) -> PcmFormat {
        self.format
    }

    /// Converts `interleaved` (whole frames) and appends the 16 kHz mono samples ready to `out`.
    pub fn push<S: Sample>(&mut self, interleaved: &[S], out: &mut Vec<f32>) -> Result<()> {
        self.format.frames_in(interleaved.len())?;
        self.mono.clear();
        downmix_into(interleaved, self.format.channels, &mut self.mono);
        self.resampler.push(&self.mono, out)
    }

    /// Ends the stream (appends the resampler's tail) and starts afresh.
    pub fn flush(&mut self, out: &mut Vec<f32>) -> Result<()> {
        self.resampler.flush(out)
    }

    /// Drops buffered input without output: the next push starts a new stream.
    pub fn reset(&mut self) {
        self.resampler.reset();
    }
}

/// Converts a whole interleaved buffer to mono 16 kHz `f32` in one call.
pub fn to_mono_16k<S: Sample>(
    interleaved: &[S],
    sample_rate: u32,
    channels: u16,
) -> Result<Vec<f32>> {
    let mut converter = PcmConverter::new(sample_rate, channels)?;
    let frames = converter.format().frames_in(interleaved.len())?;
    let mut out = Vec::with_capacity(
        usize::try_from(expected_output_len(frames as u64, sample_rate)).unwrap_or(0),
    );
    converter.push(interleaved, &mut out)?;
    converter.flush(&mut out)?;
    Ok(out)
}
