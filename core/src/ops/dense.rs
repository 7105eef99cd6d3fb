//! Ops of non-causal encoders (the vision tower, Whisper's audio encoder): LayerNorm with
//! bias, the exact (erf) GELU, and bidirectional multi-head attention in F32.

use fennec_quant::CpuLevel;

use super::ThreadPool;
use crate::error::{Error, Result};

/// LayerNorm of each row in place: `(x − mean) / sqrt(var + eps) · w + b`, statistics in f64.
pub fn layer_norm(x: &mut [f32], w: &[f32], b: &[f32], eps: f32, pool: &ThreadPool) {
    let n = w.len();
    pool.for_rows(x, n, |rows, _| {
        for row in rows.chunks_exact_mut(n) {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
            let var = row
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n as f64;
            let inv = 1.0 / (var + f64::from(eps)).sqrt();
            for ((v, &wi), &bi) in row.iter_mut().zip(w).zip(b) {
                *v = ((f64::from(*v) - mean) * inv) as f32 * wi + bi;
            }
        }
    });
}

/// The exact (erf) GELU, `x · Φ(x) = x/2 · (1 + erf(x/√2))`, elementwise on `pool`, with
/// [`erf_approx`] (within 1e-6 of `erff`) so that the loop vectorizes.
pub fn gelu(x: &mut [f32], pool: &ThreadPool) {
    let row = 4096.min(x.len().max(1));
    pool.for_rows(x, row, |vals, _| {
        for v in vals {
            *v = 0.5 * *v * (1.0 + erf_approx(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    });
}

/// `erf(x)` within 1e-6 absolute (5e-7 measured), branch free (so loops over it vectorize): Abramowitz and
/// Stegun's formula 7.1.26, `1 − (a₁t + … + a₅t⁵)·e^(−x²)` with `t = 1/(1 + p|x|)`, on
/// [`exp_approx`], with the sign of `x` put back.
#[inline(always)]
pub fn erf_approx(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let ax = x.abs();
    let t = 1.0 / (1.0 + P * ax);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * exp_approx(-ax * ax);
    y.copysign(x)
}

/// Query rows per task of [`bidirectional_attention`]: their scores against every key stay
/// in the thread's cache while the softmax and the weighted sum of values read them.
const QUERY_BLOCK: usize = 32;
/// Rows of a micro-tile (queries, or weight rows in the weighted sum).
const TILE_ROWS: usize = 4;
/// Columns of a micro-tile (keys, or value components): two AVX2 or four NEON registers.
const TILE_COLS: usize = 16;

/// Scratch of [`bidirectional_attention`], sized on first use and reused after.
#[derive(Default)]
pub struct BidirectionalScratch {
    /// The keys in panels of [`TILE_COLS`] (see [`transpose_keys`]).
    kt: Vec<f32>,
    /// Per thread: one block of queries' scores, then weights, against every key.
    blocks: Vec<Vec<f32>>,
}

/// Bidirectional multi-head attention over `n` positions: `out[i, head] = softmax(q_i·K /
/// √d) · V`, heads of `hd` side by side in rows of `n_head·hd`. Blocks of
/// [`QUERY_BLOCK`] queries go to the pool's threads; for each head a block's scores
/// against every key (`QUERY_BLOCK × n`, never the whole `n × n` matrix) are computed,
/// turned into weights and multiplied by the values in register tiles that the compiler
/// vectorizes (with AVX2 + FMA when the CPU has them).
///
/// # Errors
/// [`crate::ErrorKind::InvalidArgument`] when a buffer is shorter than `n` rows.
#[allow(clippy::too_many_arguments)]
pub fn bidirectional_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n: usize,
    n_head: usize,
    hd: usize,
    out: &mut [f32],
    s: &mut BidirectionalScratch,
    pool: &ThreadPool,
) -> Result<()> {
    let c = n_head * hd;
    if [q.len(), k.len(), v.len(), out.len()]
        .iter()
        .any(|&l| l < n * c)
    {
        return Err(Error::InvalidArgument(format!(
            "attention over {n} rows of {c} needs buffers of {} values",
            n * c
        )));
    }
    if hd > MAX_TILE_HD {
        return Err(Error::Unsupported(format!(
            "attention heads of {hd} (at most {MAX_TILE_HD})"
        )));
    }
    if n == 0 || c == 0 {
        return Ok(());
    }
    let n_pad = n.next_multiple_of(TILE_COLS);
    s.kt.resize(c * n_pad, 0.0);
    transpose_keys(&k[..n * c], n, n_head, hd, n_pad, &mut s.kt, pool);
    s.blocks.resize_with(pool.n_threads(), Vec::new);
    for b in &mut s.blocks {
        b.resize(QUERY_BLOCK * n_pad, 0.0);
    }
    let level = fennec_quant::cpu::level();
    let kt = &s.kt;
    let scale = 1.0 / (hd as f32).sqrt();
    pool.for_chunks_mut_with(
        &mut out[..n * c],
        QUERY_BLOCK * c,
        &mut s.blocks,
        |o, blk, scores| {
            let rows = o.len() / c;
            let q_rows = &q[blk * QUERY_BLOCK * c..][..rows * c];
            for head in 0..n_head {
                let block = HeadBlock {
                    q: q_rows,
                    kt: &kt[head * hd * n_pad..][..hd * n_pad],
                    v: &v[..n * c],
                    col: head * hd,
                    c,
                    n,
                    n_pad,
                    hd,
                    scale,
                };
                attend_head_block(level, &block, &mut scores[..rows * n_pad], o);
            }
        },
    );
    Ok(())
}

/// The keys of each head in panels of [`TILE_COLS`] keys, component major: key `j`'s
/// component `d` of head `h` at `h·hd·n_pad + (j / TILE_COLS)·hd·TILE_COLS + d·TILE_COLS +
/// j % TILE_COLS`, the padding keys zero. A score tile then reads its keys in order.
fn transpose_keys(
    k: &[f32],
    n: usize,
    n_head: usize,
    hd: usize,
    n_pad: usize,
    kt: &mut [f32],
    pool: &ThreadPool,
) {
    let c = n_head * hd;
    let panel = hd * TILE_COLS;
    pool.for_rows(kt, panel, |panels, first| {
        for (i, p) in panels.chunks_exact_mut(panel).enumerate() {
            let (head, j0) = (
                (first + i) / (n_pad / TILE_COLS),
                (first + i) % (n_pad / TILE_COLS) * TILE_COLS,
            );
            for (d, lane) in p.chunks_exact_mut(TILE_COLS).enumerate() {
                for (jj, x) in lane.iter_mut().enumerate() {
                    let j = j0 + jj;
                    *x = if j < n { k[j * c + head * hd + d] } else { 0.0 };
                }
            }
        }
    });
}

/// One head for one block of queries.
struct HeadBlock<'a> {
    /// The block's query rows, `c` wide.
    q: &'a [f32],
    /// The head's keys in panels (see [`transpose_keys`]).
    kt: &'a [f32],
    /// Every value row, `c` wide.
    v: &'a [f32],
    /// The head's first column in `q`, `v` and the output.
    col: usize,
    c: usize,
    n: usize,
    n_pad: usize,
    hd: usize,
    scale: f32,
}

/// Runs [`head_block`] with the best arithmetic `level` allows.
fn attend_head_block(level: CpuLevel, b: &HeadBlock<'_>, scores: &mut [f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if matches!(level, CpuLevel::Avx2 | CpuLevel::Avx512) {
        // SAFETY: `cpu::level` reports AVX2 only where the CPU has AVX2 and FMA.
        unsafe { head_block_avx2(b, scores, out) };
        return;
    }
    match level {
        CpuLevel::Scalar => head_block::<Plain>(b, scores, out),
        _ => head_block::<Native>(b, scores, out),
    }
}

/// [`head_block`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn head_block_avx2(b: &HeadBlock<'_>, scores: &mut [f32], out: &mut [f32]) {
    head_block::<Fused>(b, scores, out);
}

/// `a · b + c` as the kernels compute it.
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// Separate multiply and add (the portable scalar arithmetic).
struct Plain;
impl MulAdd for Plain {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Fused multiply-add (where the target has it as an instruction).
#[cfg(target_arch = "x86_64")]
struct Fused;
#[cfg(target_arch = "x86_64")]
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// The baseline arithmetic of the target: fused on aarch64 (NEON has FMA), plain elsewhere.
#[cfg(target_arch = "aarch64")]
type Native = Fused64;
#[cfg(not(target_arch = "aarch64"))]
type Native = Plain;

/// Fused multiply-add on aarch64.
#[cfg(target_arch = "aarch64")]
struct Fused64;
#[cfg(target_arch = "aarch64")]
impl MulAdd for Fused64 {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// Scores, softmax and weighted values of one head for one block of queries; writes the
/// head's columns of `out` (the block's rows, `c` wide).
#[inline(always)]
fn head_block<M: MulAdd>(b: &HeadBlock<'_>, scores: &mut [f32], out: &mut [f32]) {
    let rows = b.q.len() / b.c;
    // Scores: tiles of TILE_ROWS queries × TILE_COLS keys. The tile's queries go
    // component-major first, so the inner loop reads both operands in order.
    let mut qt = [[0.0f32; TILE_ROWS]; MAX_TILE_HD];
    let mut r0 = 0;
    while r0 < rows {
        let nr = (rows - r0).min(TILE_ROWS);
        let hd = b.hd.min(MAX_TILE_HD);
        for (d, qd) in qt[..hd].iter_mut().enumerate() {
            *qd = std::array::from_fn(|r| b.q[(r0 + r.min(nr - 1)) * b.c + b.col + d]);
        }
        for (p, keys) in b.kt.chunks_exact(b.hd * TILE_COLS).enumerate() {
            let j0 = p * TILE_COLS;
            let mut acc = [[0.0f32; TILE_COLS]; TILE_ROWS];
            for (kd, qd) in keys.chunks_exact(TILE_COLS).zip(&qt[..hd]) {
                for (a, &qv) in acc.iter_mut().zip(qd) {
                    for (a, &kv) in a.iter_mut().zip(kd) {
                        *a = M::mul_add(qv, kv, *a);
                    }
                }
            }
            for (r, a) in acc.iter().enumerate().take(nr) {
                scores[(r0 + r) * b.n_pad + j0..][..TILE_COLS].copy_from_slice(a);
            }
        }
        r0 += nr;
    }
    // Weights: e^((s − max)·scale), left unnormalized; each row's sum divides its output.
    let mut inv_sums = [0.0f32; QUERY_BLOCK];
    for (row, inv) in scores.chunks_exact_mut(b.n_pad).zip(&mut inv_sums) {
        let row = &mut row[..b.n];
        let max = max_of(row);
        *inv = 1.0 / exp_shifted_sum(row, max, b.scale);
    }
    // Weighted values: TILE_ROWS weight rows at a time, each value row (the head's `hd`
    // components) added into their accumulators, which stay in L1.
    let hd = b.hd.min(MAX_TILE_HD);
    let mut r0 = 0;
    while r0 < rows {
        let nr = (rows - r0).min(TILE_ROWS);
        let p: [&[f32]; TILE_ROWS] =
            std::array::from_fn(|r| &scores[(r0 + r.min(nr - 1)) * b.n_pad..][..b.n]);
        let mut acc = [[0.0f32; MAX_TILE_HD]; TILE_ROWS];
        let v_rows = b.v.chunks_exact(b.c).take(b.n);
        let weights = p[0].iter().zip(p[1]).zip(p[2].iter().zip(p[3]));
        for (vrow, ((&w0, &w1), (&w2, &w3))) in v_rows.zip(weights) {
            let Some(vj) = vrow.get(b.col..b.col + hd) else {
                continue;
            };
            for (a, w) in acc.iter_mut().zip([w0, w1, w2, w3]) {
                for (a, &x) in a[..hd].iter_mut().zip(vj) {
                    *a = M::mul_add(w, x, *a);
                }
            }
        }
        for (r, a) in acc.iter().enumerate().take(nr) {
            let inv = inv_sums[r0 + r];
            let o = &mut out[(r0 + r) * b.c + b.col..][..hd];
            for (o, &x) in o.iter_mut().zip(a) {
                *o = x * inv;
            }
        }
        r0 += nr;
    }
}

/// Largest head width the kernels take (wider heads are refused up front).
const MAX_TILE_HD: usize = 256;

/// The largest value of `x` (−∞ for none), in lanes the compiler vectorizes.
#[inline(always)]
fn max_of(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; TILE_COLS];
    let chunks = x.chunks_exact(TILE_COLS);
    let tail = chunks.remainder();
    for ch in chunks {
        for (m, &v) in lanes.iter_mut().zip(ch) {
            *m = if v > *m { v } else { *m };
        }
    }
    tail.iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `x[j] = e^((x[j] − max)·scale)` in place; returns their sum.
#[inline(always)]
fn exp_shifted_sum(x: &mut [f32], max: f32, scale: f32) -> f32 {
    let mut lanes = [0.0f32; TILE_COLS];
    let mut chunks = x.chunks_exact_mut(TILE_COLS);
    for ch in &mut chunks {
        for (s, v) in lanes.iter_mut().zip(ch) {
            *v = exp_approx((*v - max) * scale);
            *s += *v;
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for v in chunks.into_remainder() {
        *v = exp_approx((*v - max) * scale);
        sum += *v;
    }
    sum
}

/// `e^x` within 2 ulp for `x ≤ 88` (0 below −87.3), branch free so that loops over it
/// vectorize: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by a degree-7 polynomial
/// (Cephes' `expf` coefficients), `2^n` built in the exponent bits.
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n·LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // The integer n sits in t's low mantissa bits; 2^n has exponent bits n + 127.
    let n_int = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let two_n = f32::from_bits((n_int.wrapping_add(127) as u32) << 23);
    e_r * two_n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_is_exact() {
        let pool = ThreadPool::new(1, std::time::Duration::ZERO).unwrap();
        let mut x = [-3.0f32, -1.0, 0.0, 0.5, 2.0];
        gelu(&mut x, &pool);
        let want = [
            -0.004_049_729_6,
            -0.158_655_26,
            0.0,
            0.345_731_14,
            1.954_499_7,
        ];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
    #[test]
    fn erf_approx_is_within_1e6_of_erff() {
        let mut worst = (0.0f32, 0.0f32);
        for i in -80_000..=80_000 {
            let x = i as f32 * 1e-4;
            let err = (erf_approx(x) - libm::erff(x)).abs();
            if err > worst.0 {
                worst = (err, x);
            }
        }
        assert!(
            worst.0 < 1e-6,
            "erf_approx is off by {} at {}",
            worst.0,
            worst.1
        );
        for x in [0.0f32, -0.0, 1e-30, 9.0, -9.0, 100.0, f32::MAX, f32::MIN] {
            let want = libm::erff(x);
            assert!(
                (erf_approx(x) - want).abs() < 1e-6,
                "{x}: {} vs {want}",
                erf_approx(x)
            );
        }
        assert!(erf_approx(-0.0).is_sign_negative());
    }

    #[test]
    fn exp_approx_is_within_two_ulp() {
        let mut worst = 0.0f32;
        for i in -87_000..=88_000 {
            let x = i as f32 * 1e-3 + 0.000_37;
            let (got, want) = (exp_approx(x), (f64::from(x)).exp() as f32);
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
        assert!(exp_approx(-1e4) < 1e-37);
        assert!(exp_approx(0.0) == 1.0);
    }

    /// Softmax attention in f64, straight from the definition.
    fn reference_attention(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        n: usize,
        n_head: usize,
        hd: usize,
    ) -> Vec<f32> {
        let c = n_head * hd;
        let mut out = vec![0.0f32; n * c];
        for h in 0..n_head {
            for i in 0..n {
                let dot = |j: usize| -> f64 {
                    (0..hd)
                        .map(|d| {
                            f64::from(q[i * c + h * hd + d]) * f64::from(k[j * c + h * hd + d])
                        })
                        .sum::<f64>()
                        / (hd as f64).sqrt()
                };
                let s: Vec<f64> = (0..n).map(dot).collect();
                let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for d in 0..hd {
                    let o: f64 = (0..n)
                        .map(|j| e[j] * f64::from(v[j * c + h * hd + d]))
                        .sum();
                    out[i * c + h * hd + d] = (o / sum) as f32;
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_the_definition_at_every_level() {
        let mut rng = 0x2545_f491_u32;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            (rng as f32 / u32::MAX as f32 - 0.5) * 6.0
        };
        // Odd sizes: partial query blocks, tiles and value columns.
        for (n, n_head, hd, threads) in [(37, 3, 24, 1), (70, 2, 64, 2), (5, 1, 16, 2)] {
            let c = n_head * hd;
            let q: Vec<f32> = (0..n * c).map(|_| next()).collect();
            let k: Vec<f32> = (0..n * c).map(|_| next()).collect();
            let v: Vec<f32> = (0..n * c).map(|_| next()).collect();
            let want = reference_attention(&q, &k, &v, n, n_head, hd);
            let pool = ThreadPool::new(threads, std::time::Duration::ZERO).unwrap();
            let mut s = BidirectionalScratch::default();
            let mut got = vec![0.0f32; n * c];
            bidirectional_attention(&q, &k, &v, n, n_head, hd, &mut got, &mut s, &pool).unwrap();
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 2e-5, "n {n} heads {n_head} hd {hd}: off by {worst}");
            // The portable twin of the SIMD path, block by block.
            for level in [CpuLevel::Scalar, fennec_quant::cpu::level()] {
                let n_pad = n.next_multiple_of(TILE_COLS);
                let mut kt = vec![0.0; c * n_pad];
                transpose_keys(&k, n, n_head, hd, n_pad, &mut kt, &pool);
                let mut out = vec![0.0f32; n * c];
                let mut scores = vec![0.0f32; QUERY_BLOCK * n_pad];
                for (blk, o) in out.chunks_mut(QUERY_BLOCK * c).enumerate() {
                    let rows = o.len() / c;
                    for head in 0..n_head {
                        let b = HeadBlock {
                            q: &q[blk * QUERY_BLOCK * c..][..rows * c],
                            kt: &kt[head * hd * n_pad..][..hd * n_pad],
                            v: &v,
                            col: head * hd,
                            c,
                            n,
                            n_pad,
                            hd,
                            scale: 1.0 / (hd as f32).sqrt(),
                        };
                        attend_head_block(level, &b, &mut scores[..rows * n_pad], o);
                    }
                }
                let worst = out
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(worst < 2e-5, "{level:?}: off by {worst}");
            }
        }
        // A short buffer is an error, not a panic.
        let pool = ThreadPool::new(1, std::time::Duration::ZERO).unwrap();
        let mut out = vec![0.0; 8];
        let e = bidirectional_attention(
            &[0.0; 8],
            &[0.0; 8],
            &[0.0; 4],
            2,
            1,
            4,
            &mut out,
            &mut BidirectionalScratch::default(),
            &pool,
        );
        assert!(e.is_err());
    }
    /// Whisper tiny's encoder attention (1500 positions, 6 heads of 64), timed, never
    /// asserted: `cargo test --release -p fennec-core --lib -- --ignored --nocapture
    /// attention_times`.
    #[test]
    #[ignore = "measurement"]
    fn attention_times() {
        let (n, n_head, hd) = (1500, 6, 64);
        let c = n_head * hd;
        let x: Vec<f32> = (0..n * c)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        for threads in [1, 2] {
            let pool = ThreadPool::new(threads, std::time::Duration::ZERO).unwrap();
            let mut s = BidirectionalScratch::default();
            let mut out = vec![0.0f32; n * c];
            let mut times = Vec::new();
            for _ in 0..5 {
                let t = std::time::Instant::now();
                bidirectional_attention(&x, &x, &x, n, n_head, hd, &mut out, &mut s, &pool)
                    .unwrap();
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            eprintln!(
                "attention 1500×6×64, {threads} threads: median {:.1} ms",
                times[2]
            );
        }
    }
}
