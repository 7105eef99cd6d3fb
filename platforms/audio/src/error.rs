//! [`AudioError`]: why audio was refused.

/// Why audio could not be read, converted, segmented or captured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// A sample rate of zero.
    #[error("sample rate must be positive")]
    ZeroSampleRate,
    /// A channel count of zero.
    #[error("channel count must be positive")]
    ZeroChannels,
    /// A sample rate outside the range this crate converts.
    #[error("sample rate {rate} Hz is outside the supported range {min}..={max} Hz")]
    SampleRateOutOfRange {
        /// The rate given.
        rate: u32,
        /// The lowest rate accepted.
        min: u32,
        /// The highest rate accepted.
        max: u32,
    },
    /// An interleaved buffer whose length is not a multiple of the channel count.
    #[error("buffer of {len} samples is not a whole number of {channels}-channel frames")]
    PartialFrame {
        /// Samples given.
        len: usize,
        /// Channels per frame.
        channels: u16,
    },
    /// Audio longer than the configured cap.
    #[error("audio lasts {seconds:.1} s, more than the {max_seconds:.1} s allowed")]
    TooLong {
        /// The duration found (or announced by the file header).
        seconds: f64,
        /// The cap in force.
        max_seconds: f64,
    },
    /// A file with no bytes, or an audio file with no samples.
    #[error("{0}: no audio in it")]
    Empty(String),
    /// A file that is not audio in a format this crate reads.
    #[error("{0}")]
    NotAudio(String),
    /// An audio file that ends before its header says it should, or is corrupt.
    #[error("{0}")]
    Corrupt(String),
    /// An audio file in a form this crate does not decode.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The resampler refused its input (should not happen: inputs are checked first).
    #[error("resampler failed: {0}")]
    Resampler(String),
    /// No input device, or the device cannot be opened or configured.
    #[error("audio device: {0}")]
    Device(String),
    /// The speech model refused the audio or failed (model errors, cancellation).
    #[error(transparent)]
    Speech(#[from] fennec_core::Error),
    /// Reading a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// This crate's result type.
pub type Result<T, E = AudioError> = std::result::Result<T, E>;
