//! Checks fennec-quant against golden vectors from gguf-py 0.19.0 (`gguf.quants`), written
//! by `tests/fixtures/gen_quant_goldens.py` (see its docstring for the file format).
//!
//! Dequantization must be bit-exact for every type. Quantization must be bit-for-bit for
//! the types gguf-py quantizes (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and for the
//! activation types Q8_1 and Q8_K, whose goldens come from the script's numpy mirror of
//! ggml's reference quantizer. gguf-py has no quantizer for Q2_K..Q6_K, IQ4_NL, IQ4_XS,
//! so for those only dequantization is checked here; their quantizers are checked bit for
//! bit against ggml's C reference in `ggml_ref.rs`, round trips in `properties.rs`.

use std::path::PathBuf;

use fennec_quant::{dequantize_row, quantize_row, GgmlType};

/// One golden file.
struct Golden {
    ty: GgmlType,
    rows: usize,
    n: usize,
    /// `input` is meaningful and `quant` is its quantization.
    has_input: bool,
    input: Vec<f32>,
    quant: Vec<u8>,
    dequant: Vec<f32>,
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn load(name: &str) -> Golden {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(format!("{name}.bin"));
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[0..4], b"FQG1", "{name}: bad magic");
    let ty = GgmlType::from_u32(le_u32(&b, 4)).unwrap();
    assert_eq!(ty.name(), name);
    let rows = le_u32(&b, 8) as usize;
    let n = le_u32(&b, 12) as usize;
    let flags = le_u32(&b, 16);
    let row_bytes = ty.row_bytes(n as u64).unwrap() as usize;
    let f32_len = rows * n * 4;
    let q_start = 20 + f32_len;
    let d_start = q_start + rows * row_bytes;
    assert_eq!(b.len(), d_start + f32_len, "{name}: truncated");
    Golden {
        ty,
        rows,
        n,
        has_input: flags & 1 != 0,
        input: f32s(&b[20..q_start]),
        quant: b[q_start..d_start].to_vec(),
        dequant: f32s(&b[d_start..]),
    }
}

fn check_dequant(g: &Golden) {
    let row_bytes = g.quant.len() / g.rows;
    for r in 0..g.rows {
        let mut out = vec![0.0f32; g.n];
        dequantize_row(g.ty, &g.quant[r * row_bytes..(r + 1) * row_bytes], &mut out).unwrap();
        let want = &g.dequant[r * g.n..(r + 1) * g.n];
        for (i, (got, want)) in out.iter().zip(want).enumerate() {
            assert!(
                got.to_bits() == want.to_bits(),
                "{} dequant row {r} elem {i}: got {got:e}, gguf-py {want:e}",
                g.ty
            );
        }
    }
}

fn check_quant(g: &Golden) {
    assert!(g.has_input);
    let row_bytes = g.quant.len() / g.rows;
    for r in 0..g.rows {
        let mut out = vec![0u8; row_bytes];
        quantize_row(g.ty, &g.input[r * g.n..(r + 1) * g.n], &mut out).unwrap();
        let want = &g.quant[r * row_bytes..(r + 1) * row_bytes];
        if out != want {
            let i = out.iter().zip(want).position(|(a, b)| a != b).unwrap();
            panic!(
                "{} quant row {r}: first differing byte {i} (block {}, offset {}): got {:#04x}, want {:#04x}",
                g.ty,
                i / g.ty.block_bytes(),
                i % g.ty.block_bytes(),
                out[i],
                want[i]
            );
        }
    }
}

macro_rules! golden_tests {
    ($($test:ident: $name:literal, quant: $q:literal;)*) => {$(
        #[test]
        fn $test() {
            let g = load($name);
            check_dequant(&g);
            if $q {
                check_quant(&g);
            }
        }
    )*};
}

golden_tests! {
    f32_golden: "F32", quant: true;
    f16_golden: "F16", quant: true;
    bf16_golden: "BF16", quant: true;
    q4_0_golden: "Q4_0", quant: true;
    q4_1_golden: "Q4_1", quant: true;
    q5_0_golden: "Q5_0", quant: true;
    q5_1_golden: "Q5_1", quant: true;
    q8_0_golden: "Q8_0", quant: true;
    q8_1_golden: "Q8_1", quant: true;
    q8_k_golden: "Q8_K", quant: true;
    q2_k_golden: "Q2_K", quant: false;
    q3_k_golden: "Q3_K", quant: false;
    q4_k_golden: "Q4_K", quant: false;
    q5_k_golden: "Q5_K", quant: false;
    q6_k_golden: "Q6_K", quant: false;
    iq4_nl_golden: "IQ4_NL", quant: false;
    iq4_xs_golden: "IQ4_XS", quant: false;
}

#[test]
fn golden_files_stay_small() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let total: u64 = ["golden", "ggml_ref"]
        .iter()
        .flat_map(|d| std::fs::read_dir(fixtures.join(d)).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total < 1 << 20, "goldens total {total} bytes");
}
