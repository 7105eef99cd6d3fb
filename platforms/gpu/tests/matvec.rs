//! Every matrix-vector kernel against `fennec-quant`'s CPU dot products, on random and
//! edge-case blocks, with both reductions and with rows split across bindings.

mod common;

use fennec_gpu::{kernels, GpuError, GpuOptions, Reduction};
use fennec_quant::rng::Rng;
use fennec_quant::{
    dequantize_row, quantize_activations_as, quantize_row, vec_dot, CpuLevel, GgmlType,
};

/// Weights of one test matrix: how their values are drawn.
#[derive(Clone, Copy, Debug)]
enum Values {
    /// Uniform in (-1, 1).
    Random,
    /// Every row zero.
    Zero,
    /// Rows whose scales are huge (values up to 3e4) or tiny (f16 subnormal scales).
    ExtremeScales,
}

fn random_values(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

fn weights(ty: GgmlType, n_rows: usize, n_cols: usize, values: Values, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let row_bytes = n_cols / ty.block_len() * ty.block_bytes();
    let mut bytes = vec![0u8; n_rows * row_bytes];
    for (r, row) in bytes.chunks_exact_mut(row_bytes).enumerate() {
        let scale = match values {
            Values::Random => 1.0,
            Values::Zero => 0.0,
            Values::ExtremeScales if r % 2 == 0 => 3.0e4,
            Values::ExtremeScales => 2.0e-7,
        };
        quantize_row(ty, &random_values(&mut rng, n_cols, scale), row).unwrap();
    }
    bytes
}

/// The CPU's answer for `x` (vector-major): for quantized weights, `vec_dot` with the very
/// activation blocks the GPU made; for F16/F32, the exact f64 dot of the dequantized rows.
fn reference(
    gpu: &fennec_gpu::Gpu,
    ty: GgmlType,
    w: &[u8],
    n_rows: usize,
    n_cols: usize,
    x: &[f32],
) -> Vec<f32> {
    let row_bytes = w.len() / n_rows;
    let mut y = Vec::new();
    match kernels::activations(ty).unwrap() {
        kernels::Activations::Quantized(act) => {
            let blocks = gpu.quantize_activations(act, x, n_cols).unwrap();
            let vec_bytes = n_cols / act.block_len() * act.block_bytes();
            for a in blocks.chunks_exact(vec_bytes) {
                for row in w.chunks_exact(row_bytes) {
                    y.push(vec_dot(ty, n_cols, row, a).unwrap());
                }
            }
        }
        kernels::Activations::F32 => {
            let mut dense = vec![0f32; n_cols];
            for v in x.chunks_exact(n_cols) {
                for row in w.chunks_exact(row_bytes) {
                    dequantize_row(ty, row, &mut dense).unwrap();
                    let exact: f64 = dense
                        .iter()
                        .zip(v)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    y.push(exact as f32);
                }
            }
        }
    }
    y
}

/// Asserts `got` is within 1e-5 of the largest |expected| (f32 summation order only).
fn assert_close(got: &[f32], expected: &[f32], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: output length");
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let tolerance = 1e-5 * scale;
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= tolerance,
            "{what}: y[{i}] = {g}, CPU {e} (tolerance {tolerance})"
        );
    }
}

fn activations(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut x = random_values(&mut rng, n, 3.0);
    // One large element per vector start: a block whose other quants round small.
    x[0] = 250.0;
    x
}

fn check(
    ty: GgmlType,
    n_rows: usize,
    n_cols: usize,
    n_vecs: usize,
    values: Values,
    reduction: Reduction,
) {
    let Some(gpu) = common::gpu() else { return };
    if reduction == Reduction::Subgroup && !gpu.has_subgroups() {
        return;
    }
    let seed = (n_rows * 31 + n_cols) as u64;
    let w = weights(ty, n_rows, n_cols, values, seed);
    let x = activations(n_vecs * n_cols, seed + 1);
    let matrix = gpu.upload_matrix(ty, n_rows, n_cols, &w).unwrap();
    let got = gpu.matvec_with(&matrix, &x, reduction).unwrap();
    let expected = reference(gpu, ty, &w, n_rows, n_cols, &x);
    assert_close(
        &got,
        &expected,
        &format!("{ty} {n_rows}x{n_cols} x{n_vecs} {values:?} {reduction:?}"),
    );
}

/// Shapes: one row, a row group and a ragged tail, more rows than one dispatch's groups
/// cover in one pass, and row lengths of one, an odd number and many blocks.
fn shapes(ty: GgmlType) -> Vec<(usize, usize, usize)> {
    let unit = ty.block_len().max(32);
    vec![
        (1, unit, 1),
        (7, 3 * unit, 2),
        (33, 5 * unit, 1),
        (130, 4096, 3),
    ]
}

#[test]
fn every_kernel_matches_the_cpu_on_random_blocks() {
    for ty in kernels::MATVEC_TYPES {
        for reduction in Reduction::ALL {
            for (n_rows, n_cols, n_vecs) in shapes(ty) {
                check(ty, n_rows, n_cols, n_vecs, Values::Random, reduction);
            }
        }
    }
}

#[test]
fn every_kernel_matches_the_cpu_on_zero_and_extreme_blocks() {
    for ty in kernels::MATVEC_TYPES {
        for reduction in Reduction::ALL {
            check(ty, 9, 512, 2, Values::Zero, reduction);
            check(ty, 9, 512, 2, Values::ExtremeScales, reduction);
        }
    }
}

#[test]
fn the_adapter_is_described() {
    let Some(gpu) = common::gpu() else { return };
    let summary = gpu.summary();
    eprintln!("{summary:?}");
    assert!(!summary.name.is_empty());
    assert!(summary.max_binding_bytes >= 1 << 27, "{summary:?}");
    assert_eq!(gpu.has_subgroups(), summary.subgroup_sizes.is_some());
}

#[test]
fn zero_activations_give_zero() {
    let Some(gpu) = common::gpu() else { return };
    for ty in kernels::MATVEC_TYPES {
        let w = weights(ty, 5, 256, Values::Random, 7);
        let matrix = gpu.upload_matrix(ty, 5, 256, &w).unwrap();
        let y = gpu.matvec(&matrix, &[0.0; 256]).unwrap();
        assert_eq!(y, vec![0.0; 5], "{ty}");
    }
}

#[test]
fn activations_are_quantized_as_the_cpu_quantizes_them() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(99);
    let mut x = random_values(&mut rng, 4 * 512, 5.0);
    x[300..332].fill(0.0); // an all-zero Q8_0 block
    x[1024..1280].fill(0.0); // an all-zero Q8_K block
    x[40] = 1.0e-30; // far below f16's range: its scale rounds to zero
    x[2000] = -7.0e3;
    for act in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8K] {
        let got = gpu.quantize_activations(act, &x, 512).unwrap();
        let mut expected = vec![0u8; got.len()];
        // The GPU rounds as Fennec's x86 kernels do (127 / amax, half to even).
        quantize_activations_as(CpuLevel::Avx2, act, &x, &mut expected).unwrap();
        assert_eq!(got, expected, "{act}: GPU and CPU blocks differ");
    }
}

#[test]
fn rows_split_across_bindings_give_the_same_results() {
    // 3 rows per slice: 11 rows become 4 slices.
    let Some(whole) = common::gpu() else { return };
    for ty in [GgmlType::Q4K, GgmlType::Q4_0, GgmlType::F16] {
        let n_cols = 512;
        let row_bytes = n_cols / ty.block_len() * ty.block_bytes();
        let small = common::open(&GpuOptions {
            max_slice_bytes: Some(3 * row_bytes as u64),
            ..Default::default()
        })
        .unwrap();
        let w = weights(ty, 11, n_cols, Values::Random, 3);
        let x = activations(2 * n_cols, 4);
        let split = small.upload_matrix(ty, 11, n_cols, &w).unwrap();
        assert_eq!(split.n_slices(), 4, "{ty}");
        let joined = whole.upload_matrix(ty, 11, n_cols, &w).unwrap();
        assert_eq!(joined.n_slices(), 1);
        for reduction in [Reduction::Shared, whole.default_reduction()] {
            assert_eq!(
                small.matvec_with(&split, &x, reduction).unwrap(),
                whole.matvec_with(&joined, &x, reduction).unwrap(),
                "{ty} {reduction:?}"
            );
        }
    }
}

#[test]
fn bad_shapes_and_types_are_named_errors() {
    let Some(gpu) = common::gpu() else { return };
    let w = weights(GgmlType::Q4_0, 2, 64, Values::Random, 1);
    assert!(matches!(
        gpu.upload_matrix(GgmlType::Q4_0, 3, 64, &w),
        Err(GpuError::Shape(_))
    ));
    assert!(matches!(
        gpu.upload_matrix(GgmlType::Q4_0, 2, 48, &w),
        Err(GpuError::Shape(_))
    ));
    assert!(matches!(
        gpu.upload_matrix(GgmlType::Q2K, 1, 256, &[0; 84]),
        Err(GpuError::Unsupported(GgmlType::Q2K))
    ));
    let matrix = gpu.upload_matrix(GgmlType::Q4_0, 2, 64, &w).unwrap();
    let e = gpu.matvec(&matrix, &[1.0; 65]).unwrap_err();
    assert!(e.to_string().contains("not whole rows of 64"), "{e}");
    let tiny = common::open(&GpuOptions {
        max_slice_bytes: Some(16),
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        tiny.upload_matrix(GgmlType::Q4_0, 2, 64, &w),
        Err(GpuError::RowTooLarge { row_bytes: 36, .. })
    ));
}
