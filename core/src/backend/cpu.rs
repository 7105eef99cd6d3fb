//! The CPU encoder: each operation runs at once, on the session's workspace, with the
//! kernels of `ops` (the numerics every reference test checks).

use super::{Buf, Encoder, Matrix, Rope, Vector};
use crate::error::{Error, Result};
use crate::kv_cache::KvCache;
use crate::model::blocks::{output_logits, Buffers, Workspace};
use crate::model::ffn::{swiglu_ffn, FfnScratch};
use crate::model::LlamaHparams;
use crate::ops::{
    self, ActivationScratch, Activations, AttentionScratch, AttentionShape, ThreadPool,
};

/// Runs a forward pass's operations on the CPU, in the session's workspace and KV cache.
pub(crate) struct CpuEncoder<'a> {
    file: &'a [u8],
    pool: &'a ThreadPool,
    hp: &'a LlamaHparams,
    kv: &'a mut KvCache,
    ws: &'a mut Workspace,
}

/// The workspace split into what one operation reads and writes.
struct Parts<'w> {
    bufs: [Option<&'w mut Vec<f32>>; 7],
    positions: &'w [usize],
    acts: &'w mut ActivationScratch,
    ffn: &'w mut FfnScratch,
    attention: &'w mut AttentionScratch,
    shape: AttentionShape,
}

impl<'w> Parts<'w> {
    fn new(ws: &'w mut Workspace) -> Self {
        let Workspace {
            x,
            positions,
            buffers,
            ..
        } = ws;
        let Buffers {
            h,
            normed,
            q,
            k,
            v,
            attn,
            ffn,
            acts,
            attention,
            shape,
        } = buffers;
        // In `Buf::ALL`'s order.
        Parts {
            bufs: [
                Some(x),
                Some(normed),
                Some(q),
                Some(k),
                Some(v),
                Some(attn),
                Some(h),
            ],
            positions,
            acts,
            ffn,
            attention,
            shape: *shape,
        }
    }

    /// Takes buffer `b` out (each at most once per operation).
    fn take(&mut self, b: Buf) -> Result<&'w mut Vec<f32>> {
        take(&mut self.bufs, b)
    }
}

/// Takes buffer `b` out of `bufs` (each at most once per operation).
fn take<'w>(bufs: &mut [Option<&'w mut Vec<f32>>; 7], b: Buf) -> Result<&'w mut Vec<f32>> {
    bufs[b as usize]
        .take()
        .ok_or_else(|| Error::InvalidArgument(format!("buffer {b:?} used twice in one operation")))
}

impl<'a> CpuEncoder<'a> {
    /// An encoder for the micro-batch held in `ws` (rows `ws.x` at `ws.positions`), with its
    /// buffers sized for it.
    pub(crate) fn new(
        file: &'a [u8],
        pool: &'a ThreadPool,
        hp: &'a LlamaHparams,
        kv: &'a mut KvCache,
        ws: &'a mut Workspace,
    ) -> Result<Self> {
        ws.buffers.resize(hp, ws.positions.len())?;
        Ok(Self {
            file,
            pool,
            hp,
            kv,
            ws,
        })
    }
}

impl Encoder for CpuEncoder<'_> {
    fn rms_norm(&mut self, dst: Buf, src: Buf, weight: Vector<'_>, eps: f32) -> Result<()> {
        let mut parts = Parts::new(self.ws);
        let (src, dst) = (parts.take(src)?, parts.take(dst)?);
        dst.copy_from_slice(src);
        ops::rms_norm(dst, weight.0, eps, self.pool);
        Ok(())
    }

    fn matmul(&mut self, src: Buf, products: &[(Matrix<'_>, Buf)]) -> Result<()> {
        let Parts { mut bufs, acts, .. } = Parts::new(self.ws);
        let x = take(&mut bufs, src)?;
        let mut acts = Activations::new(x, src.row_len(self.hp), acts);
        for (w, dst) in products {
            let out = take(&mut bufs, *dst)?;
            acts.matmul(&w.tensor.weight(self.file), out, self.pool)?;
        }
        Ok(())
    }

    fn add_bias(&mut self, x: Buf, bias: Vector<'_>) -> Result<()> {
        ops::add_bias(Parts::new(self.ws).take(x)?, bias.0);
        Ok(())
    }

    fn rope(&mut self, x: Buf, rope: &Rope, head_dim: usize) -> Result<()> {
        let mut parts = Parts::new(self.ws);
        let rows = parts.take(x)?;
        rope.apply(rows, head_dim, parts.positions, self.pool);
        Ok(())
    }

    fn attention(&mut self, layer: usize) -> Result<()> {
        let mut parts = Parts::new(self.ws);
        let cache = self
            .kv
            .layers
            .get_mut(layer)
            .ok_or_else(|| Error::InvalidArgument(format!("no KV cache for layer {layer}")))?;
        let (k, v) = (parts.take(Buf::K)?, parts.take(Buf::V)?);
        let kv_dim = k.len() / parts.positions.len().max(1);
        for ((kr, vr), &pos) in k
            .chunks_exact(kv_dim)
            .zip(v.chunks_exact(kv_dim))
            .zip(parts.positions)
        {
            cache.store(pos, kr, vr)?;
        }
        let (q, out) = (parts.take(Buf::Q)?, parts.take(Buf::Attn)?);
        ops::attention(
            q,
            parts.positions,
            cache,
            parts.shape,
            out,
            parts.attention,
            self.pool,
        );
        Ok(())
    }

    fn ffn(
        &mut self,
        src: Buf,
        gate: Matrix<'_>,
        up: Matrix<'_>,
        down: Matrix<'_>,
        dst: Buf,
    ) -> Result<()> {
        let mut parts = Parts::new(self.ws);
        let (x, out) = (parts.take(src)?, parts.take(dst)?);
        swiglu_ffn(
            &mut Activations::new(x, src.row_len(self.hp), parts.acts),
            &gate.tensor.weight(self.file),
            &up.tensor.weight(self.file),
            &down.tensor.weight(self.file),
            parts.ffn,
            out,
            self.pool,
        )
    }

    fn add(&mut self, x: Buf, y: Buf) -> Result<()> {
        let mut parts = Parts::new(self.ws);
        let (x, y) = (parts.take(x)?, parts.take(y)?);
        ops::add_assign(x, y);
        Ok(())
    }

    fn logits(&mut self, norm: Vector<'_>, eps: f32, output: Matrix<'_>) -> Result<()> {
        debug_assert_eq!(eps, self.hp.rms_eps);
        output_logits(
            self.ws,
            norm.0,
            output.tensor,
            self.hp,
            self.file,
            self.pool,
        )
    }
}
