//! Bad models and bad requests get clear errors, never panics; KV cache types agree.

use fennec_core::{Error, KvType, LoadOptions, Logits, Model, Session, SessionOptions};
use fennec_tests::{temp_dir, write_tiny_llama};

fn load_err(tag: &str, edit: impl FnOnce(&mut fennec_core::gguf::GgufWriter<'static>)) -> String {
    let dir = temp_dir(tag);
    let path = dir.join("m.gguf");
    write_tiny_llama(&path, edit);
    let err = Model::load(&path, &LoadOptions { n_threads: 1 })
        .unwrap_err()
        .to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    err
}

#[test]
fn unknown_architecture_is_named() {
    // The writer refuses duplicate keys, so shadow the architecture with a second file.
    let dir = temp_dir("arch");
    let path = dir.join("m.gguf");
    write_tiny_llama(&path, |_| {});
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(5).position(|w| w == b"llama").unwrap();
    bytes[at..at + 5].copy_from_slice(b"mamba");
    std::fs::write(&path, &bytes).unwrap();
    let err = Model::load(&path, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::UnknownArchitecture(ref a) if a == "mamba"),
        "{err}"
    );
    assert!(
        err.to_string().contains("unknown architecture \"mamba\""),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_keys_and_bad_shapes_are_named() {
    let err = load_err("gqa", |w| {
        w.add("llama.rope.scaling.type", "yarn").unwrap();
    });
    assert!(err.contains("yarn"), "{err}");
    let err = load_err("vocab", |w| {
        w.add("llama.vocab_size", 999u32).unwrap();
    });
    assert!(
        err.contains("vocab_size is 999") && err.contains("256"),
        "{err}"
    );
    let err = load_err("rot", |w| {
        w.add("llama.rope.dimension_count", 15u32).unwrap();
    });
    assert!(err.contains("rope.dimension_count 15"), "{err}");
    let err = load_err("kl", |w| {
        w.add("llama.attention.key_length", 8u32).unwrap();
    });
    assert!(
        err.contains("blk.0.attn_q.weight") && err.contains("expected"),
        "{err}"
    );
}

#[test]
fn missing_required_key_is_named() {
    let dir = temp_dir("missing");
    let path = dir.join("m.gguf");
    write_tiny_llama(&path, |_| {});
    let mut bytes = std::fs::read(&path).unwrap();
    let key = b"llama.feed_forward_length";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
    bytes[at..at + 5].copy_from_slice(b"xxxxx");
    std::fs::write(&path, &bytes).unwrap();
    let err = Model::load(&path, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("llama.feed_forward_length") && err.contains("missing"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unsupported_tokenizer_is_an_error_when_text_is_used() {
    let dir = temp_dir("tok");
    let path = dir.join("m.gguf");
    write_tiny_llama(&path, |_| {});
    let mut bytes = std::fs::read(&path).unwrap();
    // "gpt2" -> "bert": same length, a tokenizer model Fennec does not run.
    let at = bytes.windows(4).position(|w| w == b"gpt2").unwrap();
    bytes[at..at + 4].copy_from_slice(b"bert");
    std::fs::write(&path, &bytes).unwrap();
    let model = Model::load(&path, &LoadOptions { n_threads: 1 }).unwrap();
    let err = model.tokenizer().unwrap_err().to_string();
    assert!(err.contains("bert"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn context_overflow_and_bad_tokens_are_errors() {
    let dir = temp_dir("ctx");
    let path = dir.join("m.gguf");
    write_tiny_llama(&path, |_| {});
    let model = Model::load(&path, &LoadOptions { n_threads: 1 }).unwrap();
    let mut s = Session::new(
        model.clone(),
        SessionOptions {
            n_ctx: 8,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let err = s.eval(&[1; 9], Logits::Last).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ContextFull {
                needed: 9,
                n_ctx: 8
            }
        ),
        "{err}"
    );
    assert_eq!(s.n_past(), 0, "a refused call must not change the context");
    s.eval(&[1; 5], Logits::None).unwrap();
    let err = s.eval(&[1; 4], Logits::Last).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ContextFull {
                needed: 9,
                n_ctx: 8
            }
        ),
        "{err}"
    );
    let err = s.eval(&[256], Logits::Last).unwrap_err();
    assert!(
        err.to_string()
            .contains("token id 256 is outside the vocabulary (256 tokens)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kv_cache_types_agree_with_f32() {
    let dir = temp_dir("kv");
    let path = dir.join("m.gguf");
    write_tiny_llama(&path, |_| {});
    let model = Model::load(&path, &LoadOptions { n_threads: 2 }).unwrap();
    let tokens: Vec<u32> = (0..40).map(|i| (i * 37 % 256) as u32).collect();
    let run = |kv_type| {
        let mut s = Session::new(
            model.clone(),
            SessionOptions {
                n_ctx: 64,
                kv_type,
                n_ubatch: 16,
            },
        )
        .unwrap();
        s.eval(&tokens, Logits::All).unwrap()
    };
    let f32s = run(KvType::F32);
    for (kv, bound) in [(KvType::F16, 0.02), (KvType::Q8_0, 0.15)] {
        let other = run(kv);
        let max = f32s
            .iter()
            .zip(&other)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let range = f32s.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max > 0.0, "{kv} cache is not actually used");
        assert!(
            max < bound * range,
            "{kv} cache moves logits by {max} (range {range})"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
