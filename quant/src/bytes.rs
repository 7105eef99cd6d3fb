//! Little-endian field reads from raw block bytes, and a checked view of bytes as blocks.
//!
//! Kernels read blocks straight from `&[u8]` (a memory-mapped tensor need not be aligned for
//! the block structs), so these helpers take a byte slice and an offset.

use half::{bf16, f16};

use crate::{GgmlType, QuantError};

/// The f16 stored little-endian at `b[off..off + 2]`, widened to f32.
#[inline(always)]
pub(crate) fn f16_at(b: &[u8], off: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// The bf16 stored little-endian at `b[off..off + 2]`, widened to f32.
#[inline(always)]
pub(crate) fn bf16_at(b: &[u8], off: usize) -> f32 {
    bf16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// The f32 stored little-endian at `b[off..off + 4]`.
#[inline(always)]
pub(crate) fn f32_at(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The i16 stored little-endian at `b[off..off + 2]`.
#[inline(always)]
pub(crate) fn i16_at(b: &[u8], off: usize) -> i16 {
    i16::from_le_bytes([b[off], b[off + 1]])
}

/// The u16 stored little-endian at `b[off..off + 2]`.
#[inline(always)]
pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// The u32 stored little-endian at `b[off..off + 4]`.
#[inline(always)]
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Writes `v` as an f16 (round to nearest even, as ggml's `GGML_FP32_TO_FP16`) at `b[off..]`.
#[inline(always)]
pub(crate) fn put_f16(b: &mut [u8], off: usize, v: f32) {
    b[off..off + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

/// Writes `v` little-endian at `b[off..off + 4]`.
#[inline(always)]
pub(crate) fn put_f32(b: &mut [u8], off: usize, v: f32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// A block struct from [`crate::blocks`]: plain old data with the layout of one ggml block.
/// The structs and their types are paired (and their sizes checked) in [`crate::blocks`].
///
/// # Safety
/// Implementors must be `#[repr(C)]`, contain no padding, and be valid for every bit pattern.
pub unsafe trait Block: Copy + 'static {
    /// The ggml type whose block this is.
    const TYPE: GgmlType;
}

/// Views `bytes` as a slice of blocks `T`: fails when the length is not a whole number of
/// blocks or the start is not aligned for `T` (2 bytes for f16 blocks, 4 for Q8_K).
///
/// The blocks are read in the machine's byte order; GGUF data is little-endian.
pub fn view_blocks<T: Block>(bytes: &[u8]) -> Result<&[T], QuantError> {
    let size = std::mem::size_of::<T>();
    if !bytes.len().is_multiple_of(size) {
        return Err(QuantError::BufferNotWholeBlocks {
            ty: T::TYPE,
            len: bytes.len(),
            block_bytes: size,
        });
    }
    let align = std::mem::align_of::<T>();
    if !(bytes.as_ptr() as usize).is_multiple_of(align) {
        return Err(QuantError::Misaligned { ty: T::TYPE, align });
    }
    // SAFETY: the pointer is aligned for `T` (checked above), the region holds exactly
    // `len / size` whole `T`s inside `bytes`, `T: Block` guarantees any bytes are a valid `T`
    // with no padding, and the returned slice borrows `bytes` so it cannot outlive it or alias
    // a mutable borrow.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
}

/// The bytes of `x` (native endianness): f32 rows handed to a kernel that reads F32 data as
/// raw bytes, without a copy.
pub fn f32_bytes(x: &[f32]) -> &[u8] {
    // SAFETY: the bytes of initialised f32s are initialised u8s; u8 has alignment 1 and no
    // invalid values; the length covers exactly the same memory; the borrow is tied to `x`.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<u8>(), std::mem::size_of_val(x)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{BlockQ8K, BlockQ8_0};

    #[test]
    fn view_blocks_checks_length_and_alignment() {
        // A u32 buffer is 4-byte aligned, enough for every block struct.
        let words = vec![0u32; 2 * 292 / 4];
        // SAFETY: viewing initialised u32s as bytes: same memory, u8 has no invalid values.
        let bytes =
            unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 4) };
        let q8k: &[BlockQ8K] = view_blocks(bytes).unwrap();
        assert_eq!(q8k.len(), 2);
        assert!(matches!(
            view_blocks::<BlockQ8K>(&bytes[..291]),
            Err(QuantError::BufferNotWholeBlocks { .. })
        ));
        assert!(matches!(
            view_blocks::<BlockQ8K>(&bytes[2..294]),
            Err(QuantError::Misaligned { align: 4, .. })
        ));
        let q80: &[BlockQ8_0] = view_blocks(&bytes[..68]).unwrap();
        assert_eq!(q80.len(), 2);
        assert!(view_blocks::<BlockQ8_0>(&bytes[1..35]).is_err());
    }

    #[test]
    fn field_readers_are_little_endian() {
        let b = [0x00, 0x3c, 0x00, 0x00, 0x80, 0x3f, 0xff, 0xff];
        assert_eq!(f16_at(&b, 0), 1.0);
        assert_eq!(f32_at(&b, 2), 1.0);
        assert_eq!(i16_at(&b, 6), -1);
        assert_eq!(u16_at(&b, 6), 0xffff);
        assert_eq!(u32_at(&b, 4), 0xffff_3f80);
        assert_eq!(bf16_at(&b, 4), 1.0);
    }
}
