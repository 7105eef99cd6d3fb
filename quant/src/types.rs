//! The ggml tensor element types as numbered in GGUF files, with their block geometry.

use std::fmt;

/// A ggml tensor element type, numbered exactly as in `ggml.h` and GGUF files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum GgmlType {
    /// 32-bit IEEE float.
    F32 = 0,
    /// 16-bit IEEE float.
    F16 = 1,
    /// 4-bit, 32-element blocks, one f16 scale.
    Q4_0 = 2,
    /// 4-bit, 32-element blocks, f16 scale and minimum.
    Q4_1 = 3,
    /// 5-bit, 32-element blocks, one f16 scale.
    Q5_0 = 6,
    /// 5-bit, 32-element blocks, f16 scale and minimum.
    Q5_1 = 7,
    /// 8-bit, 32-element blocks, one f16 scale.
    Q8_0 = 8,
    /// 8-bit, 32-element blocks, f16 scale and f16 sum (activation type).
    Q8_1 = 9,
    /// 2-bit K-quant, 256-element super-blocks.
    Q2K = 10,
    /// 3-bit K-quant, 256-element super-blocks.
    Q3K = 11,
    /// 4-bit K-quant, 256-element super-blocks.
    Q4K = 12,
    /// 5-bit K-quant, 256-element super-blocks.
    Q5K = 13,
    /// 6-bit K-quant, 256-element super-blocks.
    Q6K = 14,
    /// 8-bit K-quant with f32 scale and block sums (activation type).
    Q8K = 15,
    /// 2.06-bit importance quant.
    Iq2Xxs = 16,
    /// 2.31-bit importance quant.
    Iq2Xs = 17,
    /// 3.06-bit importance quant.
    Iq3Xxs = 18,
    /// 1.56-bit importance quant.
    Iq1S = 19,
    /// 4-bit non-linear, 32-element blocks.
    Iq4Nl = 20,
    /// 3.44-bit importance quant.
    Iq3S = 21,
    /// 2.5-bit importance quant.
    Iq2S = 22,
    /// 4.25-bit non-linear, 256-element super-blocks.
    Iq4Xs = 23,
    /// 8-bit signed integer.
    I8 = 24,
    /// 16-bit signed integer.
    I16 = 25,
    /// 32-bit signed integer.
    I32 = 26,
    /// 64-bit signed integer.
    I64 = 27,
    /// 64-bit IEEE float.
    F64 = 28,
    /// 1.75-bit importance quant.
    Iq1M = 29,
    /// bfloat16.
    BF16 = 30,
    /// Ternary 1.69-bit.
    Tq1_0 = 34,
    /// Ternary 2.06-bit.
    Tq2_0 = 35,
    /// Microscaling FP4 (E2M1 with a shared E8M0 exponent).
    Mxfp4 = 39,
    /// NVIDIA FP4 (E2M1 with FP8 scales).
    Nvfp4 = 40,
    /// 1-bit, 128-element blocks.
    Q1_0 = 41,
}

/// A type number that no known ggml type has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ggml tensor type {0}")]
pub struct TypeError(pub u32);

impl GgmlType {
    /// Every known type, in numeric order.
    pub const ALL: [GgmlType; 34] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q8_1,
        Self::Q2K,
        Self::Q3K,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
        Self::Q8K,
        Self::Iq2Xxs,
        Self::Iq2Xs,
        Self::Iq3Xxs,
        Self::Iq1S,
        Self::Iq4Nl,
        Self::Iq3S,
        Self::Iq2S,
        Self::Iq4Xs,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::I64,
        Self::F64,
        Self::Iq1M,
        Self::BF16,
        Self::Tq1_0,
        Self::Tq2_0,
        Self::Mxfp4,
        Self::Nvfp4,
        Self::Q1_0,
    ];

    /// The type with this GGUF number, if any.
    pub fn from_u32(id: u32) -> Result<Self, TypeError> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| *t as u32 == id)
            .ok_or(TypeError(id))
    }

    /// Elements per block (1 for plain scalar types).
    pub const fn block_len(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 | I8 | I16 | I32 | I64 | F64 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | Iq4Nl | Mxfp4 => 32,
            Nvfp4 => 64,
            Q1_0 => 128,
            Q2K | Q3K | Q4K | Q5K | Q6K | Q8K | Iq2Xxs | Iq2Xs | Iq3Xxs | Iq1S | Iq3S | Iq2S
            | Iq4Xs | Iq1M | Tq1_0 | Tq2_0 => 256,
        }
    }

    /// Bytes per block, as `sizeof(block_*)` in ggml.
    pub const fn block_bytes(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | I32 => 4,
            F16 | BF16 | I16 => 2,
            I8 => 1,
            I64 | F64 => 8,
            Q4_0 | Iq4Nl => 18,
            Q4_1 => 20,
            Q5_0 => 22,
            Q5_1 => 24,
            Q8_0 => 34,
            // ggml: two f16 (d, s) + 32 int8. gguf-py's table says 40 (an old f32 layout).
            Q8_1 => 36,
            Q2K => 84,
            Q3K => 110,
            Q4K => 144,
            Q5K => 176,
            Q6K => 210,
            Q8K => 292,
            Iq2Xxs => 66,
            Iq2Xs => 74,
            Iq3Xxs => 98,
            Iq1S => 50,
            Iq3S => 110,
            Iq2S => 82,
            Iq4Xs => 136,
            Iq1M => 56,
            Tq1_0 => 54,
            Tq2_0 => 66,
            Mxfp4 => 17,
            Nvfp4 => 36,
            Q1_0 => 18,
        }
    }

    /// The name ggml and gguf-py give this type (`"Q4_K"`, `"F16"`, …).
    pub const fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2K => "Q2_K",
            Q3K => "Q3_K",
            Q4K => "Q4_K",
            Q5K => "Q5_K",
            Q6K => "Q6_K",
            Q8K => "Q8_K",
            Iq2Xxs => "IQ2_XXS",
            Iq2Xs => "IQ2_XS",
            Iq3Xxs => "IQ3_XXS",
            Iq1S => "IQ1_S",
            Iq4Nl => "IQ4_NL",
            Iq3S => "IQ3_S",
            Iq2S => "IQ2_S",
            Iq4Xs => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            Iq1M => "IQ1_M",
            BF16 => "BF16",
            Tq1_0 => "TQ1_0",
            Tq2_0 => "TQ2_0",
            Mxfp4 => "MXFP4",
            Nvfp4 => "NVFP4",
            Q1_0 => "Q1_0",
        }
    }

    /// The type with this ggml name (case-insensitive), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Bytes taken by a row of `n` elements, or `None` when `n` is not a whole number of blocks.
    pub const fn row_bytes(self, n: u64) -> Option<u64> {
        let block = self.block_len() as u64;
        if !n.is_multiple_of(block) {
            return None;
        }
        (n / block).checked_mul(self.block_bytes() as u64)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_gaps_are_unknown() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_u32(t as u32), Ok(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
        }
        for gap in [4, 5, 31, 32, 33, 36, 37, 38, 42, 1000] {
            assert_eq!(GgmlType::from_u32(gap), Err(TypeError(gap)));
        }
    }

    #[test]
    fn row_bytes_needs_whole_blocks() {
        assert_eq!(GgmlType::Q4_0.row_bytes(64), Some(36));
        assert_eq!(GgmlType::Q4_0.row_bytes(33), None);
        assert_eq!(GgmlType::Q4K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::F32.row_bytes(3), Some(12));
        assert_eq!(GgmlType::F32.row_bytes(u64::MAX), None);
    }
}
