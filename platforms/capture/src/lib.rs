//! `fennec-capture`: microphone capture through cpal — list input devices, open one by name
//! or the default, and receive its audio already converted to 16 kHz mono `f32` (for
//! `fennec_audio::VoiceInput` / `SpeechToText`).
//!
//! On Linux cpal uses ALSA: building needs `libasound2-dev` and `pkg-config`; the capture
//! test feeds a raw file through ALSA's `file` plugin and needs `alsa-utils` for ALSA's
//! configuration files. Apps whose host owns the microphone (Android `AudioRecord`, iOS
//! `AVAudioEngine`) push PCM into `fennec-audio` and do not need this crate.
//!
//! Every failure — no sound card, no input device, no usable configuration, a device that
//! disappears — is an [`AudioError::Device`], never a panic. Errors raised by the audio
//! thread after the stream started are kept for [`Capture::take_error`].

#![warn(missing_docs)]

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use fennec_audio::pcm::{
    PcmConverter, PcmFormat, Sample, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, TARGET_SAMPLE_RATE,
};
use fennec_audio::{AudioError, Result};

/// A sample type a capture stream can deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaptureFormat {
    /// Signed 16-bit.
    I16,
    /// Signed 32-bit.
    I32,
    /// 32-bit float.
    F32,
}

impl CaptureFormat {
    fn to_cpal(self) -> cpal::SampleFormat {
        match self {
            Self::I16 => cpal::SampleFormat::I16,
            Self::I32 => cpal::SampleFormat::I32,
            Self::F32 => cpal::SampleFormat::F32,
        }
    }

    fn from_cpal(format: cpal::SampleFormat) -> Option<Self> {
        match format {
            cpal::SampleFormat::I16 => Some(Self::I16),
            cpal::SampleFormat::I32 => Some(Self::I32),
            cpal::SampleFormat::F32 => Some(Self::F32),
            _ => None,
        }
    }

    /// Preference when the caller does not choose: float, then 16-bit, then 32-bit.
    fn rank(self) -> u8 {
        match self {
            Self::F32 => 0,
            Self::I16 => 1,
            Self::I32 => 2,
        }
    }
}

/// One range of stream configurations an input device supports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputConfigRange {
    /// Channels per frame.
    pub channels: u16,
    /// Lowest sample rate.
    pub min_rate: u32,
    /// Highest sample rate.
    pub max_rate: u32,
    /// Sample type, as cpal names it.
    pub sample_format: String,
}

/// An input device the host lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputDevice {
    /// Display name (pass it to [`CaptureConfig::device`]).
    pub name: String,
    /// Whether it is the host's default input.
    pub is_default: bool,
    /// What it supports (empty when the host cannot tell).
    pub configs: Vec<InputConfigRange>,
}

/// Lists the default host's input devices.
pub fn input_devices() -> Result<Vec<InputDevice>> {
    let host = cpal::default_host();
    let default_name = host.default_input_device().map(|d| d.to_string());
    let devices = host.input_devices().map_err(device_error)?;
    Ok(devices
        .map(|device| {
            let name = device.to_string();
            let configs = device
                .supported_input_configs()
                .map(|ranges| ranges.map(|r| describe_range(&r)).collect())
                .unwrap_or_default();
            InputDevice {
                is_default: default_name.as_deref() == Some(name.as_str()),
                name,
                configs,
            }
        })
        .collect())
}

fn describe_range(range: &cpal::SupportedStreamConfigRange) -> InputConfigRange {
    InputConfigRange {
        channels: range.channels(),
        min_rate: range.min_sample_rate(),
        max_rate: range.max_sample_rate(),
        sample_format: range.sample_format().to_string(),
    }
}

fn device_error(e: impl std::fmt::Display) -> AudioError {
    AudioError::Device(e.to_string())
}

/// What to open. Unset fields are chosen: the default device; 16 kHz if supported, else
/// 48 kHz, else the nearest supported rate; the fewest channels; f32, then i16, then i32.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Device name as [`input_devices`] lists it; `None` for the default input.
    pub device: Option<String>,
    /// Sample rate to ask the device for.
    pub sample_rate: Option<u32>,
    /// Channel count to ask the device for.
    pub channels: Option<u16>,
    /// Sample type to ask the device for.
    pub sample_format: Option<CaptureFormat>,
    /// Frames per hardware buffer; `None` for the device's default.
    pub buffer_frames: Option<u32>,
}

/// A running capture stream; capture stops when it is dropped.
pub struct Capture {
    stream: cpal::Stream,
    device_name: String,
    format: PcmFormat,
    sample_format: CaptureFormat,
    error: Arc<Mutex<Option<String>>>,
}

impl Capture {
    /// Opens the device and starts capture; `on_audio` receives 16 kHz mono `f32` buffers on
    /// the audio thread (keep it short: e.g. push into a channel or a `fennec_audio::VoiceInput`).
    pub fn start<F>(config: &CaptureConfig, mut on_audio: F) -> Result<Self>
    where
        F: FnMut(&[f32]) + Send + 'static,
    {
        let host = cpal::default_host();
        let device = find_device(&host, config.device.as_deref())?;
        let device_name = device.to_string();
        let (stream_config, sample_format) = choose_config(&device, config)?;
        let format = PcmFormat::new(stream_config.sample_rate, stream_config.channels)?;
        let mut converter = PcmConverter::new(format.sample_rate, format.channels)?;
        let error = Arc::new(Mutex::new(None));
        let data_error = Arc::clone(&error);
        let stream_error = Arc::clone(&error);
        let mut out = Vec::new();
        let on_data = move |data: &cpal::Data, _: &cpal::InputCallbackInfo| {
            out.clear();
            let converted = match sample_format {
                CaptureFormat::I16 => push_slice(&mut converter, data.as_slice::<i16>(), &mut out),
                CaptureFormat::I32 => push_slice(&mut converter, data.as_slice::<i32>(), &mut out),
                CaptureFormat::F32 => push_slice(&mut converter, data.as_slice::<f32>(), &mut out),
            };
            match converted {
                Ok(()) if !out.is_empty() => on_audio(&out),
                Ok(()) => {}
                Err(e) => record_error(&data_error, e.to_string()),
            }
        };
        let on_error = move |e: cpal::Error| record_error(&stream_error, e.to_string());
        tracing::debug!(device = %device_name, ?stream_config, ?sample_format, "opening input");
        let stream = device
            .build_input_stream_raw(
                stream_config,
                sample_format.to_cpal(),
                on_data,
                on_error,
                None,
            )
            .map_err(|e| AudioError::Device(format!("{device_name}: {e}")))?;
        stream
            .play()
            .map_err(|e| AudioError::Device(format!("{device_name}: {e}")))?;
        Ok(Self {
            stream,
            device_name,
            format,
            sample_format,
            error,
        })
    }

    /// Like [`Capture::start`], delivering each converted buffer through a channel.
    pub fn start_channel(config: &CaptureConfig) -> Result<(Self, mpsc::Receiver<Vec<f32>>)> {
        let (sender, receiver) = mpsc::channel();
        let capture = Self::start(config, move |samples| {
            // The receiver being gone just means nobody listens any more.
            let _ = sender.send(samples.to_vec());
        })?;
        Ok((capture, receiver))
    }

    /// The opened device's name.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// The device's stream format (before conversion to 16 kHz mono).
    pub fn device_format(&self) -> PcmFormat {
        self.format
    }

    /// The device's sample type.
    pub fn sample_format(&self) -> CaptureFormat {
        self.sample_format
    }

    /// The first error the audio thread reported since the last call, if any.
    pub fn take_error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|mut slot| slot.take())
    }

    /// Pauses capture (resume with [`Capture::resume`]).
    pub fn pause(&self) -> Result<()> {
        self.stream.pause().map_err(device_error)
    }

    /// Resumes a paused capture.
    pub fn resume(&self) -> Result<()> {
        self.stream.play().map_err(device_error)
    }
}

fn push_slice<S: Sample>(
    converter: &mut PcmConverter,
    samples: Option<&[S]>,
    out: &mut Vec<f32>,
) -> Result<()> {
    match samples {
        Some(samples) => converter.push(samples, out),
        None => Err(AudioError::Device(
            "host delivered another sample type".into(),
        )),
    }
}

fn record_error(slot: &Mutex<Option<String>>, message: String) {
    tracing::warn!(%message, "audio capture error");
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert(message);
    }
}

fn find_device(host: &cpal::Host, name: Option<&str>) -> Result<cpal::Device> {
    match name {
        None => host
            .default_input_device()
            .ok_or_else(|| AudioError::Device("no default input device".into())),
        Some(name) => host
            .input_devices()
            .map_err(device_error)?
            .find(|d| d.to_string() == name)
            .ok_or_else(|| AudioError::Device(format!("no input device named {name:?}"))),
    }
}

/// Picks the supported configuration that fits `config` best.
fn choose_config(
    device: &cpal::Device,
    config: &CaptureConfig,
) -> Result<(cpal::StreamConfig, CaptureFormat)> {
    let ranges: Vec<_> = device
        .supported_input_configs()
        .map_err(|e| AudioError::Device(format!("{device}: {e}")))?
        .collect();
    let best = ranges
        .iter()
        .filter_map(|range| candidate(range, config))
        .min_by_key(|c| c.rank);
    let Some(best) = best else {
        let offered: Vec<String> = ranges
            .iter()
            .map(|r| {
                let r = describe_range(r);
                format!(
                    "{}ch {}-{} Hz {}",
                    r.channels, r.min_rate, r.max_rate, r.sample_format
                )
            })
            .collect();
        return Err(AudioError::Device(format!(
            "{device}: no supported input configuration matches {config:?} (offered: [{}])",
            offered.join(", ")
        )));
    };
    let buffer_size = match config.buffer_frames {
        Some(frames) => cpal::BufferSize::Fixed(frames),
        None => cpal::BufferSize::Default,
    };
    Ok((
        cpal::StreamConfig {
            channels: best.channels,
            sample_rate: best.rate,
            buffer_size,
        },
        best.format,
    ))
}

/// A configuration drawn from one supported range, with its preference rank (lower wins).
struct Candidate {
    channels: u16,
    rate: u32,
    format: CaptureFormat,
    rank: (u16, u32, u8),
}

fn candidate(
    range: &cpal::SupportedStreamConfigRange,
    config: &CaptureConfig,
) -> Option<Candidate> {
    let format = CaptureFormat::from_cpal(range.sample_format())?;
    if config.sample_format.is_some_and(|f| f != format) {
        return None;
    }
    let channels = range.channels();
    if channels == 0 || config.channels.is_some_and(|c| c != channels) {
        return None;
    }
    let (min, max) = (range.min_sample_rate(), range.max_sample_rate());
    let rate = match config.sample_rate {
        Some(rate) => Some(rate).filter(|r| (min..=max).contains(r))?,
        None => [TARGET_SAMPLE_RATE, 48_000]
            .into_iter()
            .find(|r| (min..=max).contains(r))
            .unwrap_or_else(|| TARGET_SAMPLE_RATE.clamp(min, max)),
    };
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        return None;
    }
    let rate_rank = if rate == TARGET_SAMPLE_RATE {
        0
    } else {
        rate.abs_diff(48_000) + 1
    };
    Some(Candidate {
        channels,
        rate,
        format,
        rank: (channels, rate_rank, format.rank()),
    })
}
