//! Row-level conversion between f32 and every supported block format.
//!
//! [`quantize_row`] follows ggml's reference quantizers (`quantize_row_*_ref`, round to
//! nearest, no importance matrix); [`dequantize_row`] follows `dequantize_row_*`.

mod float;
mod iq4;
mod kquants;
mod legacy;

use crate::{GgmlType, QuantError};

pub(crate) use iq4::IQ4_VALUES;
pub(crate) use kquants::{unpack_k4_scale_min, unpack_q3k_scales};

/// A row converter from f32 into the bytes of a type.
type QuantizeFn = fn(src: &[f32], dst: &mut [u8]);
/// A row converter from the bytes of a type into f32.
type DequantizeFn = fn(src: &[u8], dst: &mut [f32]);

/// The f32 → bytes converter for `ty`, if Fennec has one.
fn quantizer(ty: GgmlType) -> Option<QuantizeFn> {
    use GgmlType::*;
    Some(match ty {
        F32 => float::quantize_f32,
        F16 => float::quantize_f16,
        BF16 => float::quantize_bf16,
        Q4_0 => legacy::quantize_q4_0,
        Q4_1 => legacy::quantize_q4_1,
        Q5_0 => legacy::quantize_q5_0,
        Q5_1 => legacy::quantize_q5_1,
        Q8_0 => legacy::quantize_q8_0,
        Q8_1 => legacy::quantize_q8_1,
        Q2K => kquants::quantize_q2_k,
        Q3K => kquants::quantize_q3_k,
        Q4K => kquants::quantize_q4_k,
        Q5K => kquants::quantize_q5_k,
        Q6K => kquants::quantize_q6_k,
        Q8K => kquants::quantize_q8_k,
        Iq4Nl => iq4::quantize_iq4_nl,
        Iq4Xs => iq4::quantize_iq4_xs,
        _ => return None,
    })
}

/// The bytes → f32 converter for `ty`, if Fennec has one.
fn dequantizer(ty: GgmlType) -> Option<DequantizeFn> {
    use GgmlType::*;
    Some(match ty {
        F32 => float::dequantize_f32,
        F16 => float::dequantize_f16,
        BF16 => float::dequantize_bf16,
        Q4_0 => legacy::dequantize_q4_0,
        Q4_1 => legacy::dequantize_q4_1,
        Q5_0 => legacy::dequantize_q5_0,
        Q5_1 => legacy::dequantize_q5_1,
        Q8_0 => legacy::dequantize_q8_0,
        Q8_1 => legacy::dequantize_q8_1,
        Q2K => kquants::dequantize_q2_k,
        Q3K => kquants::dequantize_q3_k,
        Q4K => kquants::dequantize_q4_k,
        Q5K => kquants::dequantize_q5_k,
        Q6K => kquants::dequantize_q6_k,
        Q8K => kquants::dequantize_q8_k,
        Iq4Nl => iq4::dequantize_iq4_nl,
        Iq4Xs => iq4::dequantize_iq4_xs,
        _ => return None,
    })
}

/// Whether [`quantize_row`] and [`dequantize_row`] accept `ty`.
pub fn is_supported(ty: GgmlType) -> bool {
    quantizer(ty).is_some() && dequantizer(ty).is_some()
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
    let quantize = quantizer(ty).ok_or(QuantError::Unsupported { ty, op: "quantize" })?;
    check_bytes(ty, src.len(), dst.len(), "destination")?;
    quantize(src, dst);
    Ok(())
}

/// Dequantizes `src` (exactly the blocks of `dst.len()` elements of `ty`) into `dst`.
/// Matches ggml's `dequantize_row_*`; non-finite f16 scales propagate as NaN/Inf.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    let dequantize = dequantizer(ty).ok_or(QuantError::Unsupported {
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
