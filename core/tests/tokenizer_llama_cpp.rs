//! Token-for-token agreement with llama.cpp's `llama-tokenize` on SmolLM2's vocabulary.
//!
//! Goldens: `tests/fixtures/tokenizer/strings.json`, made by `make_goldens.py` beside it.
//! Needs the SmolLM2 model: run `scripts/fetch-models.sh` (or set `FENNEC_MODELS`).

use std::path::PathBuf;

use fennec_core::gguf::{GgufFile, Metadata, Value};
use fennec_core::tokenizer::{byte_to_char, Tokenizer};

const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn model_path() -> PathBuf {
    let dir = match std::env::var_os("FENNEC_MODELS") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/fennec/models")
        }
    };
    let path = dir.join(MODEL);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models.sh or set FENNEC_MODELS",
        path.display()
    );
    path
}

fn goldens() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/tokenizer/strings.json"
    );
    let text = std::fs::read_to_string(path).expect("read strings.json");
    serde_json::from_str(&text).expect("parse strings.json")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("ids array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// The metadata with `tokenizer.ggml.pre` replaced.
fn with_pre(md: &Metadata, pre: &str) -> Metadata {
    let mut out = Metadata::new();
    for (k, v) in md.iter() {
        let v = if k == "tokenizer.ggml.pre" {
            Value::from(pre)
        } else {
            v.clone()
        };
        out.insert(k, v).unwrap();
    }
    out
}

fn show(text: &str) -> String {
    format!("{text:?}")
}

#[test]
fn smollm2_matches_llama_tokenize() {
    let file = GgufFile::open(model_path()).unwrap();
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(file.metadata()).unwrap());
    assert_eq!(tok.pre(), "smollm");
    let g = goldens();
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let add_bos = c["add_bos"].as_bool().unwrap();
        let parse_special = c["parse_special"].as_bool().unwrap();
        let want = ids(&c["ids"]);
        let got = tok.encode(text, add_bos, parse_special).unwrap();
        if got != want {
            failures.push(format!(
                "{} add_bos={add_bos} parse_special={parse_special}\n  llama.cpp {want:?}\n  fennec    {got:?}",
                show(text)
            ));
        }
        // The ids decode back to the input, unless it has a byte the vocabulary cannot spell
        // (SmolLM2 lacks a few control bytes; llama.cpp drops those too).
        let spellable = text.bytes().all(|b| tok.byte_to_token(b).is_some());
        let back = tok.decode(&got).unwrap();
        if spellable && back != text {
            failures.push(format!("decode of {} gave {}", show(text), show(&back)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn other_pre_tokenizers_match_llama_tokenize() {
    let g = goldens();
    let Some(variants) = g.get("variants").and_then(|v| v.as_object()) else {
        panic!("strings.json has no pre-tokenizer variants; rerun make_goldens.py --pre-variants");
    };
    let file = GgufFile::open(model_path()).unwrap();
    let texts: Vec<&serde_json::Value> = g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["parse_special"].as_bool() == Some(true))
        .collect();
    let mut failures = Vec::new();
    for (pre, expected) in variants {
        let md = with_pre(file.metadata(), pre);
        let tok = std::sync::Arc::new(Tokenizer::from_gguf(&md).unwrap());
        let expected = expected.as_array().unwrap();
        assert_eq!(expected.len(), texts.len(), "variant {pre}");
        for (c, want) in texts.iter().zip(expected) {
            let text = c["text"].as_str().unwrap();
            let add_bos = c["add_bos"].as_bool().unwrap();
            let want = ids(want);
            let got = tok.encode(text, add_bos, true).unwrap();
            if got != want {
                failures.push(format!(
                    "[{pre}] {}\n  llama.cpp {want:?}\n  fennec    {got:?}",
                    show(text)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn smollm2_special_ids_and_eog() {
    let file = GgufFile::open(model_path()).unwrap();
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(file.metadata()).unwrap());
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.eos(), Some(2));
    assert!(!tok.add_bos_token());
    let im_end = tok.token_id("<|im_end|>").unwrap();
    let endoftext = tok.token_id("<|endoftext|>").unwrap();
    assert!(tok.is_eog(im_end));
    assert!(tok.is_eog(endoftext));
    assert!(tok.is_eog(2));
    // As llama.cpp reports for this model: EOG 0, 2 and 4 (<reponame>, the FIM repo token).
    assert_eq!(tok.eog_ids(), vec![0, 2, 4]);
    assert_eq!(tok.eot(), Some(0));
    let hello = tok.encode("Hello", false, false).unwrap();
    assert!(hello.iter().all(|&id| !tok.is_eog(id)));
    assert_eq!(tok.token_bytes(im_end), b"<|im_end|>");
    assert_eq!(tok.token_bytes(u32::MAX), b"");
    assert!(tok.decode(&[u32::MAX]).is_err());
}

#[test]
fn smollm2_stream_decoder_reassembles_split_characters() {
    let file = GgufFile::open(model_path()).unwrap();
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(file.metadata()).unwrap());
    for text in ["🦊 fennec 👨‍👩‍👧‍👦 日本語", "ﬁne ½ ①②", "plain ascii", ""]
    {
        let ids = tok.encode(text, false, false).unwrap();
        let mut dec = tok.stream_decoder();
        let mut out = String::new();
        for &id in &ids {
            let piece = dec.push(id).unwrap();
            out.push_str(&piece);
        }
        out.push_str(&dec.flush().unwrap());
        assert_eq!(out, text);
    }
}

/// The synthetic vocabulary of `make_goldens.py` (`synthetic_vocab`): every substring of every
/// string is a token that merges can build, so each pre-tokenizer piece becomes one token.
fn synthetic_metadata(strings: &[String], pre: &str) -> Metadata {
    let bc: Vec<String> = (0..=255).map(|b| byte_to_char(b).to_string()).collect();
    let mut tokens: Vec<String> = bc.clone();
    let mut index: std::collections::HashSet<String> = tokens.iter().cloned().collect();
    let mut merges = Vec::new();
    for s in strings {
        let enc: Vec<&str> = s.bytes().map(|b| bc[b as usize].as_str()).collect();
        for n in 2..=enc.len() {
            for start in 0..=enc.len() - n {
                let sub = &enc[start..start + n];
                let tok = sub.concat();
                if !index.insert(tok.clone()) {
                    continue;
                }
                tokens.push(tok);
                for k in 1..n {
                    merges.push(format!("{} {}", sub[..k].concat(), sub[k..].concat()));
                }
            }
        }
    }
    let mut types = vec![1i32; tokens.len()];
    for sp in ["<|im_end|>", "<|endoftext|>"] {
        tokens.push(sp.to_string());
        types.push(3);
    }
    let n = tokens.len() as u32;
    let mut md = Metadata::new();
    md.insert("tokenizer.ggml.model", "gpt2").unwrap();
    md.insert("tokenizer.ggml.pre", pre).unwrap();
    md.insert(
        "tokenizer.ggml.tokens",
        fennec_core::gguf::Array::from(tokens),
    )
    .unwrap();
    md.insert(
        "tokenizer.ggml.token_type",
        fennec_core::gguf::Array::from(types),
    )
    .unwrap();
    md.insert(
        "tokenizer.ggml.merges",
        fennec_core::gguf::Array::from(merges),
    )
    .unwrap();
    md.insert("tokenizer.ggml.bos_token_id", Value::U32(n - 1))
        .unwrap();
    md.insert("tokenizer.ggml.eos_token_id", Value::U32(n - 2))
        .unwrap();
    md.insert("tokenizer.ggml.add_bos_token", Value::Bool(false))
        .unwrap();
    md
}

/// Pre-tokenizer splits, made visible by a vocabulary where every piece is one token.
/// Needs no model file.
#[test]
fn pre_tokenizer_splits_match_llama_tokenize() {
    let g = goldens();
    let splits = &g["splits"];
    let strings: Vec<String> = splits["strings"]
        .as_array()
        .expect("strings.json has no splits; rerun make_goldens.py --pre-variants")
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let plain: Vec<String> = strings
        .iter()
        .map(|s| s.replace("<|im_end|>", ""))
        .collect();
    let mut failures = Vec::new();
    let pres = splits["pre"].as_object().unwrap();
    assert!(pres.len() >= 6);
    for (pre, expected) in pres {
        let tok =
            std::sync::Arc::new(Tokenizer::from_gguf(&synthetic_metadata(&plain, pre)).unwrap());
        for (text, want) in strings.iter().zip(expected.as_array().unwrap()) {
            let want = ids(want);
            let got = tok.encode(text, false, true).unwrap();
            if got != want {
                let pieces = |v: &[u32]| {
                    v.iter()
                        .map(|&i| String::from_utf8_lossy(&tok.token_bytes(i)).into_owned())
                        .collect::<Vec<_>>()
                };
                failures.push(format!(
                    "[{pre}] {}\n  llama.cpp {:?}\n  fennec    {:?}",
                    show(text),
                    pieces(&want),
                    pieces(&got)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
