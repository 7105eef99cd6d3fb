//! SmolLM2-135M-Instruct Q4_1 in Fennec against llama.cpp's goldens
//! (`tests/fixtures/llamacpp/make_goldens.py`, llama.cpp 0c1e57098, f32 KV, no flash attention).
//!
//! Tolerance. Q4_1 and Q8_0 matmuls quantize activations to 8 bits, so a change in float
//! summation order anywhere (SIMD width, thread split) can flip one activation's rounding
//! and the difference grows through 30 layers. Fennec's own scalar and AVX-512 kernels,
//! both exact in their integer parts, disagree by up to 1.13 in a logit (0.25 mean) on these
//! prompts; llama.cpp's differs from either by the same amount. The bounds below sit just
//! above that noise floor, and are far below what a real bug causes (a dropped norm, a
//! wrong RoPE or a wrong head mapping moves logits by several units and flips most argmaxes).

use std::sync::Arc;

use fennec_core::chat::ChatMessage;
use fennec_core::sampler::argmax;
use fennec_core::{Input, KvType, LoadOptions, Logits, Model, Session, SessionOptions};
use fennec_tests::{fixture, smollm2_path};

use fennec_tests::{fixture_json as load_json, json_ids as ids};

fn model() -> Arc<Model> {
    Model::load(smollm2_path(), &LoadOptions::with_threads(2)).unwrap()
}

fn session(model: &Arc<Model>, n_ctx: usize) -> Session {
    Session::new(
        model.clone(),
        SessionOptions {
            n_ctx,
            kv_type: KvType::F32,
            n_ubatch: 512,
        },
    )
    .unwrap()
}

/// Below this logit margin between llama.cpp's top two tokens, the two runtimes' noise can
/// pick either one; the comparison of a continuation ends there.
const NEAR_TIE: f32 = 0.35;

#[test]
fn greedy_continuations_match_llama_cpp_until_a_near_tie() {
    let golden = load_json("llamacpp/smollm2/greedy.json");
    let model = model();
    let tokenizer = model.tokenizer().unwrap();
    let template = model.chat_template().unwrap();
    let mut compared = 0;
    let mut report = Vec::new();
    for case in golden["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        // The prompt ids are ours, checked against llama.cpp's.
        let prompt = match case["kind"].as_str().unwrap() {
            "chat" => {
                let messages: Vec<ChatMessage> = case["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        ChatMessage::new(
                            m["role"].as_str().unwrap(),
                            m["content"].as_str().unwrap(),
                        )
                    })
                    .collect();
                let rendered = template.render(&messages, true).unwrap();
                assert_eq!(
                    rendered,
                    case["rendered"].as_str().unwrap(),
                    "{name}: template"
                );
                tokenizer
                    .encode(&rendered, tokenizer.add_bos_token(), true)
                    .unwrap()
            }
            _ => tokenizer
                .encode(
                    case["text"].as_str().unwrap(),
                    tokenizer.add_bos_token(),
                    false,
                )
                .unwrap(),
        };
        assert_eq!(prompt, ids(&case["prompt"]), "{name}: prompt tokens");
        let expected = ids(&case["generated"]);
        let margins: Vec<f32> = case["margins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_f64().unwrap() as f32)
            .collect();

        let mut s = session(&model, 512);
        let mut logits = s
            .eval(&[Input::Tokens(&prompt)], Logits::Last)
            .unwrap()
            .to_vec();
        let mut matched = 0;
        for (i, &want) in expected.iter().enumerate() {
            let got = argmax(&logits);
            if got != want {
                assert!(
                    margins[i] < NEAR_TIE,
                    "{name}: token {i} is {got}, llama.cpp chose {want} with a margin of {} (matched {matched} before)",
                    margins[i]
                );
                break;
            }
            matched += 1;
            if tokenizer.is_eog(got) {
                break;
            }
            logits = s
                .eval(&[Input::Tokens(&[got])], Logits::Last)
                .unwrap()
                .to_vec();
        }
        report.push(format!("{name}: {matched}/{}", expected.len()));
        compared += matched;
    }
    eprintln!(
        "greedy tokens identical to llama.cpp: {}",
        report.join(", ")
    );
    // Most of the 12 x 32 tokens must be compared and equal (180 here; SmolLM2-135M has many
    // near-ties, so continuations often part at one).
    assert!(
        compared >= 150,
        "only {compared} tokens matched: {report:?}"
    );
}

#[test]
fn all_position_logits_match_llama_cpp_within_the_noise_floor() {
    let model = model();
    for name in ["prose", "chat", "mixed", "long"] {
        let golden = load_json(&format!("llamacpp/smollm2/logits/{name}.json"));
        let tokens = ids(&golden["ids"]);
        let n_vocab = model.n_vocab();
        let mut s = session(&model, tokens.len());
        let logits = s
            .eval(&[Input::Tokens(&tokens)], Logits::All)
            .unwrap()
            .to_vec();
        let (mut sum, mut count, mut max, mut argmax_agree, mut decisive) =
            (0.0f64, 0usize, 0.0f32, 0, 0);
        for (pos, (top_ids, top_logits)) in golden["top_ids"]
            .as_array()
            .unwrap()
            .iter()
            .zip(golden["top_logits"].as_array().unwrap())
            .enumerate()
        {
            let row = &logits[pos * n_vocab..(pos + 1) * n_vocab];
            let top_ids = ids(top_ids);
            let top: Vec<f32> = top_logits
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            for (&id, &want) in top_ids.iter().zip(&top) {
                let d = (row[id as usize] - want).abs();
                sum += f64::from(d);
                count += 1;
                max = max.max(d);
            }
            if top[0] - top[1] > NEAR_TIE {
                decisive += 1;
                argmax_agree += usize::from(argmax(row) == top_ids[0]);
            }
        }
        let mean = sum / count as f64;
        eprintln!("{name}: {} positions, top-64 logits max |diff| {max:.3}, mean {mean:.4}, argmax {argmax_agree}/{decisive}", tokens.len());
        assert!(max < 2.0, "{name}: max |diff| {max}");
        assert!(mean < 0.35, "{name}: mean |diff| {mean}");
        assert_eq!(
            argmax_agree, decisive,
            "{name}: argmax differs where llama.cpp is decisive"
        );
    }
}

#[test]
fn batch_micro_batch_and_one_by_one_prefill_agree() {
    let model = model();
    let golden = load_json("llamacpp/smollm2/logits/mixed.json");
    let tokens = ids(&golden["ids"]);
    let run = |ubatch: usize| {
        let mut s = session(&model, tokens.len());
        s.eval_with_ubatch(&[Input::Tokens(&tokens)], Logits::All, ubatch)
            .unwrap()
            .to_vec()
    };
    let batch = run(512);
    for ubatch in [1, 7, 32] {
        let other = run(ubatch);
        let max = batch
            .iter()
            .zip(&other)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        // Rows are computed independently of the batch they are in: identical results.
        assert_eq!(max, 0.0, "ubatch {ubatch} differs from one batch by {max}");
    }
}

#[test]
fn weights_repacked_at_load_give_the_same_logits_bit_for_bit() {
    // Repacking only moves bytes into the layout the row-lane kernels read; the arithmetic
    // is the same, so every logit (and the tied embedding's lookups) must be identical.
    let golden = load_json("llamacpp/smollm2/logits/mixed.json");
    let tokens = ids(&golden["ids"]);
    let run = |repack: bool| {
        let opts = LoadOptions {
            repack,
            ..LoadOptions::with_threads(2)
        };
        let model = Model::load(smollm2_path(), &opts).unwrap();
        let repacks = repack && fennec_quant::matmul::repack_pays_off(fennec_quant::GgmlType::Q4_1);
        assert_eq!(model.repacked_bytes() > 0, repacks, "repack {repack}");
        let fingerprint = model.fingerprint();
        let mut s = session(&model, tokens.len());
        let logits = s
            .eval(&[Input::Tokens(&tokens)], Logits::All)
            .unwrap()
            .to_vec();
        (logits, fingerprint)
    };
    let (rows, rows_fp) = run(false);
    let (panels, panels_fp) = run(true);
    assert_eq!(
        rows_fp, panels_fp,
        "the fingerprint hashes the file as stored"
    );
    let same = rows
        .iter()
        .zip(&panels)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(
        same && rows.len() == panels.len(),
        "repacked weights change the logits"
    );
}

/// Chunks of 512 tokens scored (of the golden's ten): llama-perplexity prints its running
/// estimate after every chunk, so the first four are compared with its value after four.
/// (All ten cost a minute and a half of the test run for little more evidence.)
const PPL_CHUNKS: usize = 4;

#[test]
fn perplexity_is_within_half_a_percent_of_llama_cpp() {
    let golden = load_json("llamacpp/smollm2/perplexity.json");
    let reference = golden["runs"][0]["running_ppl_per_chunk"][PPL_CHUNKS - 1]
        .as_f64()
        .unwrap();
    let model = model();
    let text = std::fs::read_to_string(fixture("llamacpp/ppl.txt")).unwrap();
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let tokens = model
        .tokenizer()
        .unwrap()
        .encode(text, true, false)
        .unwrap();
    assert_eq!(
        tokens,
        ids(&golden["token_ids"]),
        "perplexity text tokenizes differently"
    );
    let n_ctx = 512;
    let n_vocab = model.n_vocab();
    let mut s = session(&model, n_ctx);
    let (mut nll, mut count) = (0.0f64, 0usize);
    for chunk in tokens.chunks_exact(n_ctx).take(PPL_CHUNKS) {
        s.clear();
        let logits = s
            .eval(&[Input::Tokens(chunk)], Logits::All)
            .unwrap()
            .to_vec();
        for j in n_ctx / 2..n_ctx - 1 {
            let row = &logits[j * n_vocab..(j + 1) * n_vocab];
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = row
                .iter()
                .map(|&l| (l as f64 - max).exp())
                .sum::<f64>()
                .ln()
                + max;
            nll += lse - row[chunk[j + 1] as usize] as f64;
            count += 1;
        }
    }
    let ppl = (nll / count as f64).exp();
    let rel = (ppl - reference).abs() / reference;
    eprintln!(
        "perplexity after {PPL_CHUNKS} chunks {ppl:.4} vs llama.cpp {reference:.4} ({:.3} %)",
        rel * 100.0
    );
    assert!(rel < 0.005, "perplexity {ppl} vs llama.cpp {reference}");
}

/// With every weight in F32 no activation is quantized, so the forward pass itself is checked:
/// Fennec dequantizes SmolLM2 (bit-exact with ggml) into an F32 GGUF, as `llama-quantize F32`
/// does for the golden, and its logits must equal llama.cpp's to float rounding.
#[test]
fn f32_weights_logits_equal_llama_cpp_to_float_rounding() {
    use fennec_core::gguf::{GgmlType, GgufFile, GgufWriter, TensorData, Value};
    let source = GgufFile::open(smollm2_path()).unwrap();
    let mut w = GgufWriter::new();
    for (key, value) in source.metadata().iter() {
        let value = if key == "general.file_type" {
            Value::U32(0)
        } else {
            value.clone()
        };
        w.add(key, value).unwrap();
    }
    for info in source.tensor_infos() {
        let data = source.tensor(&info.name).unwrap().data;
        let mut f32s = vec![0.0f32; info.n_elements() as usize];
        fennec_quant::dequantize_row(info.ty, data, &mut f32s).unwrap();
        let bytes: Vec<u8> = f32s.iter().flat_map(|v| v.to_le_bytes()).collect();
        w.add_tensor(
            info.name.clone(),
            GgmlType::F32,
            &info.dims,
            TensorData::Bytes(bytes.into()),
        )
        .unwrap();
    }
    let dir = fennec_tests::temp_dir("f32-smollm2");
    let path = dir.join("smollm2-f32.gguf");
    w.write_to_path(&path).unwrap();
    drop(w);

    let golden = load_json("llamacpp/smollm2/logits_f32/mixed.json");
    let tokens = ids(&golden["ids"]);
    let model = Model::load(&path, &LoadOptions::with_threads(2)).unwrap();
    let mut s = session(&model, tokens.len());
    let logits = s
        .eval(&[Input::Tokens(&tokens)], Logits::All)
        .unwrap()
        .to_vec();
    let n_vocab = model.n_vocab();
    let mut max = 0.0f32;
    for (pos, (top_ids, top_logits)) in golden["top_ids"]
        .as_array()
        .unwrap()
        .iter()
        .zip(golden["top_logits"].as_array().unwrap())
        .enumerate()
    {
        for (id, want) in ids(top_ids).into_iter().zip(top_logits.as_array().unwrap()) {
            let got = logits[pos * n_vocab + id as usize];
            max = max.max((got - want.as_f64().unwrap() as f32).abs());
        }
    }
    eprintln!(
        "F32 weights: max |logit diff| vs llama.cpp {max:e} over {} positions",
        tokens.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(max < 5e-4, "F32 logits differ from llama.cpp by {max}");
}
