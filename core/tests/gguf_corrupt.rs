//! A corpus of broken files made from a valid one: each must be refused with an error that
//! names the problem, without panicking, hanging or allocating far beyond the file's size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use fennec_core::gguf::{GgmlType, GgufError, GgufFile, GgufWriter, TensorData};
use fennec_core::ErrorKind;
use fennec_quant::rng::Rng;

/// Tracks each thread's live and peak heap bytes so a test can bound what parsing allocates
/// (per thread, since tests run in parallel).
struct CountingAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn record(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: defers to the system allocator; only adds bookkeeping that never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(-(layout.size() as isize));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const T1: &str = "blk.0.attn_q.weight";
const T2: &str = "blk.0.ffn_up.weight";

fn valid_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add("general.architecture", "llama").unwrap();
    w.add("llama.block_count", 1u32).unwrap();
    w.add_array(
        "tokenizer.ggml.tokens",
        vec!["<s>".to_string(), "a".into(), "b".into()],
    )
    .unwrap();
    w.add_array("tokenizer.ggml.scores", vec![0.0f32, -1.0, -2.0])
        .unwrap();
    // Sizes are multiples of 32 so the file has no trailing padding.
    w.add_tensor(
        T1,
        GgmlType::F32,
        &[8, 4],
        TensorData::Bytes(vec![1u8; 128].into()),
    )
    .unwrap();
    w.add_tensor(
        T2,
        GgmlType::Q8_0,
        &[32, 16],
        TensorData::Bytes(vec![2u8; 544].into()),
    )
    .unwrap();
    w.to_vec()
}

/// Parses `bytes`, asserting it fails with a message containing every `needle`, and that the
/// peak heap use while parsing stays within a small multiple of the file size.
fn assert_refused(bytes: &[u8], needles: &[&str]) -> GgufError {
    let input = bytes.to_vec();
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let result = std::panic::catch_unwind(move || GgufFile::from_vec(input));
    let peak = (PEAK.with(Cell::get) - base) as usize;
    let err = match result {
        Err(_) => panic!("parser panicked on a corrupt file (needles {needles:?})"),
        Ok(Ok(_)) => panic!("corrupt file accepted (expected {needles:?})"),
        Ok(Err(e)) => e,
    };
    assert_eq!(err.kind(), ErrorKind::InvalidGguf, "{err}");
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} does not mention {n:?}");
    }
    // The copy of the input handed to the parser is counted too.
    assert!(
        peak <= 5 * bytes.len() + (64 << 10),
        "parsing a {}-byte file allocated {peak} bytes ({msg})",
        bytes.len()
    );
    err
}

/// Position of the u64 length that precedes string `s` in the header.
fn string_at(bytes: &[u8], s: &str) -> usize {
    let mut needle = (s.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(s.as_bytes());
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{s} not in file"))
}

/// Offsets of a tensor info's fields: (n_dims, first dim, type, offset).
fn tensor_fields(bytes: &[u8], name: &str, n_dims: usize) -> (usize, usize, usize, usize) {
    let n_dims_at = string_at(bytes, name) + 8 + name.len();
    let dims_at = n_dims_at + 4;
    let type_at = dims_at + 8 * n_dims;
    (n_dims_at, dims_at, type_at, type_at + 4)
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn the_base_file_is_valid() {
    let gguf = GgufFile::from_vec(valid_file()).unwrap();
    assert_eq!(gguf.tensor_infos().len(), 2);
}

#[test]
fn every_truncation_is_refused() {
    let good = valid_file();
    for len in 0..good.len() {
        let err = assert_refused(&good[..len], &[]);
        let msg = err.to_string();
        assert!(
            msg.contains("truncated")
                || msg.contains("cannot fit")
                || msg.contains("past")
                || msg.contains("data section")
                || msg.contains("magic"),
            "truncation at {len}: unhelpful error {msg:?}"
        );
    }
}

#[test]
fn bad_magic_and_versions() {
    let good = valid_file();
    let mut b = good.clone();
    b[..4].copy_from_slice(b"GGML");
    assert_refused(&b, &["not a GGUF file"]);
    for (v, needle) in [(4u32, "version 4"), (1, "version 1"), (0, "version 0")] {
        let mut b = good.clone();
        put_u32(&mut b, 4, v);
        assert_refused(&b, &[needle, "not supported"]);
    }
    let mut b = good.clone();
    put_u32(&mut b, 4, 3u32.swap_bytes());
    assert_refused(&b, &["big-endian"]);
}

#[test]
fn huge_counts_and_lengths() {
    let good = valid_file();
    let mut b = good.clone();
    put_u64(&mut b, 8, 1 << 63);
    assert_refused(&b, &["tensor count", "9223372036854775808"]);
    let mut b = good.clone();
    put_u64(&mut b, 16, 1 << 63);
    assert_refused(&b, &["key/value count"]);
    let mut b = good.clone();
    put_u64(&mut b, 16, u64::MAX);
    assert_refused(&b, &["key/value count"]);
    // The token array's length.
    let tokens = string_at(&good, "tokenizer.ggml.tokens") + 8 + "tokenizer.ggml.tokens".len();
    let mut b = good.clone();
    put_u64(&mut b, tokens + 8, 1 << 63);
    assert_refused(&b, &["array length", "tokenizer.ggml.tokens"]);
    // A string length past EOF: the architecture value.
    let value = string_at(&good, "llama");
    let mut b = good.clone();
    put_u64(&mut b, value, (good.len() as u64) + 1);
    assert_refused(&b, &["general.architecture", "cannot fit"]);
    // A key length past EOF.
    let mut b = good.clone();
    put_u64(&mut b, 24, 1 << 62);
    assert_refused(&b, &["metadata key #0"]);
}

#[test]
fn bad_metadata() {
    let good = valid_file();
    // Unknown value type of the first key.
    let type_at = 24 + 8 + "general.architecture".len();
    let mut b = good.clone();
    put_u32(&mut b, type_at, 13);
    assert_refused(&b, &["general.architecture", "unknown value type 13"]);
    // Unknown element type of an array.
    let tokens = string_at(&good, "tokenizer.ggml.tokens") + 8 + "tokenizer.ggml.tokens".len();
    let mut b = good.clone();
    put_u32(&mut b, tokens + 4, 99);
    assert_refused(&b, &["tokenizer.ggml.tokens", "unknown value type 99"]);
    // Invalid UTF-8 in a token.
    let mut b = good.clone();
    let at = string_at(&good, "<s>") + 8;
    b[at] = 0xff;
    assert_refused(&b, &["UTF-8", "element 0 of \"tokenizer.ggml.tokens\""]);
    // Duplicate key: a hand-made header holding `a: u8` twice.
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&2u64.to_le_bytes());
    for _ in 0..2 {
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(b'a');
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(1);
    }
    assert_refused(&b, &["duplicate metadata key \"a\""]);
}

#[test]
fn bad_alignment_values() {
    for (value, needle) in [
        (0u32, "general.alignment is 0"),
        (48, "general.alignment is 48"),
    ] {
        let mut w = GgufWriter::new();
        w.add("general.alignment", 32u32).unwrap();
        let mut b = w.to_vec();
        let at = string_at(&b, "general.alignment") + 8 + "general.alignment".len() + 4;
        put_u32(&mut b, at, value);
        assert_refused(&b, &[needle, "power of two"]);
    }
    let mut w = GgufWriter::new();
    w.add("general.alignment", 32u32).unwrap();
    let mut b = w.to_vec();
    let at = string_at(&b, "general.alignment") + 8 + "general.alignment".len();
    put_u32(&mut b, at, 5); // i32: same width, wrong type
    assert_refused(&b, &["general.alignment", "is i32, expected u32"]);
}

#[test]
fn bad_tensor_infos() {
    let good = valid_file();
    let (n_dims_at, dims_at, type_at, offset_at) = tensor_fields(&good, T2, 2);

    let mut b = good.clone();
    put_u64(&mut b, offset_at, 16);
    assert_refused(&b, &[T2, "offset 16", "alignment 32"]);

    let mut b = good.clone();
    put_u64(&mut b, offset_at, 0);
    assert_refused(&b, &["overlap", T1, T2]);

    let mut b = good.clone();
    put_u64(&mut b, offset_at, 1 << 40);
    assert_refused(&b, &[T2, "data section has only"]);

    let mut b = good.clone();
    put_u64(&mut b, offset_at, u64::MAX - 31);
    assert_refused(&b, &[T2]);

    let mut b = good.clone();
    put_u64(&mut b, dims_at + 8, 0);
    assert_refused(&b, &[T2, "zero dimension"]);

    let mut b = good.clone();
    put_u64(&mut b, dims_at + 8, 1 << 62);
    assert_refused(&b, &[T2, "too large"]);

    let mut b = good.clone();
    put_u64(&mut b, dims_at + 8, 1000);
    assert_refused(&b, &[T2, "data section has only"]);

    let mut b = good.clone();
    put_u64(&mut b, dims_at, 33);
    assert_refused(&b, &[T2, "not a multiple of Q8_0's block of 32"]);

    let mut b = good.clone();
    put_u32(&mut b, type_at, 4);
    assert_refused(&b, &[T2, "unknown type 4"]);

    let mut b = good.clone();
    put_u32(&mut b, type_at, 0xdead);
    assert_refused(&b, &[T2, "unknown type 57005"]);

    let mut b = good.clone();
    put_u32(&mut b, n_dims_at, 5);
    assert_refused(&b, &[T2, "5 dimensions"]);

    let mut b = good.clone();
    put_u32(&mut b, n_dims_at, u32::MAX);
    assert_refused(&b, &[T2, "dimensions"]);

    // Same name twice: rename T2 to T1 (same length).
    assert_eq!(T1.len(), T2.len());
    let mut b = good.clone();
    let at = string_at(&good, T2) + 8;
    b[at..at + T1.len()].copy_from_slice(T1.as_bytes());
    assert_refused(&b, &["duplicate tensor name", T1]);
}

#[test]
fn deeply_nested_arrays_are_refused_not_recursed() {
    // key "k", type array, then 100 levels of array-of-one-array.
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&9u32.to_le_bytes());
    for _ in 0..100_000 {
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
    }
    assert_refused(&b, &["nests arrays deeper"]);
}

#[test]
fn random_byte_flips_never_panic() {
    let good = valid_file();
    let mut rng = Rng::xorshift64(0x9e37_79b9_7f4a_7c15);
    let mut next = || rng.next_u64();
    for _ in 0..20_000 {
        let mut b = good.clone();
        let header_len = 400.min(b.len());
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % header_len;
            b[at] = next() as u8;
        }
        let r = std::panic::catch_unwind(|| GgufFile::from_vec(b.clone()));
        assert!(r.is_ok(), "panic on mutated file");
    }
}
