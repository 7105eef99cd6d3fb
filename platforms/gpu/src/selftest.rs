//! The first-run self-test: each kernel runs once on a fixed input and is checked against
//! the CPU before a model uses it. A variant that fails (or does not build) is not used: a
//! failing subgroup reduction falls back to shared memory, a failing weight type is not
//! offered (its models stay on the CPU), and failing row operations disable the GPU. The
//! verdicts are remembered per adapter and driver (see `GpuOptions::cache_dir`).
//!
//! This is the cheapest answer to the drivers that compile a kernel wrong (Adreno, Mali
//! and PowerVR have each been reported to in llama.cpp's Vulkan backend).

use fennec_quant::rng::Rng;
use fennec_quant::{
    dequantize_row, quantize_activations_as, quantize_row, vec_dot, CpuLevel, GgmlType,
};

use crate::kernels::{self, Activations, Reduction};
use crate::{AttentionShape, Gpu, GpuError, RopePairs};

fn values(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

/// `Err` naming the worst element when `got` is not within `relative` of the largest
/// |expected|.
fn close(what: &str, got: &[f32], expected: &[f32], relative: f32) -> Result<(), String> {
    if got.len() != expected.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            expected.len()
        ));
    }
    let scale = expected
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        // NaN fails too.
        let within = (g - e).abs() <= relative * scale;
        if !within {
            return Err(format!("{what}: [{i}] is {g}, the CPU says {e}"));
        }
    }
    Ok(())
}

fn gpu_err(e: GpuError) -> String {
    e.to_string()
}

/// Checks the matrix-vector kernel for `ty` with `reduction` (and the activation quantizer it
/// uses) against `fennec-quant`.
pub(crate) fn check_matvec(gpu: &Gpu, ty: GgmlType, reduction: Reduction) -> Result<(), String> {
    let (n_rows, n_cols, n_vecs) = (9, 512, 2);
    let row_bytes = n_cols / ty.block_len() * ty.block_bytes();
    let mut weights = vec![0u8; n_rows * row_bytes];
    for (r, row) in weights.chunks_exact_mut(row_bytes).enumerate() {
        quantize_row(ty, &values(n_cols, 1.0, 11 + r as u64), row).map_err(|e| e.to_string())?;
    }
    let x = values(n_vecs * n_cols, 3.0, 7);
    let matrix = gpu
        .upload_matrix(ty, n_rows, n_cols, &weights)
        .map_err(gpu_err)?;
    let got = gpu.matvec_with(&matrix, &x, reduction).map_err(gpu_err)?;
    let mut expected = Vec::with_capacity(n_rows * n_vecs);
    match kernels::activations(ty) {
        Some(Activations::Quantized(act)) => {
            let blocks = gpu.quantize_activations(act, &x, n_cols).map_err(gpu_err)?;
            let mut cpu = vec![0u8; blocks.len()];
            quantize_activations_as(CpuLevel::Avx2, act, &x, &mut cpu)
                .map_err(|e| e.to_string())?;
            // Quants may differ by one where a division rounds differently; no more.
            let off = blocks.iter().zip(&cpu).filter(|(a, b)| a != b).count();
            if off * 100 > blocks.len() {
                return Err(format!(
                    "{act} activations: {off} of {} bytes differ from the CPU's",
                    blocks.len()
                ));
            }
            let vec_bytes = n_cols / act.block_len() * act.block_bytes();
            for a in blocks.chunks_exact(vec_bytes) {
                for row in weights.chunks_exact(row_bytes) {
                    expected.push(vec_dot(ty, n_cols, row, a).map_err(|e| e.to_string())?);
                }
            }
        }
        _ => {
            let mut dense = vec![0f32; n_cols];
            for v in x.chunks_exact(n_cols) {
                for row in weights.chunks_exact(row_bytes) {
                    dequantize_row(ty, row, &mut dense).map_err(|e| e.to_string())?;
                    let dot: f64 = dense
                        .iter()
                        .zip(v)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    expected.push(dot as f32);
                }
            }
        }
    }
    close(&kernels::matvec_name(ty, reduction), &got, &expected, 1e-4)
}

/// Checks the row operations, argmax, the KV store and attention on small fixed inputs.
pub(crate) fn check_row_ops(gpu: &Gpu) -> Result<(), String> {
    let (rows, len) = (3, 128);
    let x = values(rows * len, 2.0, 1);
    let w = values(len, 1.0, 2);
    let y = values(rows * len, 2.0, 3);
    let t = |v: &[f32], n| gpu.tensor(v, n).map_err(gpu_err);

    // RMS norm, SwiGLU, add, add_rows, in one recording.
    let (xt, wt, yt, gt) = (t(&x, len)?, t(&w, len)?, t(&y, len)?, t(&x, len)?);
    let mut rec = gpu.recorder();
    rec.rms_norm(&xt, &wt, 1e-5).map_err(gpu_err)?;
    rec.swiglu(&gt, &yt).map_err(gpu_err)?;
    rec.add(&gt, &yt).map_err(gpu_err)?;
    rec.add_bias(&gt, &wt).map_err(gpu_err)?;
    let normed = rec.read(&xt).map_err(gpu_err)?;
    let mut expected = x.clone();
    for row in expected.chunks_exact_mut(len) {
        let mean = row.iter().map(|v| v * v).sum::<f32>() / len as f32;
        let scale = 1.0 / (mean + 1e-5).sqrt();
        row.iter_mut()
            .zip(&w)
            .for_each(|(v, w)| *v = *v * scale * w);
    }
    close("rms_norm", &normed, &expected, 1e-5)?;
    let mixed = gpu.recorder().read(&gt).map_err(gpu_err)?;
    let expected: Vec<f32> = (0..rows * len)
        .map(|i| x[i] / (1.0 + (-x[i]).exp()) * y[i] + y[i] + w[i % len])
        .collect();
    close("swiglu, add, add_rows", &mixed, &expected, 1e-5)?;

    // RoPE in both layouts.
    for pairs in [RopePairs::Adjacent, RopePairs::Halves] {
        let table: Vec<f32> = (0..rows * len / 2)
            .flat_map(|i| [(i as f32).cos(), (i as f32).sin()])
            .collect();
        let (xt, tt) = (t(&x, len)?, t(&table, len)?);
        let mut rec = gpu.recorder();
        rec.rope(&xt, len, len, pairs, &tt).map_err(gpu_err)?;
        let got = rec.read(&xt).map_err(gpu_err)?;
        let mut expected = x.clone();
        for (r, row) in expected.chunks_exact_mut(len).enumerate() {
            for i in 0..len / 2 {
                let (a, b) = match pairs {
                    RopePairs::Adjacent => (2 * i, 2 * i + 1),
                    RopePairs::Halves => (i, i + len / 2),
                };
                let (c, s) = (
                    table[2 * (r * len / 2 + i)],
                    table[2 * (r * len / 2 + i) + 1],
                );
                let (x0, x1) = (row[a], row[b]);
                row[a] = x0 * c - x1 * s;
                row[b] = x0 * s + x1 * c;
            }
        }
        close("rope", &got, &expected, 1e-5)?;
    }

    // Argmax, the first of equals.
    let mut logits = values(2 * 300, 5.0, 4);
    logits[17] = 9.0;
    logits[200] = 9.0;
    logits[300 + 299] = 9.5;
    let lt = t(&logits, 300)?;
    let mut rec = gpu.recorder();
    let best = rec.argmax(&lt).map_err(gpu_err)?;
    let got = rec.read_indices(&best).map_err(gpu_err)?;
    if got != [17, 299] {
        return Err(format!("argmax: {got:?}, expected [17, 299]"));
    }

    // One decode step of attention over 5 stored positions, two heads on one K/V head.
    let shape = AttentionShape {
        n_head: 2,
        n_head_kv: 1,
        head_dim: 64,
        scale: 0.125,
    };
    let (k, v, q) = (
        values(5 * 64, 1.0, 5),
        values(5 * 64, 1.0, 6),
        values(128, 2.0, 7),
    );
    let layer = gpu.kv_layer(8, 64).map_err(gpu_err)?;
    let (kt, vt, qt) = (t(&k, 64)?, t(&v, 64)?, t(&q, 128)?);
    let mut rec = gpu.recorder();
    rec.store_kv(&layer, &kt, &vt, &[0, 1, 2, 3, 4])
        .map_err(gpu_err)?;
    let out = rec
        .attention(&qt, &layer, &[(0, 4)], shape)
        .map_err(gpu_err)?;
    let got = rec.read(&out).map_err(gpu_err)?;
    let f16 = |x: f32| half::f16::from_f32(x).to_f32();
    let mut expected = vec![0f32; 128];
    for h in 0..2 {
        let scores: Vec<f32> = (0..5)
            .map(|p| {
                (0..64)
                    .map(|d| f16(q[h * 64 + d]) * f16(k[p * 64 + d]))
                    .sum::<f32>()
                    * 0.125
            })
            .collect();
        let max = scores.iter().copied().fold(f32::MIN, f32::max);
        let sum: f32 = scores.iter().map(|s| (s - max).exp()).sum();
        for (p, s) in scores.iter().enumerate() {
            let weight = f16((s - max).exp() / sum);
            for d in 0..64 {
                expected[h * 64 + d] += weight * f16(v[p * 64 + d]);
            }
        }
    }
    close("attention", &got, &expected, 1e-3)
}
