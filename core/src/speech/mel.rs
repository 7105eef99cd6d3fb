//! The log-mel front end, as faster-whisper computes it: 160 zeros appended, a centered STFT
//! (reflect padding, periodic Hann window, n_fft 400, hop 160), `|X|²` without the last
//! frame, Slaney mel filters, `log10(max(·, 1e-10))`, a floor 8 below the maximum, and
//! `(x + 4) / 4`. The encoder takes the first `n / 160` frames, then 0.0 up to 3000 frames.

use crate::error::{try_vec, Error, Result};

/// A log-mel spectrogram: `n_mels` rows of `n_frames` values (mel bin major, as
/// faster-whisper's features `[n_mels, n_frames]`).
#[derive(Clone, Debug, PartialEq)]
pub struct LogMel {
    /// Mel bins (rows).
    pub n_mels: usize,
    /// Content frames (columns): `n_samples / hop_length`.
    pub n_frames: usize,
    /// The values, row by row.
    pub data: Vec<f32>,
}

impl LogMel {
    /// The encoder input for the window of `n_window` frames starting at frame `start`:
    /// `n_mels` rows of `n_window`, content frames then 0.0 (faster-whisper's padding).
    pub fn window(&self, start: usize, n_window: usize) -> Result<Vec<f32>> {
        let mut out = try_vec(self.n_mels * n_window, 0.0f32, "mel window")?;
        let end = self.n_frames.min(start.saturating_add(n_window));
        if start < end {
            for (m, row) in out.chunks_exact_mut(n_window).enumerate() {
                row[..end - start].copy_from_slice(&self.data[m * self.n_frames..][start..end]);
            }
        }
        Ok(out)
    }
}

/// The STFT and filter-bank settings of a model.
#[derive(Clone, Debug)]
pub(super) struct MelSpec<'a> {
    pub n_fft: usize,
    pub hop: usize,
    /// `[n_mels × (n_fft/2 + 1)]` filters.
    pub filters: &'a [f32],
    pub n_mels: usize,
}

/// Computes the log-mel spectrogram of `samples` (mono, at the model's rate).
pub(super) fn log_mel(samples: &[f32], spec: &MelSpec<'_>) -> Result<LogMel> {
    let (n_fft, hop) = (spec.n_fft, spec.hop);
    let n_bins = n_fft / 2 + 1;
    if spec.filters.len() != spec.n_mels * n_bins {
        return Err(Error::InvalidModel(format!(
            "whisper: mel filters hold {} values for {} bins of {n_bins}",
            spec.filters.len(),
            spec.n_mels
        )));
    }
    // faster-whisper appends `hop` zeros, then pads n_fft/2 by reflection on each side.
    let padded_len = samples.len() + hop;
    let at = |i: usize| samples.get(i).copied().unwrap_or(0.0);
    let half = n_fft / 2;
    let n_computed = padded_len / hop; // frames kept after dropping the last one
    let n_frames = samples.len() / hop;
    let window = hann_periodic(n_fft);
    let fft = Fft::new(n_fft);
    let bands = FilterBands::new(spec.filters, spec.n_mels, n_bins);

    let mut mel = try_vec(spec.n_mels * n_computed, 0.0f32, "log-mel")?;
    let mut frame = vec![Complex::default(); n_fft];
    let mut spectrum = vec![Complex::default(); n_fft];
    let mut scratch = vec![Complex::default(); fft.max_factor()];
    let mut power = vec![0.0f32; n_bins];
    let mut max = f32::NEG_INFINITY;
    for t in 0..n_computed {
        for (j, (c, &w)) in frame.iter_mut().zip(&window).enumerate() {
            let src = reflect(t * hop + j, half, padded_len);
            *c = Complex {
                re: f64::from(at(src) * w),
                im: 0.0,
            };
        }
        fft.run(&frame, &mut spectrum, &mut scratch);
        for (p, x) in power.iter_mut().zip(&spectrum) {
            *p = (x.re * x.re + x.im * x.im) as f32;
        }
        for m in 0..spec.n_mels {
            let v = bands.apply(m, &power).max(1e-10).log10();
            max = max.max(v);
            mel[m * n_computed + t] = v;
        }
    }
    let floor = max - 8.0;
    let mut data = try_vec(spec.n_mels * n_frames, 0.0f32, "log-mel")?;
    if n_frames > 0 {
        for (m, row) in data.chunks_exact_mut(n_frames).enumerate() {
            for (out, &v) in row.iter_mut().zip(&mel[m * n_computed..][..n_frames]) {
                *out = (v.max(floor) + 4.0) / 4.0;
            }
        }
    }
    Ok(LogMel {
        n_mels: spec.n_mels,
        n_frames,
        data,
    })
}

/// Index into the unpadded signal of position `i` of the signal reflect-padded by `half` on
/// each side (numpy's `mode="reflect"`: the edge sample is not repeated).
fn reflect(i: usize, half: usize, len: usize) -> usize {
    if len <= 1 {
        return 0;
    }
    let period = 2 * (len - 1);
    // Shift by a multiple of the period so the index is non-negative.
    let shift = half.div_ceil(period) * period;
    let k = (i + shift - half) % period;
    if k < len {
        k
    } else {
        period - k
    }
}

/// numpy's `hanning(n + 1)[:-1]` rounded to f32: the periodic Hann window.
fn hann_periodic(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32)
        .collect()
}

/// The non-zero span of each mel filter, so a frame costs the filters' support, not
/// `n_mels × n_bins`.
struct FilterBands<'a> {
    filters: &'a [f32],
    n_bins: usize,
    spans: Vec<(usize, usize)>,
}

impl<'a> FilterBands<'a> {
    fn new(filters: &'a [f32], n_mels: usize, n_bins: usize) -> Self {
        let spans = (0..n_mels)
            .map(|m| {
                let row = &filters[m * n_bins..][..n_bins];
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(0, |l| l + 1);
                (first, last.max(first))
            })
            .collect();
        Self {
            filters,
            n_bins,
            spans,
        }
    }

    /// `Σ_f filter[m][f] · power[f]`, summed in f64.
    fn apply(&self, m: usize, power: &[f32]) -> f32 {
        let (a, b) = self.spans[m];
        let row = &self.filters[m * self.n_bins..][a..b];
        row.iter()
            .zip(&power[a..b])
            .map(|(&w, &p)| f64::from(w) * f64::from(p))
            .sum::<f64>() as f32
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Complex {
    re: f64,
    im: f64,
}

impl Complex {
    fn mul(self, o: Complex) -> Complex {
        Complex {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }

    fn add(self, o: Complex) -> Complex {
        Complex {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
}

/// A mixed-radix complex FFT (decimation in time) of any length, in f64: 400 = 4·4·5·5
/// costs 400 · 18 complex multiply-adds per frame.
struct Fft {
    n: usize,
    factors: Vec<usize>,
    /// `e^(−2πi k / n)`.
    twiddles: Vec<Complex>,
}

impl Fft {
    fn new(n: usize) -> Self {
        let mut factors = Vec::new();
        let mut rest = n;
        for p in [4, 2, 3, 5] {
            while rest.is_multiple_of(p) && rest > 1 {
                factors.push(p);
                rest /= p;
            }
        }
        let mut p = 7;
        while rest > 1 {
            while rest.is_multiple_of(p) {
                factors.push(p);
                rest /= p;
            }
            p += 2;
        }
        if factors.is_empty() {
            factors.push(1);
        }
        let twiddles = (0..n)
            .map(|k| {
                let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                Complex {
                    re: a.cos(),
                    im: a.sin(),
                }
            })
            .collect();
        Self {
            n,
            factors,
            twiddles,
        }
    }

    fn max_factor(&self) -> usize {
        self.factors.iter().copied().max().unwrap_or(1)
    }

    /// `out = DFT(input)`; `scratch` holds [`max_factor`](Self::max_factor) values.
    fn run(&self, input: &[Complex], out: &mut [Complex], scratch: &mut [Complex]) {
        self.work(out, input, 0, 1, &self.factors, scratch);
    }

    /// The DFT of `input[start + j·stride]`, `j < out.len()`, into `out`.
    fn work(
        &self,
        out: &mut [Complex],
        input: &[Complex],
        start: usize,
        stride: usize,
        factors: &[usize],
        scratch: &mut [Complex],
    ) {
        let p = factors[0];
        let m = out.len() / p;
        if m == 1 {
            for (j, o) in out.iter_mut().enumerate() {
                *o = input[start + j * stride];
            }
        } else {
            for q in 0..p {
                self.work(
                    &mut out[q * m..(q + 1) * m],
                    input,
                    start + q * stride,
                    stride * p,
                    &factors[1..],
                    scratch,
                );
            }
        }
        // X[u + q1·m] = Σ_q W_len^(q·(u + q1·m)) · Y_q[u], with W_len = twiddles[stride].
        for u in 0..m {
            for (q, s) in scratch[..p].iter_mut().enumerate() {
                *s = out[q * m + u];
            }
            for q1 in 0..p {
                let k = u + q1 * m;
                let mut acc = scratch[0];
                let mut idx = 0;
                for &s in &scratch[1..p] {
                    idx = (idx + stride * k) % self.n;
                    acc = acc.add(s.mul(self.twiddles[idx]));
                }
                out[k] = acc;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_matches_a_direct_dft() {
        for n in [1usize, 2, 6, 12, 35, 400] {
            let x: Vec<Complex> = (0..n)
                .map(|i| Complex {
                    re: ((i * 7 + 3) % 11) as f64 - 5.0,
                    im: ((i * 5) % 3) as f64,
                })
                .collect();
            let fft = Fft::new(n);
            let mut out = vec![Complex::default(); n];
            let mut scratch = vec![Complex::default(); fft.max_factor()];
            fft.run(&x, &mut out, &mut scratch);
            for (k, got) in out.iter().enumerate() {
                let mut want = Complex::default();
                for (j, v) in x.iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * (j * k) as f64 / n as f64;
                    want = want.add(v.mul(Complex {
                        re: a.cos(),
                        im: a.sin(),
                    }));
                }
                assert!(
                    (got.re - want.re).abs() < 1e-9 && (got.im - want.im).abs() < 1e-9,
                    "n={n} k={k}: {got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn reflect_matches_numpy() {
        // np.pad([0,1,2,3], 3, mode="reflect") = [3,2,1,0,1,2,3,2,1,0]
        let got: Vec<usize> = (0..10).map(|i| reflect(i, 3, 4)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        // Padding longer than the signal reflects again: np.pad([0,1], 3, "reflect").
        let got: Vec<usize> = (0..8).map(|i| reflect(i, 3, 2)).collect();
        assert_eq!(got, [1, 0, 1, 0, 1, 0, 1, 0]);
    }
}
