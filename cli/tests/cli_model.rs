//! The model commands of `fennec` end to end on SmolLM2 (fetched by scripts/fetch-models.sh).

mod common;

use common::{fennec, smollm2};

#[test]
fn run_json_reports_prompt_generated_tokens_and_stop() {
    let m = smollm2();
    let (ok, out, err) = fennec(&[
        "run",
        "-m",
        &m,
        "-p",
        "The capital of France is",
        "--temp",
        "0",
        "-n",
        "5",
        "--json",
        "-t",
        "2",
    ]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    // llama.cpp's prompt ids and first five greedy tokens (tests/fixtures/llamacpp/smollm2/greedy.json).
    assert_eq!(
        r["prompt_tokens"],
        serde_json::json!([504, 3575, 282, 4649, 314])
    );
    assert_eq!(r["tokens"], serde_json::json!([7042, 30, 198, 198, 504]));
    assert_eq!(r["stop"], "length");
    assert!(r["text"].as_str().unwrap().starts_with(" Paris."), "{out}");
}

#[test]
fn tokenize_prints_ids_and_special_tokens_only_when_asked() {
    let m = smollm2();
    let (ok, out, _) = fennec(&["tokenize", "-m", &m, "<|im_start|>user"]);
    assert!(ok);
    let plain: Vec<u32> = serde_json::from_str(&out).unwrap();
    let (ok, out, _) = fennec(&["tokenize", "-m", &m, "--special", "<|im_start|>user"]);
    assert!(ok);
    let special: Vec<u32> = serde_json::from_str(&out).unwrap();
    assert_eq!(special, vec![1, 4093]);
    assert!(plain.len() > 2 && !plain.contains(&1), "{plain:?}");
}

#[test]
fn perplexity_and_bench_print_their_results() {
    let m = smollm2();
    let text =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/llamacpp/ppl.txt");
    let (ok, out, err) = fennec(&[
        "perplexity",
        "-m",
        &m,
        "-f",
        text.to_str().unwrap(),
        "-c",
        "128",
        "--chunks",
        "2",
    ]);
    assert!(ok, "{err}");
    let last = out.lines().last().unwrap();
    let ppl: f64 = last.strip_prefix("PPL = ").unwrap().parse().unwrap();
    assert!(ppl > 1.0 && ppl < 100.0, "{out}");

    let (ok, out, err) = fennec(&[
        "bench", "-m", &m, "-p", "16", "-n", "4", "-r", "1", "-t", "2", "--json",
    ]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in [
        "pp_tokens",
        "pp_tok_s",
        "tg_tokens",
        "tg_tok_s",
        "threads",
        "peak_rss_mb",
    ] {
        assert!(r.get(key).is_some(), "{key} missing in {out}");
    }
    assert!(r["tg_tok_s"].as_f64().unwrap() > 0.0 && r["threads"] == 2);
    assert!(r["peak_rss_mb"].as_f64().unwrap() > 10.0, "{out}");
    assert!(r["disk_read_mb"].as_f64().is_some(), "{out}");
    // SmolLM2 Q4_1: its matrices are Q4_1 (most bytes) and Q8_0; each names the path taken.
    let kernels = r["kernels"].as_array().expect("kernels array");
    assert_eq!(kernels[0]["type"], "Q4_1", "{out}");
    let level = fennec_quant::cpu::level();
    let want = if fennec_quant::dot::simd_kernel(level, fennec_quant::GgmlType::Q4_1).is_some() {
        level.name()
    } else {
        "scalar"
    };
    assert_eq!(kernels[0]["path"], want, "{out}");
    let arithmetic = fennec_quant::matmul::arithmetic(level, fennec_quant::GgmlType::Q4_1);
    // Dense Q4_1 matrices are repacked at load (the default) where the kernels read panels.
    let repacked = fennec_quant::matmul::repack_pays_off(fennec_quant::GgmlType::Q4_1);
    let matmul = if repacked {
        format!("{arithmetic} panels")
    } else {
        arithmetic.to_string()
    };
    assert_eq!(kernels[0]["matmul"], matmul.as_str(), "{out}");
    assert_eq!(r["repacked_mb"].as_f64().unwrap() > 0.0, repacked, "{out}");
    // `--repack off` runs on the file's rows, and says so.
    let (ok, out, err) = fennec(&[
        "bench", "-m", &m, "-p", "8", "-n", "2", "-r", "1", "-t", "2", "--json", "--repack", "off",
    ]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["repacked_mb"].as_f64(), Some(0.0), "{out}");
    assert_eq!(r["kernels"][0]["matmul"], arithmetic, "{out}");
    let (ok, _, err) = fennec(&["bench", "-m", &m, "--repack", "maybe"]);
    assert!(!ok && err.contains("on or off"), "{err}");
    assert!(
        kernels.iter().all(|k| k["mb"].as_f64().unwrap() > 0.0),
        "{out}"
    );
}

#[test]
fn a_prompt_longer_than_the_context_is_a_clear_error() {
    let m = smollm2();
    let long = "word ".repeat(100);
    let (ok, _, err) = fennec(&["run", "-m", &m, "-p", &long, "-c", "16", "-n", "4"]);
    assert!(!ok);
    assert!(
        err.contains("context is full") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn bench_measures_at_each_context_depth_with_a_context_sized_to_fit() {
    let m = smollm2();
    let (ok, out, err) = fennec(&[
        "bench", "-m", &m, "-p", "8", "-n", "2", "-r", "1", "-t", "2", "-d", "0,16", "--json",
    ]);
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "one JSON object per depth: {out}");
    let model = fennec_core::Model::load(&m, &fennec_core::LoadOptions::with_threads(1)).unwrap();
    // The context holds the deepest depth plus the larger test.
    let kv = model
        .kv_cache_bytes(fennec_core::KvType::F16, 16 + 8, 512)
        .unwrap() as f64
        / (1024.0 * 1024.0);
    for (row, depth) in rows.iter().zip([0, 16]) {
        assert_eq!(row["n_depth"], depth);
        assert!(row["pp_tok_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["tg_tok_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!((row["kv_mb"].as_f64().unwrap() - kv).abs() < 1e-9, "{row}");
    }

    let (ok, out, err) = fennec(&[
        "bench", "-m", &m, "-p", "4", "-n", "2", "-r", "1", "-t", "2", "-d", "8",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("| pp4 @ d8 |") && out.contains("| tg2 @ d8 |"),
        "{out}"
    );
}

#[test]
fn the_gpu_backend_answers_as_the_cpu_and_bench_names_it() {
    // Mesa's lavapipe in CI (REQUIRE_GPU=1); without any adapter `--backend gpu` must fail
    // with a message, and `auto` must fall back to the CPU.
    let m = smollm2();
    let run = |backend: &str| {
        fennec(&[
            "run",
            "-m",
            &m,
            "-p",
            "The capital of France is",
            "--temp",
            "0",
            "-n",
            "5",
            "--json",
            "-t",
            "2",
            "--backend",
            backend,
        ])
    };
    let (ok, out, err) = run("gpu");
    if !ok && std::env::var("REQUIRE_GPU").as_deref() != Ok("1") {
        assert!(err.contains("cannot use the GPU"), "{err}");
        assert!(run("auto").0, "auto falls back to the CPU");
        return;
    }
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The same greedy tokens as llama.cpp and the CPU path.
    assert_eq!(r["tokens"], serde_json::json!([7042, 30, 198, 198, 504]));
    let (ok, out, err) = fennec(&[
        "bench",
        "-m",
        &m,
        "-p",
        "8",
        "-n",
        "2",
        "-r",
        "1",
        "-t",
        "2",
        "--json",
        "--backend",
        "gpu",
    ]);
    assert!(ok, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(
        line["backend"].as_str().unwrap().starts_with("wgpu "),
        "{line}"
    );
}
