//! Speech to text: Whisper models, one-shot transcription of a sample buffer, and speech
//! streams that endpoint pushed PCM into utterances and transcribe each.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex, TryLockError};

use fennec_audio::{AudioError, Heard, SpeechToText, VadConfig};
use fennec_core::speech::{DecodeOptions, TranscribeOptions, WhisperModel};
use fennec_core::{CancelHandle, ErrorKind};

use crate::model::{fennec_load_options, load_handle};
use crate::session::fennec_cancel;
use crate::status::{guard, guard_void, FfiError, FfiResult};
use crate::{c_ref, c_slice, c_str, c_write, count, fennec_status};

/// A loaded Whisper speech-to-text model (opaque). Shared by any number of streams and
/// threads; a stream keeps it alive.
pub struct fennec_whisper {
    model: Arc<WhisperModel>,
}

/// How to transcribe. Get the defaults from `fennec_transcribe_options_default()`; passing
/// NULL instead of a pointer to options means the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_transcribe_options {
    /// Language code of the speech (`"en"`, `"de"`, …) for multilingual models; NULL means
    /// English. English-only models ignore it.
    pub language: *const c_char,
    /// Most tokens generated per 30-second window (0 = up to the decoder's context).
    pub max_tokens: u32,
    /// Drop a window that looks like no speech: its no-speech probability above
    /// `no_speech_threshold` and its average log-probability at most `log_prob_threshold`.
    pub skip_no_speech: bool,
    /// See `skip_no_speech` (default 0.6).
    pub no_speech_threshold: f32,
    /// See `skip_no_speech` (default -1).
    pub log_prob_threshold: f32,
    /// Longest audio accepted, in seconds (longer is `FENNEC_ERR_INVALID_ARGUMENT`).
    pub max_audio_s: f32,
}

/// Facts about a transcription, from `fennec_transcribe()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct fennec_transcript_info {
    /// Text tokens generated.
    pub n_tokens: u32,
    /// The lowest no-speech probability of the 30-second windows (1 when there is none).
    pub no_speech_prob: f32,
    /// Mean log-probability per token.
    pub avg_logprob: f32,
    /// Every window was dropped as no speech (the text is then empty).
    pub skipped_as_no_speech: bool,
    /// Seconds of audio transcribed (at 16 kHz, after any resampling).
    pub audio_seconds: f64,
    /// Seconds computing the log-mel features.
    pub mel_seconds: f64,
    /// Seconds in the encoder.
    pub encode_seconds: f64,
    /// Seconds in the decoder.
    pub decode_seconds: f64,
}

/// Endpointing settings of a speech stream (milliseconds of audio). Get the defaults from
/// `fennec_vad_config_default()`; passing NULL instead of a pointer means the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_vad_config {
    /// A frame is voiced when the detector's score (0..1] reaches this (default 0.5).
    pub threshold: f32,
    /// Voiced 16 ms frames in a row that start speech (default 3).
    pub onset_frames: u32,
    /// Audio kept before speech starts (default 300).
    pub pre_roll_ms: u32,
    /// Silence after the last voiced frame that ends an utterance (default 600).
    pub hangover_ms: u32,
    /// Audio kept after the last voiced frame, at most `hangover_ms` (default 200).
    pub post_roll_ms: u32,
    /// Utterances with less voiced audio are dropped (default 250).
    pub min_speech_ms: u32,
    /// Longer utterances are cut here (default 30000).
    pub max_utterance_ms: u32,
    /// Peak of the noise added to what the detector scores, not to the audio (default
    /// 0.0003); 0 turns it off.
    pub dither: f32,
}

/// One utterance heard in pushed audio, passed to a `fennec_heard_callback`. The pointers
/// are valid only during the callback.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_heard {
    /// Start in the stream, seconds since the first push (or the last reset).
    pub start_s: f64,
    /// End in the stream, seconds.
    pub end_s: f64,
    /// What was said, `text_len` bytes of UTF-8, NUL-terminated (empty when Whisper judged
    /// it no speech).
    pub text: *const c_char,
    /// Bytes of `text`, NUL excluded.
    pub text_len: usize,
    /// Whisper's text tokens.
    pub tokens: *const u32,
    /// Number of `tokens`.
    pub n_tokens: usize,
    /// Whisper's no-speech probability for it.
    pub no_speech_prob: f32,
    /// Seconds from the utterance being complete to its transcript.
    pub transcribe_seconds: f64,
}

/// Called with each utterance a push (or finish) completed, oldest first, on the calling
/// thread.
pub type fennec_heard_callback =
    Option<unsafe extern "C" fn(heard: *const fennec_heard, user: *mut c_void)>;

/// A speech stream (opaque): pushed PCM in, transcribed utterances out. Used by one thread
/// at a time (a concurrent call gets `FENNEC_ERR_BUSY`); `fennec_stt_cancel()` works from
/// any thread.
pub struct fennec_stt {
    inner: Mutex<SttState>,
    cancel: CancelHandle,
}

struct SttState {
    stt: SpeechToText,
    /// The NUL-terminated text of the utterance being passed to the callback.
    text: Vec<u8>,
}

/// The status kind of an audio error: bad buffers, formats and settings are invalid
/// arguments; model errors keep their own kind.
pub(crate) fn audio_error_kind(e: &AudioError) -> ErrorKind {
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

/// Transcription defaults: English, no token limit, no-speech windows dropped (0.6, -1),
/// at most 600 s of audio.
#[no_mangle]
pub extern "C" fn fennec_transcribe_options_default() -> fennec_transcribe_options {
    let d = TranscribeOptions::default();
    fennec_transcribe_options {
        language: std::ptr::null(),
        max_tokens: 0,
        skip_no_speech: d.skip_no_speech,
        no_speech_threshold: d.no_speech_threshold,
        log_prob_threshold: d.log_prob_threshold,
        max_audio_s: d.max_audio_s,
    }
}

/// Endpointing defaults (see `fennec_vad_config`).
#[no_mangle]
pub extern "C" fn fennec_vad_config_default() -> fennec_vad_config {
    let d = VadConfig::default();
    fennec_vad_config {
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

/// Transcription options from their C form (NULL = defaults).
///
/// # Safety
/// `o` is NULL or points to options whose `language` is NULL or a NUL-terminated string.
unsafe fn transcribe_options(o: *const fennec_transcribe_options) -> FfiResult<TranscribeOptions> {
    // SAFETY: NULL or valid options (caller's contract).
    let Some(o) = (unsafe { o.as_ref() }) else {
        return Ok(TranscribeOptions::default());
    };
    let language = if o.language.is_null() {
        None
    } else {
        // SAFETY: a NUL-terminated string (caller's contract).
        Some(unsafe { c_str(o.language, "options.language") }?.to_owned())
    };
    Ok(TranscribeOptions {
        max_audio_s: o.max_audio_s,
        decode: DecodeOptions {
            language,
            max_tokens: (o.max_tokens > 0).then_some(o.max_tokens as usize),
            ..DecodeOptions::default()
        },
        skip_no_speech: o.skip_no_speech,
        no_speech_threshold: o.no_speech_threshold,
        log_prob_threshold: o.log_prob_threshold,
        ..TranscribeOptions::default()
    })
}

/// Loads the Whisper model at `path` (a GGUF with `general.architecture = whisper`, or a
/// whisper.cpp `ggml-*.bin`) with `options` (NULL = defaults) into `*out`.
///
/// Errors: `FENNEC_ERR_IO` when the file cannot be read, `FENNEC_ERR_INVALID_GGUF` when it is
/// not valid GGUF, `FENNEC_ERR_UNSUPPORTED` for another architecture,
/// `FENNEC_ERR_INVALID_MODEL` for missing or misshapen tensors or a malformed whisper.cpp
/// `.bin`. `*out` is NULL on failure.
#[no_mangle]
pub unsafe extern "C" fn fennec_whisper_load(
    path: *const c_char,
    options: *const fennec_load_options,
    out: *mut *mut fennec_whisper,
) -> fennec_status {
    // SAFETY: the caller's pointers follow the ABI contract.
    unsafe {
        load_handle(path, options, out, |path, opts| {
            Ok(fennec_whisper {
                model: WhisperModel::load(path, opts)?,
            })
        })
    }
}

/// Releases a Whisper model handle (NULL is ignored). Streams created from it keep the
/// model alive and stay usable.
#[no_mangle]
pub unsafe extern "C" fn fennec_whisper_free(whisper: *mut fennec_whisper) {
    guard_void(|| {
        if !whisper.is_null() {
            // SAFETY: a non-NULL handle came from Box::into_raw in fennec_whisper_load and
            // is freed once (ABI contract).
            drop(unsafe { Box::from_raw(whisper) });
        }
    })
}

/// Transcribes `n_samples` mono samples in [-1, 1] at `sample_rate` Hz (resampled to 16 kHz
/// when it differs) with `options` (NULL = defaults); `cancel` (may be NULL) stops it
/// between encoder blocks and tokens with `FENNEC_ERR_CANCELLED`.
///
/// On success `*text` receives a new NUL-terminated UTF-8 string of `*text_len` bytes (NUL
/// excluded); release it with `fennec_buffer_free((uint8_t *)*text, *text_len + 1)`. `info`
/// (may be NULL) receives the counts and timings. On failure `*text` is NULL.
///
/// Errors: `FENNEC_ERR_INVALID_ARGUMENT` for no samples, non-finite samples, a sample rate
/// outside 4..384 kHz or audio longer than `max_audio_s`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn fennec_transcribe(
    whisper: *const fennec_whisper,
    samples: *const f32,
    n_samples: usize,
    sample_rate: u32,
    options: *const fennec_transcribe_options,
    cancel: *const fennec_cancel,
    text: *mut *mut c_char,
    text_len: *mut usize,
    info: *mut fennec_transcript_info,
) -> fennec_status {
    guard(|| {
        // SAFETY: `text` is NULL or writable (ABI contract); NULL is reported.
        unsafe { c_write(text, std::ptr::null_mut(), "text") }?;
        if text_len.is_null() {
            return Err(FfiError::Null("text_len"));
        }
        // SAFETY: `whisper` is NULL or a live handle (ABI contract).
        let model = &unsafe { c_ref(whisper, "whisper") }?.model;
        // SAFETY: `samples` is valid for `n_samples` reads (ABI contract).
        let samples = unsafe { c_slice(samples, n_samples, "samples") }?;
        // SAFETY: `options` follows the ABI contract.
        let opts = unsafe { transcribe_options(options) }?;
        // SAFETY: `cancel` is NULL or a live handle (ABI contract). The clone shares the flag.
        let cancel = unsafe { cancel.as_ref() }.map_or_else(CancelHandle::new, |c| c.handle());
        let resampled;
        let samples_16k = if sample_rate == fennec_audio::TARGET_SAMPLE_RATE {
            samples
        } else {
            resampled =
                fennec_audio::to_mono_16k(samples, sample_rate, 1).map_err(FfiError::Audio)?;
            &resampled
        };
        let t = model.transcribe(samples_16k, &opts, &cancel)?;
        if !info.is_null() {
            let facts = fennec_transcript_info {
                n_tokens: count(t.tokens.len()),
                no_speech_prob: t.no_speech_prob,
                avg_logprob: t.avg_logprob,
                skipped_as_no_speech: t.skipped_as_no_speech,
                audio_seconds: samples_16k.len() as f64
                    / f64::from(fennec_audio::TARGET_SAMPLE_RATE),
                mel_seconds: t.timings.mel.as_secs_f64(),
                encode_seconds: t.timings.encode.as_secs_f64(),
                decode_seconds: t.timings.decode.as_secs_f64(),
            };
            // SAFETY: non-NULL and writable (ABI contract).
            unsafe { info.write(facts) };
        }
        let mut bytes = Vec::with_capacity(t.text.len() + 1);
        bytes.extend_from_slice(t.text.as_bytes());
        bytes.push(0);
        let boxed = bytes.into_boxed_slice();
        // SAFETY: both checked writable above. The allocation is `t.text.len() + 1` bytes,
        // which fennec_buffer_free receives back from the caller.
        unsafe {
            text_len.write(t.text.len());
            text.write(Box::into_raw(boxed).cast::<c_char>());
        }
        Ok(())
    })
}

impl fennec_stt {
    /// The stream, or `FENNEC_ERR_BUSY` when another call holds it.
    fn lock(&self) -> FfiResult<std::sync::MutexGuard<'_, SttState>> {
        self.inner.try_lock().map_err(|e| match e {
            TryLockError::WouldBlock => FfiError::Busy,
            TryLockError::Poisoned(_) => {
                FfiError::Panic("the stream was poisoned by an earlier panic; free it".into())
            }
        })
    }
}

/// Creates a speech stream on `whisper` into `*out`: endpointing with `vad` (NULL =
/// defaults), transcribing with `options` (NULL = defaults). The stream holds its own
/// reference to the model: `fennec_whisper_free()` may come first.
///
/// Errors: `FENNEC_ERR_INVALID_ARGUMENT` for VAD settings out of range.
#[no_mangle]
pub unsafe extern "C" fn fennec_stt_new(
    whisper: *const fennec_whisper,
    vad: *const fennec_vad_config,
    options: *const fennec_transcribe_options,
    out: *mut *mut fennec_stt,
) -> fennec_status {
    guard(|| {
        // SAFETY: `out` is NULL or writable (ABI contract).
        unsafe { c_write(out, std::ptr::null_mut(), "out") }?;
        // SAFETY: `whisper` is NULL or a live handle (ABI contract).
        let model = unsafe { c_ref(whisper, "whisper") }?.model.clone();
        // SAFETY: `vad` is NULL or points to a config (ABI contract).
        let vad = unsafe { vad.as_ref() }.map_or_else(VadConfig::default, |c| VadConfig {
            threshold: c.threshold,
            onset_frames: c.onset_frames,
            pre_roll_ms: c.pre_roll_ms,
            hangover_ms: c.hangover_ms,
            post_roll_ms: c.post_roll_ms,
            min_speech_ms: c.min_speech_ms,
            max_utterance_ms: c.max_utterance_ms,
            dither: c.dither,
        });
        // SAFETY: `options` follows the ABI contract.
        let opts = unsafe { transcribe_options(options) }?;
        let stt = SpeechToText::new(model, vad, opts).map_err(FfiError::Audio)?;
        let cancel = stt.cancel_handle();
        let handle = Box::into_raw(Box::new(fennec_stt {
            inner: Mutex::new(SttState {
                stt,
                text: Vec::with_capacity(256),
            }),
            cancel,
        }));
        // SAFETY: checked writable above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Releases a speech stream (NULL is ignored). Must not be called while another thread
/// uses it.
#[no_mangle]
pub unsafe extern "C" fn fennec_stt_free(stt: *mut fennec_stt) {
    guard_void(|| {
        if !stt.is_null() {
            // SAFETY: created by Box::into_raw in fennec_stt_new, freed once, unused by any
            // other call (ABI contract).
            drop(unsafe { Box::from_raw(stt) });
        }
    })
}

/// Runs `step` on the locked stream and passes each utterance it returns to `on_heard`.
///
/// # Safety
/// `stt` is NULL or a live handle; `on_heard` is NULL or a valid function; `user` is what
/// the caller gave with it.
unsafe fn with_stream(
    stt: *const fennec_stt,
    on_heard: fennec_heard_callback,
    user: *mut c_void,
    step: impl FnOnce(&mut SpeechToText) -> fennec_audio::Result<Vec<Heard>>,
) -> FfiResult {
    // SAFETY: `stt` is NULL or a live handle (caller's contract).
    let handle = unsafe { c_ref(stt, "stt") }?;
    let mut state = handle.lock()?;
    let SttState { stt, text } = &mut *state;
    let heard = step(stt).map_err(FfiError::Audio)?;
    let Some(cb) = on_heard else { return Ok(()) };
    for h in heard {
        text.clear();
        text.extend_from_slice(h.transcript.text.as_bytes());
        text.push(0);
        let c_heard = fennec_heard {
            start_s: h.start_s,
            end_s: h.end_s,
            text: text.as_ptr().cast(),
            text_len: h.transcript.text.len(),
            tokens: h.transcript.tokens.as_ptr(),
            n_tokens: h.transcript.tokens.len(),
            no_speech_prob: h.transcript.no_speech_prob,
            transcribe_seconds: h.transcribe_time.as_secs_f64(),
        };
        // SAFETY: `cb` is a valid function (caller's contract); `c_heard` and the text and
        // tokens it points to live until the call returns; `user` is passed through.
        unsafe { cb(&c_heard, user) };
    }
    Ok(())
}

/// The channel count as the stream takes it.
fn channels_u16(channels: u32) -> FfiResult<u16> {
    u16::try_from(channels)
        .map_err(|_| FfiError::InvalidArgument(format!("{channels} channels is too many")))
}

/// Pushes `n_samples` interleaved samples of any PCM type into the stream.
///
/// # Safety
/// As for `fennec_stt_push_i16()`: `samples` is valid for `n_samples` reads, `stt` is a live
/// stream, `on_heard`/`user` follow the callback contract.
unsafe fn push_samples<S: fennec_audio::Sample>(
    stt: *mut fennec_stt,
    samples: *const S,
    n_samples: usize,
    sample_rate: u32,
    channels: u32,
    on_heard: fennec_heard_callback,
    user: *mut c_void,
) -> fennec_status {
    guard(|| {
        // SAFETY: `samples` is valid for `n_samples` reads (ABI contract).
        let samples = unsafe { c_slice(samples, n_samples, "samples") }?;
        let channels = channels_u16(channels)?;
        // SAFETY: the pointers follow the ABI contract.
        unsafe {
            with_stream(stt, on_heard, user, |s| {
                s.push_pcm(samples, sample_rate, channels)
            })
        }
    })
}

/// Adds `n_samples` interleaved 16-bit samples (`n_samples / channels` frames) at
/// `sample_rate` Hz and passes each utterance this completes to `on_heard` (may be NULL),
/// transcribed on this thread.
///
/// Errors: `FENNEC_ERR_INVALID_ARGUMENT` for a zero or out-of-range rate (4..384 kHz), zero
/// channels or a buffer that is not whole frames; `FENNEC_ERR_CANCELLED` when
/// `fennec_stt_cancel()` stopped a transcription (the stream goes on with the next push).
#[no_mangle]
pub unsafe extern "C" fn fennec_stt_push_i16(
    stt: *mut fennec_stt,
    samples: *const i16,
    n_samples: usize,
    sample_rate: u32,
    channels: u32,
    on_heard: fennec_heard_callback,
    user: *mut c_void,
) -> fennec_status {
    // SAFETY: the caller's pointers follow the ABI contract.
    unsafe {
        push_samples(
            stt,
            samples,
            n_samples,
            sample_rate,
            channels,
            on_heard,
            user,
        )
    }
}

/// As `fennec_stt_push_i16()`, for float samples in [-1, 1].
#[no_mangle]
pub unsafe extern "C" fn fennec_stt_push_f32(
    stt: *mut fennec_stt,
    samples: *const f32,
    n_samples: usize,
    sample_rate: u32,
    channels: u32,
    on_heard: fennec_heard_callback,
    user: *mut c_void,
) -> fennec_status {
    // SAFETY: the caller's pointers follow the ABI contract.
    unsafe {
        push_samples(
            stt,
            samples,
            n_samples,
            sample_rate,
            channels,
            on_heard,
            user,
        )
    }
}

/// End of input (push-to-talk released): speech in progress becomes an utterance, is
/// transcribed and passed to `on_heard` (may be NULL).
#[no_mangle]
pub unsafe extern "C" fn fennec_stt_finish(
    stt: *mut fennec_stt,
    on_heard: fennec_heard_callback,
    user: *mut c_void,
) -> fennec_status {
    guard(|| {
        // SAFETY: the pointers follow the ABI contract.
        unsafe { with_stream(stt, on_heard, user, SpeechToText::finish) }
    })
}

/// Drops speech in progress and buffered audio; the stream clock restarts at 0.
#[no_mangle]
pub unsafe extern "C" fn fennec_stt_reset(stt: *mut fennec_stt) -> fennec_status {
    guard(|| {
        // SAFETY: `stt` is NULL or a live handle (ABI contract).
        unsafe { c_ref(stt, "stt") }?.lock()?.stt.reset();
        Ok(())
    })
}

/// Whether speech is in progress (false for NULL, and while another call holds the stream).
#[no_mangle]
pub unsafe extern "C" fn fennec_stt_in_speech(stt: *const fennec_stt) -> bool {
    let mut speaking = false;
    guard_void(|| {
        // SAFETY: `stt` is NULL or a live handle (ABI contract).
        if let Some(handle) = unsafe { stt.as_ref() } {
            speaking = handle.lock().is_ok_and(|s| s.stt.in_speech());
        }
    });
    speaking
}

/// Stops the transcription in progress on `stt` (that call returns `FENNEC_ERR_CANCELLED`);
/// safe from any thread and from the utterance callback. Without a transcription running,
/// the next one is cancelled.
#[no_mangle]
pub unsafe extern "C" fn fennec_stt_cancel(stt: *const fennec_stt) -> fennec_status {
    guard(|| {
        // SAFETY: `stt` is NULL or a live handle (ABI contract).
        unsafe { c_ref(stt, "stt") }?.cancel.cancel();
        Ok(())
    })
}
