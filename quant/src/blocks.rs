//! Block layouts of the quantized types, byte for byte as in ggml's `ggml-common.h`.
//!
//! Every struct is `#[repr(C)]` with only `u8`/`i8`/`u16`/`i16`/`f16`/`f32` fields and no
//! padding, so a slice of blocks can be viewed straight from a memory-mapped GGUF tensor.
//! The list at the end pairs each struct with its [`GgmlType`] and checks its size.

use half::f16;

use crate::bytes::Block;
use crate::GgmlType;

/// Elements in a legacy block (Q4_0 … Q8_1, IQ4_NL).
pub const QK: usize = 32;
/// Elements in a K-quant super-block (Q2_K … Q8_K, IQ4_XS).
pub const QK_K: usize = 256;
/// Bytes of packed K-quant sub-block scales (Q3_K, Q4_K, Q5_K).
pub const K_SCALE_SIZE: usize = 12;

/// Q4_0: `x = d * (q - 8)`, q in 0..16.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// 32 nibbles: element i in the low nibble of byte i, element i+16 in its high nibble.
    pub qs: [u8; QK / 2],
}

/// Q4_1: `x = d * q + m`, q in 0..16.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Nibbles, laid out as in Q4_0.
    pub qs: [u8; QK / 2],
}

/// Q5_0: `x = d * (q - 16)`, q in 0..32; the fifth bits live in `qh`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bit of element i at bit i (little-endian u32).
    pub qh: [u8; 4],
    /// Low four bits, laid out as in Q4_0.
    pub qs: [u8; QK / 2],
}

/// Q5_1: `x = d * q + m`, q in 0..32.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Fifth bit of element i at bit i (little-endian u32).
    pub qh: [u8; 4],
    /// Low four bits, laid out as in Q4_0.
    pub qs: [u8; QK / 2],
}

/// Q8_0: `x = d * q`, q in -127..=127.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quants.
    pub qs: [i8; QK],
}

/// Q8_1: Q8_0 plus `s = d * sum(q)`, used as the activation type for Q4_1/Q5_1.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// `d * sum(qs)`.
    pub s: f16,
    /// Quants.
    pub qs: [i8; QK],
}

/// Q2_K: 16 sub-blocks of 16, 4-bit scale and 4-bit min each, 2-bit quants.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ2K {
    /// Sub-block scales (low nibble) and mins (high nibble).
    pub scales: [u8; QK_K / 16],
    /// 2-bit quants, four per byte.
    pub qs: [u8; QK_K / 4],
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
}

/// Q3_K: 16 sub-blocks of 16, 6-bit scales, 3-bit quants (high bit in `hmask`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ3K {
    /// High bit of each quant.
    pub hmask: [u8; QK_K / 8],
    /// Low two bits of each quant.
    pub qs: [u8; QK_K / 4],
    /// Sixteen 6-bit scales, packed.
    pub scales: [u8; K_SCALE_SIZE],
    /// Super-block scale.
    pub d: f16,
}

/// Q4_K: 8 sub-blocks of 32, 6-bit scales and mins, 4-bit quants.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit mins, packed.
    pub scales: [u8; K_SCALE_SIZE],
    /// 4-bit quants.
    pub qs: [u8; QK_K / 2],
}

/// Q5_K: as Q4_K with a fifth bit per quant in `qh`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ5K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit mins, packed.
    pub scales: [u8; K_SCALE_SIZE],
    /// Fifth bit of each quant.
    pub qh: [u8; QK_K / 8],
    /// Low four bits of each quant.
    pub qs: [u8; QK_K / 2],
}

/// Q6_K: 16 sub-blocks of 16, 8-bit scales, 6-bit quants.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ6K {
    /// Low four bits of each quant.
    pub ql: [u8; QK_K / 2],
    /// High two bits of each quant.
    pub qh: [u8; QK_K / 4],
    /// Sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

/// Q8_K: the activation type of the K-quants: f32 scale, int8 quants, sums of each 16.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8K {
    /// Scale.
    pub d: f32,
    /// Quants.
    pub qs: [i8; QK_K],
    /// Sum of each group of 16 quants.
    pub bsums: [i16; QK_K / 16],
}

/// IQ4_NL: 4-bit indices into a fixed non-linear table, one f16 scale.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockIq4Nl {
    /// Scale.
    pub d: f16,
    /// Table indices, laid out as Q4_0's nibbles.
    pub qs: [u8; QK / 2],
}

/// IQ4_XS: IQ4_NL's table on 256-element super-blocks with 6-bit sub-block scales.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockIq4Xs {
    /// Super-block scale.
    pub d: f16,
    /// High two bits of the eight sub-block scales.
    pub scales_h: u16,
    /// Low four bits of the eight sub-block scales.
    pub scales_l: [u8; QK_K / 64],
    /// Table indices.
    pub qs: [u8; QK_K / 2],
}

/// Pairs each struct with its [`GgmlType`] ([`Block::TYPE`]) and checks at compile time that
/// its size is the type's [`GgmlType::block_bytes`], so that it has no padding.
macro_rules! impl_block {
    ($($t:ty => $g:ident),* $(,)?) => {$(
        const _: () = assert!(std::mem::size_of::<$t>() == GgmlType::$g.block_bytes());
        // SAFETY: every struct in this file is `#[repr(C)]` of integer/f16/f32 fields and
        // arrays, with no padding (its size equals ggml's `sizeof`, checked at compile time
        // just above), and every bit pattern is a valid value of those field types.
        unsafe impl Block for $t {
            const TYPE: GgmlType = GgmlType::$g;
        }
    )*};
}

impl_block!(
    BlockQ4_0 => Q4_0, BlockQ4_1 => Q4_1, BlockQ5_0 => Q5_0, BlockQ5_1 => Q5_1,
    BlockQ8_0 => Q8_0, BlockQ8_1 => Q8_1, BlockQ2K => Q2K, BlockQ3K => Q3K, BlockQ4K => Q4K,
    BlockQ5K => Q5K, BlockQ6K => Q6K, BlockQ8K => Q8K, BlockIq4Nl => Iq4Nl, BlockIq4Xs => Iq4Xs,
);
