//! Writing GGUF v3 files that llama.cpp and gguf-py read unchanged.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use fennec_quant::GgmlType;

use super::error::{GgufError, Result};
use super::metadata::Metadata;
use super::tensor::tensor_bytes;
use super::value::{Array, Value};
use super::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};

/// The data of a tensor to write.
#[derive(Clone, Debug)]
pub enum TensorData<'a> {
    /// These exact bytes.
    Bytes(std::borrow::Cow<'a, [u8]>),
    /// All zero bytes, left as a hole when writing to a file (sparse files for size tests).
    Zeros,
}

#[derive(Clone, Debug)]
struct PendingTensor<'a> {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    size: u64,
    data: TensorData<'a>,
}

/// Collects metadata and tensors, then writes a GGUF v3 file.
///
/// Tensors are laid out in the order added, each at the next multiple of the alignment,
/// as llama.cpp's own writer does.
#[derive(Clone, Debug, Default)]
pub struct GgufWriter<'a> {
    metadata: Metadata,
    tensors: Vec<PendingTensor<'a>>,
}

impl<'a> GgufWriter<'a> {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata key. `general.alignment` must be a u32 power of two.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Result<&mut Self> {
        let key = key.into();
        let value = value.into();
        if key == ALIGNMENT_KEY {
            match value {
                Value::U32(a) if a.is_power_of_two() => {}
                Value::U32(a) => return Err(GgufError::BadAlignment(a.into())),
                ref other => {
                    return Err(GgufError::WrongType {
                        key,
                        expected: "u32".into(),
                        found: other.type_description(),
                    })
                }
            }
        }
        self.metadata.insert(key, value)?;
        Ok(self)
    }

    /// Adds an array-valued metadata key.
    pub fn add_array(
        &mut self,
        key: impl Into<String>,
        array: impl Into<Array>,
    ) -> Result<&mut Self> {
        self.add(key, Value::Array(array.into()))
    }

    /// Adds a tensor with dims in GGML order; `data` must hold exactly its byte size.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ty: GgmlType,
        dims: &[u64],
        data: TensorData<'a>,
    ) -> Result<&mut Self> {
        let name = name.into();
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(GgufError::DuplicateTensor(name));
        }
        let size = tensor_bytes(&name, ty, dims)?;
        if let TensorData::Bytes(bytes) = &data {
            if bytes.len() as u64 != size {
                return Err(GgufError::BadTensorData {
                    problem: format!(
                        "{} bytes given, a {ty} tensor of dims {dims:?} takes {size}",
                        bytes.len()
                    ),
                    tensor: name,
                });
            }
        }
        self.tensors.push(PendingTensor {
            name,
            dims: dims.to_vec(),
            ty,
            size,
            data,
        });
        Ok(self)
    }

    fn alignment(&self) -> u64 {
        match self.metadata.get(ALIGNMENT_KEY) {
            Some(Value::U32(a)) => u64::from(*a),
            _ => DEFAULT_ALIGNMENT,
        }
    }

    /// The header bytes, padded to the alignment, and each tensor's data offset.
    fn header(&self) -> (Vec<u8>, Vec<u64>) {
        let alignment = self.alignment();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in self.metadata.iter() {
            put_str(&mut out, key);
            out.extend_from_slice(&(value.value_type() as u32).to_le_bytes());
            put_value(&mut out, value);
        }
        let mut offsets = Vec::with_capacity(self.tensors.len());
        let mut next = 0u64;
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&(t.ty as u32).to_le_bytes());
            out.extend_from_slice(&next.to_le_bytes());
            offsets.push(next);
            next = (next + t.size).next_multiple_of(alignment);
        }
        out.resize((out.len() as u64).next_multiple_of(alignment) as usize, 0);
        (out, offsets)
    }

    /// Total bytes of the data section.
    fn data_len(&self) -> u64 {
        let alignment = self.alignment();
        self.tensors
            .iter()
            .map(|t| t.size.next_multiple_of(alignment))
            .sum()
    }

    /// The whole file in memory (zero tensors are written out as zeros).
    pub fn to_vec(&self) -> Vec<u8> {
        let (mut out, offsets) = self.header();
        let data_start = out.len();
        out.resize(data_start + self.data_len() as usize, 0);
        for (t, offset) in self.tensors.iter().zip(offsets) {
            if let TensorData::Bytes(bytes) = &t.data {
                let at = data_start + offset as usize;
                out[at..at + bytes.len()].copy_from_slice(bytes);
            }
        }
        out
    }

    /// Writes the file to `path`; zero tensors become holes, so huge test files stay sparse.
    pub fn write_to_path(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let (header, offsets) = self.header();
        let file = File::create(path).map_err(io)?;
        let mut w = BufWriter::new(file);
        w.write_all(&header).map_err(io)?;
        let data_start = header.len() as u64;
        for (t, offset) in self.tensors.iter().zip(offsets) {
            if let TensorData::Bytes(bytes) = &t.data {
                w.seek(SeekFrom::Start(data_start + offset)).map_err(io)?;
                w.write_all(bytes).map_err(io)?;
            }
        }
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.set_len(data_start + self.data_len()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(())
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => out.push(*v),
        Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(s) => put_str(out, s),
        Value::Array(a) => put_array(out, a),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

fn put_array(out: &mut Vec<u8>, array: &Array) {
    out.extend_from_slice(&(array.element_type() as u32).to_le_bytes());
    out.extend_from_slice(&(array.len() as u64).to_le_bytes());
    macro_rules! each {
        ($items:expr) => {
            for v in $items {
                out.extend_from_slice(&v.to_le_bytes());
            }
        };
    }
    match array {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => each!(v),
        Array::U16(v) => each!(v),
        Array::I16(v) => each!(v),
        Array::U32(v) => each!(v),
        Array::I32(v) => each!(v),
        Array::F32(v) => each!(v),
        Array::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        Array::String(v) => v.iter().for_each(|s| put_str(out, s)),
        Array::Array(v) => v.iter().for_each(|a| put_array(out, a)),
        Array::U64(v) => each!(v),
        Array::I64(v) => each!(v),
        Array::F64(v) => each!(v),
    }
}
