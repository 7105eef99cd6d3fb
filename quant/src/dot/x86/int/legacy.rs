//! The 32-element pairs: Q4_0, Q5_0, Q8_0 and IQ4_NL against Q8_0, Q4_1 and Q5_1 against
//! Q8_1. Each is a [`Split`] type, so the multi-vector kernels serve it too. Offsets are
//! those of the [`crate::blocks`] structs.

use std::arch::x86_64::*;

use super::{bits32, dot_i8i8, load256, nibbles32, split_block, Block, Isa, Pair, Split};
use crate::formats::IQ4_VALUES;
use crate::GgmlType;

pub(super) struct Q40;
pub(super) struct Q41;
pub(super) struct Q50;
pub(super) struct Q51;
pub(super) struct Q80;
pub(super) struct Iq4Nl;

impl Pair for Q40 {
    const W: GgmlType = GgmlType::Q4_0;

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
