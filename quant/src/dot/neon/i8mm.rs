//! `smmla` (FEAT_I8MM) kernels computing two weight rows × two activation rows at once.
//!
//! `smmla` multiplies a 2×8 int8 matrix (two 8-byte rows in one register) by the transpose
//! of another 2×8 matrix, adding the 2×2 result to four i32 lanes: lane `2i + j` gets
//! `row i of the first · row j of the second`. Pairing 8-byte slices of weight rows
//! `w0`, `w1` in the first register and of activation rows `a0`, `a1` in the second makes
//! every lane useful: `[w0·a0, w0·a1, w1·a0, w1·a1]`.
//!
//! With one activation row (the [`super::super::VecDotFn`] contract) only two of the four
//! lanes would be useful, so these are not handed out by `kernel`; they are here for a
//! future multi-row entry point and are tested against the dotprod kernels (bit-identical:
//! per lane they do exactly the float operations of the single-row kernels).

use core::arch::aarch64::*;
use core::arch::asm;

use super::{check, f16_at, ld_s8, ld_u8};
use crate::GgmlType;

const Q8_0_BYTES: usize = GgmlType::Q8_0.block_bytes();
const Q4_0_BYTES: usize = GgmlType::Q4_0.block_bytes();

/// `acc + smmla(x, y)`.
#[inline]
#[target_feature(enable = "i8mm")]
unsafe fn smmla(acc: int32x4_t, x: int8x16_t, y: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: register-only instruction; callers are compiled with `i8mm` and reached only
    // when the CPU has it.
    unsafe {
        asm!(
            "smmla {acc:v}.4s, {x:v}.16b, {y:v}.16b",
            acc = inout(vreg) acc,
            x = in(vreg) x,
            y = in(vreg) y,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// First 8 bytes of `x` then first 8 of `y`; and the same for the last 8.
#[inline(always)]
unsafe fn pair_rows(x: int8x16_t, y: int8x16_t) -> (int8x16_t, int8x16_t) {
    let (x, y) = (vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y));
    (
        vreinterpretq_s8_s64(vzip1q_s64(x, y)),
        vreinterpretq_s8_s64(vzip2q_s64(x, y)),
    )
}

/// Shared driver: `load(row, block)` gives a weight block's 32 values (elements 0..16,
/// 16..32) and its scale; activations are Q8_0. Returns `[w0·a0, w0·a1, w1·a0, w1·a1]`.
#[inline(always)]
unsafe fn drive_2x2(
    nb: usize,
    a: [*const u8; 2],
    mut load: impl FnMut(usize, usize) -> (int8x16_t, int8x16_t, f32),
) -> [f32; 4] {
    let mut s = [vdupq_n_f32(0.0); 2];
    for i in 0..nb {
        let (w0l, w0h, dw0) = load(0, i);
        let (w1l, w1h, dw1) = load(1, i);
        let (a0, a1) = (a[0].add(i * Q8_0_BYTES), a[1].add(i * Q8_0_BYTES));
        let (da0, da1) = (f16_at(a0), f16_at(a1));
        let mut acc = vdupq_n_s32(0);
        for (wx, wy, off) in [(w0l, w1l, 2), (w0h, w1h, 18)] {
            let (wlo, whi) = pair_rows(wx, wy);
            let (alo, ahi) = pair_rows(ld_s8(a0.add(off)), ld_s8(a1.add(off)));
            acc = smmla(acc, wlo, alo);
            acc = smmla(acc, whi, ahi);
        }
        let d = [dw0 * da0, dw0 * da1, dw1 * da0, dw1 * da1];
        let term = vmulq_f32(vld1q_f32(d.as_ptr()), vcvtq_f32_s32(acc));
        // Even blocks into s[0], odd into s[1], as `sum_blocks` does for one row.
        s[i % 2] = vaddq_f32(s[i % 2], term);
    }
    let mut out = [0.0f32; 4];
    vst1q_f32(out.as_mut_ptr(), vaddq_f32(s[0], s[1]));
    out
}

#[target_feature(enable = "neon,dotprod,i8mm")]
unsafe fn q8_0_inner(n: usize, w: [*const u8; 2], a: [*const u8; 2]) -> [f32; 4] {
    drive_2x2(n / 32, a, |r, i| {
        let b = w[r].add(i * Q8_0_BYTES);
        (ld_s8(b.add(2)), ld_s8(b.add(18)), f16_at(b))
    })
}

#[target_feature(enable = "neon,dotprod,i8mm")]
unsafe fn q4_0_inner(n: usize, w: [*const u8; 2], a: [*const u8; 2]) -> [f32; 4] {
    let (m4, eight) = (vdupq_n_u8(0x0f), vdupq_n_s8(8));
    drive_2x2(n / 32, a, |r, i| {
        let b = w[r].add(i * Q4_0_BYTES);
        let q = ld_u8(b.add(2));
        let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), eight);
        let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(q)), eight);
        (lo, hi, f16_at(b))
    })
}

/// The `[[w0·a0, w0·a1], [w1·a0, w1·a1]]` kernel type.
pub(crate) type Dot2x2Fn = fn(n: usize, w: [&[u8]; 2], a: [&[u8]; 2]) -> [[f32; 2]; 2];

fn check_2x2(ty: GgmlType, n: usize, w: [&[u8]; 2], a: [&[u8]; 2]) {
    check(ty, n, w[0], a[0]);
    check(ty, n, w[1], a[1]);
}

/// Lane `2r + c` as `[r][c]`.
fn to_2x2(v: [f32; 4]) -> [[f32; 2]; 2] {
    std::array::from_fn(|r| std::array::from_fn(|c| v[2 * r + c]))
}

/// Q8_0 rows × Q8_0 columns, two of each.
fn q8_0_2x2(n: usize, w: [&[u8]; 2], a: [&[u8]; 2]) -> [[f32; 2]; 2] {
    check_2x2(GgmlType::Q8_0, n, w, a);
    // SAFETY: lengths checked above; handed out by `kernel_2x2` only after
    // `CpuLevel::I8mm.is_supported()`.
    let v = unsafe {
        q8_0_inner(
            n,
            [w[0].as_ptr(), w[1].as_ptr()],
            [a[0].as_ptr(), a[1].as_ptr()],
        )
    };
    to_2x2(v)
}

/// Q4_0 rows × Q8_0 columns, two of each.
fn q4_0_2x2(n: usize, w: [&[u8]; 2], a: [&[u8]; 2]) -> [[f32; 2]; 2] {
    check_2x2(GgmlType::Q4_0, n, w, a);
    // SAFETY: as for `q8_0_2x2`.
    let v = unsafe {
        q4_0_inner(
            n,
            [w[0].as_ptr(), w[1].as_ptr()],
            [a[0].as_ptr(), a[1].as_ptr()],
        )
    };
    to_2x2(v)
}

/// The 2×2 i8mm kernel for `w`, when this CPU has i8mm and one exists (Q8_0, Q4_0).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn kernel_2x2(w: GgmlType) -> Option<Dot2x2Fn> {
    if !crate::CpuLevel::I8mm.is_supported() {
        return None;
    }
    match w {
        GgmlType::Q8_0 => Some(q8_0_2x2),
        GgmlType::Q4_0 => Some(q4_0_2x2),
        _ => None,
    }
}
