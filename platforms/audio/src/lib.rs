//! `fennec-audio`: 16 kHz mono speech utterances out of whatever audio an app has — a
//! microphone, PCM buffers pushed by a host app, or a WAV/FLAC file — for Whisper.
//!
//! | Module | Job |
//! |---|---|
//! | [`pcm`] | interleaved `i16`/`i32`/`u8`/`f32`/`f64` at 4–384 kHz, any channels → mono `f32` at 16 kHz (channel mean, streaming rubato FFT resampler, exact passthrough at 16 kHz) |
//! | [`file`](mod@file) | WAV (PCM 8/16/24/32-bit, 32-bit float) and FLAC files → 16 kHz mono, with a duration cap |
//! | [`vad`] | endpointing over earshot's VAD: onset, pre-roll, hangover, min/max length; [`speech_chunks`] for ≤ 30 s Whisper windows |
//! | [`VoiceInput`] | the push API: `push_pcm(samples, rate, channels)` → [`Utterance`]s |
//! | [`SpeechToText`] | the same push API with a Whisper model: → utterances with their transcripts |
//!
//! ```
//! use fennec_audio::{VadConfig, VoiceInput};
//!
//! let mut voice = VoiceInput::new(VadConfig { hangover_ms: 400, ..VadConfig::default() })?;
//! let buffer = vec![0.0f32; 441 * 2]; // 10 ms of 44.1 kHz stereo, from the host app
//! voice.push_pcm(&buffer, 44_100, 2)?;
//! voice.finish()?; // push-to-talk released
//! for utterance in voice.utterances() {
//!     println!("{:.2}–{:.2} s", utterance.start_seconds(), utterance.end_seconds());
//! }
//! # Ok::<(), fennec_audio::AudioError>(())
//! ```
//!
//! Microphone capture is its own crate, `fennec-capture` (cpal), so that this one stays pure
//! Rust for the C library and the mobile bindings, whose host app owns the microphone.
//!
//! # Limits of the VAD (earshot 1.2)
//!
//! * Onset: earshot's score rises 0–4 frames (up to ~64 ms) after a sound starts; the
//!   pre-roll covers it. After a sound stops the score stays high for ~100 ms, so utterances
//!   end up to that much later than `post_roll_ms` after the speech.
//! * Noise: stationary noise at stream start or over a room's noise floor gives nothing, but
//!   broadband noise right after *exact digital silence* (all-zero samples, e.g. a muted
//!   input) can score as speech for seconds. [`VadConfig::dither`] (on by default) adds a
//!   −70 dBFS floor to what earshot sees, which removes most of it, not all; a pure tone scores
//!   as speech. Whisper's own no-speech probability is the second line of defence.
//!
//! Mobile bindings, whose host app owns the microphone (Kotlin `AudioRecord`, iOS
//! `AVAudioEngine`), push PCM into [`VoiceInput`] or [`SpeechToText`].

#![warn(missing_docs)]

mod error;
pub mod file;
pub mod pcm;
mod speech;
pub mod vad;
mod voice;

pub use error::{AudioError, Result};
pub use file::{decode_audio, read_audio_file, DecodedAudio, FileOptions};
pub use pcm::{to_mono_16k, PcmConverter, PcmFormat, Sample, TARGET_SAMPLE_RATE};
pub use speech::{Heard, SpeechToText};
pub use vad::{speech_chunks, EndReason, Endpointer, Utterance, VadConfig, WHISPER_WINDOW_SAMPLES};
pub use voice::VoiceInput;
