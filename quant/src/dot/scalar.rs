//! Scalar reference kernels: the definition every SIMD kernel is tested against.
//!
//! Each kernel follows ggml's generic `ggml_vec_dot_*` arithmetic: exact integer sums
//! inside a block, then a float multiply-accumulate per block (for the K-quants, eight
//! float lanes folded at the end), so results agree closely with llama.cpp's CPU backend.

use super::VecDotFn;
use crate::blocks::{QK, QK_K};
use crate::bytes::{bf16_at, f16_at, f32_at, i16_at, u16_at, u32_at};
use crate::formats::{unpack_k4_scale_min, unpack_q3k_scales, IQ4_VALUES};
use crate::GgmlType;

/// The scalar kernel for weight type `w`.
pub(crate) fn kernel(w: GgmlType) -> Option<VecDotFn> {
    use GgmlType::*;
    Some(match w {
        F32 => dot_f32,
        F16 => dot_f16,
        BF16 => dot_bf16,
        Q4_0 => dot_q4_0_q8_0,
        Q4_1 => dot_q4_1_q8_1,
        Q5_0 => dot_q5_0_q8_0,
        Q5_1 => dot_q5_1_q8_1,
        Q8_0 => dot_q8_0_q8_0,
        Iq4Nl => dot_iq4_nl_q8_0,
        Q2K => dot_q2_k_q8_k,
        Q3K => dot_q3_k_q8_k,
        Q4K => dot_q4_k_q8_k,
        Q5K => dot_q5_k_q8_k,
        Q6K => dot_q6_k_q8_k,
        Iq4Xs => dot_iq4_xs_q8_k,
        _ => return None,
    })
}

/// Asserts the kernel contract for `n` elements of `w_ty` times `a_ty` and returns the
/// block-exact prefixes of both slices.
#[inline]
fn checked<'w, 'a>(
    n: usize,
    w: &'w [u8],
    a: &'a [u8],
    w_ty: GgmlType,
    a_ty: GgmlType,
) -> (&'w [u8], &'a [u8]) {
    let bl = w_ty.block_len();
    assert_eq!(bl, a_ty.block_len());
    assert!(
        n.is_multiple_of(bl),
        "{n} elements is not a multiple of the {w_ty} block"
    );
    let blocks = n / bl;
    let wb = blocks * w_ty.block_bytes();
    let ab = blocks * a_ty.block_bytes();
    assert!(w.len() >= wb, "{w_ty} weights: {} bytes < {wb}", w.len());
    assert!(
        a.len() >= ab,
        "{a_ty} activations: {} bytes < {ab}",
        a.len()
    );
    (&w[..wb], &a[..ab])
}

// ---------------------------------------------------------------- plain floats

fn dot_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::F32, GgmlType::F32);
    let mut sum = 0.0f64;
    for (x, y) in w.chunks_exact(4).zip(a.chunks_exact(4)) {
        sum += f64::from(f32_at(x, 0) * f32_at(y, 0));
    }
    sum as f32
}

fn dot_f16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::F16, GgmlType::F16);
    let mut sum = 0.0f64;
    for (x, y) in w.chunks_exact(2).zip(a.chunks_exact(2)) {
        sum += f64::from(f16_at(x, 0) * f16_at(y, 0));
    }
    sum as f32
}

fn dot_bf16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::BF16, GgmlType::BF16);
    let mut sum = 0.0f64;
    for (x, y) in w.chunks_exact(2).zip(a.chunks_exact(2)) {
        sum += f64::from(bf16_at(x, 0) * bf16_at(y, 0));
    }
    sum as f32
}

// ---------------------------------------------------------------- 32-element blocks

/// The 32 activation quants of a Q8_0/Q8_1 block starting at byte `off`.
#[inline(always)]
fn q8_32(b: &[u8], off: usize) -> &[u8; QK] {
    b[off..off + QK].try_into().expect("32 quants")
}

fn dot_q4_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q4_0, GgmlType::Q8_0);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(18).zip(a.chunks_exact(34)) {
        let qs = &x[2..18];
        let q8 = q8_32(y, 2);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            s0 += (i32::from(qs[j] & 0x0F) - 8) * i32::from(q8[j] as i8);
            s1 += (i32::from(qs[j] >> 4) - 8) * i32::from(q8[j + 16] as i8);
        }
        sumf += (s0 + s1) as f32 * f16_at(x, 0) * f16_at(y, 0);
    }
    sumf
}

fn dot_q4_1_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q4_1, GgmlType::Q8_1);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(20).zip(a.chunks_exact(36)) {
        let qs = &x[4..20];
        let q8 = q8_32(y, 4);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            s0 += i32::from(qs[j] & 0x0F) * i32::from(q8[j] as i8);
            s1 += i32::from(qs[j] >> 4) * i32::from(q8[j + 16] as i8);
        }
        sumf += (f16_at(x, 0) * f16_at(y, 0)) * (s0 + s1) as f32 + f16_at(x, 2) * f16_at(y, 2);
    }
    sumf
}

fn dot_q5_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q5_0, GgmlType::Q8_0);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(22).zip(a.chunks_exact(34)) {
        let qh = u32_at(x, 2);
        let qs = &x[6..22];
        let q8 = q8_32(y, 2);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            let h0 = ((qh >> j) & 1) as u8;
            let h1 = ((qh >> (j + 16)) & 1) as u8;
            let v0 = i32::from((qs[j] & 0x0F) | (h0 << 4)) - 16;
            let v1 = i32::from((qs[j] >> 4) | (h1 << 4)) - 16;
            s0 += v0 * i32::from(q8[j] as i8);
            s1 += v1 * i32::from(q8[j + 16] as i8);
        }
        sumf += (f16_at(x, 0) * f16_at(y, 0)) * (s0 + s1) as f32;
    }
    sumf
}

fn dot_q5_1_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q5_1, GgmlType::Q8_1);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(24).zip(a.chunks_exact(36)) {
        let qh = u32_at(x, 4);
        let qs = &x[8..24];
        let q8 = q8_32(y, 4);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            let h0 = ((qh >> j) & 1) as u8;
            let h1 = ((qh >> (j + 16)) & 1) as u8;
            let v0 = i32::from((qs[j] & 0x0F) | (h0 << 4));
            let v1 = i32::from((qs[j] >> 4) | (h1 << 4));
            s0 += v0 * i32::from(q8[j] as i8);
            s1 += v1 * i32::from(q8[j + 16] as i8);
        }
        sumf += (f16_at(x, 0) * f16_at(y, 0)) * (s0 + s1) as f32 + f16_at(x, 2) * f16_at(y, 2);
    }
    sumf
}

fn dot_q8_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q8_0, GgmlType::Q8_0);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(34).zip(a.chunks_exact(34)) {
        let qx = q8_32(x, 2);
        let qy = q8_32(y, 2);
        let mut sumi = 0i32;
        for j in 0..QK {
            sumi += i32::from(qx[j] as i8) * i32::from(qy[j] as i8);
        }
        sumf += sumi as f32 * (f16_at(x, 0) * f16_at(y, 0));
    }
    sumf
}

fn dot_iq4_nl_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Iq4Nl, GgmlType::Q8_0);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(18).zip(a.chunks_exact(34)) {
        let qs = &x[2..18];
        let q8 = q8_32(y, 2);
        let d = f16_at(x, 0) * f16_at(y, 0);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            s0 += i32::from(q8[j] as i8) * i32::from(IQ4_VALUES[usize::from(qs[j] & 0x0F)]);
            s1 += i32::from(q8[j + 16] as i8) * i32::from(IQ4_VALUES[usize::from(qs[j] >> 4)]);
        }
        sumf += d * (s0 + s1) as f32;
    }
    sumf
}

// ---------------------------------------------------------------- K-quants (· Q8_K)

/// Byte offset of the quants inside a Q8_K block (after the f32 scale).
const Q8K_QS: usize = 4;
/// Byte offset of the 16 block sums inside a Q8_K block.
const Q8K_BSUMS: usize = 4 + QK_K;

/// The 256 activation quants of a Q8_K block.
#[inline(always)]
fn q8k_quants(y: &[u8]) -> &[u8; QK_K] {
    y[Q8K_QS..Q8K_QS + QK_K].try_into().expect("256 quants")
}

/// Integer sums of `scale(e) * q[e] * q8[e]` over the elements `e ≡ lane (mod 8)`: ggml's
/// `aux32` lanes. `SUB` is the sub-block length the scales apply to.
#[inline(always)]
fn lane_sums<const SUB: usize>(q: &[i8; QK_K], q8: &[u8; QK_K], scales: &[i32]) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    for (sub, scale) in scales.iter().enumerate() {
        for e in sub * SUB..(sub + 1) * SUB {
            lanes[e % 8] += scale * i32::from(q[e]) * i32::from(q8[e] as i8);
        }
    }
    lanes
}

/// Adds `d * lane` into each float lane.
#[inline(always)]
fn accumulate_lanes(sums: &mut [f32; 8], d: f32, lanes: &[i32; 8]) {
    for (s, l) in sums.iter_mut().zip(lanes) {
        *s += d * *l as f32;
    }
}

fn dot_q2_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q2K, GgmlType::Q8K);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(84).zip(a.chunks_exact(292)) {
        let sc = &x[0..16];
        let q2 = &x[16..80];
        let q8 = q8k_quants(y);
        let mut summs = 0i32;
        for (j, s) in sc.iter().enumerate() {
            summs += i32::from(i16_at(y, Q8K_BSUMS + 2 * j)) * i32::from(s >> 4);
        }
        let dall = f32_at(y, 0) * f16_at(x, 80);
        let dmin = f32_at(y, 0) * f16_at(x, 82);
        let mut isum = 0i32;
        for e0 in (0..QK_K).step_by(16) {
            let chunk = e0 / 128;
            let shift = 2 * ((e0 % 128) / 32);
            let mut isuml = 0i32;
            for (e, &a) in q8.iter().enumerate().skip(e0).take(16) {
                let q = i32::from((q2[chunk * 32 + e % 32] >> shift) & 3);
                isuml += i32::from(a as i8) * q;
            }
            isum += i32::from(sc[e0 / 16] & 0x0F) * isuml;
        }
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

fn dot_q3_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q3K, GgmlType::Q8K);
    let mut sums = [0.0f32; 8];
    for (x, y) in w.chunks_exact(110).zip(a.chunks_exact(292)) {
        let hmask = &x[0..32];
        let qs = &x[32..96];
        let mut q = [0i8; QK_K];
        for (e, v) in q.iter_mut().enumerate() {
            let (chunk, group, l) = (e / 128, (e % 128) / 32, e % 32);
            let low = (qs[chunk * 32 + l] >> (2 * group)) & 3;
            let high_set = hmask[l] >> (chunk * 4 + group) & 1 != 0;
            *v = low as i8 - if high_set { 0 } else { 4 };
        }
        let scales = unpack_q3k_scales(x[96..108].try_into().expect("12 bytes"));
        let scales = scales.map(|s| i32::from(s) - 32);
        let lanes = lane_sums::<16>(&q, q8k_quants(y), &scales);
        accumulate_lanes(&mut sums, f16_at(x, 108) * f32_at(y, 0), &lanes);
    }
    sums.iter().fold(0.0f32, |acc, s| acc + s)
}

/// Shared by Q4_K and Q5_K: `q` holds the unsigned quants of one super-block.
#[inline(always)]
fn k4_block(x: &[u8], y: &[u8], q: &[i8; QK_K], sums: &mut [f32; 8]) -> f32 {
    let (scales, mins) = unpack_k4_scale_min(x[4..16].try_into().expect("12 bytes"));
    let mut sumi = 0i32;
    for j in 0..QK_K / 16 {
        sumi += i32::from(i16_at(y, Q8K_BSUMS + 2 * j)) * i32::from(mins[j / 2]);
    }
    let lanes = lane_sums::<32>(q, q8k_quants(y), &scales.map(i32::from));
    let d = f16_at(x, 0) * f32_at(y, 0);
    accumulate_lanes(sums, d, &lanes);
    let dmin = f16_at(x, 2) * f32_at(y, 0);
    dmin * sumi as f32
}

fn dot_q4_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q4K, GgmlType::Q8K);
    let mut sums = [0.0f32; 8];
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(144).zip(a.chunks_exact(292)) {
        let qs = &x[16..144];
        let mut q = [0i8; QK_K];
        for (e, v) in q.iter_mut().enumerate() {
            let (chunk, high, l) = (e / 64, (e % 64) / 32, e % 32);
            *v = ((qs[chunk * 32 + l] >> (4 * high)) & 0x0F) as i8;
        }
        sumf -= k4_block(x, y, &q, &mut sums);
    }
    sums.iter().fold(sumf, |acc, s| acc + s)
}

fn dot_q5_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q5K, GgmlType::Q8K);
    let mut sums = [0.0f32; 8];
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(176).zip(a.chunks_exact(292)) {
        let qh = &x[16..48];
        let qs = &x[48..176];
        let mut q = [0i8; QK_K];
        for (e, v) in q.iter_mut().enumerate() {
            let (chunk, high, l) = (e / 64, (e % 64) / 32, e % 32);
            let low = (qs[chunk * 32 + l] >> (4 * high)) & 0x0F;
            let bit5 = (qh[l] >> (2 * chunk + high)) & 1;
            *v = (low | (bit5 << 4)) as i8;
        }
        sumf -= k4_block(x, y, &q, &mut sums);
    }
    sums.iter().fold(sumf, |acc, s| acc + s)
}

fn dot_q6_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Q6K, GgmlType::Q8K);
    let mut sums = [0.0f32; 8];
    for (x, y) in w.chunks_exact(210).zip(a.chunks_exact(292)) {
        let ql = &x[0..128];
        let qh = &x[128..192];
        let mut q = [0i8; QK_K];
        for (e, v) in q.iter_mut().enumerate() {
            let (chunk, quarter, l) = (e / 128, (e % 128) / 32, e % 32);
            let low_byte = ql[chunk * 64 + (quarter % 2) * 32 + l];
            let low = (low_byte >> (4 * (quarter / 2))) & 0x0F;
            let high = (qh[chunk * 32 + l] >> (2 * quarter)) & 3;
            *v = (low | (high << 4)) as i8 - 32;
        }
        let scales: [i32; 16] = std::array::from_fn(|j| i32::from(x[192 + j] as i8));
        let lanes = lane_sums::<16>(&q, q8k_quants(y), &scales);
        accumulate_lanes(&mut sums, f16_at(x, 208) * f32_at(y, 0), &lanes);
    }
    sums.iter().fold(0.0f32, |acc, s| acc + s)
}

fn dot_iq4_xs_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = checked(n, w, a, GgmlType::Iq4Xs, GgmlType::Q8K);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(136).zip(a.chunks_exact(292)) {
        let d4d8 = f16_at(x, 0) * f32_at(y, 0);
        let scales_h = u16_at(x, 2);
        let scales_l = &x[4..8];
        let qs = &x[8..136];
        let q8 = q8k_quants(y);
        for ib in 0..QK_K / 32 {
            let low = (scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F;
            let high = ((scales_h >> (2 * ib)) & 3) as u8;
            let ls = i32::from(low | (high << 4)) - 32;
            let d = d4d8 * ls as f32;
            let qb = &qs[ib * 16..ib * 16 + 16];
            let yb = &q8[ib * 32..ib * 32 + 32];
            let (mut s0, mut s1) = (0i32, 0i32);
            for j in 0..16 {
                s0 += i32::from(yb[j] as i8) * i32::from(IQ4_VALUES[usize::from(qb[j] & 0x0F)]);
                s1 += i32::from(yb[j + 16] as i8) * i32::from(IQ4_VALUES[usize::from(qb[j] >> 4)]);
            }
            sumf += d * (s0 + s1) as f32;
        }
    }
    sumf
}
