//! Scaled dot-product attention of query rows against a layer's KV cache.

use std::ops::Range;

use half::f16;

use super::ThreadPool;
use crate::kv_cache::{KvLayer, KvType};

/// Head layout of an attention op.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttentionShape {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_head`).
    pub n_head_kv: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// Multiplier of the scores before softmax (usually `1/sqrt(head_dim)`).
    pub scale: f32,
}

/// Query rows handled by one task: enough to amortize gathering a head's keys and values.
const ROWS_PER_TASK: usize = 32;

/// For each query row `t` (at position `positions[t]`) and head, attends over the cached
/// positions the layer's window makes visible (`first_visible(p) ..= p`) and writes the
/// weighted sum of their values into `out[t]` (`n_head * head_dim` per row).
///
/// With an f16 cache the query and the softmax weights are rounded to f16 first, as ggml
/// does when it multiplies by f16 K and V.
pub fn attention(
    q: &[f32],
    positions: &[usize],
    kv: &KvLayer,
    shape: AttentionShape,
    out: &mut [f32],
    pool: &ThreadPool,
) {
    let n_rows = positions.len();
    let window = kv.window();
    let visible: Vec<Range<usize>> = positions
        .iter()
        .map(|&p| window.first_visible(p)..p + 1)
        .collect();
    // One task per (key/value head, block of query rows).
    let tasks: Vec<(usize, Range<usize>)> = (0..shape.n_head_kv)
        .flat_map(|h| {
            (0..n_rows)
                .step_by(ROWS_PER_TASK)
                .map(move |t| (h, t..(t + ROWS_PER_TASK).min(n_rows)))
        })
        .collect();
    let results: Vec<std::sync::Mutex<Vec<f32>>> = tasks
        .iter()
        .map(|_| std::sync::Mutex::new(Vec::new()))
        .collect();
    pool.for_each(tasks.len(), |i| {
        let (kv_head, rows) = tasks[i].clone();
        let part = attend_kv_head(q, kv, &visible, shape, kv_head, rows);
        *results[i].lock().expect("result slot") = part;
    });
    // Scatter each task's [row][group head][head_dim] block into place.
    let group = shape.n_head / shape.n_head_kv;
    let hd = shape.head_dim;
    let row_len = shape.n_head * hd;
    for ((kv_head, rows), part) in tasks.iter().zip(results) {
        let part = part.into_inner().expect("result slot");
        for (i, t) in rows.clone().enumerate() {
            let src = &part[i * group * hd..(i + 1) * group * hd];
            let dst = t * row_len + kv_head * group * hd;
            out[dst..dst + group * hd].copy_from_slice(src);
        }
    }
}

/// Attention of the query heads sharing `kv_head`, for query rows `rows`.
fn attend_kv_head(
    q: &[f32],
    kv: &KvLayer,
    visible: &[Range<usize>],
    shape: AttentionShape,
    kv_head: usize,
    rows: Range<usize>,
) -> Vec<f32> {
    let hd = shape.head_dim;
    let group = shape.n_head / shape.n_head_kv;
    let row_len = shape.n_head * hd;
    let round_f16 = kv.ty() == KvType::F16;
    // Gather this head's keys and values once for all the rows of the task: the union of
    // their visible positions, `lo..hi`.
    let lo = visible[rows.clone()]
        .iter()
        .map(|r| r.start)
        .min()
        .unwrap_or(0);
    let hi = visible[rows.clone()]
        .iter()
        .map(|r| r.end)
        .max()
        .unwrap_or(0);
    let n_keys = hi.saturating_sub(lo);
    let mut keys = vec![0.0f32; n_keys * hd];
    let mut values = vec![0.0f32; n_keys * hd];
    for (i, pos) in (lo..hi).enumerate() {
        kv.key(pos, kv_head * hd, &mut keys[i * hd..(i + 1) * hd]);
        kv.value(pos, kv_head * hd, &mut values[i * hd..(i + 1) * hd]);
    }
    let mut out = vec![0.0f32; rows.len() * group * hd];
    let mut query = vec![0.0f32; hd];
    let mut scores = Vec::new();
    for (i, t) in rows.enumerate() {
        let seen = visible[t].start - lo..visible[t].end - lo;
        for g in 0..group {
            let h = kv_head * group + g;
            query.copy_from_slice(&q[t * row_len + h * hd..t * row_len + (h + 1) * hd]);
            if round_f16 {
                query
                    .iter_mut()
                    .for_each(|x| *x = f16::from_f32(*x).to_f32());
            }
            scores.clear();
            scores.extend(
                seen.clone()
                    .map(|c| dot(&query, &keys[c * hd..(c + 1) * hd]) * shape.scale),
            );
            softmax(&mut scores);
            if round_f16 {
                scores
                    .iter_mut()
                    .for_each(|x| *x = f16::from_f32(*x).to_f32());
            }
            let acc = &mut out[(i * group + g) * hd..(i * group + g + 1) * hd];
            for (&p, c) in scores.iter().zip(seen.clone()) {
                for (a, v) in acc.iter_mut().zip(&values[c * hd..(c + 1) * hd]) {
                    *a += p * v;
                }
            }
        }
    }
    out
}

/// Dot product with eight independent accumulators (vectorizes).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// In-place softmax: `e^(x - max)`, summed in f64, scaled by the reciprocal of the sum.
fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    x.iter_mut().for_each(|v| *v *= inv);
}
