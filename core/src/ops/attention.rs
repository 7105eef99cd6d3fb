//! Scaled dot-product attention of query rows against a layer's KV cache.

use half::f16;

use super::ThreadPool;
use crate::kv_cache::{KvLayer, KvType};

/// Head layout of an attention op.
#[derive(Clone, Copy, Debug)]
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

/// For each query row `t` and head, attends over the cache cells `keys_for(t)` and writes
/// the weighted sum of their values into `out[t]` (`n_head * head_dim` per row).
///
/// With an f16 cache the query and the softmax weights are rounded to f16 first, as ggml
/// does when it multiplies by f16 K and V.
pub fn attention(
    q: &[f32],
    n_rows: usize,
    kv: &KvLayer,
    keys_for: &(dyn Fn(usize) -> Vec<usize> + Sync),
    shape: AttentionShape,
    out: &mut [f32],
    pool: &ThreadPool,
) {
    let AttentionShape {
        n_head,
        n_head_kv,
        head_dim,
        scale,
    } = shape;
    let group = n_head / n_head_kv;
    let row = n_head * head_dim;
    let round_f16 = kv.ty() == KvType::F16;
    // One task per query row; each writes its own output row.
    let tasks: Vec<(usize, &mut [f32])> =
        out.chunks_exact_mut(row).take(n_rows).enumerate().collect();
    pool.each_mut(tasks, |(t, out_row)| {
        let cells = keys_for(t);
        let mut scores = vec![0.0f32; cells.len()];
        let mut key = vec![0.0f32; head_dim];
        let mut value = vec![0.0f32; head_dim];
        let mut query = vec![0.0f32; head_dim];
        for h in 0..n_head {
            let kv_offset = (h / group) * head_dim;
            query.copy_from_slice(&q[t * row + h * head_dim..t * row + (h + 1) * head_dim]);
            if round_f16 {
                query
                    .iter_mut()
                    .for_each(|x| *x = f16::from_f32(*x).to_f32());
            }
            for (s, &cell) in scores.iter_mut().zip(&cells) {
                kv.key(cell, kv_offset, &mut key);
                let dot: f32 = query.iter().zip(&key).map(|(a, b)| a * b).sum();
                *s = dot * scale;
            }
            softmax(&mut scores);
            if round_f16 {
                scores
                    .iter_mut()
                    .for_each(|x| *x = f16::from_f32(*x).to_f32());
            }
            let acc = &mut out_row[h * head_dim..(h + 1) * head_dim];
            acc.fill(0.0);
            for (&p, &cell) in scores.iter().zip(&cells) {
                kv.value(cell, kv_offset, &mut value);
                for (a, v) in acc.iter_mut().zip(&value) {
                    *a += p * v;
                }
            }
        }
    });
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
