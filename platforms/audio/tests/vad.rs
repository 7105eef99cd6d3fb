//! Endpointing on synthetic signals and on the committed speech clips.

mod common;

use common::{clip, concat, noise, odd_chunks, silence, sine, vowel};
use fennec_audio::vad::FRAME_SAMPLES;
use fennec_audio::{
    read_audio_file, speech_chunks, AudioError, EndReason, Endpointer, FileOptions, Utterance,
    VadConfig, WHISPER_WINDOW_SAMPLES,
};

const FRAME: i64 = FRAME_SAMPLES as i64;

fn run(x: &[f32], config: VadConfig) -> Vec<Utterance> {
    let mut e = Endpointer::new(config).unwrap();
    let mut out = e.push(x);
    out.extend(e.flush());
    out
}

fn load(name: &str) -> Vec<f32> {
    read_audio_file(clip(name), &FileOptions::default())
        .unwrap()
        .samples
}

fn ms(v: u32) -> i64 {
    i64::from(v) * 16
}

/// Checks one utterance against a burst at samples [on, off): its voiced start is within a
/// frame before to 4 frames after `on` (earshot needs up to ~64 ms to rise on a vowel;
/// start = voiced start − pre-roll), its end is `off` + post-roll, plus up to 10 frames
/// (earshot's scores stay high ~100 ms after a sound stops), and its samples are the input's.
fn check_burst(u: &Utterance, x: &[f32], on: i64, off: i64, c: &VadConfig) {
    let start = u.start_sample as i64;
    let end = u.end_sample as i64;
    let want_start = on - ms(c.pre_roll_ms);
    assert!(
        start >= want_start - FRAME && start <= want_start + 4 * FRAME,
        "start {start}, want {want_start} (−1/+4 frames)"
    );
    let want_end = off + ms(c.post_roll_ms);
    assert!(
        end >= want_end - FRAME && end <= want_end + 10 * FRAME,
        "end {end}, want {want_end} (+10 frames)"
    );
    assert_eq!(u.samples.len() as i64, end - start);
    assert_eq!(&u.samples[..], &x[start as usize..end as usize]);
}

#[test]
fn silence_gives_nothing() {
    let c = VadConfig::default();
    assert!(run(&silence(10.0), c).is_empty());
    assert!(run(&noise(1e-3, 160_000, 7), c).is_empty());
}

#[test]
fn noise_gives_nothing() {
    let c = VadConfig::default();
    let pink = load("noise_only.wav");
    // A quiet room: 1 s at a −60 dBFS noise floor. (Noise straight after exact digital
    // silence can still score as speech in earshot — see the crate docs.)
    let floor = noise(1e-3, 16_000, 99);
    let mut failures = Vec::new();
    let mut check = |what: String, x: &[f32]| {
        let u = run(x, c);
        if !u.is_empty() {
            failures.push(format!("{what}: {u:?}"));
        }
    };
    for (amp, seed) in [(0.01, 1), (0.03, 2), (0.05, 2), (0.1, 3), (0.3, 4)] {
        check(
            format!("white {amp} after a floor"),
            &concat(&[floor.clone(), noise(amp, 48_000, seed)]),
        );
        check(format!("white {amp}"), &noise(amp, 48_000, seed));
    }
    for gain in [0.25f32, 0.5, 1.0, 2.0, 4.0] {
        let scaled: Vec<f32> = pink.iter().map(|v| v * gain).collect();
        check(format!("noise_only × {gain}"), &scaled);
        check(
            format!("noise_only × {gain} after a floor"),
            &concat(&[floor.clone(), scaled]),
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_burst_gives_one_utterance_with_its_times() {
    let c = VadConfig::default();
    for (name, burst) in [
        ("vowel", vowel(24_000)),
        ("tone", sine(440.0, 0.3, 0.0, 16_000, 24_000)),
    ] {
        let x = concat(&[silence(1.0), burst, silence(1.5)]);
        let u = run(&x, c);
        assert_eq!(u.len(), 1, "{name}: {u:?}");
        check_burst(&u[0], &x, 16_000, 40_000, &c);
        assert_eq!(u[0].end_reason, EndReason::Silence, "{name}");
    }
}

#[test]
fn times_follow_the_config() {
    let c = VadConfig {
        pre_roll_ms: 100,
        post_roll_ms: 50,
        hangover_ms: 300,
        onset_frames: 2,
        ..VadConfig::default()
    };
    let x = concat(&[silence(0.7), vowel(20_000), silence(1.0)]);
    let u = run(&x, c);
    assert_eq!(u.len(), 1, "{u:?}");
    check_burst(&u[0], &x, 11_200, 31_200, &c);
}

#[test]
fn pre_roll_is_cut_at_the_stream_start() {
    let c = VadConfig::default();
    let x = concat(&[silence(0.1), vowel(16_000), silence(1.0)]);
    let u = run(&x, c);
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(u[0].start_sample, 0);
}

#[test]
fn gaps_longer_than_the_hangover_split_utterances() {
    let c = VadConfig::default();
    let x = concat(&[
        silence(0.5),
        vowel(16_000),
        silence(1.2),
        vowel(16_000),
        silence(1.0),
    ]);
    let u = run(&x, c);
    assert_eq!(u.len(), 2, "{u:?}");
    check_burst(&u[0], &x, 8_000, 24_000, &c);
    check_burst(&u[1], &x, 43_200, 59_200, &c);
    // A gap shorter than the hangover does not.
    let x = concat(&[
        silence(0.5),
        vowel(16_000),
        silence(0.3),
        vowel(16_000),
        silence(1.0),
    ]);
    let u = run(&x, c);
    assert_eq!(u.len(), 1, "{u:?}");
    check_burst(&u[0], &x, 8_000, 44_800, &c);
}

#[test]
fn long_speech_is_cut_at_the_maximum_length() {
    let c = VadConfig {
        max_utterance_ms: 2_000,
        ..VadConfig::default()
    };
    let x = concat(&[silence(1.0), vowel(16_000 * 5), silence(1.5)]);
    let u = run(&x, c);
    assert_eq!(u.len(), 3, "{u:?}");
    let max = 32_000;
    assert_eq!(u[0].samples.len(), max);
    assert_eq!(u[1].samples.len(), max);
    assert_eq!(u[0].end_reason, EndReason::MaxLength);
    assert_eq!(u[1].end_reason, EndReason::MaxLength);
    assert_eq!(u[2].end_reason, EndReason::Silence);
    assert_eq!(u[0].end_sample, u[1].start_sample);
    assert_eq!(u[1].end_sample, u[2].start_sample);
    let start = u[0].start_sample as i64;
    assert!((start - (16_000 - ms(c.pre_roll_ms))).abs() <= FRAME);
    let end = u[2].end_sample as i64;
    let want = 96_000 + ms(c.post_roll_ms);
    assert!(
        end >= want - FRAME && end <= want + 10 * FRAME,
        "{end} vs {want}"
    );
    let joined: Vec<f32> = u.iter().flat_map(|u| u.samples.iter().copied()).collect();
    assert_eq!(&joined[..], &x[start as usize..end as usize]);
}

#[test]
fn blips_shorter_than_the_minimum_are_dropped() {
    let x = concat(&[silence(1.0), vowel(2_400), silence(1.0)]); // 150 ms
    assert!(run(&x, VadConfig::default()).is_empty());
    let keep = VadConfig {
        min_speech_ms: 50,
        ..VadConfig::default()
    };
    assert_eq!(run(&x, keep).len(), 1);
}

#[test]
fn push_sizes_do_not_matter() {
    let x = load("two_sentences.wav");
    let c = VadConfig::default();
    let whole = run(&x, c);
    let mut e = Endpointer::new(c).unwrap();
    let mut streamed = Vec::new();
    for chunk in odd_chunks(&x) {
        streamed.extend(e.push(chunk));
    }
    streamed.extend(e.flush());
    assert_eq!(streamed, whole);
}

#[test]
fn flush_ends_speech_in_progress() {
    let c = VadConfig::default();
    let x = concat(&[silence(0.5), vowel(16_000)]);
    let mut e = Endpointer::new(c).unwrap();
    assert!(e.push(&x).is_empty());
    assert!(e.in_speech());
    let u = e.flush();
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].end_reason, EndReason::EndOfStream);
    assert_eq!(u[0].end_sample, x.len() as u64);
    assert!(!e.in_speech());
    // Cancel drops it instead; the clock keeps running, reset restarts it.
    assert!(e.push(&x).is_empty());
    e.cancel();
    assert!(e.flush().is_empty());
    assert_eq!(e.position(), 2 * x.len() as u64);
    e.reset();
    assert_eq!(e.position(), 0);
}

#[test]
fn bad_configs_are_named_errors() {
    let d = VadConfig::default();
    for c in [
        VadConfig {
            threshold: 0.0,
            ..d
        },
        VadConfig {
            threshold: f32::NAN,
            ..d
        },
        VadConfig {
            threshold: 1.5,
            ..d
        },
        VadConfig {
            onset_frames: 0,
            ..d
        },
        VadConfig {
            post_roll_ms: 700,
            hangover_ms: 600,
            ..d
        },
        VadConfig {
            max_utterance_ms: 200,
            ..d
        },
        VadConfig { dither: -1.0, ..d },
    ] {
        assert!(
            matches!(Endpointer::new(c), Err(AudioError::InvalidConfig(_))),
            "{c:?}"
        );
    }
}

/// Samples louder than `level` (an independent, energy-based marker of speech in clean clips).
fn loud_samples(x: &[f32], level: f32) -> Vec<usize> {
    x.iter()
        .enumerate()
        .filter(|(_, v)| v.abs() > level)
        .map(|(i, _)| i)
        .collect()
}

fn covered(u: &[Utterance], i: usize) -> bool {
    u.iter()
        .any(|u| (u.start_sample..u.end_sample).contains(&(i as u64)))
}

#[test]
fn real_speech_clips() {
    let c = VadConfig::default();
    // One sentence each: 0.25 s of silence, speech, 0.3 s of silence (make_clips.sh).
    for name in ["speech_us.wav", "speech_gb_fast.wav", "speech_us_noisy.wav"] {
        let x = load(name);
        let u = run(&x, c);
        assert_eq!(u.len(), 1, "{name}: {u:?}");
        assert!(
            u[0].start_seconds() < 0.26,
            "{name}: {}",
            u[0].start_seconds()
        );
        let speech_end = x.len() as f64 / 16_000.0 - 0.3;
        assert!(
            u[0].end_seconds() >= speech_end,
            "{name}: ends {} before the speech",
            u[0].end_seconds()
        );
        if !name.contains("noisy") {
            for i in loud_samples(&x, 0.02) {
                assert!(
                    covered(&u, i),
                    "{name}: loud sample {i} outside the utterance"
                );
            }
        }
    }
    // Two sentences 1.5 s apart (plus the clips' own padding).
    let x = load("two_sentences.wav");
    let u = run(&x, c);
    assert_eq!(u.len(), 2, "{u:?}");
    assert!(u[1].start_seconds() - u[0].end_seconds() > 1.0, "{u:?}");
    for i in loud_samples(&x, 0.02) {
        assert!(
            covered(&u, i),
            "two_sentences: loud sample {i} outside the utterances"
        );
    }
    // Noise only.
    assert!(run(&load("noise_only.wav"), c).is_empty());
}

#[test]
fn long_recordings_split_into_whisper_windows() {
    let pair = load("two_sentences.wav");
    let x: Vec<f32> = (0..8).flat_map(|_| pair.iter().copied()).collect(); // ~47 s
    let chunks = speech_chunks(&x, &VadConfig::default(), WHISPER_WINDOW_SAMPLES).unwrap();
    assert!(chunks.len() >= 2, "{}", chunks.len());
    for w in chunks.windows(2) {
        assert!(w[0].end_sample <= w[1].start_sample);
    }
    for ch in &chunks {
        assert!(ch.samples.len() <= WHISPER_WINDOW_SAMPLES);
        assert_eq!(
            &ch.samples[..],
            &x[ch.start_sample as usize..ch.end_sample as usize]
        );
    }
    for i in loud_samples(&x, 0.02) {
        assert!(covered(&chunks, i), "loud sample {i} outside every chunk");
    }
    // Fewer chunks than utterances: neighbours were merged.
    assert!(chunks.len() < 16);
    // Short windows force more, shorter chunks; silence gives none.
    let short = speech_chunks(&x, &VadConfig::default(), 16_000 * 4).unwrap();
    assert!(short.iter().all(|c| c.samples.len() <= 16_000 * 4) && short.len() > chunks.len());
    assert!(speech_chunks(
        &silence(40.0),
        &VadConfig::default(),
        WHISPER_WINDOW_SAMPLES
    )
    .unwrap()
    .is_empty());
}
