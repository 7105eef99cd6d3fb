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
use std::ops::Range;
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

/// The bytes of an opened file: a read-only private mapping (copy-on-write, so that
/// [`GgufFile::edit_in_memory`] can rewrite pages without touching the file), or an owned
/// buffer.
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

/// The page-aligned span of `range` within `map`, `(address, length)`: what `madvise` and
/// `mprotect` take. `None` for an empty range or one past the end.
#[cfg(unix)]
pub(crate) fn page_span(map: &[u8], range: Range<usize>) -> Option<(*mut libc::c_void, usize)> {
    if range.is_empty() || range.end > map.len() {
        return None;
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let start = map.as_ptr() as usize + range.start;
    let aligned = start / page * page;
    Some((
        aligned as *mut libc::c_void,
        range.end - range.start + (start - aligned),
    ))
}

/// Runs `edit` on `range` (in bounds) of the private mapping `map`, writable meanwhile.
#[cfg(unix)]
fn edit_mapped<R>(
    map: &mut memmap2::Mmap,
    range: std::ops::Range<usize>,
    edit: impl FnOnce(&mut [u8]) -> R,
) -> std::io::Result<R> {
    let Some((aligned, span)) = page_span(&map[..], range.clone()) else {
        return Ok(edit(&mut []));
    };
    let protect = |prot: libc::c_int| {
        // SAFETY: [aligned, aligned + span) lies within the mapping's pages (memmap2 maps
        // from the page below its first byte, and the kernel maps whole pages); `map` is
        // borrowed mutably, so no reference into it is live while its protection changes.
        let rc = unsafe { libc::mprotect(aligned, span, prot) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    protect(libc::PROT_READ | libc::PROT_WRITE)?;
    // SAFETY: `range` is in bounds of the mapping, whose pages there are now writable and
    // private (copy-on-write: the file is never written); `map` is borrowed mutably, so
    // this slice is the only reference to those bytes while it lives. `as_ptr` is the
    // mapping's own address, not derived from a shared reference.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(map.as_ptr().cast_mut().add(range.start), range.len())
    };
    let result = edit(bytes);
    protect(libc::PROT_READ)?;
    Ok(result)
}

/// Editing a mapping in place needs `mprotect`: elsewhere it is refused.
#[cfg(not(unix))]
fn edit_mapped<R>(
    _map: &mut memmap2::Mmap,
    _range: std::ops::Range<usize>,
    _edit: impl FnOnce(&mut [u8]) -> R,
) -> std::io::Result<R> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "editing a mapped file in memory needs mprotect",
    ))
}

/// Maps `len` bytes of `file` from `offset` (`len = 0`: to the end) read-only and private;
/// `None` for an empty range. The range must lie within the file.
pub(crate) fn map_file_range(file: &File, offset: u64, len: u64) -> Result<Option<memmap2::Mmap>> {
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
    if len == 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "range larger than the address space",
        ))
    })?;
    // SAFETY: as in `GgufFile::open`: a read-only private mapping of a file Fennec never
    // writes; memmap2 aligns the offset down to a page and hands back exactly `len` bytes.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map_copy_read_only(file)
    };
    Ok(Some(map.map_err(io)?))
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
            // SAFETY: the mapping is read-only and private (copy-on-write) to this value.
            // Another process truncating the file while it is mapped would fault on access,
            // as it does for every mmap-based loader (llama.cpp included); Fennec never
            // writes to the file.
            let map = unsafe { memmap2::MmapOptions::new().map_copy_read_only(&file) };
            Bytes::Mapped(map.map_err(io)?)
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
        let bytes = match map_file_range(file, offset, len)? {
            Some(map) => Bytes::Mapped(map),
            None => Bytes::Owned(Vec::new()),
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

    /// Runs `edit` on bytes `range` of the file made writable in memory, then makes them
    /// read-only again. A mapping is private: only the pages of `range` become writable,
    /// pages `edit` writes become this process's own copies (memory it holds instead of
    /// the page cache's), and the file on disk never changes.
    pub fn edit_in_memory<R>(
        &mut self,
        range: std::ops::Range<usize>,
        edit: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R> {
        let path = self
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("<mapping>"));
        let io = |source| GgufError::Io {
            path: path.clone(),
            source,
        };
        let len = self.bytes.as_slice().len();
        if range.start > range.end || range.end > len {
            let msg = format!("range {range:?} is outside the {len} bytes of the file");
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                msg,
            )));
        }
        match &mut self.bytes {
            Bytes::Owned(v) => Ok(edit(&mut v[range])),
            Bytes::Mapped(map) => edit_mapped(map, range, edit).map_err(io),
        }
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
