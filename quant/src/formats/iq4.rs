//! The 4-bit non-linear formats IQ4_NL (32-element blocks) and IQ4_XS (256-element
//! super-blocks with 6-bit sub-block scales), both indexing the same 16-entry table.

use super::{nearest_int, signed_abs_max, GROUP_MAX_EPS};
use crate::blocks::{QK, QK_K};
use crate::bytes::{f16_at, put_f16, u16_at};

/// ggml's `kvalues_iq4nl`: the 16 levels a 4-bit IQ4 index selects, in ascending order.
pub(crate) const IQ4_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// The index of the table level closest to `x` (ggml's `best_index_int8`; ties go up).
fn best_index(x: f32) -> u8 {
    let v = |i: usize| f32::from(IQ4_VALUES[i]);
    if x <= v(0) {
        return 0;
    }
    if x >= v(15) {
        return 15;
    }
    let (mut lo, mut hi) = (0usize, 15usize);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if x < v(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    if x - v(hi - 1) < v(hi) - x {
        (hi - 1) as u8
    } else {
        hi as u8
    }
}

/// `Σ w·q·x` and `Σ w·q²` with `w = x²`, for the levels chosen at inverse scale `id`.
fn weighted_sums(x: &[f32], id: f32) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for &xi in x {
        let q = f32::from(IQ4_VALUES[usize::from(best_index(id * xi))]);
        let w = xi * xi;
        sumqx += w * q * xi;
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// The best scale of one 32-element sub-block (ggml's `quantize_row_iq4_nl_impl` first
/// phase, without importance weights). `ntry` is ggml's search width: -1 for IQ4_NL's
/// reference quantizer (no search), 7 for IQ4_XS. `None` for an all-zero block.
fn sub_block_scale(x: &[f32], ntry: i32, levels: &mut [u8]) -> Option<f32> {
    let (amax, max) = signed_abs_max(x);
    if amax < GROUP_MAX_EPS {
        return None;
    }
    let v0 = f32::from(IQ4_VALUES[0]);
    let d = if ntry > 0 { -max / v0 } else { max / v0 };
    let id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for (l, &xi) in levels.iter_mut().zip(x) {
        *l = best_index(id * xi);
        let q = f32::from(IQ4_VALUES[usize::from(*l)]);
        let w = xi * xi;
        sumqx += w * q * xi;
        sumq2 += w * q * q;
    }
    let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -ntry..=ntry {
        let id = (itry as f32 + v0) / max;
        let (sumqx, sumq2) = weighted_sums(x, id);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    Some(d)
}

/// Packs 32 indices: element j in the low nibble of byte j, element j+16 in the high.
fn pack_indices(levels: &[u8], qs: &mut [u8]) {
    for j in 0..QK / 2 {
        qs[j] = levels[j] | (levels[j + QK / 2] << 4);
    }
}

/// IQ4_NL as ggml's `quantize_row_iq4_nl_ref`. An all-zero block gets `d = 0` and zero
/// indices (ggml leaves the indices of such a block as whatever its scratch buffer held).
pub(super) fn quantize_iq4_nl(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(18)) {
        let mut levels = [0u8; QK];
        let d = sub_block_scale(x, -1, &mut levels).unwrap_or(0.0);
        put_f16(y, 0, d);
        pack_indices(&levels, &mut y[2..18]);
    }
}

pub(super) fn dequantize_iq4_nl(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(18).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(x, 0);
        let qs = &x[2..18];
        for j in 0..QK / 2 {
            y[j] = d * f32::from(IQ4_VALUES[usize::from(qs[j] & 0x0F)]);
            y[j + QK / 2] = d * f32::from(IQ4_VALUES[usize::from(qs[j] >> 4)]);
        }
    }
}

/// IQ4_XS as ggml's `quantize_row_iq4_xs_ref` (no importance matrix, search width 7).
pub(super) fn quantize_iq4_xs(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(136)) {
        let mut levels = [0u8; QK_K];
        let mut scales = [0.0f32; QK_K / 32];
        let (mut amax_scale, mut max_scale) = (0.0f32, 0.0f32);
        for ib in 0..QK_K / 32 {
            let xb = &x[32 * ib..32 * ib + 32];
            let d = sub_block_scale(xb, 7, &mut levels[32 * ib..32 * ib + 32]).unwrap_or(0.0);
            scales[ib] = d;
            if d.abs() > amax_scale {
                amax_scale = d.abs();
                max_scale = d;
            }
        }
        let d = -max_scale / 32.0;
        put_f16(y, 0, d);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut scales_h = 0u16;
        let mut scales_l = [0u8; QK_K / 64];
        for ib in 0..QK_K / 32 {
            let l = nearest_int(id * scales[ib]).clamp(-32, 31);
            let dl = d * l as f32;
            let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
            for j in 32 * ib..32 * ib + 32 {
                levels[j] = best_index(idl * x[j]);
            }
            let l = (l + 32) as u8;
            scales_l[ib / 2] |= (l & 0x0F) << (4 * (ib % 2));
            scales_h |= u16::from(l >> 4) << (2 * ib);
        }
        y[2..4].copy_from_slice(&scales_h.to_le_bytes());
        y[4..8].copy_from_slice(&scales_l);
        for ib in 0..QK_K / 32 {
            pack_indices(
                &levels[32 * ib..32 * ib + 32],
                &mut y[8 + 16 * ib..24 + 16 * ib],
            );
        }
    }
}

pub(super) fn dequantize_iq4_xs(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(136).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(x, 0);
        let scales_h = u16_at(x, 2);
        for ib in 0..QK_K / 32 {
            let low = (x[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F;
            let high = ((scales_h >> (2 * ib)) & 3) as u8;
            let dl = d * (i32::from(low | (high << 4)) - 32) as f32;
            let qs = &x[8 + 16 * ib..24 + 16 * ib];
            let out = &mut y[32 * ib..32 * ib + 32];
            for j in 0..16 {
                out[j] = dl * f32::from(IQ4_VALUES[usize::from(qs[j] & 0x0F)]);
                out[j + 16] = dl * f32::from(IQ4_VALUES[usize::from(qs[j] >> 4)]);
            }
        }
    }
}
