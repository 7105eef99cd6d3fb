//! The K-quant super-block formats Q2_K … Q6_K and the activation type Q8_K.

use super::{nearest_int, signed_abs_max, GROUP_MAX_EPS};
use crate::blocks::{K_SCALE_SIZE, QK_K};
use crate::bytes::{f16_at, f32_at, put_f16, put_f32};

// ---------------------------------------------------------------- scale packing

/// The eight 6-bit scales and eight 6-bit mins packed in Q4_K/Q5_K's 12 `scales` bytes
/// (ggml's `get_scale_min_k4`).
#[inline(always)]
pub(crate) fn unpack_k4_scale_min(q: &[u8; K_SCALE_SIZE]) -> ([u8; 8], [u8; 8]) {
    let mut scales = [0u8; 8];
    let mut mins = [0u8; 8];
    for j in 0..8 {
        if j < 4 {
            scales[j] = q[j] & 63;
            mins[j] = q[j + 4] & 63;
        } else {
            scales[j] = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
            mins[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
    (scales, mins)
}

/// Packs eight 6-bit scales and mins into Q4_K/Q5_K's 12 bytes (inverse of the above).
fn pack_k4_scale_min(scales: &[u8; 8], mins: &[u8; 8]) -> [u8; K_SCALE_SIZE] {
    let mut q = [0u8; K_SCALE_SIZE];
    for j in 0..8 {
        let (ls, lm) = (scales[j], mins[j]);
        if j < 4 {
            q[j] = ls;
            q[j + 4] = lm;
        } else {
            q[j + 4] = (ls & 0x0F) | ((lm & 0x0F) << 4);
            q[j - 4] |= (ls >> 4) << 6;
            q[j] |= (lm >> 4) << 6;
        }
    }
    q
}

/// Q3_K's sixteen 6-bit scales (still biased by 32) from its 12 `scales` bytes: low nibbles
/// in bytes 0..8 (scales 0..8 low, 8..16 high nibble), high two bits in bytes 8..12.
#[inline(always)]
pub(crate) fn unpack_q3k_scales(s: &[u8; K_SCALE_SIZE]) -> [u8; 16] {
    std::array::from_fn(|j| {
        let low = if j < 8 { s[j] & 0x0F } else { s[j - 8] >> 4 };
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        low | (high << 4)
    })
}

/// Packs sixteen biased 6-bit scales into Q3_K's 12 bytes (inverse of the above).
fn pack_q3k_scales(scales: &[u8; 16]) -> [u8; K_SCALE_SIZE] {
    let mut s = [0u8; K_SCALE_SIZE];
    for (j, &l) in scales.iter().enumerate() {
        if j < 8 {
            s[j] = l & 0x0F;
        } else {
            s[j - 8] |= (l & 0x0F) << 4;
        }
        s[8 + j % 4] |= (l >> 4) << (2 * (j / 4));
    }
    s
}

/// Packs 256 two-bit values as Q2_K/Q3_K's `qs`: within each 128, byte l holds elements
/// l, l+32, l+64, l+96 at bit offsets 0, 2, 4, 6.
fn pack_2bit(l: &[u8; QK_K], qs: &mut [u8]) {
    for c in 0..QK_K / 128 {
        for i in 0..32 {
            let e = c * 128 + i;
            qs[c * 32 + i] = (l[e] & 3)
                | ((l[e + 32] & 3) << 2)
                | ((l[e + 64] & 3) << 4)
                | ((l[e + 96] & 3) << 6);
        }
    }
}

/// The 2-bit value of element `e` in Q2_K/Q3_K's `qs`.
#[inline(always)]
fn two_bits(qs: &[u8], e: usize) -> u8 {
    let (chunk, group, l) = (e / 128, (e % 128) / 32, e % 32);
    (qs[chunk * 32 + l] >> (2 * group)) & 3
}

// ---------------------------------------------------------------- ggml's scale searches

/// ggml's `make_qx_quants` with `rmse_type = 1` and no importance weights: signed levels
/// `L[i] + nmax` in `0..2*nmax`, returns the scale.
fn make_qx_quants(nmax: i32, x: &[f32], levels: &mut [i8]) -> f32 {
    let (amax, max) = signed_abs_max(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let mut iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (i, &xi) in x.iter().enumerate() {
        let l = clamp(nearest_int(iscale * xi));
        levels[i] = (l + nmax) as i8;
        let w = xi * xi;
        sumlx += w * xi * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &xi in x {
            let l = clamp(nearest_int(iscale * xi));
            let w = xi * xi;
            sumlx += w * xi * l as f32;
            suml2 += w * l as f32 * l as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (i, &xi) in x.iter().enumerate() {
                levels[i] = (nmax + clamp(nearest_int(iscale * xi))) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `make_q3_quants` with `do_rmse = true`: levels `L[i] + nmax`, returns the scale.
fn make_q3_quants(nmax: i32, x: &[f32], levels: &mut [i8]) -> f32 {
    let (amax, max) = signed_abs_max(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (i, &xi) in x.iter().enumerate() {
        let l = clamp(nearest_int(iscale * xi));
        levels[i] = l as i8;
        let w = xi * xi;
        sumlx += w * xi * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut changed = 0;
        for (i, &xi) in x.iter().enumerate() {
            let w = xi * xi;
            let li = f32::from(levels[i]);
            let mut slx = sumlx - w * xi * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = clamp(nearest_int(xi * sl2 / slx));
                if new_l != i32::from(levels[i]) {
                    slx += w * xi * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        levels[i] = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        changed += 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    for l in levels.iter_mut() {
        *l += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Parameters of ggml's `make_qkx2_quants` search.
struct Qkx2Search {
    /// Largest level.
    nmax: i32,
    /// First scale offset tried.
    rmin: f32,
    /// Step between tries.
    rdelta: f32,
    /// Number of steps.
    nstep: i32,
    /// Minimise absolute (true) or squared (false) error.
    use_mad: bool,
}

/// ggml's `make_qkx2_quants`: asymmetric levels in `0..=nmax`; returns `(scale, -min)`.
fn make_qkx2_quants(p: &Qkx2Search, x: &[f32], weights: &[f32], levels: &mut [u8]) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels[..n].fill(0);
        return (0.0, -min);
    }
    let err = |diff: f32| if p.use_mad { diff.abs() } else { diff * diff };
    let mut iscale = p.nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
        levels[i] = l as u8;
        best_error += weights[i] * err(scale * l as f32 + min - x[i]);
    }
    let mut aux = [0u8; 32];
    for is in 0..=p.nstep {
        iscale = (p.rmin + p.rdelta * is as f32 + p.nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
            aux[i] = l as u8;
            let (w, lf) = (weights[i], l as f32);
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                cur_error += weights[i] * err(this_scale * f32::from(aux[i]) + this_min - x[i]);
            }
            if cur_error < best_error {
                levels[..n].copy_from_slice(&aux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

// ---------------------------------------------------------------- Q2_K

pub(super) fn quantize_q2_k(src: &[f32], dst: &mut [u8]) {
    const Q4SCALE: f32 = 15.0;
    let search = Qkx2Search {
        nmax: 3,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(84)) {
        let mut levels = [0u8; QK_K];
        let mut scales = [0.0f32; 16];
        let mut mins = [0.0f32; 16];
        let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            let weights: [f32; 16] = std::array::from_fn(|l| xs[l].abs());
            let (s, m) = make_qkx2_quants(&search, xs, &weights, &mut levels[16 * j..16 * j + 16]);
            scales[j] = s;
            mins[j] = m;
            if s > max_scale {
                max_scale = s;
            }
            if m > max_min {
                max_min = m;
            }
        }
        let mut packed = [0u8; 16];
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for j in 0..16 {
                packed[j] = nearest_int(iscale * scales[j]) as u8;
            }
            put_f16(y, 80, max_scale / Q4SCALE);
        } else {
            put_f16(y, 80, 0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for j in 0..16 {
                packed[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
            }
            put_f16(y, 82, max_min / Q4SCALE);
        } else {
            put_f16(y, 82, 0.0);
        }
        y[0..16].copy_from_slice(&packed);
        let (dd, dmin) = (f16_at(y, 80), f16_at(y, 82));
        for (j, &sc) in packed.iter().enumerate() {
            let d = dd * f32::from(sc & 0x0F);
            if d == 0.0 {
                continue;
            }
            let dm = dmin * f32::from(sc >> 4);
            for i in 16 * j..16 * j + 16 {
                levels[i] = nearest_int((x[i] + dm) / d).clamp(0, 3) as u8;
            }
        }
        pack_2bit(&levels, &mut y[16..80]);
    }
}

pub(super) fn dequantize_q2_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(84).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (f16_at(x, 80), f16_at(x, 82));
        let qs = &x[16..80];
        for (e, out) in y.iter_mut().enumerate() {
            let sc = x[e / 16];
            let dl = d * f32::from(sc & 0x0F);
            let ml = dmin * f32::from(sc >> 4);
            *out = dl * f32::from(two_bits(qs, e)) - ml;
        }
    }
}

// ---------------------------------------------------------------- Q3_K

pub(super) fn quantize_q3_k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(110)) {
        let mut levels = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let (mut amax, mut max_scale) = (0.0f32, 0.0f32);
        for j in 0..16 {
            scales[j] =
                make_q3_quants(4, &x[16 * j..16 * j + 16], &mut levels[16 * j..16 * j + 16]);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        let mut packed = [0u8; 16];
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..16 {
                let l = i32::from(nearest_int(iscale * scales[j]) as i8);
                packed[j] = (l.clamp(-32, 31) + 32) as u8;
            }
            put_f16(y, 108, 1.0 / iscale);
        } else {
            put_f16(y, 108, 0.0);
        }
        y[96..108].copy_from_slice(&pack_q3k_scales(&packed));
        let dd = f16_at(y, 108);
        for (j, &sc) in packed.iter().enumerate() {
            let d = dd * (i32::from(sc) - 32) as f32;
            if d == 0.0 {
                continue;
            }
            for i in 16 * j..16 * j + 16 {
                levels[i] = (nearest_int(x[i] / d).clamp(-4, 3) + 4) as i8;
            }
        }
        let hmask = &mut y[0..32];
        hmask.fill(0);
        let mut low = [0u8; QK_K];
        for (e, &l) in levels.iter().enumerate() {
            let mut l = l as u8;
            if l > 3 {
                hmask[e % 32] |= 1 << (e / 32);
                l -= 4;
            }
            low[e] = l;
        }
        pack_2bit(&low, &mut y[32..96]);
    }
}

pub(super) fn dequantize_q3_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(110).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(x, 108);
        let scales = unpack_q3k_scales(x[96..108].try_into().expect("12 bytes"));
        let (hmask, qs) = (&x[0..32], &x[32..96]);
        for (e, out) in y.iter_mut().enumerate() {
            let dl = d * (i32::from(scales[e / 16]) - 32) as f32;
            let high_set = (hmask[e % 32] >> (e / 32)) & 1 != 0;
            let q = i32::from(two_bits(qs, e)) - if high_set { 0 } else { 4 };
            *out = dl * q as f32;
        }
    }
}

// ---------------------------------------------------------------- Q4_K and Q5_K

/// The shared scale search of Q4_K/Q5_K: fills `levels` (0..=nmax) and returns the packed
/// scales with the f16 `d` and `dmin` already stored in `y[0..4]`.
fn quantize_k4_scales(search: &Qkx2Search, x: &[f32], y: &mut [u8], levels: &mut [u8; QK_K]) {
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2 = xs.iter().fold(0.0f32, |s, v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|l| av_x + xs[l].abs());
        let (s, m) = make_qkx2_quants(search, xs, &weights, &mut levels[32 * j..32 * j + 32]);
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let ls: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    put_f16(y, 0, max_scale / 63.0);
    put_f16(y, 2, max_min / 63.0);
    y[4..16].copy_from_slice(&pack_k4_scale_min(&ls, &lm));
    let (dd, dmin) = (f16_at(y, 0), f16_at(y, 2));
    for j in 0..8 {
        let d = dd * f32::from(ls[j]);
        if d == 0.0 {
            continue;
        }
        let dm = dmin * f32::from(lm[j]);
        for i in 32 * j..32 * j + 32 {
            levels[i] = nearest_int((x[i] + dm) / d).clamp(0, search.nmax) as u8;
        }
    }
}

pub(super) fn quantize_q4_k(src: &[f32], dst: &mut [u8]) {
    let search = Qkx2Search {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        use_mad: false,
    };
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(144)) {
        let mut levels = [0u8; QK_K];
        quantize_k4_scales(&search, x, y, &mut levels);
        let qs = &mut y[16..144];
        for c in 0..QK_K / 64 {
            for l in 0..32 {
                qs[c * 32 + l] = levels[c * 64 + l] | (levels[c * 64 + l + 32] << 4);
            }
        }
    }
}

/// Q4_K/Q5_K: element `e`'s sub-block scale and min as floats.
#[inline(always)]
fn k4_dl_ml(x: &[u8]) -> ([f32; 8], [f32; 8]) {
    let (d, dmin) = (f16_at(x, 0), f16_at(x, 2));
    let (sc, m) = unpack_k4_scale_min(x[4..16].try_into().expect("12 bytes"));
    (sc.map(|s| d * f32::from(s)), m.map(|v| dmin * f32::from(v)))
}

pub(super) fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(144).zip(dst.chunks_exact_mut(QK_K)) {
        let (dl, ml) = k4_dl_ml(x);
        let qs = &x[16..144];
        for (e, out) in y.iter_mut().enumerate() {
            let (chunk, high, l) = (e / 64, (e % 64) / 32, e % 32);
            let q = (qs[chunk * 32 + l] >> (4 * high)) & 0x0F;
            *out = dl[e / 32] * f32::from(q) - ml[e / 32];
        }
    }
}

pub(super) fn quantize_q5_k(src: &[f32], dst: &mut [u8]) {
    let search = Qkx2Search {
        nmax: 31,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: false,
    };
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(176)) {
        let mut levels = [0u8; QK_K];
        quantize_k4_scales(&search, x, y, &mut levels);
        let mut qh = [0u8; 32];
        for c in 0..QK_K / 64 {
            for l in 0..32 {
                let (l1, l2) = (levels[c * 64 + l], levels[c * 64 + l + 32]);
                qh[l] |= ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1));
                y[48 + c * 32 + l] = (l1 & 0x0F) | ((l2 & 0x0F) << 4);
            }
        }
        y[16..48].copy_from_slice(&qh);
    }
}

pub(super) fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(176).zip(dst.chunks_exact_mut(QK_K)) {
        let (dl, ml) = k4_dl_ml(x);
        let (qh, qs) = (&x[16..48], &x[48..176]);
        for (e, out) in y.iter_mut().enumerate() {
            let (chunk, high, l) = (e / 64, (e % 64) / 32, e % 32);
            let low = (qs[chunk * 32 + l] >> (4 * high)) & 0x0F;
            let bit5 = (qh[l] >> (2 * chunk + high)) & 1;
            *out = dl[e / 32] * f32::from(low | (bit5 << 4)) - ml[e / 32];
        }
    }
}

// ---------------------------------------------------------------- Q6_K

pub(super) fn quantize_q6_k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(210)) {
        let mut levels = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let (mut max_abs_scale, mut max_scale) = (0.0f32, 0.0f32);
        for ib in 0..16 {
            let s = make_qx_quants(
                32,
                &x[16 * ib..16 * ib + 16],
                &mut levels[16 * ib..16 * ib + 16],
            );
            scales[ib] = s;
            if s.abs() > max_abs_scale {
                max_abs_scale = s.abs();
                max_scale = s;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            y.fill(0);
            continue;
        }
        let iscale = -128.0 / max_scale;
        put_f16(y, 208, 1.0 / iscale);
        let sc: [i8; 16] =
            std::array::from_fn(|ib| nearest_int(iscale * scales[ib]).min(127) as i8);
        for (ib, s) in sc.iter().enumerate() {
            y[192 + ib] = *s as u8;
        }
        let dd = f16_at(y, 208);
        for (j, &s) in sc.iter().enumerate() {
            let d = dd * f32::from(s);
            if d == 0.0 {
                continue;
            }
            for i in 16 * j..16 * j + 16 {
                levels[i] = (nearest_int(x[i] / d).clamp(-32, 31) + 32) as i8;
            }
        }
        let l = levels.map(|v| v as u8);
        for c in 0..QK_K / 128 {
            let (ql, qh) = (c * 64, 128 + c * 32);
            for i in 0..32 {
                let e = c * 128 + i;
                y[ql + i] = (l[e] & 0x0F) | ((l[e + 64] & 0x0F) << 4);
                y[ql + i + 32] = (l[e + 32] & 0x0F) | ((l[e + 96] & 0x0F) << 4);
                y[qh + i] = (l[e] >> 4)
                    | ((l[e + 32] >> 4) << 2)
                    | ((l[e + 64] >> 4) << 4)
                    | ((l[e + 96] >> 4) << 6);
            }
        }
    }
}

pub(super) fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(210).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(x, 208);
        let (ql, qh) = (&x[0..128], &x[128..192]);
        for (e, out) in y.iter_mut().enumerate() {
            let (chunk, quarter, l) = (e / 128, (e % 128) / 32, e % 32);
            let low_byte = ql[chunk * 64 + (quarter % 2) * 32 + l];
            let low = (low_byte >> (4 * (quarter / 2))) & 0x0F;
            let high = (qh[chunk * 32 + l] >> (2 * quarter)) & 3;
            let q = i32::from(low | (high << 4)) - 32;
            let sc = f32::from(x[192 + e / 16] as i8);
            *out = d * sc * q as f32;
        }
    }
}

// ---------------------------------------------------------------- Q8_K

/// Q8_K as ggml's `quantize_row_q8_K_ref`: `iscale = -127 / max` where `max` is the first
/// element of largest magnitude (with its sign), quants clamped to 127, `d = 1 / iscale`,
/// and `bsums` the sums of each 16 quants. An all-zero block gets `d = 0` and zero quants
/// (and, unlike ggml, which leaves them untouched, zero sums).
pub(super) fn quantize_q8_k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(292)) {
        let (amax, max) = signed_abs_max(x);
        if amax == 0.0 {
            y.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        let mut q = [0i8; QK_K];
        for (qi, xi) in q.iter_mut().zip(x) {
            *qi = nearest_int(iscale * xi).min(127) as i8;
        }
        for (i, qi) in q.iter().enumerate() {
            y[4 + i] = *qi as u8;
        }
        for j in 0..QK_K / 16 {
            let sum: i16 = q[16 * j..16 * j + 16].iter().map(|&v| i16::from(v)).sum();
            y[260 + 2 * j..262 + 2 * j].copy_from_slice(&sum.to_le_bytes());
        }
        put_f32(y, 0, 1.0 / iscale);
    }
}

pub(super) fn dequantize_q8_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(292).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f32_at(x, 0);
        for (out, q) in y.iter_mut().zip(&x[4..260]) {
            *out = d * f32::from(*q as i8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_packings_invert() {
        let scales: [u8; 8] = std::array::from_fn(|i| (i as u8 * 9 + 5) % 64);
        let mins: [u8; 8] = std::array::from_fn(|i| (i as u8 * 23 + 60) % 64);
        assert_eq!(
            unpack_k4_scale_min(&pack_k4_scale_min(&scales, &mins)),
            (scales, mins)
        );
        let s16: [u8; 16] = std::array::from_fn(|i| (i as u8 * 13 + 7) % 64);
        assert_eq!(unpack_q3k_scales(&pack_q3k_scales(&s16)), s16);
    }

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (v, want) in [
            (0.5f32, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (3.49, 3),
        ] {
            assert_eq!(nearest_int(v), want, "{v}");
        }
    }
}
