//! Recording a sequence of operations into one command buffer, synchronised once, at the
//! read-back: the shape a forward pass takes on the GPU.

use wgpu::util::DeviceExt;

use crate::kernels::{self, Activations, Reduction, ROWS_PER_GROUP, WORKGROUP_SIZE};
use crate::pool::PooledBuffer;
use crate::{Gpu, GpuError, GpuMatrix};
use fennec_quant::GgmlType;

/// Rows of f32 resident on the GPU.
pub struct GpuTensor {
    pub(crate) buffer: PooledBuffer,
    n_rows: usize,
    row_len: usize,
}

impl GpuTensor {
    /// Rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Elements per row.
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    pub(crate) fn len(&self) -> usize {
        self.n_rows * self.row_len
    }
}

/// One index per row, resident on the GPU (what [`Recorder::argmax`] makes).
pub struct GpuIndices {
    buffer: wgpu::Buffer,
    len: usize,
}

/// Which element pairs [`Recorder::rope`] rotates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopePairs {
    /// `(x[2i], x[2i + 1])`: llama's normal mode.
    Adjacent,
    /// `(x[i], x[i + n_rot / 2])`: GPT-NeoX's.
    Halves,
}

/// The uniform of `rows.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct RowParams {
    n_rows: u32,
    row_len: u32,
    groups_x: u32,
    eps: f32,
    head_dim: u32,
    n_rot: u32,
    neox: u32,
    pad: u32,
}

/// The uniform of `quantize.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct QuantizeParams {
    n_blocks: u32,
    groups_x: u32,
    pad: [u32; 2],
}

/// Activations quantized on the GPU: packed int8 quants and per-block scale data.
pub(crate) struct QuantizedActivations {
    pub(crate) quants: PooledBuffer,
    pub(crate) scales: PooledBuffer,
}

/// Operations recorded on one command encoder; nothing runs until a `read`.
pub struct Recorder<'g> {
    pub(crate) gpu: &'g Gpu,
    encoder: wgpu::CommandEncoder,
}

impl Gpu {
    /// Copies `data` (rows of `row_len`) to the GPU.
    pub fn tensor(&self, data: &[f32], row_len: usize) -> Result<GpuTensor, GpuError> {
        if row_len == 0 || data.is_empty() || !data.len().is_multiple_of(row_len) {
            return Err(GpuError::Shape(format!(
                "{} values are not whole rows of {row_len}",
                data.len()
            )));
        }
        self.check_binding(data.len() as u64 * 4, "the tensor")?;
        let buffer = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tensor"),
                contents: bytemuck::cast_slice(data),
                usage: TENSOR_USAGE,
            });
        Ok(GpuTensor {
            buffer: PooledBuffer::unpooled(buffer),
            n_rows: data.len() / row_len,
            row_len,
        })
    }

    /// Starts recording operations.
    pub fn recorder(&self) -> Recorder<'_> {
        Recorder {
            gpu: self,
            encoder: self.device.create_command_encoder(&Default::default()),
        }
    }

    /// Continues recording on `encoder` (what [`Recorder::pause`] returned).
    pub(crate) fn resume(&self, encoder: wgpu::CommandEncoder) -> Recorder<'_> {
        Recorder { gpu: self, encoder }
    }

    /// Fails when `bytes` would not fit one binding.
    pub(crate) fn check_binding(&self, bytes: u64, what: &str) -> Result<(), GpuError> {
        if bytes > self.max_binding_bytes {
            return Err(GpuError::Shape(format!(
                "{what} take {bytes} bytes, more than one binding's {}",
                self.max_binding_bytes
            )));
        }
        Ok(())
    }

    pub(crate) fn empty_tensor(
        &self,
        n_rows: usize,
        row_len: usize,
    ) -> Result<GpuTensor, GpuError> {
        let bytes = (n_rows * row_len * 4) as u64;
        self.check_binding(bytes, "the output")?;
        let buffer = self.pool.take(&self.device, bytes, TENSOR_USAGE, "tensor");
        Ok(GpuTensor {
            buffer,
            n_rows,
            row_len,
        })
    }

    pub(crate) fn uniform<T: bytemuck::Pod>(&self, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("parameters"),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// The bindings `entries` for `pipeline`'s layout.
    fn bind_group(
        &self,
        pipeline: &crate::device::Pipeline,
        entries: &[wgpu::BindGroupEntry<'_>],
    ) -> wgpu::BindGroup {
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.layout,
            entries,
        })
    }

    /// Workgroups for `n` threads of 64 as (x, y), x within the adapter's limit.
    pub(crate) fn groups_for(&self, n: usize) -> (u32, u32) {
        let groups = n.div_ceil(WORKGROUP_SIZE as usize).max(1) as u32;
        let x = groups.min(self.max_groups);
        (x, groups.div_ceil(x))
    }
}

const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl Recorder<'_> {
    /// `W x` for each row of `x`, with the self-tested reduction for `W`'s type.
    pub fn matmul(&mut self, w: &GpuMatrix, x: &GpuTensor) -> Result<GpuTensor, GpuError> {
        Ok(self.matmuls(x, &[w])?.remove(0))
    }

    /// [`Recorder::matmul`] with a chosen reduction.
    pub fn matmul_with(
        &mut self,
        w: &GpuMatrix,
        x: &GpuTensor,
        reduction: Reduction,
    ) -> Result<GpuTensor, GpuError> {
        Ok(self.matmuls_with(x, &[w], reduction)?.remove(0))
    }

    /// `W x` for each matrix of `ws`, sharing `x`: it is quantized once per activation type
    /// the matrices take (Q, K and V projections quantize their input once).
    pub fn matmuls(
        &mut self,
        x: &GpuTensor,
        ws: &[&GpuMatrix],
    ) -> Result<Vec<GpuTensor>, GpuError> {
        self.matmuls_with(x, ws, self.gpu.default_reduction())
    }

    fn matmuls_with(
        &mut self,
        x: &GpuTensor,
        ws: &[&GpuMatrix],
        reduction: Reduction,
    ) -> Result<Vec<GpuTensor>, GpuError> {
        let mut quantized: Vec<(GgmlType, QuantizedActivations)> = Vec::new();
        let mut outs = Vec::with_capacity(ws.len());
        for w in ws {
            self.check_product(w, x)?;
            let act = match kernels::activations(w.ty) {
                Some(Activations::Quantized(act)) => {
                    if !quantized.iter().any(|(t, _)| *t == act) {
                        let q = self.quantize(act, x)?;
                        quantized.push((act, q));
                    }
                    quantized.iter().find(|(t, _)| *t == act).map(|(_, q)| q)
                }
                _ => None,
            };
            outs.push(self.product(w, x, act, reduction)?);
        }
        Ok(outs)
    }

    fn check_product(&self, w: &GpuMatrix, x: &GpuTensor) -> Result<(), GpuError> {
        if x.row_len != w.n_cols {
            return Err(GpuError::Shape(format!(
                "rows of {} multiplied by a matrix of {} columns",
                x.row_len, w.n_cols
            )));
        }
        if x.n_rows > self.gpu.max_groups as usize {
            return Err(GpuError::Shape(format!(
                "{} vectors in one product; at most {}",
                x.n_rows, self.gpu.max_groups
            )));
        }
        Ok(())
    }

    /// Records `W x` (with `x` quantized in `acts` when `W` takes quantized activations).
    fn product(
        &mut self,
        w: &GpuMatrix,
        x: &GpuTensor,
        acts: Option<&QuantizedActivations>,
        reduction: Reduction,
    ) -> Result<GpuTensor, GpuError> {
        let pipeline = self.gpu.matvec_pipeline(w.ty, reduction)?;
        let out = self.gpu.empty_tensor(x.n_rows, w.n_rows)?;
        let mut pass = self.encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline.pipeline);
        for slice in &w.slices {
            let mut entries = vec![entry(0, &slice.weights)];
            match acts {
                Some(q) => entries.extend([entry(1, &q.quants), entry(2, &q.scales)]),
                None => entries.push(entry(1, &x.buffer)),
            }
            entries.extend([entry(3, &out.buffer), entry(4, &slice.params)]);
            pass.set_bind_group(0, &self.gpu.bind_group(&pipeline, &entries), &[]);
            let groups = slice.n_rows.div_ceil(ROWS_PER_GROUP as usize) as u32;
            pass.dispatch_workgroups(groups, x.n_rows as u32, 1);
        }
        drop(pass);
        Ok(out)
    }

    /// Quantizes the rows of `x` to `act` (Q8_0, Q8_1 or Q8_K).
    pub(crate) fn quantize(
        &mut self,
        act: GgmlType,
        x: &GpuTensor,
    ) -> Result<QuantizedActivations, GpuError> {
        let (_, floats_per_block) =
            kernels::quantize_entry(act).ok_or(GpuError::Unsupported(act))?;
        if !x.row_len.is_multiple_of(act.block_len()) {
            return Err(GpuError::Shape(format!(
                "rows of {} are not whole {act} blocks",
                x.row_len
            )));
        }
        let pipeline = self.gpu.quantize_pipeline(act)?;
        let n_blocks = x.len() / act.block_len();
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let buffer = |label, size| self.gpu.pool.take(&self.gpu.device, size, usage, label);
        let quants = buffer("activation quants", x.len() as u64);
        let scales = buffer(
            "activation scales",
            (n_blocks * floats_per_block as usize * 4) as u64,
        );
        let (groups_x, groups_y) = self.gpu.groups_for(n_blocks);
        let params = self.gpu.uniform(&QuantizeParams {
            n_blocks: n_blocks as u32,
            groups_x,
            pad: [0; 2],
        });
        let entries = [
            entry(0, &x.buffer),
            entry(1, &quants),
            entry(2, &scales),
            entry(3, &params),
        ];
        self.dispatch(&pipeline, &entries, (groups_x, groups_y));
        Ok(QuantizedActivations { quants, scales })
    }

    /// RMS-normalizes each row of `x` in place and scales it by `weight` (one row).
    pub fn rms_norm(
        &mut self,
        x: &GpuTensor,
        weight: &GpuTensor,
        eps: f32,
    ) -> Result<(), GpuError> {
        if weight.len() != x.row_len {
            return Err(GpuError::Shape(format!(
                "a norm weight of {} for rows of {}",
                weight.len(),
                x.row_len
            )));
        }
        // One workgroup per row.
        let groups = self.gpu.groups_for(x.n_rows * WORKGROUP_SIZE as usize);
        let params = RowParams {
            eps,
            groups_x: groups.0,
            ..self.row_params(x)
        };
        self.rows_op("rms_norm", x, weight, params, groups)
    }

    /// Rotates the first `n_rot` dimensions of each head (`head_dim`) of each row of `x`;
    /// `cos_sin` holds, for each row, its `n_rot / 2` (cos, sin) pairs (core's
    /// `Rope::angles` of the row's position).
    pub fn rope(
        &mut self,
        x: &GpuTensor,
        head_dim: usize,
        n_rot: usize,
        pairs: RopePairs,
        cos_sin: &GpuTensor,
    ) -> Result<(), GpuError> {
        let valid = head_dim > 0
            && x.row_len.is_multiple_of(head_dim)
            && n_rot <= head_dim
            && n_rot.is_multiple_of(2)
            && cos_sin.len() == x.n_rows * n_rot;
        if !valid {
            return Err(GpuError::Shape(format!(
                "RoPE of {n_rot} dimensions in heads of {head_dim}, rows of {}, with {} angle values for {} rows",
                x.row_len,
                cos_sin.len(),
                x.n_rows
            )));
        }
        let threads = x.n_rows * (x.row_len / head_dim) * (n_rot / 2);
        let groups = self.gpu.groups_for(threads);
        let params = RowParams {
            groups_x: groups.0,
            head_dim: head_dim as u32,
            n_rot: n_rot as u32,
            neox: u32::from(pairs == RopePairs::Halves),
            ..self.row_params(x)
        };
        self.rows_op("rope", x, cos_sin, params, groups)
    }

    /// `gate = silu(gate) * up`, elementwise.
    pub fn swiglu(&mut self, gate: &GpuTensor, up: &GpuTensor) -> Result<(), GpuError> {
        self.elementwise("swiglu", gate, up)
    }

    /// `x += y`, elementwise.
    pub fn add(&mut self, x: &GpuTensor, y: &GpuTensor) -> Result<(), GpuError> {
        self.elementwise("add", x, y)
    }

    /// The index of each row's largest element (see `argmax.wgsl`).
    pub fn argmax(&mut self, x: &GpuTensor) -> Result<GpuIndices, GpuError> {
        if x.n_rows > self.gpu.max_groups as usize {
            return Err(GpuError::Shape(format!(
                "argmax of {} rows in one call",
                x.n_rows
            )));
        }
        let pipeline = self.gpu.argmax_pipeline()?;
        let buffer = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("indices"),
            size: (x.n_rows * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let params = self.gpu.uniform(&[x.n_rows as u32, x.row_len as u32, 0, 0]);
        let entries = [entry(0, &x.buffer), entry(1, &buffer), entry(2, &params)];
        self.dispatch(&pipeline, &entries, (x.n_rows as u32, 1));
        Ok(GpuIndices {
            buffer,
            len: x.n_rows,
        })
    }

    /// A copy of `x`.
    pub fn copy(&mut self, x: &GpuTensor) -> Result<GpuTensor, GpuError> {
        let out = self.gpu.empty_tensor(x.n_rows, x.row_len)?;
        self.encoder
            .copy_buffer_to_buffer(&x.buffer, 0, &out.buffer, 0, (x.len() * 4) as u64);
        Ok(out)
    }

    /// The rows of `x` listed in `rows` (in that order), as a new tensor.
    pub fn gather_rows(&mut self, x: &GpuTensor, rows: &[usize]) -> Result<GpuTensor, GpuError> {
        if rows.is_empty() || rows.iter().any(|&r| r >= x.n_rows) {
            return Err(GpuError::Shape(format!(
                "rows {rows:?} of a tensor of {} rows",
                x.n_rows
            )));
        }
        let out = self.gpu.empty_tensor(rows.len(), x.row_len)?;
        let row_bytes = (x.row_len * 4) as u64;
        for (i, &r) in rows.iter().enumerate() {
            self.encoder.copy_buffer_to_buffer(
                &x.buffer,
                r as u64 * row_bytes,
                &out.buffer,
                i as u64 * row_bytes,
                row_bytes,
            );
        }
        Ok(out)
    }

    /// Adds `bias` (one row) to each row of `x`.
    pub fn add_bias(&mut self, x: &GpuTensor, bias: &GpuTensor) -> Result<(), GpuError> {
        if bias.len() != x.row_len {
            return Err(GpuError::Shape(format!(
                "a bias of {} for rows of {}",
                bias.len(),
                x.row_len
            )));
        }
        let groups = self.gpu.groups_for(x.len());
        let params = RowParams {
            groups_x: groups.0,
            ..self.row_params(x)
        };
        self.rows_op("add_rows", x, bias, params, groups)
    }

    /// Stops recording for now; [`Gpu::resume`] continues.
    pub(crate) fn pause(self) -> wgpu::CommandEncoder {
        self.encoder
    }

    /// Runs everything recorded and waits for it.
    pub fn submit(self) -> Result<(), GpuError> {
        self.gpu.queue.submit([self.encoder.finish()]);
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Execution(e.to_string()))?;
        match self.gpu.take_errors().into_iter().next() {
            Some(error) => Err(GpuError::Execution(error)),
            None => Ok(()),
        }
    }

    /// Runs everything recorded and returns `x`'s values.
    pub fn read(self, x: &GpuTensor) -> Result<Vec<f32>, GpuError> {
        let bytes = self
            .gpu
            .read_back(self.encoder, &x.buffer, (x.len() * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Runs everything recorded and returns the indices.
    pub fn read_indices(self, indices: &GpuIndices) -> Result<Vec<u32>, GpuError> {
        let bytes = self
            .gpu
            .read_back(self.encoder, &indices.buffer, (indices.len * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Runs everything recorded, then reads `len` bytes of `buffer`.
    pub(crate) fn read_bytes(self, buffer: &wgpu::Buffer, len: u64) -> Result<Vec<u8>, GpuError> {
        self.gpu.read_back(self.encoder, buffer, len)
    }

    fn row_params(&self, x: &GpuTensor) -> RowParams {
        RowParams {
            n_rows: x.n_rows as u32,
            row_len: x.row_len as u32,
            ..Default::default()
        }
    }

    fn elementwise(
        &mut self,
        entry_point: &str,
        x: &GpuTensor,
        y: &GpuTensor,
    ) -> Result<(), GpuError> {
        if x.len() != y.len() {
            return Err(GpuError::Shape(format!(
                "{entry_point} of {} and {} values",
                x.len(),
                y.len()
            )));
        }
        let groups = self.gpu.groups_for(x.len());
        let params = RowParams {
            groups_x: groups.0,
            ..self.row_params(x)
        };
        self.rows_op(entry_point, x, y, params, groups)
    }

    fn rows_op(
        &mut self,
        entry_point: &str,
        x: &GpuTensor,
        y: &GpuTensor,
        params: RowParams,
        groups: (u32, u32),
    ) -> Result<(), GpuError> {
        let pipeline = self.gpu.rows_pipeline(entry_point)?;
        let params = self.gpu.uniform(&params);
        let entries = [entry(0, &x.buffer), entry(1, &y.buffer), entry(2, &params)];
        self.dispatch(&pipeline, &entries, groups);
        Ok(())
    }

    pub(crate) fn dispatch(
        &mut self,
        pipeline: &crate::device::Pipeline,
        entries: &[wgpu::BindGroupEntry<'_>],
        groups: (u32, u32),
    ) {
        let bind_group = self.gpu.bind_group(pipeline, entries);
        let mut pass = self.encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, 1);
    }
}

pub(crate) fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}
