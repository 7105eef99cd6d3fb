//! Whisper's audio encoder: two conv1d (kernel 3, stride 1 then 2) with GELU as im2col
//! matmuls, sinusoidal positions, pre-LayerNorm blocks with bidirectional attention, and the
//! final LayerNorm.

use crate::error::{try_resize, Error, Result};
use crate::generate::CancelHandle;
use crate::ops::{
    add_assign, add_bias, bidirectional_attention, gelu, layer_norm, ActivationScratch,
    Activations, BidirectionalScratch,
};

use super::layers::Residual;
use super::model::{Block, WhisperModel};

/// The encoder's output for one 30-second window: `n_ctx` rows of `n_embd`.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderOutput {
    /// Rows (1500 for a full window).
    pub n_ctx: usize,
    /// Width of a row.
    pub n_embd: usize,
    /// The rows, back to back.
    pub data: Vec<f32>,
}

impl EncoderOutput {
    /// Row `i` (panics when `i >= n_ctx`, as slice indexing does).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n_embd..][..self.n_embd]
    }
}

/// Activations of one encoder pass, kept by the model between passes (see
/// [`WhisperModel::encode_positions`]) so that an utterance does not fault in fresh pages.
#[derive(Default)]
pub(super) struct EncoderBuffers {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    /// The MLP's hidden rows; also the im2col rows of the convolutions.
    wide: Vec<f32>,
    /// conv1's output, `n_frames × d`.
    conv: Vec<f32>,
    acts: ActivationScratch,
    attention: BidirectionalScratch,
}

impl WhisperModel {
    /// Runs the encoder on one window of log-mel frames: `n_mels` rows of
    /// [`n_window_frames`](super::WhisperHparams::n_window_frames) values (as
    /// [`LogMel::window`](super::LogMel::window) cuts them). Checks `cancel` between blocks.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] for a window of the wrong size,
    /// [`crate::ErrorKind::Cancelled`], [`crate::ErrorKind::OutOfMemory`].
    pub fn encode(&self, mel_window: &[f32], cancel: &CancelHandle) -> Result<EncoderOutput> {
        self.encode_positions(mel_window, self.hp.n_audio_ctx, cancel)
    }

    /// [`encode`](Self::encode) over the first `n_ctx` positions only (each covers two mel
    /// frames, 20 ms): the convolutions see the same frames as for the whole window, the
    /// attention only these positions, with the first rows of the position table
    /// (whisper.cpp's `audio_ctx`). Costs less than the whole window in proportion (the
    /// attention in its square) but is not what Whisper was trained on: see
    /// [`EncoderFrames`](super::EncoderFrames).
    ///
    /// # Errors
    /// As [`encode`](Self::encode), and [`crate::ErrorKind::InvalidArgument`] for `n_ctx`
    /// of 0 or beyond the model's `n_audio_ctx`.
    pub fn encode_positions(
        &self,
        mel_window: &[f32],
        n_ctx: usize,
        cancel: &CancelHandle,
    ) -> Result<EncoderOutput> {
        let hp = &self.hp;
        let n_frames = hp.n_window_frames();
        if mel_window.len() != hp.n_mels * n_frames {
            return Err(Error::InvalidArgument(format!(
                "an encoder window holds {} × {n_frames} mel values, not {}",
                hp.n_mels,
                mel_window.len()
            )));
        }
        if n_ctx == 0 || n_ctx > hp.n_audio_ctx {
            return Err(Error::InvalidArgument(format!(
                "the encoder runs over 1..={} positions, not {n_ctx}",
                hp.n_audio_ctx
            )));
        }
        let (w, pool) = (&self.w, &*self.pool);
        let file = self.file.as_bytes();
        let (n, d) = (n_ctx, hp.n_audio_embd);
        let mut b = self.encoder_buffers(n)?;

        // conv1: stride 1, padding 1, over the mel rows (the 2n frames that conv2 reads,
        // their neighbours taken from the whole window).
        let cols1 = &mut b.wide[..2 * n * 3 * hp.n_mels];
        im2col(
            mel_window,
            hp.n_mels,
            n_frames,
            1,
            Layout::ChannelMajor,
            cols1,
        );
        Activations::new(cols1, 3 * hp.n_mels, &mut b.acts).matmul(
            &w.conv1.weight(file),
            &mut b.conv,
            pool,
        )?;
        add_bias(&mut b.conv, &w.conv1_b);
        gelu(&mut b.conv, pool);
        // conv2: stride 2, padding 1, over conv1's rows (time major).
        let cols2 = &mut b.wide[..n * 3 * d];
        im2col(&b.conv, d, 2 * n, 2, Layout::TimeMajor, cols2);
        Activations::new(cols2, 3 * d, &mut b.acts).matmul(
            &w.conv2.weight(file),
            &mut b.x,
            pool,
        )?;
        add_bias(&mut b.x, &w.conv2_b);
        gelu(&mut b.x, pool);
        add_assign(&mut b.x, &w.enc_pos[..n * d]);

        for block in &w.enc_blocks {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled { evaluated: 0 });
            }
            self.encoder_block(block, &mut b)?;
        }
        layer_norm(&mut b.x, &w.ln_post_w, &w.ln_post_b, hp.eps, pool);
        let data = std::mem::take(&mut b.x);
        self.keep_encoder_buffers(b);
        Ok(EncoderOutput {
            n_ctx: n,
            n_embd: d,
            data,
        })
    }

    /// Buffers for a pass over `n` positions (`2n` mel frames): the model's kept ones when no
    /// other pass holds them, resized (growing allocates only past their capacity).
    fn encoder_buffers(&self, n: usize) -> Result<EncoderBuffers> {
        let hp = &self.hp;
        let d = hp.n_audio_embd;
        let n_frames = 2 * n;
        let wide = (n * hp.n_ff).max(n_frames * 3 * hp.n_mels).max(n * 3 * d);
        let kept = self
            .encoder_scratch
            .try_lock()
            .ok()
            .and_then(|mut slot| slot.take());
        let mut b = kept.unwrap_or_default();
        const WHAT: &str = "whisper encoder activations";
        for v in [
            &mut b.x,
            &mut b.h,
            &mut b.q,
            &mut b.k,
            &mut b.v,
            &mut b.attn,
        ] {
            try_resize(v, n * d, 0.0, WHAT)?;
        }
        try_resize(&mut b.wide, wide, 0.0, WHAT)?;
        try_resize(&mut b.conv, n_frames * d, 0.0, WHAT)?;
        Ok(b)
    }

    /// Keeps `b` for the next pass (unless another pass already put its own back).
    fn keep_encoder_buffers(&self, b: EncoderBuffers) {
        if let Ok(mut slot) = self.encoder_scratch.try_lock() {
            slot.get_or_insert(b);
        }
    }

    /// `x += attn(attn_ln(x)); x += mlp(mlp_ln(x))`.
    fn encoder_block(&self, blk: &Block, b: &mut EncoderBuffers) -> Result<()> {
        let hp = &self.hp;
        let d = hp.n_audio_embd;
        let n = b.x.len() / d;
        let mut r = Residual {
            x: &mut b.x,
            h: &mut b.h,
            acts: &mut b.acts,
        };
        self.pre_norm(&mut r, &blk.attn_ln_w, &blk.attn_ln_b);
        self.project_qkv(&blk.attn, &mut r, &mut b.q, &mut b.k, &mut b.v)?;
        bidirectional_attention(
            &b.q,
            &b.k,
            &b.v,
            n,
            hp.n_audio_head,
            d / hp.n_audio_head,
            &mut b.attn,
            &mut b.attention,
            &self.pool,
        )?;
        self.add_attention_output(&blk.attn, &b.attn, &mut r)?;
        self.add_mlp(blk, &mut r, &mut b.wide[..n * hp.n_ff])
    }
}

/// How a conv input lies in memory.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// `c` rows of `t` values (the mel spectrogram).
    ChannelMajor,
    /// `t` rows of `c` values (a previous layer's output).
    TimeMajor,
}

/// The rows of a kernel-3, padding-1 conv1d with `stride`: output position `o` gets
/// `x[ch][stride·o + k − 1]` at `ch·3 + k` (zero outside the signal), matching a
/// `[c_out, c_in, 3]` kernel read as `c_out` rows of `c_in·3`.
fn im2col(x: &[f32], c: usize, t: usize, stride: usize, layout: Layout, out: &mut [f32]) {
    let value = |ch: usize, pos: usize| match layout {
        Layout::ChannelMajor => x[ch * t + pos],
        Layout::TimeMajor => x[pos * c + ch],
    };
    for (o, row) in out.chunks_exact_mut(3 * c).enumerate() {
        let centre = stride * o;
        for ch in 0..c {
            for k in 0..3 {
                let pos = (centre + k).checked_sub(1).filter(|&p| p < t);
                row[ch * 3 + k] = pos.map_or(0.0, |p| value(ch, p));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn im2col_pads_and_strides() {
        // 2 channels × 4 steps, channel major: ch0 = 1..4, ch1 = 10..40.
        let x = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
        let mut out = vec![0.0; 2 * 6];
        im2col(&x, 2, 4, 2, Layout::ChannelMajor, &mut out);
        assert_eq!(
            out,
            [0.0, 1.0, 2.0, 0.0, 10.0, 20.0, 2.0, 3.0, 4.0, 20.0, 30.0, 40.0]
        );
        // The same signal time major gives the same rows.
        let xt = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
        let mut out_t = vec![0.0; 2 * 6];
        im2col(&xt, 2, 4, 2, Layout::TimeMajor, &mut out_t);
        assert_eq!(out, out_t);
    }
}
