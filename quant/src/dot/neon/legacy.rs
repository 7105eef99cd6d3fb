//! 32-element block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and IQ4_NL (with Q8_0 / Q8_1).
//!
//! Every function here is `unsafe`: the caller guarantees that `w` and `a` point to `n`
//! elements (`n / 32` blocks) of the weight and activation type, and that the CPU has the
//! features `D` needs. The safe wrappers in `mod.rs` check the former; dispatch, the latter.

use core::arch::aarch64::*;

use super::{f16_at, ld_s8, ld_u8, Dot};

const Q8_0_BYTES: usize = crate::GgmlType::Q8_0.block_bytes();
const Q8_1_BYTES: usize = crate::GgmlType::Q8_1.block_bytes();

/// IQ4_NL / IQ4_XS code book (the 16 non-linear levels), as the format defines it.
pub(super) const IQ4_LEVELS: [i8; 16] = crate::formats::IQ4_VALUES;

/// Integer dot of one block's 32 weights (`lo` = elements 0..16, `hi` = 16..32) with the
/// activation quants at `qa`.
#[inline(always)]
unsafe fn block_dot<D: Dot>(lo: int8x16_t, hi: int8x16_t, qa: *const u8) -> i32 {
    let p = D::dot(vdupq_n_s32(0), lo, ld_s8(qa));
    vaddvq_s32(D::dot(p, hi, ld_s8(qa.add(16))))
}

/// Splits 16 packed bytes into low nibbles (elements 0..16) and high nibbles (16..32).
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> (uint8x16_t, uint8x16_t) {
    let q = ld_u8(p);
    (vandq_u8(q, vdupq_n_u8(0x0f)), vshrq_n_u8::<4>(q))
}

/// The fifth bits of a Q5 block (`qh`, 32 bits little-endian) as bytes 0x10 / 0x00, for
/// elements 0..16 and 16..32.
#[inline(always)]
unsafe fn fifth_bits(qh: *const u8) -> (uint8x16_t, uint8x16_t) {
    let bits = vreinterpretq_u8_u32(vdupq_n_u32(u32::from_le(qh.cast::<u32>().read_unaligned())));
    // Byte k of the u32 goes to eight lanes; each lane tests one of its bits.
    const LO: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    const HI: [u8; 16] = [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3];
    const MASK: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    let mask = vld1q_u8(MASK.as_ptr());
    let sixteen = vdupq_n_u8(0x10);
    let lo = vtstq_u8(vqtbl1q_u8(bits, vld1q_u8(LO.as_ptr())), mask);
    let hi = vtstq_u8(vqtbl1q_u8(bits, vld1q_u8(HI.as_ptr())), mask);
    (vandq_u8(lo, sixteen), vandq_u8(hi, sixteen))
}

/// Q4_0·Q8_0: `Σ d_w·d_a·Σ(q−8)·a`.
#[inline(always)]
pub(super) unsafe fn q4_0<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 18;
    let eight = vdupq_n_s8(8);
    sum_blocks!(n / 32, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8_0_BYTES));
        let (lo, hi) = nibbles(wb.add(2));
        let lo = vsubq_s8(vreinterpretq_s8_u8(lo), eight);
        let hi = vsubq_s8(vreinterpretq_s8_u8(hi), eight);
        let isum = block_dot::<D>(lo, hi, ab.add(2));
        f16_at(wb) * f16_at(ab) * isum as f32
    })
}

/// Q4_1·Q8_1: `Σ d_w·d_a·Σq·a + m_w·s_a`.
#[inline(always)]
pub(super) unsafe fn q4_1<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 20;
    sum_blocks!(n / 32, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8_1_BYTES));
        let (lo, hi) = nibbles(wb.add(4));
        let isum = block_dot::<D>(vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi), ab.add(4));
        f16_at(wb) * f16_at(ab) * isum as f32 + f16_at(wb.add(2)) * f16_at(ab.add(2))
    })
}

/// Q5_0·Q8_0: `Σ d_w·d_a·Σ(q−16)·a`.
#[inline(always)]
pub(super) unsafe fn q5_0<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 22;
    let sixteen = vdupq_n_s8(16);
    sum_blocks!(n / 32, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8_0_BYTES));
        let (hlo, hhi) = fifth_bits(wb.add(2));
        let (lo, hi) = nibbles(wb.add(6));
        let lo = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, hlo)), sixteen);
        let hi = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(hi, hhi)), sixteen);
        let isum = block_dot::<D>(lo, hi, ab.add(2));
        f16_at(wb) * f16_at(ab) * isum as f32
    })
}

/// Q5_1·Q8_1: `Σ d_w·d_a·Σq·a + m_w·s_a`.
#[inline(always)]
pub(super) unsafe fn q5_1<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 24;
    sum_blocks!(n / 32, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8_1_BYTES));
        let (hlo, hhi) = fifth_bits(wb.add(4));
        let (lo, hi) = nibbles(wb.add(8));
        let lo = vreinterpretq_s8_u8(vorrq_u8(lo, hlo));
        let hi = vreinterpretq_s8_u8(vorrq_u8(hi, hhi));
        let isum = block_dot::<D>(lo, hi, ab.add(4));
        f16_at(wb) * f16_at(ab) * isum as f32 + f16_at(wb.add(2)) * f16_at(ab.add(2))
    })
}

/// Q8_0·Q8_0: `Σ d_w·d_a·Σq·a`.
#[inline(always)]
pub(super) unsafe fn q8_0<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    sum_blocks!(n / 32, |i| {
        let (wb, ab) = (w.add(i * Q8_0_BYTES), a.add(i * Q8_0_BYTES));
        let isum = block_dot::<D>(ld_s8(wb.add(2)), ld_s8(wb.add(18)), ab.add(2));
        f16_at(wb) * f16_at(ab) * isum as f32
    })
}

/// IQ4_NL·Q8_0: `Σ d_w·d_a·Σ levels[q]·a`.
#[inline(always)]
pub(super) unsafe fn iq4_nl<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 18;
    let levels = vld1q_s8(IQ4_LEVELS.as_ptr());
    sum_blocks!(n / 32, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8_0_BYTES));
        let (lo, hi) = nibbles(wb.add(2));
        let lo = vqtbl1q_s8(levels, lo);
        let hi = vqtbl1q_s8(levels, hi);
        let isum = block_dot::<D>(lo, hi, ab.add(2));
        f16_at(wb) * f16_at(ab) * isum as f32
    })
}
