//! Writes the seed corpora of `model_load` and `session_restore` under `fuzz/corpus/`.
//!
//! Rerun after a change to the tiny model or the session format:
//! `cargo run --manifest-path fuzz/Cargo.toml --example write_corpus`

use std::path::Path;

use fennec_core::gguf::GgufFile;
use fennec_core::{Input, LoadOptions, Model};
use fennec_fuzz::restore_fixture::{model, saved, Variant};
use fennec_fuzz::{tiny_model, Choices};

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    write_model_load(&corpus.join("model_load"));
    write_session_restore(&corpus.join("session_restore"));
}

/// Choice strings that each load a model of another kind. The offsets are where
/// [`tiny_model`] reads those decisions for the default llama (2 layers, byte-level BPE).
fn write_model_load(dir: &Path) {
    const VOCAB: usize = 19; // vocabulary style: 1 = SentencePiece
    const TEMPLATE: usize = 296; // chat template: 1 = the other one, 3 = the input's text
    const TENSORS: usize = 298; // tensor contents seed, then one choice per tensor
    const TEXT: usize = 319; // the text encoded after loading: a length, then bytes
    let with = |at: &[(usize, &[u8])]| {
        let mut v = Vec::new();
        for &(offset, bytes) in at {
            v.resize(v.len().max(offset), 0);
            v.extend_from_slice(bytes);
        }
        v
    };
    let text = b"\x0c<s>Hi there";
    let seeds = [
        ("llama", Vec::new()),
        ("llama4", vec![2]),
        ("spm-vocab", with(&[(VOCAB, &[1])])),
        ("fancy-template", with(&[(TEMPLATE, &[1]), (TEXT, text)])),
        (
            "input-template",
            with(&[(TEMPLATE, b"\x03\x0c{{ messages }}")]),
        ),
        // d = 32, one head: token_embd as Q8_0, blk.0.attn_q as Q4_0.
        (
            "quantized",
            with(&[(1, &[2, 1]), (TENSORS + 1, &[7, 2]), (TENSORS + 5, &[7, 3])]),
        ),
        ("text", with(&[(TEXT, text)])),
    ];
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in seeds {
        let loads = tiny_model(&mut Choices::new(&bytes))
            .ok()
            .and_then(|b| GgufFile::from_vec(b).ok())
            .map(|f| Model::from_gguf(f, &LoadOptions::with_threads(1)).map(|_| ()));
        println!("model_load/{name}: {} bytes, loads: {loads:?}", bytes.len());
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

/// Sessions of every variant saved after a few tokens (past Llama 4's ring), and one that
/// holds embedding rows.
fn write_session_restore(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let ids: Vec<u32> = (10..21).collect();
    for i in 0..Variant::COUNT {
        let variant = Variant::from_byte(i as u8);
        let m = model(variant);
        let bytes = saved(variant, &m, &[Input::Tokens(&ids)]);
        let name = format!(
            "seed-{}-{}",
            if variant.llama4 { "llama4" } else { "llama" },
            variant.kv
        );
        println!("session_restore/{name}: {} bytes", bytes.len());
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let variant = Variant::from_byte(0);
    let m = model(variant);
    let rows = vec![0.25f32; 3 * m.n_embd()];
    let inputs = [
        Input::Tokens(&ids[..2]),
        Input::Embeddings { data: &rows, n: 3 },
        Input::Tokens(&ids[2..4]),
    ];
    let bytes = saved(variant, &m, &inputs);
    println!("session_restore/seed-embeddings: {} bytes", bytes.len());
    std::fs::write(dir.join("seed-llama-embeddings"), bytes).unwrap();
}
