//! The row-block matmul: tiles, strides, threads, and shape errors.

use fennec_quant::matmul::{
    arithmetic, matmul, matmul_at, ActivationBatch, OutputTile, OutputTiles, WeightLayout,
};
use fennec_quant::{cpu, quantize_row, row_bytes, vec_dot, CpuLevel, GgmlType, QuantError};

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 24) as f32
                - 0.5
        })
        .collect()
}

fn weights(ty: GgmlType, n_rows: usize, n_cols: usize) -> Vec<u8> {
    let mut w = vec![0u8; n_rows * row_bytes(ty, n_cols).unwrap()];
    quantize_row(ty, &data(n_rows * n_cols, 7), &mut w).unwrap();
    w
}

/// One element computed alone: `vec_dot`, or for the row-lane types the scalar twin of
/// the row-lane arithmetic on a one-row, one-vector problem.
fn one(ty: GgmlType, n_cols: usize, w: &[u8], acts: &ActivationBatch, v: usize) -> f32 {
    if arithmetic(cpu::level(), ty) == "row-lane" {
        let a = ActivationBatch::from_quantized(acts.ty(), n_cols, acts.row(v).to_vec()).unwrap();
        let mut out = [f32::NAN];
        let mut tile = OutputTile::whole(&mut out, 1, 1, 1).unwrap();
        matmul_at(
            CpuLevel::Scalar,
            ty,
            WeightLayout::Rows,
            n_cols,
            w,
            &a,
            &mut tile,
        )
        .unwrap();
        out[0]
    } else {
        vec_dot(ty, n_cols, w, acts.row(v)).unwrap()
    }
}

/// The expected output `[vector][row]`, each element computed alone ([`one`]).
fn expected(
    ty: GgmlType,
    n_rows: usize,
    n_cols: usize,
    w: &[u8],
    acts: &ActivationBatch,
) -> Vec<f32> {
    let wb = row_bytes(ty, n_cols).unwrap();
    let mut out = vec![0.0; acts.n_vecs() * n_rows];
    for v in 0..acts.n_vecs() {
        for r in 0..n_rows {
            out[v * n_rows + r] = one(ty, n_cols, &w[r * wb..(r + 1) * wb], acts, v);
        }
    }
    out
}

#[test]
fn split_tiles_on_threads_match_each_element_alone() {
    let (n_rows, n_cols, n_vecs) = (37, 512, 3);
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q4K,
        GgmlType::Q6K,
        GgmlType::F16,
    ] {
        let w = weights(ty, n_rows, n_cols);
        let acts = ActivationBatch::quantize(ty, n_cols, &data(n_vecs * n_cols, 3)).unwrap();
        let want = expected(ty, n_rows, n_cols, &w, &acts);
        let mut out = vec![f32::NAN; n_vecs * n_rows];
        let tiles = OutputTile::split(&mut out, n_rows, n_rows, n_vecs, &[5, 5, 20, 33]).unwrap();
        assert_eq!(tiles.len(), 5);
        std::thread::scope(|s| {
            for mut tile in tiles {
                let (w, acts) = (&w, &acts);
                s.spawn(move || {
                    matmul(ty, WeightLayout::Rows, n_cols, w, acts, &mut tile).unwrap()
                });
            }
        });
        assert_eq!(out, want, "{ty}");
    }
}

#[test]
fn claimed_tiles_on_threads_match_each_element_alone() {
    let (n_rows, n_cols, stride) = (150, 256, 160);
    for (ty, n_vecs) in [
        (GgmlType::Q4_1, 1),
        (GgmlType::Q8_0, 13),
        (GgmlType::Q4K, 8),
    ] {
        let w = weights(ty, n_rows, n_cols);
        let mut acts = ActivationBatch::default();
        acts.quantize_into(ty, n_cols, &data(n_vecs * n_cols, 4))
            .unwrap();
        let want = expected(ty, n_rows, n_cols, &w, &acts);
        let mut out = vec![f32::NAN; (n_vecs - 1) * stride + n_rows];
        let tiles = OutputTiles::new(&mut out, n_rows, stride, n_vecs, 5, 16).unwrap();
        assert_eq!(tiles.n_tiles(), 5);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while let Some(mut tile) = tiles.claim() {
                        assert_eq!(tile.rows().start % 16, 0);
                        matmul(ty, WeightLayout::Rows, n_cols, &w, &acts, &mut tile).unwrap();
                    }
                });
            }
        });
        assert!(tiles.claim().is_none());
        for v in 0..n_vecs {
            let got = &out[v * stride..v * stride + n_rows];
            assert_eq!(got, &want[v * n_rows..(v + 1) * n_rows], "{ty} vector {v}");
        }
    }
}

#[test]
fn a_refilled_batch_equals_a_new_one() {
    let mut batch = ActivationBatch::default();
    for (ty, n_cols, n_vecs) in [
        (GgmlType::Q4_0, 64, 9),
        (GgmlType::Q4_1, 128, 2),
        (GgmlType::Q6K, 256, 5),
        (GgmlType::Q4_0, 64, 9),
    ] {
        let x = data(n_vecs * n_cols, n_vecs as u32);
        batch.quantize_into(ty, n_cols, &x).unwrap();
        assert_eq!(batch, ActivationBatch::quantize(ty, n_cols, &x).unwrap());
        let mut parallel = ActivationBatch::default();
        parallel
            .quantize_with(ty, n_cols, n_vecs, |bytes| {
                let row = bytes.len() / n_vecs;
                for (src, dst) in x.chunks(n_cols).zip(bytes.chunks_mut(row)) {
                    fennec_quant::quantize_activations(batch.ty(), src, dst)?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(parallel, batch);
    }
}

#[test]
fn stride_leaves_padding_untouched() {
    let (n_rows, n_cols, n_vecs, stride) = (4, 256, 2, 6);
    let ty = GgmlType::Q8_0;
    let w = weights(ty, n_rows, n_cols);
    let acts = ActivationBatch::quantize(ty, n_cols, &data(n_vecs * n_cols, 9)).unwrap();
    let want = expected(ty, n_rows, n_cols, &w, &acts);
    let mut out = vec![-1.0f32; (n_vecs - 1) * stride + n_rows];
    let mut tile = OutputTile::whole(&mut out, n_rows, stride, n_vecs).unwrap();
    assert_eq!(tile.rows(), 0..n_rows);
    matmul(ty, WeightLayout::Rows, n_cols, &w, &acts, &mut tile).unwrap();
    assert_eq!(tile.vector(1), &want[n_rows..]);
    assert_eq!(&out[..n_rows], &want[..n_rows]);
    assert_eq!(&out[n_rows..stride], &[-1.0, -1.0]);
    assert_eq!(&out[stride..], &want[n_rows..]);
}

#[test]
fn activation_batch_pairs_and_reuses() {
    let mut acts = ActivationBatch::quantize(GgmlType::Q5_1, 64, &data(128, 1)).unwrap();
    assert_eq!(
        (acts.ty(), acts.n_cols(), acts.n_vecs()),
        (GgmlType::Q8_1, 64, 2)
    );
    assert_eq!(acts.as_bytes().len(), 2 * 2 * 36);
    acts.requantize(&data(192, 2)).unwrap();
    assert_eq!(acts.n_vecs(), 3);
    assert!(acts.requantize(&data(100, 2)).is_err());
    assert!(ActivationBatch::quantize(GgmlType::Q4K, 100, &data(100, 1)).is_err());
    assert!(matches!(
        ActivationBatch::quantize(GgmlType::Iq2Xxs, 256, &data(256, 1)),
        Err(QuantError::Unsupported { .. })
    ));
    let raw = acts.as_bytes().to_vec();
    let again = ActivationBatch::from_quantized(GgmlType::Q8_1, 64, raw).unwrap();
    assert_eq!(again, acts);
    assert!(ActivationBatch::from_quantized(GgmlType::Q8_1, 64, vec![0; 35]).is_err());
}

#[test]
fn bad_shapes_are_errors() {
    let (n_rows, n_cols) = (4, 64);
    let ty = GgmlType::Q4_0;
    let w = weights(ty, n_rows, n_cols);
    let acts = ActivationBatch::quantize(ty, n_cols, &data(2 * n_cols, 1)).unwrap();
    let mut out = vec![0.0f32; 2 * n_rows];
    // Cuts out of order or past the end; stride too small; output too short.
    assert!(OutputTile::split(&mut out, n_rows, n_rows, 2, &[3, 2]).is_err());
    assert!(OutputTile::split(&mut out, n_rows, n_rows, 2, &[5]).is_err());
    assert!(OutputTile::split(&mut out, n_rows, n_rows - 1, 2, &[]).is_err());
    assert!(OutputTile::split(&mut out[..7], n_rows, n_rows, 2, &[]).is_err());
    // Too few weight rows, wrong activation type, wrong vector count.
    let mut tile = OutputTile::whole(&mut out, n_rows, n_rows, 2).unwrap();
    assert!(matmul(
        ty,
        WeightLayout::Rows,
        n_cols,
        &w[..w.len() - 36],
        &acts,
        &mut tile
    )
    .is_err());
    assert!(matmul(
        GgmlType::Q4_1,
        WeightLayout::Rows,
        n_cols,
        &w,
        &acts,
        &mut tile
    )
    .is_err());
    // Q4_K has no panel layout.
    assert!(matmul(
        GgmlType::Q4K,
        WeightLayout::Panels,
        n_cols,
        &w,
        &acts,
        &mut tile
    )
    .is_err());
    let one = ActivationBatch::quantize(ty, n_cols, &data(n_cols, 1)).unwrap();
    assert!(matmul(ty, WeightLayout::Rows, n_cols, &w, &one, &mut tile).is_err());
    assert!(matmul(ty, WeightLayout::Rows, n_cols, &w, &acts, &mut tile).is_ok());
}
