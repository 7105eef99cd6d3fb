//! Quantized weight · quantized activation kernels on 256-bit vectors (512-bit bodies for
//! Q4_K and Q6_K at the AVX-512 level).
//!
//! Each weight type is a [`Pair`]: a function that turns one weight block and its
//! activation block into eight `i32` partial sums (whose total is the block's exact integer
//! dot product, sub-block scales included), the block's float scale `d` and, for the
//! types with a minimum, a float correction term. [`drive`] gathers eight blocks at a
//! time, reduces each block's partials to its own `i32` with a horizontal-add tree and
//! adds `d * sumi` for all eight with one FMA. A block whose `d` is NaN/Inf is handed to
//! the scalar reference instead (see [`scalar_fixup`]).
//!
//! Activation quants are assumed to lie in −127..=127, as ggml's and Fennec's Q8
//! quantizers produce them: the signed×signed products use the `vpsignb` trick
//! (`|x| · sign(x)·y`), which wraps for `y = −128` where `x < 0`. Weight bytes may be
//! anything.
//!
//! This file holds the shared plumbing ([`Isa`], [`Pair`], [`Split`], [`SplitK`], the
//! single-row [`drive`]) and, at its end, the tables of which body serves which weight type
//! at which level ([`avx2()`], [`avx512()`], [`avx2_multi`], [`avx512_multi`]). The bodies:
//!
//! * [`legacy`]: the 32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL);
//! * [`kquants`]: the K-quants and IQ4_XS on 256-bit vectors;
//! * [`avx512`](mod@avx512): 512-bit bodies for Q4_K and Q6_K;
//! * [`multi`]: the multi-vector drivers, one weight row against `N` activation rows.

use std::arch::x86_64::*;

use super::{check_rows, f16_at, hsum256_ps};
use crate::dot::{VecDotFn, VecDotMultiFn};
use crate::{CpuLevel, GgmlType};

mod avx512;
mod kquants;
mod legacy;
mod multi;

use avx512::{Q4KZmm, Q6KZmm};
use kquants::{Iq4Xs, Q2K, Q3K, Q4K, Q5K, Q6K};
use legacy::{Iq4Nl, Q40, Q41, Q50, Q51, Q80};
use multi::{avx2_dot_k, avx2_dot_multi, vnni_dot_k, vnni_dot_multi};

/// How unsigned×signed byte products are summed into `i32` lanes.
pub(super) trait Isa {
    /// Lane `k` of the result is `Σ_{j<4} u[4k+j] · s[4k+j]` (`u` unsigned, `s` signed).
    /// Exact whenever every `u` byte is at most 128.
    ///
    /// # Safety
    /// Only inline into functions compiled with the ISA's features.
    unsafe fn dot_u8i8(u: __m256i, s: __m256i) -> __m256i;

    /// `acc` plus, in lane `k`, `p[2k]·s[2k] + p[2k+1]·s[2k+1]` (i16 products, wrapping i32
    /// sums as `vpmaddwd` + `vpaddd`).
    ///
    /// # Safety
    /// As [`Isa::dot_u8i8`].
    unsafe fn madd_acc(acc: __m256i, p: __m256i, s: __m256i) -> __m256i;
}

/// AVX2: `vpmaddubsw` into i16 pairs (at most 2·128·128 in magnitude, so no saturation
/// for `u ≤ 128`), then `vpmaddwd` by ones into i32.
pub(super) struct Avx2;

/// AVX-512 VNNI (256-bit EVEX form): `vpdpbusd` sums the four products straight into i32.
pub(super) struct Vnni;

impl Isa for Avx2 {
    #[inline(always)]
    unsafe fn dot_u8i8(u: __m256i, s: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }

    #[inline(always)]
    unsafe fn madd_acc(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(p, s))
    }
}

impl Isa for Vnni {
    #[inline(always)]
    unsafe fn dot_u8i8(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
    }

    /// `vpdpwssd`: the multiply and the add in one instruction.
    #[inline(always)]
    unsafe fn madd_acc(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
        _mm256_dpwssd_epi32(acc, p, s)
    }
}

/// Signed×signed bytes summed per group of four, via `|x| · (sign(x)·y)`.
/// Exact unless some `y` is −128 where `x < 0`.
#[inline(always)]
unsafe fn dot_i8i8<I: Isa>(x: __m256i, y: __m256i) -> __m256i {
    I::dot_u8i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// One block's contribution: `d · Σ lanes(s) + extra`, where for a pair with
/// [`Pair::MINS`] `extra` is ignored and taken to be `−(dmin · Σ lanes(m))` instead
/// (computed for eight blocks at a time, the integer sums exactly).
struct Block {
    s: __m256i,
    d: f32,
    extra: f32,
    m: __m256i,
    dmin: f32,
}

impl Block {
    /// A block without a minimum term.
    #[inline(always)]
    unsafe fn plain(s: __m256i, d: f32, extra: f32) -> Block {
        Block {
            s,
            d,
            extra,
            m: _mm256_setzero_si256(),
            dmin: 0.0,
        }
    }
}

/// A weight type and the activation type it is paired with.
trait Pair {
    /// The weight type.
    const W: GgmlType;
    /// Its activation type, from the one pairing table ([`crate::dot::activation_type`]).
    const A: GgmlType = paired(Self::W);
    /// Whether the blocks carry a minimum term ([`Block::m`], [`Block::dmin`]).
    const MINS: bool = false;

    /// # Safety
    /// `w` and `a` must be readable for one block of `W` and `A`; only inline into
    /// functions compiled with AVX2, FMA and F16C (and the ISA's features).
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block;
}

/// The activation type of `w`, where one exists (every [`Pair`]'s weight type has one: a
/// pair without is a compile-time error).
const fn paired(w: GgmlType) -> GgmlType {
    match crate::dot::activation_type(w) {
        Some(a) => a,
        None => panic!("a SIMD pair for a weight type without an activation type"),
    }
}

/// A weight type whose block work splits into a weight-only part ([`Split::prep`], done
/// once per weight block) and a per-activation part ([`Split::finish`]); its
/// [`Pair::block`] is exactly [`split_block`], so the multi-vector kernels, which call
/// `prep` once and `finish` once per activation row, compute the same [`Block`]s.
trait Split: Pair {
    /// Whether the pair has a minimum term: `m` (f16) at byte 2 of the weight block times
    /// `s` (f16) at byte 2 of the activation block. The scale `d` is the f16 at byte 0 of
    /// each block.
    const HAS_MIN: bool;

    /// The weight block at `w` as 32 bytes, ready for [`Split::finish`].
    ///
    /// # Safety
    /// As [`Pair::block`], for the weight block alone.
    unsafe fn prep(w: *const u8) -> __m256i;

    /// The block's eight `i32` partial sums ([`Block::s`]), given `x = prep(w)`.
    ///
    /// # Safety
    /// As [`Pair::block`].
    unsafe fn finish<I: Isa>(x: __m256i, a: *const u8) -> __m256i;
}

/// The K-quant counterpart of [`Split`]: the weight-only work of a block ([`SplitK::prep`],
/// unpacked quants and sub-block scales) done once, then [`SplitK::finish`] per activation
/// row. Such a type's [`Pair::block`] is exactly `finish(&prep(w), w, a)`.
trait SplitK: Pair {
    /// The prepared weight block.
    type Prep: Copy;

    /// # Safety
    /// As [`Pair::block`], for the weight block alone.
    unsafe fn prep(w: *const u8) -> Self::Prep;

    /// The block's contribution, given `p = prep(w)`.
    ///
    /// # Safety
    /// As [`Pair::block`].
    unsafe fn finish<I: Isa>(p: &Self::Prep, w: *const u8, a: *const u8) -> Block;
}

/// [`Pair::block`] of a [`Split`] type.
///
/// # Safety
/// As [`Pair::block`].
#[inline(always)]
unsafe fn split_block<I: Isa, P: Split>(w: *const u8, a: *const u8) -> Block {
    Block::plain(
        P::finish::<I>(P::prep(w), a),
        f16_at(w) * f16_at(a),
        if P::HAS_MIN {
            f16_at(w.add(2)) * f16_at(a.add(2))
        } else {
            0.0
        },
    )
}

#[inline(always)]
unsafe fn load256(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p.cast())
}

#[inline(always)]
unsafe fn f32_at(p: *const u8) -> f32 {
    p.cast::<f32>().read_unaligned()
}

#[inline(always)]
unsafe fn u32_at(p: *const u8) -> u32 {
    u32::from_le(p.cast::<u32>().read_unaligned())
}

/// Shifts each 16-bit lane right by `n` (a run-time count).
#[inline(always)]
unsafe fn srl16(v: __m256i, n: u32) -> __m256i {
    _mm256_srl_epi16(v, _mm_cvtsi32_si128(n as i32))
}

/// 16 packed nibbles → 32 bytes: byte `i` low nibbles first, then the high nibbles
/// (the legacy layout: element `i` low, element `i + 16` high).
#[inline(always)]
unsafe fn nibbles32(p: *const u8) -> __m256i {
    let t = _mm_loadu_si128(p.cast());
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(t), t);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// The 32 bits of the little-endian `u32` at `p` as 32 bytes, 0xFF where the bit is set.
#[inline(always)]
unsafe fn bits32(p: *const u8) -> __m256i {
    let x = u32_at(p) as i32;
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(x),
        _mm256_setr_epi64x(
            0,
            0x0101_0101_0101_0101,
            0x0202_0202_0202_0202,
            0x0303_0303_0303_0303,
        ),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit)
}

/// Eight vectors of `i32` partials → one vector holding each one's total, in order.
#[inline(always)]
unsafe fn reduce8(s: &[__m256i; 8]) -> __m256i {
    reduce_pairs(
        _mm256_hadd_epi32(s[0], s[1]),
        _mm256_hadd_epi32(s[2], s[3]),
        _mm256_hadd_epi32(s[4], s[5]),
        _mm256_hadd_epi32(s[6], s[7]),
    )
}

/// The rest of [`reduce8`], given the `hadd`s of its four pairs of vectors.
#[inline(always)]
unsafe fn reduce_pairs(h01: __m256i, h23: __m256i, h45: __m256i, h67: __m256i) -> __m256i {
    let h0123 = _mm256_hadd_epi32(h01, h23);
    let h4567 = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(h0123, h4567),
        _mm256_permute2x128_si256::<0x31>(h0123, h4567),
    )
}

/// `e[k] = −(dm[k] · msum[k])` for the eight blocks of a [`Pair::MINS`] pair, where
/// `msum` holds each block's minimum parts [`Block::m`] reduced exactly to one `i32` (by
/// [`reduce8`]): the same float steps, lane by lane, as `-(dmin * sum as f32)`. Unused
/// blocks (`m = 0`, `dm = 0`) give `−0.0`, which leaves an accumulator unchanged.
#[inline(always)]
unsafe fn min_terms(msum: __m256i, dm: &[f32; 8], e: &mut [f32; 8]) {
    let sum = _mm256_cvtepi32_ps(msum);
    let t = _mm256_mul_ps(_mm256_loadu_ps(dm.as_ptr()), sum);
    _mm256_storeu_ps(e.as_mut_ptr(), _mm256_xor_ps(t, _mm256_set1_ps(-0.0)));
}

/// Adds the `take` (at most eight) blocks at `w`, `a` into the accumulators.
#[inline(always)]
unsafe fn batch<I: Isa, P: Pair>(
    take: usize,
    w: *const u8,
    a: *const u8,
    acc: &mut __m256,
    extra: &mut __m256,
) {
    let (wb, ab) = (P::W.block_bytes(), P::A.block_bytes());
    let mut s = [_mm256_setzero_si256(); 8];
    let mut m = [_mm256_setzero_si256(); 8];
    let mut d = [0f32; 8];
    let mut dm = [0f32; 8];
    let mut e = [0f32; 8];
    for k in 0..take {
        let b = P::block::<I>(w.add(k * wb), a.add(k * ab));
        s[k] = b.s;
        d[k] = b.d;
        e[k] = b.extra;
        m[k] = b.m;
        dm[k] = b.dmin;
    }
    if P::MINS {
        min_terms(reduce8(&m), &dm, &mut e);
    }
    // A non-finite block scale (a corrupt tensor, or an overflowing product) makes the
    // result NaN or ±Inf depending on how the reference splits the block's integer sum;
    // such blocks are handed to the scalar reference whole so that NaN/Inf propagate
    // exactly as there. The check costs one compare per eight blocks.
    let zero = _mm256_setzero_ps();
    let dv = _mm256_loadu_ps(d.as_ptr());
    let finite = _mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_mul_ps(dv, zero), zero);
    if _mm256_movemask_ps(finite) != 0xFF {
        scalar_fixup::<P>(take, w, a, &mut d, &mut e);
    }
    let sumi = _mm256_cvtepi32_ps(reduce8(&s));
    *acc = _mm256_fmadd_ps(_mm256_loadu_ps(d.as_ptr()), sumi, *acc);
    *extra = _mm256_add_ps(*extra, _mm256_loadu_ps(e.as_ptr()));
}

/// Replaces each of the `take` blocks whose scale `d[k]` is not finite by the scalar
/// reference's value for that block alone (in `e[k]`, with `d[k] = 0`).
///
/// # Safety
/// `w` and `a` must be readable for `take` blocks of `P::W` and `P::A`.
#[cold]
#[inline(never)]
unsafe fn scalar_fixup<P: Pair>(
    take: usize,
    w: *const u8,
    a: *const u8,
    d: &mut [f32; 8],
    e: &mut [f32; 8],
) {
    let (wb, ab) = (P::W.block_bytes(), P::A.block_bytes());
    let reference = crate::dot::scalar::kernel(P::W).expect("every SIMD pair has a scalar twin");
    for k in 0..take {
        if !d[k].is_finite() {
            let wk = std::slice::from_raw_parts(w.add(k * wb), wb);
            let ak = std::slice::from_raw_parts(a.add(k * ab), ab);
            d[k] = 0.0;
            e[k] = reference(P::W.block_len(), wk, ak);
        }
    }
}

/// The whole dot product over `nb` blocks.
#[inline(always)]
unsafe fn drive<I: Isa, P: Pair>(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let (wb, ab) = (P::W.block_bytes(), P::A.block_bytes());
    let mut acc = _mm256_setzero_ps();
    let mut extra = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= nb {
        batch::<I, P>(8, w.add(i * wb), a.add(i * ab), &mut acc, &mut extra);
        i += 8;
    }
    if i < nb {
        batch::<I, P>(nb - i, w.add(i * wb), a.add(i * ab), &mut acc, &mut extra);
    }
    hsum256_ps(_mm256_add_ps(acc, extra))
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C; `w` and `a` must hold `nb` blocks each.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run_avx2<P: Pair>(nb: usize, w: *const u8, a: *const u8) -> f32 {
    drive::<Avx2, P>(nb, w, a)
}

/// # Safety
/// The CPU must have AVX2, FMA, F16C and AVX-512 F/BW/VL/VNNI; `w` and `a` must hold
/// `nb` blocks each.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn run_vnni<P: Pair>(nb: usize, w: *const u8, a: *const u8) -> f32 {
    drive::<Vnni, P>(nb, w, a)
}

fn avx2_dot<P: Pair>(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_rows(n, w, a, P::W, P::A);
    debug_assert!(CpuLevel::Avx2.is_supported());
    // SAFETY: `avx2` hands this kernel out only for CpuLevel::Avx2/Avx512, and
    // `dot::kernel` returns it only after `level.is_supported()` confirmed AVX2, FMA and
    // F16C; `check_rows` proved both slices hold `nb` blocks.
    unsafe { run_avx2::<P>(nb, w.as_ptr(), a.as_ptr()) }
}

fn vnni_dot<P: Pair>(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_rows(n, w, a, P::W, P::A);
    debug_assert!(CpuLevel::Avx512.is_supported());
    // SAFETY: `avx512` hands this kernel out only for CpuLevel::Avx512, and `dot::kernel`
    // returns it only after `level.is_supported()` confirmed AVX2, FMA, F16C and AVX-512
    // F/BW/VL/VNNI; `check_rows` proved both slices hold `nb` blocks.
    unsafe { run_vnni::<P>(nb, w.as_ptr(), a.as_ptr()) }
}

/// AVX2 multi-vector kernels (the 32-element quantized types, Q4_K, Q5_K and Q6_K).
pub(super) fn avx2_multi<const N: usize>(w: GgmlType) -> Option<VecDotMultiFn<N>> {
    use GgmlType as T;
    Some(match w {
        T::Q4_0 => avx2_dot_multi::<Q40, N>,
        T::Q4_1 => avx2_dot_multi::<Q41, N>,
        T::Q5_0 => avx2_dot_multi::<Q50, N>,
        T::Q5_1 => avx2_dot_multi::<Q51, N>,
        T::Q8_0 => avx2_dot_multi::<Q80, N>,
        T::Iq4Nl => avx2_dot_multi::<Iq4Nl, N>,
        T::Q4K => avx2_dot_k::<Q4K, N>,
        T::Q5K => avx2_dot_k::<Q5K, N>,
        T::Q6K => avx2_dot_k::<Q6K, N>,
        _ => return None,
    })
}

/// AVX-512 multi-vector kernels (the 32-element quantized types and Q5_K on VNNI, Q4_K and
/// Q6_K with the 512-bit bodies, as [`avx512()`] picks them).
pub(super) fn avx512_multi<const N: usize>(w: GgmlType) -> Option<VecDotMultiFn<N>> {
    use GgmlType as T;
    Some(match w {
        T::Q4_0 => vnni_dot_multi::<Q40, N>,
        T::Q4_1 => vnni_dot_multi::<Q41, N>,
        T::Q5_0 => vnni_dot_multi::<Q50, N>,
        T::Q5_1 => vnni_dot_multi::<Q51, N>,
        T::Q8_0 => vnni_dot_multi::<Q80, N>,
        T::Iq4Nl => vnni_dot_multi::<Iq4Nl, N>,
        T::Q4K => vnni_dot_k::<Q4KZmm, N>,
        T::Q6K => vnni_dot_k::<Q6KZmm, N>,
        T::Q5K => vnni_dot_k::<Q5K, N>,
        _ => return None,
    })
}

/// AVX2 kernels for the quantized weight types.
pub(super) fn avx2(w: GgmlType) -> Option<VecDotFn> {
    use GgmlType as T;
    Some(match w {
        T::Q4_0 => avx2_dot::<Q40>,
        T::Q4_1 => avx2_dot::<Q41>,
        T::Q5_0 => avx2_dot::<Q50>,
        T::Q5_1 => avx2_dot::<Q51>,
        T::Q8_0 => avx2_dot::<Q80>,
        T::Iq4Nl => avx2_dot::<Iq4Nl>,
        T::Q2K => avx2_dot::<Q2K>,
        T::Q3K => avx2_dot::<Q3K>,
        T::Q4K => avx2_dot::<Q4K>,
        T::Q5K => avx2_dot::<Q5K>,
        T::Q6K => avx2_dot::<Q6K>,
        T::Iq4Xs => avx2_dot::<Iq4Xs>,
        _ => return None,
    })
}

/// AVX-512 kernels: VNNI for the 32-element types, and for Q2_K, Q3_K, Q5_K and IQ4_XS
/// (`vpdpwssd` applies their sub-block scales), 512-bit bodies for Q4_K and Q6_K.
pub(super) fn avx512(w: GgmlType) -> Option<VecDotFn> {
    use GgmlType as T;
    Some(match w {
        T::Q4_0 => vnni_dot::<Q40>,
        T::Q4_1 => vnni_dot::<Q41>,
        T::Q5_0 => vnni_dot::<Q50>,
        T::Q5_1 => vnni_dot::<Q51>,
        T::Q8_0 => vnni_dot::<Q80>,
        T::Iq4Nl => vnni_dot::<Iq4Nl>,
        T::Q4K => vnni_dot::<Q4KZmm>,
        T::Q6K => vnni_dot::<Q6KZmm>,
        T::Q2K => vnni_dot::<Q2K>,
        T::Q3K => vnni_dot::<Q3K>,
        T::Q5K => vnni_dot::<Q5K>,
        T::Iq4Xs => vnni_dot::<Iq4Xs>,
        _ => return avx2(w),
    })
}
