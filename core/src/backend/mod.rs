//! The boundary between a forward pass and the hardware it runs on.
//!
//! A forward pass (`llama` today) is written once, as a sequence of operations on an
//! [`Encoder`]: RMS norm, matrix products, RoPE, attention over the KV cache, the SwiGLU
//! feed-forward, residual adds and the output head. The operations name activation buffers
//! ([`Buf`]) rather than memory, so an encoder decides where they live.
//!
//! * The CPU encoder (inside core) runs each operation at once with Fennec's kernels on the
//!   session's own buffers: it is the always-correct path and computes the same bits as
//!   before this boundary existed.
//! * A [`Backend`] outside core (the wgpu GPU backend in `fennec-gpu`) opens a
//!   [`DeviceSession`] per session: it owns its KV storage and its buffers, records the
//!   operations of a micro-batch, and synchronises once, when the logits are read.
//!
//! Nothing here names a GPU API. What stays in core: the model's shape, which weights each
//! step uses, RoPE's angles ([`Rope::angles`]), and which positions a layer sees
//! ([`KvWindow`]) and which cell holds a position (`position % n_cells`).

mod cpu;

pub(crate) use cpu::CpuEncoder;

pub use crate::kv_cache::{KvLayerSpec, KvWindow};
pub use crate::model::LlamaHparams;
pub use crate::ops::{Rope, RopeMode};

use crate::error::Result;
use crate::model::weights::TensorRef;
use fennec_quant::matmul::WeightLayout;
use fennec_quant::GgmlType;

/// An activation buffer of the micro-batch being run (one row per position).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buf {
    /// The residual stream (`n_embd` per row), holding the inputs when the pass starts.
    X,
    /// A normalized copy of the residual stream (`n_embd`).
    Normed,
    /// Queries (`n_head * head_dim`).
    Q,
    /// Keys (`n_head_kv * head_dim`).
    K,
    /// Values (`n_head_kv * head_dim`).
    V,
    /// Attention output (`n_head * head_dim`).
    Attn,
    /// A block's output before it joins the residual stream (`n_embd`).
    H,
}

impl Buf {
    /// Every buffer, in a fixed order.
    pub const ALL: [Buf; 7] = [
        Buf::X,
        Buf::Normed,
        Buf::Q,
        Buf::K,
        Buf::V,
        Buf::Attn,
        Buf::H,
    ];

    /// Elements per row for a model shaped like `hp`.
    pub fn row_len(self, hp: &LlamaHparams) -> usize {
        match self {
            Buf::X | Buf::Normed | Buf::H => hp.n_embd,
            Buf::Q | Buf::Attn => hp.n_head * hp.head_dim,
            Buf::K | Buf::V => hp.n_head_kv * hp.head_dim,
        }
    }
}

/// A weight matrix of the model, as a step of the forward pass uses it.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    pub(crate) tensor: &'a TensorRef,
    pub(crate) file: &'a [u8],
}

impl<'a> Matrix<'a> {
    /// Identifies the matrix among all loaded models while they live: the address of its
    /// bytes in the mapping. A backend keys its uploaded copy by it.
    pub fn key(&self) -> usize {
        self.file[self.tensor.start..].as_ptr() as usize
    }

    /// The element type of its blocks.
    pub fn ty(&self) -> GgmlType {
        self.tensor.ty
    }

    /// Output rows.
    pub fn n_rows(&self) -> usize {
        self.tensor.n_out
    }

    /// Elements per row (the input width).
    pub fn n_cols(&self) -> usize {
        self.tensor.n_in
    }

    /// The rows as the GGUF file stores them, or `None` when the CPU has repacked them in
    /// place at load (models loaded for a backend are not repacked).
    pub fn gguf_bytes(&self) -> Option<&'a [u8]> {
        match self.tensor.layout {
            WeightLayout::Rows => {
                Some(&self.file[self.tensor.start..self.tensor.start + self.tensor.len])
            }
            _ => None,
        }
    }
}

impl std::fmt::Debug for Matrix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matrix")
            .field("ty", &self.ty())
            .field("n_rows", &self.n_rows())
            .field("n_cols", &self.n_cols())
            .finish()
    }
}

/// A weight vector of the model (a norm's scale, a bias), kept as f32 by the model.
#[derive(Clone, Copy, Debug)]
pub struct Vector<'a>(pub &'a [f32]);

impl Vector<'_> {
    /// Identifies the vector among all loaded models while they live (the address of its
    /// values); a backend keys its uploaded copy by it.
    pub fn key(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

/// The operations a forward pass is written in. Each runs on the micro-batch the encoder was
/// given; buffers are sized for it.
pub trait Encoder {
    /// `dst = rms_norm(src) * weight`, each row (`src` unchanged).
    fn rms_norm(&mut self, dst: Buf, src: Buf, weight: Vector<'_>, eps: f32) -> Result<()>;
    /// For each `(w, dst)`: `dst = w · src`, row by row. The products share `src`, so an
    /// encoder quantizes it once.
    fn matmul(&mut self, src: Buf, products: &[(Matrix<'_>, Buf)]) -> Result<()>;
    /// Adds `bias` to each row of `x`.
    fn add_bias(&mut self, x: Buf, bias: Vector<'_>) -> Result<()>;
    /// Rotates each head (`head_dim`) of each row of `x` by its position.
    fn rope(&mut self, x: Buf, rope: &Rope, head_dim: usize) -> Result<()>;
    /// Stores the rows of `K` and `V` in layer `layer`'s cache at their positions, then
    /// writes into `Attn` each row's attention over the positions its window sees.
    fn attention(&mut self, layer: usize) -> Result<()>;
    /// `dst = down · (silu(gate · src) ⊙ (up · src))`, row by row.
    fn ffn(
        &mut self,
        src: Buf,
        gate: Matrix<'_>,
        up: Matrix<'_>,
        down: Matrix<'_>,
        dst: Buf,
    ) -> Result<()>;
    /// `x += y`, elementwise.
    fn add(&mut self, x: Buf, y: Buf) -> Result<()>;
    /// The output head on the rows whose logits are wanted: RMS norm, then `output`.
    fn logits(&mut self, norm: Vector<'_>, eps: f32, output: Matrix<'_>) -> Result<()>;
}

/// A session's state on a backend: its KV cache and buffers, and the encoder that runs
/// micro-batches on them.
pub trait DeviceSession: Encoder + Send {
    /// Starts a micro-batch: rows `x` (`n_embd` each) at `positions`, with the logits of the
    /// rows flagged in `want` to be kept.
    fn begin(
        &mut self,
        hp: &LlamaHparams,
        positions: &[usize],
        want: &[bool],
        x: &[f32],
    ) -> Result<()>;
    /// Runs what was recorded and writes the wanted rows' logits, back to back, into `out`.
    fn finish(&mut self, out: &mut Vec<f32>) -> Result<()>;
    /// Bytes its KV cache holds.
    fn kv_bytes(&self) -> usize;
}

/// Hardware a model runs on instead of the CPU.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// What it runs on (API, adapter, driver), for logs and `fennec bench`.
    fn describe(&self) -> String;
    /// Whether it multiplies by matrices of type `ty`.
    fn supports(&self, ty: GgmlType) -> bool;
    /// A session's state: a KV cache shaped by `layers` for `n_ctx` positions evaluated at
    /// most `n_ubatch` at a time.
    fn new_session(
        &self,
        layers: &[KvLayerSpec],
        n_ctx: usize,
        n_ubatch: usize,
    ) -> Result<Box<dyn DeviceSession>>;
}
