//! Tokenizer behaviour on small hand-made vocabularies: bad metadata, special tokens,
//! streaming and invalid input. Needs no model file.

use fennec_core::gguf::{Array, Metadata, Value};
use fennec_core::tokenizer::{byte_to_char, TokenType, Tokenizer, TokenizerError};
use fennec_quant::rng::Rng;

/// A vocabulary: 256 byte tokens, merges for "he", "ll", "hell", "hello", "Ġw", and four
/// special tokens (two control, one user-defined, one unknown).
fn metadata(pre: &str) -> Metadata {
    let mut tokens: Vec<String> = (0..=255).map(|b| byte_to_char(b).to_string()).collect();
    let mut types = vec![1i32; tokens.len()];
    let merges = ["h e", "l l", "he ll", "hell o", "Ġ w"];
    for m in merges {
        tokens.push(m.replace(' ', ""));
        types.push(1);
    }
    for (t, ty) in [
        ("<|bos|>", 3),
        ("<|im_end|>", 3),
        ("<tool>", 4),
        ("<unk>", 2),
        ("[PAD265]", 5),
    ] {
        tokens.push(t.to_string());
        types.push(ty);
    }
    let mut md = Metadata::new();
    md.insert("tokenizer.ggml.model", "gpt2").unwrap();
    md.insert("tokenizer.ggml.pre", pre).unwrap();
    md.insert("tokenizer.ggml.tokens", Array::from(tokens))
        .unwrap();
    md.insert("tokenizer.ggml.token_type", Array::from(types))
        .unwrap();
    md.insert(
        "tokenizer.ggml.merges",
        Array::from(merges.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
    )
    .unwrap();
    md.insert("tokenizer.ggml.bos_token_id", Value::U32(261))
        .unwrap();
    md.insert("tokenizer.ggml.eos_token_id", Value::U32(262))
        .unwrap();
    md
}

fn replace(md: &Metadata, key: &str, value: Option<Value>) -> Metadata {
    let mut out = Metadata::new();
    for (k, v) in md.iter() {
        if k != key {
            out.insert(k, v.clone()).unwrap();
        }
    }
    if let Some(v) = value {
        out.insert(key, v).unwrap();
    }
    out
}

#[test]
fn unsupported_model_is_named() {
    let md = replace(
        &metadata("default"),
        "tokenizer.ggml.model",
        Some("llama".into()),
    );
    let err = Tokenizer::from_gguf(&md).unwrap_err();
    assert!(matches!(&err, TokenizerError::UnsupportedModel(m) if m == "llama"));
    assert!(err.to_string().contains("'llama'"), "{err}");
}

#[test]
fn unsupported_pre_is_named() {
    let err = Tokenizer::from_gguf(&metadata("deepseek-llm")).unwrap_err();
    assert!(matches!(&err, TokenizerError::UnsupportedPre(p) if p == "deepseek-llm"));
    assert!(err.to_string().contains("'deepseek-llm'"), "{err}");
}

#[test]
fn missing_and_malformed_keys_are_errors() {
    let md = replace(&metadata("default"), "tokenizer.ggml.tokens", None);
    assert!(matches!(
        Tokenizer::from_gguf(&md),
        Err(TokenizerError::Metadata(_))
    ));
    let md = replace(&metadata("default"), "tokenizer.ggml.merges", None);
    assert!(matches!(
        Tokenizer::from_gguf(&md),
        Err(TokenizerError::Metadata(_))
    ));
    let md = replace(
        &metadata("default"),
        "tokenizer.ggml.merges",
        Some(Value::U32(3)),
    );
    assert!(matches!(
        Tokenizer::from_gguf(&md),
        Err(TokenizerError::InvalidVocab(_))
    ));
    let md = replace(
        &metadata("default"),
        "tokenizer.ggml.token_type",
        Some(Array::from(vec![1i32; 3]).into()),
    );
    assert!(matches!(
        Tokenizer::from_gguf(&md),
        Err(TokenizerError::InvalidVocab(_))
    ));
    let md = replace(
        &metadata("default"),
        "tokenizer.ggml.tokens",
        Some(Array::from(Vec::<String>::new()).into()),
    );
    assert!(matches!(
        Tokenizer::from_gguf(&md),
        Err(TokenizerError::InvalidVocab(_))
    ));
}

#[test]
fn every_supported_pre_builds() {
    for pre in [
        "default",
        "gpt-2",
        "llama-bpe",
        "llama3",
        "smollm",
        "qwen2",
        "llama4",
        "gpt-4o",
    ] {
        let tok = std::sync::Arc::new(Tokenizer::from_gguf(&metadata(pre)).unwrap());
        assert_eq!(tok.pre(), pre);
        let ids = tok.encode("hello world 123 ÀÉ", false, false).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), "hello world 123 ÀÉ", "{pre}");
    }
    // Missing pre falls back to "default", as llama.cpp does.
    let md = replace(&metadata("x"), "tokenizer.ggml.pre", None);
    assert_eq!(Tokenizer::from_gguf(&md).unwrap().pre(), "default");
}

#[test]
fn merges_stored_as_pairs_work_too() {
    let pairs: Vec<Array> = ["h e", "l l", "he ll", "hell o", "Ġ w"]
        .iter()
        .map(|m| {
            let (a, b) = m.split_once(' ').unwrap();
            Array::from(vec![a.to_string(), b.to_string()])
        })
        .collect();
    let a = Tokenizer::from_gguf(&metadata("gpt-2")).unwrap();
    let md = replace(
        &metadata("gpt-2"),
        "tokenizer.ggml.merges",
        Some(Array::from(pairs).into()),
    );
    let b = Tokenizer::from_gguf(&md).unwrap();
    let text = "hello hello world";
    assert_eq!(
        a.encode(text, false, false).unwrap(),
        b.encode(text, false, false).unwrap()
    );
    assert_eq!(a.encode("hello", false, false).unwrap(), vec![259]);
}

#[test]
fn special_tokens_follow_parse_special() {
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(&metadata("gpt-2")).unwrap());
    let im_end = tok.token_id("<|im_end|>").unwrap();
    let tool = tok.token_id("<tool>").unwrap();
    let unk = tok.token_id("<unk>").unwrap();
    assert_eq!(tok.token_type(im_end).unwrap(), TokenType::Control);
    // Control and unknown tokens only with parse_special.
    assert_eq!(tok.encode("<|im_end|>", false, true).unwrap(), vec![im_end]);
    assert_eq!(tok.encode("<unk>", false, true).unwrap(), vec![unk]);
    let plain = tok.encode("<|im_end|>", false, false).unwrap();
    assert!(!plain.contains(&im_end));
    assert_eq!(tok.decode(&plain).unwrap(), "<|im_end|>");
    // User-defined tokens always.
    assert_eq!(tok.encode("<tool>", false, false).unwrap(), vec![tool]);
    let (a, b) = (
        tok.byte_to_token(b'a').unwrap(),
        tok.byte_to_token(b'b').unwrap(),
    );
    assert_eq!(
        tok.encode("a<tool>b", false, false).unwrap(),
        vec![a, tool, b]
    );
    // BOS only when the model asks for it; this vocabulary says nothing, so "gpt-2" adds none.
    assert!(!tok.add_bos_token());
    assert_eq!(tok.encode("", true, true).unwrap(), Vec::<u32>::new());
    let md = replace(
        &metadata("gpt-2"),
        "tokenizer.ggml.add_bos_token",
        Some(Value::Bool(true)),
    );
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(&md).unwrap());
    assert_eq!(tok.encode("", true, true).unwrap(), vec![261]);
    assert_eq!(tok.encode("", false, true).unwrap(), Vec::<u32>::new());
    // llama-bpe adds BOS by default.
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(&metadata("llama-bpe")).unwrap());
    assert_eq!(tok.encode("he", true, true).unwrap(), vec![261, 256]);
}

#[test]
fn unused_slots_decode_to_nothing_and_never_match() {
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(&metadata("gpt-2")).unwrap());
    let pad = tok.token_id("[PAD265]").unwrap();
    assert_eq!(tok.token_type(pad).unwrap(), TokenType::Unused);
    assert!(tok.token_bytes(pad).is_empty());
    assert_eq!(tok.decode(&[pad]).unwrap(), "");
    let ids = tok.encode("[PAD265]", false, true).unwrap();
    assert!(!ids.contains(&pad));
    assert_eq!(tok.decode(&ids).unwrap(), "[PAD265]");
}

#[test]
fn eog_tokens() {
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(&metadata("gpt-2")).unwrap());
    let im_end = tok.token_id("<|im_end|>").unwrap();
    assert!(tok.is_eog(262));
    assert!(tok.is_eog(im_end));
    assert!(!tok.is_eog(261));
    assert!(!tok.is_eog(u32::MAX));
    assert_eq!(tok.eog_ids(), vec![262]);
    assert_eq!(tok.eot(), Some(im_end));
}

#[test]
fn invalid_ids_are_errors() {
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(&metadata("gpt-2")).unwrap());
    let n = tok.vocab_size() as u32;
    assert!(matches!(
        tok.decode(&[0, n]),
        Err(TokenizerError::InvalidTokenId { id, .. }) if id == n
    ));
    assert!(matches!(
        tok.token_text(n),
        Err(TokenizerError::InvalidTokenId { id, .. }) if id == n
    ));
    assert!(tok.token_bytes(n).is_empty());
    let mut dec = tok.stream_decoder();
    assert!(matches!(
        dec.push(n),
        Err(TokenizerError::InvalidTokenId { id, .. }) if id == n
    ));
}

#[test]
fn stream_decoder_waits_for_whole_characters() {
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(&metadata("gpt-2")).unwrap());
    // "é" is C3 A9, "🦊" is F0 9F A6 8A: feed them a byte token at a time.
    let ids: Vec<u32> = "aé🦊"
        .bytes()
        .map(|b| tok.byte_to_token(b).unwrap())
        .collect();
    let mut dec = tok.stream_decoder();
    let pieces: Vec<String> = ids.iter().map(|&id| dec.push(id).unwrap()).collect();
    assert_eq!(pieces, ["a", "", "é", "", "", "", "🦊"]);
    assert_eq!(dec.flush().unwrap(), "");
}

#[test]
fn stream_decoder_rejects_invalid_utf8() {
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(&metadata("gpt-2")).unwrap());
    let id = |b: u8| tok.byte_to_token(b).unwrap();
    // A lone continuation byte is never valid.
    let mut dec = tok.stream_decoder();
    assert_eq!(dec.push(id(b'x')).unwrap(), "x");
    let err = dec.push(id(0x80)).unwrap_err();
    assert!(matches!(&err, TokenizerError::InvalidUtf8 { bytes } if bytes == &[0x80]));
    assert!(err.to_string().contains("UTF-8"));
    // The bad byte is dropped and decoding goes on.
    assert_eq!(dec.push(id(b'y')).unwrap(), "y");
    // A lead byte followed by a non-continuation byte.
    assert!(dec.push(id(0xE2)).unwrap().is_empty());
    assert!(matches!(
        dec.push(id(b'z')),
        Err(TokenizerError::InvalidUtf8 { .. })
    ));
    // A character cut off at the end of the stream.
    let mut dec = tok.stream_decoder();
    assert_eq!(dec.push(id(0xF0)).unwrap(), "");
    assert_eq!(dec.pending(), &[0xF0]);
    assert!(matches!(
        dec.flush(),
        Err(TokenizerError::InvalidUtf8 { bytes }) if bytes == [0xF0]
    ));
    // Lossy mode substitutes U+FFFD instead.
    let mut dec = fennec_core::tokenizer::StreamDecoder::lossy(tok.clone());
    assert_eq!(dec.push(id(0xFF)).unwrap(), "\u{FFFD}");
    assert_eq!(dec.push(id(0xE2)).unwrap(), "");
    assert_eq!(dec.flush().unwrap(), "\u{FFFD}");
    // decode() itself is lossy.
    assert_eq!(tok.decode(&[id(0xFF), id(b'a')]).unwrap(), "\u{FFFD}a");
}

#[test]
fn arbitrary_input_never_panics() {
    let tok = std::sync::Arc::new(Tokenizer::from_gguf(&metadata("llama4")).unwrap());
    let mut rng = Rng::new(0x1234_5678);
    for _ in 0..300 {
        let mut s = String::new();
        for _ in 0..rng.below(40) {
            let r = rng.next_u64();
            let c = char::from_u32((r >> 33) as u32 % 0x11_0000).unwrap_or('\u{FFFD}');
            s.push(c);
            if r.is_multiple_of(7) {
                s.push_str("<|im_end|>");
            }
        }
        for parse_special in [false, true] {
            let ids = tok.encode(&s, true, parse_special).unwrap();
            let mut dec = fennec_core::tokenizer::StreamDecoder::lossy(tok.clone());
            for &id in &ids {
                dec.push(id).unwrap();
            }
            dec.flush().unwrap();
        }
    }
}
