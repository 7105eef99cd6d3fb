//! x86 row-lane kernels: a panel GEMM (8 weight rows × 4 activation rows of accumulators;
//! panels from the matrix itself when it was repacked at load, else packed on the fly) and,
//! for small batches over weights stored as rows, a matrix-vector kernel over the rows
//! (Q4_K's sums its super-blocks row by row, [`matvec_k4`]), each in two builds: AVX2
//! (`vpmaddubsw` + `vpmaddwd`) and AVX-512 VNNI (`vpdpbusd` on 256-bit vectors). Q4_K
//! batches on the VNNI level take sixteen rows at a time on 512-bit vectors
//! ([`super::k4_avx512`]). All compute each block's integer sum exactly and then the
//! module's f32 steps lane by lane, so their results equal the scalar twin's bit for bit.

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::{k4, k4_avx512, pack_panel, Format, Min, Problem, Quants, PANEL_ROWS};
use crate::matmul::OutputTile;
use crate::x86_transpose::transpose8;
use crate::CpuLevel;

/// Weight rows per lane group (one f32 lane each).
const LANES: usize = PANEL_ROWS;
/// Activation rows per GEMM micro-tile.
const TILE_VECS: usize = 4;
/// From this many activation rows on, weight rows stored as rows are packed into panels
/// (the packing costs about two rows' worth of matrix-vector work).
const MIN_PACKED_VECS: usize = 4;

thread_local! {
    /// Each thread's panel buffer, kept between calls so a prefill allocates it once.
    static PANEL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `p` (already checked) with the kernels of `level`: the VNNI build for
/// [`CpuLevel::Avx512`] (which implies AVX-512 VNNI and VL), else the AVX2 build.
pub(super) fn run(level: CpuLevel, p: &Problem<'_>, out: &mut OutputTile<'_>) {
    let vnni = level == CpuLevel::Avx512;
    let group_bytes = LANES * p.nb * p.f.w_bytes;
    PANEL.with_borrow_mut(|buf| {
        let mut r0 = 0;
        while r0 < p.n_rows {
            let batch = p.n_vecs >= MIN_PACKED_VECS;
            if vnni && p.f.super_blocks && batch && p.n_rows - r0 >= 2 * LANES {
                let pair = k4_pair(p, r0, buf);
                // SAFETY: `run`'s caller checked the shape; `k4_pair` gives two panels of
                // `nb` blocks for rows `r0..r0 + 16`, which exist; this CPU has AVX-512
                // F/BW/VL/VNNI (`has_simd` for Avx512).
                unsafe { k4_avx512::gemm(p, &pair, out) };
                r0 += 2 * LANES;
                continue;
            }
            let rows = (p.n_rows - r0).min(LANES);
            let group = Group::new(p, r0, rows);
            let panel = if p.panels && rows == LANES {
                p.w[r0 * p.w_row..][..group_bytes].as_ptr()
            } else if p.n_vecs >= MIN_PACKED_VECS {
                buf.resize(group_bytes, 0);
                let src = std::array::from_fn(|i| {
                    &p.w[(r0 + i.min(rows - 1)) * p.w_row..][..p.nb * p.f.w_bytes]
                });
                if p.f.super_blocks {
                    // SAFETY: each row of `src` holds `nb` super-blocks and `buf` one panel
                    // (`group_bytes`); this CPU has AVX2 (`has_simd`).
                    unsafe { pack_k4(p.nb, &src, buf) };
                } else {
                    pack_panel(&p.f, p.nb, src, buf);
                }
                buf.as_ptr()
            } else {
                std::ptr::null()
            };
            // SAFETY: `run`'s caller checked the shape (`Problem::check`): every row of the
            // group, every activation row and every output element exists, and `panel`,
            // when not null, holds the group's `nb` panel blocks; this CPU has AVX2, FMA
            // and F16C, and AVX-512 F/BW/VL/VNNI when `level` is Avx512 (`has_simd`).
            unsafe {
                match (panel.is_null(), vnni) {
                    (false, true) => gemm_vnni(p, &group, panel, out),
                    (false, false) => gemm_avx2(p, &group, panel, out),
                    (true, true) => matvec_vnni(p, &group, out),
                    (true, false) => matvec_avx2(p, &group, out),
                }
            }
            r0 += LANES;
        }
    });
}

/// Rows `r0..r0 + 16` of a Q4_K problem as two panels for the 512-bit GEMM: the matrix's
/// own when it was repacked, else packed into `buf`. (For decode the 256-bit kernels do
/// better: reading one panel at a time streams from memory faster than two at once.)
fn k4_pair(p: &Problem<'_>, r0: usize, buf: &mut Vec<u8>) -> k4_avx512::Pair {
    let group_bytes = LANES * p.nb * k4::W_BYTES;
    let panels = if p.panels {
        let at = |r: usize| p.w[r * p.w_row..][..group_bytes].as_ptr();
        [at(r0), at(r0 + LANES)]
    } else {
        buf.resize(2 * group_bytes, 0);
        for (g, dst) in buf.chunks_exact_mut(group_bytes).enumerate() {
            let first = r0 + g * LANES;
            let src = std::array::from_fn(|i| &p.w[(first + i) * p.w_row..][..p.nb * k4::W_BYTES]);
            // SAFETY: each row of `src` holds `nb` super-blocks and `dst` one panel; this
            // CPU has AVX2 (`has_simd`).
            unsafe { pack_k4(p.nb, &src, dst) };
        }
        let (a, b) = buf.split_at(group_bytes);
        [a.as_ptr(), b.as_ptr()]
    };
    k4_avx512::Pair { panels, r0 }
}

/// Eight weight rows (the last group of a matrix may have fewer real ones; its missing
/// rows repeat the last real row and their results are dropped).
struct Group {
    /// Row pointers.
    rows: [*const u8; LANES],
    /// Real rows.
    n: usize,
    /// First row's index.
    r0: usize,
}

impl Group {
    fn new(p: &Problem<'_>, r0: usize, n: usize) -> Group {
        let rows = std::array::from_fn(|i| {
            let r = r0 + i.min(n - 1);
            p.w[r * p.w_row..].as_ptr()
        });
        Group { rows, n, r0 }
    }
}

/// The 32 quants of the weight block at `b` as bytes (Q4: unsigned 0..=15; Q8_0: signed).
#[inline(always)]
unsafe fn unpack(f: &Format, b: *const u8) -> __m256i {
    match f.quants {
        Quants::Nibbles => {
            let q = _mm_loadu_si128(b.add(f.w_qs).cast());
            let mask = _mm_set1_epi8(0x0F);
            let lo = _mm_and_si128(q, mask);
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(q), mask);
            _mm256_set_m128i(hi, lo)
        }
        Quants::Bytes => _mm256_loadu_si256(b.add(f.w_qs).cast()),
    }
}

/// `Σ_j w[j]·a[j]` per group of four bytes, as eight i32 lanes (exact for our operand
/// ranges: Q4 quants are at most 15; Q8_0 uses the sign trick, `|w| · sign(a, w)`).
#[inline(always)]
unsafe fn dot4(quants: Quants, w: __m256i, a: __m256i) -> __m256i {
    let ones = _mm256_set1_epi16(1);
    match quants {
        Quants::Nibbles => _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), ones),
        Quants::Bytes => _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w)),
            ones,
        ),
    }
}

/// How a build forms exact integer sums of byte products.
trait IntDot {
    /// `Σ_j w[j]·a[j]` per group of four bytes, as eight i32 lanes.
    unsafe fn dot4(quants: Quants, w: __m256i, a: __m256i) -> __m256i;
    /// `acc + Σ pairs · scale` per i32 lane: `vpmaddwd` on i16 lanes, then an add (one
    /// `vpdpwssd` on VNNI). Exact while every pair sum fits an i32.
    unsafe fn madd_add(acc: __m256i, pairs: __m256i, scale: __m256i) -> __m256i;
    /// A packed block's eight row sums: `Σ_q dot4(w(q), a(q))` over its eight groups.
    unsafe fn block(
        quants: Quants,
        w: impl Fn(usize) -> __m256i,
        a: impl Fn(usize) -> __m256i,
    ) -> __m256i;
}

/// AVX2: `vpmaddubsw` then `vpmaddwd`.
struct Avx2;

impl IntDot for Avx2 {
    #[inline(always)]
    unsafe fn dot4(quants: Quants, w: __m256i, a: __m256i) -> __m256i {
        dot4(quants, w, a)
    }

    #[inline(always)]
    unsafe fn madd_add(acc: __m256i, pairs: __m256i, scale: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, scale))
    }

    #[inline(always)]
    unsafe fn block(
        quants: Quants,
        w: impl Fn(usize) -> __m256i,
        a: impl Fn(usize) -> __m256i,
    ) -> __m256i {
        match quants {
            // Eight products of at most 2·15·128 each fit an i16 lane: sum them there.
            Quants::Nibbles => {
                let mut s = _mm256_maddubs_epi16(w(0), a(0));
                for q in 1..8 {
                    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w(q), a(q)));
                }
                _mm256_madd_epi16(s, _mm256_set1_epi16(1))
            }
            Quants::Bytes => {
                let mut s = dot4(Quants::Bytes, w(0), a(0));
                for q in 1..8 {
                    s = _mm256_add_epi32(s, dot4(Quants::Bytes, w(q), a(q)));
                }
                s
            }
        }
    }
}

/// AVX-512 VNNI on 256-bit vectors: one `vpdpbusd` per group of four.
struct Vnni;

impl Vnni {
    /// `acc + Σ_j w[j]·a[j]` per group of four bytes (Q8_0 through the sign trick).
    #[inline(always)]
    unsafe fn dot4_add(quants: Quants, acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
        match quants {
            Quants::Nibbles => _mm256_dpbusd_epi32(acc, w, a),
            Quants::Bytes => {
                _mm256_dpbusd_epi32(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w))
            }
        }
    }
}

impl IntDot for Vnni {
    #[inline(always)]
    unsafe fn dot4(quants: Quants, w: __m256i, a: __m256i) -> __m256i {
        Self::dot4_add(quants, _mm256_setzero_si256(), w, a)
    }

    #[inline(always)]
    unsafe fn madd_add(acc: __m256i, pairs: __m256i, scale: __m256i) -> __m256i {
        _mm256_dpwssd_epi32(acc, pairs, scale)
    }

    #[inline(always)]
    unsafe fn block(
        quants: Quants,
        w: impl Fn(usize) -> __m256i,
        a: impl Fn(usize) -> __m256i,
    ) -> __m256i {
        // Two chains of four, so consecutive `vpdpbusd`s do not wait on each other.
        let (mut s0, mut s1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for q in (0..8).step_by(2) {
            s0 = Self::dot4_add(quants, s0, w(q), a(q));
            s1 = Self::dot4_add(quants, s1, w(q + 1), a(q + 1));
        }
        _mm256_add_epi32(s0, s1)
    }
}

/// Eight vectors of eight i32 → one vector whose lane `i` is the total of vector `i`.
#[inline(always)]
unsafe fn totals8(p: [__m256i; LANES]) -> __m256i {
    let t0 = _mm256_hadd_epi32(p[0], p[1]);
    let t1 = _mm256_hadd_epi32(p[2], p[3]);
    let t2 = _mm256_hadd_epi32(p[4], p[5]);
    let t3 = _mm256_hadd_epi32(p[6], p[7]);
    let u0 = _mm256_hadd_epi32(t0, t1);
    let u1 = _mm256_hadd_epi32(t2, t3);
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(u0, u1),
        _mm256_permute2x128_si256::<0x31>(u0, u1),
    )
}

/// The eight rows' `(d_w, m_w)` of block `k`, as lanes.
#[inline(always)]
unsafe fn scales8(f: &Format, g: &Group, k: usize) -> (__m256, __m256) {
    let d = row_halves(g, k * f.w_bytes);
    let m = match f.min {
        Min::None => _mm256_setzero_ps(),
        Min::Minus8 => _mm256_mul_ps(_mm256_set1_ps(-8.0), d),
        Min::Field => row_halves(g, k * f.w_bytes + 2),
    };
    (d, m)
}

/// The f16 at byte `at` of each of the group's eight rows, widened into lanes.
#[inline(always)]
unsafe fn row_halves(g: &Group, at: usize) -> __m256 {
    let h: [u16; LANES] = std::array::from_fn(|i| g.rows[i].add(at).cast::<u16>().read_unaligned());
    _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr().cast()))
}

/// Adds block `k`'s contribution to the accumulator lanes: `(isum · (d_w · d_a))`, then
/// `m_w · s_a`, each one rounded operation.
#[inline(always)]
unsafe fn accumulate(
    f: &Format,
    acc: __m256,
    isum: __m256i,
    (dw, mw): (__m256, __m256),
    (da, sa): (f32, f32),
) -> __m256 {
    let t = _mm256_mul_ps(dw, _mm256_set1_ps(da));
    let acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(isum), t));
    if f.min == Min::None {
        acc
    } else {
        _mm256_add_ps(acc, _mm256_mul_ps(mw, _mm256_set1_ps(sa)))
    }
}

/// Writes the group's real lanes of `acc` to its rows of vector `v` of `out`.
#[inline(always)]
unsafe fn store(g: &Group, acc: __m256, out: &mut OutputTile<'_>, v: usize) {
    let mut lanes = [0f32; LANES];
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    out.vector_mut(v)[g.r0..g.r0 + g.n].copy_from_slice(&lanes[..g.n]);
}

/// Blocks of each row the matrix-vector kernel sums before it moves to the next row (a
/// multiple of eight): rows are read one after another, as one contiguous stream per group
/// of eight, rather than eight streams advancing a block at a time.
const RUN: usize = 64;

/// Matrix-vector: each activation row against the group's unpacked rows. Row by row, the
/// integer sums of up to [`RUN`] blocks are kept (lanes by block), then transposed to lanes
/// by row for the float steps.
///
/// # Safety
/// `p` checked; AVX2, FMA and F16C available, and whatever `D` needs.
#[inline(always)]
unsafe fn matvec<D: IntDot>(p: &Problem<'_>, g: &Group, out: &mut OutputTile<'_>) {
    let f = p.f;
    let mut sums = [[0i32; RUN]; LANES];
    for v in 0..p.n_vecs {
        let a = p.a.as_ptr().add(v * p.a_row);
        let ds = &p.ds[v * 2 * p.nb..];
        let mut acc = _mm256_setzero_ps();
        for k0 in (0..p.nb).step_by(RUN) {
            let take = (p.nb - k0).min(RUN);
            for (i, row_sums) in sums.iter_mut().enumerate() {
                let row = g.rows[i].add(k0 * f.w_bytes);
                for j0 in (0..take).step_by(8) {
                    // Plain loops, not closures: a closure here would not inherit the
                    // wrapper's target features and its intrinsics would not inline.
                    let mut parts = [_mm256_setzero_si256(); 8];
                    for (j, part) in parts.iter_mut().enumerate().take(take - j0) {
                        let k = j0 + j;
                        let aq = _mm256_loadu_si256(a.add((k0 + k) * f.a_bytes + f.a_qs).cast());
                        *part = D::dot4(f.quants, unpack(&f, row.add(k * f.w_bytes)), aq);
                    }
                    let dst = row_sums[j0..j0 + 8].as_mut_ptr();
                    _mm256_storeu_si256(dst.cast(), totals8(parts));
                }
            }
            for j0 in (0..take).step_by(8) {
                let mut by_row = [_mm256_setzero_si256(); LANES];
                for (row, row_sums) in by_row.iter_mut().zip(&sums) {
                    *row = _mm256_loadu_si256(row_sums[j0..j0 + 8].as_ptr().cast());
                }
                for (j, isum) in transpose8(by_row).into_iter().enumerate() {
                    let k = k0 + j0 + j;
                    if k < k0 + take {
                        let d = (ds[2 * k], ds[2 * k + 1]);
                        acc = accumulate(&f, acc, isum, scales8(&f, g, k), d);
                    }
                }
            }
        }
        store(g, acc, out, v);
    }
}

/// [`matvec`] built for AVX2.
///
/// # Safety
/// `p` checked; AVX2, FMA and F16C available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn matvec_avx2(p: &Problem<'_>, g: &Group, out: &mut OutputTile<'_>) {
    if p.f.super_blocks {
        matvec_k4::<Avx2>(p, g, out)
    } else {
        matvec::<Avx2>(p, g, out)
    }
}

/// [`matvec`] built for AVX-512 VNNI.
///
/// # Safety
/// `p` checked; AVX2, FMA, F16C and AVX-512 F/BW/VL/VNNI available.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn matvec_vnni(p: &Problem<'_>, g: &Group, out: &mut OutputTile<'_>) {
    if p.f.super_blocks {
        matvec_k4::<Vnni>(p, g, out)
    } else {
        matvec::<Vnni>(p, g, out)
    }
}

/// Super-blocks of each row the Q4_K matrix-vector kernel sums before it moves to the next
/// row (a multiple of eight; Scout's rows have 20 and 32).
const RUN_K4: usize = 32;

/// Q4_K matrix-vector over the group's rows as stored (no packing): row by row, the exact
/// `isum` and `msum` of up to [`RUN_K4`] super-blocks are kept (lanes by super-block), then
/// transposed to lanes by row for [`k4`]'s float steps.
///
/// # Safety
/// `p` checked (Q4_K); AVX2, FMA and F16C available, and whatever `D` needs.
#[inline(always)]
unsafe fn matvec_k4<D: IntDot>(p: &Problem<'_>, g: &Group, out: &mut OutputTile<'_>) {
    let mut isums = [[0i32; RUN_K4]; LANES];
    let mut msums = [[0i32; RUN_K4]; LANES];
    for v in 0..p.n_vecs {
        let a = p.a.as_ptr().add(v * p.a_row);
        let mut acc = _mm256_setzero_ps();
        for k0 in (0..p.nb).step_by(RUN_K4) {
            let take = (p.nb - k0).min(RUN_K4);
            for i in 0..LANES {
                let row = g.rows[i].add(k0 * k4::W_BYTES);
                for j0 in (0..take).step_by(8) {
                    let mut is = [_mm256_setzero_si256(); 8];
                    let mut ms = [_mm256_setzero_si256(); 8];
                    for j in 0..(take - j0).min(8) {
                        let k = j0 + j;
                        let ab = a.add((k0 + k) * k4::A_BYTES);
                        (is[j], ms[j]) = k4_row_block::<D>(row.add(k * k4::W_BYTES), ab);
                    }
                    _mm256_storeu_si256(isums[i][j0..].as_mut_ptr().cast(), totals8(is));
                    _mm256_storeu_si256(msums[i][j0..].as_mut_ptr().cast(), totals8(ms));
                }
            }
            for j0 in (0..take).step_by(8) {
                let by_row = |sums: &[[i32; RUN_K4]; LANES]| -> [__m256i; LANES] {
                    std::array::from_fn(|i| _mm256_loadu_si256(sums[i][j0..].as_ptr().cast()))
                };
                let (is, ms) = (transpose8(by_row(&isums)), transpose8(by_row(&msums)));
                for j in 0..(take - j0).min(8) {
                    let k = k0 + j0 + j;
                    let at = k * k4::W_BYTES;
                    let (dw, dmin) = (row_halves(g, at), row_halves(g, at + 2));
                    let da = a.add(k * k4::A_BYTES).cast::<f32>().read_unaligned();
                    let da = _mm256_set1_ps(da);
                    let t = _mm256_mul_ps(_mm256_cvtepi32_ps(is[j]), _mm256_mul_ps(dw, da));
                    acc = _mm256_add_ps(acc, t);
                    let t = _mm256_mul_ps(_mm256_cvtepi32_ps(ms[j]), _mm256_mul_ps(dmin, da));
                    acc = _mm256_sub_ps(acc, t);
                }
            }
        }
        store(g, acc, out, v);
    }
}

/// One Q4_K super-block `w` (row layout) against the Q8_K block `a`: two vectors of eight
/// i32 whose lane totals are the block's exact `isum` and `msum` (see [`k4`]).
#[inline(always)]
unsafe fn k4_row_block<D: IntDot>(w: *const u8, a: *const u8) -> (__m256i, __m256i) {
    // The 6-bit scales and minimums as bytes: sc_j = a_j & 63 and m_j = b_j & 63 for j < 4;
    // for j ≥ 4 the low four bits come from c's nibbles and the high two from a's (b's)
    // top bits, where `a`, `b`, `c` are the three little-endian words of the scale bytes.
    let word = |i: usize| w.add(4 + 4 * i).cast::<u32>().read_unaligned();
    let (sa, sb, sc) = (word(0), word(1), word(2));
    let scales = u64::from(sa & 0x3f3f_3f3f)
        | u64::from((sc & 0x0f0f_0f0f) | ((sa >> 2) & 0x3030_3030)) << 32;
    let mins = u64::from(sb & 0x3f3f_3f3f)
        | u64::from(((sc >> 4) & 0x0f0f_0f0f) | ((sb >> 2) & 0x3030_3030)) << 32;
    let scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(scales as i64)));
    let mins = _mm_cvtsi64_si128(mins as i64);
    let mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mins, mins));
    let low = _mm256_set1_epi8(0x0F);
    let mut isum = _mm256_setzero_si256();
    for chunk in 0..4 {
        let x = _mm256_loadu_si256(w.add(16 + 32 * chunk).cast());
        let aq = a.add(k4::A_QS + 64 * chunk);
        for (half, q) in [
            _mm256_and_si256(x, low),
            _mm256_and_si256(_mm256_srli_epi16::<4>(x), low),
        ]
        .into_iter()
        .enumerate()
        {
            let j = (2 * chunk + half) as i16;
            let pick = _mm256_set1_epi16(((2 * j + 1) << 8) | (2 * j));
            let scale = _mm256_shuffle_epi8(scales, pick);
            let act = _mm256_loadu_si256(aq.add(32 * half).cast());
            isum = D::madd_add(isum, _mm256_maddubs_epi16(q, act), scale);
        }
    }
    let bsums = _mm256_loadu_si256(a.add(k4::A_BSUMS).cast());
    let msum = _mm256_madd_epi16(bsums, mins);
    (isum, msum)
}

/// The group's panel (see the `lanes` module docs, and [`k4`] for Q4_K) against every
/// activation row, [`TILE_VECS`] at a time.
///
/// # Safety
/// `p` checked; `panel` holds the group's `nb` panel blocks; AVX2, FMA and F16C available,
/// and whatever `D` needs.
#[inline(always)]
unsafe fn gemm<D: IntDot>(p: &Problem<'_>, g: &Group, panel: *const u8, out: &mut OutputTile<'_>) {
    let mut v = 0;
    while v + TILE_VECS <= p.n_vecs {
        tile_of::<D, TILE_VECS>(p, g, panel, v, out);
        v += TILE_VECS;
    }
    while v < p.n_vecs {
        tile_of::<D, 1>(p, g, panel, v, out);
        v += 1;
    }
}

/// [`tile_k4`] for Q4_K panels, [`tile`] for the others.
#[inline(always)]
unsafe fn tile_of<D: IntDot, const N: usize>(
    p: &Problem<'_>,
    g: &Group,
    panel: *const u8,
    v0: usize,
    out: &mut OutputTile<'_>,
) {
    if p.f.super_blocks {
        tile_k4::<D, N>(p, g, panel, v0, out);
    } else {
        tile::<D, N>(p, g, panel, v0, out);
    }
}

/// [`gemm`] built for AVX2.
///
/// # Safety
/// As [`gemm`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm_avx2(p: &Problem<'_>, g: &Group, panel: *const u8, out: &mut OutputTile<'_>) {
    gemm::<Avx2>(p, g, panel, out)
}

/// [`gemm`] built for AVX-512 VNNI.
///
/// # Safety
/// As [`gemm`], with AVX-512 F/BW/VL/VNNI available.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm_vnni(p: &Problem<'_>, g: &Group, panel: *const u8, out: &mut OutputTile<'_>) {
    gemm::<Vnni>(p, g, panel, out)
}

/// Activation rows `v0..v0 + N` against the packed panel.
#[inline(always)]
unsafe fn tile<D: IntDot, const N: usize>(
    p: &Problem<'_>,
    g: &Group,
    panel: *const u8,
    v0: usize,
    out: &mut OutputTile<'_>,
) {
    let f = p.f;
    let a: [*const u8; N] = std::array::from_fn(|c| p.a.as_ptr().add((v0 + c) * p.a_row + f.a_qs));
    let ds: [*const f32; N] = std::array::from_fn(|c| p.ds.as_ptr().add((v0 + c) * 2 * p.nb));
    let mut acc = [_mm256_setzero_ps(); N];
    let scales = LANES * f.qs_bytes();
    let low = _mm256_set1_epi8(0x0F);
    for k in 0..p.nb {
        let blk = panel.add(k * LANES * f.w_bytes);
        let mut w = [_mm256_setzero_si256(); 8];
        match f.quants {
            Quants::Nibbles => {
                for h in 0..4 {
                    let x = _mm256_loadu_si256(blk.add(32 * h).cast());
                    w[h] = _mm256_and_si256(x, low);
                    w[h + 4] = _mm256_and_si256(_mm256_srli_epi16::<4>(x), low);
                }
            }
            Quants::Bytes => {
                for (q, w) in w.iter_mut().enumerate() {
                    *w = _mm256_loadu_si256(blk.add(32 * q).cast());
                }
            }
        }
        let dw = _mm256_cvtph_ps(_mm_loadu_si128(blk.add(scales).cast()));
        let mw = match f.min {
            Min::None => _mm256_setzero_ps(),
            Min::Minus8 => _mm256_mul_ps(_mm256_set1_ps(-8.0), dw),
            Min::Field => _mm256_cvtph_ps(_mm_loadu_si128(blk.add(scales + 16).cast())),
        };
        for c in 0..N {
            let aq = a[c].add(k * f.a_bytes);
            let bcast = |q: usize| _mm256_set1_epi32(aq.add(4 * q).cast::<i32>().read_unaligned());
            let isum = D::block(f.quants, |q| w[q], bcast);
            let (da, sa) = (*ds[c].add(2 * k), *ds[c].add(2 * k + 1));
            acc[c] = accumulate(&f, acc[c], isum, (dw, mw), (da, sa));
        }
    }
    for (c, acc) in acc.into_iter().enumerate() {
        store(g, acc, out, v0 + c);
    }
}

/// The eight rows' 6-bit scales and minimums of a Q4_K panel block, as i32 lanes per
/// sub-block (ggml's `get_scale_min_k4`, lane-wise).
#[inline(always)]
unsafe fn k4_scales(blk: *const u8) -> ([__m256i; 8], [__m256i; 8]) {
    let v = |s: usize| _mm256_loadu_si256(blk.add(k4::P_SCALES + 32 * s).cast());
    let (a, b, c) = (v(0), v(1), v(2));
    let bits = |x: __m256i, shift: i32, mask: i32| {
        _mm256_and_si256(
            _mm256_srl_epi32(x, _mm_cvtsi32_si128(shift)),
            _mm256_set1_epi32(mask),
        )
    };
    let mut sc = [_mm256_setzero_si256(); 8];
    let mut m = [_mm256_setzero_si256(); 8];
    for j in 0..4 {
        let s = 8 * j as i32;
        sc[j] = bits(a, s, 63);
        m[j] = bits(b, s, 63);
        sc[j + 4] = _mm256_or_si256(bits(c, s, 15), _mm256_slli_epi32::<4>(bits(a, s + 6, 3)));
        m[j + 4] = _mm256_or_si256(
            bits(c, s + 4, 15),
            _mm256_slli_epi32::<4>(bits(b, s + 6, 3)),
        );
    }
    (sc, m)
}

/// Activation rows `v0..v0 + N` against a Q4_K panel.
#[inline(always)]
unsafe fn tile_k4<D: IntDot, const N: usize>(
    p: &Problem<'_>,
    g: &Group,
    panel: *const u8,
    v0: usize,
    out: &mut OutputTile<'_>,
) {
    let a: [*const u8; N] = std::array::from_fn(|c| p.a.as_ptr().add((v0 + c) * p.a_row));
    let mut acc = [_mm256_setzero_ps(); N];
    let low = _mm256_set1_epi8(0x0F);
    for k in 0..p.nb {
        let blk = panel.add(k * LANES * k4::W_BYTES);
        let (sc, m) = k4_scales(blk);
        let dw = _mm256_cvtph_ps(_mm_loadu_si128(blk.add(k4::P_D).cast()));
        let dmin = _mm256_cvtph_ps(_mm_loadu_si128(blk.add(k4::P_DMIN).cast()));
        let mut isum = [_mm256_setzero_si256(); N];
        for chunk in 0..4 {
            let mut lo = [_mm256_setzero_si256(); 8];
            let mut hi = [_mm256_setzero_si256(); 8];
            for h in 0..8 {
                let x = _mm256_loadu_si256(blk.add(256 * chunk + 32 * h).cast());
                lo[h] = _mm256_and_si256(x, low);
                hi[h] = _mm256_and_si256(_mm256_srli_epi16::<4>(x), low);
            }
            for c in 0..N {
                let aq = a[c].add(k * k4::A_BYTES + k4::A_QS + 64 * chunk);
                let bcast =
                    |q: usize| _mm256_set1_epi32(aq.add(4 * q).cast::<i32>().read_unaligned());
                let s_lo = D::block(Quants::Nibbles, |h| lo[h], bcast);
                let s_hi = D::block(Quants::Nibbles, |h| hi[h], |h| bcast(h + 8));
                isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(s_lo, sc[2 * chunk]));
                isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(s_hi, sc[2 * chunk + 1]));
            }
        }
        // Minimums as i16 pairs per row lane, (m_2t, m_2t+1) in pair t, for `vpmaddwd`.
        let m_pairs: [__m256i; 4] = std::array::from_fn(|t| {
            _mm256_or_si256(m[2 * t], _mm256_slli_epi32::<16>(m[2 * t + 1]))
        });
        for c in 0..N {
            let ab = a[c].add(k * k4::A_BYTES);
            // Written out: an iterator here would not inline into the target-feature build.
            let pairs = k4_bsum_pairs(ab);
            let mut msum = _mm256_setzero_si256();
            for (t, m) in m_pairs.iter().enumerate() {
                let pair = _mm256_set1_epi32(pairs[t]);
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(*m, pair));
            }
            let da = _mm256_set1_ps(ab.cast::<f32>().read_unaligned());
            let t = _mm256_mul_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dw, da));
            acc[c] = _mm256_add_ps(acc[c], t);
            let t = _mm256_mul_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmin, da));
            acc[c] = _mm256_sub_ps(acc[c], t);
        }
    }
    for (c, acc) in acc.into_iter().enumerate() {
        store(g, acc, out, v0 + c);
    }
}

/// The Q8_K activation block `ab`'s eight sub-block sums (|b_j| ≤ 32·128, an i16) as i16
/// pairs `(b_2t, b_2t+1)`, one i32 per `t`, for `vpmaddwd`/`vpdpwssd` against the
/// minimums' pairs.
///
/// # Safety
/// `ab` points at a whole Q8_K block; AVX2 available.
#[inline(always)]
pub(super) unsafe fn k4_bsum_pairs(ab: *const u8) -> [i32; 4] {
    let ones = _mm256_set1_epi16(1);
    let b = _mm256_madd_epi16(_mm256_loadu_si256(ab.add(k4::A_BSUMS).cast()), ones);
    // Packed per 128-bit half: i32 elements 0, 1 = (b0, b1), (b2, b3); 4, 5 = (b4, b5), (b6, b7).
    let b = _mm256_packs_epi32(b, b);
    let mut all = [0i32; 8];
    _mm256_storeu_si256(all.as_mut_ptr().cast(), b);
    [all[0], all[1], all[4], all[5]]
}

/// `k4::pack_panel` with 8×8 transposes of 4-byte groups: the quants of a 64-element chunk
/// of eight rows are eight 32-byte loads and eight stores.
///
/// # Safety
/// Each of `rows` holds `nb` Q4_K super-blocks; `dst` holds `nb` panel blocks; AVX2.
#[target_feature(enable = "avx2")]
unsafe fn pack_k4(nb: usize, rows: &[&[u8]; LANES], dst: &mut [u8]) {
    for k in 0..nb {
        let out = dst[k * LANES * k4::W_BYTES..][..LANES * k4::W_BYTES].as_mut_ptr();
        let blk: [*const u8; LANES] = std::array::from_fn(|i| rows[i][k * k4::W_BYTES..].as_ptr());
        for chunk in 0..4 {
            let mut u = [_mm256_setzero_si256(); LANES];
            for (x, b) in u.iter_mut().zip(&blk) {
                *x = _mm256_loadu_si256(b.add(16 + 32 * chunk).cast());
            }
            for (h, x) in transpose8(u).into_iter().enumerate() {
                _mm256_storeu_si256(out.add(256 * chunk + 32 * h).cast(), x);
            }
        }
        for (i, b) in blk.iter().enumerate() {
            let head = b.cast::<u16>();
            out.add(k4::P_D + 2 * i)
                .cast::<u16>()
                .write_unaligned(head.read_unaligned());
            out.add(k4::P_DMIN + 2 * i)
                .cast::<u16>()
                .write_unaligned(head.add(1).read_unaligned());
            for s in 0..3 {
                let v = b.add(4 + 4 * s).cast::<u32>().read_unaligned();
                out.add(k4::P_SCALES + 32 * s + 4 * i)
                    .cast::<u32>()
                    .write_unaligned(v);
            }
        }
    }
}
