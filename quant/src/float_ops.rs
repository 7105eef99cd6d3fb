//! f32 slice kernels for attention: a dot product and `y += w · x`, each with one fixed
//! order of rounded operations (no fused multiply-add), so the AVX and NEON versions give
//! the scalar twin's bits exactly.
//!
//! The dot product keeps eight partial sums, lane `k` taking elements `8i + k` in order;
//! the eight partials are then added left to right, and the products of the last
//! `len % 8` elements (summed left to right) are added last.

use crate::cpu;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::CpuLevel;

/// `Σ a[i] · b[i]` over the shorter of the two slices, in the order of the module docs.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let body = n / 8 * 8;
    let lanes = lanes_dot(&a[..body], &b[..body]);
    finish_dot(lanes, &a[body..], &b[body..])
}

/// `out[i · out_stride] = dot(x, row i) · scale` for every whole row of `x.len()` elements
/// in `rows` (each dot exactly [`dot`]'s): one call for many rows, as attention scores a
/// key against every query that sees it.
///
/// # Panics
/// If `out` is too short for the rows at that stride.
pub fn dot_rows(x: &[f32], rows: &[f32], scale: f32, out: &mut [f32], out_stride: usize) {
    let n = x.len();
    let n_rows = rows.len().checked_div(n).unwrap_or(0);
    assert!(
        n_rows == 0 || out.len() > (n_rows - 1) * out_stride,
        "dot_rows: {} outputs cannot hold {n_rows} rows at stride {out_stride}",
        out.len()
    );
    #[cfg(target_arch = "x86_64")]
    if matches!(cpu::level(), CpuLevel::Avx2 | CpuLevel::Avx512) {
        // SAFETY: the AVX2 levels are only reported on CPUs with AVX2; every row read lies in
        // `rows`, every output written in `out` (checked above).
        unsafe { x86::dot_rows(x, rows, n_rows, scale, out, out_stride) };
        return;
    }
    for i in 0..n_rows {
        out[i * out_stride] = dot(x, &rows[i * n..(i + 1) * n]) * scale;
    }
}

/// `y[i] += w · x[i]` (the product rounded, then the sum) over the shorter slice.
pub fn axpy(y: &mut [f32], w: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let (y, x) = (&mut y[..n], &x[..n]);
    #[cfg(target_arch = "x86_64")]
    if matches!(cpu::level(), CpuLevel::Avx2 | CpuLevel::Avx512) {
        // SAFETY: the AVX2 levels are only reported on CPUs with AVX; the slices have the
        // same length.
        unsafe { x86::axpy(y, w, x) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if cpu::level() != CpuLevel::Scalar {
        // SAFETY: NEON is part of the aarch64 baseline; the slices have the same length.
        unsafe { neon::axpy(y, w, x) };
        return;
    }
    axpy_scalar(y, w, x);
}

/// `y[i] += w[p] · xs[p][i]` for `p = 0, 1, …` in order (row `p` of `xs` at `p · x_stride`,
/// `y.len()` elements of it): the same rounded operations, so the same bits, as calling
/// [`axpy`] once per row, but `y` stays in registers across rows (attention's weighted sum
/// of values).
///
/// # Panics
/// If `xs` is too short for `w.len()` rows at that stride.
pub fn axpy_rows(y: &mut [f32], w: &[f32], xs: &[f32], x_stride: usize) {
    let n = y.len();
    assert!(
        w.is_empty() || xs.len() >= (w.len() - 1) * x_stride + n,
        "axpy_rows: {} values cannot hold {} rows of {n} at stride {x_stride}",
        xs.len(),
        w.len()
    );
    #[cfg(target_arch = "x86_64")]
    if matches!(cpu::level(), CpuLevel::Avx2 | CpuLevel::Avx512) {
        // SAFETY: the AVX2 levels are only reported on CPUs with AVX; every row read lies in
        // `xs` (checked above).
        unsafe { x86::axpy_rows(y, w, xs, x_stride) };
        return;
    }
    for (p, &wp) in w.iter().enumerate() {
        axpy(y, wp, &xs[p * x_stride..p * x_stride + n]);
    }
}

/// The scalar twin of [`axpy`].
pub fn axpy_scalar(y: &mut [f32], w: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += w * x;
    }
}

/// The scalar twin of [`dot`].
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let body = n / 8 * 8;
    finish_dot(
        lanes_dot_scalar(&a[..body], &b[..body]),
        &a[body..n],
        &b[body..n],
    )
}

/// The eight partial sums of `a · b` (`a.len() == b.len()`, a multiple of eight).
fn lanes_dot(a: &[f32], b: &[f32]) -> [f32; 8] {
    #[cfg(target_arch = "x86_64")]
    if matches!(cpu::level(), CpuLevel::Avx2 | CpuLevel::Avx512) {
        // SAFETY: as in `axpy`; the lengths are equal multiples of eight.
        return unsafe { x86::lanes_dot(a, b) };
    }
    #[cfg(target_arch = "aarch64")]
    if cpu::level() != CpuLevel::Scalar {
        // SAFETY: as in `axpy`; the lengths are equal multiples of eight.
        return unsafe { neon::lanes_dot(a, b) };
    }
    lanes_dot_scalar(a, b)
}

fn lanes_dot_scalar(a: &[f32], b: &[f32]) -> [f32; 8] {
    let mut acc = [0.0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc
}

/// The partials added left to right, then the tail's products summed left to right.
fn finish_dot(lanes: [f32; 8], a_tail: &[f32], b_tail: &[f32]) -> f32 {
    finish_sums(lanes.iter().sum::<f32>(), a_tail, b_tail)
}

/// [`finish_dot`] once its partials are summed (`lanes_sum`): the tail's products, summed
/// left to right, added last.
fn finish_sums(lanes_sum: f32, a_tail: &[f32], b_tail: &[f32]) -> f32 {
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    lanes_sum + tail
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX available; `a.len() == b.len()`, a multiple of eight.
    #[inline]
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn lanes_dot(a: &[f32], b: &[f32]) -> [f32; 8] {
        let mut acc = _mm256_setzero_ps();
        for i in (0..a.len()).step_by(8) {
            let x = _mm256_loadu_ps(a.as_ptr().add(i));
            let y = _mm256_loadu_ps(b.as_ptr().add(i));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(x, y));
        }
        let mut out = [0.0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), acc);
        out
    }

    /// # Safety
    /// AVX2 available; `rows` holds `n_rows` rows of `x.len()`; `out` holds index
    /// `(n_rows - 1) * out_stride`.
    #[target_feature(enable = "avx,avx2")]
    pub(super) unsafe fn dot_rows(
        x: &[f32],
        rows: &[f32],
        n_rows: usize,
        scale: f32,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let n = x.len();
        let body = n / 8 * 8;
        // Eight rows at a time: their lane partials are transposed so the eight left-to-right
        // sums of `finish_dot` run side by side, one row per lane.
        let mut i = 0;
        while i + 8 <= n_rows {
            let mut acc = [_mm256_setzero_ps(); 8];
            for c in (0..body).step_by(8) {
                let xv = _mm256_loadu_ps(x.as_ptr().add(c));
                for (j, a) in acc.iter_mut().enumerate() {
                    let r = _mm256_loadu_ps(rows.as_ptr().add((i + j) * n + c));
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(xv, r));
                }
            }
            let mut lanes = [_mm256_setzero_si256(); 8];
            for (l, a) in lanes.iter_mut().zip(acc) {
                *l = _mm256_castps_si256(a);
            }
            let partials = crate::x86_transpose::transpose8(lanes);
            // `Sum` starts from its own zero: start there too, so a row of negative zeros
            // keeps the scalar sum's sign.
            let mut sum = _mm256_set1_ps(std::iter::empty::<f32>().sum());
            for p in partials {
                sum = _mm256_add_ps(sum, _mm256_castsi256_ps(p));
            }
            let mut sums = [0.0f32; 8];
            _mm256_storeu_ps(sums.as_mut_ptr(), sum);
            for (j, lanes_sum) in sums.into_iter().enumerate() {
                let row = &rows[(i + j) * n..(i + j + 1) * n];
                out[(i + j) * out_stride] =
                    super::finish_sums(lanes_sum, &x[body..], &row[body..]) * scale;
            }
            i += 8;
        }
        for i in i..n_rows {
            let row = &rows[i * n..(i + 1) * n];
            let lanes = lanes_dot(&x[..body], &row[..body]);
            out[i * out_stride] = super::finish_dot(lanes, &x[body..], &row[body..]) * scale;
        }
    }

    /// # Safety
    /// AVX available; `y.len() == x.len()`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn axpy(y: &mut [f32], w: f32, x: &[f32]) {
        let body = y.len() / 8 * 8;
        let wv = _mm256_set1_ps(w);
        for i in (0..body).step_by(8) {
            let p = y.as_mut_ptr().add(i);
            let v = _mm256_add_ps(
                _mm256_loadu_ps(p),
                _mm256_mul_ps(wv, _mm256_loadu_ps(x.as_ptr().add(i))),
            );
            _mm256_storeu_ps(p, v);
        }
        super::axpy_scalar(&mut y[body..], w, &x[body..]);
    }

    /// Elements of `y` held in registers at a time by [`axpy_rows`].
    const ROWS_SPAN: usize = 32;

    /// # Safety
    /// AVX available; `xs` holds `w.len()` rows of `y.len()` elements at `x_stride`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn axpy_rows(y: &mut [f32], w: &[f32], xs: &[f32], x_stride: usize) {
        let n = y.len();
        let mut i = 0;
        while i + ROWS_SPAN <= n {
            let yp = y.as_mut_ptr().add(i);
            let mut acc = [_mm256_setzero_ps(); ROWS_SPAN / 8];
            for (j, a) in acc.iter_mut().enumerate() {
                *a = _mm256_loadu_ps(yp.add(8 * j));
            }
            for (p, &wp) in w.iter().enumerate() {
                let wv = _mm256_set1_ps(wp);
                let xp = xs.as_ptr().add(p * x_stride + i);
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(wv, _mm256_loadu_ps(xp.add(8 * j))));
                }
            }
            for (j, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(yp.add(8 * j), *a);
            }
            i += ROWS_SPAN;
        }
        if i < n {
            for (p, &wp) in w.iter().enumerate() {
                let row = p * x_stride;
                axpy(&mut y[i..], wp, &xs[row + i..row + n]);
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    /// # Safety
    /// `a.len() == b.len()`, a multiple of eight.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn lanes_dot(a: &[f32], b: &[f32]) -> [f32; 8] {
        let (mut lo, mut hi) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        for i in (0..a.len()).step_by(8) {
            let (pa, pb) = (a.as_ptr().add(i), b.as_ptr().add(i));
            lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(pa), vld1q_f32(pb)));
            hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(pa.add(4)), vld1q_f32(pb.add(4))));
        }
        let mut out = [0.0f32; 8];
        vst1q_f32(out.as_mut_ptr(), lo);
        vst1q_f32(out.as_mut_ptr().add(4), hi);
        out
    }

    /// # Safety
    /// `y.len() == x.len()`.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn axpy(y: &mut [f32], w: f32, x: &[f32]) {
        let body = y.len() / 4 * 4;
        let wv = vdupq_n_f32(w);
        for i in (0..body).step_by(4) {
            let p = y.as_mut_ptr().add(i);
            vst1q_f32(
                p,
                vaddq_f32(vld1q_f32(p), vmulq_f32(wv, vld1q_f32(x.as_ptr().add(i)))),
            );
        }
        super::axpy_scalar(&mut y[body..], w, &x[body..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn simd_and_scalar_give_the_same_bits() {
        let mut rng = Rng::new(3);
        for n in [0, 1, 7, 8, 9, 36, 40, 64, 65, 128, 131] {
            let a: Vec<f32> = (0..n).map(|_| rng.next_f32() * 4.0 - 2.0).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.next_f32() * 1e3 - 5e2).collect();
            assert_eq!(
                dot(&a, &b).to_bits(),
                dot_scalar(&a, &b).to_bits(),
                "dot {n}"
            );
            let (mut y1, mut y2) = (b.clone(), b.clone());
            axpy(&mut y1, 0.37, &a);
            axpy_scalar(&mut y2, 0.37, &a);
            assert!(
                y1.iter().zip(&y2).all(|(p, q)| p.to_bits() == q.to_bits()),
                "axpy {n}"
            );
        }
        // Non-finite values propagate alike.
        let a = [1.0, f32::INFINITY, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, f32::NAN];
        assert!(dot(&a, &a).is_nan() && dot_scalar(&a, &a).is_nan());
    }

    #[test]
    fn dot_rows_gives_the_bits_of_scalar_dot_row_by_row() {
        let mut rng = Rng::new(7);
        // (An empty `x` has no rows: `dot_rows` counts rows by its length.)
        for n in [1, 7, 8, 9, 36, 64, 65, 128] {
            for n_rows in [0, 1, 7, 8, 9, 16, 23] {
                let x: Vec<f32> = (0..n).map(|_| rng.next_f32() * 4.0 - 2.0).collect();
                let mut rows: Vec<f32> = (0..n_rows * n).map(|_| rng.next_f32() - 0.5).collect();
                if n_rows > 8 && n >= 8 {
                    // A row of negative zeros against positive x, and non-finite values.
                    rows[2 * n..3 * n].fill(-0.0);
                    rows[4 * n + 3] = f32::INFINITY;
                    rows[5 * n] = f32::NAN;
                }
                let x = if n_rows > 8 && n >= 8 {
                    x.iter().map(|v| v.abs()).collect()
                } else {
                    x
                };
                let stride = 3;
                let mut got = vec![f32::NAN; n_rows * stride];
                dot_rows(&x, &rows, 0.125, &mut got, stride);
                for r in 0..n_rows {
                    let want = dot_scalar(&x, &rows[r * n..(r + 1) * n]) * 0.125;
                    assert_eq!(
                        got[r * stride].to_bits(),
                        want.to_bits(),
                        "dot_rows {n} row {r} of {n_rows}"
                    );
                }
            }
        }
    }

    #[test]
    fn axpy_rows_gives_the_bits_of_scalar_axpy_row_by_row() {
        let mut rng = Rng::new(5);
        for n in [0, 1, 7, 8, 31, 32, 33, 64, 72, 128, 131] {
            for (n_rows, stride) in [(0, n), (1, n), (5, n), (17, n + 3)] {
                let mut xs: Vec<f32> = (0..n_rows * stride + n)
                    .map(|_| rng.next_f32() * 8.0 - 4.0)
                    .collect();
                let mut w: Vec<f32> = (0..n_rows).map(|_| rng.next_f32()).collect();
                if n_rows == 17 && n > 40 {
                    // Overflow to infinity, then a NaN, partway through the rows.
                    xs[3 * stride + 1] = f32::MAX;
                    w[3] = 4.0;
                    xs[9 * stride + 37] = f32::NAN;
                }
                let y0: Vec<f32> = (0..n).map(|_| rng.next_f32() * 1e3 - 5e2).collect();
                let (mut got, mut want) = (y0.clone(), y0);
                axpy_rows(&mut got, &w, &xs, stride);
                for (p, &wp) in w.iter().enumerate() {
                    axpy_scalar(&mut want, wp, &xs[p * stride..p * stride + n]);
                }
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(p, q)| p.to_bits() == q.to_bits()),
                    "axpy_rows {n} x {n_rows} at stride {stride}"
                );
            }
        }
    }
}
