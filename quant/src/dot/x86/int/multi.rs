//! Multi-vector kernels: one weight row against `N` activation rows, each weight block
//! unpacked once and finished against every row ([`Split`] for the 32-element types,
//! [`SplitK`] for the K-quants). Every row gets exactly the single-row kernel's arithmetic
//! ([`super::batch`]), only interleaved.

use std::arch::x86_64::*;

use super::{min_terms, reduce_pairs, scalar_fixup, Avx2, Isa, Split, SplitK, Vnni};
use crate::dot::x86::{check_rows, hsum256_ps};
use crate::CpuLevel;

/// Blocks `k0` and `k0 + 1` (those below `take`) of every activation row: each weight block
/// is prepared once and finished against each row. Returns, per row, `hadd(s[k0], s[k0+1])`
/// (the first step of [`reduce8`](super::reduce8)).
///
/// # Safety
/// As [`batch`](super::batch), for every row `a[v] + a_off`.
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
/// f32 lanes `k`: exactly the values [`f16_at`](crate::dot::x86::f16_at) gives one at a time.
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

/// [`batch`](super::batch) for `N` activation rows and `TAKE` (at most eight) blocks, each weight block
/// unpacked once. Row `v`'s
/// accumulators receive exactly what [`batch`](super::batch) would give them: the same per-block `i32`
/// totals (the same `hadd` tree as [`reduce8`](super::reduce8), merely interleaved across rows), the same
/// `d` and `extra` lanes (the same f16 values widened exactly, the activations' ones by
/// [`crate::dot::widen_scales`] in `sc[v]` (`d`, `s`) at block `a_off / block_bytes`, and
/// multiplied lane by lane; `+0.0` in the unused lanes) and the same FMA and add.
///
/// # Safety
/// As [`batch`](super::batch), for every row `a[v] + a_off`.
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

/// [`drive`](super::drive) for `N` activation rows against one weight row of `nb` blocks; `sc[v]` points
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
/// As [`run_avx2`](super::run_avx2), for every row of `a`; `sc` as for [`drive_multi`].
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
/// As [`run_vnni`](super::run_vnni), for every row of `a`; `sc` as for [`drive_multi`].
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

/// Checks the [`VecDotMultiFn`](crate::dot::VecDotMultiFn) contract and returns the number of blocks and the rows'
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

pub(super) fn avx2_dot_multi<P: Split, const N: usize>(
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

pub(super) fn vnni_dot_multi<P: Split, const N: usize>(
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
/// same of the minimum parts [`Block::m`](super::Block::m) (the first step of [`reduce8`](super::reduce8); zero vectors for
/// blocks from `TAKE` on), and puts the blocks' `d`, `dmin` and `extra` in lanes `k0` and
/// `k0 + 1` of `d`, `dm` and `e`.
///
/// # Safety
/// As [`batch`](super::batch), for every row `a[v] + a_off`.
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

/// [`batch`](super::batch) for `N` activation rows and `TAKE` (at most eight) blocks of a K-quant, each
/// weight block prepared once. Row `v` gets exactly [`batch`](super::batch)'s arithmetic: the same
/// [`Block`](super::Block)s, [`reduce8`](super::reduce8) totals (the same `hadd` tree, interleaved across rows),
/// [`min_terms`], fix-up, FMA and add.
///
/// # Safety
/// As [`batch`](super::batch), for every row `a[v] + a_off`.
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

/// [`drive`](super::drive) for `N` activation rows against one K-quant weight row of `nb` blocks.
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
/// As [`run_avx2`](super::run_avx2), for every row of `a`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run_avx2_k<P: SplitK, const N: usize>(
    nb: usize,
    w: *const u8,
    a: &[*const u8; N],
) -> [f32; N] {
    drive_k::<Avx2, P, N>(nb, w, a)
}

/// # Safety
/// As [`run_vnni`](super::run_vnni), for every row of `a`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn run_vnni_k<P: SplitK, const N: usize>(
    nb: usize,
    w: *const u8,
    a: &[*const u8; N],
) -> [f32; N] {
    drive_k::<Vnni, P, N>(nb, w, a)
}

/// Checks the [`VecDotMultiFn`](crate::dot::VecDotMultiFn) contract for a K-quant (whose activations, Q8_K, carry f32
/// scales, so no widened scales are needed) and returns the number of blocks.
fn check_k<P: SplitK, const N: usize>(n: usize, w: &[u8], a: &[&[u8]; N]) -> usize {
    let mut nb = 0;
    for row in a {
        nb = check_rows(n, w, row, P::W, P::A);
    }
    nb
}

pub(super) fn avx2_dot_k<P: SplitK, const N: usize>(
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

pub(super) fn vnni_dot_k<P: SplitK, const N: usize>(
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
