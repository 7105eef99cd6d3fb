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
use crate::dot::{VecDotFn, VecDotMultiFn};
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
    const W: GgmlType;
    const A: GgmlType;
    /// Whether the blocks carry a minimum term ([`Block::m`], [`Block::dmin`]).
    const MINS: bool = false;

    /// # Safety
    /// `w` and `a` must be readable for one block of `W` and `A`; only inline into
    /// functions compiled with AVX2, FMA and F16C (and the ISA's features).
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block;
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

/// Blocks `k0` and `k0 + 1` (those below `take`) of every activation row: each weight block
/// is prepared once and finished against each row. Returns, per row, `hadd(s[k0], s[k0+1])`
/// (the first step of [`reduce8`]).
///
/// # Safety
/// As [`batch`], for every row `a[v] + a_off`.
// Rows and blocks are indexed in lockstep across several arrays.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn pair_multi<I: Isa, P: Split, const N: usize>(
    k0: usize,
    take: usize,
    w: *const u8,
    a: &[*const u8; N],
    a_off: usize,
) -> [__m256i; N] {
    let (wb, ab) = (P::W.block_bytes(), P::A.block_bytes());
    let mut s = [[_mm256_setzero_si256(); 2]; N];
    for j in 0..2 {
        let k = k0 + j;
        if k < take {
            let x = P::prep(w.add(k * wb));
            for v in 0..N {
                s[v][j] = P::finish::<I>(x, a[v].add(a_off + k * ab));
            }
        }
    }
    let mut h = [_mm256_setzero_si256(); N];
    for v in 0..N {
        h[v] = _mm256_hadd_epi32(s[v][0], s[v][1]);
    }
    h
}

/// The f16 at `p + k * stride` for each block `k < take` (0 for the others), widened to
/// f32 lanes `k`: exactly the values [`f16_at`] gives one at a time.
///
/// # Safety
/// `p + k * stride` must be readable for 2 bytes for `k < take`; only inline into
/// functions compiled with AVX2 and F16C.
#[inline(always)]
unsafe fn halves8(p: *const u8, stride: usize, take: usize) -> __m256 {
    let mut h = _mm_setzero_si128();
    h = _mm_insert_epi16::<0>(h, half_bits(p, stride, 0, take));
    h = _mm_insert_epi16::<1>(h, half_bits(p, stride, 1, take));
    h = _mm_insert_epi16::<2>(h, half_bits(p, stride, 2, take));
    h = _mm_insert_epi16::<3>(h, half_bits(p, stride, 3, take));
    h = _mm_insert_epi16::<4>(h, half_bits(p, stride, 4, take));
    h = _mm_insert_epi16::<5>(h, half_bits(p, stride, 5, take));
    h = _mm_insert_epi16::<6>(h, half_bits(p, stride, 6, take));
    h = _mm_insert_epi16::<7>(h, half_bits(p, stride, 7, take));
    _mm256_cvtph_ps(h)
}

/// The 16 bits at `p + k * stride` if `k < take`, else 0.
///
/// # Safety
/// `p + k * stride` must be readable for 2 bytes if `k < take`.
#[inline(always)]
unsafe fn half_bits(p: *const u8, stride: usize, k: usize, take: usize) -> i32 {
    if k < take {
        i32::from(p.add(k * stride).cast::<u16>().read_unaligned())
    } else {
        0
    }
}

/// The `take` (at most eight) f32 at `p`, `+0.0` in the lanes above.
///
/// # Safety
/// `p` must be readable for `take` f32; only inline into functions compiled with AVX.
#[inline(always)]
unsafe fn floats8(p: *const f32, take: usize) -> __m256 {
    if take == 8 {
        _mm256_loadu_ps(p)
    } else {
        let mut t = [0f32; 8];
        std::ptr::copy_nonoverlapping(p, t.as_mut_ptr(), take);
        _mm256_loadu_ps(t.as_ptr())
    }
}

/// [`batch`] for `N` activation rows and `TAKE` (at most eight) blocks, each weight block
/// unpacked once. Row `v`'s
/// accumulators receive exactly what [`batch`] would give them: the same per-block `i32`
/// totals (the same `hadd` tree as [`reduce8`], merely interleaved across rows), the same
/// `d` and `extra` lanes (the same f16 values widened exactly, the activations' ones by
/// [`crate::dot::widen_scales`] in `sc[v]` (`d`, `s`) at block `a_off / block_bytes`, and
/// multiplied lane by lane; `+0.0` in the unused lanes) and the same FMA and add.
///
/// # Safety
/// As [`batch`], for every row `a[v] + a_off`.
// Rows and blocks are indexed in lockstep across several arrays.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn batch_multi<I: Isa, P: Split, const N: usize, const TAKE: usize>(
    w: *const u8,
    a: &[*const u8; N],
    a_off: usize,
    sc: &[(*const f32, *const f32); N],
    acc: &mut [__m256; N],
    extra: &mut [__m256; N],
) {
    let take = TAKE;
    let wb = P::W.block_bytes();
    let h01 = pair_multi::<I, P, N>(0, take, w, a, a_off);
    let h23 = pair_multi::<I, P, N>(2, take, w, a, a_off);
    let mut lo = [_mm256_setzero_si256(); N];
    for v in 0..N {
        lo[v] = _mm256_hadd_epi32(h01[v], h23[v]);
    }
    let h45 = pair_multi::<I, P, N>(4, take, w, a, a_off);
    let h67 = pair_multi::<I, P, N>(6, take, w, a, a_off);
    let zero = _mm256_setzero_ps();
    let wd = halves8(w, wb, take);
    let wm = if P::HAS_MIN {
        halves8(w.add(2), wb, take)
    } else {
        zero
    };
    for v in 0..N {
        let hi = _mm256_hadd_epi32(h45[v], h67[v]);
        let totals = _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(lo[v], hi),
            _mm256_permute2x128_si256::<0x31>(lo[v], hi),
        );
        let av = a[v].add(a_off);
        let mut dv = _mm256_mul_ps(wd, floats8(sc[v].0, take));
        let mut ev = if P::HAS_MIN {
            _mm256_mul_ps(wm, floats8(sc[v].1, take))
        } else {
            zero
        };
        // Non-finite scales: as in `batch`, per row.
        let finite = _mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_mul_ps(dv, zero), zero);
        if _mm256_movemask_ps(finite) != 0xFF {
            let (mut d, mut e) = ([0f32; 8], [0f32; 8]);
            _mm256_storeu_ps(d.as_mut_ptr(), dv);
            _mm256_storeu_ps(e.as_mut_ptr(), ev);
            scalar_fixup::<P>(take, w, av, &mut d, &mut e);
            dv = _mm256_loadu_ps(d.as_ptr());
            ev = _mm256_loadu_ps(e.as_ptr());
        }
        let sumi = _mm256_cvtepi32_ps(totals);
        acc[v] = _mm256_fmadd_ps(dv, sumi, acc[v]);
        extra[v] = _mm256_add_ps(extra[v], ev);
    }
}

/// Row `v`'s `d` and `s` scale pointers at block `i` (`s` only read with a minimum).
///
/// # Safety
/// `i <= nb`; `sc[v]` must point at `nb` (with a minimum `2 * nb`) floats.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn scales_at<P: Split, const N: usize>(
    sc: &[*const f32; N],
    nb: usize,
    i: usize,
) -> [(*const f32, *const f32); N] {
    let mut out = [(sc[0], sc[0]); N];
    for v in 0..N {
        let s = if P::HAS_MIN { sc[v].add(nb + i) } else { sc[v] };
        out[v] = (sc[v].add(i), s);
    }
    out
}

/// [`drive`] for `N` activation rows against one weight row of `nb` blocks; `sc[v]` points
/// at row `v`'s `nb` widened `d` scales followed (Q8_1) by its `nb` widened `s` values.
// Rows and blocks are indexed in lockstep across several arrays.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn drive_multi<I: Isa, P: Split, const N: usize>(
    nb: usize,
    w: *const u8,
    a: &[*const u8; N],
    sc: &[*const f32; N],
) -> [f32; N] {
    let (wb, ab) = (P::W.block_bytes(), P::A.block_bytes());
    let mut acc = [_mm256_setzero_ps(); N];
    let mut extra = [_mm256_setzero_ps(); N];
    let mut i = 0;
    while i + 8 <= nb {
        let s = scales_at::<P, N>(sc, nb, i);
        batch_multi::<I, P, N, 8>(w.add(i * wb), a, i * ab, &s, &mut acc, &mut extra);
        i += 8;
    }
    // The last, partial batch, with its length known at compile time.
    let (wt, s) = (w.add(i * wb), scales_at::<P, N>(sc, nb, i));
    let (acc_, extra_) = (&mut acc, &mut extra);
    match nb - i {
        0 => {}
        1 => batch_multi::<I, P, N, 1>(wt, a, i * ab, &s, acc_, extra_),
        2 => batch_multi::<I, P, N, 2>(wt, a, i * ab, &s, acc_, extra_),
        3 => batch_multi::<I, P, N, 3>(wt, a, i * ab, &s, acc_, extra_),
        4 => batch_multi::<I, P, N, 4>(wt, a, i * ab, &s, acc_, extra_),
        5 => batch_multi::<I, P, N, 5>(wt, a, i * ab, &s, acc_, extra_),
        6 => batch_multi::<I, P, N, 6>(wt, a, i * ab, &s, acc_, extra_),
        _ => batch_multi::<I, P, N, 7>(wt, a, i * ab, &s, acc_, extra_),
    }
    let mut out = [0f32; N];
    for v in 0..N {
        out[v] = hsum256_ps(_mm256_add_ps(acc[v], extra[v]));
    }
    out
}

/// # Safety
/// As [`run_avx2`], for every row of `a`; `sc` as for [`drive_multi`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run_avx2_multi<P: Split, const N: usize>(
    nb: usize,
    w: *const u8,
    a: &[*const u8; N],
    sc: &[*const f32; N],
) -> [f32; N] {
    drive_multi::<Avx2, P, N>(nb, w, a, sc)
}

/// # Safety
/// As [`run_vnni`], for every row of `a`; `sc` as for [`drive_multi`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn run_vnni_multi<P: Split, const N: usize>(
    nb: usize,
    w: *const u8,
    a: &[*const u8; N],
    sc: &[*const f32; N],
) -> [f32; N] {
    drive_multi::<Vnni, P, N>(nb, w, a, sc)
}

/// Pointers to the rows and their scales, with their length checked.
type MultiRows<const N: usize> = ([*const u8; N], [*const f32; N]);

/// Checks the [`VecDotMultiFn`] contract and returns the number of blocks and the rows'
/// and scales' pointers.
///
/// # Panics
/// If `n` is not a multiple of the block length or a slice is too short.
fn check_multi<P: Split, const N: usize>(
    n: usize,
    w: &[u8],
    a: &[&[u8]; N],
    sc: &[&[f32]; N],
) -> (usize, MultiRows<N>) {
    let mut nb = 0;
    for row in a {
        nb = check_rows(n, w, row, P::W, P::A);
    }
    let need = if P::HAS_MIN { 2 * nb } else { nb };
    for s in sc {
        assert!(
            s.len() >= need,
            "{}·{} multi dot: {} widened scales, need {need}",
            P::W,
            P::A,
            s.len()
        );
    }
    (nb, (a.map(<[u8]>::as_ptr), sc.map(<[f32]>::as_ptr)))
}

fn avx2_dot_multi<P: Split, const N: usize>(
    n: usize,
    w: &[u8],
    a: [&[u8]; N],
    sc: [&[f32]; N],
) -> [f32; N] {
    let (nb, (ap, sp)) = check_multi::<P, N>(n, w, &a, &sc);
    debug_assert!(CpuLevel::Avx2.is_supported());
    // SAFETY: `avx2_multi` hands this kernel out only for CpuLevel::Avx2/Avx512, and
    // `dot::kernel_multi` returns it only after `level.is_supported()` confirmed AVX2, FMA
    // and F16C; `check_multi` proved the weight row and every activation row hold `nb`
    // blocks and every scale slice the `nb` (or `2 * nb`) floats `drive_multi` reads.
    unsafe { run_avx2_multi::<P, N>(nb, w.as_ptr(), &ap, &sp) }
}

fn vnni_dot_multi<P: Split, const N: usize>(
    n: usize,
    w: &[u8],
    a: [&[u8]; N],
    sc: [&[f32]; N],
) -> [f32; N] {
    let (nb, (ap, sp)) = check_multi::<P, N>(n, w, &a, &sc);
    debug_assert!(CpuLevel::Avx512.is_supported());
    // SAFETY: `avx512_multi` hands this kernel out only for CpuLevel::Avx512, and
    // `dot::kernel_multi` returns it only after `level.is_supported()` confirmed AVX2, FMA,
    // F16C and AVX-512 F/BW/VL/VNNI; `check_multi` proved the weight row and every
    // activation row hold `nb` blocks and every scale slice the `nb` (or `2 * nb`) floats
    // `drive_multi` reads.
    unsafe { run_vnni_multi::<P, N>(nb, w.as_ptr(), &ap, &sp) }
}

/// Per-row `f32` lanes of one batch of eight blocks.
type Lanes<const N: usize> = [[f32; 8]; N];

/// Blocks `k0` and `k0 + 1` (those below `TAKE`) of a K-quant against every activation
/// row, each weight block prepared once. Returns, per row, `hadd(s[k0], s[k0+1])` and the
/// same of the minimum parts [`Block::m`] (the first step of [`reduce8`]; zero vectors for
/// blocks from `TAKE` on), and puts the blocks' `d`, `dmin` and `extra` in lanes `k0` and
/// `k0 + 1` of `d`, `dm` and `e`.
///
/// # Safety
/// As [`batch`], for every row `a[v] + a_off`.
// Rows and blocks are indexed in lockstep across several arrays.
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
#[inline(always)]
unsafe fn pair_k<I: Isa, P: SplitK, const N: usize, const TAKE: usize>(
    k0: usize,
    w: *const u8,
    a: &[*const u8; N],
    a_off: usize,
    d: &mut Lanes<N>,
    dm: &mut Lanes<N>,
    e: &mut Lanes<N>,
) -> ([__m256i; N], [__m256i; N]) {
    let (wb, ab) = (P::W.block_bytes(), P::A.block_bytes());
    let mut s = [[_mm256_setzero_si256(); 2]; N];
    let mut m = [[_mm256_setzero_si256(); 2]; N];
    for j in 0..2 {
        let k = k0 + j;
        if k < TAKE {
            let wk = w.add(k * wb);
            let p = P::prep(wk);
            for v in 0..N {
                let b = P::finish::<I>(&p, wk, a[v].add(a_off + k * ab));
                s[v][j] = b.s;
                m[v][j] = b.m;
                d[v][k] = b.d;
                dm[v][k] = b.dmin;
                e[v][k] = b.extra;
            }
        }
    }
    let mut hs = [_mm256_setzero_si256(); N];
    let mut hm = [_mm256_setzero_si256(); N];
    for v in 0..N {
        hs[v] = _mm256_hadd_epi32(s[v][0], s[v][1]);
        if P::MINS {
            hm[v] = _mm256_hadd_epi32(m[v][0], m[v][1]);
        }
    }
    (hs, hm)
}

/// [`batch`] for `N` activation rows and `TAKE` (at most eight) blocks of a K-quant, each
/// weight block prepared once. Row `v` gets exactly [`batch`]'s arithmetic: the same
/// [`Block`]s, [`reduce8`] totals (the same `hadd` tree, interleaved across rows),
/// [`min_terms`], fix-up, FMA and add.
///
/// # Safety
/// As [`batch`], for every row `a[v] + a_off`.
// Rows and blocks are indexed in lockstep across several arrays.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn batch_k<I: Isa, P: SplitK, const N: usize, const TAKE: usize>(
    w: *const u8,
    a: &[*const u8; N],
    a_off: usize,
    acc: &mut [__m256; N],
    extra: &mut [__m256; N],
) {
    let mut d = [[0f32; 8]; N];
    let mut dm = [[0f32; 8]; N];
    let mut e = [[0f32; 8]; N];
    let (s01, m01) = pair_k::<I, P, N, TAKE>(0, w, a, a_off, &mut d, &mut dm, &mut e);
    let (s23, m23) = pair_k::<I, P, N, TAKE>(2, w, a, a_off, &mut d, &mut dm, &mut e);
    let (s45, m45) = pair_k::<I, P, N, TAKE>(4, w, a, a_off, &mut d, &mut dm, &mut e);
    let (s67, m67) = pair_k::<I, P, N, TAKE>(6, w, a, a_off, &mut d, &mut dm, &mut e);
    let zero = _mm256_setzero_ps();
    for v in 0..N {
        if P::MINS {
            let msum = reduce_pairs(m01[v], m23[v], m45[v], m67[v]);
            min_terms(msum, &dm[v], &mut e[v]);
        }
        // Non-finite scales: as in `batch`, per row.
        let dv = _mm256_loadu_ps(d[v].as_ptr());
        let finite = _mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_mul_ps(dv, zero), zero);
        if _mm256_movemask_ps(finite) != 0xFF {
            scalar_fixup::<P>(TAKE, w, a[v].add(a_off), &mut d[v], &mut e[v]);
        }
        let sumi = _mm256_cvtepi32_ps(reduce_pairs(s01[v], s23[v], s45[v], s67[v]));
        acc[v] = _mm256_fmadd_ps(_mm256_loadu_ps(d[v].as_ptr()), sumi, acc[v]);
        extra[v] = _mm256_add_ps(extra[v], _mm256_loadu_ps(e[v].as_ptr()));
    }
}

/// [`drive`] for `N` activation rows against one K-quant weight row of `nb` blocks.
// Rows are indexed in lockstep across several arrays.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn drive_k<I: Isa, P: SplitK, const N: usize>(
    nb: usize,
    w: *const u8,
    a: &[*const u8; N],
) -> [f32; N] {
    let (wb, ab) = (P::W.block_bytes(), P::A.block_bytes());
    let mut acc = [_mm256_setzero_ps(); N];
    let mut extra = [_mm256_setzero_ps(); N];
    let mut i = 0;
    while i + 8 <= nb {
        batch_k::<I, P, N, 8>(w.add(i * wb), a, i * ab, &mut acc, &mut extra);
        i += 8;
    }
    // The last, partial batch, with its length known at compile time.
    let (wt, off, acc_, extra_) = (w.add(i * wb), i * ab, &mut acc, &mut extra);
    match nb - i {
        0 => {}
        1 => batch_k::<I, P, N, 1>(wt, a, off, acc_, extra_),
        2 => batch_k::<I, P, N, 2>(wt, a, off, acc_, extra_),
        3 => batch_k::<I, P, N, 3>(wt, a, off, acc_, extra_),
        4 => batch_k::<I, P, N, 4>(wt, a, off, acc_, extra_),
        5 => batch_k::<I, P, N, 5>(wt, a, off, acc_, extra_),
        6 => batch_k::<I, P, N, 6>(wt, a, off, acc_, extra_),
        _ => batch_k::<I, P, N, 7>(wt, a, off, acc_, extra_),
    }
    let mut out = [0f32; N];
    for v in 0..N {
        out[v] = hsum256_ps(_mm256_add_ps(acc[v], extra[v]));
    }
    out
}

/// # Safety
/// As [`run_avx2`], for every row of `a`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run_avx2_k<P: SplitK, const N: usize>(
    nb: usize,
    w: *const u8,
    a: &[*const u8; N],
) -> [f32; N] {
    drive_k::<Avx2, P, N>(nb, w, a)
}

/// # Safety
/// As [`run_vnni`], for every row of `a`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn run_vnni_k<P: SplitK, const N: usize>(
    nb: usize,
    w: *const u8,
    a: &[*const u8; N],
) -> [f32; N] {
    drive_k::<Vnni, P, N>(nb, w, a)
}

/// Checks the [`VecDotMultiFn`] contract for a K-quant (whose activations, Q8_K, carry f32
/// scales, so no widened scales are needed) and returns the number of blocks.
fn check_k<P: SplitK, const N: usize>(n: usize, w: &[u8], a: &[&[u8]; N]) -> usize {
    let mut nb = 0;
    for row in a {
        nb = check_rows(n, w, row, P::W, P::A);
    }
    nb
}

fn avx2_dot_k<P: SplitK, const N: usize>(
    n: usize,
    w: &[u8],
    a: [&[u8]; N],
    _scales: [&[f32]; N],
) -> [f32; N] {
    let nb = check_k::<P, N>(n, w, &a);
    debug_assert!(CpuLevel::Avx2.is_supported());
    // SAFETY: `avx2_multi` and `avx512_multi` hand this kernel out only for
    // CpuLevel::Avx2/Avx512 (the latter a superset of the former's features), and
    // `dot::kernel_multi` returns it only after `level.is_supported()` confirmed AVX2, FMA
    // and F16C; `check_k` proved the weight row and every activation row hold `nb` blocks.
    unsafe { run_avx2_k::<P, N>(nb, w.as_ptr(), &a.map(<[u8]>::as_ptr)) }
}

fn vnni_dot_k<P: SplitK, const N: usize>(
    n: usize,
    w: &[u8],
    a: [&[u8]; N],
    _scales: [&[f32]; N],
) -> [f32; N] {
    let nb = check_k::<P, N>(n, w, &a);
    debug_assert!(CpuLevel::Avx512.is_supported());
    // SAFETY: `avx512_multi` hands this kernel out only for CpuLevel::Avx512, and
    // `dot::kernel_multi` returns it only after `level.is_supported()` confirmed AVX2, FMA,
    // F16C and AVX-512 F/BW/VL/VNNI; `check_k` proved the weight row and every activation
    // row hold `nb` blocks.
    unsafe { run_vnni_k::<P, N>(nb, w.as_ptr(), &a.map(<[u8]>::as_ptr)) }
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

/// AVX-512 multi-vector kernels (the 32-element quantized types on VNNI, Q4_K and Q6_K
/// with the 512-bit bodies, Q5_K with the AVX2 body, as [`avx512`] picks them).
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
        // The AVX2 body, as `avx512` hands out for the single row.
        T::Q5K => avx2_dot_k::<Q5K, N>,
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
        split_block::<I, Self>(w, a)
    }
}

impl Split for Q40 {
    const HAS_MIN: bool = false;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> __m256i {
        _mm256_sub_epi8(nibbles32(w.add(2)), _mm256_set1_epi8(8))
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(x: __m256i, a: *const u8) -> __m256i {
        dot_i8i8::<I>(x, load256(a.add(2)))
    }
}

impl Pair for Q41 {
    const W: GgmlType = GgmlType::Q4_1;
    const A: GgmlType = GgmlType::Q8_1;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        split_block::<I, Self>(w, a)
    }
}

impl Split for Q41 {
    const HAS_MIN: bool = true;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> __m256i {
        nibbles32(w.add(4))
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(x: __m256i, a: *const u8) -> __m256i {
        I::dot_u8i8(x, load256(a.add(4)))
    }
}

impl Pair for Q50 {
    const W: GgmlType = GgmlType::Q5_0;
    const A: GgmlType = GgmlType::Q8_0;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        split_block::<I, Self>(w, a)
    }
}

impl Split for Q50 {
    const HAS_MIN: bool = false;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> __m256i {
        // q − 16 = nibble where the fifth bit is set, nibble | 0xF0 (as i8) where not.
        let high = _mm256_andnot_si256(bits32(w.add(2)), _mm256_set1_epi8(0xF0_u8 as i8));
        _mm256_or_si256(nibbles32(w.add(6)), high)
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(x: __m256i, a: *const u8) -> __m256i {
        dot_i8i8::<I>(x, load256(a.add(2)))
    }
}

impl Pair for Q51 {
    const W: GgmlType = GgmlType::Q5_1;
    const A: GgmlType = GgmlType::Q8_1;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        split_block::<I, Self>(w, a)
    }
}

impl Split for Q51 {
    const HAS_MIN: bool = true;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> __m256i {
        let high = _mm256_and_si256(bits32(w.add(4)), _mm256_set1_epi8(0x10));
        _mm256_or_si256(nibbles32(w.add(8)), high)
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(x: __m256i, a: *const u8) -> __m256i {
        I::dot_u8i8(x, load256(a.add(4)))
    }
}

impl Pair for Q80 {
    const W: GgmlType = GgmlType::Q8_0;
    const A: GgmlType = GgmlType::Q8_0;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        split_block::<I, Self>(w, a)
    }
}

impl Split for Q80 {
    const HAS_MIN: bool = false;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> __m256i {
        load256(w.add(2))
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(x: __m256i, a: *const u8) -> __m256i {
        // The weight takes the |x| side, so a weight of −128 is still exact.
        dot_i8i8::<I>(x, load256(a.add(2)))
    }
}

impl Pair for Iq4Nl {
    const W: GgmlType = GgmlType::Iq4Nl;
    const A: GgmlType = GgmlType::Q8_0;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        split_block::<I, Self>(w, a)
    }
}

impl Split for Iq4Nl {
    const HAS_MIN: bool = false;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> __m256i {
        let table = _mm256_broadcastsi128_si256(_mm_loadu_si128(IQ4_VALUES.as_ptr().cast()));
        _mm256_shuffle_epi8(table, nibbles32(w.add(2)))
    }

    #[inline(always)]
    unsafe fn finish<I: Isa>(x: __m256i, a: *const u8) -> __m256i {
        dot_i8i8::<I>(x, load256(a.add(2)))
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

/// Eight `i32` lanes whose total is `Σ_j bsums[j] · mins[j]` for the Q8_K block at `a`,
/// sixteen i16 minimums given ([`Block::m`]).
#[inline(always)]
unsafe fn min_part16(a: *const u8, mins: __m256i) -> __m256i {
    _mm256_madd_epi16(load256(a.add(Q8K_BSUMS)), mins)
}

/// Q4_K/Q5_K's eight minimums (one per 32 quants) as the sixteen i16 minimums, one per
/// `bsums` entry, that [`min_part16`] takes.
#[inline(always)]
unsafe fn mins16(mins: &[u8; 8]) -> __m256i {
    let m = _mm_cvtepu8_epi16(_mm_loadl_epi64(mins.as_ptr().cast()));
    _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m))
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
    const MINS: bool = true;

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
        Block::plain(acc, f16_at(w.add(108)) * f32_at(a), 0.0)
    }
}

impl Pair for Q4K {
    const W: GgmlType = GgmlType::Q4K;
    const A: GgmlType = GgmlType::Q8K;
    const MINS: bool = true;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        Self::finish::<I>(&Self::prep(w), w, a)
    }
}

/// A Q4_K or Q5_K block's quants (0..=31) in eight groups of 32, each group's scale
/// broadcast to i16 lanes, and its minimums as [`mins16`] widens them.
#[derive(Clone, Copy)]
struct K4Prep {
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
unsafe fn k4_finish(p: &K4Prep, w: *const u8, a: *const u8) -> Block {
    let mut acc = _mm256_setzero_si256();
    for j in 0..4 {
        let y_lo = load256(a.add(Q8K_QS + 64 * j));
        let y_hi = load256(a.add(Q8K_QS + 64 * j + 32));
        let p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(p.q[2 * j], y_lo), p.scale[2 * j]);
        let p_hi = _mm256_madd_epi16(
            _mm256_maddubs_epi16(p.q[2 * j + 1], y_hi),
            p.scale[2 * j + 1],
        );
        acc = _mm256_add_epi32(acc, _mm256_add_epi32(p_lo, p_hi));
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
        k4_finish(p, w, a)
    }
}

impl Pair for Q5K {
    const W: GgmlType = GgmlType::Q5K;
    const A: GgmlType = GgmlType::Q8K;
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
        k4_finish(p, w, a)
    }
}

impl Pair for Q6K {
    const W: GgmlType = GgmlType::Q6K;
    const A: GgmlType = GgmlType::Q8K;

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
struct Q6KPrep {
    mag: [__m256i; 8],
    sign: [__m256i; 8],
    scale: [__m256i; 8],
}

impl SplitK for Q6K {
    type Prep = Q6KPrep;

    #[inline(always)]
    unsafe fn prep(w: *const u8) -> Q6KPrep {
        let sc = _mm256_broadcastsi128_si256(_mm_loadu_si128(w.add(192).cast()));
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
                scale[i] = pair_scales(sc, 2 * i);
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
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, p.scale[i]));
        }
        Block::plain(acc, f16_at(w.add(208)) * f32_at(a), 0.0)
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
        Block::plain(acc, f16_at(w) * f32_at(a), 0.0)
    }
}

// ---------------------------------------------------------------------------------------
// 512-bit bodies (AVX-512 BW, VNNI's `vpdpwssd` for the scale step) for the most common
// K-quants: 64 quants per instruction. Only instantiated through `run_vnni`, whose target
// features include AVX-512 F/BW/VL/VNNI.

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
    const MINS: bool = true;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        Self::finish::<I>(&Self::prep(w), w, a)
    }
}

/// A Q4_K block as four 64-quant vectors with their i16 scale vectors, and its minimums
/// as [`mins16`] widens them.
#[derive(Clone, Copy)]
struct Q4KZmmPrep {
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
    const A: GgmlType = GgmlType::Q8K;

    #[inline(always)]
    unsafe fn block<I: Isa>(w: *const u8, a: *const u8) -> Block {
        Self::finish::<I>(&Self::prep(w), w, a)
    }
}

/// A Q6_K block as four 64-quant vectors of `x = q − 32` (−32..=31), as magnitudes `|x|`
/// and masks of the negative ones, with their i16 scale vectors. As for [`Q6KPrep`], the
/// activations take the signs (negated under the mask), which is exact for activations in
/// −127..=127.
#[derive(Clone, Copy)]
struct Q6KZmmPrep {
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
