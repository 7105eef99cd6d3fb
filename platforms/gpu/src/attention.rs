//! The KV cache on the GPU (f16, two values to a word) and attention over it. Which cell a
//! position lives in, and which positions a row sees, stay core's decisions: cells are
//! `position % n_cells`, and each query row comes with its window.

use wgpu::util::DeviceExt;

use crate::recorder::{entry, GpuTensor, Recorder};
use crate::{Gpu, GpuError};

/// Largest head the attention kernel takes (`MAX_HEAD_DIM` in `attend.wgsl`).
pub const MAX_HEAD_DIM: usize = 256;

/// One layer's keys and values, resident on the GPU.
pub struct GpuKvLayer {
    keys: wgpu::Buffer,
    values: wgpu::Buffer,
    n_cells: usize,
    row_len: usize,
}

impl GpuKvLayer {
    /// Cells (positions held at once).
    pub fn n_cells(&self) -> usize {
        self.n_cells
    }

    /// Elements per key or value row (`n_head_kv * head_dim`).
    pub fn row_len(&self) -> usize {
        self.row_len
    }
}

/// The head layout of an attention call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionShape {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (dividing `n_head`).
    pub n_head_kv: usize,
    /// Elements per head (even, at most [`MAX_HEAD_DIM`]).
    pub head_dim: usize,
    /// The score scale, usually `1 / sqrt(head_dim)`.
    pub scale: f32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StoreParams {
    n_rows: u32,
    row_len: u32,
    groups_x: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AttentionParams {
    n_rows: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    n_cells: u32,
    max_keys: u32,
    scale: f32,
    pad: u32,
}

impl Gpu {
    /// A zeroed cache of `n_cells` key and value rows of `row_len` (even) elements.
    pub fn kv_layer(&self, n_cells: usize, row_len: usize) -> Result<GpuKvLayer, GpuError> {
        if n_cells == 0 || row_len == 0 || !row_len.is_multiple_of(2) {
            return Err(GpuError::Shape(format!(
                "a KV cache of {n_cells} cells of {row_len} elements (must be even)"
            )));
        }
        let bytes = (n_cells * row_len * 2) as u64;
        self.check_binding(bytes, "the KV cache")?;
        let buffer = |label| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        Ok(GpuKvLayer {
            keys: buffer("keys"),
            values: buffer("values"),
            n_cells,
            row_len,
        })
    }

    fn u32s(&self, values: &[u32], label: &str) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(values),
                usage: wgpu::BufferUsages::STORAGE,
            })
    }
}

impl Recorder<'_> {
    /// Stores row `t` of `k` and `v` (rounded to f16) as position `positions[t]`.
    pub fn store_kv(
        &mut self,
        layer: &GpuKvLayer,
        k: &GpuTensor,
        v: &GpuTensor,
        positions: &[usize],
    ) -> Result<(), GpuError> {
        let fits = k.row_len() == layer.row_len
            && v.row_len() == layer.row_len
            && k.n_rows() == positions.len()
            && v.n_rows() == positions.len();
        if !fits {
            return Err(GpuError::Shape(format!(
                "storing {} key rows of {} and {} value rows of {} at {} positions in a cache of rows of {}",
                k.n_rows(),
                k.row_len(),
                v.n_rows(),
                v.row_len(),
                positions.len(),
                layer.row_len
            )));
        }
        let cells: Vec<u32> = positions
            .iter()
            .map(|&p| (p % layer.n_cells) as u32)
            .collect();
        let cells = self.gpu.u32s(&cells, "cells");
        let pipeline = self.gpu.kv_store_pipeline()?;
        let groups = self.gpu.groups_for(k.len() / 2);
        let params = self.gpu.uniform(&StoreParams {
            n_rows: positions.len() as u32,
            row_len: layer.row_len as u32,
            groups_x: groups.0,
            pad: 0,
        });
        for (rows, cache) in [(k, &layer.keys), (v, &layer.values)] {
            let entries = [
                entry(0, &rows.buffer),
                entry(1, cache),
                entry(2, &cells),
                entry(3, &params),
            ];
            self.dispatch(&pipeline, &entries, groups);
        }
        Ok(())
    }

    /// For each query row `t` of `q` (all heads) and each head: softmax-weighted values of
    /// the positions `windows[t].0 ..= windows[t].1`, which must still be in `layer`.
    pub fn attention(
        &mut self,
        q: &GpuTensor,
        layer: &GpuKvLayer,
        windows: &[(usize, usize)],
        shape: AttentionShape,
    ) -> Result<GpuTensor, GpuError> {
        let AttentionShape {
            n_head,
            n_head_kv,
            head_dim,
            scale,
        } = shape;
        let valid = n_head_kv > 0
            && n_head.is_multiple_of(n_head_kv)
            && head_dim.is_multiple_of(2)
            && head_dim <= MAX_HEAD_DIM
            && q.row_len() == n_head * head_dim
            && layer.row_len == n_head_kv * head_dim
            && q.n_rows() == windows.len()
            && windows
                .iter()
                .all(|&(first, pos)| first <= pos && pos - first < layer.n_cells);
        if !valid {
            return Err(GpuError::Shape(format!(
                "attention of {} rows of {} ({shape:?}) over a cache of {} cells of {}, windows {:?}",
                q.n_rows(),
                q.row_len(),
                layer.n_cells,
                layer.row_len,
                &windows[..windows.len().min(4)]
            )));
        }
        let out = self.gpu.empty_tensor(q.n_rows(), q.row_len())?;
        let max_keys = windows.iter().map(|&(f, p)| p + 1 - f).max().unwrap_or(1);
        let scores = self.gpu.empty_tensor(q.n_rows() * n_head, max_keys)?;
        let flat: Vec<u32> = windows
            .iter()
            .flat_map(|&(f, p)| [f as u32, p as u32])
            .collect();
        let windows_buffer = self.gpu.u32s(&flat, "windows");
        let params = self.gpu.uniform(&AttentionParams {
            n_rows: q.n_rows() as u32,
            n_head: n_head as u32,
            n_head_kv: n_head_kv as u32,
            head_dim: head_dim as u32,
            n_cells: layer.n_cells as u32,
            max_keys: max_keys as u32,
            scale,
            pad: 0,
        });
        let pipeline = self.gpu.attend_pipeline()?;
        let entries = [
            entry(0, &q.buffer),
            entry(1, &layer.keys),
            entry(2, &layer.values),
            entry(3, &windows_buffer),
            entry(4, &scores.buffer),
            entry(5, &out.buffer),
            entry(6, &params),
        ];
        if q.n_rows() > self.gpu.max_groups as usize || n_head > self.gpu.max_groups as usize {
            return Err(GpuError::Shape(format!(
                "attention of {} rows in one call",
                q.n_rows()
            )));
        }
        self.dispatch(&pipeline, &entries, (n_head as u32, q.n_rows() as u32));
        Ok(out)
    }
}
