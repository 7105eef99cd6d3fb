//! 512-bit bodies (AVX-512 BW, VNNI's `vpdpwssd` for the scale step) for the most common
//! K-quants, Q4_K and Q6_K: 64 quants per instruction. Only instantiated through
//! `run_vnni`, whose target features include AVX-512 F/BW/VL/VNNI.

use std::arch::x86_64::*;

use super::kquants::{min_part16, mins16, unpack_k4_scales, Q8K_QS};
use super::{f32_at, load256, Block, Isa, Pair, SplitK};
use crate::dot::x86::f16_at;
use crate::GgmlType;

pub(super) struct Q4KZmm;
pub(super) struct Q6KZmm;

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
    const MINS: bool = true;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        Self::finish::<I>(&Self::prep(w), w, a)
    }
}

/// A Q4_K block as four 64-quant vectors with their i16 scale vectors, and its minimums
/// as [`mins16`] widens them.
#[derive(Clone, Copy)]
pub(super) struct Q4KZmmPrep {
    q: [__m512i; 4],
    scale: [__m512i; 4],
    mins: __m256i,
}

impl SplitK for Q4KZmm {
    type Prep = Q4KZmmPrep;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> Q4KZmmPrep {
        let (sc, mins) = unpack_k4_scales(w.add(4));
        let sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64(sc.as_ptr().cast())));
        // The low 256 bits take scale 2j, the high 256 bits scale 2j + 1.
        let halves = join512(_mm256_setzero_si256(), _mm256_set1_epi16(1));
        let low = _mm512_set1_epi8(0x0F);
        let mut q = [_mm512_setzero_si512(); 4];
        let mut scale = [_mm512_setzero_si512(); 4];
        for j in 0..4 {
            // 32 bytes hold elements 64j.. (low nibbles) and 64j + 32.. (high nibbles).
            let qv = load256(w.add(16 + 32 * j));
            q[j] = _mm512_and_si512(join512(qv, _mm256_srli_epi16::<4>(qv)), low);
            let first = _mm512_set1_epi16(2 * j as i16);
            scale[j] = _mm512_permutexvar_epi16(_mm512_add_epi16(halves, first), sc);
        }
        Q4KZmmPrep {
            q,
            scale,
            mins: mins16(&mins),
        }
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(p: &Q4KZmmPrep, w: *const u8, a: *const u8) -> Block {
        let mut acc = _mm512_setzero_si512();
        for j in 0..4 {
            let y = load512(a.add(Q8K_QS + 64 * j));
            // `vpdpwssd`: the i16 pair products with the scales, summed into `acc` (exact:
            // no saturation).
            acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(p.q[j], y), p.scale[j]);
        }
        let ad = f32_at(a);
        Block {
            s: fold512(acc),
            d: f16_at(w) * ad,
            extra: 0.0,
            m: min_part16(a, p.mins),
            dmin: f16_at(w.add(2)) * ad,
        }
    }
}

impl Pair for Q6KZmm {
    const W: GgmlType = GgmlType::Q6K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        Self::finish::<I>(&Self::prep(w), w, a)
    }
}

/// A Q6_K block as four 64-quant vectors of `x = q − 32` (−32..=31), as magnitudes `|x|`
/// and masks of the negative ones, with their i16 scale vectors. As for [`Q6KPrep`](super::kquants::Q6KPrep), the
/// activations take the signs (negated under the mask), which is exact for activations in
/// −127..=127.
#[derive(Clone, Copy)]
pub(super) struct Q6KZmmPrep {
    mag: [__m512i; 4],
    neg: [__mmask64; 4],
    scale: [__m512i; 4],
}

impl SplitK for Q6KZmm {
    type Prep = Q6KZmmPrep;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> Q6KZmmPrep {
        // The 16 sub-block scales as i16; 128-bit lane k of a 512-bit vector is 16 quants,
        // i.e. one sub-block, so lane k takes scale `first + k`.
        let sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(192).cast())));
        let lanes = load512(SUB_BLOCK_OF_LANE.as_ptr().cast());
        let low = _mm512_set1_epi8(0x0F);
        let three = _mm512_set1_epi8(3);
        let m32 = _mm512_set1_epi8(32);
        let mut mag = [_mm512_setzero_si512(); 4];
        let mut neg = [0; 4];
        let mut scale = [_mm512_setzero_si512(); 4];
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
                let x = _mm512_sub_epi8(q, m32);
                let i = 2 * half + g;
                mag[i] = _mm512_abs_epi8(x);
                neg[i] = _mm512_movepi8_mask(x);
                let first = _mm512_set1_epi16((8 * half + 4 * g) as i16);
                scale[i] = _mm512_permutexvar_epi16(_mm512_add_epi16(lanes, first), sc);
            }
        }
        Q6KZmmPrep { mag, neg, scale }
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(p: &Q6KZmmPrep, w: *const u8, a: *const u8) -> Block {
        let zero = _mm512_setzero_si512();
        let mut acc = _mm512_setzero_si512();
        for i in 0..4 {
            let y = load512(a.add(Q8K_QS + 64 * i));
            let y = _mm512_mask_sub_epi8(y, p.neg[i], zero, y);
            acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(p.mag[i], y), p.scale[i]);
        }
        Block::plain(fold512(acc), f16_at(w.add(208)) * f32_at(a), 0.0)
    }
}
