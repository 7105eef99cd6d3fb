//! `fennec-core`'s backend boundary on wgpu: [`WgpuBackend`] opens a [`GpuSession`] per
//! session, which records each micro-batch's operations and synchronises once, when the
//! logits are read.
//!
//! Weights are uploaded once, on first use, keyed by their address in the model's mapping
//! (shared by every session of the backend); norm weights and biases likewise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fennec_core::backend::{
    Backend, Buf, DeviceSession, Encoder, KvLayerSpec, KvWindow, LlamaHparams, Matrix, Rope,
    RopeMode, Vector,
};
use fennec_core::{Error, Result};
use fennec_quant::GgmlType;

use crate::kernels;
use crate::{
    AttentionShape, Gpu, GpuError, GpuKvLayer, GpuMatrix, GpuOptions, GpuTensor, Recorder,
    RopePairs,
};

/// The wgpu backend: one GPU and the weights uploaded to it.
pub struct WgpuBackend {
    gpu: Arc<Gpu>,
    weights: Arc<WeightStore>,
}

/// Weights on the GPU, keyed by the address of their bytes in the host mapping.
#[derive(Default)]
struct WeightStore {
    matrices: Mutex<HashMap<usize, Arc<GpuMatrix>>>,
    vectors: Mutex<HashMap<usize, Arc<GpuTensor>>>,
}

impl WgpuBackend {
    /// Opens the GPU (see [`Gpu::new`]) and self-tests the operations every model uses; an
    /// error when they fail on this driver (run on the CPU then).
    pub fn new(options: &GpuOptions) -> std::result::Result<Self, GpuError> {
        Self::with_gpu(Arc::new(Gpu::new(options)?))
    }

    /// A backend on an already open GPU, after the same self-test.
    pub fn with_gpu(gpu: Arc<Gpu>) -> std::result::Result<Self, GpuError> {
        gpu.check_row_ops()?;
        Ok(Self {
            gpu,
            weights: Arc::default(),
        })
    }

    /// The GPU.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
}

impl std::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Backend for WgpuBackend {
    fn describe(&self) -> String {
        let s = self.gpu.summary();
        format!("wgpu {} on {} ({})", s.backend, s.name, s.driver_info)
    }

    fn supports(&self, ty: GgmlType) -> bool {
        // Only types whose kernel passed its self-test on this driver.
        kernels::activations(ty).is_some() && self.gpu.verified_reduction(ty).is_ok()
    }

    fn new_session(
        &self,
        layers: &[KvLayerSpec],
        n_ctx: usize,
        n_ubatch: usize,
    ) -> Result<Box<dyn DeviceSession>> {
        let mut kv = Vec::with_capacity(layers.len());
        let mut kv_bytes = 0;
        for spec in layers {
            let cells = spec.window.cells(n_ctx, n_ubatch);
            kv.push((
                self.gpu.kv_layer(cells, spec.row_len).map_err(backend)?,
                spec.window,
            ));
            kv_bytes += 2 * cells * spec.row_len * 2;
        }
        Ok(Box::new(GpuSession {
            gpu: Arc::clone(&self.gpu),
            weights: Arc::clone(&self.weights),
            kv,
            kv_bytes,
            batch: None,
        }))
    }
}

/// A session's state on the GPU: its KV cache, and the micro-batch being recorded.
pub struct GpuSession {
    gpu: Arc<Gpu>,
    weights: Arc<WeightStore>,
    kv: Vec<(GpuKvLayer, KvWindow)>,
    kv_bytes: usize,
    batch: Option<Batch>,
}

/// One micro-batch in flight.
struct Batch {
    encoder: Option<wgpu::CommandEncoder>,
    bufs: [Option<GpuTensor>; 7],
    positions: Vec<usize>,
    want: Vec<bool>,
    shape: AttentionShape,
    /// RoPE's (cos, sin) per row, made once per micro-batch.
    rope_table: Option<(usize, GpuTensor)>,
    logits: Option<GpuTensor>,
    /// When `begin` was called: host time spent recording ends at `finish`.
    started: std::time::Instant,
}

fn backend(e: GpuError) -> Error {
    Error::Backend(e.to_string())
}

impl GpuSession {
    fn batch(&mut self) -> Result<&mut Batch> {
        self.batch
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("GPU operation outside a micro-batch".into()))
    }

    /// Runs `op` on a recorder that continues the micro-batch's command encoder.
    fn record<T>(
        &mut self,
        op: impl FnOnce(&mut Recorder<'_>, &mut Batch) -> std::result::Result<T, GpuError>,
    ) -> Result<T> {
        let gpu = Arc::clone(&self.gpu);
        let batch = self.batch()?;
        let encoder = batch
            .encoder
            .take()
            .ok_or_else(|| Error::Backend("the micro-batch's encoder is gone".into()))?;
        let mut recorder = gpu.resume(encoder);
        let result = op(&mut recorder, batch);
        batch.encoder = Some(recorder.pause());
        result.map_err(backend)
    }

    fn matrix(&self, m: Matrix<'_>) -> Result<Arc<GpuMatrix>> {
        let mut map = self.weights.matrices.lock().map_err(|_| poisoned())?;
        if let Some(w) = map.get(&m.key()) {
            return Ok(Arc::clone(w));
        }
        let bytes = m.gguf_bytes().ok_or_else(|| {
            Error::Unsupported("a matrix repacked for the CPU cannot go to the GPU".into())
        })?;
        let w = Arc::new(
            self.gpu
                .upload_matrix(m.ty(), m.n_rows(), m.n_cols(), bytes)
                .map_err(backend)?,
        );
        map.insert(m.key(), Arc::clone(&w));
        Ok(w)
    }

    fn vector(&self, v: Vector<'_>) -> Result<Arc<GpuTensor>> {
        let mut map = self.weights.vectors.lock().map_err(|_| poisoned())?;
        if let Some(t) = map.get(&v.key()) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(self.gpu.tensor(v.0, v.0.len()).map_err(backend)?);
        map.insert(v.key(), Arc::clone(&t));
        Ok(t)
    }
}

fn poisoned() -> Error {
    Error::Backend("a GPU weight table was poisoned by a panic".into())
}

/// The tensor in buffer `b`.
fn buf(batch: &Batch, b: Buf) -> std::result::Result<&GpuTensor, GpuError> {
    batch.bufs[b as usize]
        .as_ref()
        .ok_or_else(|| GpuError::Shape(format!("buffer {b:?} read before it was written")))
}

impl Encoder for GpuSession {
    fn rms_norm(&mut self, dst: Buf, src: Buf, weight: Vector<'_>, eps: f32) -> Result<()> {
        let weight = self.vector(weight)?;
        self.record(|rec, batch| {
            let out = rec.copy(buf(batch, src)?)?;
            rec.rms_norm(&out, &weight, eps)?;
            batch.bufs[dst as usize] = Some(out);
            Ok(())
        })
    }

    fn matmul(&mut self, src: Buf, products: &[(Matrix<'_>, Buf)]) -> Result<()> {
        let matrices = products
            .iter()
            .map(|(m, _)| self.matrix(*m))
            .collect::<Result<Vec<_>>>()?;
        self.record(|rec, batch| {
            let refs: Vec<&GpuMatrix> = matrices.iter().map(|m| m.as_ref()).collect();
            let outs = rec.matmuls(buf(batch, src)?, &refs)?;
            for ((_, dst), out) in products.iter().zip(outs) {
                batch.bufs[*dst as usize] = Some(out);
            }
            Ok(())
        })
    }

    fn add_bias(&mut self, x: Buf, bias: Vector<'_>) -> Result<()> {
        let bias = self.vector(bias)?;
        self.record(|rec, batch| rec.add_bias(buf(batch, x)?, &bias))
    }

    fn rope(&mut self, x: Buf, rope: &Rope, head_dim: usize) -> Result<()> {
        let gpu = Arc::clone(&self.gpu);
        let batch = self.batch()?;
        if batch
            .rope_table
            .as_ref()
            .is_none_or(|(n_rot, _)| *n_rot != rope.n_rot)
        {
            // Core's angles, so the GPU rotates by the CPU's bits.
            let table: Vec<f32> = batch
                .positions
                .iter()
                .flat_map(|&p| rope.angles(p).into_iter().flat_map(|(c, s)| [c, s]))
                .collect();
            let tensor = gpu.tensor(&table, rope.n_rot).map_err(backend)?;
            batch.rope_table = Some((rope.n_rot, tensor));
        }
        let pairs = match rope.mode {
            RopeMode::Normal => RopePairs::Adjacent,
            RopeMode::Neox => RopePairs::Halves,
        };
        self.record(|rec, batch| {
            let (n_rot, table) = batch
                .rope_table
                .as_ref()
                .ok_or_else(|| GpuError::Shape("no RoPE table".into()))?;
            rec.rope(buf(batch, x)?, head_dim, *n_rot, pairs, table)
        })
    }

    fn attention(&mut self, layer: usize) -> Result<()> {
        let window = self
            .kv
            .get(layer)
            .map(|(_, window)| *window)
            .ok_or_else(|| Error::InvalidArgument(format!("no KV cache for layer {layer}")))?;
        // The caches leave `self` while the recorder borrows it.
        let kv = std::mem::take(&mut self.kv);
        let result = self.record(|rec, batch| {
            let cache = &kv[layer].0;
            rec.store_kv(
                cache,
                buf(batch, Buf::K)?,
                buf(batch, Buf::V)?,
                &batch.positions,
            )?;
            let windows: Vec<(usize, usize)> = batch
                .positions
                .iter()
                .map(|&p| (window.first_visible(p), p))
                .collect();
            let out = rec.attention(buf(batch, Buf::Q)?, cache, &windows, batch.shape)?;
            batch.bufs[Buf::Attn as usize] = Some(out);
            Ok(())
        });
        self.kv = kv;
        result
    }

    fn ffn(
        &mut self,
        src: Buf,
        gate: Matrix<'_>,
        up: Matrix<'_>,
        down: Matrix<'_>,
        dst: Buf,
    ) -> Result<()> {
        let (gate, up, down) = (self.matrix(gate)?, self.matrix(up)?, self.matrix(down)?);
        self.record(|rec, batch| {
            let mut hidden = rec.matmuls(buf(batch, src)?, &[&gate, &up])?;
            let up_out = hidden
                .pop()
                .ok_or_else(|| GpuError::Shape("no up product".into()))?;
            let gate_out = hidden
                .pop()
                .ok_or_else(|| GpuError::Shape("no gate product".into()))?;
            rec.swiglu(&gate_out, &up_out)?;
            batch.bufs[dst as usize] = Some(rec.matmul(&down, &gate_out)?);
            Ok(())
        })
    }

    fn add(&mut self, x: Buf, y: Buf) -> Result<()> {
        self.record(|rec, batch| rec.add(buf(batch, x)?, buf(batch, y)?))
    }

    fn logits(&mut self, norm: Vector<'_>, eps: f32, output: Matrix<'_>) -> Result<()> {
        let (norm, output) = (self.vector(norm)?, self.matrix(output)?);
        self.record(|rec, batch| {
            let rows: Vec<usize> = (0..batch.want.len()).filter(|&t| batch.want[t]).collect();
            if rows.is_empty() {
                return Ok(());
            }
            let x = rec.gather_rows(buf(batch, Buf::X)?, &rows)?;
            rec.rms_norm(&x, &norm, eps)?;
            batch.logits = Some(rec.matmul(&output, &x)?);
            Ok(())
        })
    }
}

impl DeviceSession for GpuSession {
    fn begin(
        &mut self,
        hp: &LlamaHparams,
        positions: &[usize],
        want: &[bool],
        x: &[f32],
    ) -> Result<()> {
        if positions.len() != want.len() || x.len() != positions.len() * hp.n_embd {
            return Err(Error::InvalidArgument(format!(
                "a micro-batch of {} positions, {} logit flags and {} input values",
                positions.len(),
                want.len(),
                x.len()
            )));
        }
        let x = self.gpu.tensor(x, hp.n_embd).map_err(backend)?;
        let mut bufs: [Option<GpuTensor>; 7] = Default::default();
        bufs[Buf::X as usize] = Some(x);
        self.batch = Some(Batch {
            encoder: Some(self.gpu.recorder().pause()),
            bufs,
            positions: positions.to_vec(),
            want: want.to_vec(),
            shape: AttentionShape {
                n_head: hp.n_head,
                n_head_kv: hp.n_head_kv,
                head_dim: hp.head_dim,
                scale: 1.0 / (hp.head_dim as f32).sqrt(),
            },
            rope_table: None,
            logits: None,
            started: std::time::Instant::now(),
        });
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let mut batch = self
            .batch
            .take()
            .ok_or_else(|| Error::InvalidArgument("no micro-batch to finish".into()))?;
        let encoder = batch
            .encoder
            .take()
            .ok_or_else(|| Error::Backend("the micro-batch's encoder is gone".into()))?;
        let recorded = batch.started.elapsed();
        let recorder = self.gpu.resume(encoder);
        out.clear();
        match &batch.logits {
            Some(logits) => out.extend(recorder.read(logits).map_err(backend)?),
            None => recorder.submit().map_err(backend)?,
        }
        tracing::debug!(
            rows = batch.positions.len(),
            record_ms = recorded.as_secs_f64() * 1e3,
            run_ms = (batch.started.elapsed() - recorded).as_secs_f64() * 1e3,
            "micro-batch on the GPU"
        );
        Ok(())
    }

    fn kv_bytes(&self) -> usize {
        self.kv_bytes
    }
}
