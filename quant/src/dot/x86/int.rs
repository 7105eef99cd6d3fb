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

use std::arch::x86_64::*;

use super::{check_rows, f16_at, hsum256_ps};
use crate::dot::VecDotFn;
use crate::{CpuLevel, GgmlType};

/// How unsigned×signed byte products are summed into `i32` lanes.
pub(super) trait Isa {
    /// Lane `k` of the result is `Σ_{j<4} u[4k+j] · s[4k+j]` (`u` unsigned, `s` signed).
    /// Exact whenever every `u` byte is at most 128.
    ///
    /// # Safety
    /// Only inline into functions compiled with the ISA's features.
    unsafe fn dot_u8i8(u: __m256i, s: __m256i) -> __m256i;
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
}

impl Isa for Vnni {
    #[inline(always)]
    unsafe fn dot_u8i8(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
    }
}

/// Signed×signed bytes summed per group of four, via `|x| · (sign(x)·y)`.
/// Exact unless some `y` is −128 where `x < 0`.
#[inline(always)]
unsafe fn dot_i8i8<I: Isa>(x: __m256i, y: __m256i) -> __m256i {
    I::dot_u8i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// One block's contribution: `d · Σ lanes(s) + extra`.
struct Block {
    s: __m256i,
    d: f32,
    extra: f32,
}

/// A weight type and the activation type it is paired with.
trait Pair {
    const W: GgmlType;
    const A: GgmlType;

    /// # Safety
    /// `w` and `a` must be readable for one block of `W` and `A`; only inline into
    /// functions compiled with AVX2, FMA and F16C (and the ISA's features).
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block;
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
    let h01 = _mm256_hadd_epi32(s[0], s[1]);
    let h23 = _mm256_hadd_epi32(s[2], s[3]);
    let h45 = _mm256_hadd_epi32(s[4], s[5]);
    let h67 = _mm256_hadd_epi32(s[6], s[7]);
    let h0123 = _mm256_hadd_epi32(h01, h23);
    let h4567 = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(h0123, h4567),
        _mm256_permute2x128_si256::<0x31>(h0123, h4567),
    )
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
    let mut d = [0f32; 8];
    let mut e = [0f32; 8];
    for k in 0..take {
        let b = P::block::<I>(w.add(k * wb), a.add(k * ab));
        s[k] = b.s;
        d[k] = b.d;
        e[k] = b.extra;
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

/// AVX-512 kernels: VNNI for the 32-element types, 512-bit bodies for Q4_K and Q6_K, the
/// AVX2 bodies for the other K-quants.
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
        _ => return avx2(w),
    })
}

// ---------------------------------------------------------------------------------------
// 32-element types. Offsets are those of the `blocks` structs.

struct Q40;
struct Q41;
struct Q50;
struct Q51;
struct Q80;
struct Iq4Nl;

/// ggml's `kvalues_iq4nl`: the IQ4 code book.
const IQ4_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

impl Pair for Q40 {
    const W: GgmlType = GgmlType::Q4_0;
    const A: GgmlType = GgmlType::Q8_0;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let x = _mm256_sub_epi8(nibbles32(w.add(2)), _mm256_set1_epi8(8));
        let s = dot_i8i8::<I>(x, load256(a.add(2)));
        Block {
            s,
            d: f16_at(w) * f16_at(a),
            extra: 0.0,
        }
    }
}

impl Pair for Q41 {
    const W: GgmlType = GgmlType::Q4_1;
    const A: GgmlType = GgmlType::Q8_1;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let s = I::dot_u8i8(nibbles32(w.add(4)), load256(a.add(4)));
        Block {
            s,
            d: f16_at(w) * f16_at(a),
            extra: f16_at(w.add(2)) * f16_at(a.add(2)),
        }
    }
}

impl Pair for Q50 {
    const W: GgmlType = GgmlType::Q5_0;
    const A: GgmlType = GgmlType::Q8_0;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        // q − 16 = nibble where the fifth bit is set, nibble | 0xF0 (as i8) where not.
        let high = _mm256_andnot_si256(bits32(w.add(2)), _mm256_set1_epi8(0xF0_u8 as i8));
        let x = _mm256_or_si256(nibbles32(w.add(6)), high);
        let s = dot_i8i8::<I>(x, load256(a.add(2)));
        Block {
            s,
            d: f16_at(w) * f16_at(a),
            extra: 0.0,
        }
    }
}

impl Pair for Q51 {
    const W: GgmlType = GgmlType::Q5_1;
    const A: GgmlType = GgmlType::Q8_1;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let high = _mm256_and_si256(bits32(w.add(4)), _mm256_set1_epi8(0x10));
        let x = _mm256_or_si256(nibbles32(w.add(8)), high);
        let s = I::dot_u8i8(x, load256(a.add(4)));
        Block {
            s,
            d: f16_at(w) * f16_at(a),
            extra: f16_at(w.add(2)) * f16_at(a.add(2)),
        }
    }
}

impl Pair for Q80 {
    const W: GgmlType = GgmlType::Q8_0;
    const A: GgmlType = GgmlType::Q8_0;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        // The weight takes the |x| side, so a weight of −128 is still exact.
        let s = dot_i8i8::<I>(load256(w.add(2)), load256(a.add(2)));
        Block {
            s,
            d: f16_at(w) * f16_at(a),
            extra: 0.0,
        }
    }
}

impl Pair for Iq4Nl {
    const W: GgmlType = GgmlType::Iq4Nl;
    const A: GgmlType = GgmlType::Q8_0;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let table = _mm256_broadcastsi128_si256(_mm_loadu_si128(IQ4_VALUES.as_ptr().cast()));
        let x = _mm256_shuffle_epi8(table, nibbles32(w.add(2)));
        let s = dot_i8i8::<I>(x, load256(a.add(2)));
        Block {
            s,
            d: f16_at(w) * f16_at(a),
            extra: 0.0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// 256-element K-quants against Q8_K (`d: f32` at 0, `qs` at 4, `bsums: [i16; 16]` at 260).

const Q8K_QS: usize = 4;
const Q8K_BSUMS: usize = 260;

struct Q2K;
struct Q3K;
struct Q4K;
struct Q5K;
struct Q6K;
struct Iq4Xs;

/// The scale vector for two consecutive 16-quant sub-blocks `k`, `k + 1`, matching the
/// sixteen i16 pair sums of a `vpmaddubsw` over 32 quants: `sc` holds the sixteen
/// sub-block scales as i8 in both 128-bit halves. Each i16 lane gathers its scale byte
/// twice and shifts it down arithmetically, which sign-extends it.
#[inline(always)]
unsafe fn pair_scales(sc: __m256i, k: usize) -> __m256i {
    let pick = _mm256_set_m128i(_mm_set1_epi8((k + 1) as i8), _mm_set1_epi8(k as i8));
    _mm256_srai_epi16::<8>(_mm256_shuffle_epi8(sc, pick))
}

/// The sum of the eight `i32` lanes.
#[inline(always)]
unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// `Σ_j bsums[j] · mins[j]` for the Q8_K block at `a`, sixteen i16 minimums given.
#[inline(always)]
unsafe fn min_sum16(a: *const u8, mins: __m256i) -> i32 {
    hsum_epi32(_mm256_madd_epi16(load256(a.add(Q8K_BSUMS)), mins))
}

/// `Σ_j bsums[j] · mins[j / 2]` for the Q8_K block at `a` (Q4_K/Q5_K: one minimum per 32).
#[inline(always)]
unsafe fn min_sum8(a: *const u8, mins: &[u8; 8]) -> i32 {
    let m = _mm_cvtepu8_epi16(_mm_loadl_epi64(mins.as_ptr().cast()));
    min_sum16(
        a,
        _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m)),
    )
}

/// Q4_K/Q5_K's twelve scale bytes → (eight 6-bit scales, eight 6-bit minimums).
#[inline(always)]
unsafe fn unpack_k4_scales(p: *const u8) -> ([u8; 8], [u8; 8]) {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let (u0, u1, u2) = (u32_at(p), u32_at(p.add(4)), u32_at(p.add(8)));
    let sc_hi = (u2 & LOW4) | (((u0 >> 6) & LOW2) << 4);
    let mn_hi = ((u2 >> 4) & LOW4) | (((u1 >> 6) & LOW2) << 4);
    let join = |lo: u32, hi: u32| {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&lo.to_le_bytes());
        out[4..].copy_from_slice(&hi.to_le_bytes());
        out
    };
    (join(u0 & LOW6, sc_hi), join(u1 & LOW6, mn_hi))
}

impl Pair for Q2K {
    const W: GgmlType = GgmlType::Q2K;
    const A: GgmlType = GgmlType::Q8K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let packed = _mm_loadu_si128(w.cast());
        let mins = _mm_and_si128(_mm_srli_epi16::<4>(packed), _mm_set1_epi8(0x0F));
        let sc = _mm256_broadcastsi128_si256(_mm_and_si128(packed, _mm_set1_epi8(0x0F)));
        let mut acc = _mm256_setzero_si256();
        for half in 0..2 {
            let qv = load256(w.add(16 + 32 * half));
            for shift in 0..4 {
                let q = _mm256_and_si256(srl16(qv, 2 * shift as u32), _mm256_set1_epi8(3));
                let y = load256(a.add(Q8K_QS + 128 * half + 32 * shift));
                let p = _mm256_maddubs_epi16(q, y);
                let k = 8 * half + 2 * shift;
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, pair_scales(sc, k)));
            }
        }
        let ad = f32_at(a);
        let dmin = f16_at(w.add(82)) * ad;
        Block {
            s: acc,
            d: f16_at(w.add(80)) * ad,
            extra: -(dmin * min_sum16(a, _mm256_cvtepu8_epi16(mins)) as f32),
        }
    }
}

impl Pair for Q3K {
    const W: GgmlType = GgmlType::Q3K;
    const A: GgmlType = GgmlType::Q8K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        const LOW4: u32 = 0x0f0f_0f0f;
        const LOW2: u32 = 0x0303_0303;
        let p = w.add(96);
        let (u0, u1, t) = (u32_at(p), u32_at(p.add(4)), u32_at(p.add(8)));
        let packed = [
            (u0 & LOW4) | ((t & LOW2) << 4),
            (u1 & LOW4) | (((t >> 2) & LOW2) << 4),
            ((u0 >> 4) & LOW4) | (((t >> 4) & LOW2) << 4),
            ((u1 >> 4) & LOW4) | (((t >> 6) & LOW2) << 4),
        ];
        let sc = _mm_set_epi32(
            packed[3] as i32,
            packed[2] as i32,
            packed[1] as i32,
            packed[0] as i32,
        );
        let sc = _mm256_broadcastsi128_si256(_mm_sub_epi8(sc, _mm_set1_epi8(32)));
        let hm = load256(w);
        let one = _mm256_set1_epi8(1);
        let mut acc = _mm256_setzero_si256();
        for half in 0..2 {
            let qv = load256(w.add(32 + 32 * half));
            for shift in 0..4 {
                let q = _mm256_and_si256(srl16(qv, 2 * shift as u32), _mm256_set1_epi8(3));
                // 4 where the high bit is clear: q − 4·(1 − h).
                let bit = (4 * half + shift) as u32;
                let sub = _mm256_slli_epi16::<2>(_mm256_andnot_si256(srl16(hm, bit), one));
                let y = load256(a.add(Q8K_QS + 128 * half + 32 * shift));
                let p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), _mm256_maddubs_epi16(sub, y));
                let k = 8 * half + 2 * shift;
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, pair_scales(sc, k)));
            }
        }
        Block {
            s: acc,
            d: f16_at(w.add(108)) * f32_at(a),
            extra: 0.0,
        }
    }
}

impl Pair for Q4K {
    const W: GgmlType = GgmlType::Q4K;
    const A: GgmlType = GgmlType::Q8K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let (sc, mins) = unpack_k4_scales(w.add(4));
        let low = _mm256_set1_epi8(0x0F);
        let mut acc = _mm256_setzero_si256();
        for j in 0..4 {
            let qv = load256(w.add(16 + 32 * j));
            let lo = _mm256_and_si256(qv, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(qv), low);
            let y_lo = load256(a.add(Q8K_QS + 64 * j));
            let y_hi = load256(a.add(Q8K_QS + 64 * j + 32));
            let p_lo = _mm256_madd_epi16(
                _mm256_maddubs_epi16(lo, y_lo),
                _mm256_set1_epi16(i16::from(sc[2 * j])),
            );
            let p_hi = _mm256_madd_epi16(
                _mm256_maddubs_epi16(hi, y_hi),
                _mm256_set1_epi16(i16::from(sc[2 * j + 1])),
            );
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p_lo, p_hi));
        }
        let ad = f32_at(a);
        let dmin = f16_at(w.add(2)) * ad;
        Block {
            s: acc,
            d: f16_at(w) * ad,
            extra: -(dmin * min_sum8(a, &mins) as f32),
        }
    }
}

impl Pair for Q5K {
    const W: GgmlType = GgmlType::Q5K;
    const A: GgmlType = GgmlType::Q8K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let (sc, mins) = unpack_k4_scales(w.add(4));
        let low = _mm256_set1_epi8(0x0F);
        let one = _mm256_set1_epi8(1);
        let hb = load256(w.add(16));
        let mut acc = _mm256_setzero_si256();
        for j in 0..4 {
            let qv = load256(w.add(48 + 32 * j));
            let b_lo = _mm256_and_si256(srl16(hb, 2 * j as u32), one);
            let b_hi = _mm256_and_si256(srl16(hb, 2 * j as u32 + 1), one);
            let lo = _mm256_or_si256(_mm256_and_si256(qv, low), _mm256_slli_epi16::<4>(b_lo));
            let hi = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(qv), low),
                _mm256_slli_epi16::<4>(b_hi),
            );
            let y_lo = load256(a.add(Q8K_QS + 64 * j));
            let y_hi = load256(a.add(Q8K_QS + 64 * j + 32));
            let p_lo = _mm256_madd_epi16(
                _mm256_maddubs_epi16(lo, y_lo),
                _mm256_set1_epi16(i16::from(sc[2 * j])),
            );
            let p_hi = _mm256_madd_epi16(
                _mm256_maddubs_epi16(hi, y_hi),
                _mm256_set1_epi16(i16::from(sc[2 * j + 1])),
            );
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p_lo, p_hi));
        }
        let ad = f32_at(a);
        let dmin = f16_at(w.add(2)) * ad;
        Block {
            s: acc,
            d: f16_at(w) * ad,
            extra: -(dmin * min_sum8(a, &mins) as f32),
        }
    }
}

impl Pair for Q6K {
    const W: GgmlType = GgmlType::Q6K;
    const A: GgmlType = GgmlType::Q8K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let sc = _mm256_broadcastsi128_si256(_mm_loadu_si128(w.add(192).cast()));
        let low = _mm256_set1_epi8(0x0F);
        let three = _mm256_set1_epi8(3);
        let m32 = _mm256_set1_epi8(32);
        let mut acc = _mm256_setzero_si256();
        for half in 0..2 {
            let ql0 = load256(w.add(64 * half));
            let ql1 = load256(w.add(64 * half + 32));
            let qh = load256(w.add(128 + 32 * half));
            let nib = [
                _mm256_and_si256(ql0, low),
                _mm256_and_si256(ql1, low),
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), low),
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), low),
            ];
            for (g, n) in nib.into_iter().enumerate() {
                let h = _mm256_and_si256(srl16(qh, 2 * g as u32), three);
                let q = _mm256_or_si256(n, _mm256_slli_epi16::<4>(h));
                let y = load256(a.add(Q8K_QS + 128 * half + 32 * g));
                let p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), _mm256_maddubs_epi16(m32, y));
                let k = 8 * half + 2 * g;
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, pair_scales(sc, k)));
            }
        }
        Block {
            s: acc,
            d: f16_at(w.add(208)) * f32_at(a),
            extra: 0.0,
        }
    }
}

impl Pair for Iq4Xs {
    const W: GgmlType = GgmlType::Iq4Xs;
    const A: GgmlType = GgmlType::Q8K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let table = _mm256_broadcastsi128_si256(_mm_loadu_si128(IQ4_VALUES.as_ptr().cast()));
        let sh = u16::from_le(w.add(2).cast::<u16>().read_unaligned());
        let mut acc = _mm256_setzero_si256();
        for ib in 0..8 {
            let lo = (*w.add(4 + ib / 2) >> (4 * (ib % 2))) & 0x0F;
            let hi = ((sh >> (2 * ib)) & 3) as u8;
            let ls = i16::from(lo | (hi << 4)) - 32;
            let x = _mm256_shuffle_epi8(table, nibbles32(w.add(8 + 16 * ib)));
            let y = load256(a.add(Q8K_QS + 32 * ib));
            let p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(ls)));
        }
        Block {
            s: acc,
            d: f16_at(w) * f32_at(a),
            extra: 0.0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// 512-bit bodies (AVX-512 BW) for the most common K-quants: 64 quants per instruction.
// Only instantiated through `run_vnni`, whose target features include AVX-512 F/BW/VL.

struct Q4KZmm;
struct Q6KZmm;

/// For each i16 lane of a 512-bit vector, the 16-quant sub-block (0..4) it belongs to.
const SUB_BLOCK_OF_LANE: [i16; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
];

/// `lo` in the low 256 bits, `hi` in the high 256 bits.
#[inline(always)]
unsafe fn join512(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// The sum of the two 256-bit halves.
#[inline(always)]
unsafe fn fold512(v: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v))
}

#[inline(always)]
unsafe fn load512(p: *const u8) -> __m512i {
    _mm512_loadu_si512(p.cast())
}

impl Pair for Q4KZmm {
    const W: GgmlType = GgmlType::Q4K;
    const A: GgmlType = GgmlType::Q8K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let (sc, mins) = unpack_k4_scales(w.add(4));
        let sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64(sc.as_ptr().cast())));
        // The low 256 bits take scale 2j, the high 256 bits scale 2j + 1.
        let halves = join512(_mm256_setzero_si256(), _mm256_set1_epi16(1));
        let low = _mm512_set1_epi8(0x0F);
        let mut acc = _mm512_setzero_si512();
        for j in 0..4 {
            // 32 bytes hold elements 64j.. (low nibbles) and 64j + 32.. (high nibbles).
            let qv = load256(w.add(16 + 32 * j));
            let q = _mm512_and_si512(join512(qv, _mm256_srli_epi16::<4>(qv)), low);
            let y = load512(a.add(Q8K_QS + 64 * j));
            let first = _mm512_set1_epi16(2 * j as i16);
            let scale = _mm512_permutexvar_epi16(_mm512_add_epi16(halves, first), sc);
            let p = _mm512_madd_epi16(_mm512_maddubs_epi16(q, y), scale);
            acc = _mm512_add_epi32(acc, p);
        }
        let ad = f32_at(a);
        let dmin = f16_at(w.add(2)) * ad;
        Block {
            s: fold512(acc),
            d: f16_at(w) * ad,
            extra: -(dmin * min_sum8(a, &mins) as f32),
        }
    }
}

impl Pair for Q6KZmm {
    const W: GgmlType = GgmlType::Q6K;
    const A: GgmlType = GgmlType::Q8K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        // The 16 sub-block scales as i16; 128-bit lane k of a 512-bit vector is 16 quants,
        // i.e. one sub-block, so lane k takes scale `first + k`.
        let sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(192).cast())));
        let lanes = load512(SUB_BLOCK_OF_LANE.as_ptr().cast());
        let low = _mm512_set1_epi8(0x0F);
        let three = _mm512_set1_epi8(3);
        let m32 = _mm512_set1_epi8(32);
        let mut acc = _mm512_setzero_si512();
        for half in 0..2 {
            // Elements 128·half + 0..64 take the low nibbles of ql[64·half..][..64] and
            // bits 0-1 / 2-3 of qh; elements + 64..128 the high nibbles and bits 4-5 / 6-7.
            let ql = load512(w.add(64 * half));
            let qh = load256(w.add(128 + 32 * half));
            let qh = join512(qh, _mm256_srli_epi16::<2>(qh));
            let parts = [
                (_mm512_and_si512(ql, low), qh),
                (
                    _mm512_and_si512(_mm512_srli_epi16::<4>(ql), low),
                    _mm512_srli_epi16::<4>(qh),
                ),
            ];
            for (g, (nib, high)) in parts.into_iter().enumerate() {
                let q = _mm512_or_si512(nib, _mm512_slli_epi16::<4>(_mm512_and_si512(high, three)));
                let y = load512(a.add(Q8K_QS + 128 * half + 64 * g));
                let p = _mm512_sub_epi16(_mm512_maddubs_epi16(q, y), _mm512_maddubs_epi16(m32, y));
                let first = _mm512_set1_epi16((8 * half + 4 * g) as i16);
                let scale = _mm512_permutexvar_epi16(_mm512_add_epi16(lanes, first), sc);
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p, scale));
            }
        }
        Block {
            s: fold512(acc),
            d: f16_at(w.add(208)) * f32_at(a),
            extra: 0.0,
        }
    }
}
