//! Audio files: WAV sample formats, FLAC, rates and channels, and named errors.

mod common;

use std::io::Cursor;
use std::path::PathBuf;

use common::{clip, fixture, sine};
use fennec_audio::{decode_audio, read_audio_file, to_mono_16k, AudioError, FileOptions};

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fennec-audio-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Writes `x` (in [-1, 1]) as a WAV with the given sample format; returns its bytes.
fn wav_bytes(x: &[f32], rate: u32, channels: u16, bits: u16, float: bool) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut bytes = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut bytes, spec).unwrap();
    for &s in x {
        if float {
            w.write_sample(s).unwrap();
        } else {
            let max = f64::from((1u32 << (bits - 1)) - 1);
            let v = (f64::from(s) * max).round() as i32;
            if bits == 8 {
                w.write_sample(v as i8).unwrap();
            } else {
                w.write_sample(v).unwrap();
            }
        }
    }
    w.finalize().unwrap();
    bytes.into_inner()
}

fn decode(bytes: &[u8]) -> Result<fennec_audio::DecodedAudio, AudioError> {
    decode_audio(Cursor::new(bytes), "test", &FileOptions::default())
}

#[test]
fn wav_sample_formats_decode_to_the_same_signal() {
    let x = sine(440.0, 0.5, 0.0, 16_000, 4000);
    for (bits, float, tol) in [
        (8, false, 1.0 / 127.0),
        (16, false, 1e-4),
        (24, false, 1e-6),
        (32, false, 1e-6),
        (32, true, 0.0),
    ] {
        let audio = decode(&wav_bytes(&x, 16_000, 1, bits, float)).unwrap();
        assert_eq!(audio.samples.len(), x.len(), "{bits}-bit");
        assert_eq!((audio.source_rate, audio.source_channels), (16_000, 1));
        let err = audio
            .samples
            .iter()
            .zip(&x)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            err <= tol as f32 + 1e-7,
            "{bits}-bit float={float}: error {err}"
        );
    }
}

#[test]
fn sixteen_bit_wav_is_exact() {
    let raw: Vec<i16> = vec![0, 1, -1, 32767, -32768, 1234];
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let path = temp_path("exact.wav");
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    raw.iter().for_each(|&s| w.write_sample(s).unwrap());
    w.finalize().unwrap();
    let audio = read_audio_file(&path, &FileOptions::default()).unwrap();
    std::fs::remove_file(&path).ok();
    let want: Vec<f32> = raw.iter().map(|&s| f32::from(s) / 32768.0).collect();
    assert_eq!(audio.samples, want);
}

#[test]
fn stereo_48k_wav_matches_in_memory_conversion() {
    let l = sine(300.0, 0.4, 0.0, 48_000, 24_000);
    let r = sine(900.0, 0.2, 1.0, 48_000, 24_000);
    let lr: Vec<f32> = l.iter().zip(&r).flat_map(|(a, b)| [*a, *b]).collect();
    let audio = decode(&wav_bytes(&lr, 48_000, 2, 32, true)).unwrap();
    assert_eq!((audio.source_rate, audio.source_channels), (48_000, 2));
    assert_eq!(audio.samples, to_mono_16k(&lr, 48_000, 2).unwrap());
    assert_eq!(audio.samples.len(), 8_000);
    assert!((audio.seconds() - 0.5).abs() < 1e-9);
}

#[test]
fn flac_decodes_losslessly() {
    let wav = read_audio_file(clip("short_16k.wav"), &FileOptions::default()).unwrap();
    let flac = read_audio_file(fixture("short_16k.flac"), &FileOptions::default()).unwrap();
    assert_eq!(flac.samples, wav.samples);
    // 24-bit stereo FLAC (both channels = the 16-bit clip << 8) at 44.1 kHz.
    let wav44 = read_audio_file(clip("short_44k.wav"), &FileOptions::default()).unwrap();
    let flac44 = read_audio_file(
        fixture("short_44k_stereo_24bit.flac"),
        &FileOptions::default(),
    )
    .unwrap();
    assert_eq!((flac44.source_rate, flac44.source_channels), (44_100, 2));
    assert_eq!(flac44.samples.len(), wav44.samples.len());
    let err = flac44
        .samples
        .iter()
        .zip(&wav44.samples)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(err < 1e-6, "{err}");
}

/// The same sentence rendered by SoX at 44.1 kHz, 48 kHz stereo and 16 kHz: ours from the
/// first two must match SoX's 16 kHz (an independent resampler) after aligning by at most a
/// few samples (SoX trimmed silence separately at each rate).
#[test]
fn clips_at_other_rates_match_sox_at_16k() {
    let reference = read_audio_file(clip("short_16k.wav"), &FileOptions::default())
        .unwrap()
        .samples;
    for name in ["short_44k.wav", "short_48k_stereo.wav"] {
        let ours = read_audio_file(clip(name), &FileOptions::default())
            .unwrap()
            .samples;
        assert!(
            ours.len().abs_diff(reference.len()) <= 8,
            "{name}: {} vs {}",
            ours.len(),
            reference.len()
        );
        let energy: f64 = reference.iter().map(|v| f64::from(*v).powi(2)).sum();
        let best = (-8i64..=8)
            .map(|lag| {
                let diff: f64 = (0..reference.len())
                    .filter_map(|i| {
                        let j = usize::try_from(i as i64 + lag).ok()?;
                        Some(f64::from(reference[i] - *ours.get(j)?).powi(2))
                    })
                    .sum();
                diff / energy
            })
            .fold(f64::MAX, f64::min);
        // short_48k_stereo's right channel is 0.8 × the left: the mean is 0.9 × the clip.
        let scale_err = if name.contains("stereo") {
            0.1f64.powi(2)
        } else {
            0.0
        };
        assert!(
            best < scale_err + 0.02,
            "{name}: relative error energy {best}"
        );
    }
}

#[test]
fn bad_files_are_named_errors() {
    assert!(matches!(decode(b""), Err(AudioError::Empty(_))));
    match decode(b"hello, this is not audio\n") {
        Err(AudioError::NotAudio(m)) => assert!(m.contains("text"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut gguf = b"GGUF\x03\x00\x00\x00".to_vec();
    gguf.extend([0u8; 64]);
    match decode(&gguf) {
        Err(AudioError::NotAudio(m)) => assert!(m.contains("GGUF"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode(&[0u8, 1, 2, 3, 200, 201]),
        Err(AudioError::NotAudio(_))
    ));
    assert!(matches!(
        decode(b"RIFF\x10\x00"),
        Err(AudioError::Corrupt(_))
    ));
    assert!(matches!(
        decode(b"OggS\x00\x02\x00\x00\x00\x00\x00\x00"),
        Err(AudioError::NotAudio(_))
    ));

    let x = sine(440.0, 0.5, 0.0, 16_000, 16_000);
    let full = wav_bytes(&x, 16_000, 1, 16, false);
    // Cut in the middle of the data, in the middle of a sample, and inside the header.
    for cut in [full.len() / 2, full.len() / 2 + 1, 30] {
        match decode(&full[..cut]) {
            Err(AudioError::Corrupt(m)) => assert!(
                m.contains("truncated") || m.contains("invalid"),
                "{cut}: {m}"
            ),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // A header with no samples.
    assert!(matches!(
        decode(&wav_bytes(&[], 16_000, 1, 16, false)),
        Err(AudioError::Empty(_))
    ));
    // Corrupt FLAC: the real header, then garbage.
    let mut flac = std::fs::read(fixture("short_16k.flac")).unwrap();
    let n = flac.len();
    flac.truncate(n / 2);
    assert!(
        matches!(decode(&flac), Err(AudioError::Corrupt(_))),
        "{:?}",
        decode(&flac)
    );
    // A missing file is an I/O error.
    assert!(matches!(
        read_audio_file("/nonexistent/x.wav", &FileOptions::default()),
        Err(AudioError::Io(_))
    ));
}

#[test]
fn duration_cap_is_an_error() {
    let x = sine(440.0, 0.5, 0.0, 16_000, 16_000);
    let bytes = wav_bytes(&x, 16_000, 1, 16, false);
    let opts = FileOptions { max_seconds: 0.5 };
    match decode_audio(Cursor::new(&bytes), "long", &opts) {
        Err(AudioError::TooLong {
            seconds,
            max_seconds,
        }) => {
            assert!((seconds - 1.0).abs() < 1e-9 && max_seconds == 0.5)
        }
        other => panic!("{other:?}"),
    }
    assert!(decode_audio(Cursor::new(&bytes), "ok", &FileOptions { max_seconds: 1.0 }).is_ok());
    assert!(matches!(
        decode_audio(Cursor::new(&bytes), "x", &FileOptions { max_seconds: 0.0 }),
        Err(AudioError::InvalidConfig(_))
    ));
    // A header that claims 4 GB of samples is refused before any decoding.
    let mut huge = bytes.clone();
    let data = huge.windows(4).position(|w| w == b"data").unwrap();
    huge[data + 4..data + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    assert!(matches!(decode(&huge), Err(AudioError::TooLong { .. })));
}
