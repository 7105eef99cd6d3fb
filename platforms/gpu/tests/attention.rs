//! The f16 KV cache and attention over it against the CPU's formula (core's numerics with an
//! f16 cache: query and softmax weights rounded to f16), for decode, causal prefill, grouped
//! heads and a chunked window on a ring of cells.

mod common;

use fennec_gpu::{AttentionShape, GpuError};
use fennec_quant::rng::Rng;
use half::f16;

fn values(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

fn round(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// Attention of query row `q` (all heads) over the keys/values of positions `first..=pos`
/// (`keys[p]`, `values[p]`: rows of `n_head_kv * head_dim`), as core computes it.
fn attention_row(
    q: &[f32],
    keys: &[Vec<f32>],
    vals: &[Vec<f32>],
    window: (usize, usize),
    s: AttentionShape,
) -> Vec<f32> {
    let (hd, group) = (s.head_dim, s.n_head / s.n_head_kv);
    let mut out = vec![0f32; s.n_head * hd];
    for h in 0..s.n_head {
        let kv = (h / group) * hd;
        let qh: Vec<f32> = q[h * hd..(h + 1) * hd].iter().map(|&v| round(v)).collect();
        let scores: Vec<f32> = (window.0..=window.1)
            .map(|p| {
                let k = &keys[p][kv..kv + hd];
                qh.iter().zip(k).map(|(a, b)| a * round(*b)).sum::<f32>() * s.scale
            })
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = scores.iter().map(|v| (v - max).exp()).collect();
        let inv = (1.0 / exps.iter().map(|&v| f64::from(v)).sum::<f64>()) as f32;
        for (j, p) in (window.0..=window.1).enumerate() {
            let w = round(exps[j] * inv);
            for d in 0..hd {
                out[h * hd + d] += w * round(vals[p][kv + d]);
            }
        }
    }
    out
}

fn assert_close(got: &[f32], expected: &[f32], what: &str) {
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        // f32 reassociation only (1.5e-5 measured on lavapipe). Tight enough to see a missing
        // f16 rounding of the query or the weights (2.4e-4 to 6.4e-4).
        assert!(
            (g - e).abs() <= 6e-5 * scale,
            "{what}: [{i}] GPU {g}, CPU {e}"
        );
    }
}

/// Stores positions in micro-batches of `batch` and attends each batch's rows right after
/// storing it, with windows from `first_visible`; compares every output with the CPU's.
fn run(
    shape: AttentionShape,
    n_cells: usize,
    n_pos: usize,
    batch: usize,
    first_visible: impl Fn(usize) -> usize,
    seed: u64,
) {
    let Some(gpu) = common::gpu() else { return };
    let kv_dim = shape.n_head_kv * shape.head_dim;
    let q_dim = shape.n_head * shape.head_dim;
    let keys: Vec<Vec<f32>> = (0..n_pos)
        .map(|p| values(kv_dim, 2.0, seed + 3 * p as u64))
        .collect();
    let vals: Vec<Vec<f32>> = (0..n_pos)
        .map(|p| values(kv_dim, 1.0, seed + 3 * p as u64 + 1))
        .collect();
    let layer = gpu.kv_layer(n_cells, kv_dim).unwrap();
    for start in (0..n_pos).step_by(batch) {
        let positions: Vec<usize> = (start..(start + batch).min(n_pos)).collect();
        let k: Vec<f32> = positions.iter().flat_map(|&p| keys[p].clone()).collect();
        let v: Vec<f32> = positions.iter().flat_map(|&p| vals[p].clone()).collect();
        let q = values(positions.len() * q_dim, 3.0, seed + 1000 + start as u64);
        let windows: Vec<(usize, usize)> =
            positions.iter().map(|&p| (first_visible(p), p)).collect();
        let (kt, vt, qt) = (
            gpu.tensor(&k, kv_dim).unwrap(),
            gpu.tensor(&v, kv_dim).unwrap(),
            gpu.tensor(&q, q_dim).unwrap(),
        );
        let mut rec = gpu.recorder();
        rec.store_kv(&layer, &kt, &vt, &positions).unwrap();
        let out = rec.attention(&qt, &layer, &windows, shape).unwrap();
        let got = rec.read(&out).unwrap();
        for (t, &w) in windows.iter().enumerate() {
            let expected = attention_row(&q[t * q_dim..(t + 1) * q_dim], &keys, &vals, w, shape);
            assert_close(
                &got[t * q_dim..(t + 1) * q_dim],
                &expected,
                &format!("{shape:?} row at {}", positions[t]),
            );
        }
    }
}

fn shape(n_head: usize, n_head_kv: usize, head_dim: usize) -> AttentionShape {
    AttentionShape {
        n_head,
        n_head_kv,
        head_dim,
        scale: 1.0 / (head_dim as f32).sqrt(),
    }
}

#[test]
fn decode_one_position_at_a_time_with_grouped_heads() {
    // SmolLM2-135M's heads: 9 query heads on 3 key/value heads of 64.
    run(shape(9, 3, 64), 80, 70, 1, |_| 0, 1);
}

#[test]
fn causal_prefill_in_micro_batches() {
    run(shape(4, 2, 128), 100, 90, 32, |_| 0, 2);
}

#[test]
fn chunked_windows_on_a_ring_of_cells() {
    // Llama 4's chunked layers: a ring of one chunk (8) plus one micro-batch (4).
    run(shape(4, 1, 64), 12, 30, 4, |p| p / 8 * 8, 3);
}

#[test]
fn one_visible_position_returns_its_value_rounded_to_f16() {
    let Some(gpu) = common::gpu() else { return };
    let s = shape(2, 2, 256);
    let layer = gpu.kv_layer(4, 512).unwrap();
    let mut v = values(512, 1.0e4, 9);
    v[..4].copy_from_slice(&[1.0e-6, -7.0e4, 65519.0, 3.0e-8]); // subnormal, overflow, rounding edge
    let k = gpu.tensor(&values(512, 1.0, 8), 512).unwrap();
    let vt = gpu.tensor(&v, 512).unwrap();
    let q = gpu.tensor(&values(512, 1.0, 7), 512).unwrap();
    let mut rec = gpu.recorder();
    rec.store_kv(&layer, &k, &vt, &[2]).unwrap();
    let out = rec.attention(&q, &layer, &[(2, 2)], s).unwrap();
    let got = rec.read(&out).unwrap();
    let expected: Vec<f32> = v.iter().map(|&x| round(x)).collect();
    assert_eq!(got, expected, "weight 1 times the stored f16 value");
}

#[test]
fn bad_attention_calls_are_named_errors() {
    let Some(gpu) = common::gpu() else { return };
    assert!(matches!(gpu.kv_layer(4, 63), Err(GpuError::Shape(_))));
    let layer = gpu.kv_layer(4, 64).unwrap();
    let q = gpu.tensor(&[0.0; 128], 128).unwrap();
    let mut rec = gpu.recorder();
    // A window longer than the cells hold.
    assert!(matches!(
        rec.attention(&q, &layer, &[(0, 4)], shape(2, 1, 64)),
        Err(GpuError::Shape(_))
    ));
    // Heads that do not divide.
    assert!(matches!(
        rec.attention(&q, &layer, &[(0, 1)], shape(2, 3, 64)),
        Err(GpuError::Shape(_))
    ));
    let k = gpu.tensor(&[0.0; 64], 64).unwrap();
    assert!(matches!(
        rec.store_kv(&layer, &k, &k, &[0, 1]),
        Err(GpuError::Shape(_))
    ));
}
