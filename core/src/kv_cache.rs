//! The key/value cache of a session: per layer, one row of keys and one of values per cell.

use std::fmt;
use std::str::FromStr;

use fennec_quant::{dequantize_row, quantize_row, GgmlType};
use half::f16;

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

/// Keys and values of one layer: `n_cells` rows of `row_len` elements each.
#[derive(Clone, Debug)]
pub struct KvLayer {
    ty: KvType,
    row_len: usize,
    row_bytes: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
}

impl KvLayer {
    fn new(ty: KvType, row_len: usize, n_cells: usize) -> Result<Self> {
        let row_bytes = fennec_quant::row_bytes(ty.ggml(), row_len)?;
        let bytes = row_bytes
            .checked_mul(n_cells)
            .ok_or_else(|| Error::InvalidArgument("KV cache size overflows".into()))?;
        Ok(Self {
            ty,
            row_len,
            row_bytes,
            keys: vec![0; bytes],
            values: vec![0; bytes],
        })
    }

    /// Element type.
    pub fn ty(&self) -> KvType {
        self.ty
    }

    /// Number of cells.
    pub fn n_cells(&self) -> usize {
        self.keys.len() / self.row_bytes.max(1)
    }

    /// Writes the key and value rows of cell `cell`.
    pub fn store(&mut self, cell: usize, key: &[f32], value: &[f32]) -> Result<()> {
        let range = cell * self.row_bytes..(cell + 1) * self.row_bytes;
        quantize_row(self.ty.ggml(), key, &mut self.keys[range.clone()])?;
        quantize_row(self.ty.ggml(), value, &mut self.values[range])?;
        Ok(())
    }

    /// Reads `len` elements at `offset` of cell `cell`'s key row into `out` as f32.
    pub fn key(&self, cell: usize, offset: usize, out: &mut [f32]) {
        self.read(&self.keys, cell, offset, out);
    }

    /// Reads `len` elements at `offset` of cell `cell`'s value row into `out` as f32.
    pub fn value(&self, cell: usize, offset: usize, out: &mut [f32]) {
        self.read(&self.values, cell, offset, out);
    }

    fn read(&self, rows: &[u8], cell: usize, offset: usize, out: &mut [f32]) {
        let row = &rows[cell * self.row_bytes..(cell + 1) * self.row_bytes];
        match self.ty {
            KvType::F32 => {
                for (o, b) in out.iter_mut().zip(row[offset * 4..].chunks_exact(4)) {
                    *o = f32::from_le_bytes(b.try_into().expect("4 bytes"));
                }
            }
            KvType::F16 => {
                for (o, b) in out.iter_mut().zip(row[offset * 2..].chunks_exact(2)) {
                    *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
                }
            }
            KvType::Q8_0 => {
                // Heads are whole Q8_0 blocks when head_dim is a multiple of 32; otherwise
                // dequantize the row and copy the slice.
                let mut full = vec![0.0; self.row_len];
                dequantize_row(GgmlType::Q8_0, row, &mut full).expect("cache row is whole blocks");
                out.copy_from_slice(&full[offset..offset + out.len()]);
            }
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.keys.len() + self.values.len()
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
