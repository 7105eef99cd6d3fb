//! Whisper's text decoder, one token at a time: token plus learned position, causal
//! self-attention over a KV cache, cross-attention over the encoder output (its K/V computed
//! once per window), the MLP, the final LayerNorm and the tied output projection.

use fennec_quant::float_ops::{self, dot};

use crate::error::{try_vec, Error, Result};
use crate::ops::{
    add_assign, add_bias, exp_approx, layer_norm, ActivationScratch, Activations, ThreadPool,
};

use super::encoder::EncoderOutput;
use super::layers::Residual;
use super::model::WhisperModel;

/// One decoder layer's cached keys and values: self-attention (one row per position fed so
/// far) and cross-attention (fixed for the window, laid out head by head so that each
/// head's pass over the encoder positions reads memory in order).
struct LayerCache {
    self_k: Vec<f32>,
    self_v: Vec<f32>,
    /// Per head, `hd` rows of `n_audio`: the keys transposed.
    cross_kt: Vec<f32>,
    /// Per head, `n_audio` rows of `hd`.
    cross_v: Vec<f32>,
}

/// The decoder's state for one window: caches and every buffer a step needs, allocated
/// once, so feeding a token allocates nothing.
pub struct DecoderState<'m> {
    model: &'m WhisperModel,
    layers: Vec<LayerCache>,
    /// Encoder positions the cross-attention reads.
    n_audio: usize,
    /// Tokens fed so far (the next token's position).
    n_past: usize,
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    ff: Vec<f32>,
    /// Attention weights: one row of `max(n_text_ctx, n_audio)` per pool thread.
    scores: Vec<Vec<f32>>,
    logits: Vec<f32>,
    acts: ActivationScratch,
}

impl std::fmt::Debug for DecoderState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecoderState")
            .field("n_past", &self.n_past)
            .field("n_audio", &self.n_audio)
            .finish_non_exhaustive()
    }
}

impl WhisperModel {
    /// A decoder for the window `enc` encodes: computes every layer's cross-attention keys
    /// and values from it (the costly part, once per window) and sizes the caches.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] when `enc` is not this model's width,
    /// [`crate::ErrorKind::OutOfMemory`].
    pub fn decoder(&self, enc: &EncoderOutput) -> Result<DecoderState<'_>> {
        let hp = &self.hp;
        let d = hp.n_text_embd;
        if enc.n_embd != d || enc.data.len() != enc.n_ctx * d || enc.n_ctx == 0 {
            return Err(Error::InvalidArgument(format!(
                "encoder output of {} rows of {} does not fit a {d}-wide decoder",
                enc.n_ctx, enc.n_embd
            )));
        }
        let (pool, file) = (&*self.pool, self.file.as_bytes());
        let buf = |len: usize| try_vec(len, 0.0f32, "whisper decoder state");
        let mut acts = ActivationScratch::default();
        let mut layers = Vec::with_capacity(hp.n_text_layer);
        for blk in &self.w.dec_blocks {
            let Some((_, _, cross)) = &blk.cross else {
                return Err(Error::InvalidModel(
                    "whisper: a decoder block has no cross-attention".into(),
                ));
            };
            let (n, n_head) = (enc.n_ctx, hp.n_text_head);
            let mut k = buf(n * d)?;
            let mut v = buf(n * d)?;
            {
                let mut a = Activations::new(&enc.data, d, &mut acts);
                a.matmul(&cross.k.weight(file), &mut k, pool)?;
                a.matmul(&cross.v.weight(file), &mut v, pool)?;
            }
            add_bias(&mut v, &cross.v_b);
            let mut cross_kt = buf(n * d)?;
            let mut cross_v = buf(n * d)?;
            head_major(&k, n, n_head, true, &mut cross_kt);
            head_major(&v, n, n_head, false, &mut cross_v);
            layers.push(LayerCache {
                self_k: buf(hp.n_text_ctx * d)?,
                self_v: buf(hp.n_text_ctx * d)?,
                cross_kt,
                cross_v,
            });
        }
        let n_scores = hp.n_text_ctx.max(enc.n_ctx);
        Ok(DecoderState {
            model: self,
            layers,
            n_audio: enc.n_ctx,
            n_past: 0,
            x: buf(d)?,
            h: buf(d)?,
            q: buf(d)?,
            k: buf(d)?,
            v: buf(d)?,
            attn: buf(d)?,
            ff: buf(hp.n_ff)?,
            scores: (0..pool.n_threads())
                .map(|_| buf(n_scores))
                .collect::<Result<_>>()?,
            logits: buf(hp.n_vocab)?,
            acts,
        })
    }
}

impl DecoderState<'_> {
    /// Tokens fed so far.
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// Forgets the fed tokens (the cross-attention keys stay): decode the same window again.
    pub fn reset(&mut self) {
        self.n_past = 0;
    }

    /// Feeds `token` at the next position and returns the logits of the next token (the
    /// raw scores over the vocabulary, before any suppression).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidToken`] for an id outside the vocabulary,
    /// [`crate::ErrorKind::ContextFull`] past the decoder's context (448 positions).
    pub fn feed(&mut self, token: u32) -> Result<&[f32]> {
        self.forward(token)?;
        let m = self.model;
        let file = m.file.as_bytes();
        layer_norm(&mut self.x, &m.w.ln_w, &m.w.ln_b, m.hp.eps, &m.pool);
        Activations::new(&self.x, m.hp.n_text_embd, &mut self.acts).matmul(
            &m.w.token_embd.weight(file),
            &mut self.logits,
            &m.pool,
        )?;
        Ok(&self.logits)
    }

    /// Feeds `token` without computing logits (a prompt token whose prediction is unused).
    pub fn feed_silent(&mut self, token: u32) -> Result<()> {
        self.forward(token)
    }

    /// Runs every block for `token` at position `n_past`, leaving the residual in `x`.
    fn forward(&mut self, token: u32) -> Result<()> {
        let m = self.model;
        let hp = &m.hp;
        let (d, n_head) = (hp.n_text_embd, hp.n_text_head);
        if token as usize >= hp.n_vocab {
            return Err(Error::InvalidToken {
                id: token,
                n_vocab: hp.n_vocab,
            });
        }
        let pos = self.n_past;
        if pos >= hp.n_text_ctx {
            return Err(Error::ContextFull {
                needed: pos + 1,
                n_ctx: hp.n_text_ctx,
            });
        }
        let (pool, file) = (&*m.pool, m.file.as_bytes());
        m.w.token_embd
            .weight(file)
            .row_to_f32(token as usize, &mut self.x)?;
        add_assign(&mut self.x, &m.w.dec_pos[pos * d..][..d]);
        let hd = d / n_head;
        let scale = 1.0 / (hd as f32).sqrt();
        for (blk, cache) in m.w.dec_blocks.iter().zip(&mut self.layers) {
            let Some((cross_ln_w, cross_ln_b, cross)) = &blk.cross else {
                continue;
            };
            let mut r = Residual {
                x: &mut self.x,
                h: &mut self.h,
                acts: &mut self.acts,
            };
            // Causal self-attention: this position's K/V join the cache.
            m.pre_norm(&mut r, &blk.attn_ln_w, &blk.attn_ln_b);
            m.project_qkv(&blk.attn, &mut r, &mut self.q, &mut self.k, &mut self.v)?;
            cache.self_k[pos * d..][..d].copy_from_slice(&self.k);
            cache.self_v[pos * d..][..d].copy_from_slice(&self.v);
            attend(
                &self.q,
                &cache.self_k[..(pos + 1) * d],
                &cache.self_v[..(pos + 1) * d],
                n_head,
                scale,
                &mut self.scores,
                &mut self.attn,
                pool,
            );
            m.add_attention_output(&blk.attn, &self.attn, &mut r)?;

            // Cross-attention over the window's encoder rows (their K/V cached per window).
            m.pre_norm(&mut r, cross_ln_w, cross_ln_b);
            m.linear(&cross.q, Some(&cross.q_b), r.h, d, &mut self.q, r.acts)?;
            attend_head_major(
                &self.q,
                &cache.cross_kt,
                &cache.cross_v,
                n_head,
                scale,
                &mut self.scores,
                &mut self.attn,
                pool,
            );
            m.add_attention_output(cross, &self.attn, &mut r)?;
            m.add_mlp(blk, &mut r, &mut self.ff)?;
        }
        self.n_past += 1;
        Ok(())
    }
}

/// One query row against `keys`/`values` (rows of `n_head · hd`): per head, softmax of the
/// scaled dot products, then the weighted sum of values, into `out`. Heads run in parallel,
/// each thread's weights in its row of `scores`.
#[allow(clippy::too_many_arguments)]
fn attend(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n_head: usize,
    scale: f32,
    scores: &mut [Vec<f32>],
    out: &mut [f32],
    pool: &ThreadPool,
) {
    let d = q.len();
    let hd = d / n_head;
    let n = keys.len() / d;
    pool.for_chunks_mut_with(out, hd, scores, |o, head, s| {
        let qh = &q[head * hd..][..hd];
        let s = &mut s[..n];
        let mut max = f32::NEG_INFINITY;
        for (j, sj) in s.iter_mut().enumerate() {
            let kh = &keys[j * d + head * hd..][..hd];
            *sj = dot(qh, kh) * scale;
            max = max.max(*sj);
        }
        normalize(s, max);
        o.fill(0.0);
        float_ops::axpy_rows(o, s, &values[head * hd..], d);
    });
}

/// Softmax of scores whose largest is `max`, in place: `e^(s[j] − max)` through
/// [`exp_approx`], each then times the reciprocal of their sum.
fn normalize(s: &mut [f32], max: f32) {
    let mut sum = 0.0f32;
    for sj in s.iter_mut() {
        *sj = exp_approx(*sj - max);
        sum += *sj;
    }
    let inv = 1.0 / sum;
    s.iter_mut().for_each(|w| *w *= inv);
}

/// Rows of `n_head · hd` (`x`, `n` of them) regrouped head by head into `out`: per head
/// `n` rows of `hd` or, `transposed`, `hd` rows of `n`.
fn head_major(x: &[f32], n: usize, n_head: usize, transposed: bool, out: &mut [f32]) {
    let d = x.len() / n.max(1);
    let hd = d / n_head;
    for (j, row) in x.chunks_exact(d).enumerate() {
        for (head, part) in row.chunks_exact(hd).enumerate() {
            let base = head * n * hd;
            if transposed {
                for (c, &v) in part.iter().enumerate() {
                    out[base + c * n + j] = v;
                }
            } else {
                out[base + j * hd..][..hd].copy_from_slice(part);
            }
        }
    }
}

/// [`attend`] over keys and values laid out head by head (see [`head_major`]): per head the
/// scores are `hd` passes of `score += q[c]·kᵀ[c]` over contiguous rows (which vectorize),
/// and the weighted sum reads that head's values in order.
#[allow(clippy::too_many_arguments)]
fn attend_head_major(
    q: &[f32],
    keys_t: &[f32],
    values: &[f32],
    n_head: usize,
    scale: f32,
    scores: &mut [Vec<f32>],
    out: &mut [f32],
    pool: &ThreadPool,
) {
    let d = q.len();
    let hd = d / n_head;
    let n = keys_t.len() / d;
    pool.for_chunks_mut_with(out, hd, scores, |o, head, s| {
        let s = &mut s[..n];
        s.iter_mut().for_each(|v| *v = 0.0);
        let kt = &keys_t[head * hd * n..][..hd * n];
        for (&qc, k_row) in q[head * hd..][..hd].iter().zip(kt.chunks_exact(n)) {
            let qc = qc * scale;
            for (sj, &k) in s.iter_mut().zip(k_row) {
                *sj += qc * k;
            }
        }
        let max = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        normalize(s, max);
        o.fill(0.0);
        float_ops::axpy_rows(o, s, &values[head * n * hd..][..n * hd], hd);
    });
}
