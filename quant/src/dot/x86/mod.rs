//! x86-64 SIMD kernels (AVX2 + FMA + F16C, AVX-512 BW/VL/VNNI).

use super::VecDotFn;
use crate::{CpuLevel, GgmlType};

/// The SIMD kernel for `w` at `level` (already checked supported), if one exists.
pub(crate) fn kernel(_level: CpuLevel, _w: GgmlType) -> Option<VecDotFn> {
    None
}
