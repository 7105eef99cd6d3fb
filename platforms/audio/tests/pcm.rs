//! PCM conversion: downmix, resampling against analytic sines, streaming, errors.

mod common;

use common::{odd_chunks, sine};
use fennec_audio::pcm::{downmix_into, expected_output_len, PcmConverter};
use fennec_audio::{to_mono_16k, AudioError};

#[test]
fn passthrough_at_16k_is_exact() {
    let x: Vec<i16> = (0..5000)
        .map(|i| ((i * 7919) % 65536 - 32768) as i16)
        .collect();
    let y = to_mono_16k(&x, 16_000, 1).unwrap();
    assert_eq!(y.len(), x.len());
    for (a, b) in x.iter().zip(&y) {
        assert_eq!(f32::from(*a) / 32768.0, *b);
    }
    let f: Vec<f32> = (0..999).map(|i| (i as f32 * 0.37).sin()).collect();
    assert_eq!(to_mono_16k(&f, 16_000, 1).unwrap(), f);
}

#[test]
fn downmix_is_the_channel_mean() {
    let stereo = [0.5f32, -0.25, 1.0, 1.0, -1.0, 0.0];
    let mut out = Vec::new();
    downmix_into(&stereo, 2, &mut out);
    assert_eq!(out, [0.125, 1.0, -0.5]);
    let three: [i16; 6] = [3000, 6000, -3000, -32768, 0, 32767];
    let y = to_mono_16k(&three, 16_000, 3).unwrap();
    let want = [6000.0 / 3.0 / 32768.0, (-32768.0 + 32767.0) / 3.0 / 32768.0];
    assert_eq!(y.len(), 2);
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-7, "{a} vs {b}");
    }
    // Left and right in antiphase cancel.
    let l = sine(440.0, 0.5, 0.0, 16_000, 800);
    let lr: Vec<f32> = l.iter().flat_map(|&s| [s, -s]).collect();
    assert!(to_mono_16k(&lr, 16_000, 2)
        .unwrap()
        .iter()
        .all(|&s| s.abs() < 1e-7));
}

#[test]
fn non_finite_floats_become_zero() {
    let x = [f32::NAN, f32::INFINITY, 0.5, f32::NEG_INFINITY];
    assert_eq!(to_mono_16k(&x, 16_000, 1).unwrap(), [0.0, 0.0, 0.5, 0.0]);
    let y = to_mono_16k(&vec![f32::NAN; 48_000], 48_000, 1).unwrap();
    assert!(y.iter().all(|s| *s == 0.0));
}

#[test]
fn bad_formats_are_named_errors() {
    let b = [0i16; 12];
    assert!(matches!(
        to_mono_16k(&b, 0, 1),
        Err(AudioError::ZeroSampleRate)
    ));
    assert!(matches!(
        to_mono_16k(&b, 16_000, 0),
        Err(AudioError::ZeroChannels)
    ));
    assert!(matches!(
        to_mono_16k(&b, 1_000, 1),
        Err(AudioError::SampleRateOutOfRange { rate: 1_000, .. })
    ));
    assert!(matches!(
        to_mono_16k(&b, 1_000_000, 1),
        Err(AudioError::SampleRateOutOfRange { .. })
    ));
    assert!(matches!(
        to_mono_16k(&b[..5], 48_000, 2),
        Err(AudioError::PartialFrame {
            len: 5,
            channels: 2
        })
    ));
    let mut c = PcmConverter::new(44_100, 2).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        c.push(&b[..3], &mut out),
        Err(AudioError::PartialFrame { .. })
    ));
    assert!(out.is_empty());
}

/// Least-squares fit of `a·sin(ωt) + b·cos(ωt)` to `y[range]` at 16 kHz: (amplitude, phase, max residual).
fn fit_sine(y: &[f32], freq: f64, range: std::ops::Range<usize>) -> (f64, f64, f64) {
    let w = 2.0 * std::f64::consts::PI * freq / 16_000.0;
    let (mut ss, mut cc, mut sc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in range.clone() {
        let (s, c) = (w * i as f64).sin_cos();
        let v = f64::from(y[i]);
        ss += s * s;
        cc += c * c;
        sc += s * c;
        ys += v * s;
        yc += v * c;
    }
    let det = ss * cc - sc * sc;
    let a = (ys * cc - yc * sc) / det;
    let b = (yc * ss - ys * sc) / det;
    let residual = range
        .map(|i| {
            let (s, c) = (w * i as f64).sin_cos();
            (f64::from(y[i]) - a * s - b * c).abs()
        })
        .fold(0.0, f64::max);
    (a.hypot(b), b.atan2(a), residual)
}

/// Resamples a 1 s sine and checks it against the analytic sine at 16 kHz: length, amplitude,
/// frequency (phase drift between the halves), time alignment (within one output sample;
/// rubato's FFT filter leaves a constant sub-sample delay) and shape (residual).
fn check_sine(rate: u32, freq: f64, channels: u16) {
    let (amp, phase) = (0.5, 0.3);
    let n = rate as usize;
    let x = sine(freq, amp, phase, rate, n);
    let interleaved: Vec<f32> = x
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, channels.into()))
        .collect();
    let y = to_mono_16k(&interleaved, rate, channels).unwrap();
    assert_eq!(
        y.len() as u64,
        expected_output_len(n as u64, rate),
        "{rate} Hz length"
    );
    let what = format!("{rate} Hz → 16 kHz, {freq} Hz sine");
    // Skip 50 ms at each end (the stream starts and ends in silence there).
    let (lo, hi) = (800, y.len() - 800);
    let mid = (lo + hi) / 2;
    let (a, p, residual) = fit_sine(&y, freq, lo..hi);
    assert!((a - amp).abs() < 1e-3, "{what}: amplitude {a}");
    assert!(residual < 2e-3, "{what}: residual {residual}");
    let one_sample = 2.0 * std::f64::consts::PI * freq / 16_000.0;
    let dp = (p - phase + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI)
        - std::f64::consts::PI;
    assert!(
        dp.abs() <= one_sample,
        "{what}: off by {} samples",
        dp / one_sample
    );
    let (_, p1, _) = fit_sine(&y, freq, lo..mid);
    let (_, p2, _) = fit_sine(&y, freq, mid..hi);
    let drift_hz = (p2 - p1) / (2.0 * std::f64::consts::PI) / ((hi - lo) as f64 / 2.0 / 16_000.0);
    assert!(
        drift_hz.abs() < 0.01,
        "{what}: frequency off by {drift_hz} Hz"
    );
}

#[test]
fn resampling_preserves_sines() {
    check_sine(48_000, 440.0, 1);
    check_sine(48_000, 3_000.0, 2);
    check_sine(44_100, 440.0, 1);
    check_sine(44_100, 1_234.5, 2);
    check_sine(8_000, 440.0, 1);
    check_sine(8_000, 3_000.0, 1);
    check_sine(22_050, 1_000.0, 1);
    check_sine(96_000, 700.0, 1);
    check_sine(11_025, 2_000.0, 1);
}

#[test]
fn lengths_follow_the_rate_ratio() {
    for (rate, n) in [
        (48_000, 1),
        (48_000, 2),
        (44_100, 441),
        (44_100, 1),
        (8_000, 3),
        (32_000, 12_345),
        (4_000, 999),
        (44_101, 44_101),
        (384_000, 1_000),
    ] {
        let y = to_mono_16k(&vec![0.1f32; n], rate, 1).unwrap();
        let want = (n as u64 * 16_000).div_ceil(u64::from(rate));
        assert_eq!(y.len() as u64, want, "{n} frames at {rate} Hz");
    }
}

#[test]
fn tones_above_8k_are_filtered_out() {
    let x = sine(11_000.0, 0.5, 0.0, 48_000, 48_000);
    let y = to_mono_16k(&x, 48_000, 1).unwrap();
    let peak = y[800..y.len() - 800]
        .iter()
        .fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(peak < 5e-3, "11 kHz leaked through at {peak}");
}

#[test]
fn streaming_equals_one_shot() {
    for (rate, channels) in [
        (48_000u32, 2u16),
        (44_100, 1),
        (8_000, 1),
        (22_050, 2),
        (16_000, 2),
    ] {
        let frames = rate as usize * 3 / 2;
        let x: Vec<i16> = sine(523.0, 0.4, 0.0, rate, frames * usize::from(channels))
            .iter()
            .map(|s| (s * 32767.0) as i16)
            .collect();
        let one = to_mono_16k(&x, rate, channels).unwrap();
        let mut c = PcmConverter::new(rate, channels).unwrap();
        // Twice: the converter starts afresh after a flush.
        for round in 0..2 {
            let mut streamed = Vec::new();
            let frame_index: Vec<usize> = (0..frames).collect();
            for chunk in odd_chunks(&frame_index) {
                let ch = usize::from(channels);
                c.push(
                    &x[chunk[0] * ch..(chunk[chunk.len() - 1] + 1) * ch],
                    &mut streamed,
                )
                .unwrap();
            }
            c.flush(&mut streamed).unwrap();
            assert_eq!(streamed.len(), one.len(), "{rate} Hz round {round}");
            let err = streamed
                .iter()
                .zip(&one)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                err < 1e-6,
                "{rate} Hz round {round}: streaming differs by {err}"
            );
        }
    }
}

/// A smooth pulse (Gaussian, σ = 0.5 ms: band-limited well under 8 kHz) centred at 0.5 s
/// comes out centred at sample 8000 at every rate: the resampler's delay is trimmed (the sine
/// tests only see alignment modulo one period).
#[test]
fn output_is_aligned_with_input_time() {
    for rate in [8_000u32, 11_025, 22_050, 44_100, 48_000, 96_000] {
        let sigma = 0.0005;
        let x: Vec<f32> = (0..rate as usize)
            .map(|i| {
                let t = i as f64 / f64::from(rate) - 0.5;
                (0.8 * (-(t * t) / (2.0 * sigma * sigma)).exp()) as f32
            })
            .collect();
        let y = to_mono_16k(&x, rate, 1).unwrap();
        // Centre of mass of the pulse.
        let (m, w) = y
            .iter()
            .enumerate()
            .fold((0.0f64, 0.0f64), |(m, w), (i, v)| {
                (m + i as f64 * f64::from(*v), w + f64::from(*v))
            });
        let centre = m / w;
        assert!(
            (centre - 8_000.0).abs() < 1.0,
            "{rate} Hz: pulse centred at {centre}"
        );
        let peak = y.iter().fold(0.0f32, |p, v| p.max(*v));
        assert!((peak - 0.8).abs() < 0.02, "{rate} Hz: pulse peak {peak}");
    }
}
