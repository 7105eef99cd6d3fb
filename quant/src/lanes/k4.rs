//! Q4_K on the row-lane arithmetic: super-blocks of 256 elements in eight sub-blocks of 32,
//! each with a 6-bit scale `sc_j` and a 6-bit minimum `m_j`, against Q8_K activations
//! (`d_a` as f32, quants in −128..=127, `bsums` per 16).
//!
//! For weight row `w` and activation row `a`, super-block by super-block in order:
//!
//! ```text
//! isum = Σ_j sc_j · Σ_{e in sub-block j} q_w[e] · q_a[e]      (exact i32)
//! msum = Σ_j m_j · (bsums[2j] + bsums[2j + 1])                 (exact i32)
//! acc  = acc + (isum as f32) · (d_w · d_a)
//! acc  = acc − (msum as f32) · (dmin_w · d_a)
//! ```
//!
//! each float step one rounded operation, so the SIMD kernels give the scalar twin's bits.
//!
//! # Panel
//! Eight rows' super-block `k` in the 8 · 144 bytes the rows take:
//!
//! ```text
//! quants  4 chunks × 8 vectors × 32 bytes: chunk c, vector h, lane i = row i's quant bytes
//!         32c + 4h .. 32c + 4h + 4 (low nibbles: sub-block 2c, high: sub-block 2c + 1)
//! d       8 × f16
//! dmin    8 × f16
//! scales  3 vectors × 32 bytes: vector s, lane i = row i's scale bytes 4s .. 4s + 4
//! ```

use super::{f16_at, PANEL_ROWS};
use crate::formats::kquants::unpack_k4_scale_min;

/// Weight super-block bytes.
pub(super) const W_BYTES: usize = 144;
/// Activation (Q8_K) block bytes.
pub(super) const A_BYTES: usize = 292;
/// Offset of the quants in an activation block.
pub(super) const A_QS: usize = 4;
/// Offset of the block sums in an activation block.
pub(super) const A_BSUMS: usize = 260;
/// Panel offsets of `d`, `dmin` and the scale vectors.
pub(super) const P_D: usize = 1024;
pub(super) const P_DMIN: usize = 1040;
pub(super) const P_SCALES: usize = 1056;

/// Writes the panel of the eight `rows` (`nb` super-blocks each) to `dst`.
pub(super) fn pack_panel(nb: usize, rows: [&[u8]; PANEL_ROWS], dst: &mut [u8]) {
    for (k, out) in dst
        .chunks_exact_mut(PANEL_ROWS * W_BYTES)
        .take(nb)
        .enumerate()
    {
        for (i, row) in rows.iter().enumerate() {
            let blk = &row[k * W_BYTES..(k + 1) * W_BYTES];
            for c in 0..4 {
                for h in 0..8 {
                    let src = &blk[16 + 32 * c + 4 * h..][..4];
                    out[256 * c + 32 * h + 4 * i..][..4].copy_from_slice(src);
                }
            }
            out[P_D + 2 * i..][..2].copy_from_slice(&blk[0..2]);
            out[P_DMIN + 2 * i..][..2].copy_from_slice(&blk[2..4]);
            for s in 0..3 {
                out[P_SCALES + 32 * s + 4 * i..][..4].copy_from_slice(&blk[4 + 4 * s..][..4]);
            }
        }
    }
}

/// Row `i` of the panel `panel` (`nb` super-blocks), as the row's own bytes, to `dst`.
pub(super) fn unpack_panel_row(nb: usize, panel: &[u8], i: usize, dst: &mut [u8]) {
    for (k, blk) in dst.chunks_exact_mut(W_BYTES).take(nb).enumerate() {
        let src = &panel[k * PANEL_ROWS * W_BYTES..(k + 1) * PANEL_ROWS * W_BYTES];
        for c in 0..4 {
            for h in 0..8 {
                blk[16 + 32 * c + 4 * h..][..4]
                    .copy_from_slice(&src[256 * c + 32 * h + 4 * i..][..4]);
            }
        }
        blk[0..2].copy_from_slice(&src[P_D + 2 * i..][..2]);
        blk[2..4].copy_from_slice(&src[P_DMIN + 2 * i..][..2]);
        for s in 0..3 {
            blk[4 + 4 * s..][..4].copy_from_slice(&src[P_SCALES + 32 * s + 4 * i..][..4]);
        }
    }
}

/// The scalar twin's sum of one weight row `w` (`nb` super-blocks, row layout) against the
/// activation row `a`.
pub(super) fn row_dot(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = 0.0f32;
    for k in 0..nb {
        let wb = &w[k * W_BYTES..(k + 1) * W_BYTES];
        let ab = &a[k * A_BYTES..(k + 1) * A_BYTES];
        let scales: [u8; 12] = std::array::from_fn(|i| wb[4 + i]);
        let (sc, m) = unpack_k4_scale_min(&scales);
        let mut isum = 0i32;
        let mut msum = 0i32;
        for j in 0..8 {
            let (c, high) = (j / 2, j % 2);
            let s: i32 = (0..32)
                .map(|l| {
                    let q = (wb[16 + 32 * c + l] >> (4 * high)) & 0x0F;
                    i32::from(q) * i32::from(ab[A_QS + 32 * j + l] as i8)
                })
                .sum();
            isum += i32::from(sc[j]) * s;
            let bsum = |t: usize| {
                i32::from(i16::from_le_bytes([
                    ab[A_BSUMS + 2 * t],
                    ab[A_BSUMS + 2 * t + 1],
                ]))
            };
            msum += i32::from(m[j]) * (bsum(2 * j) + bsum(2 * j + 1));
        }
        let da = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
        acc += isum as f32 * (f16_at(wb, 0) * da);
        acc -= msum as f32 * (f16_at(wb, 2) * da);
    }
    acc
}
