//! The scalar kernels (and whatever SIMD kernels this CPU runs) against a float reference:
//! the dot product of the dequantized weight row with the dequantized activation row.

use fennec_quant::dot::{activation_type, kernel};
use fennec_quant::rng::Rng;
use fennec_quant::{dequantize_row, quantize_row, vec_dot, CpuLevel, GgmlType, QuantError};

/// Weight types with a kernel, and their llama.cpp activation pairing.
const PAIRS: [(GgmlType, GgmlType); 15] = [
    (GgmlType::F32, GgmlType::F32),
    (GgmlType::F16, GgmlType::F16),
    (GgmlType::BF16, GgmlType::BF16),
    (GgmlType::Q4_0, GgmlType::Q8_0),
    (GgmlType::Q4_1, GgmlType::Q8_1),
    (GgmlType::Q5_0, GgmlType::Q8_0),
    (GgmlType::Q5_1, GgmlType::Q8_1),
    (GgmlType::Q8_0, GgmlType::Q8_0),
    (GgmlType::Q2K, GgmlType::Q8K),
    (GgmlType::Q3K, GgmlType::Q8K),
    (GgmlType::Q4K, GgmlType::Q8K),
    (GgmlType::Q5K, GgmlType::Q8K),
    (GgmlType::Q6K, GgmlType::Q8K),
    (GgmlType::Iq4Nl, GgmlType::Q8_0),
    (GgmlType::Iq4Xs, GgmlType::Q8K),
];

/// A deterministic pseudo-random row (xorshift), roughly uniform in [-1, 1).
fn row(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::xorshift64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
}

fn quantized(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; fennec_quant::row_bytes(ty, x.len()).unwrap()];
    quantize_row(ty, x, &mut q).unwrap();
    q
}

fn dequantized(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; n];
    dequantize_row(ty, q, &mut y).unwrap();
    y
}

/// Q4_1/Q5_1 kernels use Q8_1's stored `s = f16(d * sum(q))` for the min term, as ggml does;
/// its f16 rounding (relative 2^-11) is a legitimate difference from the float reference.
fn q8_1_sum_slack(w_ty: GgmlType, wq: &[u8], a_ty: GgmlType, aq: &[u8]) -> f64 {
    if a_ty != GgmlType::Q8_1 {
        return 0.0;
    }
    let f16_at = |b: &[u8]| f64::from(half::f16::from_le_bytes([b[2], b[3]]).to_f32());
    let slack: f64 = wq
        .chunks_exact(w_ty.block_bytes())
        .zip(aq.chunks_exact(a_ty.block_bytes()))
        .map(|(w, a)| (f16_at(w) * f16_at(a)).abs())
        .sum();
    slack * 2f64.powi(-11) / 1e-5
}

#[test]
fn activation_types_match_llama_cpp() {
    for (w, a) in PAIRS {
        assert_eq!(activation_type(w), Some(a), "{w}");
    }
    for t in [
        GgmlType::Iq2Xxs,
        GgmlType::Iq1S,
        GgmlType::I32,
        GgmlType::Q8K,
    ] {
        assert_eq!(activation_type(t), None, "{t}");
    }
}

#[test]
fn kernels_match_dequantized_reference_at_every_level() {
    let n = 1024;
    for (seed, (w_ty, a_ty)) in PAIRS.into_iter().enumerate() {
        let wq = quantized(w_ty, &row(n, seed as u64));
        let aq = quantized(a_ty, &row(n, 1000 + seed as u64));
        let wd = dequantized(w_ty, &wq, n);
        let ad = dequantized(a_ty, &aq, n);
        let want: f64 = wd
            .iter()
            .zip(&ad)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let scale: f64 = wd
            .iter()
            .zip(&ad)
            .map(|(x, y)| f64::from((x * y).abs()))
            .sum();
        let scale = scale + q8_1_sum_slack(w_ty, &wq, a_ty, &aq);
        for level in CpuLevel::ALL.into_iter().filter(|l| l.is_supported()) {
            let dot = kernel(level, w_ty).unwrap();
            let got = f64::from(dot(n, &wq, &aq));
            assert!(
                (got - want).abs() <= 1e-5 * scale + 1e-6,
                "{w_ty}·{a_ty} at {level}: got {got}, want {want}"
            );
        }
        let via_api = f64::from(vec_dot(w_ty, n, &wq, &aq).unwrap());
        assert!((via_api - want).abs() <= 1e-5 * scale + 1e-6);
    }
}

#[test]
fn vec_dot_validates_instead_of_panicking() {
    let n = 256;
    let w = quantized(GgmlType::Q4K, &row(n, 1));
    let a = quantized(GgmlType::Q8K, &row(n, 2));
    assert!(vec_dot(GgmlType::Q4K, n, &w, &a).is_ok());
    assert!(matches!(
        vec_dot(GgmlType::Q4K, n, &w[..w.len() - 1], &a),
        Err(QuantError::BufferSize { .. })
    ));
    assert!(matches!(
        vec_dot(GgmlType::Q4K, n, &w, &a[..a.len() - 1]),
        Err(QuantError::BufferSize { .. })
    ));
    assert!(matches!(
        vec_dot(GgmlType::Q4K, 100, &w, &a),
        Err(QuantError::NotBlockMultiple { .. })
    ));
    assert!(matches!(
        vec_dot(GgmlType::Iq2Xxs, n, &w, &a),
        Err(QuantError::Unsupported { .. })
    ));
}

#[test]
#[should_panic]
fn scalar_kernel_asserts_short_slices() {
    let dot = kernel(CpuLevel::Scalar, GgmlType::Q8_0).unwrap();
    dot(64, &[0u8; 34], &[0u8; 68]);
}

#[test]
fn zero_length_rows_dot_to_zero() {
    for (w_ty, _) in PAIRS {
        assert_eq!(vec_dot(w_ty, 0, &[], &[]).unwrap(), 0.0, "{w_ty}");
    }
}
