//! `fennec synth` end to end: the Llama 4 layouts it writes, checked through `fennec inspect`
//! against a table written here from the spec (docs: shared/specs/llama4.md §3.2, §3.3).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::fennec;
use fennec_core::gguf::{GgmlType, GgufFile};
use fennec_core::tensor_names::{
    blk, ATTN_K, ATTN_NORM, ATTN_OUTPUT, ATTN_Q, ATTN_V, FFN_DOWN, FFN_DOWN_EXPS, FFN_DOWN_SHEXP,
    FFN_GATE, FFN_GATE_EXPS, FFN_GATE_INP, FFN_GATE_SHEXP, FFN_NORM, FFN_UP, FFN_UP_EXPS,
    FFN_UP_SHEXP, OUTPUT, OUTPUT_NORM, ROPE_FREQS, TOKEN_EMBD,
};
use fennec_tests::temp_dir;
use serde_json::{json, Value};

/// `fennec inspect --json --tensors` of `path`.
fn inspect(path: &Path) -> Value {
    let (ok, out, err) = fennec(&["inspect", "--json", "--tensors", path.to_str().unwrap()]);
    assert!(ok, "inspect failed: {err}");
    serde_json::from_str(&out).unwrap()
}

/// The sizes the hidden test knobs of `fennec synth` change.
#[derive(Clone, Copy)]
struct Knobs {
    vocab: u64,
    experts: u64,
    embd: u64,
}

/// The real models' sizes.
const REAL: Knobs = Knobs {
    vocab: 202_048,
    experts: 0,
    embd: 5120,
};

/// Tensor name → (ggml type name, dims).
type Tensors = BTreeMap<String, (String, Vec<u64>)>;

/// The expected tensors of a Llama 4 text GGUF: name → (ggml type name, dims in GGML order),
/// types and dims restated from the spec's table independently of the code under test (the
/// names are the loader's, [`fennec_core::tensor_names`]).
fn expected_tensors(scout: bool, layers: u32, weight_type: &str, knobs: Knobs) -> Tensors {
    let Knobs {
        vocab,
        experts,
        embd,
    } = knobs;
    let mut t = BTreeMap::new();
    let w = weight_type.to_string();
    let f32 = "F32".to_string();
    t.insert(TOKEN_EMBD.into(), (w.clone(), vec![embd, vocab]));
    t.insert(OUTPUT_NORM.into(), (f32.clone(), vec![embd]));
    t.insert(OUTPUT.into(), (w.clone(), vec![embd, vocab]));
    if scout {
        t.insert(ROPE_FREQS.into(), (f32.clone(), vec![64]));
    }
    for il in 0..layers {
        let mut put = |name: &str, ty: &String, dims: Vec<u64>| {
            t.insert(blk(il as usize, name), (ty.clone(), dims));
        };
        put(ATTN_NORM, &f32, vec![embd]);
        put(ATTN_Q, &w, vec![embd, 5120]);
        put(ATTN_K, &w, vec![embd, 1024]);
        put(ATTN_V, &w, vec![embd, 1024]);
        put(ATTN_OUTPUT, &w, vec![5120, embd]);
        put(FFN_NORM, &f32, vec![embd]);
        // Scout: every layer MoE; Maverick: odd layers MoE, even layers dense.
        if scout || il % 2 == 1 {
            put(FFN_GATE_INP, &f32, vec![embd, experts]);
            put(FFN_GATE_EXPS, &w, vec![embd, 8192, experts]);
            put(FFN_UP_EXPS, &w, vec![embd, 8192, experts]);
            put(FFN_DOWN_EXPS, &w, vec![8192, embd, experts]);
            put(FFN_GATE_SHEXP, &w, vec![embd, 8192]);
            put(FFN_UP_SHEXP, &w, vec![embd, 8192]);
            put(FFN_DOWN_SHEXP, &w, vec![8192, embd]);
        } else {
            put(FFN_GATE, &w, vec![embd, 16384]);
            put(FFN_UP, &w, vec![embd, 16384]);
            put(FFN_DOWN, &w, vec![16384, embd]);
        }
    }
    t
}

/// Bytes of a tensor of `ty` and `dims`, from ggml's block sizes.
fn bytes_of(ty: &str, dims: &[u64]) -> u64 {
    let (block, block_bytes) = match ty {
        "F32" => (1, 4),
        "Q4_K" => (256, 144),
        "Q8_0" => (32, 34),
        other => panic!("no size for {other}"),
    };
    dims.iter().product::<u64>() / block * block_bytes
}

/// Checks an inspect report against the spec: tensors, count, metadata.
fn check_llama4(report: &Value, scout: bool, layers: u32, ty: &str, knobs: Knobs) {
    let expected = expected_tensors(scout, layers, ty, knobs);
    let tensors = report["tensors"].as_array().unwrap();
    let mut found = BTreeMap::new();
    for t in tensors {
        let name = t["name"].as_str().unwrap().to_string();
        let dims: Vec<u64> = serde_json::from_value(t["dims"].clone()).unwrap();
        let ty = t["type"].as_str().unwrap().to_string();
        assert_eq!(
            t["bytes"].as_u64().unwrap(),
            bytes_of(&ty, &dims),
            "size of {name}"
        );
        assert!(
            found.insert(name.clone(), (ty, dims)).is_none(),
            "{name} twice"
        );
    }
    for (name, want) in &expected {
        assert_eq!(found.get(name), Some(want), "tensor {name}");
    }
    for name in found.keys() {
        assert!(expected.contains_key(name), "unexpected tensor {name}");
    }
    let moe_layers = if scout { layers } else { layers / 2 };
    let dense_layers = layers - moe_layers;
    let count = 13 * moe_layers + 9 * dense_layers + if scout { 4 } else { 3 };
    assert_eq!(report["tensor_count"], count);
    assert_eq!(tensors.len() as u32, count);

    let md = &report["metadata"];
    assert_eq!(md["general.architecture"], "llama4");
    assert!(md["general.name"].as_str().unwrap().contains(if scout {
        "Scout"
    } else {
        "Maverick"
    }));
    let file_type = match ty {
        "Q4_K" => 15,
        "Q8_0" => 7,
        other => panic!("no file type for {other}"),
    };
    assert_eq!(md["general.file_type"], file_type);
    let context_length = if scout { 10_485_760 } else { 1_048_576 };
    let moe_step = if scout { 1 } else { 2 };
    let want = json!({
        "llama4.block_count": layers,
        "llama4.context_length": context_length,
        "llama4.embedding_length": knobs.embd,
        "llama4.feed_forward_length": 16384,
        "llama4.expert_feed_forward_length": 8192,
        "llama4.attention.head_count": 40,
        "llama4.attention.head_count_kv": 8,
        "llama4.attention.key_length": 128,
        "llama4.attention.value_length": 128,
        "llama4.rope.dimension_count": 128,
        "llama4.rope.freq_base": 500000.0,
        "llama4.attention.layer_norm_rms_epsilon": 1e-5,
        "llama4.expert_count": knobs.experts,
        "llama4.expert_used_count": 1,
        "llama4.interleave_moe_layer_step": moe_step,
        "llama4.vocab_size": knobs.vocab,
    });
    for (key, value) in want.as_object().unwrap() {
        let got = &md[key];
        match value.as_f64() {
            Some(v) if value.is_f64() => {
                assert!(
                    (got.as_f64().unwrap() - v).abs() <= v * 1e-6,
                    "{key}: {got}"
                )
            }
            _ => assert_eq!(got, value, "{key}"),
        }
    }
    // Exactly the spec's llama4.* keys (no sliding_window: Llama 4 uses chunked attention).
    let llama4_keys: Vec<&String> = md
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("llama4."))
        .collect();
    assert_eq!(
        llama4_keys.len(),
        want.as_object().unwrap().len(),
        "{llama4_keys:?}"
    );
}

#[test]
fn sparse_scout_has_the_spec_layout() {
    let dir = temp_dir("synth-scout");
    let path = dir.join("scout.gguf");
    let (ok, out, err) = fennec(&[
        "synth",
        "--arch",
        "llama4",
        "--preset",
        "scout",
        "--layers",
        "2",
        "--sparse",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(ok, "synth failed: {err}");
    assert!(out.contains("30 tensors"), "{out}");
    let report = inspect(&path);
    check_llama4(
        &report,
        true,
        2,
        "Q4_K",
        Knobs {
            experts: 16,
            ..REAL
        },
    );
    assert_eq!(
        report["file_size"].as_u64().unwrap(),
        std::fs::metadata(&path).unwrap().len()
    );
    // rope_freqs: 35 ones then 29 sixteens; routers and norms are real data, weights holes.
    let file = GgufFile::open(&path).unwrap();
    let freqs: Vec<f32> = file
        .require_tensor(ROPE_FREQS)
        .unwrap()
        .data
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(freqs.len(), 64);
    assert!(freqs[..35].iter().all(|&x| x == 1.0));
    assert!(freqs[35..].iter().all(|&x| x == 16.0));
    let router = file.require_tensor(&blk(1, FFN_GATE_INP)).unwrap();
    assert!(router.data.iter().any(|&b| b != 0));
    let norm = file.require_tensor(&blk(0, ATTN_NORM)).unwrap();
    assert!(norm.data.iter().any(|&b| b != 0));
    let expert = file.require_tensor(&blk(1, FFN_UP_EXPS)).unwrap();
    assert!(expert.data[..4096].iter().all(|&b| b == 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sparse_maverick_has_the_spec_layout() {
    let dir = temp_dir("synth-maverick");
    let path = dir.join("maverick.gguf");
    let (ok, out, err) = fennec(&[
        "synth",
        "--arch",
        "llama4",
        "--preset",
        "maverick",
        "--layers",
        "4",
        "--sparse",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(ok, "synth failed: {err}");
    assert!(out.contains("47 tensors"), "{out}");
    check_llama4(
        &inspect(&path),
        false,
        4,
        "Q4_K",
        Knobs {
            experts: 128,
            ..REAL
        },
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_small_non_sparse_file_has_real_weights() {
    let dir = temp_dir("synth-dense");
    let path = dir.join("small.gguf");
    // The hidden test knobs shrink the vocabulary, expert count and hidden size (to ~35 MB);
    // the FFN and attention widths stay real.
    let args = [
        "synth",
        "--arch",
        "llama4",
        "--preset",
        "maverick",
        "--layers",
        "2",
        "--type",
        "q8_0",
        "--vocab",
        "64",
        "--experts",
        "2",
        "--embd",
        "256",
        "--seed",
        "3",
        "-o",
    ];
    let (ok, out, err) = fennec(&[&args[..], &[path.to_str().unwrap()]].concat());
    assert!(ok, "synth failed: {err}");
    assert!(out.contains("25 tensors"), "{out}");
    let knobs = Knobs {
        vocab: 64,
        experts: 2,
        embd: 256,
    };
    check_llama4(&inspect(&path), false, 2, "Q8_0", knobs);

    let file = GgufFile::open(&path).unwrap();
    for info in file.tensor_infos() {
        let t = file.require_tensor(&info.name).unwrap();
        let n = info.dims[0] as usize;
        let mut row = vec![0f32; n];
        let mut sum_sq = 0f64;
        let row_bytes = info.row_bytes() as usize;
        for bytes in t.data.chunks(row_bytes).take(64) {
            fennec_quant::dequantize_row(info.ty, bytes, &mut row).unwrap();
            assert!(row.iter().all(|x| x.is_finite()), "{}", info.name);
            sum_sq += row
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>();
        }
        let rows = (t.data.len() / row_bytes).min(64);
        let rms = (sum_sq / (rows * n) as f64).sqrt();
        let (lo, hi) = match info.name.as_str() {
            n if n.ends_with("norm.weight") => (0.9, 1.1),
            ROPE_FREQS => unreachable!("Maverick has no rope_freqs"),
            _ => (0.015, 0.025),
        };
        assert!((lo..hi).contains(&rms), "{}: rms {rms}", info.name);
        assert!(info.ty == GgmlType::Q8_0 || info.ty == GgmlType::F32);
    }
    // The same seed gives the same bytes; another seed other weights.
    let again = dir.join("again.gguf");
    let (ok, _, err) = fennec(&[&args[..], &[again.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    assert!(std::fs::read(&path).unwrap() == std::fs::read(&again).unwrap());
    let mut other_seed = args.to_vec();
    other_seed[16] = "4";
    let (ok, _, err) = fennec(&[&other_seed[..], &[again.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    assert!(std::fs::read(&path).unwrap() != std::fs::read(&again).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = temp_dir("synth-bad");
    let out = dir.join("x.gguf");
    let out = out.to_str().unwrap();
    let base = ["synth", "--arch", "llama4", "--sparse", "-o", out];
    let cases: [(&[&str], &str); 7] = [
        (&["--preset", "opus"], "invalid value 'opus'"),
        (
            &["--preset", "scout", "--type", "q5"],
            "unknown tensor type \"q5\"",
        ),
        (
            &["--preset", "scout", "--type", "iq2_xxs"],
            "cannot quantize to IQ2_XXS",
        ),
        (&["--preset", "scout", "--type", "q8_k"], "activation type"),
        (
            &["--preset", "scout", "--layers", "0"],
            "--layers must be at least 1",
        ),
        // Rows of 320 are not whole Q4_K blocks of 256.
        (
            &["--preset", "scout", "--embd", "320"],
            "not a whole number of Q4_K blocks",
        ),
        (&["--preset", "scout", "--layers", "-3"], "error"),
    ];
    for (extra, message) in cases {
        let args = [&base[..], extra].concat();
        let (ok, _, err) = fennec(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!Path::new(out).exists(), "{args:?} left a file");
    }
    let (ok, _, err) = fennec(&["synth", "--arch", "gpt5", "--preset", "scout", "-o", out]);
    assert!(!ok && err.contains("invalid value 'gpt5'"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_reports_major_faults_and_the_file_size() {
    let dir = temp_dir("synth-bench");
    let path = dir.join("tiny.gguf");
    fennec_tests::write_tiny_llama(&path, |_| {});
    let (ok, out, err) = fennec(&[
        "bench",
        "-m",
        path.to_str().unwrap(),
        "-p",
        "8",
        "-n",
        "4",
        "-r",
        "2",
        "-t",
        "1",
        "--json",
    ]);
    assert!(ok, "bench failed: {err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    // The keys bench always had, and the new ones.
    for key in [
        "pp_tokens",
        "pp_tok_s",
        "pp_tok_s_sd",
        "tg_tokens",
        "tg_tok_s",
        "tg_tok_s_sd",
        "threads",
        "peak_rss_mb",
        "kv",
        "cpu",
    ] {
        assert!(r.get(key).is_some(), "{key} missing in {out}");
    }
    assert!(r["pp_major_faults"].is_u64(), "{out}");
    assert!(r["tg_major_faults"].is_u64(), "{out}");
    let file_mb = r["file_mb"].as_f64().unwrap();
    let len = std::fs::metadata(&path).unwrap().len() as f64 / (1024.0 * 1024.0);
    assert!((file_mb - len).abs() < 1e-6, "{file_mb} vs {len}");

    let (ok, out, err) = fennec(&[
        "bench",
        "-m",
        path.to_str().unwrap(),
        "-p",
        "8",
        "-n",
        "4",
        "-r",
        "1",
        "-t",
        "1",
    ]);
    assert!(ok, "bench failed: {err}");
    assert!(out.contains("| major faults |"), "{out}");
    assert!(out.contains("model file"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Full-size Scout (48 layers, sparse): it loads as `llama4`, its KV cache at a 128k-token
/// context plans to ~7.2 GiB of f16 (12 NoPE layers keep everything, 36 chunked layers a
/// ring of 8192 + 512 cells) instead of the 24 GiB of a full cache, and a Maverick loads too.
#[test]
fn full_size_scout_loads_and_its_128k_kv_cache_fits_in_7_gib() {
    use fennec_core::{KvType, LoadOptions, Model};
    let dir = temp_dir("synth-scout-full");
    for preset in ["scout", "maverick"] {
        let path = dir.join(format!("{preset}.gguf"));
        let (ok, _, err) = fennec(&[
            "synth",
            "--arch",
            "llama4",
            "--preset",
            preset,
            "--sparse",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert!(ok, "synth failed: {err}");
        let model = Model::load(&path, &LoadOptions::with_threads(1)).unwrap();
        let hp = model.llama4_hparams().unwrap();
        assert_eq!(model.hparams().n_layer, 48);
        assert_eq!(hp.chunk_size, 8192);
        for il in 0..48 {
            let kind = hp.layer_kind(il);
            assert_eq!(kind.chunked, (il + 1) % 4 != 0, "{preset} layer {il}");
        }
        let row_len = model.hparams().n_head_kv * model.hparams().head_dim;
        assert_eq!(row_len, 8 * 128);
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let planned = gib(model.kv_cache_bytes(KvType::F16, 131_072, 512).unwrap());
        // Every layer keeping all 128k positions: K and V rows of f16.
        let unchunked = gib(48 * 2 * row_len as u64 * 2 * 131_072);
        eprintln!(
            "{preset}: 128k f16 KV {planned:.2} GiB (a full cache would be {unchunked:.2} GiB)"
        );
        assert!(planned < 7.3, "{planned} GiB");
        assert!((unchunked - 24.0).abs() < 1e-9, "{unchunked} GiB");
        let stats = model.expert_stats().unwrap();
        let moe_layers = if preset == "scout" { 48 } else { 24 };
        assert_eq!(stats.layers.len(), moe_layers);
        assert_eq!(
            stats.expert_bytes,
            3 * 5120 * 8192 / 256 * 144,
            "Q4_K experts"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
