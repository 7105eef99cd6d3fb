//! Parsing and validating a GGUF header from bytes. Only the header is read: tensor data
//! is located and bounds-checked, never touched.

use fennec_quant::GgmlType;

use super::error::{GgufError, Result};
use super::metadata::Metadata;
use super::tensor::{tensor_bytes, TensorInfo, MAX_DIMS};
use super::value::{Array, Value, ValueType};
use super::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};

/// How deep arrays of arrays may nest before the file is refused (keeps recursion bounded).
const MAX_ARRAY_NESTING: usize = 8;
/// Smallest encoding of one tensor info: name length, n_dims, type, offset.
const MIN_TENSOR_INFO_LEN: u64 = 8 + 4 + 4 + 8;
/// Smallest encoding of one key/value pair: key length, value type, a one-byte value.
const MIN_KV_LEN: u64 = 8 + 4 + 1;

/// Everything in a GGUF file except the tensor data.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufHeader {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Metadata,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment (`general.alignment`, default 32).
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
    /// Bytes from the data section's start to the end of the file.
    pub data_size: u64,
}

/// Parses and validates the header of a GGUF file held in `bytes` (the whole file).
pub fn parse_header(bytes: &[u8]) -> Result<GgufHeader> {
    let mut cur = Cursor { bytes, pos: 0 };
    let magic: [u8; 4] = cur.take(4, "magic")?.try_into().expect("4 bytes");
    if &magic != MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = cur.u32("version")?;
    match version {
        2 | 3 => {}
        v if matches!(v.swap_bytes(), 1..=3) => return Err(GgufError::BigEndian(v.swap_bytes())),
        v => return Err(GgufError::UnsupportedVersion(v)),
    }
    let n_tensors = cur.count("tensor count", MIN_TENSOR_INFO_LEN)?;
    let n_kv = cur.count("metadata key/value count", MIN_KV_LEN)?;

    let mut metadata = Metadata::new();
    for i in 0..n_kv {
        let key = cur.string(&format!("metadata key #{i}"))?;
        let type_id = cur.u32(&format!("value type of {key:?}"))?;
        let ty = ValueType::from_u32(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.clone(),
            type_id,
        })?;
        let value = cur.value(ty, &key, 0)?;
        metadata.insert(key, value)?;
    }
    let alignment = match metadata.get(ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some(_) => u64::from(metadata.get_u32(ALIGNMENT_KEY)?),
    };
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(GgufError::BadAlignment(alignment));
    }

    let mut tensors = Vec::with_capacity(n_tensors);
    let mut names = std::collections::HashSet::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let info = cur.tensor_info(i)?;
        if !names.insert(info.name.clone()) {
            return Err(GgufError::DuplicateTensor(info.name));
        }
        tensors.push(info);
    }

    let file_size = bytes.len() as u64;
    let data_offset = (cur.pos as u64).next_multiple_of(alignment);
    let data_size = file_size.saturating_sub(data_offset);
    check_tensor_placement(&tensors, alignment, data_size)?;
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
        data_size,
    })
}

/// Every tensor aligned, inside the data section, and overlapping no other.
fn check_tensor_placement(tensors: &[TensorInfo], alignment: u64, data_size: u64) -> Result<()> {
    for t in tensors {
        if t.offset % alignment != 0 {
            return Err(GgufError::MisalignedTensor {
                tensor: t.name.clone(),
                offset: t.offset,
                alignment,
            });
        }
        let end = t.offset.checked_add(t.size);
        if end.is_none_or(|end| end > data_size) {
            return Err(GgufError::TensorOutOfBounds {
                tensor: t.name.clone(),
                start: t.offset,
                end: end.unwrap_or(u64::MAX),
                data_size,
            });
        }
    }
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
    by_offset.sort_by_key(|t| t.offset);
    for pair in by_offset.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b.offset < a.offset + a.size {
            return Err(GgufError::OverlappingTensors {
                first: a.name.clone(),
                second: b.name.clone(),
                at: b.offset,
            });
        }
    }
    Ok(())
}

/// A bounds-checked little-endian reader over the file's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what.to_string(),
                offset: self.pos as u64,
                needed: n,
                file_size: self.bytes.len() as u64,
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self.take(N as u64, what)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A u64 count of items that each take at least `min_item_len` bytes.
    fn count(&mut self, what: &str, min_item_len: u64) -> Result<usize> {
        let count = self.u64(what)?;
        let available = self.remaining();
        if count > available / min_item_len {
            return Err(GgufError::CountTooLarge {
                what: what.to_string(),
                count,
                available,
            });
        }
        Ok(count as usize)
    }

    fn string(&mut self, what: &str) -> Result<String> {
        self.string_lazy(|| what.to_string())
    }

    /// A string whose description is only built when something is wrong with it.
    fn string_lazy(&mut self, what: impl Fn() -> String) -> Result<String> {
        let start = self.pos;
        let len_bytes = self
            .array::<8>("string length")
            .map_err(|_| GgufError::Truncated {
                what: format!("length of {}", what()),
                offset: start as u64,
                needed: 8,
                file_size: self.bytes.len() as u64,
            })?;
        let len = u64::from_le_bytes(len_bytes);
        if len > self.remaining() {
            return Err(GgufError::CountTooLarge {
                what: format!("length of {}", what()),
                count: len,
                available: self.remaining(),
            });
        }
        let raw = self.take(len, "string")?;
        String::from_utf8(raw.to_vec()).map_err(|_| GgufError::InvalidUtf8 { what: what() })
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: usize) -> Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(key)?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(key)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(key)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(key)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            ValueType::Bool => Value::Bool(self.array::<1>(key)?[0] != 0),
            ValueType::String => Value::String(self.string(&format!("value of {key:?}"))?),
            ValueType::Array => Value::Array(self.array_value(key, depth)?),
        })
    }

    fn array_value(&mut self, key: &str, depth: usize) -> Result<Array> {
        if depth >= MAX_ARRAY_NESTING {
            return Err(GgufError::NestingTooDeep {
                key: key.to_string(),
                max: MAX_ARRAY_NESTING,
            });
        }
        let type_id = self.u32(&format!("array element type of {key:?}"))?;
        let ty = ValueType::from_u32(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.to_string(),
            type_id,
        })?;
        let len = self.count(&format!("array length of {key:?}"), ty.min_encoded_len())?;
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {{
                let raw = self.take((len * size_of::<$t>()) as u64, key)?;
                Array::$variant(
                    raw.chunks_exact(size_of::<$t>())
                        .map(|c| <$t>::from_le_bytes(c.try_into().expect("element bytes")))
                        .collect(),
                )
            }};
        }
        Ok(match ty {
            ValueType::U8 => Array::U8(self.take(len as u64, key)?.to_vec()),
            ValueType::I8 => fixed!(I8, i8),
            ValueType::U16 => fixed!(U16, u16),
            ValueType::I16 => fixed!(I16, i16),
            ValueType::U32 => fixed!(U32, u32),
            ValueType::I32 => fixed!(I32, i32),
            ValueType::F32 => fixed!(F32, f32),
            ValueType::U64 => fixed!(U64, u64),
            ValueType::I64 => fixed!(I64, i64),
            ValueType::F64 => fixed!(F64, f64),
            ValueType::Bool => Array::Bool(
                self.take(len as u64, key)?
                    .iter()
                    .map(|&b| b != 0)
                    .collect(),
            ),
            ValueType::String => {
                let mut items = Vec::with_capacity(len);
                for i in 0..len {
                    items.push(self.string_lazy(|| format!("element {i} of {key:?}"))?);
                }
                Array::String(items)
            }
            ValueType::Array => {
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.array_value(key, depth + 1)?);
                }
                Array::Array(items)
            }
        })
    }

    fn tensor_info(&mut self, index: usize) -> Result<TensorInfo> {
        let name = self.string(&format!("name of tensor #{index}"))?;
        let n_dims = self.u32(&format!("dimension count of tensor {name:?}"))?;
        if n_dims as usize > MAX_DIMS {
            return Err(GgufError::TooManyDims {
                tensor: name,
                n_dims,
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64(&format!("dimensions of tensor {name:?}"))?);
        }
        let type_id = self.u32(&format!("type of tensor {name:?}"))?;
        let offset = self.u64(&format!("data offset of tensor {name:?}"))?;
        let ty = GgmlType::from_u32(type_id).map_err(|_| GgufError::UnknownTensorType {
            tensor: name.clone(),
            type_id,
        })?;
        let size = tensor_bytes(&name, ty, &dims)?;
        Ok(TensorInfo {
            name,
            dims,
            ty,
            offset,
            size,
        })
    }
}
