//! Audio files (WAV: PCM 8/16/24/32-bit and 32-bit float; FLAC) → mono `f32` at 16 kHz.
//!
//! The format is recognised by its first bytes, not by the file name. Other files get a
//! named error ([`AudioError::NotAudio`], e.g. for text or a GGUF model), as do empty and
//! truncated ones. A duration cap ([`FileOptions::max_seconds`]) is checked against the
//! header before decoding and again while decoding, so a huge or lying file is an error,
//! not an out-of-memory.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::error::{AudioError, Result};
use crate::pcm::{PcmConverter, TARGET_SAMPLE_RATE};

/// Decoded frames converted per block (bounds the scratch memory, not the output).
const BLOCK_FRAMES: usize = 4096;

/// Limits for reading audio files.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileOptions {
    /// The longest audio accepted, in seconds: positive and finite (default 600: ten minutes,
    /// 38 MB at 16 kHz).
    pub max_seconds: f64,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self { max_seconds: 600.0 }
    }
}

/// Mono 16 kHz audio read from a file, with what the file held.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedAudio {
    /// Samples at 16 kHz, mono, in [-1, 1].
    pub samples: Vec<f32>,
    /// The file's sample rate.
    pub source_rate: u32,
    /// The file's channel count.
    pub source_channels: u16,
}

impl DecodedAudio {
    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(TARGET_SAMPLE_RATE)
    }
}

/// Reads a WAV or FLAC file into mono 16 kHz samples.
pub fn read_audio_file(path: impl AsRef<Path>, options: &FileOptions) -> Result<DecodedAudio> {
    let path = path.as_ref();
    let file = File::open(path)?;
    decode_audio(BufReader::new(file), &path.display().to_string(), options)
}

/// What the first bytes of a file say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Container {
    Wav,
    Flac,
}

/// Decodes WAV or FLAC bytes from `reader` (`name` labels errors) into mono 16 kHz samples.
pub fn decode_audio<R: Read>(
    mut reader: R,
    name: &str,
    options: &FileOptions,
) -> Result<DecodedAudio> {
    if !options.max_seconds.is_finite() || options.max_seconds <= 0.0 {
        return Err(AudioError::InvalidConfig(format!(
            "max_seconds {} must be positive",
            options.max_seconds
        )));
    }
    let mut head = Vec::with_capacity(12);
    (&mut reader).take(12).read_to_end(&mut head)?;
    let container = sniff(&head, name)?;
    let reader = io::Cursor::new(head).chain(reader);
    match container {
        Container::Wav => decode_wav(reader, name, options),
        Container::Flac => decode_flac(reader, name, options),
    }
}

/// Recognises the container from the first (up to 12) bytes.
fn sniff(head: &[u8], name: &str) -> Result<Container> {
    if head.is_empty() {
        return Err(AudioError::Empty(format!("{name} is empty")));
    }
    let what = match head {
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E', ..] => {
            return Ok(Container::Wav)
        }
        [b'f', b'L', b'a', b'C', ..] => return Ok(Container::Flac),
        [b'R', b'I', b'F', b'F', ..] if head.len() < 12 => {
            return Err(AudioError::Corrupt(format!("{name}: truncated WAV header")))
        }
        [b'R', b'F', b'6', b'4', ..] | [b'B', b'W', b'6', b'4', ..] => {
            return Err(AudioError::Unsupported(format!(
                "{name}: RF64/BW64 WAV (over 4 GB) is not read"
            )))
        }
        [b'O', b'g', b'g', b'S', ..] => "an Ogg file (Vorbis/Opus are not decoded)",
        [b'I', b'D', b'3', ..] | [0xFF, 0xFB | 0xF3 | 0xF2, ..] => "an MP3 file (not decoded)",
        [b'G', b'G', b'U', b'F', ..] => "a GGUF model file",
        [b'R', b'I', b'F', b'F', ..] => "a RIFF file that is not WAVE",
        _ if looks_like_text(head) => "a text file",
        _ => "of an unknown format",
    };
    Err(AudioError::NotAudio(format!(
        "{name} is {what}, not WAV or FLAC audio"
    )))
}

fn looks_like_text(head: &[u8]) -> bool {
    head.iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace() || b >= 0x80)
}

/// Converts decoded interleaved blocks, enforcing the duration cap on the input frames.
struct CappedConverter {
    converter: PcmConverter,
    max_frames: u64,
    frames: u64,
    max_seconds: f64,
    rate: u32,
    block: Vec<f32>,
    out: Vec<f32>,
}

impl CappedConverter {
    fn new(
        rate: u32,
        channels: u16,
        announced_frames: Option<u64>,
        options: &FileOptions,
    ) -> Result<Self> {
        let converter = PcmConverter::new(rate, channels)?;
        let max_frames = (options.max_seconds * f64::from(rate)).floor() as u64;
        if let Some(frames) = announced_frames.filter(|&f| f > max_frames) {
            return Err(AudioError::TooLong {
                seconds: frames as f64 / f64::from(rate),
                max_seconds: options.max_seconds,
            });
        }
        let capacity = announced_frames
            .map(|f| crate::pcm::expected_output_len(f, rate))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        Ok(Self {
            converter,
            max_frames,
            frames: 0,
            max_seconds: options.max_seconds,
            rate,
            block: Vec::with_capacity(BLOCK_FRAMES * usize::from(channels)),
            out: Vec::with_capacity(capacity),
        })
    }

    fn channels(&self) -> usize {
        usize::from(self.converter.format().channels)
    }

    /// Adds one sample; converts the block when it is full.
    fn push(&mut self, sample: f32) -> Result<()> {
        self.block.push(sample);
        if self.block.len() == BLOCK_FRAMES * self.channels() {
            self.convert_block()?;
        }
        Ok(())
    }

    fn convert_block(&mut self) -> Result<()> {
        let frames = (self.block.len() / self.channels()) as u64;
        self.frames += frames;
        if self.frames > self.max_frames {
            return Err(AudioError::TooLong {
                seconds: self.frames as f64 / f64::from(self.rate),
                max_seconds: self.max_seconds,
            });
        }
        self.converter.push(&self.block, &mut self.out)?;
        self.block.clear();
        Ok(())
    }

    /// Converts the partial block at the end: a cut frame means a truncated file.
    fn finish(mut self, name: &str) -> Result<DecodedAudio> {
        if !self.block.len().is_multiple_of(self.channels()) {
            return Err(AudioError::Corrupt(format!(
                "{name}: truncated (the last frame is incomplete)"
            )));
        }
        self.convert_block()?;
        if self.frames == 0 {
            return Err(AudioError::Empty(format!("{name} holds no samples")));
        }
        self.converter.flush(&mut self.out)?;
        let format = self.converter.format();
        Ok(DecodedAudio {
            samples: self.out,
            source_rate: format.sample_rate,
            source_channels: format.channels,
        })
    }
}

fn decode_wav<R: Read>(reader: R, name: &str, options: &FileOptions) -> Result<DecodedAudio> {
    let mut wav = hound::WavReader::new(reader).map_err(|e| wav_error(e, name))?;
    let spec = wav.spec();
    let announced = u64::from(wav.duration());
    let mut sink = CappedConverter::new(spec.sample_rate, spec.channels, Some(announced), options)?;
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            for sample in wav.samples::<f32>() {
                let sample = sample.map_err(|e| wav_error(e, name))?;
                sink.push(if sample.is_finite() { sample } else { 0.0 })?;
            }
        }
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let scale = 1.0 / f64::from(1u32 << (bits - 1));
            for sample in wav.samples::<i32>() {
                let sample = sample.map_err(|e| wav_error(e, name))?;
                sink.push((f64::from(sample) * scale) as f32)?;
            }
        }
        (format, bits) => {
            return Err(AudioError::Unsupported(format!(
                "{name}: {bits}-bit {format:?} WAV samples"
            )))
        }
    }
    sink.finish(name)
}

fn wav_error(e: hound::Error, name: &str) -> AudioError {
    match e {
        // hound reports a short read as `Other` ("Failed to read enough bytes").
        hound::Error::IoError(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::Other
            ) =>
        {
            AudioError::Corrupt(format!("{name}: truncated WAV file ({e})"))
        }
        hound::Error::IoError(e) => AudioError::Io(e),
        hound::Error::Unsupported | hound::Error::TooWide => {
            AudioError::Unsupported(format!("{name}: {e}"))
        }
        other => AudioError::Corrupt(format!("{name}: invalid WAV: {other}")),
    }
}

fn decode_flac<R: Read>(reader: R, name: &str, options: &FileOptions) -> Result<DecodedAudio> {
    let mut flac = claxon::FlacReader::new(reader).map_err(|e| flac_error(e, name))?;
    let info = flac.streaminfo();
    let channels = u16::try_from(info.channels)
        .map_err(|_| AudioError::Unsupported(format!("{name}: {} channels", info.channels)))?;
    let bits = info.bits_per_sample;
    if !(4..=32).contains(&bits) {
        return Err(AudioError::Unsupported(format!(
            "{name}: {bits}-bit FLAC samples"
        )));
    }
    let mut sink = CappedConverter::new(info.sample_rate, channels, info.samples, options)?;
    let scale = 1.0 / f64::from(1u32 << (bits - 1));
    for sample in flac.samples() {
        let sample = sample.map_err(|e| flac_error(e, name))?;
        sink.push((f64::from(sample) * scale) as f32)?;
    }
    if let Some(announced) = info.samples {
        let got = sink.frames + (sink.block.len() / sink.channels()) as u64;
        if got < announced {
            return Err(AudioError::Corrupt(format!(
                "{name}: truncated FLAC file ({got} of {announced} frames)"
            )));
        }
    }
    sink.finish(name)
}

fn flac_error(e: claxon::Error, name: &str) -> AudioError {
    match e {
        claxon::Error::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            AudioError::Corrupt(format!("{name}: truncated FLAC file"))
        }
        claxon::Error::IoError(e) => AudioError::Io(e),
        claxon::Error::Unsupported(what) => AudioError::Unsupported(format!("{name}: FLAC {what}")),
        claxon::Error::FormatError(what) => {
            AudioError::Corrupt(format!("{name}: invalid FLAC: {what}"))
        }
    }
}
