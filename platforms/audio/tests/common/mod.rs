//! Signals and fixtures shared by the tests.
#![allow(dead_code)]

use std::f64::consts::PI;
use std::path::PathBuf;

/// The committed Whisper test clips (16 kHz mono unless named).
pub fn clip(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/whisper/clips")
        .join(name)
}

/// This crate's own fixtures.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `amp · sin(2π f t + phase)` at `rate` for `n` samples.
pub fn sine(freq: f64, amp: f64, phase: f64, rate: u32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (amp * (2.0 * PI * freq * i as f64 / f64::from(rate) + phase).sin()) as f32)
        .collect()
}

/// Deterministic uniform noise in [-amp, amp] (xorshift64).
pub fn noise(amp: f32, n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * amp
        })
        .collect()
}

/// A voiced, vowel-like sound at 16 kHz: a 110–130 Hz harmonic series shaped by three
/// formants (700, 1200, 2500 Hz) with a 4 Hz amplitude swing; peak about 0.3.
pub fn vowel(n: usize) -> Vec<f32> {
    let sr = 16_000.0;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / sr;
            let f0 = 120.0 + 10.0 * (2.0 * PI * 3.0 * t).sin();
            phase += 2.0 * PI * f0 / sr;
            let mut v = 0.0;
            for h in 1..30 {
                let fh = f0 * f64::from(h);
                let a = (-((fh - 700.0) / 200.0).powi(2)).exp()
                    + 0.5 * (-((fh - 1200.0) / 250.0).powi(2)).exp()
                    + 0.2 * (-((fh - 2500.0) / 300.0).powi(2)).exp();
                v += a * (phase * f64::from(h)).sin();
            }
            (0.1 * v * (0.6 + 0.4 * (2.0 * PI * 4.0 * t).sin())) as f32
        })
        .collect()
}

/// Silence / signal segments laid end to end: `(seconds, Some(signal maker) | None)`.
pub fn concat(parts: &[Vec<f32>]) -> Vec<f32> {
    parts.iter().flatten().copied().collect()
}

/// `secs` of zeros at 16 kHz.
pub fn silence(secs: f64) -> Vec<f32> {
    vec![0.0; (secs * 16_000.0).round() as usize]
}

/// Splits `x` into pieces of cycling odd sizes.
pub fn odd_chunks<T>(x: &[T]) -> Vec<&[T]> {
    const SIZES: [usize; 8] = [1, 7, 333, 1000, 4097, 2, 160, 12_345];
    let mut out = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < x.len() {
        let n = SIZES[k % SIZES.len()].min(x.len() - i);
        out.push(&x[i..i + n]);
        i += n;
        k += 1;
    }
    out
}
