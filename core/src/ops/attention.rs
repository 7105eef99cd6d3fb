//! Scaled dot-product attention of query rows against a layer's KV cache, read where the
//! cache holds it: each task converts one cached row of its head at a time into a small
//! per-thread buffer (or borrows it as is from an f32 cache).

use fennec_quant::float_ops;
use half::f16;
use half::slice::HalfFloatSliceExt;

use super::ThreadPool;
use crate::kv_cache::{HeadRef, KvLayer, KvType};

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

/// Reusable buffers of [`attention`], one set per pool thread; kept by the caller so that
/// a repeated call allocates nothing.
#[derive(Debug, Default)]
pub struct AttentionScratch {
    threads: Vec<ThreadScratch>,
}

/// One thread's buffers.
#[derive(Debug, Default)]
struct ThreadScratch {
    /// The query heads of a group (rounded to f16 for an f16 cache).
    query: Vec<f32>,
    /// Scores, then weights: `[group head][visible position]`.
    scores: Vec<f32>,
    /// One cached head converted to f32.
    row: Vec<f32>,
    /// [`VALUE_CHUNK`] cached value heads converted to f32, one after another.
    values: Vec<f32>,
    /// The positions each query row of a block sees.
    windows: Vec<std::ops::Range<usize>>,
}

/// Cached value heads converted at a time for the weighted sum: each query row then adds
/// its weighted run of them with one call, its accumulators kept in registers.
const VALUE_CHUNK: usize = 128;

impl AttentionScratch {
    fn prepare(&mut self, n_threads: usize, rows: usize, group: usize, hd: usize, keys: usize) {
        if self.threads.len() < n_threads {
            self.threads.resize_with(n_threads, ThreadScratch::default);
        }
        for t in &mut self.threads {
            grow(&mut t.query, rows * group * hd);
            grow(&mut t.scores, rows * group * keys);
            grow(&mut t.row, HeadRef::buffer_len(hd));
            grow(&mut t.values, VALUE_CHUNK * hd);
        }
    }
}

/// Most scores one task keeps (per thread): bounds the query rows a prefill task takes at
/// long contexts.
const SCORES_PER_TASK: usize = 1 << 20;
/// Most query rows one prefill task takes: each cached row is converted once for all of them.
const ROWS_PER_TASK: usize = 32;

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// For each query row `t` (at position `positions[t]`) and head, attends over the cached
/// positions the layer's window makes visible (`first_visible(p) ..= p`) and writes the
/// weighted sum of their values into `out[t]` (`n_head * head_dim` per row).
///
/// With an f16 cache the query and the softmax weights are rounded to f16 first, as ggml
/// does when it multiplies by f16 K and V. One task per (row, key/value head); once
/// `scratch` has served a cache of this size it allocates nothing.
pub fn attention(
    q: &[f32],
    positions: &[usize],
    kv: &KvLayer,
    shape: AttentionShape,
    out: &mut [f32],
    scratch: &mut AttentionScratch,
    pool: &ThreadPool,
) {
    let group = shape.n_head / shape.n_head_kv;
    let hd = shape.head_dim;
    // The cell count bounds every window: sizing for it once covers every later position.
    let visible = positions
        .iter()
        .map(|&p| p + 1 - kv.window().first_visible(p))
        .max()
        .unwrap_or(0);
    // Decode buffers are sized by the cache so a growing context never reallocates them.
    let max_keys = visible.max(kv.n_cells());
    let n_rows = positions.len();
    let row_len = shape.n_head * hd;
    let out = &mut out[..n_rows * row_len];
    if n_rows == 1 {
        // Decode: one task per key/value head, each reading its cached rows once.
        scratch.prepare(pool.n_threads(), 1, group, hd, max_keys);
        pool.for_chunks_mut_with(out, group * hd, &mut scratch.threads, |acc, c, th| {
            let (t, kv_head) = (c / shape.n_head_kv, c % shape.n_head_kv);
            let row = &q[t * row_len..(t + 1) * row_len];
            let query = &row[kv_head * group * hd..(kv_head + 1) * group * hd];
            attend_group(query, positions[t], kv, shape, kv_head, acc, th);
        });
        return;
    }
    // Prefill: one task per block of query rows (all heads), so each cached row is
    // converted once per block rather than once per query row.
    // A block's rows see at most `visible` keys each, and their union spans `rows` more.
    let span = visible + ROWS_PER_TASK;
    let rows = (SCORES_PER_TASK / (group * span).max(1)).clamp(1, ROWS_PER_TASK);
    scratch.prepare(pool.n_threads(), rows, group, hd, span);
    pool.for_chunks_mut_with(out, rows * row_len, &mut scratch.threads, |acc, c, th| {
        let first = c * rows;
        let n = acc.len() / row_len;
        let block = Block {
            q: &q[first * row_len..(first + n) * row_len],
            positions: &positions[first..first + n],
        };
        for kv_head in 0..shape.n_head_kv {
            attend_block(&block, kv, shape, kv_head, acc, th);
        }
    });
}

/// Query rows attended together: their queries (all heads) and positions.
struct Block<'a> {
    q: &'a [f32],
    positions: &'a [usize],
}

/// [`attend_group`] for every row of `block` at once: cached rows of the union of their
/// windows are converted once and used by each row that sees them. Per row and head the
/// arithmetic (and its order) is exactly [`attend_group`]'s.
fn attend_block(
    block: &Block<'_>,
    kv: &KvLayer,
    shape: AttentionShape,
    kv_head: usize,
    acc: &mut [f32],
    th: &mut ThreadScratch,
) {
    let hd = shape.head_dim;
    let group = shape.n_head / shape.n_head_kv;
    let row_len = shape.n_head * hd;
    let n_rows = block.positions.len();
    let round_f16 = kv.ty() == KvType::F16;
    let window = kv.window();
    let seen = |t: usize| window.first_visible(block.positions[t])..block.positions[t] + 1;
    let lo = (0..n_rows).map(|t| seen(t).start).min().unwrap_or(0);
    let hi = (0..n_rows).map(|t| seen(t).end).max().unwrap_or(0);
    let n_keys = hi - lo;
    // Queries of this head group, rounded to f16 with an f16 cache, as ggml does.
    let qs = &mut th.query[..n_rows * group * hd];
    for t in 0..n_rows {
        let src = &block.q[t * row_len + kv_head * group * hd..][..group * hd];
        qs[t * group * hd..(t + 1) * group * hd].copy_from_slice(src);
    }
    if round_f16 {
        round_to_f16(qs);
    }
    let scores = &mut th.scores[..n_rows * group * n_keys];
    let windows = &mut th.windows;
    windows.clear();
    windows.extend((0..n_rows).map(seen));
    // When each row's window starts and ends no earlier than the previous row's (causal
    // rows in order, under every window kind), the rows that see a key are one run,
    // found by two cursors that only move forward.
    let forward = windows
        .windows(2)
        .all(|w| w[0].start <= w[1].start && w[0].end <= w[1].end);
    let (mut first_seeing, mut past_seeing) = (0, 0);
    for p in lo..hi {
        let key = kv.key_head(p, kv_head * hd, hd).to_f32(&mut th.row);
        // The rows that see `p`, a run of consecutive rows at a time: their query heads are
        // contiguous in `qs`, so one call scores the key against all of them.
        let mut score_run = |t: usize, end: usize| {
            let (first, last) = (t * group, end * group);
            let out = &mut scores[first * n_keys + (p - lo)..];
            float_ops::dot_rows(key, &qs[first * hd..last * hd], shape.scale, out, n_keys);
        };
        if forward {
            while first_seeing < n_rows && windows[first_seeing].end <= p {
                first_seeing += 1;
            }
            while past_seeing < n_rows && windows[past_seeing].start <= p {
                past_seeing += 1;
            }
            if first_seeing < past_seeing {
                score_run(first_seeing, past_seeing);
            }
            continue;
        }
        let mut t = 0;
        while t < n_rows {
            if !windows[t].contains(&p) {
                t += 1;
                continue;
            }
            let end = (t..n_rows)
                .find(|&u| !windows[u].contains(&p))
                .unwrap_or(n_rows);
            score_run(t, end);
            t = end;
        }
    }
    for t in 0..n_rows {
        let r = seen(t);
        for g in 0..group {
            let row = &mut scores[(t * group + g) * n_keys..(t * group + g + 1) * n_keys];
            let weights = &mut row[r.start - lo..r.end - lo];
            softmax(weights);
            if round_f16 {
                round_to_f16(weights);
            }
        }
        acc[t * row_len + kv_head * group * hd..][..group * hd].fill(0.0);
    }
    // Weighted sum of the values, a chunk of cached rows at a time; every output element
    // still adds its terms in position order.
    for c0 in (lo..hi).step_by(VALUE_CHUNK) {
        let c1 = (c0 + VALUE_CHUNK).min(hi);
        convert_values(kv, kv_head, hd, c0..c1, &mut th.row, &mut th.values);
        for t in 0..n_rows {
            let r = seen(t);
            let (a, b) = (r.start.max(c0), r.end.min(c1));
            if a >= b {
                continue;
            }
            let out = &mut acc[t * row_len + kv_head * group * hd..][..group * hd];
            for (g, o) in out.chunks_exact_mut(hd).enumerate() {
                let row = (t * group + g) * n_keys;
                let weights = &scores[row + (a - lo)..row + (b - lo)];
                float_ops::axpy_rows(o, weights, &th.values[(a - c0) * hd..], hd);
            }
        }
    }
}

/// Converts the value heads of `kv_head` at `positions` into `values`, one after another
/// (`row`: a conversion buffer of [`HeadRef::buffer_len`]).
fn convert_values(
    kv: &KvLayer,
    kv_head: usize,
    hd: usize,
    positions: std::ops::Range<usize>,
    row: &mut [f32],
    values: &mut [f32],
) {
    let start = positions.start;
    for p in positions {
        let value = kv.value_head(p, kv_head * hd, hd).to_f32(row);
        values[(p - start) * hd..][..hd].copy_from_slice(value);
    }
}

fn attend_group(
    query: &[f32],
    pos: usize,
    kv: &KvLayer,
    shape: AttentionShape,
    kv_head: usize,
    acc: &mut [f32],
    th: &mut ThreadScratch,
) {
    let hd = shape.head_dim;
    let group = query.len() / hd;
    let round_f16 = kv.ty() == KvType::F16;
    let seen = kv.window().first_visible(pos)..pos + 1;
    let n = seen.len();
    let q = &mut th.query[..group * hd];
    q.copy_from_slice(query);
    if round_f16 {
        round_to_f16(q);
    }
    // Scores: each key is read (and converted) once for the whole group.
    let scores = &mut th.scores[..group * n];
    for (i, p) in seen.clone().enumerate() {
        let key = kv.key_head(p, kv_head * hd, hd).to_f32(&mut th.row);
        float_ops::dot_rows(key, q, shape.scale, &mut scores[i..], n);
    }
    for weights in scores.chunks_exact_mut(n) {
        softmax(weights);
        if round_f16 {
            round_to_f16(weights);
        }
    }
    // Weighted sum of the values, accumulated in position order for every element, a
    // chunk of cached rows at a time.
    acc.fill(0.0);
    for c0 in seen.clone().step_by(VALUE_CHUNK) {
        let c1 = (c0 + VALUE_CHUNK).min(seen.end);
        convert_values(kv, kv_head, hd, c0..c1, &mut th.row, &mut th.values);
        for (g, a) in acc.chunks_exact_mut(hd).enumerate() {
            let i = g * n + (c0 - seen.start);
            float_ops::axpy_rows(a, &scores[i..i + (c1 - c0)], &th.values, hd);
        }
    }
}

/// Rounds every element to the nearest f16 (ties to even), as `f16::from_f32(x).to_f32()`,
/// converting 64 at a time with the CPU's f16 instructions where it has them.
fn round_to_f16(x: &mut [f32]) {
    let mut halves = [f16::ZERO; 64];
    for chunk in x.chunks_mut(64) {
        let h = &mut halves[..chunk.len()];
        h.convert_from_f32_slice(chunk);
        h.convert_to_f32_slice(chunk);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv_cache::{KvCache, KvLayerSpec, KvWindow};
    use crate::ops::DEFAULT_IDLE_SPIN;

    /// Deterministic values in about [-2, 2).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (s >> 40) as f32 / (1u64 << 22) as f32 - 2.0
            })
            .collect()
    }

    /// Attention the plain way: per row and query head, copy the visible keys and values
    /// out of the cache, score, softmax, sum (ggml's f16 rounding for an f16 cache).
    fn reference(q: &[f32], positions: &[usize], kv: &KvLayer, shape: AttentionShape) -> Vec<f32> {
        let (hd, group) = (shape.head_dim, shape.n_head / shape.n_head_kv);
        let round = |x: f32| {
            if kv.ty() == KvType::F16 {
                f16::from_f32(x).to_f32()
            } else {
                x
            }
        };
        let mut out = vec![0.0; positions.len() * shape.n_head * hd];
        for (t, &pos) in positions.iter().enumerate() {
            for h in 0..shape.n_head {
                let off = (h / group) * hd;
                let at = (t * shape.n_head + h) * hd;
                let query: Vec<f32> = q[at..at + hd].iter().map(|&x| round(x)).collect();
                let seen: Vec<usize> = (kv.window().first_visible(pos)..=pos).collect();
                let mut key = vec![0.0; hd];
                let mut scores: Vec<f32> = seen
                    .iter()
                    .map(|&p| {
                        kv.key(p, off, &mut key);
                        // Eight running sums over the lanes, then the tail.
                        let mut lanes = [0.0f32; 8];
                        let whole = hd / 8 * 8;
                        for i in 0..whole {
                            lanes[i % 8] += query[i] * key[i];
                        }
                        let tail: f32 = (whole..hd).map(|i| query[i] * key[i]).sum();
                        (lanes.iter().sum::<f32>() + tail) * shape.scale
                    })
                    .collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0f64;
                for s in &mut scores {
                    *s = (*s - max).exp();
                    sum += f64::from(*s);
                }
                let inv = (1.0 / sum) as f32;
                let mut value = vec![0.0; hd];
                for (&p, s) in seen.iter().zip(&scores) {
                    kv.value(p, off, &mut value);
                    let w = round(s * inv);
                    for (o, v) in out[at..at + hd].iter_mut().zip(&value) {
                        *o += w * v;
                    }
                }
            }
        }
        out
    }

    /// A one-layer cache of `ty` holding positions `0..n_pos`.
    fn cache(ty: KvType, window: KvWindow, row_len: usize, n_ctx: usize, n_pos: usize) -> KvCache {
        let spec = KvLayerSpec { row_len, window };
        let mut kv = KvCache::new(ty, &[spec], n_ctx, 4).unwrap();
        for p in 0..n_pos {
            let k = values(row_len, 2 * p as u64 + 1);
            let v = values(row_len, 2 * p as u64 + 2);
            kv.layers[0].store(p, &k, &v).unwrap();
        }
        kv
    }

    #[test]
    fn equals_the_reference_for_every_cache_type_and_window() {
        let pools = [
            ThreadPool::new(1, DEFAULT_IDLE_SPIN).unwrap(),
            ThreadPool::new(3, DEFAULT_IDLE_SPIN).unwrap(),
        ];
        // (heads, kv heads, head_dim): Q8_0 heads at offsets that are and are not whole
        // blocks, a head_dim with a tail past the eight lanes.
        let shapes: [(usize, usize, usize); 3] = [(6, 2, 64), (8, 4, 40), (4, 4, 36)];
        for ty in [KvType::F32, KvType::F16, KvType::Q8_0] {
            for (n_head, n_head_kv, head_dim) in shapes {
                let row_len = n_head_kv * head_dim;
                if ty == KvType::Q8_0 && !row_len.is_multiple_of(32) {
                    continue;
                }
                let shape = AttentionShape {
                    n_head,
                    n_head_kv,
                    head_dim,
                    scale: 1.0 / (head_dim as f32).sqrt(),
                };
                // Whole context (a prefill of a few rows, then one decoded row; again past
                // two chunks of converted values), a chunked window whose rows straddle a
                // chunk boundary (their windows start apart), rows out of order, and a
                // chunked ring of 12 cells that has wrapped around.
                let cases = [
                    (KvWindow::Full, 40, 23, vec![19, 20, 21, 22]),
                    (KvWindow::Full, 40, 23, vec![22]),
                    (
                        KvWindow::Full,
                        300,
                        290,
                        (120..130).chain(280..290).collect(),
                    ),
                    (KvWindow::Full, 300, 290, vec![289]),
                    (KvWindow::Chunked(8), 40, 23, vec![20, 21, 22]),
                    (KvWindow::Chunked(8), 40, 18, vec![13, 14, 15, 16, 17]),
                    (KvWindow::Full, 40, 23, vec![22, 13, 17, 20, 9]),
                    (KvWindow::Chunked(8), 40, 23, vec![22, 16, 19, 17]),
                    (KvWindow::Chunked(8), 40, 31, vec![30]),
                ];
                for (window, n_ctx, n_pos, positions) in cases {
                    let kv = cache(ty, window, row_len, n_ctx, n_pos);
                    let layer = &kv.layers[0];
                    let q = values(positions.len() * n_head * head_dim, 77);
                    let want = reference(&q, &positions, layer, shape);
                    for pool in &pools {
                        let mut scratch = AttentionScratch::default();
                        let mut out = vec![f32::NAN; want.len()];
                        for _ in 0..2 {
                            attention(&q, &positions, layer, shape, &mut out, &mut scratch, pool);
                            let same = out
                                .iter()
                                .zip(&want)
                                .all(|(a, b)| a.to_bits() == b.to_bits());
                            assert!(
                                same,
                                "{ty} {window:?} {positions:?} heads {n_head}/{n_head_kv}x{head_dim}"
                            );
                        }
                    }
                }
            }
        }
    }
}
