//! The 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the activation type Q8_1.

use super::signed_abs_max;
use crate::blocks::QK;
use crate::bytes::{f16_at, put_f16, u32_at};

/// Minimum and maximum of a block (ggml starts from ±FLT_MAX).
fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::MAX, -f32::MAX), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// `1/d`, or 0 when `d` is 0.
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Packs 32 values < 16: element j in the low nibble of byte j, element j+16 in the high.
fn pack_nibbles(q: &[u8; QK], out: &mut [u8]) {
    for j in 0..QK / 2 {
        out[j] = (q[j] & 0x0F) | ((q[j + QK / 2] & 0x0F) << 4);
    }
}

/// The fifth bits of 32 values < 32, element i at bit i.
fn fifth_bits(q: &[u8; QK]) -> [u8; 4] {
    let mut qh = 0u32;
    for (i, v) in q.iter().enumerate() {
        qh |= u32::from((v >> 4) & 1) << i;
    }
    qh.to_le_bytes()
}

/// The 32 nibbles of a block's `qs` in element order.
fn nibbles(qs: &[u8]) -> [u8; QK] {
    std::array::from_fn(|i| {
        if i < QK / 2 {
            qs[i] & 0x0F
        } else {
            qs[i - QK / 2] >> 4
        }
    })
}

/// The 32 five-bit values of a Q5 block.
fn five_bit_values(qh: u32, qs: &[u8]) -> [u8; QK] {
    let low = nibbles(qs);
    std::array::from_fn(|i| low[i] | ((((qh >> i) & 1) as u8) << 4))
}

pub(super) fn quantize_q4_0(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(18)) {
        let (_, max) = signed_abs_max(x);
        let d = max / -8.0;
        let id = inverse(d);
        put_f16(y, 0, d);
        // Truncation toward zero of a value >= 0, as ggml's (int8_t) cast.
        let q: [u8; QK] = std::array::from_fn(|j| ((x[j] * id + 8.5) as i8).min(15) as u8);
        pack_nibbles(&q, &mut y[2..18]);
    }
}

pub(super) fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(18).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(x, 0);
        for (out, q) in y.iter_mut().zip(nibbles(&x[2..18])) {
            *out = (i32::from(q) - 8) as f32 * d;
        }
    }
}

pub(super) fn quantize_q4_1(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(20)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        put_f16(y, 0, d);
        put_f16(y, 2, min);
        let q: [u8; QK] = std::array::from_fn(|j| (((x[j] - min) * id + 0.5) as i8).min(15) as u8);
        pack_nibbles(&q, &mut y[4..20]);
    }
}

pub(super) fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(20).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(x, 0), f16_at(x, 2));
        for (out, q) in y.iter_mut().zip(nibbles(&x[4..20])) {
            *out = f32::from(q) * d + m;
        }
    }
}

pub(super) fn quantize_q5_0(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(22)) {
        let (_, max) = signed_abs_max(x);
        let d = max / -16.0;
        let id = inverse(d);
        put_f16(y, 0, d);
        let q: [u8; QK] = std::array::from_fn(|j| ((x[j] * id + 16.5) as i8).min(31) as u8);
        y[2..6].copy_from_slice(&fifth_bits(&q));
        pack_nibbles(&q, &mut y[6..22]);
    }
}

pub(super) fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(22).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(x, 0);
        for (out, q) in y.iter_mut().zip(five_bit_values(u32_at(x, 2), &x[6..22])) {
            *out = (i32::from(q) - 16) as f32 * d;
        }
    }
}

pub(super) fn quantize_q5_1(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(24)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        put_f16(y, 0, d);
        put_f16(y, 2, min);
        // ggml casts to uint8_t without clamping; the value is in 0..=31 for finite input.
        let q: [u8; QK] = std::array::from_fn(|j| (((x[j] - min) * id + 0.5) as u8).min(31));
        y[4..8].copy_from_slice(&fifth_bits(&q));
        pack_nibbles(&q, &mut y[8..24]);
    }
}

pub(super) fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(24).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(x, 0), f16_at(x, 2));
        for (out, q) in y.iter_mut().zip(five_bit_values(u32_at(x, 4), &x[8..24])) {
            *out = f32::from(q) * d + m;
        }
    }
}

/// Q8_0/Q8_1 shared part: writes the quants at `qs` and returns `(d, sum of quants)`.
fn quantize_q8_block(x: &[f32], qs: &mut [u8]) -> (f32, i32) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = inverse(d);
    let mut sum = 0i32;
    for (q, v) in qs.iter_mut().zip(x) {
        // `round` is C's roundf (half away from zero); |v * id| <= 127.
        let qi = (v * id).round() as i8;
        sum += i32::from(qi);
        *q = qi as u8;
    }
    (d, sum)
}

/// How llama.cpp's CPU backend rounds Q8_0/Q8_1 activations at a kernel level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ActivationRounding {
    /// `quantize_row_q8_*_ref`: `x · (1/d)`, half away from zero.
    Reference,
    /// ggml's AVX/AVX2 `quantize_row_q8_*`: `x · (127/amax)`, half to even.
    X86,
    /// ggml's NEON `quantize_row_q8_*`: `x · (1/d)`, half to even.
    Neon,
}

impl ActivationRounding {
    pub(super) fn for_level(level: crate::CpuLevel) -> Self {
        use crate::CpuLevel::*;
        match level {
            Scalar => Self::Reference,
            Neon | Dotprod | I8mm => Self::Neon,
            _ => Self::X86,
        }
    }
}

/// One Q8 block as ggml's SIMD activation quantizers make it: `(d, sum of quants)`.
fn quantize_q8_block_simd(x: &[f32], qs: &mut [u8], x86: bool) -> (f32, i32) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if x86 {
        if amax != 0.0 {
            127.0 / amax
        } else {
            0.0
        }
    } else {
        inverse(d)
    };
    let mut sum = 0i32;
    for (q, v) in qs.iter_mut().zip(x) {
        // Ties to even, as `_mm256_round_ps(_MM_ROUND_NEAREST)` and `vcvtnq_s32_f32`;
        // |v * id| <= 127, well inside `nearest_int`'s range.
        let qi = super::nearest_int(v * id) as i8;
        sum += i32::from(qi);
        *q = qi as u8;
    }
    (d, sum)
}

fn quantize_q8_0_simd(src: &[f32], dst: &mut [u8], x86: bool) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(34)) {
        let (d, _) = quantize_q8_block_simd(x, &mut y[2..34], x86);
        put_f16(y, 0, d);
    }
}

fn quantize_q8_1_simd(src: &[f32], dst: &mut [u8], x86: bool) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(36)) {
        let (d, sum) = quantize_q8_block_simd(x, &mut y[4..36], x86);
        put_f16(y, 0, d);
        put_f16(y, 2, d * sum as f32);
    }
}

/// Q8_0 activations as ggml's x86 SIMD quantizer makes them.
pub(super) fn quantize_q8_0_x86(src: &[f32], dst: &mut [u8]) {
    quantize_q8_0_simd(src, dst, true);
}

/// Q8_1 activations as ggml's x86 SIMD quantizer makes them.
pub(super) fn quantize_q8_1_x86(src: &[f32], dst: &mut [u8]) {
    quantize_q8_1_simd(src, dst, true);
}

/// Q8_0 activations as ggml's NEON quantizer makes them.
pub(super) fn quantize_q8_0_neon(src: &[f32], dst: &mut [u8]) {
    quantize_q8_0_simd(src, dst, false);
}

/// Q8_1 activations as ggml's NEON quantizer makes them.
pub(super) fn quantize_q8_1_neon(src: &[f32], dst: &mut [u8]) {
    quantize_q8_1_simd(src, dst, false);
}

pub(super) fn quantize_q8_0(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(34)) {
        let (d, _) = quantize_q8_block(x, &mut y[2..34]);
        put_f16(y, 0, d);
    }
}

pub(super) fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(34).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(x, 0);
        for (out, q) in y.iter_mut().zip(&x[2..34]) {
            *out = f32::from(*q as i8) * d;
        }
    }
}

/// Q8_1 as ggml's `quantize_row_q8_1_ref`: Q8_0's quants plus `s = f16(sum(q) * d)`.
pub(super) fn quantize_q8_1(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(36)) {
        let (d, sum) = quantize_q8_block(x, &mut y[4..36]);
        put_f16(y, 0, d);
        put_f16(y, 2, sum as f32 * d);
    }
}

pub(super) fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(36).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(x, 0);
        for (out, q) in y.iter_mut().zip(&x[4..36]) {
            *out = f32::from(*q as i8) * d;
        }
    }
}
