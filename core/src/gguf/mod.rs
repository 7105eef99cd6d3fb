//! GGUF, the model container of llama.cpp: memory-mapped reading with full validation,
//! and writing.
//!
//! Opening a file reads only its header. Tensor data stays in the mapping and is handed out
//! as borrowed slices, so a 60 GB model opens in milliseconds and its pages load on use.

mod error;
mod file_type;
mod metadata;
mod reader;
mod tensor;
mod value;
mod writer;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

pub use error::{GgufError, Result};
pub use file_type::file_type_name;
pub use metadata::Metadata;
pub use reader::{parse_header, GgufHeader};
pub use tensor::{tensor_bytes, TensorInfo, MAX_DIMS};
pub use value::{Array, MetaElement, MetaScalar, Value, ValueType};
pub use writer::{GgufWriter, StreamFn, TensorData, TensorStream};

pub use fennec_quant::GgmlType;

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The metadata key that sets the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// Alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// The bytes of an opened file: a read-only mapping, or an owned buffer.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An open, validated GGUF file. Cheap to share behind an `Arc`; tensors borrow from it.
pub struct GgufFile {
    path: Option<PathBuf>,
    bytes: Bytes,
    header: GgufHeader,
    by_name: HashMap<String, usize>,
}

/// A tensor's description and its bytes in the mapping.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    /// The header entry.
    pub info: &'a TensorInfo,
    /// The tensor's data, borrowed from the file.
    pub data: &'a [u8],
}

impl GgufFile {
    /// Maps `path` read-only and validates its header. Tensor data is not read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the mapping is read-only and private to this value. Another process
            // truncating the file while it is mapped would fault on access, as it does for
            // every mmap-based loader (llama.cpp included); Fennec never writes to it.
            Bytes::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        let mut gguf = Self::from_bytes(bytes)?;
        gguf.path = Some(path.to_path_buf());
        tracing::debug!(
            path = %path.display(),
            tensors = gguf.header.tensors.len(),
            keys = gguf.header.metadata.len(),
            "opened GGUF"
        );
        Ok(gguf)
    }

    /// Maps `len` bytes of an open file starting at `offset` and validates them as a GGUF
    /// file: a model packed inside another file (an Android asset opened as a descriptor,
    /// an iOS bundle resource). `len = 0` means "to the end of the file".
    pub fn open_range(file: &File, offset: u64, len: u64) -> Result<Self> {
        let io = |source| GgufError::Io {
            path: PathBuf::from("<file descriptor>"),
            source,
        };
        let file_len = file.metadata().map_err(io)?.len();
        let len = if len == 0 {
            file_len.saturating_sub(offset)
        } else {
            len
        };
        let end = offset.checked_add(len);
        if end.is_none_or(|end| end > file_len) {
            let msg = format!("range {offset}+{len} is outside the file of {file_len} bytes");
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                msg,
            )));
        }
        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            let len = usize::try_from(len).map_err(|_| {
                io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "range larger than the address space",
                ))
            })?;
            // SAFETY: as in `open`: a read-only private mapping that Fennec never writes;
            // memmap2 aligns the offset down to a page and hands back exactly `len` bytes.
            let map = unsafe {
                memmap2::MmapOptions::new()
                    .offset(offset)
                    .len(len)
                    .map(file)
            };
            Bytes::Mapped(map.map_err(io)?)
        };
        Self::from_bytes(bytes)
    }

    /// Validates a whole GGUF file held in memory.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        Self::from_bytes(Bytes::Owned(bytes))
    }

    fn from_bytes(bytes: Bytes) -> Result<Self> {
        let header = parse_header(bytes.as_slice())?;
        let by_name = header
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Self {
            path: None,
            bytes,
            header,
            by_name,
        })
    }

    /// The path it was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The parsed header.
    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    /// Format version.
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// The metadata table.
    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    /// Tensor infos in file order.
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// Size of the whole file in bytes.
    pub fn file_size(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    /// The whole file's bytes (tensor data included, still unread until touched).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// The bytes before the tensor data: magic, version, metadata and the tensor table.
    pub fn header_bytes(&self) -> &[u8] {
        let end = (self.header.data_offset as usize).min(self.bytes.as_slice().len());
        &self.bytes.as_slice()[..end]
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        let info = &self.header.tensors[*self.by_name.get(name)?];
        let start = (self.header.data_offset + info.offset) as usize;
        // Bounds were checked when the header was parsed.
        let data = &self.bytes.as_slice()[start..start + info.size as usize];
        Some(TensorView { info, data })
    }

    /// The tensor called `name`, which must be present.
    pub fn require_tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.tensor(name)
            .ok_or_else(|| GgufError::MissingTensor(name.to_string()))
    }

    /// `general.architecture`, if present and a string.
    pub fn architecture(&self) -> Result<&str> {
        self.metadata().get_str("general.architecture")
    }
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.header.version)
            .field("keys", &self.header.metadata.len())
            .field("tensors", &self.header.tensors.len())
            .finish()
    }
}
