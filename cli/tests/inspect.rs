//! `fennec inspect` end to end: output shape, and that a 60 GB file opens without reading it.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use fennec_core::gguf::{GgmlType, GgufWriter, TensorData};
use fennec_core::tensor_names::{
    blk, FFN_DOWN_EXPS, FFN_GATE_EXPS, FFN_UP_EXPS, OUTPUT_NORM, TOKEN_EMBD,
};
use fennec_tests::temp_dir;

/// Runs `fennec` with `args`: (exit success, stdout, stderr, peak child RSS in KiB so far).
fn fennec(args: &[&str]) -> (bool, String, String, i64) {
    let stdout = tempfile_path("stdout");
    let stderr = tempfile_path("stderr");
    let status = Command::new(env!("CARGO_BIN_EXE_fennec"))
        .args(args)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .status()
        .unwrap();
    // The peak RSS of the largest child reaped so far: an upper bound for this one.
    // SAFETY: getrusage only fills the zeroed plain C struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    let ok = status.success();
    let out = std::fs::read_to_string(&stdout).unwrap();
    let err = std::fs::read_to_string(&stderr).unwrap();
    (ok, out, err, usage.ru_maxrss)
}

fn tempfile_path(tag: &str) -> std::path::PathBuf {
    temp_dir("io").join(format!("{tag}-{:?}", std::thread::current().id()))
}

#[test]
fn a_60_gb_sparse_model_inspects_without_reading_its_weights() {
    let dir = temp_dir("sparse");
    let path = dir.join("huge.gguf");
    let mut w = GgufWriter::new();
    w.add("general.architecture", "llama4").unwrap();
    w.add("llama4.block_count", 48u32).unwrap();
    w.add("general.file_type", 15u32).unwrap();
    // Scout's 48 x 3 expert tensors at Q5_K: 461 MB each, 66 GB in all.
    for layer in 0..48 {
        for (name, dims) in [
            (FFN_GATE_EXPS, [5120, 8192, 16]),
            (FFN_UP_EXPS, [5120, 8192, 16]),
            (FFN_DOWN_EXPS, [8192, 5120, 16]),
        ] {
            w.add_tensor(blk(layer, name), GgmlType::Q5K, &dims, TensorData::Zeros)
                .unwrap();
        }
    }
    w.write_to_path(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.len() > 60_000_000_000, "file is {} bytes", meta.len());
    assert!(meta.blocks() * 512 < 16 << 20, "file is not sparse");

    let (ok, out, err, max_rss_kib) =
        fennec(&["inspect", "--json", "--tensors", path.to_str().unwrap()]);
    assert!(ok, "inspect failed: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["tensor_count"], 144);
    assert_eq!(report["tensors"][143]["name"], blk(47, FFN_DOWN_EXPS));
    assert_eq!(
        report["tensors"][0]["dims"],
        serde_json::json!([5120, 8192, 16])
    );
    assert_eq!(report["file_size"].as_u64().unwrap(), meta.len());
    // Touching even 0.1 % of the tensor pages would add 60 MB of resident file pages.
    assert!(
        max_rss_kib < 32 * 1024,
        "inspect peaked at {max_rss_kib} KiB of RSS"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inspect_reports_structure_as_text_and_json() {
    let dir = temp_dir("small");
    let path = dir.join("small.gguf");
    let mut w = GgufWriter::new();
    w.add("general.architecture", "llama").unwrap();
    w.add("general.name", "tiny").unwrap();
    w.add("general.file_type", 7u32).unwrap();
    w.add("llama.block_count", 2u32).unwrap();
    w.add("llama.attention.layer_norm_rms_epsilon", 1e-5f32)
        .unwrap();
    w.add("tokenizer.ggml.model", "gpt2").unwrap();
    w.add_array(
        "tokenizer.ggml.tokens",
        vec!["<s>".to_string(), "</s>".into(), "a".into()],
    )
    .unwrap();
    w.add("tokenizer.ggml.bos_token_id", 0u32).unwrap();
    w.add("tokenizer.ggml.eos_token_id", 1u32).unwrap();
    w.add_tensor(TOKEN_EMBD, GgmlType::Q8_0, &[64, 3], TensorData::Zeros)
        .unwrap();
    w.add_tensor(OUTPUT_NORM, GgmlType::F32, &[64], TensorData::Zeros)
        .unwrap();
    w.write_to_path(&path).unwrap();
    let p = path.to_str().unwrap();

    let (ok, out, err, _) = fennec(&["inspect", "--json", p]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["architecture"], "llama");
    assert_eq!(r["file_type"]["name"], "MOSTLY_Q8_0");
    assert_eq!(r["hyperparameters"]["block_count"], 2);
    assert_eq!(
        r["hyperparameters"]["attention.layer_norm_rms_epsilon"],
        1e-5
    );
    assert_eq!(r["tokenizer"]["tokens"], 3);
    assert_eq!(r["tokenizer"]["special"]["eos"]["text"], "</s>");
    assert_eq!(r["totals_by_type"][0]["type"], "F32");
    assert_eq!(r["totals_by_type"][1]["bytes"], 3 * 2 * 34);
    assert!(r.get("tensors").is_none());

    let (ok, text, _, _) = fennec(&["inspect", "--tensors", p]);
    assert!(ok);
    assert!(text.contains("MOSTLY_Q8_0 (7)"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with(TOKEN_EMBD))
        .unwrap();
    assert!(row.contains("Q8_0") && row.contains("64 x 3"), "{row}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn broken_or_missing_files_fail_with_a_message() {
    let dir = temp_dir("broken");
    let path = dir.join("bad.gguf");
    std::fs::write(&path, b"GGUF\x04\0\0\0").unwrap();
    let (ok, _, err, _) = fennec(&["inspect", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("GGUF version 4 is not supported"), "{err}");
    let (ok, _, err, _) = fennec(&["inspect", "/nonexistent/model.gguf"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `inspect` says how a `llama4` file will run: its layer pattern, and which of llama.cpp's
/// hard-coded values the file overrides.
#[test]
fn inspect_shows_the_llama4_plan_and_which_values_the_file_sets() {
    let path = fennec_tests::fixture("llama4/models/chunked.f32.gguf");
    let (ok, out, err, _) = fennec(&["inspect", "--json", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let plan = &report["llama4"];
    assert_eq!(plan["chunk_size"], 16);
    assert_eq!(plan["chunk_size_from"], "file");
    assert_eq!(plan["temperature_length"], 8.0);
    assert_eq!(plan["temperature_scale"], 0.5);
    assert_eq!(plan["experts_per_token"], 2);
    assert_eq!(plan["nope_layers"], serde_json::json!([3]));
    assert_eq!(plan["moe_layers"], serde_json::json!([0, 1, 2, 3]));
    let path = fennec_tests::fixture("llama4/models/scout.f32.gguf");
    let (_, out, _, _) = fennec(&["inspect", "--json", path.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["llama4"]["chunk_size"], 8192);
    assert_eq!(report["llama4"]["chunk_size_from"], "default");
    assert_eq!(report["llama4"]["qk_norm"], true);
}
