//! Everything that can be wrong with a GGUF file, each naming the problem.

use std::path::PathBuf;

/// An error reading, validating or writing a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened, mapped or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The first four bytes are not `GGUF`.
    #[error(
        "not a GGUF file: magic is {found:02x?}, expected \"GGUF\"{}",
        magic_hint(found)
    )]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A version Fennec does not read.
    #[error("GGUF version {0} is not supported (Fennec reads versions 2 and 3)")]
    UnsupportedVersion(u32),
    /// A big-endian GGUF file.
    #[error(
        "big-endian GGUF (version {0} byte-swapped) is not supported; convert it to little-endian"
    )]
    BigEndian(u32),
    /// The file ends inside a structure.
    #[error(
        "file truncated: {what} at byte {offset} needs {needed} bytes but the file has {file_size}"
    )]
    Truncated {
        /// What was being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// A count or length that cannot fit in the file.
    #[error("{what} is {count}, which cannot fit in the {available} bytes left in the file")]
    CountTooLarge {
        /// What was counted.
        what: String,
        /// The count read.
        count: u64,
        /// Bytes left after it.
        available: u64,
    },
    /// A string that is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which string.
        what: String,
    },
    /// A metadata value type number that GGUF does not define.
    #[error("metadata key {key:?} has unknown value type {type_id}")]
    UnknownValueType {
        /// The key.
        key: String,
        /// The type number read.
        type_id: u32,
    },
    /// Arrays nested deeper than Fennec follows.
    #[error("metadata key {key:?} nests arrays deeper than {max} levels")]
    NestingTooDeep {
        /// The key.
        key: String,
        /// The limit.
        max: usize,
    },
    /// The same metadata key twice.
    #[error("duplicate metadata key {0:?}")]
    DuplicateKey(String),
    /// The same tensor name twice.
    #[error("duplicate tensor name {0:?}")]
    DuplicateTensor(String),
    /// `general.alignment` is zero or not a power of two.
    #[error("general.alignment is {0}; it must be a non-zero power of two")]
    BadAlignment(u64),
    /// A tensor type number that no ggml type has.
    #[error("tensor {tensor:?} has unknown type {type_id}")]
    UnknownTensorType {
        /// The tensor.
        tensor: String,
        /// The type number read.
        type_id: u32,
    },
    /// A tensor with more dimensions than ggml's four.
    #[error("tensor {tensor:?} has {n_dims} dimensions; GGUF allows at most 4")]
    TooManyDims {
        /// The tensor.
        tensor: String,
        /// The count read.
        n_dims: u32,
    },
    /// A tensor with a zero-length dimension.
    #[error("tensor {tensor:?} has a zero dimension: {dims:?}")]
    ZeroDim {
        /// The tensor.
        tensor: String,
        /// Its dims in GGML order.
        dims: Vec<u64>,
    },
    /// Dims whose product or byte size overflows.
    #[error("tensor {tensor:?} with dims {dims:?} is too large (element or byte count overflows)")]
    ShapeOverflow {
        /// The tensor.
        tensor: String,
        /// Its dims in GGML order.
        dims: Vec<u64>,
    },
    /// A first dimension that is not a whole number of blocks.
    #[error(
        "tensor {tensor:?}: first dimension {ne0} is not a multiple of {ty}'s block of {block}"
    )]
    PartialBlock {
        /// The tensor.
        tensor: String,
        /// Its type.
        ty: fennec_quant::GgmlType,
        /// Its first dimension.
        ne0: u64,
        /// The type's block length.
        block: usize,
    },
    /// A tensor offset that is not a multiple of the alignment.
    #[error("tensor {tensor:?} starts at data offset {offset}, not a multiple of the alignment {alignment}")]
    MisalignedTensor {
        /// The tensor.
        tensor: String,
        /// Its offset in the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// A tensor that extends past the end of the file.
    #[error("tensor {tensor:?} occupies data bytes {start}..{end} but the data section has only {data_size} bytes (file truncated?)")]
    TensorOutOfBounds {
        /// The tensor.
        tensor: String,
        /// Its first byte in the data section.
        start: u64,
        /// One past its last byte.
        end: u64,
        /// Bytes in the data section.
        data_size: u64,
    },
    /// Two tensors sharing bytes.
    #[error("tensors {first:?} and {second:?} overlap in the data section (at byte {at})")]
    OverlappingTensors {
        /// The one that starts first.
        first: String,
        /// The one that starts inside it.
        second: String,
        /// Where the second starts.
        at: u64,
    },
    /// A metadata key that is not there.
    #[error("metadata key {0:?} is missing")]
    MissingKey(String),
    /// A metadata key with another type than asked for.
    #[error("metadata key {key:?} is {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// The type asked for.
        expected: String,
        /// The type in the file.
        found: String,
    },
    /// A tensor name that is not there.
    #[error("tensor {0:?} is missing")]
    MissingTensor(String),
    /// A tensor whose data does not match what the writer was told.
    #[error("tensor {tensor:?}: {problem}")]
    BadTensorData {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        problem: String,
    },
}

/// Result with a [`GgufError`].
pub type Result<T, E = GgufError> = std::result::Result<T, E>;

/// What a known non-GGUF magic is, for the error message.
fn magic_hint(found: &[u8; 4]) -> &'static str {
    match found {
        b"lmgg" => {
            " (a whisper.cpp ggml .bin: a speech model, for WhisperModel or `fennec transcribe`)"
        }
        _ => "",
    }
}
