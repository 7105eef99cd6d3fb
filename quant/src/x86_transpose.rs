//! An 8×8 transpose of 32-bit lanes in AVX2 registers, shared by the integer row-lane
//! kernels and the f32 attention kernels.

use std::arch::x86_64::*;

/// 8×8 transpose of 32-bit lanes: lane `j` of input `i` → lane `i` of output `j`.
///
/// # Safety
/// AVX2 available (the caller's target features).
#[inline(always)]
pub(crate) unsafe fn transpose8(u: [__m256i; 8]) -> [__m256i; 8] {
    let lo01 = _mm256_unpacklo_epi32(u[0], u[1]);
    let hi01 = _mm256_unpackhi_epi32(u[0], u[1]);
    let lo23 = _mm256_unpacklo_epi32(u[2], u[3]);
    let hi23 = _mm256_unpackhi_epi32(u[2], u[3]);
    let lo45 = _mm256_unpacklo_epi32(u[4], u[5]);
    let hi45 = _mm256_unpackhi_epi32(u[4], u[5]);
    let lo67 = _mm256_unpacklo_epi32(u[6], u[7]);
    let hi67 = _mm256_unpackhi_epi32(u[6], u[7]);
    // sJa: lanes J (low half) and J + 4 (high half) of inputs 0..4; sJb: of inputs 4..8.
    let s = [
        (
            _mm256_unpacklo_epi64(lo01, lo23),
            _mm256_unpacklo_epi64(lo45, lo67),
        ),
        (
            _mm256_unpackhi_epi64(lo01, lo23),
            _mm256_unpackhi_epi64(lo45, lo67),
        ),
        (
            _mm256_unpacklo_epi64(hi01, hi23),
            _mm256_unpacklo_epi64(hi45, hi67),
        ),
        (
            _mm256_unpackhi_epi64(hi01, hi23),
            _mm256_unpackhi_epi64(hi45, hi67),
        ),
    ];
    let mut out = [_mm256_setzero_si256(); 8];
    for (j, (a, b)) in s.into_iter().enumerate() {
        out[j] = _mm256_permute2x128_si256::<0x20>(a, b);
        out[j + 4] = _mm256_permute2x128_si256::<0x31>(a, b);
    }
    out
}
