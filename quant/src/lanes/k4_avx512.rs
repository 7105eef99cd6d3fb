//! Q4_K panel GEMM on 512-bit vectors: two panels (sixteen weight rows) per tile, one f32
//! lane per row, so each broadcast of four activation bytes feeds one `vpdpbusd` for all
//! sixteen rows (the 256-bit kernel in `x86` needs one per eight). Every lane does the
//! 256-bit kernel's integer and float steps in the same order, so the results are the
//! scalar twin's bits.

use std::arch::x86_64::*;

use super::x86::k4_bsum_pairs;
use super::{k4, Problem, PANEL_ROWS};
use crate::matmul::OutputTile;

/// Activation rows per micro-tile.
const TILE_VECS: usize = 8;

/// Sixteen weight rows: two full groups of eight, their panels and where their results go.
pub(super) struct Pair {
    /// Each group's panel (`nb` Q4_K panel blocks).
    pub(super) panels: [*const u8; 2],
    /// The first group's first row in the output tile (the second's is eight on).
    pub(super) r0: usize,
}

/// The pair's panels against every activation row of `p`.
///
/// # Safety
/// `p` checked (Q4_K); both panels hold `nb` panel blocks; rows `r0..r0 + 16` exist in
/// `out`; AVX2, FMA, F16C and AVX-512 F/BW/VL/VNNI available.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn gemm(p: &Problem<'_>, pair: &Pair, out: &mut OutputTile<'_>) {
    let mut v = 0;
    while v + TILE_VECS <= p.n_vecs {
        tile::<TILE_VECS>(p, pair, v, out);
        v += TILE_VECS;
    }
    while v < p.n_vecs {
        tile::<1>(p, pair, v, out);
        v += 1;
    }
}

/// The 32 bytes at `off` of block `k` of both panels, as one vector (first panel low).
#[inline(always)]
unsafe fn both(pair: &Pair, blk: usize, off: usize) -> __m512i {
    let lo = _mm256_loadu_si256(pair.panels[0].add(blk + off).cast());
    let hi = _mm256_loadu_si256(pair.panels[1].add(blk + off).cast());
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// The 8 f16 at `off` of block `k` of both panels, widened to sixteen f32 lanes.
#[inline(always)]
unsafe fn halves(pair: &Pair, blk: usize, off: usize) -> __m512 {
    let lo = _mm_loadu_si128(pair.panels[0].add(blk + off).cast());
    let hi = _mm_loadu_si128(pair.panels[1].add(blk + off).cast());
    _mm512_cvtph_ps(_mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi))
}

/// Sub-block `j`'s 6-bit scale (`nibble` 0) or minimum (`nibble` 4, with `low` the
/// minimums' word) from the three scale words of each lane (ggml's `get_scale_min_k4`).
#[inline(always)]
unsafe fn six_bit(j: usize, low: __m512i, high: __m512i, nibble: i32) -> __m512i {
    let bits = |x: __m512i, shift: i32, mask: i32| {
        _mm512_and_si512(
            _mm512_srl_epi32(x, _mm_cvtsi32_si128(shift)),
            _mm512_set1_epi32(mask),
        )
    };
    let s = 8 * (j % 4) as i32;
    if j < 4 {
        bits(low, s, 63)
    } else {
        _mm512_or_si512(
            bits(high, s + nibble, 15),
            _mm512_slli_epi32::<4>(bits(low, s + 6, 3)),
        )
    }
}

/// Minimums `2t` and `2t + 1` of each lane as an i16 pair.
#[inline(always)]
unsafe fn min_pair(t: usize, low: __m512i, high: __m512i) -> __m512i {
    _mm512_or_si512(
        six_bit(2 * t, low, high, 4),
        _mm512_slli_epi32::<16>(six_bit(2 * t + 1, low, high, 4)),
    )
}

/// Activation rows `v0..v0 + N` against the pair.
#[inline(always)]
unsafe fn tile<const N: usize>(p: &Problem<'_>, pair: &Pair, v0: usize, out: &mut OutputTile<'_>) {
    let a: [*const u8; N] = std::array::from_fn(|c| p.a.as_ptr().add((v0 + c) * p.a_row));
    let mut acc = [_mm512_setzero_ps(); N];
    let low = _mm512_set1_epi8(0x0F);
    for k in 0..p.nb {
        let blk = k * PANEL_ROWS * k4::W_BYTES;
        // The 6-bit scales and minimums, lane per row (see `k4_scales` in `x86`).
        let (sa, sb, sc) = (
            both(pair, blk, k4::P_SCALES),
            both(pair, blk, k4::P_SCALES + 32),
            both(pair, blk, k4::P_SCALES + 64),
        );
        let mut isum = [_mm512_setzero_si512(); N];
        // Sub-block by sub-block (the low nibbles of a 64-element chunk, then its high
        // nibbles): eight weight vectors held, every activation row run against them.
        for j in 0..8 {
            let (chunk, high) = (j / 2, j % 2 == 1);
            let mut w = [_mm512_setzero_si512(); 8];
            for (h, w) in w.iter_mut().enumerate() {
                let x = both(pair, blk, 256 * chunk + 32 * h);
                let x = if high { _mm512_srli_epi16::<4>(x) } else { x };
                *w = _mm512_and_si512(x, low);
            }
            let scale = six_bit(j, sa, sc, 0);
            for c in 0..N {
                let aq = a[c].add(k * k4::A_BYTES + k4::A_QS + 32 * j);
                let bcast =
                    |q: usize| _mm512_set1_epi32(aq.add(4 * q).cast::<i32>().read_unaligned());
                // Two chains, as in the 256-bit kernel; the sums are exact either way.
                let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                for q in (0..8).step_by(2) {
                    s0 = _mm512_dpbusd_epi32(s0, w[q], bcast(q));
                    s1 = _mm512_dpbusd_epi32(s1, w[q + 1], bcast(q + 1));
                }
                let s = _mm512_add_epi32(s0, s1);
                isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(s, scale));
            }
        }
        // Minimums as i16 pairs per row lane, (m_2t, m_2t+1) in pair t, for `vpdpwssd`.
        // Plain calls: a closure (`array::from_fn`, `map`) may stay out of line here and
        // lose the target features.
        let m_pairs = [
            min_pair(0, sb, sc),
            min_pair(1, sb, sc),
            min_pair(2, sb, sc),
            min_pair(3, sb, sc),
        ];
        let dw = halves(pair, blk, k4::P_D);
        let dmin = halves(pair, blk, k4::P_DMIN);
        for c in 0..N {
            let ab = a[c].add(k * k4::A_BYTES);
            // Written out: an iterator here would not inline into the target-feature build.
            let pairs = k4_bsum_pairs(ab);
            let mut msum = _mm512_setzero_si512();
            msum = _mm512_dpwssd_epi32(msum, m_pairs[0], _mm512_set1_epi32(pairs[0]));
            msum = _mm512_dpwssd_epi32(msum, m_pairs[1], _mm512_set1_epi32(pairs[1]));
            msum = _mm512_dpwssd_epi32(msum, m_pairs[2], _mm512_set1_epi32(pairs[2]));
            msum = _mm512_dpwssd_epi32(msum, m_pairs[3], _mm512_set1_epi32(pairs[3]));
            let da = _mm512_set1_ps(ab.cast::<f32>().read_unaligned());
            let t = _mm512_mul_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(dw, da));
            acc[c] = _mm512_add_ps(acc[c], t);
            let t = _mm512_mul_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(dmin, da));
            acc[c] = _mm512_sub_ps(acc[c], t);
        }
    }
    for (c, acc) in acc.into_iter().enumerate() {
        let mut lanes = [0f32; 2 * PANEL_ROWS];
        _mm512_storeu_ps(lanes.as_mut_ptr(), acc);
        out.vector_mut(v0 + c)[pair.r0..pair.r0 + 2 * PANEL_ROWS].copy_from_slice(&lanes);
    }
}
