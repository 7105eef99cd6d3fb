//! aarch64 NEON kernels (baseline, dotprod, i8mm).

use super::VecDotFn;
use crate::{CpuLevel, GgmlType};

/// The SIMD kernel for `w` at `level` (already checked supported), if one exists.
pub(crate) fn kernel(_level: CpuLevel, _w: GgmlType) -> Option<VecDotFn> {
    None
}
