//! 256-element super-block types: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS (with Q8_K).
//!
//! Every function here is `unsafe`: the caller guarantees that `w` and `a` point to `n`
//! elements (`n / 256` super-blocks) of the weight type and of Q8_K, and that the CPU has the
//! features `D` needs. The safe wrappers in `mod.rs` check the former; dispatch, the latter.
//!
//! Sub-block sums are scaled by their integer scale while still in vector lanes
//! (`isum += scale · lanes`) and reduced once per super-block; all of it is exact in i32
//! (the largest total, Q6_K/IQ4_XS, stays below 2^28).

use core::arch::aarch64::*;

use super::legacy::IQ4_LEVELS;
use super::{f16_at, f32_at, ld_s8, ld_u8, Dot};

/// Q8_K layout: `d: f32`, `qs: [i8; 256]`, `bsums: [i16; 16]`.
const Q8K_BYTES: usize = 292;
const Q8K_QS: usize = 4;
const Q8K_BSUMS: usize = 260;

/// `Σ mins[k] · bsums[k]` over the sixteen 16-element groups of a Q8_K block.
#[inline(always)]
unsafe fn mins_dot16(mins: [i16; 16], bsums: *const u8) -> i32 {
    let b0 = vld1q_s16(bsums.cast::<i16>());
    let b1 = vld1q_s16(bsums.add(16).cast::<i16>());
    let m0 = vld1q_s16(mins.as_ptr());
    let m1 = vld1q_s16(mins.as_ptr().add(8));
    let mut p = vmull_s16(vget_low_s16(b0), vget_low_s16(m0));
    p = vmlal_high_s16(p, b0, m0);
    p = vmlal_s16(p, vget_low_s16(b1), vget_low_s16(m1));
    p = vmlal_high_s16(p, b1, m1);
    vaddvq_s32(p)
}

/// `Σ mins[j] · (bsums[2j] + bsums[2j+1])` over the eight 32-element sub-blocks.
#[inline(always)]
unsafe fn mins_dot8(mins: [u8; 8], bsums: *const u8) -> i32 {
    let b0 = vld1q_s16(bsums.cast::<i16>());
    let b1 = vld1q_s16(bsums.add(16).cast::<i16>());
    // Pairwise: each sum of two bsums is at most 2·16·128 in magnitude, fits i16.
    let pairs = vpaddq_s16(b0, b1);
    let m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins.as_ptr())));
    let p = vmull_s16(vget_low_s16(pairs), vget_low_s16(m));
    vaddvq_s32(vmlal_high_s16(p, pairs, m))
}

/// The eight 6-bit scales and eight 6-bit mins packed in the 12 bytes of Q4_K/Q5_K.
#[inline(always)]
fn unpack_scale_min_k4(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 6) << 4);
        mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (sc, mn)
}

/// The sixteen 6-bit Q3_K scales (stored as `scale + 32`), minus 32.
#[inline(always)]
fn unpack_scales_q3k(s: &[u8; 12]) -> [i32; 16] {
    let mut out = [0i32; 16];
    for (k, o) in out.iter_mut().enumerate() {
        // Low four bits: nibble `k / 8` (0 = low) of byte `k % 8`.
        let low = (s[k % 8] >> (4 * (k / 8))) & 0x0f;
        // High two bits: bits 2·(k / 4) of byte 8 + k % 4.
        let high = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
        *o = i32::from(low | (high << 4)) - 32;
    }
    out
}

/// Reads the 12 packed scale bytes at `p`.
#[inline(always)]
unsafe fn scale_bytes(p: *const u8) -> [u8; 12] {
    p.cast::<[u8; 12]>().read_unaligned()
}

/// Q2_K·Q8_K: `Σ d_a·(d_w·Σ sc·Σq·a − dmin_w·Σ m·bsum)`.
#[inline(always)]
pub(super) unsafe fn q2_k<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 84;
    let three = vdupq_n_u8(3);
    sum_blocks!(n / 256, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8K_BYTES));
        let scales = wb.cast::<[u8; 16]>().read_unaligned();
        let mut mins = [0i16; 16];
        for (m, s) in mins.iter_mut().zip(scales) {
            *m = i16::from(s >> 4);
        }
        let msum = mins_dot16(mins, ab.add(Q8K_BSUMS));

        let qa = ab.add(Q8K_QS);
        let mut acc = vdupq_n_s32(0);
        for half in 0..2 {
            let q0 = ld_u8(wb.add(16 + 32 * half));
            let q1 = ld_u8(wb.add(16 + 32 * half + 16));
            for j in 0..4 {
                let sh = vdupq_n_s8(-2 * j as i8);
                let v0 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(q0, sh), three));
                let v1 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(q1, sh), three));
                let g = 8 * half + 2 * j;
                let e = 16 * g;
                let p0 = D::dot(vdupq_n_s32(0), v0, ld_s8(qa.add(e)));
                let p1 = D::dot(vdupq_n_s32(0), v1, ld_s8(qa.add(e + 16)));
                acc = vmlaq_n_s32(acc, p0, i32::from(scales[g] & 0x0f));
                acc = vmlaq_n_s32(acc, p1, i32::from(scales[g + 1] & 0x0f));
            }
        }
        let isum = vaddvq_s32(acc);
        let da = f32_at(ab);
        let d = f16_at(wb.add(80)) * da;
        let dmin = f16_at(wb.add(82)) * da;
        d * isum as f32 - dmin * msum as f32
    })
}

/// Q3_K·Q8_K: `Σ d_w·d_a·Σ sc·Σq·a`, q = low two bits − (high bit clear ? 4 : 0).
#[inline(always)]
pub(super) unsafe fn q3_k<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 110;
    let three = vdupq_n_u8(3);
    let one = vdupq_n_u8(1);
    let four = vdupq_n_s8(4);
    sum_blocks!(n / 256, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8K_BYTES));
        let scales = unpack_scales_q3k(&scale_bytes(wb.add(96)));
        let qa = ab.add(Q8K_QS);
        let mut h0 = ld_u8(wb);
        let mut h1 = ld_u8(wb.add(16));
        let mut acc = vdupq_n_s32(0);
        for half in 0..2 {
            let q0 = ld_u8(wb.add(32 + 32 * half));
            let q1 = ld_u8(wb.add(32 + 32 * half + 16));
            for j in 0..4 {
                let sh = vdupq_n_s8(-2 * j as i8);
                // (low2 | high·4) − 4 = low2 − 4·(1 − high).
                let v0 = vorrq_u8(
                    vandq_u8(vshlq_u8(q0, sh), three),
                    vshlq_n_u8::<2>(vandq_u8(h0, one)),
                );
                let v1 = vorrq_u8(
                    vandq_u8(vshlq_u8(q1, sh), three),
                    vshlq_n_u8::<2>(vandq_u8(h1, one)),
                );
                h0 = vshrq_n_u8::<1>(h0);
                h1 = vshrq_n_u8::<1>(h1);
                let v0 = vsubq_s8(vreinterpretq_s8_u8(v0), four);
                let v1 = vsubq_s8(vreinterpretq_s8_u8(v1), four);
                let g = 8 * half + 2 * j;
                let e = 16 * g;
                let p0 = D::dot(vdupq_n_s32(0), v0, ld_s8(qa.add(e)));
                let p1 = D::dot(vdupq_n_s32(0), v1, ld_s8(qa.add(e + 16)));
                acc = vmlaq_n_s32(acc, p0, scales[g]);
                acc = vmlaq_n_s32(acc, p1, scales[g + 1]);
            }
        }
        let isum = vaddvq_s32(acc);
        f16_at(wb.add(108)) * f32_at(ab) * isum as f32
    })
}

/// Q4_K·Q8_K: `Σ d_a·(d_w·Σ sc·Σq·a − dmin_w·Σ m·bsum)`.
#[inline(always)]
pub(super) unsafe fn q4_k<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 144;
    let m4 = vdupq_n_u8(0x0f);
    sum_blocks!(n / 256, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8K_BYTES));
        let (sc, mn) = unpack_scale_min_k4(&scale_bytes(wb.add(4)));
        let msum = mins_dot8(mn, ab.add(Q8K_BSUMS));
        let qa = ab.add(Q8K_QS);
        let mut acc = vdupq_n_s32(0);
        for j in 0..4 {
            let q0 = ld_u8(wb.add(16 + 32 * j));
            let q1 = ld_u8(wb.add(16 + 32 * j + 16));
            let e = 64 * j;
            let lo0 = vreinterpretq_s8_u8(vandq_u8(q0, m4));
            let lo1 = vreinterpretq_s8_u8(vandq_u8(q1, m4));
            let hi0 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q0));
            let hi1 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q1));
            let plo = D::dot(
                D::dot(vdupq_n_s32(0), lo0, ld_s8(qa.add(e))),
                lo1,
                ld_s8(qa.add(e + 16)),
            );
            let phi = D::dot(
                D::dot(vdupq_n_s32(0), hi0, ld_s8(qa.add(e + 32))),
                hi1,
                ld_s8(qa.add(e + 48)),
            );
            acc = vmlaq_n_s32(acc, plo, i32::from(sc[2 * j]));
            acc = vmlaq_n_s32(acc, phi, i32::from(sc[2 * j + 1]));
        }
        let isum = vaddvq_s32(acc);
        let da = f32_at(ab);
        let d = f16_at(wb) * da;
        let dmin = f16_at(wb.add(2)) * da;
        d * isum as f32 - dmin * msum as f32
    })
}

/// Q5_K·Q8_K: as Q4_K with a fifth bit per quant from `qh`.
#[inline(always)]
pub(super) unsafe fn q5_k<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 176;
    let m4 = vdupq_n_u8(0x0f);
    let one = vdupq_n_u8(1);
    sum_blocks!(n / 256, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8K_BYTES));
        let (sc, mn) = unpack_scale_min_k4(&scale_bytes(wb.add(4)));
        let msum = mins_dot8(mn, ab.add(Q8K_BSUMS));
        let qa = ab.add(Q8K_QS);
        let mut h0 = ld_u8(wb.add(16));
        let mut h1 = ld_u8(wb.add(32));
        let mut acc = vdupq_n_s32(0);
        for j in 0..4 {
            let q0 = ld_u8(wb.add(48 + 32 * j));
            let q1 = ld_u8(wb.add(48 + 32 * j + 16));
            let e = 64 * j;
            let lo0 = vorrq_u8(vandq_u8(q0, m4), vshlq_n_u8::<4>(vandq_u8(h0, one)));
            let lo1 = vorrq_u8(vandq_u8(q1, m4), vshlq_n_u8::<4>(vandq_u8(h1, one)));
            h0 = vshrq_n_u8::<1>(h0);
            h1 = vshrq_n_u8::<1>(h1);
            let hi0 = vorrq_u8(vshrq_n_u8::<4>(q0), vshlq_n_u8::<4>(vandq_u8(h0, one)));
            let hi1 = vorrq_u8(vshrq_n_u8::<4>(q1), vshlq_n_u8::<4>(vandq_u8(h1, one)));
            h0 = vshrq_n_u8::<1>(h0);
            h1 = vshrq_n_u8::<1>(h1);
            let plo = D::dot(
                D::dot(vdupq_n_s32(0), vreinterpretq_s8_u8(lo0), ld_s8(qa.add(e))),
                vreinterpretq_s8_u8(lo1),
                ld_s8(qa.add(e + 16)),
            );
            let phi = D::dot(
                D::dot(
                    vdupq_n_s32(0),
                    vreinterpretq_s8_u8(hi0),
                    ld_s8(qa.add(e + 32)),
                ),
                vreinterpretq_s8_u8(hi1),
                ld_s8(qa.add(e + 48)),
            );
            acc = vmlaq_n_s32(acc, plo, i32::from(sc[2 * j]));
            acc = vmlaq_n_s32(acc, phi, i32::from(sc[2 * j + 1]));
        }
        let isum = vaddvq_s32(acc);
        let da = f32_at(ab);
        let d = f16_at(wb) * da;
        let dmin = f16_at(wb.add(2)) * da;
        d * isum as f32 - dmin * msum as f32
    })
}

/// Q6_K·Q8_K: `Σ d_w·d_a·Σ sc·Σ(q−32)·a`.
#[inline(always)]
pub(super) unsafe fn q6_k<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 210;
    let m4 = vdupq_n_u8(0x0f);
    let m3 = vdupq_n_u8(0x30);
    let off = vdupq_n_s8(32);
    sum_blocks!(n / 256, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8K_BYTES));
        let scales = wb.add(192).cast::<[i8; 16]>().read_unaligned();
        let qa = ab.add(Q8K_QS);
        let mut acc = vdupq_n_s32(0);
        for half in 0..2 {
            let ql = wb.add(64 * half);
            let qh = wb.add(128 + 32 * half);
            let l = [
                ld_u8(ql),
                ld_u8(ql.add(16)),
                ld_u8(ql.add(32)),
                ld_u8(ql.add(48)),
            ];
            let h = [ld_u8(qh), ld_u8(qh.add(16))];
            // 32-element chunk c of this half: low nibbles of ql[0..32] (c = 0) or ql[32..64]
            // (c = 1), high nibbles of the same (c = 2, 3); high bits 2c..2c+2 of qh[0..32].
            for c in 0..4 {
                let (l0, l1) = if c % 2 == 0 {
                    (l[0], l[1])
                } else {
                    (l[2], l[3])
                };
                let (l0, l1) = if c < 2 {
                    (vandq_u8(l0, m4), vandq_u8(l1, m4))
                } else {
                    (vshrq_n_u8::<4>(l0), vshrq_n_u8::<4>(l1))
                };
                // Bring qh bits 2c, 2c+1 to positions 4, 5.
                let sh = vdupq_n_s8(4 - 2 * c as i8);
                let h0 = vandq_u8(vshlq_u8(h[0], sh), m3);
                let h1 = vandq_u8(vshlq_u8(h[1], sh), m3);
                let v0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l0, h0)), off);
                let v1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l1, h1)), off);
                let g = 8 * half + 2 * c;
                let e = 16 * g;
                let p0 = D::dot(vdupq_n_s32(0), v0, ld_s8(qa.add(e)));
                let p1 = D::dot(vdupq_n_s32(0), v1, ld_s8(qa.add(e + 16)));
                acc = vmlaq_n_s32(acc, p0, i32::from(scales[g]));
                acc = vmlaq_n_s32(acc, p1, i32::from(scales[g + 1]));
            }
        }
        let isum = vaddvq_s32(acc);
        f16_at(wb.add(208)) * f32_at(ab) * isum as f32
    })
}

/// IQ4_XS·Q8_K: `Σ d_w·d_a·Σ (ls−32)·Σ levels[q]·a`.
#[inline(always)]
pub(super) unsafe fn iq4_xs<D: Dot>(n: usize, w: *const u8, a: *const u8) -> f32 {
    const WB: usize = 136;
    let levels = vld1q_s8(IQ4_LEVELS.as_ptr());
    let m4 = vdupq_n_u8(0x0f);
    sum_blocks!(n / 256, |i| {
        let (wb, ab) = (w.add(i * WB), a.add(i * Q8K_BYTES));
        let scales_h = u16::from_le(wb.add(2).cast::<u16>().read_unaligned());
        let scales_l = wb.add(4).cast::<[u8; 4]>().read_unaligned();
        let qa = ab.add(Q8K_QS);
        let mut acc = vdupq_n_s32(0);
        for ib in 0..8 {
            let ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) as i32
                | ((((scales_h >> (2 * ib)) & 3) as i32) << 4);
            let q = ld_u8(wb.add(8 + 16 * ib));
            let lo = vqtbl1q_s8(levels, vandq_u8(q, m4));
            let hi = vqtbl1q_s8(levels, vshrq_n_u8::<4>(q));
            let e = 32 * ib;
            let p = D::dot(
                D::dot(vdupq_n_s32(0), lo, ld_s8(qa.add(e))),
                hi,
                ld_s8(qa.add(e + 16)),
            );
            acc = vmlaq_n_s32(acc, p, ls - 32);
        }
        let isum = vaddvq_s32(acc);
        f16_at(wb) * f32_at(ab) * isum as f32
    })
}
