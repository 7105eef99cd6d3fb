//! Row-level conversion between f32 and every supported block format.
//!
//! [`quantize_row`] follows ggml's reference quantizers (`quantize_row_*_ref`, round to
//! nearest, no importance matrix); [`dequantize_row`] follows `dequantize_row_*`.

mod float;
mod iq4;
pub(crate) mod kquants;
mod legacy;

use crate::{GgmlType, QuantError};

pub(crate) use iq4::IQ4_VALUES;
pub(crate) use kquants::{unpack_k4_scale_min, unpack_q3k_scales};

/// A row converter from f32 into the bytes of a type.
type QuantizeFn = fn(src: &[f32], dst: &mut [u8]);
/// A row converter from the bytes of a type into f32.
type DequantizeFn = fn(src: &[u8], dst: &mut [f32]);

/// The f32 → bytes and bytes → f32 converters for `ty`, if Fennec has them: the one table
/// of the types [`quantize_row`] and [`dequantize_row`] accept.
fn converters(ty: GgmlType) -> Option<(QuantizeFn, DequantizeFn)> {
    use GgmlType::*;
    Some(match ty {
        F32 => (float::quantize_f32, float::dequantize_f32),
        F16 => (float::quantize_f16, float::dequantize_f16),
        BF16 => (float::quantize_bf16, float::dequantize_bf16),
        Q4_0 => (legacy::quantize_q4_0, legacy::dequantize_q4_0),
        Q4_1 => (legacy::quantize_q4_1, legacy::dequantize_q4_1),
        Q5_0 => (legacy::quantize_q5_0, legacy::dequantize_q5_0),
        Q5_1 => (legacy::quantize_q5_1, legacy::dequantize_q5_1),
        Q8_0 => (legacy::quantize_q8_0, legacy::dequantize_q8_0),
        Q8_1 => (legacy::quantize_q8_1, legacy::dequantize_q8_1),
        Q2K => (kquants::quantize_q2_k, kquants::dequantize_q2_k),
        Q3K => (kquants::quantize_q3_k, kquants::dequantize_q3_k),
        Q4K => (kquants::quantize_q4_k, kquants::dequantize_q4_k),
        Q5K => (kquants::quantize_q5_k, kquants::dequantize_q5_k),
        Q6K => (kquants::quantize_q6_k, kquants::dequantize_q6_k),
        Q8K => (kquants::quantize_q8_k, kquants::dequantize_q8_k),
        Iq4Nl => (iq4::quantize_iq4_nl, iq4::dequantize_iq4_nl),
        Iq4Xs => (iq4::quantize_iq4_xs, iq4::dequantize_iq4_xs),
        _ => return None,
    })
}

/// Whether [`quantize_row`] and [`dequantize_row`] accept `ty`.
pub fn is_supported(ty: GgmlType) -> bool {
    converters(ty).is_some()
}

/// Bytes of a row of `n` elements of `ty`, or the reason `n` is not a whole number of blocks.
pub fn row_bytes(ty: GgmlType, n: usize) -> Result<usize, QuantError> {
    let block_len = ty.block_len();
    if !n.is_multiple_of(block_len) {
        return Err(QuantError::NotBlockMultiple { ty, n, block_len });
    }
    Ok(n / block_len * ty.block_bytes())
}

/// Checks that a byte buffer is exactly the row of `n` elements of `ty`.
pub(crate) fn check_bytes(
    ty: GgmlType,
    n: usize,
    len: usize,
    what: &'static str,
) -> Result<(), QuantError> {
    let expected = row_bytes(ty, n)?;
    if len != expected {
        return Err(QuantError::BufferSize {
            ty,
            what,
            got: len,
            expected,
            unit: "bytes",
        });
    }
    Ok(())
}

/// Quantizes `src` (a whole number of blocks of `ty`) into `dst`, which must hold exactly
/// that many blocks. Matches ggml's `quantize_row_*_ref` (no importance matrix).
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    let (quantize, _) = converters(ty).ok_or(QuantError::Unsupported { ty, op: "quantize" })?;
    check_bytes(ty, src.len(), dst.len(), "destination")?;
    quantize(src, dst);
    Ok(())
}

/// Quantizes activation rows for a matmul as llama.cpp's CPU backend does at run time, which
/// for Q8_0 and Q8_1 is not the reference quantizer: its x86 SIMD path (AVX/AVX2) scales by
/// `127 / amax` and rounds half to even, its NEON path keeps `1 / d` but rounds half to even.
/// Other types, and the scalar level, use [`quantize_row`].
pub fn quantize_activations(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    quantize_activations_as(crate::cpu::level(), ty, src, dst)
}

/// [`quantize_activations`] as the kernels of `level` round, whatever this CPU runs: the
/// GPU kernels copy the x86 rounding, and their tests compare against it on any host.
pub fn quantize_activations_as(
    level: crate::CpuLevel,
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
) -> Result<(), QuantError> {
    let flavour = legacy::ActivationRounding::for_level(level);
    let quantize: QuantizeFn = match (ty, flavour) {
        (_, legacy::ActivationRounding::Reference) => return quantize_row(ty, src, dst),
        (GgmlType::Q8_0, legacy::ActivationRounding::X86) => legacy::quantize_q8_0_x86,
        (GgmlType::Q8_1, legacy::ActivationRounding::X86) => legacy::quantize_q8_1_x86,
        (GgmlType::Q8_0, legacy::ActivationRounding::Neon) => legacy::quantize_q8_0_neon,
        (GgmlType::Q8_1, legacy::ActivationRounding::Neon) => legacy::quantize_q8_1_neon,
        _ => return quantize_row(ty, src, dst),
    };
    check_bytes(ty, src.len(), dst.len(), "destination")?;
    quantize(src, dst);
    Ok(())
}

/// Dequantizes `src` (exactly the blocks of `dst.len()` elements of `ty`) into `dst`.
/// Matches ggml's `dequantize_row_*`; non-finite f16 scales propagate as NaN/Inf.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    let (_, dequantize) = converters(ty).ok_or(QuantError::Unsupported {
        ty,
        op: "dequantize",
    })?;
    check_bytes(ty, dst.len(), src.len(), "source")?;
    dequantize(src, dst);
    Ok(())
}

/// ggml's `nearest_int`: rounds to nearest, ties to even, via the 1.5·2^23 magic constant.
/// Only meaningful for |v| < 2^22, as in ggml (callers keep it in range).
#[inline(always)]
pub(crate) fn nearest_int(v: f32) -> i32 {
    let biased = (v + 12_582_912.0f32).to_bits() as i32;
    (biased & 0x007f_ffff) - 0x0040_0000
}

/// Magnitudes below this count as an all-zero group (ggml's `GROUP_MAX_EPS`).
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// The first element of largest magnitude in `x`, with its sign (0 for an empty/zero slice).
#[inline]
pub(crate) fn signed_abs_max(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

#[cfg(test)]
mod activation_tests {
    use super::*;
    use crate::CpuLevel;

    /// A block whose amax is 127 (so d = 1 in every flavour) and whose 2.5 and -0.5 sit on
    /// rounding ties: the reference rounds them away from zero, ggml's SIMD paths to even.
    #[test]
    fn simd_activation_rounding_breaks_ties_to_even() {
        let mut x = [0.0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -0.5;
        x[3] = 3.5;
        let mut reference = [0u8; 34];
        quantize_row(GgmlType::Q8_0, &x, &mut reference).unwrap();
        assert_eq!(&reference[2..6], &[127, 3, (-1i8) as u8, 4]);
        for flavour in [
            legacy::ActivationRounding::X86,
            legacy::ActivationRounding::Neon,
        ] {
            let mut simd = [0u8; 34];
            match flavour {
                legacy::ActivationRounding::X86 => legacy::quantize_q8_0_x86(&x, &mut simd),
                _ => legacy::quantize_q8_0_neon(&x, &mut simd),
            }
            assert_eq!(&simd[2..6], &[127, 2, 0, 4], "{flavour:?}");
            assert_eq!(simd[..2], reference[..2]);
        }
        // The run-time entry point follows the detected level.
        let mut run_time = [0u8; 34];
        quantize_activations(GgmlType::Q8_0, &x, &mut run_time).unwrap();
        let expected_tie = if crate::cpu::level() == CpuLevel::Scalar {
            3
        } else {
            2
        };
        assert_eq!(run_time[3], expected_tie);
    }

    /// x86's SIMD path multiplies by `127/amax`, the others by `1/(amax/127)`; the two
    /// differ in the last bit for some amax, which moves values near a tie.
    #[test]
    fn x86_activations_scale_by_127_over_amax() {
        // Search values just around rounding ties for a pair where the two scales disagree.
        let (amax, v, via_d, direct) = (1..2000)
            .map(|i| 0.05 + i as f32 * 1e-3)
            .filter_map(|amax| {
                let (via_d, direct) = (1.0 / (amax / 127.0), 127.0 / amax);
                (via_d != direct).then_some((amax, via_d, direct))
            })
            .flat_map(|(amax, via_d, direct)| {
                (0..126).flat_map(move |k| {
                    let tie = (k as f32 + 0.5) / direct;
                    [
                        tie,
                        f32::from_bits(tie.to_bits() + 1),
                        f32::from_bits(tie.to_bits() - 1),
                    ]
                    .map(|v| (amax, v, via_d, direct))
                })
            })
            .find(|&(_, v, via_d, direct)| {
                (v * via_d).round_ties_even() != (v * direct).round_ties_even()
            })
            .expect("some value rounds differently");
        let mut x = [0.0f32; 32];
        x[0] = amax;
        x[1] = v;
        let (mut x86, mut neon) = ([0u8; 36], [0u8; 36]);
        legacy::quantize_q8_1_x86(&x, &mut x86);
        legacy::quantize_q8_1_neon(&x, &mut neon);
        assert_eq!(x86[5] as i8, (v * direct).round_ties_even() as i8);
        assert_eq!(neon[5] as i8, (v * via_d).round_ties_even() as i8);
    }
}
