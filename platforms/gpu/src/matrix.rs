//! Weight matrices in GPU memory: the GGUF rows copied once, split by whole rows into
//! slices that each fit one binding.

use wgpu::util::DeviceExt;

use crate::kernels::{self, ROWS_PER_GROUP};
use crate::{Gpu, GpuError};
use fennec_quant::GgmlType;

/// The per-slice constants of `matvec_common.wgsl`'s `Params`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MatvecParams {
    pub n_cols: u32,
    pub n_rows: u32,
    pub row_bytes: u32,
    pub first_row: u32,
    pub out_stride: u32,
    pub pad: [u32; 3],
}

/// One slice of a matrix: consecutive whole rows in one buffer.
pub(crate) struct WeightSlice {
    pub(crate) n_rows: usize,
    pub(crate) weights: wgpu::Buffer,
    pub(crate) params: wgpu::Buffer,
}

/// A weight matrix resident on the GPU, in its GGUF block layout.
pub struct GpuMatrix {
    pub(crate) ty: GgmlType,
    pub(crate) n_rows: usize,
    pub(crate) n_cols: usize,
    pub(crate) slices: Vec<WeightSlice>,
}

impl GpuMatrix {
    /// The weight type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Output rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Elements per row.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Into how many buffers the rows are split.
    pub fn n_slices(&self) -> usize {
        self.slices.len()
    }
}

impl Gpu {
    /// Copies a matrix of `n_rows` rows of `n_cols` elements of type `ty` (`bytes`: the rows
    /// as GGUF stores them) into GPU memory, split by whole rows so that every slice fits
    /// the adapter's largest binding.
    pub fn upload_matrix(
        &self,
        ty: GgmlType,
        n_rows: usize,
        n_cols: usize,
        bytes: &[u8],
    ) -> Result<GpuMatrix, GpuError> {
        if kernels::activations(ty).is_none() {
            return Err(GpuError::Unsupported(ty));
        }
        let fits_u32 = u32::try_from(n_rows).is_ok() && u32::try_from(n_cols).is_ok();
        if n_rows == 0 || n_cols == 0 || !fits_u32 || !n_cols.is_multiple_of(ty.block_len()) {
            return Err(GpuError::Shape(format!(
                "{n_rows} x {n_cols} is not a matrix of whole {ty} blocks ({} elements)",
                ty.block_len()
            )));
        }
        let row_bytes = n_cols / ty.block_len() * ty.block_bytes();
        if bytes.len() != row_bytes * n_rows {
            return Err(GpuError::Shape(format!(
                "{} bytes for {n_rows} rows of {row_bytes} bytes",
                bytes.len()
            )));
        }
        let too_large = GpuError::RowTooLarge {
            row_bytes: row_bytes as u64,
            limit: self.max_slice_bytes,
        };
        let rows_per_slice = usize::try_from(self.max_slice_bytes / row_bytes as u64)
            .unwrap_or(usize::MAX)
            .min(self.max_groups as usize * ROWS_PER_GROUP as usize);
        if rows_per_slice == 0 || u32::try_from(row_bytes).is_err() {
            return Err(too_large);
        }
        let mut slices = Vec::new();
        for first_row in (0..n_rows).step_by(rows_per_slice) {
            let rows = rows_per_slice.min(n_rows - first_row);
            let data = &bytes[first_row * row_bytes..(first_row + rows) * row_bytes];
            slices.push(self.weight_slice(ty, n_rows, n_cols, row_bytes, first_row, rows, data)?);
        }
        if let Some(error) = self.take_errors().into_iter().next() {
            return Err(GpuError::Execution(error));
        }
        Ok(GpuMatrix {
            ty,
            n_rows,
            n_cols,
            slices,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn weight_slice(
        &self,
        ty: GgmlType,
        n_rows: usize,
        n_cols: usize,
        row_bytes: usize,
        first_row: usize,
        rows: usize,
        data: &[u8],
    ) -> Result<WeightSlice, GpuError> {
        // Whole words: the kernels read the rows as `array<u32>`.
        let size = data.len().next_multiple_of(4) as u64;
        let weights = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(ty.name()),
            size,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: true,
        });
        {
            let mut view = weights
                .slice(..)
                .get_mapped_range_mut()
                .map_err(|e| GpuError::Execution(format!("mapping a new weight buffer: {e}")))?;
            view.slice(..data.len()).copy_from_slice(data);
        }
        weights.unmap();
        let params = MatvecParams {
            n_cols: n_cols as u32,
            n_rows: rows as u32,
            row_bytes: row_bytes as u32,
            first_row: first_row as u32,
            out_stride: n_rows as u32,
            pad: [0; 3],
        };
        let params = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("matvec params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        Ok(WeightSlice {
            n_rows: rows,
            weights,
            params,
        })
    }
}
