//! Writing GGUF v3 files that llama.cpp and gguf-py read unchanged.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

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
    /// Bytes produced while the file is written, so huge tensors never sit in memory.
    Stream(TensorStream<'a>),
}

impl<'a> TensorData<'a> {
    /// Data produced by `fill` at write time; see [`TensorStream`].
    pub fn stream(fill: impl Fn(&mut dyn Write) -> io::Result<()> + Send + Sync + 'a) -> Self {
        Self::Stream(TensorStream(Arc::new(fill)))
    }
}

/// A callback that writes a tensor's bytes, in order, into the sink it is given.
///
/// The writer calls it once per [`GgufWriter::write_to_path`] (or [`GgufWriter::try_to_vec`])
/// with a sink positioned at the tensor's offset, so it must write the same bytes every time
/// and exactly the tensor's byte size: writing past the size fails at once (the next tensor
/// is never overwritten), and a short stream is reported when the callback returns. Both are
/// [`GgufError::BadTensorData`]; an I/O error the callback returns is passed on.
#[derive(Clone)]
pub struct TensorStream<'a>(Arc<StreamFn<'a>>);

/// The callback type of a [`TensorStream`].
pub type StreamFn<'a> = dyn Fn(&mut dyn Write) -> io::Result<()> + Send + Sync + 'a;

impl std::fmt::Debug for TensorStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TensorStream(..)")
    }
}

/// A sink that passes at most `limit` bytes through and counts them.
struct Bounded<W> {
    inner: W,
    written: u64,
    limit: u64,
    overflowed: bool,
}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            self.overflowed = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "tensor stream wrote past the tensor's size",
            ));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a stream failed: its own I/O error, or a wrong length.
enum StreamFailure {
    Io(io::Error),
    Length(GgufError),
}

/// Runs `t`'s stream into `sink`, checking that it writes exactly `t.size` bytes.
fn run_stream(
    t: &PendingTensor<'_>,
    stream: &TensorStream<'_>,
    sink: &mut dyn Write,
) -> Result<(), StreamFailure> {
    let mut bounded = Bounded {
        inner: sink,
        written: 0,
        limit: t.size,
        overflowed: false,
    };
    let outcome = (stream.0)(&mut bounded);
    if bounded.overflowed || (outcome.is_ok() && bounded.written != t.size) {
        let got = if bounded.overflowed {
            "more than that".to_string()
        } else {
            bounded.written.to_string()
        };
        return Err(StreamFailure::Length(GgufError::BadTensorData {
            tensor: t.name.clone(),
            problem: format!(
                "the stream wrote {got} bytes, a {} tensor of dims {:?} takes {}",
                t.ty, t.dims, t.size
            ),
        }));
    }
    outcome.map_err(StreamFailure::Io)
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

    /// Size in bytes of the file this writer produces (header, padding and data).
    pub fn file_size(&self) -> u64 {
        self.header().0.len() as u64 + self.data_len()
    }

    /// Number of tensors added so far.
    pub fn tensor_count(&self) -> usize {
        self.tensors.len()
    }

    /// The whole file in memory (zero tensors are written out as zeros).
    ///
    /// # Panics
    ///
    /// If a [`TensorData::Stream`] tensor fails; use [`GgufWriter::try_to_vec`] for those.
    pub fn to_vec(&self) -> Vec<u8> {
        match self.try_to_vec() {
            Ok(bytes) => bytes,
            Err(e) => panic!("GgufWriter::to_vec: {e}"),
        }
    }

    /// The whole file in memory, or the error of a failing or wrong-length stream.
    pub fn try_to_vec(&self) -> Result<Vec<u8>> {
        let (mut out, offsets) = self.header();
        let data_start = out.len();
        out.resize(data_start + self.data_len() as usize, 0);
        for (t, offset) in self.tensors.iter().zip(offsets) {
            let at = data_start + offset as usize;
            match &t.data {
                TensorData::Bytes(bytes) => out[at..at + bytes.len()].copy_from_slice(bytes),
                TensorData::Zeros => {}
                TensorData::Stream(stream) => {
                    let mut window = &mut out[at..at + t.size as usize];
                    run_stream(t, stream, &mut window).map_err(|e| match e {
                        StreamFailure::Length(e) => e,
                        StreamFailure::Io(source) => GgufError::BadTensorData {
                            tensor: t.name.clone(),
                            problem: format!("the stream failed: {source}"),
                        },
                    })?;
                }
            }
        }
        Ok(out)
    }

    /// Writes the file to `path`; zero tensors become holes, so huge test files stay sparse.
    /// Streamed tensors are written through a small buffer, straight to the file.
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
            match &t.data {
                TensorData::Bytes(bytes) => {
                    w.seek(SeekFrom::Start(data_start + offset)).map_err(io)?;
                    w.write_all(bytes).map_err(io)?;
                }
                TensorData::Zeros => {}
                TensorData::Stream(stream) => {
                    w.seek(SeekFrom::Start(data_start + offset)).map_err(io)?;
                    run_stream(t, stream, &mut w).map_err(|e| match e {
                        StreamFailure::Length(e) => e,
                        StreamFailure::Io(source) => io(source),
                    })?;
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;

    /// A q8_0 tensor of `rows` rows of 64 values, quantized from a ramp.
    fn q8_rows(rows: usize) -> Vec<u8> {
        let row_bytes = GgmlType::Q8_0.row_bytes(64).unwrap() as usize;
        let mut out = vec![0u8; rows * row_bytes];
        for (r, dst) in out.chunks_mut(row_bytes).enumerate() {
            let src: Vec<f32> = (0..64)
                .map(|i| (i as f32 - 32.0) * (r + 1) as f32)
                .collect();
            fennec_quant::quantize_row(GgmlType::Q8_0, &src, dst).unwrap();
        }
        out
    }

    fn temp_path(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fennec-writer-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("out.gguf")
    }

    #[test]
    fn streamed_tensors_round_trip_like_in_memory_ones() {
        let data = q8_rows(5);
        let streamed = data.clone();
        let mut w = GgufWriter::new();
        w.add("general.architecture", "test").unwrap();
        w.add_tensor(
            "norm",
            GgmlType::F32,
            &[3],
            TensorData::Bytes(vec![0u8; 12].into()),
        )
        .unwrap();
        // Written row by row, in several calls, as a real stream does.
        w.add_tensor(
            "streamed",
            GgmlType::Q8_0,
            &[64, 5],
            TensorData::stream(move |sink| {
                for row in streamed.chunks(34) {
                    sink.write_all(row)?;
                }
                Ok(())
            }),
        )
        .unwrap();
        w.add_tensor("hole", GgmlType::Q8_0, &[64, 2], TensorData::Zeros)
            .unwrap();
        w.add_tensor(
            "bytes",
            GgmlType::Q8_0,
            &[64, 5],
            TensorData::Bytes(data.clone().into()),
        )
        .unwrap();
        assert_eq!(w.tensor_count(), 4);

        let in_memory = w.try_to_vec().unwrap();
        assert_eq!(in_memory.len() as u64, w.file_size());
        assert_eq!(w.to_vec(), in_memory);
        let path = temp_path("stream");
        w.write_to_path(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), in_memory);

        let file = GgufFile::open(&path).unwrap();
        assert_eq!(file.require_tensor("streamed").unwrap().data, &data[..]);
        assert_eq!(file.require_tensor("bytes").unwrap().data, &data[..]);
        assert!(file
            .require_tensor("hole")
            .unwrap()
            .data
            .iter()
            .all(|&b| b == 0));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_stream_of_the_wrong_length_is_an_error() {
        for (tag, len) in [("short", 33usize), ("long", 35), ("empty", 0)] {
            let mut w = GgufWriter::new();
            w.add_tensor(
                "t",
                GgmlType::Q8_0,
                &[32],
                TensorData::stream(move |sink| sink.write_all(&vec![7u8; len])),
            )
            .unwrap();
            // A tensor after it must not be overwritten by a long stream.
            w.add_tensor(
                "next",
                GgmlType::F32,
                &[8],
                TensorData::Bytes(vec![1u8; 32].into()),
            )
            .unwrap();
            let err = w.try_to_vec().unwrap_err();
            assert!(
                matches!(&err, GgufError::BadTensorData { tensor, .. } if tensor == "t"),
                "{tag}: {err}"
            );
            assert!(err.to_string().contains("takes 34"), "{tag}: {err}");
            let path = temp_path(tag);
            let err = w.write_to_path(&path).unwrap_err();
            assert!(
                matches!(err, GgufError::BadTensorData { .. }),
                "{tag}: {err}"
            );
            std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        }
    }

    #[test]
    fn a_failing_stream_passes_its_error_on() {
        let mut w = GgufWriter::new();
        w.add_tensor(
            "t",
            GgmlType::F32,
            &[4],
            TensorData::stream(|_| Err(io::Error::other("generator broke"))),
        )
        .unwrap();
        let err = w.try_to_vec().unwrap_err();
        assert!(err.to_string().contains("generator broke"), "{err}");
        let path = temp_path("fail");
        let err = w.write_to_path(&path).unwrap_err();
        assert!(matches!(err, GgufError::Io { .. }), "{err}");
        assert!(err.to_string().contains("generator broke"), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
