//! The row operations (RMS norm, RoPE, SwiGLU, add, argmax) against the CPU's formulas, and
//! a chain of them recorded at once and read back once.

mod common;

use fennec_gpu::{GpuError, GpuOptions, RopePairs};
use fennec_quant::rng::Rng;
use fennec_quant::{quantize_row, GgmlType};

fn values(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

/// Asserts every value is within `relative` of the largest |expected|.
fn assert_close(got: &[f32], expected: &[f32], relative: f32, what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}");
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= relative * scale,
            "{what}: [{i}] GPU {g}, CPU {e}"
        );
    }
}

/// Core's RMS norm: squares summed in f64, the scale in f32.
fn rms_norm_cpu(x: &mut [f32], weight: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(weight.len()) {
        let sum: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let scale = 1.0 / ((sum / weight.len() as f64) as f32 + eps).sqrt();
        for (v, w) in row.iter_mut().zip(weight) {
            *v = (*v * scale) * w;
        }
    }
}

#[test]
fn rms_norm_matches_the_cpu() {
    let Some(gpu) = common::gpu() else { return };
    for (n_rows, row_len) in [(1, 64), (3, 576), (5, 100)] {
        let x = values(n_rows * row_len, 4.0, row_len as u64);
        let w = values(row_len, 1.5, 7);
        let mut expected = x.clone();
        rms_norm_cpu(&mut expected, &w, 1e-5);
        let (xt, wt) = (
            gpu.tensor(&x, row_len).unwrap(),
            gpu.tensor(&w, row_len).unwrap(),
        );
        let mut rec = gpu.recorder();
        rec.rms_norm(&xt, &wt, 1e-5).unwrap();
        assert_close(
            &rec.read(&xt).unwrap(),
            &expected,
            1e-6,
            &format!("rms_norm {n_rows}x{row_len}"),
        );
    }
}

/// ggml's angles for position `pos`: θ = pos, multiplied by base^(-2/n_rot) pair by pair.
fn angles(pos: usize, n_rot: usize) -> Vec<f32> {
    let theta_scale = 10000f32.powf(-2.0 / n_rot as f32);
    let mut theta = pos as f32;
    let mut out = Vec::new();
    for _ in 0..n_rot / 2 {
        out.extend([theta.cos(), theta.sin()]);
        theta *= theta_scale;
    }
    out
}

#[test]
fn rope_matches_the_cpu_in_both_pair_layouts() {
    let Some(gpu) = common::gpu() else { return };
    let (head_dim, heads) = (64, 3);
    let positions = [0usize, 5, 1000, 32767];
    for n_rot in [64, 32] {
        for pairs in [RopePairs::Adjacent, RopePairs::Halves] {
            let row_len = head_dim * heads;
            let x = values(positions.len() * row_len, 2.0, n_rot as u64);
            let table: Vec<f32> = positions.iter().flat_map(|&p| angles(p, n_rot)).collect();
            let mut expected = x.clone();
            for (row, &pos) in expected.chunks_exact_mut(row_len).zip(&positions) {
                let cs = angles(pos, n_rot);
                for head in row.chunks_exact_mut(head_dim) {
                    for i in 0..n_rot / 2 {
                        let (a, b) = match pairs {
                            RopePairs::Adjacent => (2 * i, 2 * i + 1),
                            RopePairs::Halves => (i, i + n_rot / 2),
                        };
                        let (x0, x1, c, s) = (head[a], head[b], cs[2 * i], cs[2 * i + 1]);
                        head[a] = x0 * c - x1 * s;
                        head[b] = x0 * s + x1 * c;
                    }
                }
            }
            let xt = gpu.tensor(&x, row_len).unwrap();
            let tt = gpu.tensor(&table, n_rot).unwrap();
            let mut rec = gpu.recorder();
            rec.rope(&xt, head_dim, n_rot, pairs, &tt).unwrap();
            assert_close(
                &rec.read(&xt).unwrap(),
                &expected,
                1e-6,
                &format!("rope {n_rot} {pairs:?}"),
            );
        }
    }
}

#[test]
fn swiglu_and_add_match_the_cpu() {
    let Some(gpu) = common::gpu() else { return };
    let mut gate = values(3 * 1536, 6.0, 1);
    gate[..6].copy_from_slice(&[-100.0, 100.0, -1e4, 1e4, 0.0, -0.0]);
    let up = values(3 * 1536, 2.0, 2);
    let expected: Vec<f32> = gate
        .iter()
        .zip(&up)
        .map(|(&g, &u)| g / (1.0 + (-g).exp()) * u)
        .collect();
    let (gt, ut) = (
        gpu.tensor(&gate, 1536).unwrap(),
        gpu.tensor(&up, 1536).unwrap(),
    );
    let mut rec = gpu.recorder();
    rec.swiglu(&gt, &ut).unwrap();
    let got = rec.read(&gt).unwrap();
    assert!(got.iter().all(|v| v.is_finite()), "silu of ±1e4 overflowed");
    assert_close(&got, &expected, 1e-5, "swiglu");

    let sum: Vec<f32> = gate.iter().zip(&up).map(|(a, b)| a + b).collect();
    let (xt, yt) = (
        gpu.tensor(&gate, 1536).unwrap(),
        gpu.tensor(&up, 1536).unwrap(),
    );
    let mut rec = gpu.recorder();
    rec.add(&xt, &yt).unwrap();
    assert_eq!(rec.read(&xt).unwrap(), sum, "add is exact");
}

#[test]
fn argmax_matches_the_greedy_sampler() {
    let Some(gpu) = common::gpu() else { return };
    let row_len = 1000;
    let mut x = values(6 * row_len, 10.0, 3);
    x[row_len + 10] = 50.0; // row 1: a tie, the first wins
    x[row_len + 900] = 50.0;
    x[2 * row_len..3 * row_len].fill(f32::NAN); // row 2: all NaN gives 0
    x[3 * row_len + 7] = f32::NAN; // row 3: NaN never wins
    x[3 * row_len + 8] = f32::INFINITY;
    x[4 * row_len..5 * row_len]
        .iter_mut()
        .for_each(|v| *v = -v.abs() - 1.0); // row 4: negative
    x[5 * row_len..6 * row_len].fill(f32::NEG_INFINITY); // row 5: all -inf gives 0
    let xt = gpu.tensor(&x, row_len).unwrap();
    let mut rec = gpu.recorder();
    let best = rec.argmax(&xt).unwrap();
    let got = rec.read_indices(&best).unwrap();
    let expected: Vec<u32> = x
        .chunks_exact(row_len)
        .map(fennec_core::sampler::argmax)
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got[1], 10);
}

#[test]
fn a_recorded_chain_reads_back_once() {
    // norm -> up/gate products -> SwiGLU -> down product -> residual add -> argmax, as an
    // FFN block and a greedy pick do, with one synchronisation at the end.
    let Some(gpu) = common::gpu() else { return };
    let (d, ff, rows) = (256, 512, 2);
    let quantized = |n_rows: usize, n_cols: usize, seed| {
        let w = values(n_rows * n_cols, 1.0, seed);
        let mut bytes = vec![0u8; n_rows * n_cols / 256 * 144];
        for (src, dst) in w
            .chunks_exact(n_cols)
            .zip(bytes.chunks_exact_mut(n_cols / 256 * 144))
        {
            quantize_row(GgmlType::Q4K, src, dst).unwrap();
        }
        bytes
    };
    let (up_w, gate_w, down_w) = (
        quantized(ff, d, 1),
        quantized(ff, d, 2),
        quantized(d, ff, 3),
    );
    let up = gpu.upload_matrix(GgmlType::Q4K, ff, d, &up_w).unwrap();
    let gate = gpu.upload_matrix(GgmlType::Q4K, ff, d, &gate_w).unwrap();
    let down = gpu.upload_matrix(GgmlType::Q4K, d, ff, &down_w).unwrap();
    let x = values(rows * d, 1.0, 4);
    let norm = values(d, 1.0, 5);

    // Step by step, reading back after each op.
    let mut normed = x.clone();
    let nt = gpu.tensor(&norm, d).unwrap();
    let t = gpu.tensor(&normed, d).unwrap();
    let mut rec = gpu.recorder();
    rec.rms_norm(&t, &nt, 1e-6).unwrap();
    normed = rec.read(&t).unwrap();
    let g = gpu.matvec(&gate, &normed).unwrap();
    let u = gpu.matvec(&up, &normed).unwrap();
    let h: Vec<f32> = g
        .iter()
        .zip(&u)
        .map(|(&g, &u)| g / (1.0 + (-g).exp()) * u)
        .collect();
    let down_out = gpu.matvec(&down, &h).unwrap();
    let stepwise: Vec<f32> = x.iter().zip(&down_out).map(|(a, b)| a + b).collect();

    // Recorded at once.
    let xt = gpu.tensor(&x, d).unwrap();
    let normed_t = gpu.tensor(&x, d).unwrap();
    let mut rec = gpu.recorder();
    rec.rms_norm(&normed_t, &nt, 1e-6).unwrap();
    let gt = rec.matmul(&gate, &normed_t).unwrap();
    let ut = rec.matmul(&up, &normed_t).unwrap();
    rec.swiglu(&gt, &ut).unwrap();
    let dt = rec.matmul(&down, &gt).unwrap();
    rec.add(&xt, &dt).unwrap();
    let chained = rec.read(&xt).unwrap();
    assert_close(&chained, &stepwise, 1e-5, "recorded chain");
}

#[test]
fn mismatched_operands_are_named_errors() {
    let Some(gpu) = common::gpu() else { return };
    let x = gpu.tensor(&[1.0; 64], 32).unwrap();
    let y = gpu.tensor(&[1.0; 32], 32).unwrap();
    let mut rec = gpu.recorder();
    assert!(matches!(rec.add(&x, &y), Err(GpuError::Shape(_))));
    assert!(matches!(
        rec.rms_norm(&x, &x, 1e-5),
        Err(GpuError::Shape(_))
    ));
    assert!(matches!(
        rec.rope(&x, 32, 32, RopePairs::Adjacent, &y),
        Err(GpuError::Shape(_))
    ));
    assert!(matches!(gpu.tensor(&[1.0; 10], 3), Err(GpuError::Shape(_))));
    let _ = GpuOptions::default();
}
