//! Row-lane matmul for the 32-element types Q4_0, Q4_1 and Q8_0: eight weight rows at a
//! time, one f32 lane per row, so that a block's float work (scales, minimum term) is
//! done for eight rows with one vector instruction and a prefill can run a register-tiled
//! GEMM over weight rows packed on the fly.
//!
//! # The arithmetic
//! For weight row `w` and activation row `a` (Q8_0 or Q8_1), block by block in order:
//!
//! ```text
//! isum = Σ_j q_w[j] · q_a[j]            (exact i32; Q4 quants as stored, 0..=15)
//! acc  = acc + (isum as f32) · (d_w · d_a)
//! acc  = acc + m_w · s_a                (Q4_0: m_w = −8·d_w; Q4_1: its m; Q8_0: none)
//! ```
//!
//! with `s_a` the activation block's `d_a · Σ q_a` (Q8_1 stores it; for Q8_0 it is
//! computed in f32 when the batch is quantized). Every step is one rounded f32 operation,
//! no fused multiply-add, so the scalar twin here, the AVX2 matrix-vector kernel and the
//! packed GEMM give the same bits, whatever the batch size: a row's result never depends
//! on the batch it is computed in.
//!
//! It is not ggml's order (ggml sums eight blocks' products in lanes before one horizontal
//! sum, and folds Q4_0's −8 into the integers): results differ from [`crate::vec_dot`] by
//! f32 reassociation only, bounded in the tests.
//!
//! Activation quants are assumed to lie in −127..=127, as ggml's and Fennec's Q8 quantizers
//! make them (Q8_0 weights use the `|w| · sign(a, w)` trick of the `dot` kernels).
//!
//! # Packed panels (GEMM)
//! For batches of several activation rows, each group of eight weight rows is unpacked
//! once into a panel: per block, 32 groups of four bytes ordered `[group of 4 elements][row]`
//! (so one `vpbroadcastd` of four activation bytes meets all eight rows), then the eight
//! rows' `d_w` and `m_w` as f32. The micro-kernel keeps four activation rows × eight weight
//! rows of accumulators in registers.

use half::f16;

use crate::matmul::OutputTile;
use crate::{CpuLevel, GgmlType};

#[cfg(target_arch = "x86_64")]
mod x86;

/// Whether `ty` has row-lane kernels.
pub(crate) fn supports(ty: GgmlType) -> bool {
    Format::of(ty).is_some()
}

/// Whether `level` has its own (SIMD) row-lane kernels; the scalar twin serves every level.
pub(crate) fn has_simd(level: CpuLevel) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        matches!(level, CpuLevel::Avx2 | CpuLevel::Avx512) && level.is_supported()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        false
    }
}

/// How a weight type's quants are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quants {
    /// 16 bytes of nibbles: element `j` is byte `j`'s low half, element `j + 16` its high.
    Nibbles,
    /// 32 signed bytes.
    Bytes,
}

/// How a weight block's minimum term `m_w` is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Min {
    /// No minimum term.
    None,
    /// `−8 · d_w` (Q4_0's implicit offset).
    Minus8,
    /// The f16 at byte 2 of the block.
    Field,
}

/// The block layout of a row-lane weight type and of its activation type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Format {
    /// Weight block bytes.
    w_bytes: usize,
    /// Offset of the quants in a weight block.
    w_qs: usize,
    quants: Quants,
    min: Min,
    /// Activation block bytes (Q8_0: 34, Q8_1: 36).
    a_bytes: usize,
    /// Offset of the quants in an activation block.
    a_qs: usize,
}

impl Format {
    /// The layout of weight type `ty`, if it has row-lane kernels.
    pub(crate) fn of(ty: GgmlType) -> Option<Format> {
        let (q8_0, q8_1) = ((34, 2), (36, 4));
        let (w_bytes, w_qs, quants, min, (a_bytes, a_qs)) = match ty {
            GgmlType::Q4_0 => (18, 2, Quants::Nibbles, Min::Minus8, q8_0),
            GgmlType::Q4_1 => (20, 4, Quants::Nibbles, Min::Field, q8_1),
            GgmlType::Q8_0 => (34, 2, Quants::Bytes, Min::None, q8_0),
            _ => return None,
        };
        Some(Format {
            w_bytes,
            w_qs,
            quants,
            min,
            a_bytes,
            a_qs,
        })
    }

    /// Quant `j` (0..32) of the weight block `b`, as the integer the kernels multiply.
    fn weight_quant(&self, b: &[u8], j: usize) -> i32 {
        match self.quants {
            Quants::Nibbles => {
                let byte = b[self.w_qs + j % 16];
                i32::from(if j < 16 { byte & 0x0F } else { byte >> 4 })
            }
            Quants::Bytes => i32::from(b[self.w_qs + j] as i8),
        }
    }

    /// The weight block's `(d_w, m_w)` as f32.
    fn weight_scales(&self, b: &[u8]) -> (f32, f32) {
        let d = f16_at(b, 0);
        let m = match self.min {
            Min::None => 0.0,
            Min::Minus8 => -8.0 * d,
            Min::Field => f16_at(b, 2),
        };
        (d, m)
    }
}

/// The f16 at `b[off..off + 2]`, widened.
fn f16_at(b: &[u8], off: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// Each activation block's `(d_a, s_a)` for the row-lane kernels, appended to `out`
/// (`d_a` then `s_a`, block after block) for `a_ty` Q8_0 (`s_a = d_a · Σ q_a`, computed)
/// or Q8_1 (`s_a` as stored); nothing for other types.
pub(crate) fn activation_scales(a_ty: GgmlType, row: &[u8], out: &mut Vec<f32>) {
    match a_ty {
        GgmlType::Q8_0 => out.extend(row.chunks_exact(34).flat_map(|b| {
            let d = f16_at(b, 0);
            let sum: i32 = b[2..34].iter().map(|&q| i32::from(q as i8)).sum();
            [d, d * sum as f32]
        })),
        GgmlType::Q8_1 => out.extend(
            row.chunks_exact(36)
                .flat_map(|b| [f16_at(b, 0), f16_at(b, 2)]),
        ),
        _ => {}
    }
}

/// The rows of a row-lane product: `n_rows` weight rows of `nb` blocks from `w` (row `r`
/// at `r * w_row` bytes) against the activation rows `a` (`a_row` bytes apart) with their
/// [`activation_scales`] `ds` (`2 * nb` per row), into an output tile of `n_rows` rows.
pub(crate) struct Problem<'a> {
    pub(crate) f: Format,
    pub(crate) nb: usize,
    pub(crate) w: &'a [u8],
    pub(crate) w_row: usize,
    pub(crate) n_rows: usize,
    pub(crate) a: &'a [u8],
    pub(crate) a_row: usize,
    pub(crate) ds: &'a [f32],
    pub(crate) n_vecs: usize,
}

impl Problem<'_> {
    /// Checks that every slice holds what the shape says (the kernels rely on it).
    fn check(&self, out: &OutputTile<'_>) {
        let f = &self.f;
        assert!(self.w_row >= self.nb * f.w_bytes);
        assert!(self.a_row >= self.nb * f.a_bytes);
        assert!(
            self.n_rows == 0
                || self.w.len() >= (self.n_rows - 1) * self.w_row + self.nb * f.w_bytes
        );
        assert!(self.a.len() >= self.n_vecs * self.a_row);
        assert!(self.ds.len() >= self.n_vecs * 2 * self.nb);
        assert!(out.n_vecs() == self.n_vecs && out.rows().len() == self.n_rows);
    }
}

/// Runs `p` at `level` (its SIMD kernels when [`has_simd`], else the scalar twin),
/// writing element `r` of every vector `v` of `out` for every row `r` and vector `v` of `p`.
pub(crate) fn run(level: CpuLevel, p: &Problem<'_>, out: &mut OutputTile<'_>) {
    p.check(out);
    #[cfg(target_arch = "x86_64")]
    if has_simd(level) {
        x86::run(level, p, out);
        return;
    }
    let _ = level;
    run_scalar(p, out);
}

/// The scalar twin: the arithmetic of the module docs, one row and vector at a time.
fn run_scalar(p: &Problem<'_>, out: &mut OutputTile<'_>) {
    let f = &p.f;
    for v in 0..p.n_vecs {
        let a = &p.a[v * p.a_row..];
        let ds = &p.ds[v * 2 * p.nb..(v + 1) * 2 * p.nb];
        for r in 0..p.n_rows {
            let w = &p.w[r * p.w_row..];
            let mut acc = 0.0f32;
            for k in 0..p.nb {
                let wb = &w[k * f.w_bytes..(k + 1) * f.w_bytes];
                let aq = &a[k * f.a_bytes + f.a_qs..][..32];
                let isum: i32 = (0..32)
                    .map(|j| f.weight_quant(wb, j) * i32::from(aq[j] as i8))
                    .sum();
                let (dw, mw) = f.weight_scales(wb);
                let (da, sa) = (ds[2 * k], ds[2 * k + 1]);
                acc += isum as f32 * (dw * da);
                if f.min != Min::None {
                    acc += mw * sa;
                }
            }
            out.vector_mut(v)[r] = acc;
        }
    }
}
