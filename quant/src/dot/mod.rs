//! Dot products of one quantized weight row with one quantized activation row.
//!
//! Each weight type is paired with the activation type llama.cpp pairs it with
//! ([`activation_type`]); a kernel takes `n` elements of each, as raw block bytes.

use crate::formats::check_bytes;
use crate::{cpu, CpuLevel, GgmlType, QuantError};

#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// A dot-product kernel: `n` elements of a weight row (`w`, block bytes of the weight type)
/// times `n` elements of an activation row (`a`, block bytes of [`activation_type`]).
///
/// Kernels assert that both slices hold at least `n` elements' worth of blocks and that
/// `n` is a multiple of the block length; callers validate shapes once, up front.
pub type VecDotFn = fn(n: usize, w: &[u8], a: &[u8]) -> f32;

/// A multi-vector kernel: one weight row (`w`, as for [`VecDotFn`]) times `N` activation
/// rows `a`, each weight block unpacked once for all of them. `scales[v]` is
/// [`widen_scales`] of `a[v]`: the rows' f16 block scales widened to f32 once, since a
/// matmul reuses them for every weight row.
///
/// Element `v` of the result is bit for bit what the single-vector kernel
/// [`kernel`]`(level, ty)` of the same level returns for `(n, w, a[v])` (NaN where that is
/// NaN): the same per-block integer sums, scales and float accumulation order. Same
/// contract as [`VecDotFn`] for every row of `a`; panics if a `scales[v]` is shorter than
/// [`widen_scales`] makes it.
pub type VecDotMultiFn<const N: usize> =
    fn(n: usize, w: &[u8], a: [&[u8]; N], scales: [&[f32]; N]) -> [f32; N];

/// The block scales of `n` elements of the activation row `a` (type `a_ty`) widened
/// exactly to f32, as a [`VecDotMultiFn`] takes them: for Q8_0 each block's `d`; for Q8_1
/// each block's `d`, then each block's `s`; nothing for other types. Replaces `out`'s
/// contents.
///
/// # Panics
/// If `a` holds fewer than `n` elements (whole blocks) of `a_ty`.
pub fn widen_scales(a_ty: GgmlType, n: usize, a: &[u8], out: &mut Vec<f32>) {
    out.clear();
    let fields: &[usize] = match a_ty {
        GgmlType::Q8_0 => &[0],
        GgmlType::Q8_1 => &[0, 2],
        _ => return,
    };
    let (len, bytes) = (a_ty.block_len(), a_ty.block_bytes());
    assert!(
        n.is_multiple_of(len) && a.len() >= n / len * bytes,
        "widen_scales: {} bytes do not hold {n} elements of {a_ty}",
        a.len()
    );
    for &off in fields {
        out.extend(
            a[..n / len * bytes]
                .chunks_exact(bytes)
                .map(|b| half::f16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()),
        );
    }
}

/// The activation type llama.cpp pairs with weight type `w` (`Q4_0·Q8_0`, `Q4_1·Q8_1`,
/// `Q4_K·Q8_K`, `F16·F16`, …), or `None` if Fennec has no kernel for `w`.
///
/// The one table of pairings: every kernel (scalar, x86, NEON) takes its activation type
/// from here.
pub const fn activation_type(w: GgmlType) -> Option<GgmlType> {
    use GgmlType::*;
    Some(match w {
        F32 => F32,
        F16 => F16,
        BF16 => BF16,
        Q4_0 | Q5_0 | Q8_0 | Iq4Nl => Q8_0,
        Q4_1 | Q5_1 => Q8_1,
        Q2K | Q3K | Q4K | Q5K | Q6K | Iq4Xs => Q8K,
        _ => return None,
    })
}

/// The kernel for weight type `w` at `level`: the level's own SIMD kernel when it has one,
/// otherwise the scalar reference. `None` if no kernel exists for `w` at all.
/// A level this CPU cannot run gets the scalar kernel.
pub fn kernel(level: CpuLevel, w: GgmlType) -> Option<VecDotFn> {
    simd_kernel(level, w).or_else(|| scalar::kernel(w))
}

/// The SIMD kernel of `level` itself for weight type `w`, without the scalar fallback that
/// [`kernel`] adds: `None` for [`CpuLevel::Scalar`], for a level this CPU cannot run, and
/// for a type the level has no kernel for. Tests use it to know they compare a SIMD kernel
/// against the scalar one, and `fennec bench` to report which path runs.
pub fn simd_kernel(level: CpuLevel, w: GgmlType) -> Option<VecDotFn> {
    if !level.is_supported() {
        return None;
    }
    match level {
        #[cfg(target_arch = "x86_64")]
        CpuLevel::Avx2 | CpuLevel::Avx512 => x86::kernel(level, w),
        #[cfg(target_arch = "aarch64")]
        CpuLevel::Neon | CpuLevel::Dotprod | CpuLevel::I8mm => neon::kernel(level, w),
        _ => {
            let _ = w;
            None
        }
    }
}

/// The name of the path [`kernel`]`(level, w)` takes: the level's name when it has its own
/// kernel for `w`, `"scalar"` when it falls back, `None` when `w` has no kernel at all.
pub fn kernel_path(level: CpuLevel, w: GgmlType) -> Option<&'static str> {
    if simd_kernel(level, w).is_some() {
        Some(level.name())
    } else {
        scalar::kernel(w).map(|_| CpuLevel::Scalar.name())
    }
}

/// The 4-vector kernel for weight type `w` at `level`: see [`kernel_multi8`].
pub fn kernel_multi4(level: CpuLevel, w: GgmlType) -> Option<VecDotMultiFn<4>> {
    kernel_multi::<4>(level, w)
}

/// The 8-vector kernel for weight type `w` at `level`, where that level has one (the x86
/// AVX2 and AVX-512 levels, for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q4_K, Q5_K and
/// Q6_K). `None` otherwise, including for a level this CPU cannot run: callers then use
/// [`kernel`] row by row. Its results equal [`kernel`]`(level, w)`'s bit for bit.
///
/// The group sizes are fixed (4 and 8, the sizes `matmul` uses) and the functions are not
/// generic, so the kernels are compiled once, here, rather than again in every crate that
/// asks for them.
pub fn kernel_multi8(level: CpuLevel, w: GgmlType) -> Option<VecDotMultiFn<8>> {
    kernel_multi::<8>(level, w)
}

/// The `N`-vector kernel behind [`kernel_multi4`] and [`kernel_multi8`].
fn kernel_multi<const N: usize>(level: CpuLevel, w: GgmlType) -> Option<VecDotMultiFn<N>> {
    if !level.is_supported() {
        return None;
    }
    match level {
        #[cfg(target_arch = "x86_64")]
        CpuLevel::Avx2 | CpuLevel::Avx512 => x86::kernel_multi::<N>(level, w),
        #[allow(unreachable_patterns)]
        _ => {
            let _ = w;
            None
        }
    }
}

/// `n` elements of weight row `w` (type `ty`) times activation row `a` (already quantized
/// to [`activation_type`]`(ty)`), with the kernel of [`cpu::level`]. Both slices must be
/// exactly `n` elements long.
pub fn vec_dot(ty: GgmlType, n: usize, w: &[u8], a: &[u8]) -> Result<f32, QuantError> {
    let unsupported = QuantError::Unsupported { ty, op: "vec_dot" };
    let a_ty = activation_type(ty).ok_or(unsupported.clone())?;
    let dot = kernel(cpu::level(), ty).ok_or(unsupported)?;
    check_bytes(ty, n, w.len(), "weights")?;
    check_bytes(a_ty, n, a.len(), "activations")?;
    Ok(dot(n, w, a))
}
