//! NEON kernels (every level this CPU supports: neon, dotprod, i8mm) against the scalar
//! reference kernels and an independent f64 reference.
//!
//! Bounds asserted, with `M = Σ |every product term|` (in f64, per element: `|d·sc·q·a|`, plus
//! `|dmin·min·a|` and `|m·s|` where the type has them) and `nb` = blocks (elements for
//! F32/F16):
//!
//! - **exact**: when every scale is 1 and `M < 2^24`, all partial sums are integers that f32
//!   holds exactly in any order, so SIMD, scalar and the f64 reference must be bit-equal
//!   (this is the "integer parts exactly" check: a wrong integer can never hide in rounding);
//! - **float**: otherwise `|simd − scalar| ≤ (nb + 4)·2^-23·M` and the same against the f64
//!   reference: each kernel rounds each block term a few times (≤ 4·2^-24 relative) and the
//!   block sum once per addition (≤ nb·2^-24);
//! - **NaN/Inf**: a NaN scale (or element) gives NaN; an infinite one a non-finite result,
//!   as scalar does (the same infinity when both are infinite; NaN against ±Inf is allowed,
//!   since the scalar kernels' lane sums can meet `Inf·0` where the SIMD total does not).
//!   No kernel replaces its result by the scalar one: what is compared is the SIMD result.
//!
//! A level the emulated CPU lacks is skipped with a line on stderr (not captured). Under
//! qemu, run with several `-cpu` models (see `scripts/test-aarch64.sh`); with
//! `FENNEC_EXPECT_LEVELS` set (e.g. `neon,dotprod`) the detected levels must match it.
#![cfg(target_arch = "aarch64")]

mod common;

use std::io::Write;
use std::sync::Once;

use fennec_quant::dot::{activation_type, kernel, simd_kernel, VecDotFn};
use fennec_quant::rng::Rng;
use fennec_quant::{CpuLevel, GgmlType};
use half::f16;
use proptest::prelude::*;

use GgmlType::*;

/// Every weight type with a NEON kernel.
const TYPES: [GgmlType; 14] = [
    F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2K, Q3K, Q4K, Q5K, Q6K, Iq4Nl, Iq4Xs,
];

const NEON_LEVELS: [CpuLevel; 3] = [CpuLevel::Neon, CpuLevel::Dotprod, CpuLevel::I8mm];

const IQ4_LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Writes to the real stderr (not the test harness's capture), once per message kind.
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "simd_neon: {msg}");
}

/// The NEON levels this CPU runs; the unsupported ones are reported once.
fn levels() -> Vec<CpuLevel> {
    static REPORT: Once = Once::new();
    REPORT.call_once(|| {
        for l in NEON_LEVELS {
            if !l.is_supported() {
                note(&format!("level {l} not supported by this CPU: skipped"));
            }
        }
    });
    NEON_LEVELS
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
}

fn act(ty: GgmlType) -> GgmlType {
    match ty {
        Q4_0 | Q5_0 | Q8_0 | Iq4Nl => Q8_0,
        Q4_1 | Q5_1 => Q8_1,
        F32 => F32,
        F16 => F16,
        _ => Q8K,
    }
}

// ------------------------------------------------------------------ input generation

/// xorshift64* started at an odd multiple of `seed`.
fn seeded_rng(seed: u64) -> Rng {
    Rng::xorshift64star(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
}

/// Uniform in `-r..=r`, clamped to i8.
fn uniform_i8(rng: &mut Rng, r: i32) -> i8 {
    let span = (2 * r + 1) as u64;
    (((rng.next_u64() >> 16) % span) as i32 - r).clamp(-128, 127) as i8
}

/// ±m·2^e with e in `lo..hi` and m in [1, 2).
fn signed_pow2(rng: &mut Rng, lo: i32, hi: i32) -> f32 {
    let e = lo + ((rng.next_u64() >> 8) % (hi - lo) as u64) as i32;
    let m = 1.0 + rng.next_f32();
    let s = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
    s * m * 2f32.powi(e)
}

/// How the scale fields (and F32/F16 elements) are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scales {
    /// Random magnitudes 2^-12 … 2^4, random sign.
    Random,
    /// All 1 (the exact-integer case).
    One,
    /// ±f16::MAX (Q8_K's f32 scale too).
    Max,
    /// All zero.
    Zero,
}

fn scale(rng: &mut Rng, s: Scales) -> f32 {
    match s {
        Scales::Random => signed_pow2(rng, -12, 4),
        Scales::One => 1.0,
        Scales::Max => {
            if rng.next_u64() & 1 == 0 {
                f16::MAX.to_f32()
            } else {
                -f16::MAX.to_f32()
            }
        }
        Scales::Zero => 0.0,
    }
}

/// Byte offsets of the f16 scale fields (d, dmin / m) in a weight block.
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        Q4_0 | Q5_0 | Q8_0 | Iq4Nl | Iq4Xs => &[0],
        Q4_1 | Q5_1 | Q4K | Q5K => &[0, 2],
        Q2K => &[80, 82],
        Q3K => &[108],
        Q6K => &[208],
        _ => &[],
    }
}

fn put_f16(buf: &mut [u8], off: usize, v: f32) {
    buf[off..off + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

/// One test input: a weight row and its activation row.
struct Input {
    ty: GgmlType,
    n: usize,
    w: Vec<u8>,
    a: Vec<u8>,
}

/// `nb` blocks (elements for F32/F16). `fill`: every quant byte of both rows equals it
/// (all-equal blocks); otherwise random quants, activation quants in `-range..=range`.
fn make(ty: GgmlType, nb: usize, seed: u64, s: Scales, range: i32, fill: Option<u8>) -> Input {
    let mut rng = seeded_rng(seed);
    let at = act(ty);
    let n = nb * ty.block_len();
    if ty == F32 || ty == F16 {
        let elem = |rng: &mut Rng| match s {
            Scales::One => f32::from(uniform_i8(rng, range.min(100))),
            Scales::Max if ty == F32 => 1e18 * signed_pow2(rng, 0, 1).signum(),
            _ => scale(rng, s),
        };
        let mut w = Vec::new();
        let mut a = Vec::new();
        for _ in 0..n {
            let (x, y) = match fill {
                Some(f) => (f32::from(f as i8), f32::from(f as i8)),
                None => (elem(&mut rng), elem(&mut rng)),
            };
            if ty == F32 {
                w.extend_from_slice(&x.to_le_bytes());
                a.extend_from_slice(&y.to_le_bytes());
            } else {
                w.extend_from_slice(&f16::from_f32(x).to_le_bytes());
                a.extend_from_slice(&f16::from_f32(y).to_le_bytes());
            }
        }
        return Input { ty, n, w, a };
    }

    let (wb, ab) = (ty.block_bytes(), at.block_bytes());
    let mut w = vec![0u8; nb * wb];
    for b in 0..nb {
        let blk = &mut w[b * wb..(b + 1) * wb];
        for x in blk.iter_mut() {
            *x = fill.unwrap_or_else(|| rng.next_u8());
        }
        for &off in f16_fields(ty) {
            let v = scale(&mut rng, s);
            put_f16(blk, off, v);
        }
    }
    let mut a = vec![0u8; nb * ab];
    for b in 0..nb {
        let blk = &mut a[b * ab..(b + 1) * ab];
        let d = scale(&mut rng, s);
        let q: Vec<i8> = (0..at.block_len())
            .map(|_| fill.map_or_else(|| uniform_i8(&mut rng, range), |f| f as i8))
            .collect();
        let sum: i32 = q.iter().map(|&x| i32::from(x)).sum();
        match at {
            Q8_0 => {
                put_f16(blk, 0, d);
                for (i, &x) in q.iter().enumerate() {
                    blk[2 + i] = x as u8;
                }
            }
            Q8_1 => {
                put_f16(blk, 0, d);
                let d16 = f16::from_f32(d).to_f32();
                put_f16(blk, 2, d16 * sum as f32);
                for (i, &x) in q.iter().enumerate() {
                    blk[4 + i] = x as u8;
                }
            }
            Q8K => {
                blk[0..4].copy_from_slice(&d.to_le_bytes());
                for (i, &x) in q.iter().enumerate() {
                    blk[4 + i] = x as u8;
                }
                for g in 0..16 {
                    let bs: i32 = q[16 * g..16 * g + 16].iter().map(|&x| i32::from(x)).sum();
                    blk[260 + 2 * g..262 + 2 * g].copy_from_slice(&(bs as i16).to_le_bytes());
                }
            }
            _ => unreachable!(),
        }
    }
    Input { ty, n, w, a }
}

// ------------------------------------------------------------------ f64 reference

fn f16_at(b: &[u8], off: usize) -> f64 {
    f64::from(f16::from_le_bytes([b[off], b[off + 1]]).to_f32())
}

/// One weight block in element order: `(multiplier, integer quant, offset)` with
/// `weight = multiplier · quant + offset`, and the legacy min `m` (paired with Q8_1's `s`).
struct Decoded {
    elems: Vec<(f64, i32, f64)>,
    m: f64,
}

/// The six-bit scale and min `j` of Q4_K/Q5_K (ggml's `get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (i32, i32) {
    if j < 4 {
        (i32::from(q[j] & 63), i32::from(q[j + 4] & 63))
    } else {
        (
            i32::from((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4)),
            i32::from((q[j + 4] >> 4) | ((q[j] >> 6) << 4)),
        )
    }
}

/// The sixteen Q3_K scales (minus 32), unpacked through 32-bit words as ggml does.
fn q3k_scales(s: &[u8]) -> [i32; 16] {
    let word = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (a0, a1, t) = (word(0), word(1), word(2));
    let (k1, k2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
    let aux = [
        (a0 & k2) | ((t & k1) << 4),
        (a1 & k2) | (((t >> 2) & k1) << 4),
        ((a0 >> 4) & k2) | (((t >> 4) & k1) << 4),
        ((a1 >> 4) & k2) | (((t >> 6) & k1) << 4),
    ];
    std::array::from_fn(|k| i32::from((aux[k / 4] >> (8 * (k % 4))) as u8) - 32)
}

fn decode(ty: GgmlType, x: &[u8]) -> Decoded {
    let mut elems = Vec::with_capacity(ty.block_len());
    let mut m = 0.0;
    let nib = |qs: &[u8], i: usize| if i < 16 { qs[i] & 15 } else { qs[i - 16] >> 4 };
    match ty {
        Q4_0 | Iq4Nl => {
            let d = f16_at(x, 0);
            for i in 0..32 {
                let v = nib(&x[2..18], i);
                let q = if ty == Q4_0 {
                    i32::from(v) - 8
                } else {
                    i32::from(IQ4_LEVELS[usize::from(v)])
                };
                elems.push((d, q, 0.0));
            }
        }
        Q4_1 => {
            m = f16_at(x, 2);
            for i in 0..32 {
                elems.push((f16_at(x, 0), i32::from(nib(&x[4..20], i)), 0.0));
            }
        }
        Q5_0 | Q5_1 => {
            let o = if ty == Q5_0 { 2 } else { 4 };
            if ty == Q5_1 {
                m = f16_at(x, 2);
            }
            let qh = u32::from_le_bytes(x[o..o + 4].try_into().unwrap());
            for i in 0..32 {
                let v = i32::from(nib(&x[o + 4..o + 20], i)) | (((qh >> i) & 1) as i32) << 4;
                elems.push((f16_at(x, 0), if ty == Q5_0 { v - 16 } else { v }, 0.0));
            }
        }
        Q8_0 => {
            for i in 0..32 {
                elems.push((f16_at(x, 0), i32::from(x[2 + i] as i8), 0.0));
            }
        }
        Q2K => {
            let (d, dmin) = (f16_at(x, 80), f16_at(x, 82));
            for e in 0..256 {
                let (half, j, l) = (e / 128, (e % 128) / 32, e % 32);
                let q = (x[16 + 32 * half + l] >> (2 * j)) & 3;
                let sc = x[e / 16];
                elems.push((
                    d * f64::from(sc & 15),
                    i32::from(q),
                    -dmin * f64::from(sc >> 4),
                ));
            }
        }
        Q3K => {
            let d = f16_at(x, 108);
            let sc = q3k_scales(&x[96..108]);
            for e in 0..256 {
                let (half, j, l) = (e / 128, (e % 128) / 32, e % 32);
                let low = i32::from((x[32 + 32 * half + l] >> (2 * j)) & 3);
                let hbit = (x[l] >> (4 * half + j)) & 1;
                let q = low - if hbit == 1 { 0 } else { 4 };
                elems.push((d * f64::from(sc[e / 16]), q, 0.0));
            }
        }
        Q4K | Q5K => {
            let (d, dmin) = (f16_at(x, 0), f16_at(x, 2));
            let qs = if ty == Q4K { &x[16..144] } else { &x[48..176] };
            for e in 0..256 {
                let (j, hi, l) = (e / 64, (e % 64) / 32, e % 32);
                let mut q = i32::from((qs[32 * j + l] >> (4 * hi)) & 15);
                if ty == Q5K {
                    q |= i32::from((x[16 + l] >> (2 * j + hi)) & 1) << 4;
                }
                let (sc, mn) = scale_min_k4(e / 32, &x[4..16]);
                elems.push((d * f64::from(sc), q, -dmin * f64::from(mn)));
            }
        }
        Q6K => {
            let d = f16_at(x, 208);
            for e in 0..256 {
                let (half, quarter, l) = (e / 128, (e % 128) / 32, e % 32);
                let lb = x[64 * half + 32 * (quarter % 2) + l];
                let low = (lb >> (4 * (quarter / 2))) & 15;
                let high = (x[128 + 32 * half + l] >> (2 * quarter)) & 3;
                let q = i32::from(low | (high << 4)) - 32;
                let sc = f64::from(x[192 + e / 16] as i8);
                elems.push((d * sc, q, 0.0));
            }
        }
        Iq4Xs => {
            let d = f16_at(x, 0);
            let sh = u16::from_le_bytes([x[2], x[3]]);
            for e in 0..256 {
                let ib = e / 32;
                let ls = i32::from((x[4 + ib / 2] >> (4 * (ib % 2))) & 15)
                    | i32::from((sh >> (2 * ib)) & 3) << 4;
                let v = nib(&x[8 + 16 * ib..8 + 16 * ib + 16], e % 32);
                elems.push((
                    d * f64::from(ls - 32),
                    i32::from(IQ4_LEVELS[usize::from(v)]),
                    0.0,
                ));
            }
        }
        _ => unreachable!("{ty}"),
    }
    Decoded { elems, m }
}

/// `(Σ w·a, M)` in f64: the value and the sum of the magnitudes of its terms.
fn reference(inp: &Input) -> (f64, f64) {
    let (ty, at) = (inp.ty, act(inp.ty));
    if ty == F32 || ty == F16 {
        let get = |b: &[u8], i: usize| {
            if ty == F32 {
                f64::from(f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
            } else {
                f16_at(b, 2 * i)
            }
        };
        let (mut v, mut m) = (0.0, 0.0);
        for i in 0..inp.n {
            let p = get(&inp.w, i) * get(&inp.a, i);
            v += p;
            m += p.abs();
        }
        return (v, m);
    }
    let (mut v, mut mag) = (0.0, 0.0);
    let wblocks = inp.w.chunks_exact(ty.block_bytes());
    for (x, y) in wblocks.zip(inp.a.chunks_exact(at.block_bytes())) {
        let dec = decode(ty, x);
        let (da, qoff) = match at {
            Q8_0 => (f16_at(y, 0), 2),
            Q8_1 => (f16_at(y, 0), 4),
            _ => (
                f64::from(f32::from_le_bytes(y[0..4].try_into().unwrap())),
                4,
            ),
        };
        for (e, &(mult, q, off)) in dec.elems.iter().enumerate() {
            let a = da * f64::from(y[qoff + e] as i8);
            let t = mult * f64::from(q) * a;
            v += t + off * a;
            mag += t.abs() + (off * a).abs();
        }
        if at == Q8_1 {
            let t = dec.m * f16_at(y, 2);
            v += t;
            mag += t.abs();
        }
    }
    (v, mag)
}

// ------------------------------------------------------------------ checks

/// The level's own kernel for `ty` (never the scalar fallback); panics when it has none.
fn own(level: CpuLevel, ty: GgmlType) -> VecDotFn {
    simd_kernel(level, ty).unwrap_or_else(|| panic!("{ty} has no {level} kernel"))
}

fn scalar_kernel(ty: GgmlType) -> VecDotFn {
    kernel(CpuLevel::Scalar, ty).unwrap_or_else(|| panic!("no scalar kernel for {ty}"))
}

/// Runs every supported NEON level on `inp` and asserts the bounds of the module docs.
fn check(inp: &Input, what: &str) {
    let ty = inp.ty;
    let scalar = scalar_kernel(ty)(inp.n, &inp.w, &inp.a);
    let (r, m) = reference(inp);
    let nb = inp.n / ty.block_len();
    let tol = (nb as f64 + 4.0) * 2f64.powi(-23) * m;
    let exact = m < f64::from(1u32 << 24) && r.fract() == 0.0 && is_unit_scaled(inp);
    for level in levels() {
        let f = own(level, ty);
        let got = f(inp.n, &inp.w, &inp.a);
        // Odd addresses: the kernels must not assume any alignment.
        let (mut w1, mut a1) = (vec![0u8], vec![0u8, 0, 0]);
        w1.extend_from_slice(&inp.w);
        a1.extend_from_slice(&inp.a);
        let moved = f(inp.n, &w1[1..], &a1[3..]);
        assert!(
            moved.to_bits() == got.to_bits() || (moved.is_nan() && got.is_nan()),
            "{ty} {level} {what}: misaligned {moved} vs {got}"
        );
        let ctx = || {
            format!(
                "{ty} {level} {what} n={}: simd {got}, scalar {scalar}, f64 {r}, M {m}",
                inp.n
            )
        };
        if !scalar.is_finite() || !got.is_finite() {
            // Non-finite on both sides or neither; two infinities agree in sign. NaN against
            // Inf is allowed: the scalar kernels sum some types in lanes, where `Inf·0`
            // (a lane whose integer sum is 0) or `Inf − Inf` gives NaN for a row whose
            // total is ±Inf. A NaN input must give NaN: see the NaN test.
            assert!(
                !got.is_finite() && !scalar.is_finite(),
                "finite on one side only: {}",
                ctx()
            );
            if got.is_infinite() && scalar.is_infinite() {
                assert_eq!(got, scalar, "infinities of opposite sign: {}", ctx());
            }
            continue;
        }
        if exact {
            assert_eq!(
                got.to_bits(),
                scalar.to_bits(),
                "exact vs scalar: {}",
                ctx()
            );
            assert_eq!(f64::from(got), r, "exact vs f64: {}", ctx());
        }
        let (g, s) = (f64::from(got), f64::from(scalar));
        assert!((g - s).abs() <= tol, "vs scalar, tol {tol}: {}", ctx());
        assert!((g - r).abs() <= tol, "vs f64, tol {tol}: {}", ctx());
    }
}

/// Whether every scale field of both rows is 1 (or 0), or every F32/F16 element an integer,
/// so every term is an integer.
fn is_unit_scaled(inp: &Input) -> bool {
    let ty = inp.ty;
    if ty == F32 || ty == F16 {
        let int = |b: &[u8]| {
            (0..inp.n).all(|i| {
                let v = if ty == F32 {
                    f64::from(f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
                } else {
                    f16_at(b, 2 * i)
                };
                v.fract() == 0.0
            })
        };
        return int(&inp.w) && int(&inp.a);
    }
    let at = act(ty);
    let unit = |v: f64| v == 1.0 || v == 0.0;
    let w_ok = inp
        .w
        .chunks_exact(ty.block_bytes())
        .all(|b| f16_fields(ty).iter().all(|&o| unit(f16_at(b, o))));
    let a_ok = inp.a.chunks_exact(at.block_bytes()).all(|b| match at {
        Q8K => unit(f64::from(f32::from_le_bytes(b[0..4].try_into().unwrap()))),
        _ => unit(f16_at(b, 0)),
    });
    // Q8_1's s is an integer when d is 1, and the integrality test above covers it.
    w_ok && a_ok
}

fn max_blocks(ty: GgmlType) -> usize {
    match ty.block_len() {
        1 => 300,
        32 => 40,
        _ => 9,
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn detected_levels_match_the_emulated_cpu() {
    common::assert_expected_levels(&levels());
    assert!(CpuLevel::Neon.is_supported(), "every aarch64 CPU has NEON");
}

#[test]
fn every_type_has_its_own_kernel_at_every_supported_level() {
    for ty in TYPES {
        assert_eq!(activation_type(ty), Some(act(ty)), "{ty} pairing");
        for l in levels() {
            assert!(simd_kernel(l, ty).is_some(), "{ty} at {l}: scalar fallback");
            assert_eq!(fennec_quant::dot::kernel_path(l, ty), Some(l.name()));
        }
    }
}

#[test]
fn exact_integer_results_equal_scalar_bit_for_bit() {
    for ty in TYPES {
        for (nb, range) in [(1, 127), (2, 16), (3, 8), (max_blocks(ty), 2)] {
            for seed in 0..4 {
                // Narrow the activations until the case is exact (Q6_K's scales reach 128).
                let mut range = range;
                let inp = loop {
                    let inp = make(ty, nb, seed, Scales::One, range, None);
                    let (r, m) = reference(&inp);
                    if m < f64::from(1u32 << 24) && r.fract() == 0.0 {
                        break inp;
                    }
                    assert!(range > 1, "{ty}: no exact case");
                    range /= 2;
                };
                check(&inp, "unit scales");
            }
        }
    }
}

#[test]
fn adversarial_inputs() {
    for ty in TYPES {
        for nb in [1, 2, 3, max_blocks(ty)] {
            // Largest scales, full-range quants (i8 −128 included).
            for seed in 0..3 {
                check(&make(ty, nb, seed, Scales::Max, 128, None), "max scales");
            }
            // Zero scales: exactly zero.
            check(&make(ty, nb, 7, Scales::Zero, 128, None), "zero scales");
            // All-equal blocks, every quant byte the same.
            for fill in [0x00, 0xFF, 0x80, 0x7F, 0x88, 0x11, 0x55] {
                for s in [Scales::One, Scales::Random, Scales::Max] {
                    check(
                        &make(ty, nb, u64::from(fill), s, 128, Some(fill)),
                        "all-equal",
                    );
                }
            }
            // All-zero rows.
            let (wl, al) = (
                ty.row_bytes(nb as u64 * ty.block_len() as u64).unwrap() as usize,
                act(ty)
                    .row_bytes(nb as u64 * ty.block_len() as u64)
                    .unwrap() as usize,
            );
            let n = nb * ty.block_len();
            for l in levels() {
                let got = own(l, ty)(n, &vec![0; wl], &vec![0; al]);
                assert_eq!(got.to_bits(), 0, "{ty} {l} zero rows");
            }
        }
    }
}

#[test]
fn nan_and_inf_scales_propagate_as_in_scalar() {
    for ty in TYPES {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for nb in [1, 3] {
                for seed in 0..3 {
                    let mut inp = make(ty, nb, seed, Scales::Random, 128, None);
                    let blk = (seed as usize) % nb;
                    match seed {
                        // A weight scale (or element).
                        0 | 1 => {
                            let fields = f16_fields(ty);
                            if fields.is_empty() {
                                let i = blk * ty.block_len();
                                if ty == F32 {
                                    inp.w[4 * i..4 * i + 4].copy_from_slice(&bad.to_le_bytes());
                                } else {
                                    put_f16(&mut inp.w, 2 * i, bad);
                                }
                            } else {
                                let off =
                                    blk * ty.block_bytes() + fields[seed as usize % fields.len()];
                                put_f16(&mut inp.w, off, bad);
                            }
                        }
                        // An activation scale (or element).
                        _ => {
                            let at = act(ty);
                            let off = blk * ty.block_len() / at.block_len() * at.block_bytes();
                            match at {
                                F32 | Q8K => {
                                    inp.a[off..off + 4].copy_from_slice(&bad.to_le_bytes())
                                }
                                _ => put_f16(&mut inp.a, off, bad),
                            }
                        }
                    }
                    let scalar = scalar_kernel(ty)(inp.n, &inp.w, &inp.a);
                    if bad.is_nan() {
                        assert!(scalar.is_nan(), "{ty}: scalar should give NaN");
                        for l in levels() {
                            let got = own(l, ty)(inp.n, &inp.w, &inp.a);
                            assert!(got.is_nan(), "{ty} {l}: a NaN scale gave {got}");
                        }
                    }
                    check(&inp, "nan/inf");
                }
            }
        }
    }
}

/// Realistic rows: activations from the crate's own quantizer, weights random blocks.
#[test]
fn quantized_activations() {
    for ty in TYPES {
        let at = act(ty);
        if matches!(at, F32 | F16) {
            continue;
        }
        for nb in [1, 4] {
            let n = nb * ty.block_len();
            let mut rng = seeded_rng(nb as u64);
            let x: Vec<f32> = (0..n).map(|_| signed_pow2(&mut rng, -6, 2)).collect();
            let mut a = vec![0u8; at.row_bytes(n as u64).unwrap() as usize];
            fennec_quant::quantize_row(at, &x, &mut a).unwrap();
            let mut inp = make(ty, nb, 99, Scales::Random, 127, None);
            inp.a = a;
            check(&inp, "quantize_row activations");
        }
    }
}

fn prop_case(ty: GgmlType, nb: usize, seed: u64, mode: u8, range: i32) {
    let s = match mode {
        0 | 1 => Scales::Random,
        2 => Scales::One,
        _ => Scales::Max,
    };
    check(&make(ty, nb, seed, s, range, None), "proptest");
}

macro_rules! prop_tests {
    ($($name:ident => $ty:expr),* $(,)?) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $name(nb in 1usize..=max_blocks($ty), seed in any::<u64>(), mode in 0u8..4, range in prop::sample::select(vec![1, 8, 64, 127, 128])) {
                    prop_case($ty, nb, seed, mode, range);
                }
            )*
        }
    };
}

prop_tests! {
    prop_f32 => F32,
    prop_f16 => F16,
    prop_q4_0 => Q4_0,
    prop_q4_1 => Q4_1,
    prop_q5_0 => Q5_0,
    prop_q5_1 => Q5_1,
    prop_q8_0 => Q8_0,
    prop_q2_k => Q2K,
    prop_q3_k => Q3K,
    prop_q4_k => Q4K,
    prop_q5_k => Q5K,
    prop_q6_k => Q6K,
    prop_iq4_nl => Iq4Nl,
    prop_iq4_xs => Iq4Xs,
}
