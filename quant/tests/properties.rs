//! Property tests: round-trip error bounds, and that bad shapes or hostile bytes give an
//! `Err` or a (possibly non-finite) number, never a panic.

use fennec_quant::rng::Rng;
use fennec_quant::{dequantize_row, quantize_row, row_bytes, vec_dot, GgmlType, QuantError};
use proptest::prelude::*;

/// Every type `quantize_row`/`dequantize_row` support.
const SUPPORTED: [GgmlType; 17] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Q8K,
    GgmlType::Iq4Nl,
    GgmlType::Iq4Xs,
];

fn round_trip(ty: GgmlType, x: &[f32]) -> Vec<f32> {
    let mut q = vec![0u8; row_bytes(ty, x.len()).unwrap()];
    quantize_row(ty, x, &mut q).unwrap();
    let mut y = vec![0.0f32; x.len()];
    dequantize_row(ty, &q, &mut y).unwrap();
    y
}

/// Largest per-element error allowed for a block whose inputs span `min..=max`.
fn max_error(ty: GgmlType, min: f32, max: f32) -> f32 {
    let amax = min.abs().max(max.abs());
    let range = max - min.min(0.0);
    // Slack for f16 rounding of scales and minimums: relative 2^-11 each, plus the absolute
    // step of f16 subnormals (2^-24) times the largest integer a scale multiplies.
    let f16_slack = amax * 2e-3 + 2f32.powi(-24) * subnormal_multiplier(ty);
    use GgmlType::*;
    match ty {
        F32 => 0.0,
        F16 => amax * 2f32.powi(-11) + 6e-8,
        BF16 => amax * 2f32.powi(-8),
        // The extreme of opposite sign to the chosen scale clamps one level short.
        Q4_0 => amax / 8.0 + f16_slack,
        Q5_0 => amax / 16.0 + f16_slack,
        Q4_1 => 0.5 * (max - min) / 15.0 + f16_slack,
        Q5_1 => 0.5 * (max - min) / 31.0 + f16_slack,
        Q8_0 | Q8_1 => 0.5 * amax / 127.0 + f16_slack,
        Q8K => 0.5 * amax / 127.0 * 1.0001 + 1e-9,
        // Searched scales: bound by a fraction of the super-block range.
        Q2K => 0.5 * range,
        Q3K => 0.3 * amax + f16_slack,
        Q4K => 0.1 * range + f16_slack,
        Q5K => 0.05 * range + f16_slack,
        Q6K => 0.03 * amax + f16_slack,
        Iq4Nl | Iq4Xs => 0.2 * amax + f16_slack,
        _ => unreachable!(),
    }
}

/// The largest integer factor an f16 super-scale is multiplied by in `ty`'s dequantization.
fn subnormal_multiplier(ty: GgmlType) -> f32 {
    use GgmlType::*;
    match ty {
        Q4_0 | Q4_1 => 16.0,
        Q5_0 | Q5_1 => 32.0,
        Q8_0 | Q8_1 | Iq4Nl => 128.0,
        Q2K => 64.0,
        Q3K => 128.0,
        Q4K => 63.0 * 16.0,
        Q5K => 63.0 * 32.0,
        Q6K => 128.0 * 32.0,
        Iq4Xs => 32.0 * 128.0,
        _ => 0.0,
    }
}

/// Root-mean-square error allowed relative to the input's RMS, for the searched formats.
fn max_relative_rmse(ty: GgmlType) -> Option<f32> {
    use GgmlType::*;
    match ty {
        Q2K => Some(0.5),
        Q3K => Some(0.25),
        Q4K | Iq4Nl | Iq4Xs => Some(0.12),
        Q5K => Some(0.06),
        Q6K => Some(0.03),
        _ => None,
    }
}

/// `y` = `ty`'s round trip of `x`: per-element error within [`max_error`] of its block and,
/// for the searched formats, RMS error within [`max_relative_rmse`].
fn check_round_trip(ty: GgmlType, x: &[f32], y: &[f32]) -> Result<(), TestCaseError> {
    let bl = ty.block_len().max(32);
    for (xb, yb) in x.chunks(bl).zip(y.chunks(bl)) {
        let min = xb.iter().copied().fold(f32::MAX, f32::min);
        let max = xb.iter().copied().fold(f32::MIN, f32::max);
        for (a, b) in xb.iter().zip(yb) {
            let bound = if ty.block_len() == 1 {
                max_error(ty, *a, *a)
            } else {
                max_error(ty, min, max)
            };
            prop_assert!((a - b).abs() <= bound, "{ty}: {a} -> {b}, bound {bound}");
        }
    }
    if let Some(rel) = max_relative_rmse(ty) {
        let n = x.len() as f32;
        let rms = (x.iter().map(|v| v * v).sum::<f32>() / n).sqrt();
        let err = (x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / n).sqrt();
        let slack = 2f32.powi(-24) * subnormal_multiplier(ty);
        prop_assert!(err <= rel * rms + slack, "{ty}: rmse {err} vs rms {rms}");
    }
    Ok(())
}

fn type_strategy() -> impl Strategy<Value = GgmlType> {
    proptest::sample::select(SUPPORTED.to_vec())
}

fn any_type() -> impl Strategy<Value = GgmlType> {
    proptest::sample::select(GgmlType::ALL.to_vec())
}

/// One super-block (256 elements, a multiple of every block length) at a random scale.
fn row_strategy() -> impl Strategy<Value = Vec<f32>> {
    (
        prop::collection::vec(-1.0f32..1.0, 256),
        prop::sample::select(vec![1e-3f32, 0.05, 1.0, 30.0, 1000.0]),
    )
        .prop_map(|(x, s)| x.into_iter().map(|v| v * s).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_error_is_bounded(ty in type_strategy(), x in row_strategy()) {
        check_round_trip(ty, &x, &round_trip(ty, &x))?;
    }

    #[test]
    fn quantize_is_deterministic_and_requantizes_stably(ty in type_strategy(), x in row_strategy()) {
        let mut a = vec![0u8; row_bytes(ty, x.len()).unwrap()];
        let mut b = a.clone();
        quantize_row(ty, &x, &mut a).unwrap();
        quantize_row(ty, &x, &mut b).unwrap();
        prop_assert_eq!(&a, &b);
        // Requantize what came out: values already on the format's grid.
        let mut y1 = vec![0.0f32; x.len()];
        dequantize_row(ty, &a, &mut y1).unwrap();
        let y2 = round_trip(ty, &y1);
        use GgmlType::*;
        match ty {
            // The scale is the block's extreme over a fixed integer (or a plain float
            // conversion), so a row on the grid finds the same scale and the same integers.
            F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | Iq4Nl => {
                for (i, (p, q)) in y1.iter().zip(&y2).enumerate() {
                    prop_assert_eq!(p.to_bits(), q.to_bits(), "{} [{}]: {} -> {}", ty, i, p, q);
                }
            }
            // An f32 scale amax/127 and its reciprocal: one rounding each.
            Q8K => {
                let amax = y1.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (p, q) in y1.iter().zip(&y2) {
                    prop_assert!((p - q).abs() <= amax * 2f32.powi(-22), "{ty}: {p} -> {q}");
                }
            }
            // Searched scales are not idempotent (Q3_K moves up to ~25 % of a block's
            // extreme): requantizing must still meet the round-trip bounds.
            _ => check_round_trip(ty, &y1, &y2)?,
        }
    }

    #[test]
    fn wrong_lengths_are_errors_not_panics(ty in any_type(), n in 0usize..600, m in 0usize..1200) {
        let src = vec![0.5f32; n];
        let mut dst = vec![0u8; m];
        let q = quantize_row(ty, &src, &mut dst);
        let mut out = vec![0.0f32; n];
        let d = dequantize_row(ty, &dst, &mut out);
        let exact = row_bytes(ty, n).ok() == Some(m);
        let supported = SUPPORTED.contains(&ty);
        prop_assert_eq!(q.is_ok(), exact && supported);
        prop_assert_eq!(d.is_ok(), exact && supported);
        if !supported {
            let unsupported = matches!(q, Err(QuantError::Unsupported { .. }));
            prop_assert!(unsupported);
        }
        let a = vec![0u8; m];
        let _ = vec_dot(ty, n, &dst, &a);
    }

    #[test]
    fn arbitrary_bytes_never_panic(ty in type_strategy(), seed in any::<u64>(), blocks in 1usize..4) {
        let n = blocks * 256;
        let len = row_bytes(ty, n).unwrap();
        let mut rng = Rng::xorshift64(seed | 1);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u8()).collect();
        let mut out = vec![0.0f32; n];
        dequantize_row(ty, &bytes, &mut out).unwrap();
        if let Some(a_ty) = fennec_quant::dot::activation_type(ty) {
            let a: Vec<u8> = bytes.iter().cycle().take(row_bytes(a_ty, n).unwrap()).copied().collect();
            let _ = vec_dot(ty, n, &bytes, &a).unwrap();
        }
        // Requantizing whatever came out (NaN and Inf included) must not panic either.
        let mut again = vec![0u8; len];
        quantize_row(ty, &out, &mut again).unwrap();
    }
}

/// ggml propagates non-finite scales: a NaN `d` makes the block NaN, an infinite `d` makes
/// it ±Inf (and NaN where the quant is 0). Fennec does the same and never panics.
#[test]
fn non_finite_f16_scales_propagate() {
    let nan = half::f16::NAN.to_le_bytes();
    let inf = half::f16::INFINITY.to_le_bytes();
    // Q4_0: d at 0, all nibbles 0x9 -> q - 8 = 1.
    let mut block = [0x99u8; 18];
    block[0..2].copy_from_slice(&nan);
    let mut y = [0.0f32; 32];
    dequantize_row(GgmlType::Q4_0, &block, &mut y).unwrap();
    assert!(y.iter().all(|v| v.is_nan()));
    block[0..2].copy_from_slice(&inf);
    dequantize_row(GgmlType::Q4_0, &block, &mut y).unwrap();
    assert!(y.iter().all(|v| *v == f32::INFINITY));
    block[2..].fill(0x88); // q - 8 = 0: 0 * Inf
    dequantize_row(GgmlType::Q4_0, &block, &mut y).unwrap();
    assert!(y.iter().all(|v| v.is_nan()));

    // Q4_K: d and dmin at 0 and 2.
    let mut k = vec![0x11u8; 144];
    k[0..2].copy_from_slice(&inf);
    k[2..4].copy_from_slice(&nan);
    let mut y = [0.0f32; 256];
    dequantize_row(GgmlType::Q4K, &k, &mut y).unwrap();
    assert!(y.iter().all(|v| !v.is_finite()));

    // The dot product carries the NaN through.
    let mut a = vec![0u8; 292];
    a[0..4].copy_from_slice(&1.0f32.to_le_bytes());
    a[4..260].fill(1);
    assert!(vec_dot(GgmlType::Q4K, 256, &k, &a).unwrap().is_nan());
}

#[test]
fn q8_k_block_sums_and_q8_1_sum_are_consistent() {
    let x: Vec<f32> = (0..512)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
        .collect();
    let mut q = vec![0u8; row_bytes(GgmlType::Q8K, 512).unwrap()];
    quantize_row(GgmlType::Q8K, &x, &mut q).unwrap();
    for block in q.chunks_exact(292) {
        for j in 0..16 {
            let sum: i32 = block[4 + 16 * j..20 + 16 * j]
                .iter()
                .map(|&b| i32::from(b as i8))
                .sum();
            let stored = i16::from_le_bytes([block[260 + 2 * j], block[261 + 2 * j]]);
            assert_eq!(sum, i32::from(stored));
        }
        // iscale = -127 / max, so the element of largest magnitude quantizes to -127.
        assert!(block[4..260].iter().any(|&b| b as i8 == -127));
    }
    let mut q1 = vec![0u8; row_bytes(GgmlType::Q8_1, 512).unwrap()];
    quantize_row(GgmlType::Q8_1, &x, &mut q1).unwrap();
    for block in q1.chunks_exact(36) {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        let s = half::f16::from_le_bytes([block[2], block[3]]).to_f32();
        let sum: i32 = block[4..].iter().map(|&b| i32::from(b as i8)).sum();
        // `s` is rounded from the unrounded scale, so compare within two f16 roundings.
        let want = sum as f32 * d;
        assert!(
            (s - want).abs() <= want.abs() * 2f32.powi(-10) + 1e-7,
            "{s} vs {want}"
        );
    }
}

#[test]
fn zero_rows_quantize_to_zero() {
    for ty in SUPPORTED {
        let y = round_trip(ty, &[0.0; 256]);
        assert!(y.iter().all(|v| *v == 0.0), "{ty}");
    }
}
