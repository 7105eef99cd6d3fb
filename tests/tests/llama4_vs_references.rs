//! Llama 4 (`llama4`) against transformers and llama.cpp on tiny random models made by
//! `tests/fixtures/llama4/make_tiny.py` (transformers 4.57.6 float32 eager attention,
//! converted by llama.cpp's own converter from the llama-cpp-python 0.3.36 sdist):
//!
//! - `scout`: every layer MoE (4 experts, top-1), QK-norm, llama3 rope scaling (rope_freqs),
//!   llama.cpp's default chunk 8192 and temperature constants;
//! - `chunked`: chunk 16, temperature length 8 and scale 0.5, top-2 of 4 experts, so chunking
//!   and temperature tuning act within 128 tokens (keys `llama4.attention.*`);
//! - `maverick`: MoE every 2nd layer (dense SwiGLU between), 8 experts, no QK-norm.
//!
//! F32 files must equal transformers to 1e-4 at every position, whether the tokens are
//! evaluated in one batch, one at a time, or in micro-batches that straddle chunk boundaries
//! (measured: a few 1e-6). Quantized files are compared with llama.cpp on the same file.

use std::path::PathBuf;
use std::sync::Arc;

use fennec_core::gguf::{TensorData, Value};
use fennec_core::tensor_names::{blk, FFN_DOWN_EXPS, FFN_GATE_INP, FFN_UP_EXPS, FFN_UP_SHEXP};
use fennec_core::ExpertResidencyOptions;
use fennec_core::{Error, Input, KvType, LoadOptions, Logits, Model, Session, SessionOptions};
use fennec_tests::{
    fixture, fixture_json, greedy_tokens, json_ids as ids, max_abs_diff, read_npy_f32,
    rewrite_gguf, temp_dir,
};
use serde_json::Value as Json;

const MODELS: [&str; 3] = ["scout", "chunked", "maverick"];

fn golden(name: &str) -> Json {
    fixture_json(&format!("llama4/goldens/{name}.json"))
}

fn model_path(file: &str) -> PathBuf {
    fixture(&format!("llama4/models/{file}"))
}

fn load(file: &str) -> Arc<Model> {
    Model::load(model_path(file), &LoadOptions::with_threads(2)).unwrap()
}

fn session(model: &Arc<Model>, n_ctx: usize, n_ubatch: usize) -> Session {
    let opts = SessionOptions {
        n_ctx,
        kv_type: KvType::F32,
        n_ubatch,
    };
    Session::new(model.clone(), opts).unwrap()
}

/// Evaluates `tokens` in micro-batches of `ubatch` and returns every position's logits.
fn all_logits(model: &Arc<Model>, tokens: &[u32], ubatch: usize) -> Vec<f32> {
    let mut s = session(model, tokens.len(), ubatch);
    s.eval(&[Input::Tokens(tokens)], Logits::All)
        .unwrap()
        .to_vec()
}

#[test]
fn the_tiny_models_have_the_layer_pattern_of_their_configs() {
    for name in MODELS {
        let model = load(&format!("{name}.f32.gguf"));
        let Some(hp) = model.llama4_hparams() else {
            panic!("{name} did not load as llama4");
        };
        let config = &golden(name)["config"];
        let kinds: Vec<_> = (0..4).map(|il| hp.layer_kind(il)).collect();
        let moe: Vec<usize> = (0..4).filter(|&il| kinds[il].moe).collect();
        let expected_moe: Vec<usize> = config["moe_layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(moe, expected_moe, "{name}");
        for (il, kind) in kinds.iter().enumerate() {
            let rope = config["no_rope_layers"][il].as_u64() == Some(1);
            assert_eq!(kind.rope, rope, "{name} layer {il}");
            assert_eq!(kind.chunked, rope, "{name} layer {il}");
            let qk = config["use_qk_norm"].as_bool().unwrap() && rope;
            assert_eq!(kind.qk_norm, qk, "{name} layer {il}");
        }
        assert_eq!(
            hp.chunk_size as u64,
            config["attention_chunk_size"].as_u64().unwrap()
        );
        assert_eq!(
            hp.temp_length as u64,
            config["floor_scale"].as_u64().unwrap()
        );
        assert!((f64::from(hp.temp_scale) - config["attn_scale"].as_f64().unwrap()).abs() < 1e-6);
        assert_eq!(
            hp.n_expert_used as u64,
            config["num_experts_per_tok"].as_u64().unwrap()
        );
    }
}

#[test]
fn f32_logits_equal_transformers_in_batch_one_by_one_and_odd_micro_batches() {
    for name in MODELS {
        let golden_json = golden(name);
        let tokens = ids(&golden_json["ids"]);
        assert!(tokens.len() >= 100);
        let (shape, expected) =
            read_npy_f32(&fixture(&format!("llama4/goldens/{name}.logits.npy")));
        assert_eq!(shape[0], tokens.len());
        let model = load(&format!("{name}.f32.gguf"));
        // 1 = decode one token at a time; 7 and 13 straddle the 16-token chunks of `chunked`.
        for ubatch in [512, 1, 7, 13] {
            let got = all_logits(&model, &tokens, ubatch);
            let diff = max_abs_diff(&got, &expected);
            eprintln!("{name} ubatch {ubatch}: max |diff| {diff:.2e}");
            assert!(diff < 1e-4, "{name} ubatch {ubatch}: max |diff| {diff}");
        }
    }
}

#[test]
fn greedy_continuations_equal_transformers_generate() {
    for name in MODELS {
        let greedy = &golden(name)["greedy"];
        let prompt = ids(&greedy["prompt"]);
        let expected = ids(&greedy["tokens"]);
        let model = load(&format!("{name}.f32.gguf"));
        let mut s = session(&model, prompt.len() + expected.len(), 512);
        let logits = s
            .eval(&[Input::Tokens(&prompt)], Logits::Last)
            .unwrap()
            .to_vec();
        let got = greedy_tokens(&mut s, &logits, expected.len());
        assert_eq!(got, expected, "{name}");
    }
}

/// 8300 tokens through `scout` with llama.cpp's default 8192 chunk: the chunked layers' first
/// query of the second chunk sees only itself, and NoPE layers' temperature leaves 1 at 8191.
/// A micro-batch of 64 makes the chunked layers' ring (8192 + 64 cells) wrap before the end.
#[test]
fn crossing_the_default_8192_chunk_equals_transformers() {
    let g = golden("scout_long");
    let tokens = ids(&g["ids"]);
    assert_eq!(tokens.len(), 8300);
    let positions: Vec<usize> = g["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let (_, expected) = read_npy_f32(&fixture("llama4/goldens/scout_long.logits.npy"));
    let model = load("scout.f32.gguf");
    let n_vocab = model.n_vocab();
    let mut s = session(&model, tokens.len(), 64);
    // f32 K and V rows of 2 heads × 16: three chunked layers keep 8192 + 64 cells, the NoPE
    // layer all 8300.
    let row = 2 * 2 * 16 * 4;
    assert_eq!(s.kv_bytes(), 3 * (8192 + 64) * row + 8300 * row);
    // Batched up to 8186, then one token at a time across the boundary, then batched again.
    let mut logits = s
        .eval(&[Input::Tokens(&tokens[..8186])], Logits::All)
        .unwrap()
        .to_vec();
    for &t in &tokens[8186..8210] {
        logits.extend(
            s.eval(&[Input::Tokens(&[t])], Logits::All)
                .unwrap()
                .to_vec(),
        );
    }
    logits.extend(
        s.eval(&[Input::Tokens(&tokens[8210..])], Logits::All)
            .unwrap()
            .to_vec(),
    );
    for (i, &pos) in positions.iter().enumerate() {
        let got = &logits[pos * n_vocab..(pos + 1) * n_vocab];
        let want = &expected[i * n_vocab..(i + 1) * n_vocab];
        let diff = max_abs_diff(got, want);
        assert!(diff < 1e-4, "position {pos}: max |diff| {diff}");
    }
}

/// F16 and Q8_0 files against llama.cpp on the same file (f32 KV, no flash attention), at
/// every position. F32 agrees to rounding. F16 weights are exact in both, but llama.cpp
/// rounds the activations to f16 for F16 matmuls and Fennec keeps them f32 (measured max
/// 1.6e-3). Q8_0 quantizes activations to 8 bits exactly as ggml does, so with rows of two
/// blocks the two agree to rounding (measured 4.8e-7); the bound leaves room for summation
/// order, which on wide real models can flip an activation's rounding (see
/// llama_vs_llamacpp.rs).
#[test]
fn quantized_files_agree_with_llama_cpp() {
    let tokens = ids(&golden("scout")["ids"]);
    for (ty, bound) in [("f32", 1e-4f32), ("f16", 5e-3), ("q8_0", 1e-3)] {
        let model = load(&format!("scout.{ty}.gguf"));
        let got = all_logits(&model, &tokens, 512);
        let (_, expected) =
            read_npy_f32(&fixture(&format!("llama4/goldens/scout.{ty}.llamacpp.npy")));
        let diff = max_abs_diff(&got, &expected);
        eprintln!(
            "scout.{ty}: max |diff| {diff:.2e} over {} positions",
            tokens.len()
        );
        assert!(diff < bound, "scout.{ty}: max |diff| {diff} ≥ {bound}");
    }
}

#[test]
fn repacked_weights_give_the_same_logits_bit_for_bit() {
    // Every Q8_0 matrix of the file but the token embedding is repacked at load: attention,
    // router, shared experts, the output and, since this small model fits in memory many
    // times over, the routed experts. None of it changes a bit of the output.
    let path = model_path("scout.q8_0.gguf");
    let file = fennec_core::gguf::GgufFile::open(&path).unwrap();
    let matrices: u64 = file
        .tensor_infos()
        .iter()
        .filter(|t| t.ty == fennec_quant::GgmlType::Q8_0 && t.name != "token_embd.weight")
        .map(|t| t.size)
        .sum();
    let experts: u64 = file
        .tensor_infos()
        .iter()
        .filter(|t| t.name.ends_with("_exps.weight"))
        .map(|t| t.size)
        .sum();
    assert!(experts > 0 && experts < matrices);
    let tokens = ids(&golden("scout")["ids"]);
    let run = |repack: bool| {
        let opts = LoadOptions {
            repack,
            ..LoadOptions::with_threads(2)
        };
        let model = Model::load(&path, &opts).unwrap();
        let repacks = repack && fennec_quant::matmul::repack_pays_off(fennec_quant::GgmlType::Q8_0);
        let expected = if repacks { matrices } else { 0 };
        assert_eq!(model.repacked_bytes(), expected, "repack {repack}");
        all_logits(&model, &tokens, 512)
    };
    let (rows, panels) = (run(false), run(true));
    assert_eq!(rows.len(), panels.len());
    assert!(
        rows.iter()
            .zip(&panels)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "repacked weights change the logits"
    );
}

#[test]
fn expert_hits_count_every_routed_token_and_pinning_respects_the_budget() {
    let model = load("chunked.f32.gguf");
    let tokens = ids(&golden("chunked")["ids"]);
    all_logits(&model, &tokens, 512);
    let stats = model.expert_stats().unwrap();
    assert_eq!(stats.layers.len(), 4);
    for layer in &stats.layers {
        // Top-2 routing: two hits per token per MoE layer.
        assert_eq!(layer.hits.iter().sum::<u64>(), 2 * tokens.len() as u64);
    }
    assert_eq!(stats.total_hits(), 8 * tokens.len() as u64);
    // Pin two experts' worth: the two hottest go resident (or the OS says why not).
    let budget = 2 * stats.expert_bytes;
    model.set_expert_residency(ExpertResidencyOptions {
        cache_bytes: budget,
        ..Default::default()
    });
    let stats = model.expert_stats().unwrap();
    assert!(stats.pinned_bytes <= budget);
    let pinned: usize = stats
        .layers
        .iter()
        .map(|l| l.pinned.iter().filter(|&&p| p).count())
        .sum();
    assert!(pinned == 2 || stats.pin_error.is_some(), "{stats:?}");
    if pinned == 2 {
        let hottest = stats
            .layers
            .iter()
            .flat_map(|l| l.hits.iter().zip(&l.pinned))
            .filter(|(_, &p)| p)
            .map(|(&h, _)| h)
            .min()
            .unwrap();
        let unpinned_max = stats
            .layers
            .iter()
            .flat_map(|l| l.hits.iter().zip(&l.pinned))
            .filter(|(_, &p)| !p)
            .map(|(&h, _)| h)
            .max()
            .unwrap();
        assert!(hottest >= unpinned_max);
    }
    // Logits do not depend on residency.
    let again = all_logits(&model, &tokens, 512);
    let (_, expected) = read_npy_f32(&fixture("llama4/goldens/chunked.logits.npy"));
    assert!(max_abs_diff(&again, &expected) < 1e-4);
    model.set_expert_residency(ExpertResidencyOptions::default());
    assert_eq!(model.expert_stats().unwrap().pinned_bytes, 0);
}

#[test]
fn rewinding_past_the_chunk_ring_is_refused_and_clear_recovers() {
    let model = load("chunked.f32.gguf");
    let tokens = ids(&golden("chunked")["ids"]);
    // Chunk 16 + micro-batch 4 = a ring of 20 cells on the chunked layers.
    let mut s = session(&model, tokens.len(), 4);
    s.eval(&[Input::Tokens(&tokens[..100])], Logits::None)
        .unwrap()
        .to_vec();
    // Rewinding to 96 needs positions 96.. of chunk 96..112 only: fine.
    assert!(s.can_truncate(97));
    s.truncate(97).unwrap();
    // Rewinding to 70 needs 64..70, long overwritten.
    assert!(!s.can_truncate(70));
    let err = s.truncate(70).unwrap_err();
    assert!(matches!(err, Error::CannotRewind { n: 70, .. }), "{err}");
    assert_eq!(err.kind(), fennec_core::ErrorKind::CannotRewind);
    assert!(err.to_string().contains("chunk"), "{err}");
    assert_eq!(s.n_past(), 97);
    // Continuing from 97 still equals transformers.
    let logits = s
        .eval(&[Input::Tokens(&tokens[97..])], Logits::All)
        .unwrap()
        .to_vec();
    let (_, expected) = read_npy_f32(&fixture("llama4/goldens/chunked.logits.npy"));
    let n_vocab = model.n_vocab();
    assert!(max_abs_diff(&logits, &expected[97 * n_vocab..]) < 1e-4);
    s.clear();
    let logits = s
        .eval(&[Input::Tokens(&tokens)], Logits::All)
        .unwrap()
        .to_vec();
    assert!(max_abs_diff(&logits, &expected) < 1e-4);
}

/// The tiny models' tokenizer (Llama 4 split regex, specials) ends generation on all three
/// end-of-turn ids, whatever the GGUF's single `eos_token_id` says.
#[test]
fn all_three_end_of_turn_ids_end_generation() {
    let model = load("scout.f32.gguf");
    let tok = model.tokenizer().unwrap();
    for id in [345, 348, 349] {
        assert!(tok.is_eog(id), "{id}");
    }
    assert!(!tok.is_eog(344));
}

fn bad_copy_with(
    tag: &str,
    edit: impl Fn(&str, &Value) -> Option<Value>,
    drop: &str,
    extra: &[(&str, Value)],
) -> Error {
    let dir = temp_dir(tag);
    let path = dir.join("bad.gguf");
    rewrite_gguf(
        &model_path("scout.f32.gguf"),
        &path,
        edit,
        |n| n != drop,
        extra,
    );
    Model::load(&path, &LoadOptions::with_threads(1)).unwrap_err()
}

fn bad_copy(tag: &str, edit: impl Fn(&str, &Value) -> Option<Value>, drop: &str) -> Error {
    bad_copy_with(tag, edit, drop, &[])
}

#[test]
fn bad_moe_metadata_and_tensors_are_clear_errors() {
    let keep = |_: &str, v: &Value| Some(v.clone());
    // Expert tensors hold 4 experts, the metadata claims 5.
    let err = bad_copy(
        "l4-expert-count",
        |k, v| {
            Some(if k == "llama4.expert_count" {
                Value::U32(5)
            } else {
                v.clone()
            })
        },
        "",
    );
    let msg = err.to_string();
    assert!(
        msg.contains("4 experts") && msg.contains("expert_count is 5"),
        "{msg}"
    );
    // Only the expert tensors disagree (the router is right).
    let dir = temp_dir("l4-exps-dim");
    let path = dir.join("bad.gguf");
    let src = fennec_core::gguf::GgufFile::open(model_path("maverick.f32.gguf")).unwrap();
    let mut w = fennec_core::gguf::GgufWriter::new();
    for (k, v) in src.metadata().iter() {
        w.add(k, v.clone()).unwrap();
    }
    for info in src.tensor_infos() {
        let mut data = src.tensor(&info.name).unwrap().data.to_vec();
        let mut dims = info.dims.clone();
        if info.name == blk(3, FFN_UP_EXPS) {
            // Keep 7 of the 8 experts.
            dims[2] = 7;
            data.truncate(data.len() / 8 * 7);
        }
        w.add_tensor(
            info.name.clone(),
            info.ty,
            &dims,
            TensorData::Bytes(data.into()),
        )
        .unwrap();
    }
    w.write_to_path(&path).unwrap();
    let err = Model::load(&path, &LoadOptions::with_threads(1)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&blk(3, FFN_UP_EXPS)) && msg.contains("holds 7 experts but expert_count is 8"),
        "{msg}"
    );
    // Top-k larger than the expert count.
    let err = bad_copy(
        "l4-top-k",
        |k, v| {
            Some(if k == "llama4.expert_used_count" {
                Value::U32(6)
            } else {
                v.clone()
            })
        },
        "",
    );
    let msg = err.to_string();
    assert!(
        msg.contains("expert_used_count is 6") && msg.contains("4 experts"),
        "{msg}"
    );
    // A missing shared expert.
    let err = bad_copy("l4-shexp", keep, &blk(2, FFN_UP_SHEXP));
    let msg = err.to_string();
    assert!(
        msg.contains(&blk(2, FFN_UP_SHEXP)) && msg.contains("shared expert"),
        "{msg}"
    );
    // A missing routed-expert tensor and a missing router.
    let err = bad_copy("l4-exps", keep, &blk(1, FFN_DOWN_EXPS));
    assert!(err.to_string().contains(&blk(1, FFN_DOWN_EXPS)), "{err}");
    let err = bad_copy("l4-router", keep, &blk(0, FFN_GATE_INP));
    assert!(err.to_string().contains(&blk(0, FFN_GATE_INP)), "{err}");
    // A chunk size of the wrong type.
    let err = bad_copy_with(
        "l4-chunk",
        keep,
        "",
        &[(
            "llama4.attention.sliding_window",
            Value::String("8k".into()),
        )],
    );
    assert!(
        err.to_string().contains("llama4.attention.sliding_window"),
        "{err}"
    );
}

/// The tiny models' byte-level BPE (Llama 4 split regex, specials) tokenizes the golden chat
/// text exactly as transformers' tokenizer did.
#[test]
fn the_llama4_pre_tokenizer_matches_transformers_on_the_golden_text() {
    for name in MODELS {
        let g = golden(name);
        let text = g["text"].as_str().unwrap();
        let expected = ids(&g["ids"]);
        let model = load(&format!("{name}.f32.gguf"));
        // The text starts with the BOS token written out; parse specials, add nothing.
        let got = model
            .tokenizer()
            .unwrap()
            .encode(text, false, true)
            .unwrap();
        assert_eq!(&got[..expected.len()], &expected[..], "{name}");
    }
}

/// The tiny models' Llama 4-style chat template renders the golden conversation as
/// transformers' `apply_chat_template` did.
#[test]
fn the_chat_template_renders_the_golden_conversation_as_transformers() {
    use fennec_core::chat::ChatMessage;
    let g = golden("scout");
    let messages = [
        ChatMessage::new(
            "system",
            "You are a careful helper who answers in short, clear sentences.",
        ),
        ChatMessage::new(
            "user",
            "Tell me about the river, the old mill and the stone bridge near the village.",
        ),
        ChatMessage::new(
            "assistant",
            "The river runs past the old mill. In the morning the water is cold and clear, and \
             the children walk along the bank to school. They count: one, two, three, four. The \
             cat sleeps on the warm window sill.",
        ),
        ChatMessage::new(
            "user",
            "What do we do when the numbers do not agree? I'll check 345 and 2025 twice.",
        ),
    ];
    let model = load("scout.f32.gguf");
    let rendered = model
        .chat_template()
        .unwrap()
        .render(&messages, true)
        .unwrap();
    assert_eq!(rendered, g["text"].as_str().unwrap());
}

#[test]
fn predicted_expert_read_ahead_changes_no_logit_and_counts_its_predictions() {
    // Decode token by token (the case read-ahead is for), with and without prediction.
    let decode = |model: &Arc<Model>, tokens: &[u32]| -> Vec<f32> {
        let mut s = session(model, tokens.len(), 1);
        let mut out = Vec::new();
        for &t in tokens {
            out.extend_from_slice(s.eval(&[Input::Tokens(&[t])], Logits::Last).unwrap());
        }
        out
    };
    for name in ["chunked", "maverick"] {
        let model = load(&format!("{name}.f32.gguf"));
        let tokens = ids(&golden(name)["ids"]);
        assert_eq!(
            model.expert_stats().unwrap().prefetched,
            0,
            "off by default"
        );
        let plain = decode(&model, &tokens);
        let before = model.expert_stats().unwrap();
        assert_eq!(before.prefetched, 0);
        assert_eq!(before.prefetch_hits, 0);
        model.set_expert_residency(ExpertResidencyOptions {
            lookahead: 2,
            ..Default::default()
        });
        let predicted = decode(&model, &tokens);
        assert!(
            plain
                .iter()
                .zip(&predicted)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: read-ahead changed the logits"
        );
        let after = model.expert_stats().unwrap();
        let uses = after.expert_uses - before.expert_uses;
        let n_moe = after.layers.len() as u64;
        let k = model.llama4_hparams().unwrap().n_expert_used as u64;
        // One token per batch: each MoE layer uses exactly k experts.
        assert_eq!(uses, n_moe * k * tokens.len() as u64, "{name}");
        // Each layer is predicted from up to three hidden states (lookahead 2 plus the
        // current layer), each naming k experts, and an expert is queued once per batch.
        assert!(after.prefetched > 0, "{name}");
        assert!(after.prefetched <= 3 * uses, "{name}: {after:?}");
        // The hidden state entering a layer predicts some of its own routing.
        assert!(after.prefetch_hits > 0, "{name}: {after:?}");
        assert!(after.prefetch_hits <= uses.min(after.prefetched), "{name}");
    }
}
