//! The vision forward pass, one tile at a time (spec §5.3): patch embedding, class token and
//! learned positions, pre-LayerNorm blocks with 2-D RoPE and bidirectional attention, the
//! post-LayerNorm, pixel shuffle, the adapter MLP and the projector into text space.

use crate::error::{try_vec, Error, Result};
use crate::generate::CancelHandle;
use crate::ops::{
    add_assign, add_bias, bidirectional_attention, gelu, layer_norm, ActivationScratch,
    Activations, BidirectionalScratch,
};

use super::model::{VisionBlock, VisionModel};
use super::preprocess::PixelTensor;

/// The projected embeddings of one image: `tokens_per_tile` rows of `n_embd` per tile, the
/// grid's tiles row-major, then the global tile — the rows that replace the image's
/// `<|patch|>` positions, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageEmbeddings {
    /// The rows, back to back.
    pub data: Vec<f32>,
    /// Width of a row (the text model's `n_embd`).
    pub n_embd: usize,
    /// Rows per tile.
    pub tokens_per_tile: usize,
    /// Rows and columns of the tile grid.
    pub grid: (usize, usize),
    /// Whether the global tile's rows follow the grid's.
    pub has_global: bool,
}

impl ImageEmbeddings {
    /// Number of rows (positions the image takes in a prompt, separators aside).
    pub fn n_rows(&self) -> usize {
        self.data.len() / self.n_embd.max(1)
    }

    /// The rows of tile `i`.
    pub fn tile(&self, i: usize) -> &[f32] {
        let n = self.tokens_per_tile * self.n_embd;
        &self.data[i * n..(i + 1) * n]
    }
}

/// Buffers of one tile's pass, sized once per encode.
struct TileBuffers {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    ff: Vec<f32>,
    acts: ActivationScratch,
    attention: BidirectionalScratch,
}

impl VisionModel {
    /// Encodes every tile of `pixels` into projected embeddings, on this model's threads.
    /// Checks `cancel` between blocks.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] when the tiles are not this tower's size,
    /// [`crate::ErrorKind::Cancelled`] when `cancel` fires, [`crate::ErrorKind::OutOfMemory`].
    pub fn encode(&self, pixels: &PixelTensor, cancel: &CancelHandle) -> Result<ImageEmbeddings> {
        self.encode_with_progress(pixels, cancel, &mut |_, _| {})
    }

    /// [`encode`](Self::encode), calling `progress(tiles_done, n_tiles)` after each tile.
    pub fn encode_with_progress(
        &self,
        pixels: &PixelTensor,
        cancel: &CancelHandle,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImageEmbeddings> {
        let hp = &self.hp;
        let tile_len = 3 * hp.image_size * hp.image_size;
        if pixels.tile_size != hp.image_size || pixels.data.len() != pixels.n_tiles() * tile_len {
            return Err(Error::InvalidArgument(format!(
                "pixel tensor has {}-pixel tiles; this vision model takes {} (preprocess with \
                 its preprocess_options)",
                pixels.tile_size, hp.image_size
            )));
        }
        let n_tiles = pixels.n_tiles();
        let per_tile = hp.tokens_per_tile() * hp.n_out;
        let mut data = try_vec(n_tiles * per_tile, 0.0f32, "image embeddings")?;
        let mut bufs = self.tile_buffers()?;
        for (i, out) in data.chunks_exact_mut(per_tile).enumerate() {
            self.encode_tile(pixels.tile(i), &mut bufs, out, cancel)?;
            progress(i + 1, n_tiles);
        }
        Ok(ImageEmbeddings {
            data,
            n_embd: hp.n_out,
            tokens_per_tile: hp.tokens_per_tile(),
            grid: pixels.grid,
            has_global: pixels.has_global,
        })
    }

    fn tile_buffers(&self) -> Result<TileBuffers> {
        let hp = &self.hp;
        let n = hp.n_positions();
        let c = hp.n_embd;
        let wide = (n * hp.n_ff)
            .max(hp.tokens_per_tile() * (c * hp.merge * hp.merge + hp.n_adapter))
            .max(n * 3 * hp.patch_size * hp.patch_size);
        let buf = |len: usize| try_vec(len, 0.0f32, "vision activations");
        Ok(TileBuffers {
            x: buf(n * c)?,
            h: buf(n * c.max(hp.n_adapter))?,
            q: buf(n * c)?,
            k: buf(n * c)?,
            v: buf(n * c)?,
            attn: buf(n * c)?,
            ff: buf(wide)?,
            acts: ActivationScratch::default(),
            attention: BidirectionalScratch::default(),
        })
    }

    /// One tile (`3 × S × S` pixels) into `out` (`tokens_per_tile × n_out`).
    fn encode_tile(
        &self,
        tile: &[f32],
        b: &mut TileBuffers,
        out: &mut [f32],
        cancel: &CancelHandle,
    ) -> Result<()> {
        let hp = &self.hp;
        let (w, pool) = (&self.w, &*self.pool);
        let file = self.file.as_bytes();
        let (n, c) = (hp.n_positions(), hp.n_embd);
        let n_patch = n - 1;

        // Patch embedding: rows of 3·p·p pixels (channel, row, column) times the kernel.
        let patch_len = 3 * hp.patch_size * hp.patch_size;
        let patches = &mut b.ff[..n_patch * patch_len];
        unfold_patches(tile, hp.image_size, hp.patch_size, patches);
        Activations::new(patches, patch_len, &mut b.acts).matmul(
            &w.patch.weight(file),
            &mut b.x[..n_patch * c],
            pool,
        )?;
        b.x[n_patch * c..].copy_from_slice(&w.class);
        add_assign(&mut b.x, &w.pos);
        layer_norm(&mut b.x, &w.pre_ln_w, &w.pre_ln_b, hp.eps, pool);

        for block in &w.blocks {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled { evaluated: 0 });
            }
            self.block(block, b)?;
        }
        layer_norm(&mut b.x, &w.post_ln_w, &w.post_ln_b, hp.eps, pool);

        // Pixel shuffle of the patch rows (class token dropped), then adapter and projector.
        let shuffled_len = c * hp.merge * hp.merge;
        let n_tok = hp.tokens_per_tile();
        let (shuffled, rest) = b.ff.split_at_mut(n_tok * shuffled_len);
        pixel_shuffle(
            &b.x[..n_patch * c],
            hp.patches_per_side(),
            c,
            hp.merge,
            shuffled,
        );
        let hidden = &mut rest[..n_tok * hp.n_adapter];
        Activations::new(shuffled, shuffled_len, &mut b.acts).matmul(
            &w.adapter_1.weight(file),
            hidden,
            pool,
        )?;
        gelu(hidden, pool);
        let hidden2 = &mut b.h[..n_tok * hp.n_adapter];
        Activations::new(hidden, hp.n_adapter, &mut b.acts).matmul(
            &w.adapter_2.weight(file),
            hidden2,
            pool,
        )?;
        gelu(hidden2, pool);
        Activations::new(hidden2, hp.n_adapter, &mut b.acts).matmul(
            &w.projector.weight(file),
            out,
            pool,
        )?;
        Ok(())
    }

    /// `x += attn(LN1(x)); x += mlp(LN2(x))`.
    fn block(&self, blk: &VisionBlock, b: &mut TileBuffers) -> Result<()> {
        let hp = &self.hp;
        let pool = &*self.pool;
        let file = self.file.as_bytes();
        let (n, c) = (hp.n_positions(), hp.n_embd);
        let h = &mut b.h[..n * c];
        h.copy_from_slice(&b.x);
        layer_norm(h, &blk.ln1_w, &blk.ln1_b, hp.eps, pool);
        {
            let mut acts = Activations::new(h, c, &mut b.acts);
            acts.matmul(&blk.q.weight(file), &mut b.q, pool)?;
            acts.matmul(&blk.k.weight(file), &mut b.k, pool)?;
            acts.matmul(&blk.v.weight(file), &mut b.v, pool)?;
        }
        add_bias(&mut b.q, &blk.q_b);
        add_bias(&mut b.k, &blk.k_b);
        add_bias(&mut b.v, &blk.v_b);
        self.apply_rope(&mut b.q);
        self.apply_rope(&mut b.k);
        bidirectional_attention(
            &b.q,
            &b.k,
            &b.v,
            n,
            hp.n_head,
            hp.head_dim(),
            &mut b.attn,
            &mut b.attention,
            pool,
        )?;
        Activations::new(&b.attn, c, &mut b.acts).matmul(&blk.o.weight(file), h, pool)?;
        add_bias(h, &blk.o_b);
        add_assign(&mut b.x, h);

        h.copy_from_slice(&b.x);
        layer_norm(h, &blk.ln2_w, &blk.ln2_b, hp.eps, pool);
        let ff = &mut b.ff[..n * hp.n_ff];
        Activations::new(h, c, &mut b.acts).matmul(&blk.up.weight(file), ff, pool)?;
        add_bias(ff, &blk.up_b);
        gelu(ff, pool);
        Activations::new(ff, hp.n_ff, &mut b.acts).matmul(&blk.down.weight(file), h, pool)?;
        add_bias(h, &blk.down_b);
        add_assign(&mut b.x, h);
        Ok(())
    }

    /// Rotates each head of each position's row by the vision RoPE table (adjacent pairs).
    fn apply_rope(&self, x: &mut [f32]) {
        let hp = &self.hp;
        let (c, hd) = (hp.n_embd, hp.head_dim());
        let n_pairs = hd / 2;
        self.pool.for_rows(x, c, |rows, first| {
            for (r, row) in rows.chunks_exact_mut(c).enumerate() {
                let angles = &self.rope[(first + r) * n_pairs..][..n_pairs];
                for head in row.chunks_exact_mut(hd) {
                    for (pair, &(cos, sin)) in head.chunks_exact_mut(2).zip(angles) {
                        let (a, b) = (pair[0], pair[1]);
                        pair[0] = a * cos - b * sin;
                        pair[1] = a * sin + b * cos;
                    }
                }
            }
        });
    }
}

/// Cuts a `3 × S × S` tile into `(S/p)²` rows of `3·p·p` (channel-major, then row, then
/// column: torch's `Unfold` order), patches row-major.
fn unfold_patches(tile: &[f32], size: usize, p: usize, out: &mut [f32]) {
    let side = size / p;
    let patch_len = 3 * p * p;
    for (i, row) in out.chunks_exact_mut(patch_len).enumerate() {
        let (py, px) = (i / side, i % side);
        for ch in 0..3 {
            for r in 0..p {
                let src = &tile[(ch * size + py * p + r) * size + px * p..][..p];
                row[(ch * p + r) * p..][..p].copy_from_slice(src);
            }
        }
    }
}

/// Merges each `merge × merge` block of the `side × side` grid of `c`-wide rows into one row
/// (transformers' `pixel_shuffle` order): output row `Y·(side/merge) + X` is the
/// concatenation, for `dy` then `dx`, of input row `(merge·Y + dy)·side + merge·X + dx`.
fn pixel_shuffle(x: &[f32], side: usize, c: usize, merge: usize, out: &mut [f32]) {
    let out_side = side / merge;
    let row_len = c * merge * merge;
    for (t, row) in out.chunks_exact_mut(row_len).enumerate() {
        let (oy, ox) = (t / out_side, t % out_side);
        for dy in 0..merge {
            for dx in 0..merge {
                let p = (merge * oy + dy) * side + merge * ox + dx;
                row[(dy * merge + dx) * c..][..c].copy_from_slice(&x[p * c..][..c]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_shuffle_matches_the_spec_map() {
        // 4×4 grid of 1-wide rows valued by index; merge 2 → 4 rows of 4.
        let x: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let mut out = vec![0.0; 16];
        pixel_shuffle(&x, 4, 1, 2, &mut out);
        assert_eq!(
            out,
            [0., 1., 4., 5., 2., 3., 6., 7., 8., 9., 12., 13., 10., 11., 14., 15.]
        );
    }

    #[test]
    fn unfold_orders_channel_row_column() {
        // 2×2 tile, patch 1: patch i holds the three channels of pixel i.
        let tile: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let mut out = vec![0.0; 12];
        unfold_patches(&tile, 2, 1, &mut out);
        assert_eq!(&out[..6], [0., 4., 8., 1., 5., 9.]);
    }
}
