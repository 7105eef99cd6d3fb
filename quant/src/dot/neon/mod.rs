//! aarch64 NEON kernels (baseline, dotprod, i8mm).
//!
//! Every int8 kernel body is written once, generic over [`Dot`] (how sixteen int8 pairs are
//! multiplied and accumulated into four i32 lanes), and instantiated twice:
//!
//! - [`Mull`]: baseline NEON, `smull`/`smull2` to i16 then `sadalp` into i32 (exact);
//! - [`Sdot`]: the dot-product extension's `sdot` (through `asm!`: `vdotq_s32` is unstable
//!   on stable Rust).
//!
//! Bodies only ever reduce whole [`Dot`] results (horizontally, or after scaling every lane by
//! one integer), so the two instantiations compute identical integers even though they place
//! partial sums in different lanes. Each block's integer sum is turned into an f32 term the way
//! the scalar reference does it (`d * isum`). Non-finite inputs propagate: a NaN scale or
//! element gives NaN, an infinite one a non-finite result. Whether that is ±Inf or NaN can
//! differ from the scalar kernel, which (like ggml's) sums some types in eight lanes, so that
//! `Inf·0` or `Inf − Inf` turns up in one order and not the other.
//!
//! **i8mm.** `smmla` multiplies a 2×8 by an 8×2 int8 matrix. With the single-row contract
//! ([`VecDotFn`]: one weight row times one activation row) only the two diagonal lanes of the
//! 2×2 result are useful, so `smmla` does the same useful work per instruction as `sdot` plus
//! the shuffles to pair up blocks: it cannot beat the dotprod kernels. The `I8mm` level
//! therefore hands out the dotprod kernels. [`i8mm`] holds 2-row × 2-column kernels for
//! Q8_0·Q8_0 and Q4_0·Q8_0, where every lane is useful; they are ready for a future
//! multi-row API and are tested against the dotprod kernels here.

use core::arch::aarch64::*;
use core::arch::asm;

use super::VecDotFn;
use crate::{CpuLevel, GgmlType};

/// `Σ term(i)` for `i in 0..nb`, with two accumulators (even and odd blocks) to break the
/// dependency chain, added at the end.
///
/// A macro rather than a function taking a closure: a closure body is compiled without the
/// enclosing kernel's target features, so `Sdot::dot` would stay an out-of-line call in the
/// larger (not inlined) K-quant bodies. Expanded in place, everything is one function.
macro_rules! sum_blocks {
    ($nb:expr, |$i:ident| $body:block) => {{
        let mut sums = [0.0f32; 2];
        for $i in 0..$nb {
            let term: f32 = $body;
            sums[$i % 2] += term;
        }
        sums[0] + sums[1]
    }};
}

mod float;
pub(crate) mod i8mm;
mod kquants;
mod legacy;

/// Sixteen int8 × int8 products added into four i32 lanes. Which lane receives which
/// product is up to the implementation; only the sum over all four lanes is defined.
pub(super) trait Dot {
    /// `acc + a·b` spread over the lanes.
    ///
    /// # Safety
    /// The CPU must support the instructions of the implementation (see each impl).
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t;
}

/// Baseline NEON: widening multiplies and pairwise accumulation. Exact for all int8 inputs
/// (each product fits i16; pairs are added in i32).
pub(super) struct Mull;

impl Dot for Mull {
    #[inline(always)]
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        let hi = vmull_high_s8(a, b);
        vpadalq_s16(vpadalq_s16(acc, lo), hi)
    }
}

/// The SDOT instruction (FEAT_DotProd).
pub(super) struct Sdot;

impl Dot for Sdot {
    #[inline]
    #[target_feature(enable = "dotprod")]
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        // SAFETY: register-only instruction; the caller guarantees FEAT_DotProd (the function
        // is compiled with `dotprod` enabled and only reached from dotprod-level kernels).
        unsafe {
            asm!(
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        acc
    }
}

/// Reads a little-endian f16 at `p` as f32.
///
/// Uses `fcvt` directly: half-to-single conversion is base ARMv8 FP, while `half` checks
/// for FEAT_FP16 at run time on every call and falls back to software without it.
///
/// # Safety
/// `p..p+2` must be readable.
#[inline(always)]
pub(super) unsafe fn f16_at(p: *const u8) -> f32 {
    let bits = u16::from_le(p.cast::<u16>().read_unaligned());
    let out: f32;
    // SAFETY: register-only base-ARMv8 instruction. Exact: NaN stays NaN, and subnormals are
    // kept under the FPCR that Linux and Android give user code (flush-to-zero off).
    unsafe {
        asm!(
            "fcvt {o:s}, {i:h}",
            i = in(vreg) bits,
            o = lateout(vreg) out,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// Reads a little-endian f32 at `p`.
///
/// # Safety
/// `p..p+4` must be readable.
#[inline(always)]
pub(super) unsafe fn f32_at(p: *const u8) -> f32 {
    f32::from_bits(u32::from_le(p.cast::<u32>().read_unaligned()))
}

/// Loads sixteen bytes at `p` as int8.
///
/// # Safety
/// `p..p+16` must be readable.
#[inline(always)]
pub(super) unsafe fn ld_s8(p: *const u8) -> int8x16_t {
    vld1q_s8(p.cast::<i8>())
}

/// Loads sixteen bytes at `p`.
///
/// # Safety
/// `p..p+16` must be readable.
#[inline(always)]
pub(super) unsafe fn ld_u8(p: *const u8) -> uint8x16_t {
    vld1q_u8(p)
}

/// The activation type each NEON kernel expects: [`super::activation_type`]'s pairing.
pub(super) const fn activation_of(w: GgmlType) -> Option<GgmlType> {
    super::activation_type(w)
}

/// Bytes of `n` elements of `ty`, panicking unless `n` is a whole number of blocks.
fn bytes_of(ty: GgmlType, n: usize) -> usize {
    let bl = ty.block_len();
    assert!(
        n.is_multiple_of(bl),
        "{ty}: n = {n} is not a multiple of the block length {bl}"
    );
    (n / bl)
        .checked_mul(ty.block_bytes())
        .expect("row size overflows usize")
}

/// The checks every safe wrapper makes before entering its `unsafe` kernel: `n` is a whole
/// number of blocks of both types and both slices hold at least `n` elements.
#[inline]
pub(super) fn check(w_ty: GgmlType, n: usize, w: &[u8], a: &[u8]) {
    let a_ty = activation_of(w_ty).expect("NEON kernel for a type without activation pairing");
    let wb = bytes_of(w_ty, n);
    let ab = bytes_of(a_ty, n);
    assert!(
        w.len() >= wb,
        "{w_ty} weights: {} bytes < {wb} needed for n = {n}",
        w.len()
    );
    assert!(
        a.len() >= ab,
        "{a_ty} activations: {} bytes < {ab} needed for n = {n}",
        a.len()
    );
}

/// Defines, inside a module per level, one safe [`VecDotFn`] per type that checks the slice
/// lengths and calls the generic body compiled with the level's target features.
macro_rules! level_kernels {
    ($module:ident, $features:literal, $dot:ty, [$(($name:ident, $ty:ident, $m:ident :: $f:ident)),* $(,)?]) => {
        pub(super) mod $module {
            use super::*;
            $(
                pub(crate) fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
                    #[target_feature(enable = $features)]
                    unsafe fn inner(n: usize, w: *const u8, a: *const u8) -> f32 {
                        // SAFETY: `w`/`a` hold `n` elements of the weight/activation type
                        // (checked by the wrapper), and the features are enabled.
                        unsafe { $m::$f::<$dot>(n, w, a) }
                    }
                    check(GgmlType::$ty, n, w, a);
                    // SAFETY: lengths checked just above; this wrapper is handed out only by
                    // `neon::kernel` for levels that include these features, and
                    // `dot::kernel` calls that only after `CpuLevel::is_supported`.
                    unsafe { inner(n, w.as_ptr(), a.as_ptr()) }
                }
            )*
        }
    };
}

macro_rules! int_kernels {
    ($module:ident, $features:literal, $dot:ty) => {
        level_kernels!(
            $module,
            $features,
            $dot,
            [
                (q4_0, Q4_0, legacy::q4_0),
                (q4_1, Q4_1, legacy::q4_1),
                (q5_0, Q5_0, legacy::q5_0),
                (q5_1, Q5_1, legacy::q5_1),
                (q8_0, Q8_0, legacy::q8_0),
                (iq4_nl, Iq4Nl, legacy::iq4_nl),
                (q2_k, Q2K, kquants::q2_k),
                (q3_k, Q3K, kquants::q3_k),
                (q4_k, Q4K, kquants::q4_k),
                (q5_k, Q5K, kquants::q5_k),
                (q6_k, Q6K, kquants::q6_k),
                (iq4_xs, Iq4Xs, kquants::iq4_xs),
            ]
        );
    };
}

int_kernels!(neon_level, "neon", Mull);
int_kernels!(dotprod_level, "neon,dotprod", Sdot);

/// The int8 kernel for `w` in one of the level modules.
macro_rules! pick {
    ($module:ident, $w:expr) => {{
        use GgmlType::*;
        let f: Option<VecDotFn> = match $w {
            Q4_0 => Some($module::q4_0),
            Q4_1 => Some($module::q4_1),
            Q5_0 => Some($module::q5_0),
            Q5_1 => Some($module::q5_1),
            Q8_0 => Some($module::q8_0),
            Iq4Nl => Some($module::iq4_nl),
            Q2K => Some($module::q2_k),
            Q3K => Some($module::q3_k),
            Q4K => Some($module::q4_k),
            Q5K => Some($module::q5_k),
            Q6K => Some($module::q6_k),
            Iq4Xs => Some($module::iq4_xs),
            F16 => Some(float::f16_f16),
            F32 => Some(float::f32_f32),
            _ => None,
        };
        f
    }};
}

/// The SIMD kernel for `w` at `level` (already checked supported), if one exists.
///
/// - `Neon`: baseline NEON for all fourteen types.
/// - `Dotprod`: `sdot` for the int8 types; F16/F32 as `Neon`.
/// - `I8mm`: as `Dotprod` (see the module docs for why `smmla` cannot help a single row).
pub(crate) fn kernel(level: CpuLevel, w: GgmlType) -> Option<VecDotFn> {
    match level {
        CpuLevel::Neon => pick!(neon_level, w),
        CpuLevel::Dotprod | CpuLevel::I8mm => pick!(dotprod_level, w),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
