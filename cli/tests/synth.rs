//! `fennec synth` end to end: the Llama 4 layouts it writes, checked through `fennec inspect`
//! against a table written here from the spec (docs: shared/specs/llama4.md §3.2, §3.3; the
//! mmproj §1.2, §5.7; the vocabulary and chat template §4.3, §4.4).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

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

/// Runs `fennec synth ARGS -o path`, asserting success; returns its stdout.
fn synth(path: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["synth"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", path.to_str().unwrap()]);
    let (ok, out, err) = fennec(&all);
    assert!(ok, "synth failed: {err}");
    out
}

#[test]
fn sparse_scout_has_the_spec_layout() {
    let dir = temp_dir("synth-scout");
    let path = dir.join("scout.gguf");
    let out = synth(
        &path,
        &[
            "--arch", "llama4", "--preset", "scout", "--layers", "2", "--sparse",
        ],
    );
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
    let out = synth(
        &path,
        &[
            "--arch", "llama4", "--preset", "maverick", "--layers", "4", "--sparse",
        ],
    );
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
    let cases: [(&[&str], &str); 10] = [
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
        // The vision tower's rows of 1408 are not whole blocks of 256.
        (
            &["--preset", "scout", "--mmproj", "--type", "q4_k"],
            "Q4_K cannot store the vision tower: its rows of 1408 values",
        ),
        (
            &["--preset", "maverick", "--mmproj", "--type", "iq4_xs"],
            "an mmproj takes",
        ),
        (
            &["--preset", "scout", "--mmproj", "--vocab", "64"],
            "cannot be used with",
        ),
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

/// The expected tensors of a Llama 4 mmproj (spec §5.7): name → (ggml type name, dims in
/// GGML order), restated from the spec's table. Matmul weights are `weight_type`, the patch
/// embedding `patch_type`, everything else F32.
fn expected_mmproj_tensors(layers: u32, weight_type: &str, patch_type: &str) -> Tensors {
    let mut t = BTreeMap::new();
    let w = weight_type.to_string();
    let f32 = "F32".to_string();
    let mut put = |name: String, ty: &String, dims: &[u64]| {
        assert!(t.insert(name, (ty.clone(), dims.to_vec())).is_none());
    };
    put(
        "v.patch_embd.weight".into(),
        &patch_type.into(),
        &[588, 1408],
    );
    put("v.class_embd".into(), &f32, &[1408]);
    put("v.position_embd.weight".into(), &f32, &[1408, 577]);
    for ln in ["pre_ln", "post_ln"] {
        put(format!("v.{ln}.weight"), &f32, &[1408]);
        put(format!("v.{ln}.bias"), &f32, &[1408]);
    }
    for il in 0..layers {
        let p = |s: &str| format!("v.blk.{il}.{s}");
        for m in ["attn_q", "attn_k", "attn_v", "attn_out"] {
            put(p(&format!("{m}.weight")), &w, &[1408, 1408]);
            put(p(&format!("{m}.bias")), &f32, &[1408]);
        }
        for ln in ["ln1", "ln2"] {
            put(p(&format!("{ln}.weight")), &f32, &[1408]);
            put(p(&format!("{ln}.bias")), &f32, &[1408]);
        }
        put(p("ffn_up.weight"), &w, &[1408, 5632]);
        put(p("ffn_up.bias"), &f32, &[5632]);
        put(p("ffn_down.weight"), &w, &[5632, 1408]);
        put(p("ffn_down.bias"), &f32, &[1408]);
    }
    put("mm.model.mlp.1.weight".into(), &w, &[5632, 4096]);
    put("mm.model.mlp.2.weight".into(), &w, &[4096, 4096]);
    put("mm.model.fc.weight".into(), &w, &[4096, 5120]);
    t
}

/// Checks an mmproj file against the spec: every tensor and every `clip.*` key.
fn check_mmproj(file: &GgufFile, layers: u32, weight_type: &str, patch_type: &str) {
    let expected = expected_mmproj_tensors(layers, weight_type, patch_type);
    let found: Tensors = file
        .tensor_infos()
        .iter()
        .map(|t| (t.name.clone(), (t.ty.name().to_string(), t.dims.clone())))
        .collect();
    assert_eq!(found.len(), file.tensor_infos().len(), "a tensor twice");
    for (name, want) in &expected {
        assert_eq!(found.get(name), Some(want), "tensor {name}");
    }
    for name in found.keys() {
        assert!(expected.contains_key(name), "unexpected tensor {name}");
    }

    let md = file.metadata();
    assert_eq!(md.get_str("general.architecture").unwrap(), "clip");
    assert_eq!(md.get_str("general.type").unwrap(), "mmproj");
    let file_type = match weight_type {
        "F32" => 0,
        "F16" => 1,
        "Q8_0" => 7,
        "BF16" => 32,
        other => panic!("no file type for {other}"),
    };
    assert_eq!(md.get_uint("general.file_type").unwrap(), file_type);
    assert_eq!(md.get_str("clip.projector_type").unwrap(), "llama4");
    assert!(md.get_bool("clip.has_vision_encoder").unwrap());
    assert!(md.get_bool("clip.use_gelu").unwrap());
    for (key, value) in [
        ("clip.vision.image_size", 336),
        ("clip.vision.patch_size", 14),
        ("clip.vision.embedding_length", 1408),
        ("clip.vision.feed_forward_length", 5632),
        ("clip.vision.block_count", u64::from(layers)),
        ("clip.vision.attention.head_count", 16),
        ("clip.vision.projection_dim", 5120),
        ("clip.vision.projector.scale_factor", 2),
    ] {
        assert_eq!(md.get_uint(key).unwrap(), value, "{key}");
    }
    assert_eq!(
        md.get_f32("clip.vision.attention.layer_norm_epsilon")
            .unwrap(),
        1e-5
    );
    for key in ["clip.vision.image_mean", "clip.vision.image_std"] {
        assert_eq!(md.get_array_of::<f32>(key).unwrap(), &[0.5; 3], "{key}");
    }
    // Exactly those clip.* keys.
    let clip_keys = md.iter().filter(|(k, _)| k.starts_with("clip.")).count();
    assert_eq!(clip_keys, 14);
}

/// F32 values of a tensor of any type.
fn values_of(file: &GgufFile, name: &str) -> Vec<f32> {
    let t = file.require_tensor(name).unwrap();
    let n = t.info.dims[0] as usize;
    let mut out = Vec::new();
    let mut row = vec![0f32; n];
    for bytes in t.data.chunks(t.info.row_bytes() as usize) {
        fennec_quant::dequantize_row(t.info.ty, bytes, &mut row).unwrap();
        out.extend_from_slice(&row);
    }
    out
}

fn rms(v: &[f32]) -> f64 {
    (v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

/// A 336×336 RGB test image: gradients and a checkerboard.
fn test_image() -> Vec<u8> {
    let mut rgb = Vec::with_capacity(336 * 336 * 3);
    for y in 0..336usize {
        for x in 0..336usize {
            let check = if (x / 24 + y / 24) % 2 == 0 { 200 } else { 30 };
            rgb.extend_from_slice(&[(x * 255 / 335) as u8, (y * 255 / 335) as u8, check]);
        }
    }
    rgb
}

/// `fennec synth --mmproj` at 2 blocks: the spec's keys, tensor names, dims and types; random
/// values at the planned scales; Fennec's vision tower loads it and encodes a 336×336 image
/// into 144 finite rows of 5120; a sparse f16 file keeps the patch embedding F16.
#[test]
fn mmproj_has_the_spec_layout_and_encodes_an_image() {
    use fennec_core::vision::{ImageView, PixelLayout, VisionModel};
    use fennec_core::{CancelHandle, LoadOptions};
    let dir = temp_dir("synth-mmproj");
    let path = dir.join("mmproj.gguf");
    let out = synth(
        &path,
        &[
            "--arch", "llama4", "--preset", "scout", "--mmproj", "--layers", "2", "--type", "q8_0",
        ],
    );
    assert!(out.contains("42 tensors"), "{out}");
    let file = GgufFile::open(&path).unwrap();
    check_mmproj(&file, 2, "Q8_0", "F32");

    // Random values at the planned scales: matmul weights ~N(0, 1/n_in), LayerNorm weights
    // near 1, small biases and embeddings.
    for (name, lo, hi) in [
        (
            "v.patch_embd.weight",
            0.8 / 588f64.sqrt(),
            1.2 / 588f64.sqrt(),
        ),
        (
            "v.blk.1.attn_q.weight",
            0.8 / 1408f64.sqrt(),
            1.2 / 1408f64.sqrt(),
        ),
        (
            "v.blk.0.ffn_down.weight",
            0.8 / 5632f64.sqrt(),
            1.2 / 5632f64.sqrt(),
        ),
        (
            "mm.model.fc.weight",
            0.8 / 4096f64.sqrt(),
            1.2 / 4096f64.sqrt(),
        ),
        ("v.blk.0.ln2.weight", 0.95, 1.05),
        ("v.blk.0.ffn_up.bias", 0.015, 0.025),
        ("v.position_embd.weight", 0.02, 0.034),
    ] {
        let v = values_of(&file, name);
        assert!(v.iter().all(|x| x.is_finite()), "{name}");
        let r = rms(&v);
        assert!((lo..hi).contains(&r), "{name}: rms {r}");
    }

    let vision = VisionModel::load(&path, &LoadOptions::with_threads(2)).unwrap();
    let hp = vision.hparams();
    assert_eq!(
        (
            hp.image_size,
            hp.patch_size,
            hp.n_embd,
            hp.n_ff,
            hp.n_layer,
            hp.n_head
        ),
        (336, 14, 1408, 5632, 2, 16)
    );
    assert_eq!((hp.merge, hp.n_adapter, hp.n_out), (2, 4096, 5120));
    assert_eq!((hp.eps, hp.mean, hp.std), (1e-5, [0.5; 3], [0.5; 3]));
    assert_eq!(hp.tokens_per_tile(), 144);

    let rgb = test_image();
    let view = ImageView::packed(&rgb, 336, 336, PixelLayout::Rgb8).unwrap();
    let pixels = vision.preprocess(&view).unwrap();
    assert_eq!(pixels.n_tiles(), 1);
    let emb = vision.encode(&pixels, &CancelHandle::new()).unwrap();
    assert_eq!((emb.n_rows(), emb.n_embd), (144, 5120));
    assert!(emb.data.iter().all(|x| x.is_finite()));
    let r = rms(&emb.data);
    assert!((0.01..100.0).contains(&r), "embeddings rms {r}");
    eprintln!("2-block mmproj: embeddings rms {r:.4}");

    // f16: the patch embedding stays F16 (588 is not a multiple of 32, so no block type fits).
    let sparse = dir.join("mmproj-f16.gguf");
    let (ok, _, err) = fennec(&[
        "synth",
        "--arch",
        "llama4",
        "--preset",
        "maverick",
        "--mmproj",
        "--layers",
        "3",
        "--sparse",
        "-o",
        sparse.to_str().unwrap(),
    ]);
    assert!(ok, "synth failed: {err}");
    let file = GgufFile::open(&sparse).unwrap();
    check_mmproj(&file, 3, "F16", "F16");
    assert!(file
        .metadata()
        .get_str("general.name")
        .unwrap()
        .contains("Maverick"));
    VisionModel::load(&sparse, &LoadOptions::with_threads(1)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The synthetic Scout's vocabulary has Llama 4's image tokens at their real ids, its chat
/// template renders content parts as transformers does (the chat goldens), and its mmproj
/// pairs with it: an image prompt expands to `<|image_start|> <|image|> 144×<|patch|>
/// <|image_end|>`.
#[test]
fn synthetic_scout_renders_image_prompts_and_pairs_with_its_mmproj() {
    use fennec_core::chat::ChatMessage;
    use fennec_core::vision::{ImageEmbeddings, ImageTokens, Prompt, VisionModel};
    use fennec_core::{LoadOptions, Model};
    let dir = temp_dir("synth-scout-vision");
    let text = dir.join("scout.gguf");
    let mmproj = dir.join("mmproj.gguf");
    for (path, extra) in [(&text, None), (&mmproj, Some("--mmproj"))] {
        let mut args = vec!["synth", "--arch", "llama4", "--preset", "scout"];
        args.extend(extra);
        args.extend(["--layers", "1", "--sparse", "-o", path.to_str().unwrap()]);
        let (ok, _, err) = fennec(&args);
        assert!(ok, "synth failed: {err}");
    }
    let model = Model::load(&text, &LoadOptions::with_threads(1)).unwrap();
    assert_eq!(model.n_vocab(), 202_048);
    let ids = ImageTokens::of(&model).unwrap();
    assert_eq!(
        ids,
        ImageTokens {
            start: 200_080,
            end: 200_081,
            image: 200_090,
            patch: 200_092,
            tile_x: 200_084,
            tile_y: 200_085,
        }
    );
    for (id, name) in [
        (200_000, "<|begin_of_text|>"),
        (200_005, "<|header_start|>"),
        (200_008, "<|eot|>"),
        (200_016, "<|python_start|>"),
    ] {
        assert_eq!(model.token_text(id).unwrap(), name);
    }
    // Every special token is a control token.
    let file = GgufFile::open(&text).unwrap();
    let types = file
        .metadata()
        .get_array_of::<i32>("tokenizer.ggml.token_type")
        .unwrap();
    assert!(types[200_000..].iter().all(|&t| t == 3));
    assert!(types[..200_000].iter().all(|&t| t == 1));

    // The chat template: every Llama 4 golden rendered by Python's jinja2, content parts
    // included.
    let goldens = fennec_tests::fixture_json("chat/goldens.json");
    let template = model.chat_template().unwrap();
    let mut checked = 0;
    for case in goldens["cases"].as_array().unwrap() {
        if case["template"] != "llama4" || case.get("output").is_none() {
            continue;
        }
        let extra = case["extra"].as_object().unwrap();
        let agp = case["add_generation_prompt"].as_bool().unwrap();
        let got = template.render_json(&case["messages"], agp, extra).unwrap();
        assert_eq!(got, case["output"].as_str().unwrap(), "{}", case["name"]);
        checked += 1;
    }
    assert!(checked >= 10, "{checked} goldens");

    // The mmproj pairs with the text model, and an image part becomes the image's tokens.
    let vision = VisionModel::load_for(&mmproj, &model).unwrap();
    assert_eq!(vision.n_embd_out(), model.n_embd());
    let image = Arc::new(ImageEmbeddings {
        data: vec![0.0; 144 * 5120],
        n_embd: 5120,
        tokens_per_tile: 144,
        grid: (1, 1),
        has_global: false,
    });
    let messages = [ChatMessage::with_image("user", image, "Hi")];
    let prompt = Prompt::from_chat(&model, &messages, true).unwrap();
    // Plain text is one token per byte (the vocabulary has no merges).
    let text = |s: &str| model.encode(s, false, false).unwrap();
    let mut want = vec![200_000, 200_005];
    want.extend(text("user"));
    want.push(200_006);
    want.extend(text("\n\n"));
    want.extend([200_080, 200_090]);
    want.extend([200_092; 144]);
    want.push(200_081);
    want.extend(text("Hi"));
    want.extend([200_008, 200_005]);
    want.extend(text("assistant"));
    want.push(200_006);
    want.extend(text("\n\n"));
    assert_eq!(prompt.token_ids(), want);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Full-size mmproj (34 blocks, q8_0, ~0.93 GB written): a 336×336 image goes through every
/// block to finite embeddings of moderate size. Ignored: it writes a GB and encodes for
/// tens of seconds; run with `--ignored`.
#[test]
#[ignore]
fn full_size_mmproj_encodes_an_image_to_finite_embeddings() {
    use fennec_core::vision::{ImageView, PixelLayout, VisionModel};
    use fennec_core::{CancelHandle, LoadOptions};
    let dir = temp_dir("synth-mmproj-full");
    let path = dir.join("mmproj.gguf");
    let out = synth(
        &path,
        &[
            "--arch", "llama4", "--preset", "scout", "--mmproj", "--type", "q8_0",
        ],
    );
    assert!(out.contains("554 tensors"), "{out}");
    check_mmproj(&GgufFile::open(&path).unwrap(), 34, "Q8_0", "F32");
    let vision = VisionModel::load(&path, &LoadOptions::default()).unwrap();
    let rgb = test_image();
    let view = ImageView::packed(&rgb, 336, 336, PixelLayout::Rgb8).unwrap();
    let started = std::time::Instant::now();
    let emb = vision
        .encode(&vision.preprocess(&view).unwrap(), &CancelHandle::new())
        .unwrap();
    assert_eq!((emb.n_rows(), emb.n_embd), (144, 5120));
    assert!(emb.data.iter().all(|x| x.is_finite()));
    let r = rms(&emb.data);
    eprintln!(
        "34-block mmproj: one tile in {:.1} s, embeddings rms {r:.4}",
        started.elapsed().as_secs_f64()
    );
    assert!((0.01..100.0).contains(&r), "embeddings rms {r}");
    std::fs::remove_dir_all(&dir).unwrap();
}
