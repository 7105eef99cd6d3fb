//! The 256-element K-quant pairs against Q8_K (Q2_K … Q6_K, IQ4_XS) on 256-bit vectors.
//! Q4_K, Q5_K and Q6_K are [`SplitK`] types, so the multi-vector kernels serve them too.
//! Q8_K holds `d: f32` at byte 0, `qs` at 4 and `bsums: [i16; 16]` at 260.

use std::arch::x86_64::*;

use super::{f32_at, load256, nibbles32, srl16, u32_at, Block, Isa, Pair, SplitK};
use crate::blocks::BlockQ8K;
use crate::dot::x86::f16_at;
use crate::formats::IQ4_VALUES;
use crate::GgmlType;

/// Byte offset of the quants in a Q8_K block.
pub(super) const Q8K_QS: usize = std::mem::offset_of!(BlockQ8K, qs);
/// Byte offset of the sixteen sums in a Q8_K block.
const Q8K_BSUMS: usize = std::mem::offset_of!(BlockQ8K, bsums);

pub(super) struct Q2K;
pub(super) struct Q3K;
pub(super) struct Q4K;
pub(super) struct Q5K;
pub(super) struct Q6K;
pub(super) struct Iq4Xs;

/// The sixteen i8 sub-block scales in `sc` widened to i16: sub-blocks 0..8, then 8..16,
/// each group in both 128-bit halves, for [`pair_scales`].
#[inline(always)]
unsafe fn scales16(sc: __m128i) -> [__m256i; 2] {
    [
        _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc)),
        _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_srli_si128::<8>(sc))),
    ]
}

/// The scale vector for two consecutive 16-quant sub-blocks `k`, `k + 1` (`k` even),
/// matching the sixteen i16 pair sums of a `vpmaddubsw` over 32 quants: scale `k` in every
/// i16 lane of the low half, `k + 1` in the high half (one in-lane shuffle of
/// [`scales16`]).
#[inline(always)]
unsafe fn pair_scales(s16: &[__m256i; 2], k: usize) -> __m256i {
    let j = k % 8;
    let lo = i16::from_le_bytes([2 * j as u8, 2 * j as u8 + 1]);
    let hi = lo + 0x0202;
    _mm256_shuffle_epi8(
        s16[k / 8],
        _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo)),
    )
}

/// Eight `i32` lanes whose total is `Σ_j bsums[j] · mins[j]` for the Q8_K block at `a`,
/// sixteen i16 minimums given ([`Block::m`]).
#[inline(always)]
pub(super) unsafe fn min_part16(a: *const u8, mins: __m256i) -> __m256i {
    _mm256_madd_epi16(load256(a.add(Q8K_BSUMS)), mins)
}

/// Q4_K/Q5_K's eight minimums (one per 32 quants) as the sixteen i16 minimums, one per
/// `bsums` entry, that [`min_part16`] takes.
#[inline(always)]
pub(super) unsafe fn mins16(mins: &[u8; 8]) -> __m256i {
    let m = _mm_cvtepu8_epi16(_mm_loadl_epi64(mins.as_ptr().cast()));
    _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m))
}

/// Q4_K/Q5_K's twelve scale bytes → (eight 6-bit scales, eight 6-bit minimums).
#[inline(always)]
pub(super) unsafe fn unpack_k4_scales(p: *const u8) -> ([u8; 8], [u8; 8]) {
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
    const MINS: bool = true;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        let packed = _mm_loadu_si128(w.cast());
        let mins = _mm_and_si128(_mm_srli_epi16::<4>(packed), _mm_set1_epi8(0x0F));
        let sc = scales16(_mm_and_si128(packed, _mm_set1_epi8(0x0F)));
        let mut acc = _mm256_setzero_si256();
        for half in 0..2 {
            let qv = load256(w.add(16 + 32 * half));
            for shift in 0..4 {
                let q = _mm256_and_si256(srl16(qv, 2 * shift as u32), _mm256_set1_epi8(3));
                let y = load256(a.add(Q8K_QS + 128 * half + 32 * shift));
                let p = _mm256_maddubs_epi16(q, y);
                acc = I::madd_acc(acc, p, pair_scales(&sc, 8 * half + 2 * shift));
            }
        }
        let ad = f32_at(a);
        Block {
            s: acc,
            d: f16_at(w.add(80)) * ad,
            extra: 0.0,
            m: min_part16(a, _mm256_cvtepu8_epi16(mins)),
            dmin: f16_at(w.add(82)) * ad,
        }
    }
}

impl Pair for Q3K {
    const W: GgmlType = GgmlType::Q3K;

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
        let sc = scales16(_mm_sub_epi8(sc, _mm_set1_epi8(32)));
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
                acc = I::madd_acc(acc, p, pair_scales(&sc, k));
            }
        }
        Block::plain(acc, f16_at(w.add(108)) * f32_at(a), 0.0)
    }
}

impl Pair for Q4K {
    const W: GgmlType = GgmlType::Q4K;
    const MINS: bool = true;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        Self::finish::<I>(&Self::prep(w), w, a)
    }
}

/// A Q4_K or Q5_K block's quants (0..=31) in eight groups of 32, each group's scale
/// broadcast to i16 lanes, and its minimums as [`mins16`] widens them.
#[derive(Clone, Copy)]
pub(super) struct K4Prep {
    q: [__m256i; 8],
    scale: [__m256i; 8],
    mins: __m256i,
}

/// The scale vectors and minimums of a [`K4Prep`], from the twelve scale bytes at `p`.
#[inline(always)]
unsafe fn k4_scales(p: *const u8) -> ([__m256i; 8], __m256i) {
    let (sc, mins) = unpack_k4_scales(p);
    let mut scale = [_mm256_setzero_si256(); 8];
    for (v, &s) in scale.iter_mut().zip(&sc) {
        *v = _mm256_set1_epi16(i16::from(s));
    }
    (scale, mins16(&mins))
}

/// The [`Block`] of the Q4_K/Q5_K block at `w` (`d` at byte 0, `dmin` at byte 2), prepared
/// as `p`, against the Q8_K block at `a`.
#[inline(always)]
unsafe fn k4_finish<I: Isa>(p: &K4Prep, w: *const u8, a: *const u8) -> Block {
    let mut acc = _mm256_setzero_si256();
    for j in 0..4 {
        let y_lo = load256(a.add(Q8K_QS + 64 * j));
        let y_hi = load256(a.add(Q8K_QS + 64 * j + 32));
        let p_lo = _mm256_maddubs_epi16(p.q[2 * j], y_lo);
        let p_hi = _mm256_maddubs_epi16(p.q[2 * j + 1], y_hi);
        acc = I::madd_acc(acc, p_lo, p.scale[2 * j]);
        acc = I::madd_acc(acc, p_hi, p.scale[2 * j + 1]);
    }
    let ad = f32_at(a);
    Block {
        s: acc,
        d: f16_at(w) * ad,
        extra: 0.0,
        m: min_part16(a, p.mins),
        dmin: f16_at(w.add(2)) * ad,
    }
}

impl SplitK for Q4K {
    type Prep = K4Prep;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> K4Prep {
        let (scale, mins) = k4_scales(w.add(4));
        let low = _mm256_set1_epi8(0x0F);
        let mut q = [_mm256_setzero_si256(); 8];
        for j in 0..4 {
            let qv = load256(w.add(16 + 32 * j));
            q[2 * j] = _mm256_and_si256(qv, low);
            q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16::<4>(qv), low);
        }
        K4Prep { q, scale, mins }
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(p: &K4Prep, w: *const u8, a: *const u8) -> Block {
        k4_finish::<I>(p, w, a)
    }
}

impl Pair for Q5K {
    const W: GgmlType = GgmlType::Q5K;
    const MINS: bool = true;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        Self::finish::<I>(&Self::prep(w), w, a)
    }
}

impl SplitK for Q5K {
    type Prep = K4Prep;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> K4Prep {
        let (scale, mins) = k4_scales(w.add(4));
        let low = _mm256_set1_epi8(0x0F);
        let one = _mm256_set1_epi8(1);
        let hb = load256(w.add(16));
        let mut q = [_mm256_setzero_si256(); 8];
        for j in 0..4 {
            let qv = load256(w.add(48 + 32 * j));
            let b_lo = _mm256_and_si256(srl16(hb, 2 * j as u32), one);
            let b_hi = _mm256_and_si256(srl16(hb, 2 * j as u32 + 1), one);
            q[2 * j] = _mm256_or_si256(_mm256_and_si256(qv, low), _mm256_slli_epi16::<4>(b_lo));
            q[2 * j + 1] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(qv), low),
                _mm256_slli_epi16::<4>(b_hi),
            );
        }
        K4Prep { q, scale, mins }
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(p: &K4Prep, w: *const u8, a: *const u8) -> Block {
        k4_finish::<I>(p, w, a)
    }
}

impl Pair for Q6K {
    const W: GgmlType = GgmlType::Q6K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        Self::finish::<I>(&Self::prep(w), w, a)
    }
}

/// A Q6_K block's sixteen groups of 32 quants as `x = q − 32` (−32..=31): their
/// magnitudes `|x|`, the bytes `x` whose signs `vpsignb` moves onto the activations, and
/// the i16 scale vectors of each group's two 16-quant sub-blocks. `|x| · (sign(x)·y)` is
/// `x · y` exactly for activations in −127..=127, and `vpmaddubsw` sums two such products
/// (at most 2·32·127 in magnitude) without saturating.
#[derive(Clone, Copy)]
pub(super) struct Q6KPrep {
    mag: [__m256i; 8],
    sign: [__m256i; 8],
    scale: [__m256i; 8],
}

impl SplitK for Q6K {
    type Prep = Q6KPrep;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> Q6KPrep {
        let sc = scales16(_mm_loadu_si128(w.add(192).cast()));
        let low = _mm256_set1_epi8(0x0F);
        let three = _mm256_set1_epi8(3);
        let m32 = _mm256_set1_epi8(32);
        let mut mag = [_mm256_setzero_si256(); 8];
        let mut sign = [_mm256_setzero_si256(); 8];
        let mut scale = [_mm256_setzero_si256(); 8];
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
                let x = _mm256_sub_epi8(_mm256_or_si256(n, _mm256_slli_epi16::<4>(h)), m32);
                let i = 4 * half + g;
                mag[i] = _mm256_abs_epi8(x);
                sign[i] = x;
                scale[i] = pair_scales(&sc, 2 * i);
            }
        }
        Q6KPrep { mag, sign, scale }
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(p: &Q6KPrep, w: *const u8, a: *const u8) -> Block {
        let mut acc = _mm256_setzero_si256();
        for i in 0..8 {
            let y = _mm256_sign_epi8(load256(a.add(Q8K_QS + 32 * i)), p.sign[i]);
            let d = _mm256_maddubs_epi16(p.mag[i], y);
            acc = I::madd_acc(acc, d, p.scale[i]);
        }
        Block::plain(acc, f16_at(w.add(208)) * f32_at(a), 0.0)
    }
}

impl Pair for Iq4Xs {
    const W: GgmlType = GgmlType::Iq4Xs;

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
            acc = I::madd_acc(acc, p, _mm256_set1_epi16(ls));
        }
        Block::plain(acc, f16_at(w) * f32_at(a), 0.0)
    }
}
