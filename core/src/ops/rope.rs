//! Rotary position embedding as ggml computes it.

use super::ThreadPool;

/// Which element pairs RoPE rotates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// Adjacent pairs `(x[2i], x[2i+1])`: llama.cpp's "normal" mode for llama/llama4.
    Normal,
    /// Halves `(x[i], x[i + n_rot/2])`: GPT-NeoX style.
    Neox,
}

/// RoPE parameters of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    /// Pair layout.
    pub mode: RopeMode,
    /// Dimensions rotated at the start of each head (the rest pass through).
    pub n_rot: usize,
    /// Base frequency θ.
    pub freq_base: f32,
    /// Linear position scale (1 / scaling factor).
    pub freq_scale: f32,
    /// Per-pair frequency divisors (`rope_freqs.weight`), if the model has them.
    pub freq_factors: Option<Vec<f32>>,
}

/// Pairs whose angles are computed at a time, into a buffer on the stack.
const PAIRS_PER_PASS: usize = 64;

impl Rope {
    /// The (cos, sin) of each pair at position `pos`, in ggml's order of computation:
    /// θ starts at `pos` and is multiplied by `base^(-2/n_rot)` from one pair to the next.
    pub fn angles(&self, pos: usize) -> Vec<(f32, f32)> {
        self.angle_iter(pos).collect()
    }

    /// [`angles`](Self::angles) one pair at a time, without a vector.
    fn angle_iter(&self, pos: usize) -> impl Iterator<Item = (f32, f32)> + '_ {
        let theta_scale = self.freq_base.powf(-2.0 / self.n_rot as f32);
        let mut theta = pos as f32;
        (0..self.n_rot / 2).map(move |i| {
            let divisor = self.freq_factors.as_ref().map_or(1.0, |f| f[i]);
            let angle = self.freq_scale * (theta / divisor);
            theta *= theta_scale;
            (angle.cos(), angle.sin())
        })
    }

    /// Rotates each head (of `head_dim`) of each row of `x`; row `t` is at `positions[t]`.
    /// Rows are split across `pool`. Allocates nothing.
    pub fn apply(&self, x: &mut [f32], head_dim: usize, positions: &[usize], pool: &ThreadPool) {
        let row_len = x.len() / positions.len().max(1);
        pool.for_rows(x, row_len, |rows, first| {
            for (row, &pos) in rows.chunks_exact_mut(row_len).zip(&positions[first..]) {
                // The angles of up to PAIRS_PER_PASS pairs at a time serve every head.
                let mut buf = [(0.0f32, 0.0f32); PAIRS_PER_PASS];
                let mut angles = self.angle_iter(pos);
                for first_pair in (0..self.n_rot / 2).step_by(PAIRS_PER_PASS) {
                    let mut n = 0;
                    for (slot, a) in buf.iter_mut().zip(angles.by_ref()) {
                        *slot = a;
                        n += 1;
                    }
                    for head in row.chunks_exact_mut(head_dim) {
                        self.rotate(head, first_pair, &buf[..n]);
                    }
                }
            }
        });
    }

    /// Rotates the pairs `first_pair..first_pair + angles.len()` of `head`.
    fn rotate(&self, head: &mut [f32], first_pair: usize, angles: &[(f32, f32)]) {
        let half = self.n_rot / 2;
        for (k, &(cos, sin)) in angles.iter().enumerate() {
            let i = first_pair + k;
            let (a, b) = match self.mode {
                RopeMode::Normal => (2 * i, 2 * i + 1),
                RopeMode::Neox => (i, i + half),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos - x1 * sin;
            head[b] = x0 * sin + x1 * cos;
        }
    }
}
