//! F32·F32 and F16·F16 (baseline NEON; the higher levels have nothing to add).
//!
//! Sixteen f32 lanes in four accumulators, fused multiply-add, summed pairwise at the end;
//! the tail (n mod 16) is added in order. F16 values are widened with `fcvtl`/`fcvtl2`
//! (base ARMv8; through `asm!` because the `float16x4_t` intrinsics are unstable). A product
//! of two f16 values is exact in f32, so for F16 only the summation rounds.

use core::arch::aarch64::*;
use core::arch::asm;

use super::{check, f16_at};
use crate::GgmlType;

/// Widens eight f16 (as raw bits) to two vectors of four f32.
///
/// # Safety
/// NEON (always present on aarch64).
#[inline(always)]
unsafe fn widen_f16(h: uint16x8_t) -> (float32x4_t, float32x4_t) {
    let lo: float32x4_t;
    let hi: float32x4_t;
    // SAFETY: register-only base-ARMv8 conversions.
    unsafe {
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    (lo, hi)
}

/// # Safety
/// `w` and `a` point to `n` f32 each (unaligned is fine).
#[target_feature(enable = "neon")]
unsafe fn f32_inner(n: usize, w: *const u8, a: *const u8) -> f32 {
    let (w, a) = (w.cast::<f32>(), a.cast::<f32>());
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        for (k, s) in acc.iter_mut().enumerate() {
            let x = vld1q_f32(w.add(i + 4 * k));
            let y = vld1q_f32(a.add(i + 4 * k));
            *s = vfmaq_f32(*s, x, y);
        }
        i += 16;
    }
    let mut sum = vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ));
    while i < n {
        sum += w.add(i).read_unaligned() * a.add(i).read_unaligned();
        i += 1;
    }
    sum
}

/// # Safety
/// `w` and `a` point to `n` f16 each (unaligned is fine).
#[target_feature(enable = "neon")]
unsafe fn f16_inner(n: usize, w: *const u8, a: *const u8) -> f32 {
    let (w, a) = (w.cast::<u16>(), a.cast::<u16>());
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        for k in 0..2 {
            let (x0, x1) = widen_f16(vld1q_u16(w.add(i + 8 * k)));
            let (y0, y1) = widen_f16(vld1q_u16(a.add(i + 8 * k)));
            acc[2 * k] = vfmaq_f32(acc[2 * k], x0, y0);
            acc[2 * k + 1] = vfmaq_f32(acc[2 * k + 1], x1, y1);
        }
        i += 16;
    }
    let mut sum = vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ));
    while i < n {
        sum += f16_at(w.add(i).cast()) * f16_at(a.add(i).cast());
        i += 1;
    }
    sum
}

/// F32·F32.
pub(super) fn f32_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(GgmlType::F32, n, w, a);
    // SAFETY: lengths checked just above; NEON is part of the aarch64 baseline and this kernel
    // is handed out only for NEON levels that `dot::kernel` has checked with `is_supported`.
    unsafe { f32_inner(n, w.as_ptr(), a.as_ptr()) }
}

/// F16·F16.
pub(super) fn f16_f16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(GgmlType::F16, n, w, a);
    // SAFETY: as for `f32_f32`.
    unsafe { f16_inner(n, w.as_ptr(), a.as_ptr()) }
}
