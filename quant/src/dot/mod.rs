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

/// The activation type llama.cpp pairs with weight type `w` (`Q4_0·Q8_0`, `Q4_1·Q8_1`,
/// `Q4_K·Q8_K`, `F16·F16`, …), or `None` if Fennec has no kernel for `w`.
pub fn activation_type(w: GgmlType) -> Option<GgmlType> {
    scalar::activation_type(w)
}

/// The kernel for weight type `w` at `level`: the level's own SIMD kernel when it has one,
/// otherwise the scalar reference. `None` if no kernel exists for `w` at all.
/// A level this CPU cannot run gets the scalar kernel.
pub fn kernel(level: CpuLevel, w: GgmlType) -> Option<VecDotFn> {
    if !level.is_supported() {
        return scalar::kernel(w);
    }
    let simd: Option<VecDotFn> = match level {
        CpuLevel::Scalar => None,
        #[cfg(target_arch = "x86_64")]
        CpuLevel::Avx2 | CpuLevel::Avx512 => x86::kernel(level, w),
        #[cfg(target_arch = "aarch64")]
        CpuLevel::Neon | CpuLevel::Dotprod | CpuLevel::I8mm => neon::kernel(level, w),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    simd.or_else(|| scalar::kernel(w))
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
