//! The multi-vector kernels ([`kernel_multi`]) and the grouped [`matmul`] against the
//! single-vector kernel of the same level: every result must be identical bit for bit
//! (NaN: NaN for NaN, see [`assert_same`]),
//! on random rows, on raw random blocks (any weight byte, NaN/Inf/subnormal scales) and
//! for every number of blocks around the kernels' batch of eight.

use fennec_quant::dot::{
    activation_type, kernel, kernel_multi4, kernel_multi8, widen_scales, VecDotMultiFn,
};
use fennec_quant::matmul::{arithmetic, matmul, ActivationBatch, OutputTile, WeightLayout};
use fennec_quant::rng::Rng;
use fennec_quant::{cpu, quantize_row, row_bytes, CpuLevel, GgmlType};

use GgmlType as T;

/// The weight types with multi-vector kernels on x86.
const MULTI_TYPES: [GgmlType; 9] = [
    T::Q4_0,
    T::Q4_1,
    T::Q5_0,
    T::Q5_1,
    T::Q8_0,
    T::Iq4Nl,
    T::Q4K,
    T::Q5K,
    T::Q6K,
];

/// Types `matmul` is checked on (with and without a multi-vector kernel).
const MATMUL_TYPES: [GgmlType; 10] = [
    T::Q4_0,
    T::Q4_1,
    T::Q5_0,
    T::Q5_1,
    T::Q8_0,
    T::Iq4Nl,
    T::Q4K,
    T::Q6K,
    T::Q5K,
    T::F16,
];

/// `n` floats uniform in `[-scale, scale)`.
fn floats(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

fn quantized(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; row_bytes(ty, x.len()).expect("whole blocks")];
    quantize_row(ty, x, &mut q).expect("supported type");
    q
}

/// f16 bit patterns for block scales, ordinary and adversarial.
const SPECIAL_HALVES: [u16; 10] = [
    0x3C00, // 1
    0xBC00, // -1
    0x0000, // 0
    0x8000, // -0
    0x0001, // smallest subnormal
    0x7BFF, // 65504
    0xFBFF, // -65504
    0x7C00, // inf
    0xFC00, // -inf
    0x7E00, // NaN
];

/// A random half: mostly finite values of moderate size, sometimes a special one.
fn half(rng: &mut Rng, adversarial: bool) -> u16 {
    if adversarial && rng.next_u8() < 40 {
        SPECIAL_HALVES[rng.next_u8() as usize % SPECIAL_HALVES.len()]
    } else {
        // Exponent 0x20..0x3F: roughly 2^-7 .. 2^8, either sign.
        let sign = u16::from(rng.next_u8() & 1) << 15;
        sign | ((0x20 + u16::from(rng.next_u8() % 0x1F)) << 10) | (rng.next_u64() as u16 & 0x3FF)
    }
}

/// Raw weight blocks: every byte random (adversarial: now and then a block of all-zero or
/// all-one bytes, the extreme quants and scales), the f16 scale fields (`d`, and `m` for
/// the types with a minimum) drawn by [`half`].
fn raw_weights(rng: &mut Rng, ty: GgmlType, nb: usize, adversarial: bool) -> Vec<u8> {
    let bb = ty.block_bytes();
    let fields: &[usize] = match ty {
        T::Q4_1 | T::Q5_1 | T::Q4K | T::Q5K => &[0, 2],
        T::Q6K => &[208],
        _ => &[0],
    };
    let mut w: Vec<u8> = (0..nb * bb).map(|_| rng.next_u8()).collect();
    for b in w.chunks_exact_mut(bb) {
        if adversarial && rng.next_u8() < 24 {
            b.fill(if rng.next_u8() & 1 == 0 { 0x00 } else { 0xFF });
        }
        for &f in fields {
            b[f..f + 2].copy_from_slice(&half(rng, adversarial).to_le_bytes());
        }
    }
    w
}

/// Raw Q8_0/Q8_1 activation blocks: quants anywhere in −127..=127 (the kernels'
/// precondition, as the quantizers produce), f16 fields drawn by [`half`].
fn raw_acts(rng: &mut Rng, ty: GgmlType, nb: usize, adversarial: bool) -> Vec<u8> {
    if ty == T::Q8K {
        return raw_q8k(rng, nb, adversarial);
    }
    let bb = ty.block_bytes();
    let halves = (bb - 32) / 2;
    let mut a = vec![0u8; nb * bb];
    for b in a.chunks_exact_mut(bb) {
        for h in 0..halves {
            b[2 * h..2 * h + 2].copy_from_slice(&half(rng, adversarial).to_le_bytes());
        }
        for q in &mut b[2 * halves..] {
            let x = rng.next_u8();
            *q = if x == 0x80 { 0x81 } else { x };
        }
        if rng.next_u8() < 16 {
            // Extremes.
            for q in &mut b[2 * halves..] {
                *q = if rng.next_u8() & 1 == 0 { 0x7F } else { 0x81 };
            }
        }
    }
    a
}

/// Raw Q8_K blocks: `d` an f32 (from [`half`], widened, or occasionally huge), quants in
/// −127..=127 (sometimes all ±127), `bsums` random i16 (the kernels only need them to be
/// the same for both).
fn raw_q8k(rng: &mut Rng, nb: usize, adversarial: bool) -> Vec<u8> {
    let mut a = vec![0u8; nb * 292];
    for b in a.chunks_exact_mut(292) {
        let mut d = half::f16::from_bits(half(rng, adversarial)).to_f32();
        if adversarial && rng.next_u8() < 16 {
            d = 3.0e38;
        }
        b[..4].copy_from_slice(&d.to_le_bytes());
        for q in &mut b[4..260] {
            let x = rng.next_u8();
            *q = if x == 0x80 { 0x81 } else { x };
        }
        if rng.next_u8() < 16 {
            // Extremes.
            for q in &mut b[4..260] {
                *q = if rng.next_u8() & 1 == 0 { 0x7F } else { 0x81 };
            }
        }
        for x in &mut b[260..] {
            *x = rng.next_u8();
        }
    }
    a
}

/// The x86 SIMD levels this CPU runs.
fn levels() -> Vec<CpuLevel> {
    CpuLevel::ALL
        .into_iter()
        .filter(|l| {
            let ok = l.is_supported();
            if !ok {
                eprintln!("multi_vec: skipping {l}: not supported by this CPU");
            }
            ok
        })
        .collect()
}

/// Bit-identical, except that any NaN equals any NaN: which NaN an x86 operation returns
/// depends on its operand order, which the compiler may commute (`a + b` = `b + a`), so
/// not even the single-vector kernel promises a NaN's sign or payload.
fn assert_same(got: f32, want: f32, what: &str) {
    if got.is_nan() && want.is_nan() {
        return;
    }
    assert_eq!(
        got.to_bits(),
        want.to_bits(),
        "{what}: multi {got:e} ({:#010x}) != single {want:e} ({:#010x})",
        got.to_bits(),
        want.to_bits()
    );
}

/// [`widen_scales`] of each row.
fn scales_of(ty: GgmlType, n: usize, a: &[&[u8]]) -> Vec<Vec<f32>> {
    let a_ty = activation_type(ty).expect("paired");
    a.iter()
        .map(|row| {
            let mut s = vec![f32::NAN; 3];
            widen_scales(a_ty, n, row, &mut s);
            s
        })
        .collect()
}

/// Checks the `N`-vector kernel `multi` against `kernel` on one weight row and the first
/// `N` rows of `acts`.
fn check_n<const N: usize>(
    multi: Option<VecDotMultiFn<N>>,
    level: CpuLevel,
    ty: GgmlType,
    n: usize,
    w: &[u8],
    acts: &[Vec<u8>],
    ctx: &str,
) {
    let single = kernel(level, ty).expect("single kernel");
    let multi = multi.expect("multi kernel");
    let a: [&[u8]; N] = std::array::from_fn(|k| acts[k].as_slice());
    let sc = scales_of(ty, n, &a);
    let got = multi(n, w, a, std::array::from_fn(|k| sc[k].as_slice()));
    for (k, &g) in got.iter().enumerate() {
        let want = single(n, w, a[k]);
        assert_same(
            g,
            want,
            &format!("{ty} at {level}, {N} wide, n = {n}, vector {k}, {ctx}"),
        );
    }
}

/// The widest group [`check_rows`] checks.
const MAX_WIDTH: usize = 8;

/// [`check_n`] for both group widths, 4 and 8.
fn check_rows(level: CpuLevel, ty: GgmlType, n: usize, w: &[u8], acts: &[Vec<u8>], ctx: &str) {
    assert!(acts.len() >= MAX_WIDTH);
    check_n::<4>(kernel_multi4(level, ty), level, ty, n, w, acts, ctx);
    check_n::<8>(kernel_multi8(level, ty), level, ty, n, w, acts, ctx);
}

#[test]
fn which_levels_have_multi_kernels() {
    for level in CpuLevel::ALL {
        for ty in MULTI_TYPES {
            let expect = cfg!(target_arch = "x86_64")
                && level.is_supported()
                && matches!(level, CpuLevel::Avx2 | CpuLevel::Avx512);
            assert_eq!(
                kernel_multi8(level, ty).is_some(),
                expect,
                "{ty} at {level}"
            );
            assert_eq!(
                kernel_multi4(level, ty).is_some(),
                expect,
                "{ty} at {level}"
            );
        }
        // Types without a multi-vector body fall back to the single kernels.
        for ty in [T::Q2K, T::Q3K, T::Iq4Xs, T::Q8K] {
            assert!(kernel_multi8(level, ty).is_none(), "{ty} at {level}");
        }
    }
}

/// The float weight types' multi-vector kernels: any length (every tail of the 8-, 16- and
/// 64-element loops), ordinary values and raw bit patterns (NaN, infinities, subnormals).
#[test]
fn float_multi_equals_single_for_every_length() {
    let mut rng = Rng::xorshift64star(0xF1_0A7);
    for level in levels() {
        for ty in [T::F32, T::F16, T::BF16] {
            let expect =
                matches!(level, CpuLevel::Avx2 | CpuLevel::Avx512) && cfg!(target_arch = "x86_64");
            assert_eq!(kernel_multi4(level, ty).is_some(), expect, "{ty} {level}");
            if !expect {
                continue;
            }
            let sz = ty.block_bytes();
            for n in (1..=200).chain([255, 256, 257, 577, 1408]) {
                for raw in [false, true] {
                    let row = |rng: &mut Rng| -> Vec<u8> {
                        if raw {
                            (0..n * sz).map(|_| rng.next_u8()).collect()
                        } else {
                            quantized(ty, &floats(rng, n, 2.0))
                        }
                    };
                    let w = row(&mut rng);
                    let acts: Vec<Vec<u8>> = (0..MAX_WIDTH).map(|_| row(&mut rng)).collect();
                    check_rows(level, ty, n, &w, &acts, &format!("n {n} raw {raw}"));
                }
            }
        }
    }
}

#[test]
fn multi_equals_single_on_quantized_rows() {
    let mut rng = Rng::xorshift64star(0x9E37_79B9_7F4A_7C15);
    for level in levels() {
        if kernel_multi8(level, T::Q8_0).is_none() {
            continue;
        }
        for ty in MULTI_TYPES {
            let a_ty = activation_type(ty).expect("paired");
            for nb in 1..=26 {
                let n = nb * ty.block_len();
                if n > 4096 {
                    continue;
                }
                for scale in [1.0f32, 1e-3, 300.0] {
                    let w = quantized(ty, &floats(&mut rng, n, scale));
                    let acts: Vec<Vec<u8>> = (0..MAX_WIDTH)
                        .map(|_| quantized(a_ty, &floats(&mut rng, n, scale)))
                        .collect();
                    check_rows(level, ty, n, &w, &acts, &format!("scale {scale}"));
                }
            }
        }
    }
}

#[test]
fn multi_equals_single_on_raw_blocks() {
    let mut rng = Rng::xorshift64star(0xD1B5_4A32_D192_ED03);
    for level in levels() {
        if kernel_multi8(level, T::Q8_0).is_none() {
            continue;
        }
        for ty in MULTI_TYPES {
            let a_ty = activation_type(ty).expect("paired");
            for nb in (1..=20).chain([31, 32, 33, 48]) {
                let n = nb * ty.block_len();
                for round in 0..6 {
                    let adversarial = round % 2 == 1;
                    let w = raw_weights(&mut rng, ty, nb, adversarial);
                    let acts: Vec<Vec<u8>> = (0..MAX_WIDTH)
                        .map(|_| raw_acts(&mut rng, a_ty, nb, adversarial))
                        .collect();
                    let ctx = format!("raw round {round}");
                    check_rows(level, ty, n, &w, &acts, &ctx);
                }
            }
        }
    }
}

#[test]
fn multi_accepts_longer_slices_and_ignores_the_tail() {
    let mut rng = Rng::xorshift64star(7);
    for level in levels() {
        if kernel_multi8(level, T::Q4_1).is_none() {
            continue;
        }
        let (ty, a_ty, n) = (T::Q4_1, T::Q8_1, 96);
        let mut w = quantized(ty, &floats(&mut rng, n + 64, 1.0));
        let acts: Vec<Vec<u8>> = (0..MAX_WIDTH)
            .map(|k| quantized(a_ty, &floats(&mut rng, n + 32 * (k + 1), 1.0)))
            .collect();
        check_rows(level, ty, n, &w, &acts, "long slices");
        let a: [&[u8]; 4] = std::array::from_fn(|k| acts[k].as_slice());
        // The scales of the first `n` elements only, as `matmul` passes them.
        let cut: Vec<&[u8]> = a
            .iter()
            .map(|r| &r[..row_bytes(a_ty, n).unwrap()])
            .collect();
        let sc = scales_of(ty, n, &cut);
        let multi = kernel_multi4(level, ty).expect("multi");
        let run = |w: &[u8]| multi(n, w, a, std::array::from_fn(|k| sc[k].as_slice()));
        let before = run(&w);
        let tail = row_bytes(ty, n).expect("whole blocks");
        w[tail..].fill(0xFF);
        assert_eq!(before.map(f32::to_bits), run(&w).map(f32::to_bits));
    }
}

#[test]
#[should_panic(expected = "activation row")]
fn multi_rejects_a_short_activation_row() {
    let level = levels()
        .into_iter()
        .find(|&l| kernel_multi4(l, T::Q8_0).is_some());
    let Some(level) = level else {
        panic!("activation row: no multi-vector kernel here; nothing to reject");
    };
    let multi = kernel_multi4(level, T::Q8_0).expect("multi");
    let w = vec![0u8; 2 * 34];
    let (long, short) = (vec![0u8; 2 * 34], vec![0u8; 34]);
    let sc = vec![1.0f32; 2];
    multi(64, &w, [&long, &long, &short, &long], [&sc, &sc, &sc, &sc]);
}

#[test]
#[should_panic(expected = "widened scales")]
fn multi_rejects_short_scales() {
    let level = levels()
        .into_iter()
        .find(|&l| kernel_multi4(l, T::Q4_1).is_some());
    let Some(level) = level else {
        panic!("widened scales: no multi-vector kernel here; nothing to reject");
    };
    let multi = kernel_multi4(level, T::Q4_1).expect("multi");
    let w = vec![0u8; 2 * 20];
    let a = vec![0u8; 2 * 36];
    // Q8_1 needs `d` and `s` for both blocks: four floats.
    let (ok, short) = (vec![1.0f32; 4], vec![1.0f32; 3]);
    multi(64, &w, [&a, &a, &a, &a], [&ok, &ok, &short, &ok]);
}

#[test]
fn widened_scales_match_the_f16_fields() {
    let mut rng = Rng::xorshift64star(99);
    for a_ty in [T::Q8_0, T::Q8_1] {
        let nb = 5;
        let a = raw_acts(&mut rng, a_ty, nb, true);
        let mut s = Vec::new();
        widen_scales(a_ty, nb * 32, &a, &mut s);
        let fields = if a_ty == T::Q8_1 { 2 } else { 1 };
        assert_eq!(s.len(), fields * nb);
        for f in 0..fields {
            for b in 0..nb {
                let at = b * a_ty.block_bytes() + 2 * f;
                let h = half::f16::from_bits(u16::from_le_bytes([a[at], a[at + 1]])).to_f32();
                assert!(
                    h.to_bits() == s[f * nb + b].to_bits()
                        || (h.is_nan() && s[f * nb + b].is_nan())
                );
            }
        }
    }
    let mut s = vec![1.0];
    widen_scales(T::Q8K, 256, &[0u8; 292], &mut s);
    assert!(s.is_empty());
}

/// `matmul` (which groups vectors by 8 and 4 where it can) against the single kernel
/// of the running level, pair by pair, for 1..=9 vectors and tiles split anywhere: for
/// the types whose matmul uses the `dot` arithmetic (the row-lane types have their own
/// test, `row_lane.rs`).
#[test]
fn matmul_equals_single_kernel_for_every_vector_count() {
    let mut rng = Rng::xorshift64star(0x1234_5678_9ABC_DEF1);
    let level = cpu::level();
    for ty in MATMUL_TYPES {
        if arithmetic(level, ty) != "dot" {
            continue;
        }
        let a_ty = activation_type(ty).expect("paired");
        let single = kernel(level, ty).expect("single kernel");
        let w_ty_len = ty.block_len();
        for (n_rows, n_cols) in [(1, 256), (5, 512), (13, 768)] {
            assert!(n_cols % w_ty_len == 0);
            let weights = quantized(ty, &floats(&mut rng, n_rows * n_cols, 1.0));
            let w_row = row_bytes(ty, n_cols).expect("whole blocks");
            for n_vecs in 1..=9 {
                let x = floats(&mut rng, n_vecs * n_cols, 2.0);
                let acts = ActivationBatch::quantize(ty, n_cols, &x).expect("quantize");
                assert_eq!(acts.ty(), a_ty);
                let stride = n_rows + 3;
                let mut out = vec![f32::NAN; n_vecs * stride];
                let cuts: Vec<usize> = if n_rows > 2 {
                    vec![1, n_rows - 1]
                } else {
                    vec![]
                };
                let tiles =
                    OutputTile::split(&mut out, n_rows, stride, n_vecs, &cuts).expect("split");
                for mut tile in tiles {
                    matmul(ty, WeightLayout::Rows, n_cols, &weights, &acts, &mut tile)
                        .expect("matmul");
                }
                for v in 0..n_vecs {
                    for r in 0..n_rows {
                        let want =
                            single(n_cols, &weights[r * w_row..(r + 1) * w_row], acts.row(v));
                        assert_same(
                            out[v * stride + r],
                            want,
                            &format!("matmul {ty} {n_rows}x{n_cols}, {n_vecs} vectors, row {r} vector {v}"),
                        );
                    }
                }
            }
        }
    }
}

/// A vector's result does not depend on which other vectors share its batch (batch,
/// micro-batch and one-token-at-a-time evaluation must agree).
#[test]
fn matmul_results_do_not_depend_on_batching() {
    let mut rng = Rng::xorshift64star(42);
    for ty in [T::Q4_1, T::Q8_0, T::Q4_0] {
        let (n_rows, n_cols, n_vecs) = (7, 576, 9);
        let weights = quantized(ty, &floats(&mut rng, n_rows * n_cols, 1.0));
        let x = floats(&mut rng, n_vecs * n_cols, 1.0);
        let run = |x: &[f32]| {
            let acts = ActivationBatch::quantize(ty, n_cols, x).expect("quantize");
            let nv = acts.n_vecs();
            let mut out = vec![0.0f32; nv * n_rows];
            let mut tile = OutputTile::whole(&mut out, n_rows, n_rows, nv).expect("tile");
            matmul(ty, WeightLayout::Rows, n_cols, &weights, &acts, &mut tile).expect("matmul");
            out
        };
        let whole = run(&x);
        let mut pieces = Vec::new();
        for chunk in [1usize, 3, 4, 1] {
            let start = pieces.len() / n_rows * n_cols;
            pieces.extend(run(&x[start..start + chunk * n_cols]));
        }
        assert_eq!(whole.len(), pieces.len());
        for (g, w) in pieces.iter().zip(&whole) {
            assert_same(*g, *w, &format!("{ty}: pieces vs whole batch"));
        }
    }
}
