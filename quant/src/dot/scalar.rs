//! Scalar reference kernels: the definition every SIMD kernel is tested against.

use super::VecDotFn;
use crate::GgmlType;

/// See [`super::activation_type`].
pub(crate) fn activation_type(_w: GgmlType) -> Option<GgmlType> {
    None
}

/// The scalar kernel for weight type `w`.
pub(crate) fn kernel(_w: GgmlType) -> Option<VecDotFn> {
    None
}
