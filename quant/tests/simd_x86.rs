//! The x86-64 SIMD `vec_dot` kernels (AVX2, AVX-512) against the scalar reference.
//!
//! Error bound. Both implementations compute every block's integer dot product exactly;
//! they differ only in how the float block terms are rounded and in which order they are
//! added (scalar: in order, the K-quants in 8 lanes; SIMD: 8 lanes, one FMA per block,
//! then a tree). For `m` float operations in a chain, the rounding error is at most
//! `m · u · Σ|terms|` (`u = 2^-24`), so we assert
//!
//! `|simd − scalar| ≤ (chain + 16) · ε · mag`  (`ε = f32::EPSILON = 2u`)
//!
//! with `chain` = number of blocks (the scalar chain, the longest; for F32/F16/BF16 it is
//! `n / 8`, since the scalar sums in f64 and the SIMD in ≥ 8 lanes) and `mag` = the sum of
//! the magnitudes of every product that enters the result, computed from the dequantized
//! rows (the scale and minimum parts separately for the types with a minimum).
//! With unit scales every partial sum is an integer below 2^24 and the results must be
//! bit-identical. NaN/Inf scales: the SIMD result is NaN, +Inf or −Inf exactly when the
//! scalar one is.
//!
//! Every check runs the level's own kernel ([`simd_kernel`]), never the scalar fallback that
//! [`kernel`](fennec_quant::dot::kernel) would hand out for a missing one. A level this CPU
//! lacks is skipped with a line on stderr, unless `FENNEC_EXPECT_LEVELS` (e.g.
//! `avx2,avx512`) names it: then the detected levels must equal the list.
#![cfg(target_arch = "x86_64")]

mod common;

use fennec_quant::dot::{activation_type, kernel, simd_kernel, VecDotFn};
use fennec_quant::rng::Rng;
use fennec_quant::{dequantize_row, quantize_row, CpuLevel, GgmlType};
use half::f16;
use proptest::prelude::*;

use GgmlType as T;

/// Every type with x86 SIMD kernels.
const TYPES: [GgmlType; 15] = [
    T::F32,
    T::F16,
    T::BF16,
    T::Q4_0,
    T::Q4_1,
    T::Q5_0,
    T::Q5_1,
    T::Q8_0,
    T::Iq4Nl,
    T::Q2K,
    T::Q3K,
    T::Q4K,
    T::Q5K,
    T::Q6K,
    T::Iq4Xs,
];

/// The x86 SIMD levels.
const X86_LEVELS: [CpuLevel; 2] = [CpuLevel::Avx2, CpuLevel::Avx512];

/// The SIMD levels this CPU runs; the others are reported as skipped.
fn levels() -> Vec<CpuLevel> {
    X86_LEVELS
        .into_iter()
        .filter(|l| {
            let ok = l.is_supported();
            if !ok {
                eprintln!("simd_x86: skipping {l}: not supported by this CPU");
            }
            ok
        })
        .collect()
}

/// The level's own kernel for `ty`; panics when the level has none.
fn own(level: CpuLevel, ty: GgmlType) -> VecDotFn {
    simd_kernel(level, ty).unwrap_or_else(|| panic!("{ty} has no {level} kernel"))
}

fn is_float(ty: GgmlType) -> bool {
    matches!(ty, T::F32 | T::F16 | T::BF16)
}

/// Byte offsets of a weight block's f16 scale fields: (main scales, minimum scales).
fn weight_scales(ty: GgmlType) -> (&'static [usize], &'static [usize]) {
    match ty {
        T::Q4_0 | T::Q5_0 | T::Q8_0 | T::Iq4Nl | T::Iq4Xs => (&[0], &[]),
        T::Q4_1 | T::Q5_1 | T::Q4K | T::Q5K => (&[0], &[2]),
        T::Q2K => (&[80], &[82]),
        T::Q3K => (&[108], &[]),
        T::Q6K => (&[208], &[]),
        _ => (&[], &[]),
    }
}

// Inputs derive from a proptest-chosen seed through SplitMix64 (`Rng::new`): the seeds in
// simd_x86.proptest-regressions replay only with that stream.

/// Uniform in [-1, 1).
fn unit(rng: &mut Rng) -> f32 {
    rng.next_f32() * 2.0 - 1.0
}

/// `len` random bytes (the low byte of each draw).
fn bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// A finite scale of random sign with magnitude in about 2^-12 .. 2^6.
fn scale(rng: &mut Rng) -> f32 {
    let m = 1.0 + unit(rng).abs();
    let e = rng.below(18) as i32 - 12;
    let s = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
    s * m * 2f32.powi(e)
}

/// `len` floats: a mix of scales, with some outliers and runs of zeros.
fn floats(rng: &mut Rng, len: usize) -> Vec<f32> {
    let big = 1.0 + 100.0 * unit(rng).abs();
    (0..len)
        .map(|_| match rng.below(20) {
            0 => 0.0,
            1 => big * 10.0 * unit(rng),
            _ => big * unit(rng),
        })
        .collect()
}

fn put_f16(b: &mut [u8], off: usize, v: f32) {
    b[off..off + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; ty.row_bytes(x.len() as u64).unwrap() as usize];
    quantize_row(ty, x, &mut out).unwrap();
    out
}

fn dequantize(ty: GgmlType, b: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    dequantize_row(ty, b, &mut out).unwrap();
    out
}

/// Makes an activation row's bookkeeping consistent with its quants: no quant is −128,
/// Q8_1's `s = f16(d · Σq)`, Q8_K's `bsums` are the sums of each 16.
fn fix_activation(aty: GgmlType, a: &mut [u8]) {
    let bb = aty.block_bytes();
    for blk in a.chunks_exact_mut(bb) {
        let qs = match aty {
            T::Q8_0 => 2..34,
            T::Q8_1 => 4..36,
            T::Q8K => 4..260,
            _ => return,
        };
        for q in &mut blk[qs.clone()] {
            if *q == 0x80 {
                *q = 0x81;
            }
        }
        match aty {
            T::Q8_1 => {
                let sum: i32 = blk[4..36].iter().map(|&q| i32::from(q as i8)).sum();
                let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                put_f16(blk, 2, d * sum as f32);
            }
            T::Q8K => {
                for j in 0..16 {
                    let s: i32 = blk[4 + 16 * j..4 + 16 * j + 16]
                        .iter()
                        .map(|&q| i32::from(q as i8))
                        .sum();
                    blk[260 + 2 * j..262 + 2 * j].copy_from_slice(&(s as i16).to_le_bytes());
                }
            }
            _ => {}
        }
    }
}

/// Sets the activation block scale of every block.
fn set_activation_scale(aty: GgmlType, a: &mut [u8], mut f: impl FnMut() -> f32) {
    for blk in a.chunks_exact_mut(aty.block_bytes()) {
        match aty {
            T::Q8K => blk[0..4].copy_from_slice(&f().to_le_bytes()),
            _ => put_f16(blk, 0, f()),
        }
    }
}

/// One test input: `n` elements of weight row `w` and activation row `a`.
#[derive(Clone, Debug)]
struct Case {
    ty: GgmlType,
    n: usize,
    w: Vec<u8>,
    a: Vec<u8>,
}

/// How a case's bytes are made.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// Both rows quantized from random floats, as in inference.
    Quantized,
    /// Random weight bytes with random finite scales; random or quantized activations.
    RawBytes,
    /// Every scale at the f16 maximum (±65504), quants at their extremes.
    MaxMagnitude,
    /// Every block a copy of the first.
    AllEqual,
    /// All quant bytes zero (scales random), then every other block entirely zero.
    Zeros,
}

fn make_case(ty: GgmlType, blocks: usize, style: Style, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let aty = activation_type(ty).unwrap();
    let n = blocks * ty.block_len();
    if is_float(ty) {
        // Float rows: `blocks` is the element count.
        let n = blocks;
        let mut x = floats(&mut rng, n);
        let mut y = floats(&mut rng, n);
        match style {
            Style::MaxMagnitude => {
                let top: f32 = if ty == T::F16 { 65504.0 } else { 1.0e9 };
                x.iter_mut().for_each(|v| *v = top.copysign(*v));
                y.iter_mut().for_each(|v| *v = top.copysign(*v));
            }
            Style::AllEqual => y = x.clone(),
            Style::Zeros => x.iter_mut().step_by(2).for_each(|v| *v = 0.0),
            _ => {}
        }
        return Case {
            ty,
            n,
            w: quantize(ty, &x),
            a: quantize(aty, &y),
        };
    }
    let (wb, ab) = (ty.block_bytes(), aty.block_bytes());
    let (main, mins) = weight_scales(ty);
    let mut w = quantize(ty, &floats(&mut rng, n));
    let mut a = quantize(aty, &floats(&mut rng, n));
    match style {
        Style::Quantized => {}
        Style::RawBytes => {
            w = bytes(&mut rng, blocks * wb);
            for blk in w.chunks_exact_mut(wb) {
                for &off in main.iter().chain(mins) {
                    put_f16(blk, off, scale(&mut rng));
                }
            }
            if rng.next_u64() & 1 == 0 {
                a = bytes(&mut rng, blocks * ab);
                set_activation_scale(aty, &mut a, || scale(&mut rng));
            }
        }
        Style::MaxMagnitude => {
            let pattern = [0x00u8, 0xFF, 0x80, 0x7F, 0x0F, 0xF0][rng.below(6) as usize];
            w.iter_mut().for_each(|b| *b = pattern);
            for blk in w.chunks_exact_mut(wb) {
                for &off in main.iter().chain(mins) {
                    let s = if rng.next_u64() & 1 == 0 {
                        65504.0
                    } else {
                        -65504.0
                    };
                    put_f16(blk, off, s);
                }
            }
            let q = if rng.next_u64() & 1 == 0 { 127u8 } else { 0x81 };
            // Q8_1's stored sum `s = d · Σq` must stay a finite f16 too.
            let top = if aty == T::Q8_1 { 16.0 } else { 65504.0 };
            let mut sign = || if rng.next_u64() & 3 == 0 { -top } else { top };
            a.iter_mut().for_each(|b| *b = q);
            set_activation_scale(aty, &mut a, &mut sign);
        }
        Style::AllEqual => {
            let (w0, a0) = (w[..wb].to_vec(), a[..ab].to_vec());
            w.chunks_exact_mut(wb).for_each(|b| b.copy_from_slice(&w0));
            a.chunks_exact_mut(ab).for_each(|b| b.copy_from_slice(&a0));
        }
        Style::Zeros => {
            for (i, blk) in w.chunks_exact_mut(wb).enumerate() {
                if i % 2 == 1 {
                    blk.fill(0);
                    continue;
                }
                let keep: Vec<(usize, [u8; 2])> = main
                    .iter()
                    .chain(mins)
                    .map(|&o| (o, [blk[o], blk[o + 1]]))
                    .collect();
                blk.fill(0);
                for (o, v) in keep {
                    blk[o..o + 2].copy_from_slice(&v);
                }
            }
        }
    }
    fix_activation(aty, &mut a);
    Case { ty, n, w, a }
}

/// Σ|products| entering the result (see the module docs), from the dequantized rows.
fn magnitude(c: &Case) -> f64 {
    let aty = activation_type(c.ty).unwrap();
    let av = dequantize(aty, &c.a, c.n);
    let sum_abs = |w: &[u8]| -> f64 {
        let wv = dequantize(c.ty, w, c.n);
        wv.iter()
            .zip(&av)
            .map(|(x, y)| (f64::from(*x) * f64::from(*y)).abs())
            .sum()
    };
    let (main, mins) = weight_scales(c.ty);
    if mins.is_empty() {
        return sum_abs(&c.w);
    }
    // Scale part (minimums zeroed) plus minimum part (scales zeroed); the minimum part
    // bounds |m · s| and |dmin · Σ min · bsum| up to s's f16 rounding, hence the 1.01.
    let zeroed = |offs: &[usize]| {
        let mut w = c.w.clone();
        for blk in w.chunks_exact_mut(c.ty.block_bytes()) {
            for &o in offs {
                blk[o..o + 2].fill(0);
            }
        }
        w
    };
    sum_abs(&zeroed(mins)) + 1.01 * sum_abs(&zeroed(main))
}

/// The bytes at a start offset of `off` (0 = as allocated) into a fresh buffer.
fn shifted(b: &[u8], off: usize) -> Vec<u8> {
    let mut v = vec![0xA5u8; off + b.len()];
    v[off..].copy_from_slice(b);
    v
}

fn scalar_kernel(ty: GgmlType) -> VecDotFn {
    kernel(CpuLevel::Scalar, ty).expect("scalar kernel")
}

/// Runs `c` at every SIMD level (at start offset `off`) and checks the bound.
fn check_case(c: &Case, off: usize) -> Result<(), TestCaseError> {
    let want = scalar_kernel(c.ty)(c.n, &c.w, &c.a);
    let mag = magnitude(c);
    let chain = if is_float(c.ty) {
        c.n / 8
    } else {
        c.n / c.ty.block_len()
    };
    let tol = (chain + 16) as f64 * f64::from(f32::EPSILON) * mag + f64::from(f32::MIN_POSITIVE);
    let (w, a) = (shifted(&c.w, off), shifted(&c.a, off));
    for level in levels() {
        let got = own(level, c.ty)(c.n, &w[off..], &a[off..]);
        if !want.is_finite() {
            // Raw blocks can hold f16 infinities: then both sides must agree on the class.
            prop_assert!(
                (want.is_nan() && got.is_nan()) || want == got,
                "{} at {level}: n={} got {got} scalar {want}",
                c.ty,
                c.n
            );
            continue;
        }
        let err = (f64::from(got) - f64::from(want)).abs();
        prop_assert!(
            got.is_finite() && err <= tol,
            "{} at {level}: n={} got {got} scalar {want} |err| {err:e} > tol {tol:e} (mag {mag:e})",
            c.ty,
            c.n
        );
    }
    Ok(())
}

fn styles() -> impl Strategy<Value = Style> {
    prop_oneof![
        4 => Just(Style::Quantized),
        4 => Just(Style::RawBytes),
        1 => Just(Style::MaxMagnitude),
        1 => Just(Style::AllEqual),
        1 => Just(Style::Zeros),
    ]
}

fn types() -> impl Strategy<Value = GgmlType> {
    prop::sample::select(TYPES.to_vec())
}

/// Block count (element count for the float types): mostly small, sometimes many.
fn sizes(ty: GgmlType) -> impl Strategy<Value = usize> {
    if is_float(ty) {
        prop_oneof![1usize..80, 80usize..2100].boxed()
    } else if ty.block_len() == 32 {
        prop_oneof![1usize..20, 20usize..200].boxed()
    } else {
        prop_oneof![1usize..12, 12usize..40].boxed()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn simd_matches_scalar(
        (ty, blocks) in types().prop_flat_map(|t| (Just(t), sizes(t))),
        style in styles(),
        seed in any::<u64>(),
        off in 0usize..4,
    ) {
        let c = make_case(ty, blocks, style, seed);
        check_case(&c, off)?;
    }

    /// Unit scales: every partial sum is an integer below 2^24, so all float steps are
    /// exact and the SIMD and scalar results must be bit-identical.
    #[test]
    fn unit_scales_are_exact(
        (ty, blocks) in types().prop_filter("quantized", |t| !is_float(*t))
            .prop_flat_map(|t| (Just(t), 1usize..6)),
        seed in any::<u64>(),
    ) {
        let mut c = make_case(ty, blocks, Style::RawBytes, seed);
        let aty = activation_type(ty).unwrap();
        let (main, mins) = weight_scales(ty);
        for blk in c.w.chunks_exact_mut(ty.block_bytes()) {
            for &o in main.iter().chain(mins) {
                put_f16(blk, o, 1.0);
            }
        }
        // Small activation quants keep every partial sum well below 2^24.
        let qs = match aty { T::Q8K => 4..260, T::Q8_1 => 4..36, _ => 2..34 };
        for blk in c.a.chunks_exact_mut(aty.block_bytes()) {
            for q in &mut blk[qs.clone()] {
                *q = ((*q as i8) / 9) as u8;
            }
        }
        set_activation_scale(aty, &mut c.a, || 1.0);
        fix_activation(aty, &mut c.a);
        prop_assume!(magnitude(&c) < f64::from(1u32 << 24));
        let want = scalar_kernel(ty)(c.n, &c.w, &c.a);
        prop_assert_eq!(want, want.trunc());
        for level in levels() {
            let got = own(level, ty)(c.n, &c.w, &c.a);
            prop_assert_eq!(got.to_bits(), want.to_bits(), "{} at {}", ty, level);
        }
    }

    /// NaN / ±Inf in any scale field: the SIMD result is NaN/±Inf exactly when the
    /// scalar's is.
    #[test]
    fn non_finite_scales_propagate_like_scalar(
        (ty, blocks) in types().prop_filter("quantized", |t| !is_float(*t))
            .prop_flat_map(|t| (Just(t), 1usize..20)),
        style in styles(),
        seed in any::<u64>(),
        poison in prop::collection::vec((any::<bool>(), any::<u16>(), 0u8..3), 1..4),
    ) {
        let mut c = make_case(ty, blocks, style, seed);
        let aty = activation_type(ty).unwrap();
        let (main, mins) = weight_scales(ty);
        let fields: Vec<usize> = main.iter().chain(mins).copied().collect();
        for (in_weight, pick, kind) in poison {
            let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][kind as usize];
            let pick = usize::from(pick);
            if in_weight {
                let blk = pick % blocks;
                let off = blk * ty.block_bytes() + fields[pick % fields.len()];
                put_f16(&mut c.w, off, v);
            } else {
                let off = (pick % blocks) * aty.block_bytes();
                match aty {
                    T::Q8K => c.a[off..off + 4].copy_from_slice(&v.to_le_bytes()),
                    // Q8_1: the scale or the sum.
                    T::Q8_1 => put_f16(&mut c.a, off + 2 * (pick / blocks % 2), v),
                    _ => put_f16(&mut c.a, off, v),
                }
            }
        }
        let want = scalar_kernel(ty)(c.n, &c.w, &c.a);
        for level in levels() {
            let got = own(level, ty)(c.n, &c.w, &c.a);
            let class = |x: f32| (x.is_nan(), x.is_infinite() && x > 0.0, x.is_infinite() && x < 0.0);
            prop_assert_eq!(class(got), class(want), "{} at {}: got {} scalar {}", ty, level, got, want);
        }
    }
}

proptest! {
    /// NaN / ±Inf elements in F32, F16 and BF16 rows: the SIMD result is NaN/±Inf exactly
    /// when the scalar's is.
    #[test]
    fn non_finite_float_elements_propagate_like_scalar(
        ty in prop::sample::select(vec![T::F32, T::F16, T::BF16]),
        n in 1usize..300,
        seed in any::<u64>(),
        poison in prop::collection::vec((any::<bool>(), any::<u16>(), 0u8..3), 1..4),
    ) {
        let mut c = make_case(ty, n, Style::Quantized, seed);
        for (in_weight, pick, kind) in poison {
            let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][kind as usize];
            let row = if in_weight { &mut c.w } else { &mut c.a };
            let i = usize::from(pick) % n;
            match ty {
                T::F32 => row[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes()),
                T::F16 => put_f16(row, 2 * i, v),
                _ => row[2 * i..2 * i + 2].copy_from_slice(&((v.to_bits() >> 16) as u16).to_le_bytes()),
            }
        }
        let want = scalar_kernel(ty)(c.n, &c.w, &c.a);
        for level in levels() {
            let got = own(level, ty)(c.n, &c.w, &c.a);
            let class = |x: f32| (x.is_nan(), x.is_infinite() && x > 0.0, x.is_infinite() && x < 0.0);
            prop_assert_eq!(class(got), class(want), "{} at {}: got {} scalar {}", ty, level, got, want);
        }
    }
}

#[test]
fn detected_levels_are_the_expected_ones() {
    common::assert_expected_levels(&levels());
}

#[test]
fn every_type_has_its_own_kernel_at_every_supported_level() {
    for ty in TYPES {
        for level in levels() {
            assert!(
                simd_kernel(level, ty).is_some(),
                "{ty} at {level}: scalar fallback"
            );
            assert_eq!(
                fennec_quant::dot::kernel_path(level, ty),
                Some(level.name())
            );
        }
        assert!(simd_kernel(CpuLevel::Scalar, ty).is_none());
        assert_eq!(
            fennec_quant::dot::kernel_path(CpuLevel::Scalar, ty),
            Some("scalar")
        );
    }
    for level in X86_LEVELS.into_iter().filter(|l| !l.is_supported()) {
        assert!(
            simd_kernel(level, T::Q4_0).is_none(),
            "{level} is not runnable here"
        );
    }
}

#[test]
fn pairs_are_llama_cpp_pairs() {
    for ty in TYPES {
        let want = match ty {
            T::F32 | T::F16 | T::BF16 => ty,
            T::Q4_0 | T::Q5_0 | T::Q8_0 | T::Iq4Nl => T::Q8_0,
            T::Q4_1 | T::Q5_1 => T::Q8_1,
            _ => T::Q8K,
        };
        assert_eq!(activation_type(ty), Some(want), "{ty}");
    }
}

/// One block, and a long row, for every style, type and start offset.
#[test]
fn fixed_sizes_every_style() {
    for ty in TYPES {
        let long = if is_float(ty) {
            4099
        } else {
            16384 / ty.block_len()
        };
        for (i, blocks) in [1, 7, 8, 9, long].into_iter().enumerate() {
            for style in [
                Style::Quantized,
                Style::RawBytes,
                Style::MaxMagnitude,
                Style::AllEqual,
                Style::Zeros,
            ] {
                let c = make_case(ty, blocks, style, 0x5EED + i as u64);
                for off in [0, 1, 3] {
                    check_case(&c, off).unwrap();
                }
            }
        }
    }
}

/// Zero-length rows are fine and give 0.
#[test]
fn empty_rows() {
    for ty in TYPES {
        for level in levels() {
            assert_eq!(own(level, ty)(0, &[], &[]), 0.0, "{ty} at {level}");
        }
    }
}

#[test]
fn short_or_ragged_rows_panic() {
    for ty in TYPES {
        let aty = activation_type(ty).unwrap();
        let bl = ty.block_len();
        let w = vec![0u8; 2 * ty.block_bytes()];
        let a = vec![0u8; 2 * aty.block_bytes()];
        for level in levels() {
            let k = own(level, ty);
            let bad: [(usize, &[u8], &[u8]); 3] = [
                (3 * bl, &w, &a),
                (2 * bl, &w[..w.len() - 1], &a),
                (2 * bl, &w, &a[..a.len() - 1]),
            ];
            for (n, w, a) in bad {
                let r = std::panic::catch_unwind(|| k(n, w, a));
                assert!(r.is_err(), "{ty} at {level}: n={n} accepted");
            }
            if bl > 1 {
                let r = std::panic::catch_unwind(|| k(bl + 1, &w, &a));
                assert!(r.is_err(), "{ty} at {level}: ragged n accepted");
            }
        }
    }
}
