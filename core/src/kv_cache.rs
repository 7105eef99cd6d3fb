//! The key/value cache of a session: per layer, one row of keys and one of values per cell.

use std::fmt;
use std::str::FromStr;

use fennec_quant::{dequantize_row, quantize_row, GgmlType};
use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::error::{Error, Result};

/// Element type of the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvType {
    /// 32-bit floats: exact, largest.
    F32,
    /// 16-bit floats (llama.cpp's default).
    #[default]
    F16,
    /// 8-bit blocks of 32 with an f16 scale.
    Q8_0,
}

impl KvType {
    /// The ggml type of a cache row.
    pub fn ggml(self) -> GgmlType {
        match self {
            KvType::F32 => GgmlType::F32,
            KvType::F16 => GgmlType::F16,
            KvType::Q8_0 => GgmlType::Q8_0,
        }
    }
}

impl FromStr for KvType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(KvType::F32),
            "f16" => Ok(KvType::F16),
            "q8_0" => Ok(KvType::Q8_0),
            other => Err(Error::InvalidArgument(format!(
                "KV cache type {other:?}: expected f32, f16 or q8_0"
            ))),
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
        })
    }
}

/// One layer's rows of one kind (keys or values), in the cache's element type.
#[derive(Clone, Debug)]
enum Rows {
    F32(Vec<f32>),
    F16(Vec<f16>),
    /// Q8_0 blocks, `row_bytes` per row.
    Q8_0(Vec<u8>),
}

impl Rows {
    fn new(ty: KvType, row_len: usize, n_cells: usize) -> Result<Self> {
        let overflow = || Error::InvalidArgument("KV cache size overflows".into());
        let elements = row_len.checked_mul(n_cells).ok_or_else(overflow)?;
        Ok(match ty {
            KvType::F32 => Rows::F32(vec![0.0; elements]),
            KvType::F16 => Rows::F16(vec![f16::ZERO; elements]),
            KvType::Q8_0 => {
                let bytes = fennec_quant::row_bytes(GgmlType::Q8_0, row_len)?;
                Rows::Q8_0(vec![0; bytes.checked_mul(n_cells).ok_or_else(overflow)?])
            }
        })
    }

    fn bytes(&self) -> usize {
        match self {
            Rows::F32(v) => v.len() * 4,
            Rows::F16(v) => v.len() * 2,
            Rows::Q8_0(v) => v.len(),
        }
    }

    fn store(&mut self, cell: usize, row: &[f32]) -> Result<()> {
        let n = row.len();
        match self {
            Rows::F32(v) => v[cell * n..(cell + 1) * n].copy_from_slice(row),
            Rows::F16(v) => v[cell * n..(cell + 1) * n].convert_from_f32_slice(row),
            Rows::Q8_0(v) => {
                let bytes = fennec_quant::row_bytes(GgmlType::Q8_0, n)?;
                quantize_row(
                    GgmlType::Q8_0,
                    row,
                    &mut v[cell * bytes..(cell + 1) * bytes],
                )?;
            }
        }
        Ok(())
    }

    fn read(&self, row_len: usize, cell: usize, offset: usize, out: &mut [f32]) {
        let start = cell * row_len + offset;
        match self {
            Rows::F32(v) => out.copy_from_slice(&v[start..start + out.len()]),
            Rows::F16(v) => v[start..start + out.len()].convert_to_f32_slice(out),
            Rows::Q8_0(v) => {
                let block = GgmlType::Q8_0.block_bytes();
                let row = &v[cell * (row_len / 32) * block..(cell + 1) * (row_len / 32) * block];
                if offset.is_multiple_of(32) && out.len().is_multiple_of(32) {
                    // The head is whole blocks: dequantize just those.
                    let blocks = &row[offset / 32 * block..(offset + out.len()) / 32 * block];
                    dequantize_row(GgmlType::Q8_0, blocks, out).expect("whole Q8_0 blocks");
                } else {
                    let mut full = vec![0.0; row_len];
                    dequantize_row(GgmlType::Q8_0, row, &mut full).expect("whole Q8_0 blocks");
                    out.copy_from_slice(&full[offset..offset + out.len()]);
                }
            }
        }
    }
}

/// Keys and values of one layer: `n_cells` rows of `row_len` elements each.
#[derive(Clone, Debug)]
pub struct KvLayer {
    ty: KvType,
    row_len: usize,
    n_cells: usize,
    keys: Rows,
    values: Rows,
}

impl KvLayer {
    fn new(ty: KvType, row_len: usize, n_cells: usize) -> Result<Self> {
        Ok(Self {
            ty,
            row_len,
            n_cells,
            keys: Rows::new(ty, row_len, n_cells)?,
            values: Rows::new(ty, row_len, n_cells)?,
        })
    }

    /// Element type.
    pub fn ty(&self) -> KvType {
        self.ty
    }

    /// Number of cells.
    pub fn n_cells(&self) -> usize {
        self.n_cells
    }

    /// Writes the key and value rows of cell `cell`.
    pub fn store(&mut self, cell: usize, key: &[f32], value: &[f32]) -> Result<()> {
        self.keys.store(cell, key)?;
        self.values.store(cell, value)
    }

    /// Reads `out.len()` key elements at `offset` of cell `cell` as f32.
    pub fn key(&self, cell: usize, offset: usize, out: &mut [f32]) {
        self.keys.read(self.row_len, cell, offset, out);
    }

    /// Reads `out.len()` value elements at `offset` of cell `cell` as f32.
    pub fn value(&self, cell: usize, offset: usize, out: &mut [f32]) {
        self.values.read(self.row_len, cell, offset, out);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.keys.bytes() + self.values.bytes()
    }
}

/// The whole cache: one [`KvLayer`] per model layer.
#[derive(Clone, Debug)]
pub struct KvCache {
    /// Per-layer storage.
    pub layers: Vec<KvLayer>,
}

impl KvCache {
    /// A cache of `n_cells` cells per layer; `row_lens[l]` is layer `l`'s K/V row width.
    pub fn new(ty: KvType, row_lens: &[usize], cells: &[usize]) -> Result<Self> {
        let layers = row_lens
            .iter()
            .zip(cells)
            .map(|(&len, &n)| KvLayer::new(ty, len, n))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Bytes held by all layers.
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(KvLayer::bytes).sum()
    }
}
