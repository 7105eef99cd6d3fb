//! F32·F32, F16·F16 and BF16·BF16 dot products: every element widened exactly to f32,
//! multiplied and accumulated with FMA in four independent vector accumulators.

use std::arch::x86_64::*;

use super::{check_rows, f16_at, hsum256_ps};
use crate::dot::{VecDotFn, VecDotMultiFn};
use crate::{CpuLevel, GgmlType};

/// How one element type is read.
trait Elem {
    const T: GgmlType;
    /// Eight elements at `p`, widened to f32.
    ///
    /// # Safety
    /// `p` readable for eight elements; AVX2 + F16C enabled in the caller.
    unsafe fn load8(p: *const u8) -> __m256;
    /// Sixteen elements at `p` (or the first `m.count_ones()` of them where `m` has the
    /// low bits set, the rest reading as 0), widened to f32.
    ///
    /// # Safety
    /// `p` readable for the selected elements; AVX-512 F/BW/VL enabled in the caller.
    unsafe fn load16(p: *const u8, m: __mmask16) -> __m512;
    /// One element at `p`, widened to f32.
    ///
    /// # Safety
    /// `p` readable for one element; F16C enabled in the caller.
    unsafe fn load1(p: *const u8) -> f32;
}

struct F32;
struct F16;
struct Bf16;

impl Elem for F32 {
    const T: GgmlType = GgmlType::F32;

    #[inline(always)]
    unsafe fn load8(p: *const u8) -> __m256 {
        _mm256_loadu_ps(p.cast())
    }
    #[inline(always)]
    unsafe fn load16(p: *const u8, m: __mmask16) -> __m512 {
        _mm512_maskz_loadu_ps(m, p.cast())
    }
    #[inline(always)]
    unsafe fn load1(p: *const u8) -> f32 {
        p.cast::<f32>().read_unaligned()
    }
}

impl Elem for F16 {
    const T: GgmlType = GgmlType::F16;

    #[inline(always)]
    unsafe fn load8(p: *const u8) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
    }
    #[inline(always)]
    unsafe fn load16(p: *const u8, m: __mmask16) -> __m512 {
        _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p.cast()))
    }
    #[inline(always)]
    unsafe fn load1(p: *const u8) -> f32 {
        f16_at(p)
    }
}

impl Elem for Bf16 {
    const T: GgmlType = GgmlType::BF16;

    #[inline(always)]
    unsafe fn load8(p: *const u8) -> __m256 {
        let wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(wide))
    }
    #[inline(always)]
    unsafe fn load16(p: *const u8, m: __mmask16) -> __m512 {
        let wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p.cast()));
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(wide))
    }
    #[inline(always)]
    unsafe fn load1(p: *const u8) -> f32 {
        f32::from_bits(u32::from(p.cast::<u16>().read_unaligned()) << 16)
    }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C; `x` and `y` must hold `n` elements each.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run_avx2<E: Elem>(n: usize, x: *const u8, y: *const u8) -> f32 {
    let sz = E::T.block_bytes();
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let at = (i + 8 * k) * sz;
            *acc = _mm256_fmadd_ps(E::load8(x.add(at)), E::load8(y.add(at)), *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(E::load8(x.add(i * sz)), E::load8(y.add(i * sz)), acc[0]);
        i += 8;
    }
    let mut sum = hsum256_ps(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    while i < n {
        sum += E::load1(x.add(i * sz)) * E::load1(y.add(i * sz));
        i += 1;
    }
    sum
}

/// # Safety
/// The CPU must have AVX2, FMA, F16C and AVX-512 F/BW/VL; `x` and `y` must hold `n`
/// elements each.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn run_avx512<E: Elem>(n: usize, x: *const u8, y: *const u8) -> f32 {
    let sz = E::T.block_bytes();
    let all: __mmask16 = 0xFFFF;
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let at = (i + 16 * k) * sz;
            *acc = _mm512_fmadd_ps(E::load16(x.add(at), all), E::load16(y.add(at), all), *acc);
        }
        i += 64;
    }
    while i + 16 <= n {
        let at = i * sz;
        acc[0] = _mm512_fmadd_ps(E::load16(x.add(at), all), E::load16(y.add(at), all), acc[0]);
        i += 16;
    }
    if i < n {
        // Masked-off lanes are not read and load as 0.
        let m: __mmask16 = (1u16 << (n - i)) - 1;
        let at = i * sz;
        acc[1] = _mm512_fmadd_ps(E::load16(x.add(at), m), E::load16(y.add(at), m), acc[1]);
    }
    let total = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(total)
}

/// [`run_avx2`] for one weight row `x` and `N` activation rows `ys`: each weight vector is
/// loaded (and widened) once for all rows, and each row keeps `run_avx2`'s four
/// accumulators and order, so every result equals the single kernel's bit for bit.
///
/// # Safety
/// As [`run_avx2`], for `x` and every row of `ys`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run_avx2_multi<E: Elem, const N: usize>(
    n: usize,
    x: *const u8,
    ys: [*const u8; N],
) -> [f32; N] {
    avx2_multi_body::<E, N>(n, x, ys)
}

/// [`run_avx2_multi`] compiled with AVX-512 VL enabled: the same 256-bit operations (so the
/// same results), but 32 vector registers instead of 16, so `N` rows' accumulators do not
/// spill.
///
/// # Safety
/// As [`run_avx2_multi`], and the CPU must have AVX-512 F/VL.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl")]
unsafe fn run_avx2_multi_vl<E: Elem, const N: usize>(
    n: usize,
    x: *const u8,
    ys: [*const u8; N],
) -> [f32; N] {
    avx2_multi_body::<E, N>(n, x, ys)
}

/// The body of [`run_avx2_multi`], inlined into each caller's target features.
///
/// # Safety
/// As [`run_avx2_multi`]; only inline into functions with AVX2, FMA and F16C enabled.
#[inline(always)]
unsafe fn avx2_multi_body<E: Elem, const N: usize>(
    n: usize,
    x: *const u8,
    ys: [*const u8; N],
) -> [f32; N] {
    let sz = E::T.block_bytes();
    let mut acc = [[_mm256_setzero_ps(); 4]; N];
    let mut i = 0;
    while i + 32 <= n {
        for k in 0..4 {
            let at = (i + 8 * k) * sz;
            let w = E::load8(x.add(at));
            for (acc, y) in acc.iter_mut().zip(ys) {
                acc[k] = _mm256_fmadd_ps(w, E::load8(y.add(at)), acc[k]);
            }
        }
        i += 32;
    }
    while i + 8 <= n {
        let w = E::load8(x.add(i * sz));
        for (acc, y) in acc.iter_mut().zip(ys) {
            acc[0] = _mm256_fmadd_ps(w, E::load8(y.add(i * sz)), acc[0]);
        }
        i += 8;
    }
    let mut out = [0.0f32; N];
    for ((o, acc), y) in out.iter_mut().zip(&acc).zip(ys) {
        let mut sum = hsum256_ps(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ));
        let mut j = i;
        while j < n {
            sum += E::load1(x.add(j * sz)) * E::load1(y.add(j * sz));
            j += 1;
        }
        *o = sum;
    }
    out
}

/// [`run_avx512`] for one weight row `x` and `N` activation rows `ys`, bit for bit as
/// [`run_avx2_multi`] is to [`run_avx2`].
///
/// # Safety
/// As [`run_avx512`], for `x` and every row of `ys`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn run_avx512_multi<E: Elem, const N: usize>(
    n: usize,
    x: *const u8,
    ys: [*const u8; N],
) -> [f32; N] {
    let sz = E::T.block_bytes();
    let all: __mmask16 = 0xFFFF;
    let mut acc = [[_mm512_setzero_ps(); 4]; N];
    let mut i = 0;
    while i + 64 <= n {
        for k in 0..4 {
            let at = (i + 16 * k) * sz;
            let w = E::load16(x.add(at), all);
            for (acc, y) in acc.iter_mut().zip(ys) {
                acc[k] = _mm512_fmadd_ps(w, E::load16(y.add(at), all), acc[k]);
            }
        }
        i += 64;
    }
    while i + 16 <= n {
        let at = i * sz;
        let w = E::load16(x.add(at), all);
        for (acc, y) in acc.iter_mut().zip(ys) {
            acc[0] = _mm512_fmadd_ps(w, E::load16(y.add(at), all), acc[0]);
        }
        i += 16;
    }
    if i < n {
        let m: __mmask16 = (1u16 << (n - i)) - 1;
        let at = i * sz;
        let w = E::load16(x.add(at), m);
        for (acc, y) in acc.iter_mut().zip(ys) {
            acc[1] = _mm512_fmadd_ps(w, E::load16(y.add(at), m), acc[1]);
        }
    }
    let mut out = [0.0f32; N];
    for (o, acc) in out.iter_mut().zip(&acc) {
        let total = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        *o = _mm512_reduce_add_ps(total);
    }
    out
}

/// A multi-vector body compiled for some CPU features: weight row, activation rows.
type MultiBody<const N: usize> = unsafe fn(usize, *const u8, [*const u8; N]) -> [f32; N];

/// Checks every row as [`check_rows`] does, then runs `body` on them.
///
/// # Safety
/// The CPU must have the features `body` is compiled with.
unsafe fn checked_multi<E: Elem, const N: usize>(
    body: MultiBody<N>,
    n: usize,
    x: &[u8],
    ys: [&[u8]; N],
) -> [f32; N] {
    for y in ys {
        check_rows(n, x, y, E::T, E::T);
    }
    // SAFETY: `check_rows` proved the weight row and every activation row hold `n`
    // elements; the caller vouches for the CPU features.
    unsafe { body(n, x.as_ptr(), ys.map(<[u8]>::as_ptr)) }
}

fn avx2_dot_multi<E: Elem, const N: usize>(
    n: usize,
    x: &[u8],
    ys: [&[u8]; N],
    _scales: [&[f32]; N],
) -> [f32; N] {
    debug_assert!(CpuLevel::Avx2.is_supported());
    // SAFETY: handed out only by `avx2_multi`/`avx512_multi`, which `dot::kernel_multi`
    // calls after `level.is_supported()` confirmed AVX2, FMA and F16C.
    unsafe { checked_multi::<E, N>(run_avx2_multi::<E, N>, n, x, ys) }
}

fn avx512_dot_multi<E: Elem, const N: usize>(
    n: usize,
    x: &[u8],
    ys: [&[u8]; N],
    _scales: [&[f32]; N],
) -> [f32; N] {
    debug_assert!(CpuLevel::Avx512.is_supported());
    // SAFETY: handed out only by `avx512_multi`, which `dot::kernel_multi` calls after
    // `level.is_supported()` confirmed AVX2, FMA, F16C and AVX-512 F/BW/VL.
    unsafe { checked_multi::<E, N>(run_avx512_multi::<E, N>, n, x, ys) }
}

fn avx2_vl_dot_multi<E: Elem, const N: usize>(
    n: usize,
    x: &[u8],
    ys: [&[u8]; N],
    _scales: [&[f32]; N],
) -> [f32; N] {
    debug_assert!(CpuLevel::Avx512.is_supported());
    // SAFETY: as `avx512_dot_multi`.
    unsafe { checked_multi::<E, N>(run_avx2_multi_vl::<E, N>, n, x, ys) }
}

/// AVX2 multi-vector kernels for the float types.
pub(super) fn avx2_multi<const N: usize>(w: GgmlType) -> Option<VecDotMultiFn<N>> {
    match w {
        GgmlType::F32 => Some(avx2_dot_multi::<F32, N>),
        GgmlType::F16 => Some(avx2_dot_multi::<F16, N>),
        GgmlType::BF16 => Some(avx2_dot_multi::<Bf16, N>),
        _ => None,
    }
}

/// AVX-512 multi-vector kernels for the float types (F16 on the AVX2 body, as [`avx512`],
/// with AVX-512 VL's 32 registers).
pub(super) fn avx512_multi<const N: usize>(w: GgmlType) -> Option<VecDotMultiFn<N>> {
    match w {
        GgmlType::F32 => Some(avx512_dot_multi::<F32, N>),
        GgmlType::F16 => Some(avx2_vl_dot_multi::<F16, N>),
        GgmlType::BF16 => Some(avx512_dot_multi::<Bf16, N>),
        _ => None,
    }
}

fn avx2_dot<E: Elem>(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let n = check_rows(n, x, y, E::T, E::T);
    debug_assert!(CpuLevel::Avx2.is_supported());
    // SAFETY: `avx2` hands this kernel out only for CpuLevel::Avx2/Avx512, and
    // `dot::kernel` returns it only after `level.is_supported()` confirmed AVX2, FMA and
    // F16C; `check_rows` proved both slices hold `n` elements.
    unsafe { run_avx2::<E>(n, x.as_ptr(), y.as_ptr()) }
}

fn avx512_dot<E: Elem>(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let n = check_rows(n, x, y, E::T, E::T);
    debug_assert!(CpuLevel::Avx512.is_supported());
    // SAFETY: `avx512` hands this kernel out only for CpuLevel::Avx512, and `dot::kernel`
    // returns it only after `level.is_supported()` confirmed AVX2, FMA, F16C and AVX-512
    // F/BW/VL; `check_rows` proved both slices hold `n` elements.
    unsafe { run_avx512::<E>(n, x.as_ptr(), y.as_ptr()) }
}

/// AVX2 kernels for the float types.
pub(super) fn avx2(w: GgmlType) -> Option<VecDotFn> {
    match w {
        GgmlType::F32 => Some(avx2_dot::<F32>),
        GgmlType::F16 => Some(avx2_dot::<F16>),
        GgmlType::BF16 => Some(avx2_dot::<Bf16>),
        _ => None,
    }
}

/// AVX-512 kernels for the float types. F16 keeps the AVX2 kernel: 512-bit `vcvtph2ps`
/// made it about 1.5× slower on the AMD EPYC (Zen 4) this was measured on, where 512-bit
/// operations run as two 256-bit halves.
pub(super) fn avx512(w: GgmlType) -> Option<VecDotFn> {
    match w {
        GgmlType::F32 => Some(avx512_dot::<F32>),
        GgmlType::F16 => Some(avx2_dot::<F16>),
        GgmlType::BF16 => Some(avx512_dot::<Bf16>),
        _ => None,
    }
}
