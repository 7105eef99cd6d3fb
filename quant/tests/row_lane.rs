//! The row-lane matmul of Q4_0, Q4_1, Q8_0 and Q4_K (`fennec_quant::matmul`, `lanes` module):
//! every x86 level's kernels (matrix-vector and packed GEMM) give the scalar twin's bits
//! for any batch size and row count, with weights stored as rows or repacked into panels,
//! and all of them stay within an f32-reassociation bound of ggml's order (`vec_dot`) and
//! of an exact f64 sum.

mod common;

use fennec_quant::matmul::{
    arithmetic, matmul_at, repack, repacked_row, ActivationBatch, OutputTile, OutputTiles,
    WeightLayout,
};
use fennec_quant::rng::Rng;
use fennec_quant::{quantize_row, row_bytes, vec_dot, CpuLevel, GgmlType};
use half::f16;

const TYPES: [GgmlType; 4] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
];

/// `n_cols` scaled to `ty`'s block: the shapes below are written in blocks of 32, and Q4_K's
/// blocks are 256 wide.
fn cols(ty: GgmlType, n_cols: usize) -> usize {
    n_cols / 32 * ty.block_len()
}

/// The x86 levels this CPU runs (checked against `FENNEC_EXPECT_LEVELS`).
fn simd_levels() -> Vec<CpuLevel> {
    let levels: Vec<CpuLevel> = [CpuLevel::Avx2, CpuLevel::Avx512]
        .into_iter()
        .filter(|l| l.is_supported())
        .collect();
    if cfg!(target_arch = "x86_64") {
        common::assert_expected_levels(&levels);
    }
    levels
}

/// `n` values in about [-scale, scale).
fn values(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

fn quantized(ty: GgmlType, n_rows: usize, n_cols: usize, x: &[f32]) -> Vec<u8> {
    let mut w = vec![0u8; n_rows * row_bytes(ty, n_cols).unwrap()];
    quantize_row(ty, x, &mut w).unwrap();
    w
}

/// `[vector][row]` output of `matmul_at(level)` over all rows and vectors of weights `w`
/// stored as rows.
fn run(level: CpuLevel, ty: GgmlType, n_cols: usize, w: &[u8], acts: &ActivationBatch) -> Vec<f32> {
    run_in(level, WeightLayout::Rows, ty, n_cols, w, acts)
}

/// [`run`] for weights laid out as `layout`.
fn run_in(
    level: CpuLevel,
    layout: WeightLayout,
    ty: GgmlType,
    n_cols: usize,
    w: &[u8],
    acts: &ActivationBatch,
) -> Vec<f32> {
    let n_rows = w.len() / row_bytes(ty, n_cols).unwrap();
    let mut out = vec![f32::NAN; n_rows * acts.n_vecs()];
    let mut tile = OutputTile::whole(&mut out, n_rows, n_rows, acts.n_vecs()).unwrap();
    matmul_at(level, ty, layout, n_cols, w, acts, &mut tile).unwrap();
    out
}

/// A copy of the rows `w` repacked into panels.
fn repacked(ty: GgmlType, n_cols: usize, w: &[u8]) -> Vec<u8> {
    let mut p = w.to_vec();
    repack(ty, n_cols, &mut p).unwrap();
    p
}

/// Checks that every level gives `twin`'s bits on the panels of `w` (the scalar level
/// included: its twin reads panels too).
fn assert_panels_match(
    levels: &[CpuLevel],
    ty: GgmlType,
    n_cols: usize,
    w: &[u8],
    acts: &ActivationBatch,
    twin: &[f32],
    what: &str,
) {
    let panels = repacked(ty, n_cols, w);
    for &level in levels.iter().chain([&CpuLevel::Scalar]) {
        let got = run_in(level, WeightLayout::Panels, ty, n_cols, &panels, acts);
        assert!(same_bits(&got, twin), "{what}: panels at {level}");
    }
}

/// Same bits, NaN matching NaN.
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

#[test]
fn row_lane_types_take_the_row_lane_path_at_the_scalar_and_x86_levels() {
    for ty in TYPES {
        assert_eq!(arithmetic(CpuLevel::Scalar, ty), "row-lane");
        for level in simd_levels() {
            assert_eq!(arithmetic(level, ty), "row-lane", "{ty} at {level}");
        }
    }
    assert_eq!(arithmetic(CpuLevel::Scalar, GgmlType::Q6K), "dot");
}

#[test]
fn every_level_and_batch_size_gives_the_scalar_twins_bits() {
    let mut rng = Rng::new(11);
    let levels = simd_levels();
    // Row counts around the lane group of eight; batch sizes on both sides of the packed
    // path (four vectors) and of its four-vector micro-tile; 1312 columns are 41 blocks,
    // more than one run of the matrix-vector kernels (Q4_K: 41 super-blocks).
    for ty in TYPES {
        for (n_rows, n_cols) in [(1, 32), (7, 64), (8, 96), (13, 576), (24, 160), (9, 1312)] {
            let n_cols = cols(ty, n_cols);
            let w = quantized(ty, n_rows, n_cols, &values(&mut rng, n_rows * n_cols, 1.0));
            for n_vecs in [1, 2, 3, 4, 5, 8, 9, 17] {
                let x = values(&mut rng, n_vecs * n_cols, 3.0);
                let acts = ActivationBatch::quantize(ty, n_cols, &x).unwrap();
                let twin = run(CpuLevel::Scalar, ty, n_cols, &w, &acts);
                for &level in &levels {
                    let got = run(level, ty, n_cols, &w, &acts);
                    assert!(
                        same_bits(&got, &twin),
                        "{ty} {n_rows}x{n_cols} x{n_vecs} at {level}"
                    );
                }
                let what = format!("{ty} {n_rows}x{n_cols} x{n_vecs}");
                assert_panels_match(&levels, ty, n_cols, &w, &acts, &twin, &what);
                // A vector's result does not depend on the batch it is in.
                for v in 0..n_vecs {
                    let alone =
                        ActivationBatch::from_quantized(acts.ty(), n_cols, acts.row(v).to_vec())
                            .unwrap();
                    for &level in levels.iter().chain([&CpuLevel::Scalar]) {
                        let got = run(level, ty, n_cols, &w, &alone);
                        assert!(
                            same_bits(&got, &twin[v * n_rows..(v + 1) * n_rows]),
                            "{ty} vector {v} alone at {level}"
                        );
                    }
                }
            }
        }
    }
}

/// Raw activation blocks (Q8_0 or Q8_1) with quants `q` and scale `d` in every block.
fn raw_acts(
    a_ty: GgmlType,
    n_cols: usize,
    n_vecs: usize,
    d: f32,
    q: impl Fn(usize) -> i8,
) -> ActivationBatch {
    let mut bytes = Vec::new();
    if a_ty == GgmlType::Q8K {
        for v in 0..n_vecs {
            for b in 0..n_cols / 256 {
                let qs: Vec<i8> = (0..256).map(|j| q(v * n_cols + b * 256 + j)).collect();
                bytes.extend(d.to_le_bytes());
                bytes.extend(qs.iter().map(|&x| x as u8));
                for g in qs.chunks(16) {
                    let s: i16 = g.iter().map(|&x| i16::from(x)).sum();
                    bytes.extend(s.to_le_bytes());
                }
            }
        }
        return ActivationBatch::from_quantized(a_ty, n_cols, bytes).unwrap();
    }
    for v in 0..n_vecs {
        for b in 0..n_cols / 32 {
            let qs: Vec<i8> = (0..32).map(|j| q(v * n_cols + b * 32 + j)).collect();
            bytes.extend(f16::from_f32(d).to_le_bytes());
            if a_ty == GgmlType::Q8_1 {
                let s: i32 = qs.iter().map(|&x| i32::from(x)).sum();
                bytes.extend(f16::from_f32(d * s as f32).to_le_bytes());
            }
            bytes.extend(qs.iter().map(|&x| x as u8));
        }
    }
    ActivationBatch::from_quantized(a_ty, n_cols, bytes).unwrap()
}

/// Raw weight rows of `ty` with every quant byte `byte(i)` and scale `d` (and min `m`).
fn raw_weights(
    ty: GgmlType,
    n_rows: usize,
    n_cols: usize,
    d: f32,
    m: f32,
    byte: impl Fn(usize) -> u8,
) -> Vec<u8> {
    let mut w = Vec::new();
    if ty == GgmlType::Q4K {
        // d, dmin, then 12 scale bytes and 128 quant bytes from the pattern.
        for b in 0..n_rows * n_cols / 256 {
            w.extend(f16::from_f32(d).to_le_bytes());
            w.extend(f16::from_f32(m).to_le_bytes());
            w.extend((0..140).map(|j| byte(b * 140 + j)));
        }
        return w;
    }
    let (head, q_bytes) = match ty {
        GgmlType::Q4_0 => (2, 16),
        GgmlType::Q4_1 => (4, 16),
        _ => (2, 32),
    };
    for b in 0..n_rows * n_cols / 32 {
        w.extend(f16::from_f32(d).to_le_bytes());
        if head == 4 {
            w.extend(f16::from_f32(m).to_le_bytes());
        }
        w.extend((0..q_bytes).map(|j| byte(b * q_bytes + j)));
    }
    w
}

#[test]
fn edge_case_blocks_give_the_scalar_twins_bits() {
    let levels = simd_levels();
    for ty in TYPES {
        // 27 rows: a pair of panels (the 512-bit Q4_K tile), one more panel and three rows.
        let (n_rows, n_cols) = (27, cols(ty, 128));
        let a_ty = fennec_quant::dot::activation_type(ty).unwrap();
        // (weight scale, weight min, weight byte pattern, activation scale, activation quants)
        // Weight bytes may be anything; activation quants lie in −127..=127, as the Q8_0
        // and Q8_1 quantizers make them (the sign trick of Q8_0 · Q8_0 assumes it, as in
        // `dot`); Q8_K's reach −128, tested below.
        type Case = (f32, f32, fn(usize) -> u8, f32, fn(usize) -> i8);
        let cases: [Case; 6] = [
            (0.0, 0.0, |_| 0, 0.0, |_| 0),
            (1.0, -1.0, |_| 0xFF, 1.0, |_| 127),
            (1.0, 2.0, |_| 0x88, 1.0, |_| -127),
            (
                65504.0,
                -65504.0,
                |i| (i * 37) as u8,
                65504.0,
                |i| if i % 2 == 0 { 127 } else { -127 },
            ),
            (
                6.0e-8,
                6.0e-8,
                |i| (i * 91 + 3) as u8,
                6.0e-8,
                |i| (((i * 13) % 255) as i32 - 127) as i8,
            ),
            (f32::NAN, 1.0, |i| i as u8, 0.5, |i| (i % 100) as i8),
        ];
        let k_cases: [Case; 1] = [(1.0, 1.0, |_| 0xFF, 1.0, |_| -128)];
        let extra: &[Case] = if ty == GgmlType::Q4K { &k_cases } else { &[] };
        for &(dw, mw, byte, da, q) in cases.iter().chain(extra) {
            let w = raw_weights(ty, n_rows, n_cols, dw, mw, byte);
            for n_vecs in [1, 6] {
                let acts = raw_acts(a_ty, n_cols, n_vecs, da, q);
                let twin = run(CpuLevel::Scalar, ty, n_cols, &w, &acts);
                for &level in &levels {
                    let got = run(level, ty, n_cols, &w, &acts);
                    assert!(
                        same_bits(&got, &twin),
                        "{ty} dw {dw} da {da} x{n_vecs} at {level}"
                    );
                }
                let what = format!("{ty} dw {dw} da {da} x{n_vecs}");
                assert_panels_match(&levels, ty, n_cols, &w, &acts, &twin, &what);
            }
        }
    }
}

/// `Σ_blocks |d_w · d_a · isum| + |m_w · s_a|` over the exact block terms of the dequantized
/// rows, in f64: the magnitude an f32 reassociation error is proportional to. Computed
/// from dequantized values: `Σ_j |w_j · a_j|` bounds each block's terms.
fn magnitude(ty: GgmlType, n_cols: usize, w: &[u8], a_ty: GgmlType, a: &[u8]) -> (f64, f64) {
    let (mut wf, mut af) = (vec![0f32; n_cols], vec![0f32; n_cols]);
    fennec_quant::dequantize_row(ty, w, &mut wf).unwrap();
    fennec_quant::dequantize_row(a_ty, a, &mut af).unwrap();
    let exact: f64 = wf
        .iter()
        .zip(&af)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let abs: f64 = wf
        .iter()
        .zip(&af)
        .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
        .sum();
    (exact, abs)
}

#[test]
fn results_are_within_reassociation_error_of_ggml_order_and_the_exact_sum() {
    let mut rng = Rng::new(5);
    for ty in TYPES {
        let a_ty = fennec_quant::dot::activation_type(ty).unwrap();
        for n_cols in [32, 576, 4096] {
            let n_cols = cols(ty, n_cols).min(4096);
            let n_rows = 9;
            let w = quantized(ty, n_rows, n_cols, &values(&mut rng, n_rows * n_cols, 0.1));
            let x = values(&mut rng, 5 * n_cols, 4.0);
            let acts = ActivationBatch::quantize(ty, n_cols, &x).unwrap();
            let got = run(CpuLevel::Scalar, ty, n_cols, &w, &acts);
            let wb = row_bytes(ty, n_cols).unwrap();
            let nb = (n_cols / 32) as f64;
            for v in 0..acts.n_vecs() {
                for r in 0..n_rows {
                    let wr = &w[r * wb..(r + 1) * wb];
                    let ggml = vec_dot(ty, n_cols, wr, acts.row(v)).unwrap();
                    let (exact, abs) = magnitude(ty, n_cols, wr, a_ty, acts.row(v));
                    // Each of the ~2·nb f32 roundings is at most 2^-24 of a partial sum no
                    // larger than `abs` (Q4_1's s_a and Q4_0's −8 add terms of at most the
                    // same size again); ggml's order has as many.
                    let bound = 8.0 * nb * abs * 2f64.powi(-24) + 1e-30;
                    let value = f64::from(got[v * n_rows + r]);
                    assert!(
                        (value - f64::from(ggml)).abs() <= bound,
                        "{ty} n {n_cols} r {r} v {v}: row-lane {value} ggml {ggml} bound {bound}"
                    );
                    // (Q8_1 stores s_a rounded to f16, which the exact sum does not see.)
                    if ty != GgmlType::Q4_1 {
                        assert!(
                            (value - exact).abs() <= bound,
                            "{ty} n {n_cols} r {r} v {v}: row-lane {value} exact {exact} bound {bound}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn repacking_keeps_every_row_and_changes_whole_groups_only() {
    let mut rng = Rng::new(21);
    for ty in TYPES {
        for (n_rows, n_cols) in [(1, 32), (7, 64), (8, 96), (13, 576), (24, 160)] {
            let n_cols = cols(ty, n_cols);
            let w = quantized(ty, n_rows, n_cols, &values(&mut rng, n_rows * n_cols, 1.0));
            let panels = repacked(ty, n_cols, &w);
            let wb = row_bytes(ty, n_cols).unwrap();
            let whole = n_rows / 8 * 8;
            // Rows past the last whole group of eight stay where they were.
            assert_eq!(panels[whole * wb..], w[whole * wb..], "{ty} {n_rows} tail");
            // A group of eight really is rewritten (its blocks interleave).
            if whole > 0 && n_cols > 32 {
                assert_ne!(panels[..8 * wb], w[..8 * wb], "{ty} {n_rows} group");
            }
            let mut row = vec![0u8; wb];
            for r in 0..n_rows {
                repacked_row(ty, n_cols, &panels, r, &mut row).unwrap();
                assert_eq!(
                    row,
                    w[r * wb..(r + 1) * wb],
                    "{ty} {n_rows}x{n_cols} row {r}"
                );
            }
        }
    }
}

#[test]
fn panels_split_across_tiles_at_panel_boundaries_only() {
    let (ty, n_rows, n_cols) = (GgmlType::Q4_1, 40, 64);
    let mut rng = Rng::new(8);
    let w = quantized(ty, n_rows, n_cols, &values(&mut rng, n_rows * n_cols, 1.0));
    let panels = repacked(ty, n_cols, &w);
    let acts = ActivationBatch::quantize(ty, n_cols, &values(&mut rng, 3 * n_cols, 2.0)).unwrap();
    let whole = run(CpuLevel::Scalar, ty, n_cols, &w, &acts);
    // Tiles cut at multiples of 8 (the last one at the matrix's end) give the same bits.
    let mut out = vec![f32::NAN; n_rows * 3];
    {
        let tiles = OutputTiles::new(&mut out, n_rows, n_rows, 3, 3, 8).unwrap();
        while let Some(mut tile) = tiles.claim() {
            let layout = WeightLayout::Panels;
            matmul_at(
                CpuLevel::Scalar,
                ty,
                layout,
                n_cols,
                &panels,
                &acts,
                &mut tile,
            )
            .unwrap();
        }
    }
    assert!(same_bits(&out, &whole));
    // A tile that starts inside a panel is refused, not computed wrongly.
    let mut out = vec![0f32; n_rows * 3];
    let tiles = OutputTiles::new(&mut out, n_rows, n_rows, 3, 3, 4).unwrap();
    let mut refused = 0;
    while let Some(mut tile) = tiles.claim() {
        let res = matmul_at(
            CpuLevel::Scalar,
            ty,
            WeightLayout::Panels,
            n_cols,
            &panels,
            &acts,
            &mut tile,
        );
        if !tile.rows().start.is_multiple_of(8) {
            let err = res.unwrap_err().to_string();
            assert!(err.contains("panel"), "{err}");
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "the 4-aligned cut should start a tile inside a panel"
    );
    // Types without panels are refused too.
    let mut q6 = vec![0u8; row_bytes(GgmlType::Q6K, 256).unwrap()];
    assert!(repack(GgmlType::Q6K, 256, &mut q6).is_err());
}
