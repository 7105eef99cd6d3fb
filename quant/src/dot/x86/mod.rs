//! x86-64 SIMD kernels (AVX2 + FMA + F16C, AVX-512 BW/VL/VNNI).
//!
//! * [`int`]: the quantized pairs. One body per weight type, generic over how an 8-bit
//!   multiply-accumulate is done ([`int::Avx2`]: `vpmaddubsw` + `vpmaddwd`; [`int::Vnni`]:
//!   `vpdpbusd`). Every block's integer sum is reduced exactly to one `i32` before it is
//!   multiplied by the block's float scale, so each block contributes `d * sumi` from the
//!   same integer as the scalar reference; only the rounding and order of the float steps
//!   differ. A block with a NaN/Inf scale is computed by the scalar reference itself, so
//!   non-finite values propagate exactly as there.
//! * [`float`]: F32, F16 and BF16 dot products with f32 FMA accumulators.
//! * Multi-vector kernels ([`kernel_multi`], in `int::multi`) for the 32-element quantized
//!   types, Q4_K, Q5_K and Q6_K: one weight row against `N` activation rows, each weight
//!   block unpacked once.
//!   They run the single-row kernel's arithmetic for every row (same block sums, same
//!   8-lane float accumulators, same FMA/add order, same scalar fix-up of non-finite
//!   scales), only interleaved, so their results are bit-identical to it.
//!
//! At the AVX-512 level Q4_K and Q6_K have 512-bit bodies (AVX-512 BW, with VNNI's
//! `vpdpwssd` doing the 16-bit sub-block scale multiply and the accumulation in one step);
//! the other K-quants and F16 use the AVX2 kernels (see `float::avx512` for F16).

use super::{VecDotFn, VecDotMultiFn};
use crate::{CpuLevel, GgmlType};

mod float;
mod int;

/// The SIMD kernel for `w` at `level` (already checked supported), if one exists.
pub(crate) fn kernel(level: CpuLevel, w: GgmlType) -> Option<VecDotFn> {
    match level {
        CpuLevel::Avx2 => int::avx2(w).or_else(|| float::avx2(w)),
        CpuLevel::Avx512 => int::avx512(w).or_else(|| float::avx512(w)),
        _ => None,
    }
}

/// The multi-vector kernel for `w` at `level` (already checked supported), if one exists.
pub(crate) fn kernel_multi<const N: usize>(
    level: CpuLevel,
    w: GgmlType,
) -> Option<VecDotMultiFn<N>> {
    match level {
        CpuLevel::Avx2 => int::avx2_multi::<N>(w).or_else(|| float::avx2_multi::<N>(w)),
        CpuLevel::Avx512 => int::avx512_multi::<N>(w).or_else(|| float::avx512_multi::<N>(w)),
        _ => None,
    }
}

/// Checks the [`VecDotFn`] contract for `n` elements of weight type `wt` in `w` and of
/// activation type `at` in `a`, and returns the number of blocks.
///
/// # Panics
/// If `n` is not a multiple of the block length or a slice is too short.
fn check_rows(n: usize, w: &[u8], a: &[u8], wt: GgmlType, at: GgmlType) -> usize {
    let len = wt.block_len();
    debug_assert_eq!(len, at.block_len());
    assert!(
        n.is_multiple_of(len),
        "{wt}·{at} dot: n = {n} is not a multiple of {len}"
    );
    let nb = n / len;
    let fits = |s: &[u8], t: GgmlType| {
        nb.checked_mul(t.block_bytes())
            .is_some_and(|need| s.len() >= need)
    };
    assert!(
        fits(w, wt),
        "{wt}·{at} dot: weight row of {} bytes holds fewer than {n} elements",
        w.len()
    );
    assert!(
        fits(a, at),
        "{wt}·{at} dot: activation row of {} bytes holds fewer than {n} elements",
        a.len()
    );
    nb
}

/// Horizontal sum of eight f32 lanes.
///
/// # Safety
/// Only inline into functions compiled with AVX enabled.
#[inline(always)]
unsafe fn hsum256_ps(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The little-endian IEEE half at `p` (any alignment), widened exactly to f32.
///
/// # Safety
/// `p` must be readable for 2 bytes; only inline into functions compiled with F16C.
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    use std::arch::x86_64::*;
    let h = p.cast::<u16>().read_unaligned();
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h))))
}
