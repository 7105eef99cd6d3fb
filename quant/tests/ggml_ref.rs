//! Bit-exactness against ggml's own C reference quantizers (`quantize_row_*_ref`), for the
//! types gguf-py cannot quantize (Q2_K..Q6_K, Q8_K, Q8_1, IQ4_NL, IQ4_XS) and, again, the
//! legacy ones. The expected bytes in `tests/fixtures/ggml_ref/` were written by
//! `tests/fixtures/ggml_ref_harness.c` (see it for the ggml commit and how to rerun);
//! `FENNEC_GGML_REF_DIR` may point at a freshly generated directory instead.

use std::path::PathBuf;

use fennec_quant::{quantize_row, GgmlType};

fn fixture_dir() -> PathBuf {
    std::env::var_os("FENNEC_GGML_REF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ggml_ref")
        })
}

/// The input rows and the row length.
fn input() -> (Vec<f32>, usize) {
    let b = std::fs::read(fixture_dir().join("input.bin")).unwrap();
    assert_eq!(&b[0..4], b"FQGI");
    let rows = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    let n = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
    let x: Vec<f32> = b[12..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(x.len(), rows * n);
    (x, n)
}

/// The one documented deviation: for an all-zero IQ4_NL block ggml leaves the indices as
/// whatever its scratch buffer held from the previous block; Fennec writes zero indices.
/// Both have `d = 0`, so both dequantize to zeros.
fn known_deviation(ty: GgmlType, input_block: &[f32]) -> bool {
    ty == GgmlType::Iq4Nl && input_block.iter().all(|v| v.abs() < 1e-15)
}

fn check(ty: GgmlType) {
    let (x, n) = input();
    let want = std::fs::read(fixture_dir().join(format!("{}.bin", ty.name()))).unwrap();
    let row_bytes = ty.row_bytes(n as u64).unwrap() as usize;
    assert_eq!(want.len(), x.len() / n * row_bytes, "{ty}: fixture size");
    let (bl, bb) = (ty.block_len(), ty.block_bytes());
    let mut mismatched = Vec::new();
    for (r, (xr, wr)) in x
        .chunks_exact(n)
        .zip(want.chunks_exact(row_bytes))
        .enumerate()
    {
        let mut got = vec![0u8; row_bytes];
        quantize_row(ty, xr, &mut got).unwrap();
        for (i, (g, w)) in got.chunks_exact(bb).zip(wr.chunks_exact(bb)).enumerate() {
            if g != w && !known_deviation(ty, &xr[i * bl..(i + 1) * bl]) {
                mismatched.push(format!(
                    "row {r} block {i}:\n fennec {g:02x?}\n ggml   {w:02x?}"
                ));
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "{ty} differs from ggml:\n{}",
        mismatched.join("\n")
    );
}

macro_rules! ggml_ref_tests {
    ($($test:ident: $ty:ident;)*) => {$(
        #[test]
        fn $test() {
            check(GgmlType::$ty);
        }
    )*};
}

ggml_ref_tests! {
    q4_0_matches_ggml: Q4_0;
    q4_1_matches_ggml: Q4_1;
    q5_0_matches_ggml: Q5_0;
    q5_1_matches_ggml: Q5_1;
    q8_0_matches_ggml: Q8_0;
    q8_1_matches_ggml: Q8_1;
    q2_k_matches_ggml: Q2K;
    q3_k_matches_ggml: Q3K;
    q4_k_matches_ggml: Q4K;
    q5_k_matches_ggml: Q5K;
    q6_k_matches_ggml: Q6K;
    q8_k_matches_ggml: Q8K;
    iq4_nl_matches_ggml: Iq4Nl;
    iq4_xs_matches_ggml: Iq4Xs;
}
