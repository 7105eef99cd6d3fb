//! `fennec transcribe` (an audio file to text) and `fennec listen` (microphone → voice
//! activity → Whisper → optionally a chat model's answer).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fennec_audio::{speech_chunks, FileOptions, Utterance, VadConfig, WHISPER_WINDOW_SAMPLES};
use fennec_core::chat::ChatMessage;
use fennec_core::speech::{EncoderFrames, Segment, TranscribeOptions, Transcript, WhisperModel};
use fennec_core::{
    CancelHandle, GenerateOptions, Input, LoadOptions, Model, SamplerOptions, Session,
    SessionOptions,
};
use serde_json::json;

/// Sample rate of everything after the front end.
const RATE: f64 = 16_000.0;

/// Whisper model and decoding flags shared by `transcribe` and `listen`.
#[derive(clap::Args)]
pub struct WhisperArgs {
    /// The Whisper model: a GGUF, or a whisper.cpp `ggml-*.bin`.
    #[arg(short, long)]
    model: PathBuf,
    /// Worker threads (0 = all cores).
    #[arg(short = 't', long, default_value_t = 0)]
    threads: usize,
    /// Spoken language (multilingual models; English-only models ignore it).
    #[arg(long)]
    language: Option<String>,
    /// Keep windows that look like no speech (faster-whisper's rule drops them).
    #[arg(long)]
    keep_no_speech: bool,
    /// Encode only the positions the audio covers (plus 1 s, at least 8 s) instead of the
    /// whole 30-second window: 4-5x faster on short utterances; a transcript may differ
    /// from the full window's (whisper.cpp's `audio_ctx`).
    #[arg(long)]
    fit_window: bool,
}

impl WhisperArgs {
    fn load(&self) -> Result<Arc<WhisperModel>> {
        WhisperModel::load(&self.model, &LoadOptions::with_threads(self.threads))
            .with_context(|| format!("cannot load {}", self.model.display()))
    }

    fn options(&self) -> TranscribeOptions {
        let mut opts = TranscribeOptions {
            skip_no_speech: !self.keep_no_speech,
            ..TranscribeOptions::default()
        };
        if self.fit_window {
            opts.encoder_frames = EncoderFrames::FIT;
        }
        opts.decode.language = self.language.clone();
        opts
    }
}

/// Voice-activity flags.
#[derive(clap::Args)]
pub struct VadArgs {
    /// Silence that ends an utterance, in milliseconds.
    #[arg(long, default_value_t = VadConfig::default().hangover_ms)]
    silence_ms: u32,
    /// Voice-activity threshold (0..1).
    #[arg(long, default_value_t = VadConfig::default().threshold)]
    vad_threshold: f32,
    /// Audio kept before speech starts, in milliseconds.
    #[arg(long, default_value_t = VadConfig::default().pre_roll_ms)]
    pre_roll_ms: u32,
    /// Longest utterance, in milliseconds (longer speech is cut there).
    #[arg(long, default_value_t = VadConfig::default().max_utterance_ms)]
    max_utterance_ms: u32,
}

impl VadArgs {
    fn config(&self) -> VadConfig {
        let defaults = VadConfig::default();
        VadConfig {
            hangover_ms: self.silence_ms,
            post_roll_ms: defaults.post_roll_ms.min(self.silence_ms),
            threshold: self.vad_threshold,
            pre_roll_ms: self.pre_roll_ms,
            max_utterance_ms: self.max_utterance_ms,
            ..defaults
        }
    }
}

/// Arguments of `fennec transcribe`.
#[derive(clap::Args)]
pub struct TranscribeArgs {
    #[command(flatten)]
    whisper: WhisperArgs,
    /// The audio file (WAV or FLAC, any rate and channel count).
    #[arg(long)]
    audio: PathBuf,
    /// Cut the audio at pauses found by voice-activity detection and transcribe only the
    /// speech (always done for audio longer than one 30-second window).
    #[arg(long)]
    vad: bool,
    /// Longest audio accepted, in seconds.
    #[arg(long, default_value_t = 600.0)]
    max_seconds: f64,
    #[command(flatten)]
    vad_args: VadArgs,
    /// Print one JSON object (text, tokens, segments, per-stage times).
    #[arg(long)]
    json: bool,
}

/// Runs `fennec transcribe`.
pub fn transcribe(args: &TranscribeArgs) -> Result<()> {
    let start = Instant::now();
    let whisper = args.whisper.load()?;
    let loaded = start.elapsed();
    let file_options = FileOptions {
        max_seconds: args.max_seconds,
    };
    let audio = fennec_audio::read_audio_file(&args.audio, &file_options)
        .with_context(|| format!("cannot read {}", args.audio.display()))?;
    let read = start.elapsed() - loaded;
    let opts = TranscribeOptions {
        max_audio_s: args.max_seconds as f32,
        ..args.whisper.options()
    };
    let cancel = CancelHandle::new();
    let pieces = if args.vad || audio.samples.len() > WHISPER_WINDOW_SAMPLES {
        speech_chunks(
            &audio.samples,
            &args.vad_args.config(),
            WHISPER_WINDOW_SAMPLES,
        )?
    } else {
        let n = audio.samples.len() as u64;
        vec![Utterance {
            samples: audio.samples.clone(),
            start_sample: 0,
            end_sample: n,
            end_reason: fennec_audio::EndReason::EndOfStream,
        }]
    };
    let mut parts = Vec::with_capacity(pieces.len());
    for piece in &pieces {
        let t = whisper.transcribe(&piece.samples, &opts, &cancel)?;
        parts.push((piece.start_seconds(), t));
    }
    let total = start.elapsed();
    let text = joined_text(parts.iter().map(|(_, t)| t));
    if args.json {
        let stage = |f: fn(&Transcript) -> Duration| -> f64 {
            parts.iter().map(|(_, t)| f(t).as_secs_f64()).sum()
        };
        let (mel, encode, decode) = (
            stage(|t| t.timings.mel),
            stage(|t| t.timings.encode),
            stage(|t| t.timings.decode),
        );
        let segments: Vec<_> = parts
            .iter()
            .flat_map(|(offset, t)| t.segments.iter().map(move |s| segment_json(s, *offset)))
            .collect();
        let tokens: Vec<u32> = parts.iter().flat_map(|(_, t)| t.tokens.clone()).collect();
        let audio_s = audio.seconds();
        let transcribe_s = mel + encode + decode;
        let out = json!({
            "text": text,
            "tokens": tokens,
            "segments": segments,
            "audio_s": audio_s,
            "source_rate": audio.source_rate,
            "source_channels": audio.source_channels,
            "threads": whisper.n_threads(),
            "times_s": {
                "load": loaded.as_secs_f64(),
                "read_audio": read.as_secs_f64(),
                "mel": mel,
                "encode": encode,
                "decode": decode,
                "total": total.as_secs_f64(),
            },
            "real_time_factor": transcribe_s / audio_s.max(f64::MIN_POSITIVE),
        });
        println!("{out}");
    } else {
        println!("{text}");
    }
    Ok(())
}

/// The kept text of each transcript, joined with single spaces.
fn joined_text<'a>(transcripts: impl Iterator<Item = &'a Transcript>) -> String {
    let texts: Vec<&str> = transcripts
        .map(|t| t.text.trim())
        .filter(|t| !t.is_empty())
        .collect();
    texts.join(" ")
}

fn segment_json(s: &Segment, offset_s: f64) -> serde_json::Value {
    json!({
        "start_s": offset_s + f64::from(s.start_s),
        "end_s": offset_s + f64::from(s.end_s),
        "text": s.text,
        "tokens": s.tokens,
        "no_speech_prob": s.no_speech_prob,
        "avg_logprob": s.avg_logprob,
        "skipped_as_no_speech": s.skipped_as_no_speech,
    })
}

/// Arguments of `fennec listen`.
#[derive(clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    whisper: WhisperArgs,
    /// A chat model (GGUF) that answers each utterance, streaming its reply.
    #[arg(long)]
    chat_model: Option<PathBuf>,
    /// System message for the chat model.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens of each answer.
    #[arg(short = 'n', long = "n-predict", default_value_t = 256)]
    n_predict: usize,
    /// Input device name (see --list-devices); the default input when absent.
    #[arg(long)]
    device: Option<String>,
    /// List the input devices and exit.
    #[arg(long)]
    list_devices: bool,
    /// Stop after this many seconds of captured audio (0 = until interrupted or the input
    /// ends).
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
    #[command(flatten)]
    vad_args: VadArgs,
    /// Print one JSON line per utterance instead of text.
    #[arg(long)]
    json: bool,
}

/// A chat model and its conversation, answering transcripts.
struct Assistant {
    model: Arc<Model>,
    session: Session,
    messages: Vec<ChatMessage>,
    options: GenerateOptions,
}

impl Assistant {
    fn load(args: &ListenArgs, path: &PathBuf) -> Result<Self> {
        let model = Model::load(path, &LoadOptions::with_threads(args.whisper.threads))
            .with_context(|| format!("cannot load {}", path.display()))?;
        let session = Session::new(model.clone(), SessionOptions::default())?;
        let messages = args
            .system
            .iter()
            .map(|s| ChatMessage::new("system", s))
            .collect();
        Ok(Self {
            model,
            session,
            messages,
            options: GenerateOptions::new(args.n_predict, SamplerOptions::default()),
        })
    }

    /// Streams the answer to `question` to stdout and returns it.
    fn answer(&mut self, question: &str, cancel: &CancelHandle) -> Result<String> {
        self.messages.push(ChatMessage::new("user", question));
        let tokens = crate::text::chat_prompt(&self.model, &self.messages)?;
        let conversation = [Input::Tokens(&tokens)];
        let kept = self.session.reuse_prefix(&conversation)?;
        let mut stdout = std::io::stdout();
        let done = self.session.generate(
            &Input::skip(&conversation, kept),
            &self.options,
            cancel,
            &mut |piece| {
                let _ = stdout.write_all(piece.text.as_bytes());
                let _ = stdout.flush();
                true
            },
        )?;
        writeln!(stdout)?;
        let answer = done.text.trim().to_string();
        self.messages
            .push(ChatMessage::new("assistant", answer.clone()));
        Ok(answer)
    }
}

/// A device's configurations in one short line: the channel and rate ranges they span and
/// their sample formats (hosts such as ALSA list every channel count × format pair).
fn summarize(configs: &[fennec_capture::InputConfigRange]) -> String {
    let Some(first) = configs.first() else {
        return "configurations unknown".to_string();
    };
    let mut formats: Vec<&str> = Vec::new();
    let (mut ch, mut rate) = (
        (first.channels, first.channels),
        (first.min_rate, first.max_rate),
    );
    for c in configs {
        ch = (ch.0.min(c.channels), ch.1.max(c.channels));
        rate = (rate.0.min(c.min_rate), rate.1.max(c.max_rate));
        if !formats.contains(&c.sample_format.as_str()) {
            formats.push(&c.sample_format);
        }
    }
    let span = |(lo, hi): (u32, u32)| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        }
    };
    let ch = (u32::from(ch.0), u32::from(ch.1));
    format!("{} ch, {} Hz, {}", span(ch), span(rate), formats.join(" "))
}

/// Runs `fennec listen`.
pub fn listen(args: &ListenArgs) -> Result<()> {
    if args.list_devices {
        for device in fennec_capture::input_devices()? {
            let default = if device.is_default { " (default)" } else { "" };
            println!("{}{default}: {}", device.name, summarize(&device.configs));
        }
        return Ok(());
    }
    let whisper = args.whisper.load()?;
    let mut assistant = match &args.chat_model {
        Some(path) => Some(Assistant::load(args, path)?),
        None => None,
    };
    let opts = args.whisper.options();
    let cancel = CancelHandle::new();
    let config = fennec_capture::CaptureConfig {
        device: args.device.clone(),
        ..Default::default()
    };
    let (capture, buffers) = fennec_capture::Capture::start_channel(&config)?;
    eprintln!(
        "[listening on {} ({} Hz, {} ch); speak, then pause {} ms]",
        capture.device_name(),
        capture.device_format().sample_rate,
        capture.device_format().channels,
        args.vad_args.silence_ms
    );
    let mut stt = fennec_audio::SpeechToText::new(whisper, args.vad_args.config(), opts)?;
    let limit = (args.duration > 0.0).then_some((args.duration * RATE) as u64);
    let mut captured = 0u64;
    let mut ended = false;
    while !ended {
        let heard = match buffers.recv_timeout(Duration::from_millis(200)) {
            Ok(samples) => {
                let room = limit.map_or(samples.len() as u64, |l| l.saturating_sub(captured));
                let take = samples.len().min(room as usize);
                captured += take as u64;
                ended = limit.is_some_and(|l| captured >= l);
                stt.push_pcm(&samples[..take], RATE as u32, 1)?
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                ended = true;
                Vec::new()
            }
        };
        if let Some(e) = capture.take_error() {
            bail!("audio input {}: {e}", capture.device_name());
        }
        let rest = if ended { stt.finish()? } else { Vec::new() };
        for h in heard.into_iter().chain(rest) {
            report_utterance(&h, args.json)?;
            let text = h.transcript.text.trim();
            if let (Some(assistant), false) = (&mut assistant, text.is_empty()) {
                assistant.answer(text, &cancel)?;
            }
        }
    }
    drop(capture);
    Ok(())
}

/// Prints one utterance's transcript with its place in the stream and how long it took.
fn report_utterance(h: &fennec_audio::Heard, json: bool) -> Result<()> {
    let t = &h.transcript;
    if json {
        let out = json!({
            "start_s": h.start_s,
            "end_s": h.end_s,
            "text": t.text.trim(),
            "tokens": t.tokens,
            "skipped_as_no_speech": t.skipped_as_no_speech,
            "transcribe_s": h.transcribe_time.as_secs_f64(),
        });
        println!("{out}");
    } else if !t.text.trim().is_empty() {
        println!(
            "[{:.2}–{:.2} s, {:.0} ms] {}",
            h.start_s,
            h.end_s,
            h.transcribe_time.as_secs_f64() * 1e3,
            t.text.trim()
        );
    }
    std::io::stdout().flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fennec_capture::InputConfigRange;

    #[test]
    fn device_configurations_fold_into_one_line() {
        let range = |channels, min_rate, max_rate, f: &str| InputConfigRange {
            channels,
            min_rate,
            max_rate,
            sample_format: f.to_string(),
        };
        let configs = [
            range(1, 8_000, 48_000, "i16"),
            range(2, 8_000, 96_000, "i16"),
            range(2, 44_100, 44_100, "f32"),
        ];
        assert_eq!(summarize(&configs), "1–2 ch, 8000–96000 Hz, i16 f32");
        assert_eq!(summarize(&configs[2..]), "2 ch, 44100 Hz, f32");
        assert_eq!(summarize(&[]), "configurations unknown");
    }
}
