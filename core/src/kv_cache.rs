//! The key/value cache of a session: per layer, one row of keys and one of values per cell.

use std::fmt;
use std::str::FromStr;

use fennec_quant::{dequantize_row, quantize_row, GgmlType};
use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::error::{try_vec, Error, Result};

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

    /// Bytes of one cache row of `row_len` elements.
    pub fn row_bytes(self, row_len: usize) -> Result<usize> {
        Ok(fennec_quant::row_bytes(self.ggml(), row_len)?)
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
            KvType::F32 => Rows::F32(try_vec(elements, 0.0, "the KV cache")?),
            KvType::F16 => Rows::F16(try_vec(elements, f16::ZERO, "the KV cache")?),
            KvType::Q8_0 => {
                let bytes = ty.row_bytes(row_len)?;
                let len = bytes.checked_mul(n_cells).ok_or_else(overflow)?;
                Rows::Q8_0(try_vec(len, 0, "the KV cache")?)
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

    #[cfg(test)]
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

impl Rows {
    /// Elements `offset..offset + len` of cell `cell` (rows of `row_len`), where they are.
    fn head(&self, row_len: usize, cell: usize, offset: usize, len: usize) -> HeadRef<'_> {
        let start = cell * row_len + offset;
        match self {
            Rows::F32(v) => HeadRef::F32(&v[start..start + len]),
            Rows::F16(v) => HeadRef::F16(&v[start..start + len]),
            Rows::Q8_0(v) => {
                // The whole blocks that cover the range, and where it starts in the first.
                let block = GgmlType::Q8_0.block_bytes();
                let row = cell * (row_len / 32) * block;
                let (first, end) = (offset / 32, (offset + len).div_ceil(32));
                HeadRef::Q8_0 {
                    blocks: &v[row + first * block..row + end * block],
                    skip: offset - first * 32,
                    len,
                }
            }
        }
    }
}

/// Some elements of one cached key or value row (usually one head), borrowed where the
/// cache stores them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HeadRef<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// f16 elements.
    F16(&'a [f16]),
    /// The Q8_0 blocks covering the elements; they start `skip` elements into the first.
    Q8_0 {
        blocks: &'a [u8],
        skip: usize,
        len: usize,
    },
}

impl<'a> HeadRef<'a> {
    /// Elements a buffer given to [`to_f32`](Self::to_f32) needs for a `len`-element head.
    pub(crate) fn buffer_len(len: usize) -> usize {
        len + 64
    }

    /// The elements as f32: borrowed as they are when stored as f32, otherwise converted
    /// into `buf` (at least [`buffer_len`](Self::buffer_len) elements). The values equal
    /// [`KvLayer::key`]'s and [`KvLayer::value`]'s.
    pub(crate) fn to_f32<'b>(self, buf: &'b mut [f32]) -> &'b [f32]
    where
        'a: 'b,
    {
        match self {
            HeadRef::F32(x) => x,
            HeadRef::F16(x) => {
                let out = &mut buf[..x.len()];
                x.convert_to_f32_slice(out);
                out
            }
            HeadRef::Q8_0 { blocks, skip, len } => {
                let n = blocks.len() / GgmlType::Q8_0.block_bytes() * 32;
                dequantize_row(GgmlType::Q8_0, blocks, &mut buf[..n]).expect("whole Q8_0 blocks");
                &buf[skip..skip + len]
            }
        }
    }
}

/// Which earlier positions a layer's queries attend to, and so which its cache must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvWindow {
    /// Every earlier position (causal attention over the whole context).
    Full,
    /// Only positions in the query's own chunk of this many tokens (absolute boundaries:
    /// position `p` sees `⌊p/c⌋·c ..= p`), Llama 4's chunked attention.
    Chunked(usize),
}

impl KvWindow {
    /// The first position a query at `pos` attends to.
    pub fn first_visible(self, pos: usize) -> usize {
        match self {
            KvWindow::Full => 0,
            KvWindow::Chunked(c) => pos / c * c,
        }
    }

    /// Cells a layer needs for a context of `n_ctx` evaluated `n_ubatch` tokens at a time:
    /// a chunked layer keeps a ring of one chunk plus one micro-batch.
    pub fn cells(self, n_ctx: usize, n_ubatch: usize) -> usize {
        match self {
            KvWindow::Full => n_ctx,
            KvWindow::Chunked(c) => n_ctx.min(c.saturating_add(n_ubatch)),
        }
    }
}

/// The shape of one layer's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvLayerSpec {
    /// Elements of a key (and of a value) row: `n_head_kv · head_dim`.
    pub row_len: usize,
    /// The positions the layer attends to.
    pub window: KvWindow,
}

/// Keys and values of one layer: `n_cells` rows of `row_len` elements each. Position `p`
/// lives in cell `p % n_cells`, so a layer with fewer cells than the context is a ring.
#[derive(Clone, Debug)]
pub struct KvLayer {
    ty: KvType,
    row_len: usize,
    n_cells: usize,
    window: KvWindow,
    /// The highest position written since the cache was cleared.
    high_water: Option<usize>,
    keys: Rows,
    values: Rows,
}

impl KvLayer {
    fn new(ty: KvType, spec: KvLayerSpec, n_cells: usize) -> Result<Self> {
        Ok(Self {
            ty,
            row_len: spec.row_len,
            n_cells,
            window: spec.window,
            high_water: None,
            keys: Rows::new(ty, spec.row_len, n_cells)?,
            values: Rows::new(ty, spec.row_len, n_cells)?,
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

    /// The positions this layer attends to.
    pub fn window(&self) -> KvWindow {
        self.window
    }

    fn cell(&self, pos: usize) -> usize {
        pos % self.n_cells
    }

    /// Whether position `pos`'s key and value are still in the cache (not yet overwritten
    /// by a later position sharing its cell).
    pub fn holds(&self, pos: usize) -> bool {
        self.high_water
            .is_some_and(|hw| pos <= hw && pos + self.n_cells > hw)
    }

    /// Writes the key and value rows of position `pos`.
    pub fn store(&mut self, pos: usize, key: &[f32], value: &[f32]) -> Result<()> {
        let cell = self.cell(pos);
        self.keys.store(cell, key)?;
        self.values.store(cell, value)?;
        self.high_water = Some(self.high_water.map_or(pos, |hw| hw.max(pos)));
        Ok(())
    }

    /// Reads `out.len()` key elements at `offset` of position `pos` as f32.
    #[cfg(test)]
    pub fn key(&self, pos: usize, offset: usize, out: &mut [f32]) {
        debug_assert!(self.holds(pos), "key of position {pos} was overwritten");
        self.keys.read(self.row_len, self.cell(pos), offset, out);
    }

    /// Reads `out.len()` value elements at `offset` of position `pos` as f32.
    #[cfg(test)]
    pub fn value(&self, pos: usize, offset: usize, out: &mut [f32]) {
        debug_assert!(self.holds(pos), "value of position {pos} was overwritten");
        self.values.read(self.row_len, self.cell(pos), offset, out);
    }

    /// Elements `offset..offset + len` of position `pos`'s key, where the cache holds them.
    pub(crate) fn key_head(&self, pos: usize, offset: usize, len: usize) -> HeadRef<'_> {
        debug_assert!(self.holds(pos), "key of position {pos} was overwritten");
        self.keys.head(self.row_len, self.cell(pos), offset, len)
    }

    /// Elements `offset..offset + len` of position `pos`'s value, where the cache holds
    /// them.
    pub(crate) fn value_head(&self, pos: usize, offset: usize, len: usize) -> HeadRef<'_> {
        debug_assert!(self.holds(pos), "value of position {pos} was overwritten");
        self.values.head(self.row_len, self.cell(pos), offset, len)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.keys.bytes() + self.values.bytes()
    }

    fn clear(&mut self) {
        self.high_water = None;
    }
}

/// The whole cache: one [`KvLayer`] per model layer.
#[derive(Clone, Debug)]
pub struct KvCache {
    /// Per-layer storage.
    pub layers: Vec<KvLayer>,
}

impl KvCache {
    /// A cache for `n_ctx` positions evaluated at most `n_ubatch` at a time, shaped by
    /// each layer's window (see [`KvWindow::cells`]).
    pub fn new(ty: KvType, specs: &[KvLayerSpec], n_ctx: usize, n_ubatch: usize) -> Result<Self> {
        let layers = specs
            .iter()
            .map(|&spec| KvLayer::new(ty, spec, spec.window.cells(n_ctx, n_ubatch)))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Bytes a cache of these dimensions would hold, computed without allocating it.
    pub fn planned_bytes(
        ty: KvType,
        specs: &[KvLayerSpec],
        n_ctx: usize,
        n_ubatch: usize,
    ) -> Result<u64> {
        let mut total = 0u64;
        for spec in specs {
            let cells = spec.window.cells(n_ctx, n_ubatch) as u64;
            let layer = (ty.row_bytes(spec.row_len)? as u64)
                .saturating_mul(2)
                .saturating_mul(cells);
            total = total.saturating_add(layer);
        }
        Ok(total)
    }

    /// Bytes held by all layers.
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(KvLayer::bytes).sum()
    }

    /// Forgets every stored position.
    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(KvLayer::clear);
    }

    /// Whether every layer still holds what a query at position `pos` attends to before
    /// `pos` itself (false when a chunked layer's ring has overwritten it).
    pub fn can_resume_at(&self, pos: usize) -> bool {
        self.layers.iter().all(|l| {
            let first = l.window.first_visible(pos);
            first >= pos || l.holds(first)
        })
    }
}

// Copying and serializing cells (fork, save and restore of sessions).

/// Bytes of one Q8_0 row of `row_len` elements (32 elements per 34-byte block).
fn q8_0_row_bytes(row_len: usize) -> usize {
    row_len / 32 * GgmlType::Q8_0.block_bytes()
}

impl Rows {
    /// Appends cell `cell`'s row (`row_len` elements) to `out` as little-endian bytes.
    fn cell_to_bytes(&self, cell: usize, row_len: usize, out: &mut Vec<u8>) {
        match self {
            Rows::F32(v) => {
                let row = &v[cell * row_len..(cell + 1) * row_len];
                out.extend(row.iter().flat_map(|x| x.to_le_bytes()));
            }
            Rows::F16(v) => {
                let row = &v[cell * row_len..(cell + 1) * row_len];
                out.extend(row.iter().flat_map(|x| x.to_bits().to_le_bytes()));
            }
            Rows::Q8_0(v) => {
                let n = q8_0_row_bytes(row_len);
                out.extend_from_slice(&v[cell * n..(cell + 1) * n]);
            }
        }
    }

    /// Sets cell `cell`'s row from little-endian bytes written by [`Rows::cell_to_bytes`].
    fn cell_from_bytes(&mut self, cell: usize, row_len: usize, bytes: &[u8]) {
        match self {
            Rows::F32(v) => {
                let row = &mut v[cell * row_len..(cell + 1) * row_len];
                for (x, b) in row.iter_mut().zip(bytes.chunks_exact(4)) {
                    *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            Rows::F16(v) => {
                let row = &mut v[cell * row_len..(cell + 1) * row_len];
                for (x, b) in row.iter_mut().zip(bytes.chunks_exact(2)) {
                    *x = f16::from_bits(u16::from_le_bytes([b[0], b[1]]));
                }
            }
            Rows::Q8_0(v) => {
                let n = q8_0_row_bytes(row_len);
                v[cell * n..(cell + 1) * n].copy_from_slice(bytes);
            }
        }
    }

    fn copy_from(&mut self, other: &Rows) {
        match (self, other) {
            (Rows::F32(a), Rows::F32(b)) => a.copy_from_slice(b),
            (Rows::F16(a), Rows::F16(b)) => a.copy_from_slice(b),
            (Rows::Q8_0(a), Rows::Q8_0(b)) => a.copy_from_slice(b),
            _ => unreachable!("KV caches of one model and type share their layout"),
        }
    }
}

impl KvLayer {
    /// Bytes of one serialized cell: its key row then its value row.
    pub(crate) fn cell_bytes(&self) -> Result<usize> {
        Ok(2 * self.ty.row_bytes(self.row_len)?)
    }

    /// Appends the key and value rows of position `pos` to `out` (little-endian).
    pub(crate) fn save_position(&self, pos: usize, out: &mut Vec<u8>) {
        let cell = self.cell(pos);
        self.keys.cell_to_bytes(cell, self.row_len, out);
        self.values.cell_to_bytes(cell, self.row_len, out);
    }

    /// Sets position `pos` from bytes written by [`KvLayer::save_position`].
    pub(crate) fn restore_position(&mut self, pos: usize, bytes: &[u8]) {
        let cell = self.cell(pos);
        let half = bytes.len() / 2;
        self.keys
            .cell_from_bytes(cell, self.row_len, &bytes[..half]);
        self.values
            .cell_from_bytes(cell, self.row_len, &bytes[half..]);
        self.high_water = Some(self.high_water.map_or(pos, |hw| hw.max(pos)));
    }

    /// The positions this layer holds when the context has `n_past` positions: the last
    /// `n_cells` of them.
    pub(crate) fn held_positions(&self, n_past: usize) -> std::ops::Range<usize> {
        n_past.saturating_sub(self.n_cells)..n_past
    }
}

impl KvCache {
    /// Makes this cache (of the same layout) hold what `other` holds.
    pub(crate) fn copy_from(&mut self, other: &KvCache) {
        for (a, b) in self.layers.iter_mut().zip(&other.layers) {
            a.keys.copy_from(&b.keys);
            a.values.copy_from(&b.values);
            a.high_water = b.high_water;
        }
    }
}
