//! Row-lane matmul for the 32-element types Q4_0, Q4_1 and Q8_0, and for Q4_K (its
//! super-block arithmetic is in [`k4`]): eight weight rows at a time, one f32 lane per row, so that a block's float work (scales, minimum term) is
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
//! # Panels
//! A panel holds eight weight rows interleaved block by block, in exactly the bytes the
//! eight rows take as rows, so a matrix can be rewritten into panels in place (at load,
//! see [`repack`]) and row ranges that start at a multiple of eight keep their offsets.
//! Per block of the eight rows:
//!
//! ```text
//! quants  Q4:   4 × 32 bytes; vector h, lane i = row i's quant bytes 4h..4h+4
//!               (low nibbles: elements 4h..4h+4, high nibbles: elements 16+4h..)
//!         Q8_0: 8 × 32 bytes; vector q, lane i = row i's quants 4q..4q+4
//! d_w     8 × f16, rows 0..8
//! m_w     8 × f16 (Q4_1 only)
//! ```
//!
//! so one broadcast of four activation bytes meets all eight rows, and a block's scales
//! load as one vector. A matrix whose row count is not a multiple of eight keeps its last
//! rows as rows. Batches of weights stored as rows are packed on the fly, a group of eight
//! rows at a time, into a per-thread panel; the GEMM micro-kernel keeps four activation
//! rows × eight weight rows of accumulators in registers (Q4_K on AVX-512: eight × sixteen,
//! two panels side by side). Decode runs that kernel with one activation row on panels,
//! and a matrix-vector kernel over weights stored as rows.

use half::f16;

use crate::matmul::OutputTile;
use crate::{CpuLevel, GgmlType};

mod k4;
#[cfg(target_arch = "x86_64")]
mod k4_avx512;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Whether `ty` has row-lane kernels.
pub(crate) fn supports(ty: GgmlType) -> bool {
    Format::of(ty).is_some()
}

/// Weight rows per panel (and per f32 vector of row lanes).
pub(crate) const PANEL_ROWS: usize = 8;

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
    /// Q4_K: super-blocks of 256 with sub-block scales and minimums ([`k4`]); the other
    /// fields describe its bytes, `min` is unused.
    super_blocks: bool,
}

impl Format {
    /// The layout of weight type `ty`, if it has row-lane kernels.
    pub(crate) fn of(ty: GgmlType) -> Option<Format> {
        let (q8_0, q8_1) = ((34, 2), (36, 4));
        let (w_bytes, w_qs, quants, min, (a_bytes, a_qs)) = match ty {
            GgmlType::Q4_0 => (18, 2, Quants::Nibbles, Min::Minus8, q8_0),
            GgmlType::Q4_1 => (20, 4, Quants::Nibbles, Min::Field, q8_1),
            GgmlType::Q8_0 => (34, 2, Quants::Bytes, Min::None, q8_0),
            GgmlType::Q4K => (
                k4::W_BYTES,
                16,
                Quants::Nibbles,
                Min::None,
                (k4::A_BYTES, k4::A_QS),
            ),
            _ => return None,
        };
        Some(Format {
            w_bytes,
            w_qs,
            quants,
            min,
            a_bytes,
            a_qs,
            super_blocks: ty == GgmlType::Q4K,
        })
    }

    /// Bytes of a block's quants.
    fn qs_bytes(&self) -> usize {
        match self.quants {
            Quants::Nibbles => 16,
            Quants::Bytes => 32,
        }
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
/// (`d_a` then `s_a`, block after block) for `a_ty` Q8_0 (`s_a = d_a · Σ q_a`, computed),
/// Q8_1 (`s_a` as stored) or Q8_K (`s_a` unused, 0); nothing for other types.
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
        // Q4_K's kernels read `d_a` and the block sums from the block itself.
        GgmlType::Q8K => out.extend(
            row.chunks_exact(k4::A_BYTES)
                .flat_map(|b| [f32::from_le_bytes([b[0], b[1], b[2], b[3]]), 0.0]),
        ),
        _ => {}
    }
}

/// Writes the panel of the eight `rows` (each `nb` blocks) to `dst` (`8 · nb` blocks' bytes).
fn pack_panel(f: &Format, nb: usize, rows: [&[u8]; PANEL_ROWS], dst: &mut [u8]) {
    if f.super_blocks {
        return k4::pack_panel(nb, rows, dst);
    }
    let (qs, b) = (f.qs_bytes(), f.w_bytes);
    for (k, out) in dst.chunks_exact_mut(PANEL_ROWS * b).take(nb).enumerate() {
        for (i, row) in rows.iter().enumerate() {
            let blk = &row[k * b..(k + 1) * b];
            for h in 0..qs / 4 {
                out[32 * h + 4 * i..][..4].copy_from_slice(&blk[f.w_qs + 4 * h..][..4]);
            }
            let scales = PANEL_ROWS * qs;
            out[scales + 2 * i..][..2].copy_from_slice(&blk[..2]);
            if f.min == Min::Field {
                out[scales + 16 + 2 * i..][..2].copy_from_slice(&blk[2..4]);
            }
        }
    }
}

/// Row `i` (0..8) of the panel `panel` (`nb` blocks), as the row's own block bytes, to `dst`.
fn unpack_panel_row(f: &Format, nb: usize, panel: &[u8], i: usize, dst: &mut [u8]) {
    if f.super_blocks {
        return k4::unpack_panel_row(nb, panel, i, dst);
    }
    let (qs, b) = (f.qs_bytes(), f.w_bytes);
    for (k, blk) in dst.chunks_exact_mut(b).take(nb).enumerate() {
        let src = &panel[k * PANEL_ROWS * b..(k + 1) * PANEL_ROWS * b];
        for h in 0..qs / 4 {
            blk[f.w_qs + 4 * h..][..4].copy_from_slice(&src[32 * h + 4 * i..][..4]);
        }
        let scales = PANEL_ROWS * qs;
        blk[..2].copy_from_slice(&src[scales + 2 * i..][..2]);
        if f.min == Min::Field {
            blk[2..4].copy_from_slice(&src[scales + 16 + 2 * i..][..2]);
        }
    }
}

/// Rewrites `rows` (whole rows of `nb` blocks each, `nb · w_bytes` bytes apart) into panels
/// in place, eight rows at a time; a last group of fewer than eight rows stays as rows.
pub(crate) fn repack(f: &Format, nb: usize, rows: &mut [u8]) {
    let w_row = nb * f.w_bytes;
    let mut group = vec![0u8; PANEL_ROWS * w_row];
    for dst in rows.chunks_exact_mut(PANEL_ROWS * w_row) {
        group.copy_from_slice(dst);
        let src = std::array::from_fn(|i| &group[i * w_row..(i + 1) * w_row]);
        pack_panel(f, nb, src, dst);
    }
}

/// Row `r` of a matrix repacked by [`repack`] (`nb` blocks a row, `n_rows` rows), as the
/// row's own block bytes, to `dst`.
pub(crate) fn repacked_row(
    f: &Format,
    nb: usize,
    matrix: &[u8],
    n_rows: usize,
    r: usize,
    dst: &mut [u8],
) {
    let w_row = nb * f.w_bytes;
    let group = r / PANEL_ROWS;
    if (group + 1) * PANEL_ROWS > n_rows {
        dst[..w_row].copy_from_slice(&matrix[r * w_row..(r + 1) * w_row]);
    } else {
        let panel = &matrix[group * PANEL_ROWS * w_row..(group + 1) * PANEL_ROWS * w_row];
        unpack_panel_row(f, nb, panel, r % PANEL_ROWS, dst);
    }
}

/// The rows of a row-lane product: `n_rows` weight rows of `nb` blocks from `w` (row `r`
/// at `r * w_row` bytes) against the activation rows `a` (`a_row` bytes apart) with their
/// [`activation_scales`] `ds` (`2 * nb` per row), into an output tile of `n_rows` rows.
/// With `panels`, each whole group of eight rows of `w` is a panel (the last group, if
/// shorter, is rows).
pub(crate) struct Problem<'a> {
    pub(crate) f: Format,
    pub(crate) nb: usize,
    pub(crate) panels: bool,
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
        assert!(!self.panels || self.w_row == self.nb * f.w_bytes);
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
    let mut row = vec![0u8; p.nb * f.w_bytes];
    for v in 0..p.n_vecs {
        let a = &p.a[v * p.a_row..];
        let ds = &p.ds[v * 2 * p.nb..(v + 1) * 2 * p.nb];
        for r in 0..p.n_rows {
            let w = if p.panels {
                repacked_row(f, p.nb, p.w, p.n_rows, r, &mut row);
                &row
            } else {
                &p.w[r * p.w_row..]
            };
            if f.super_blocks {
                out.vector_mut(v)[r] = k4::row_dot(p.nb, w, a);
                continue;
            }
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
