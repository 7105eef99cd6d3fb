//! F32, F16 and BF16 rows (block length 1).

use half::f16;

use crate::bytes::{bf16_at, f16_at, f32_at};

pub(super) fn quantize_f32(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.iter().zip(dst.chunks_exact_mut(4)) {
        y.copy_from_slice(&x.to_le_bytes());
    }
}

pub(super) fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(4).zip(dst.iter_mut()) {
        *y = f32_at(x, 0);
    }
}

/// Round to nearest even, as ggml's `GGML_FP32_TO_FP16` and numpy's `astype(float16)`.
pub(super) fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.iter().zip(dst.chunks_exact_mut(2)) {
        y.copy_from_slice(&f16::from_f32(*x).to_le_bytes());
    }
}

pub(super) fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = f16_at(x, 0);
    }
}

/// ggml's `ggml_compute_fp32_to_bf16`: NaNs become quiet NaNs, others round to nearest even.
pub(crate) fn f32_to_bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return ((bits >> 16) | 0x0040) as u16;
    }
    ((u64::from(bits) + 0x7fff + u64::from((bits >> 16) & 1)) >> 16) as u16
}

pub(super) fn quantize_bf16(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.iter().zip(dst.chunks_exact_mut(2)) {
        y.copy_from_slice(&f32_to_bf16_bits(*x).to_le_bytes());
    }
}

pub(super) fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = bf16_at(x, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    #[test]
    fn bf16_rounding_matches_half() {
        // Includes exact ties below and above an even bf16 (1 + 2^-8, 1 + 3 * 2^-8).
        let ties = [f32::from_bits(0x3f80_8000), f32::from_bits(0x3f81_8000)];
        for x in [
            0.0f32,
            -1.5,
            1.0e-40,
            3.4e38,
            f32::INFINITY,
            ties[0],
            ties[1],
        ] {
            assert_eq!(f32_to_bf16_bits(x), bf16::from_f32(x).to_bits(), "{x}");
        }
        assert_eq!(f32_to_bf16_bits(f32::NAN) & 0x7fc0, 0x7fc0);
    }
}
