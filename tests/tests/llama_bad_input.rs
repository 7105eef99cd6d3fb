//! Bad models and bad requests get clear errors, never panics; KV cache types agree.

use std::path::PathBuf;

use fennec_core::gguf::GgufWriter;
use fennec_core::{
    Error, ErrorKind, Input, KvType, LoadOptions, Logits, Model, Session, SessionOptions,
};
use fennec_tests::{temp_dir, write_tiny_llama};

/// A change to the tiny model's metadata.
type Edit = dyn FnOnce(&mut GgufWriter<'static>);

/// A tiny llama written with `edit`, then with the first occurrence of `from` in its bytes
/// replaced by `to` (same length). Returns the directory to remove and the file.
fn tiny_model(
    tag: &str,
    edit: impl FnOnce(&mut GgufWriter<'static>),
    patch: Option<(&[u8], &[u8])>,
) -> (PathBuf, PathBuf) {
    let dir = temp_dir(tag);
    let path = dir.join("m.gguf");
    write_tiny_llama(&path, edit);
    if let Some((from, to)) = patch {
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
        bytes[at..at + to.len()].copy_from_slice(to);
        std::fs::write(&path, &bytes).unwrap();
    }
    (dir, path)
}

fn load(path: &PathBuf) -> Result<std::sync::Arc<Model>, Error> {
    Model::load(path, &LoadOptions::with_threads(2))
}

fn load_err(
    tag: &str,
    edit: impl FnOnce(&mut GgufWriter<'static>),
    patch: Option<(&[u8], &[u8])>,
) -> Error {
    let (dir, path) = tiny_model(tag, edit, patch);
    let err = load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    err
}

#[test]
fn unknown_architecture_is_named() {
    let err = load_err("arch", |_| {}, Some((b"llama", b"mamba")));
    assert!(
        matches!(err, Error::UnknownArchitecture(ref a) if a == "mamba"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(
        err.to_string().contains("unknown architecture \"mamba\""),
        "{err}"
    );
}

#[test]
fn missing_keys_and_bad_shapes_are_named() {
    let cases: [(&str, Box<Edit>, &[&str]); 4] = [
        (
            "yarn",
            Box::new(|w| {
                w.add("llama.rope.scaling.type", "yarn").unwrap();
            }),
            &["yarn"],
        ),
        (
            "vocab",
            Box::new(|w| {
                w.add("llama.vocab_size", 999u32).unwrap();
            }),
            &["vocab_size is 999", "256"],
        ),
        (
            "rot",
            Box::new(|w| {
                w.add("llama.rope.dimension_count", 15u32).unwrap();
            }),
            &["rope.dimension_count 15"],
        ),
        (
            "kl",
            Box::new(|w| {
                w.add("llama.attention.key_length", 8u32).unwrap();
            }),
            &["blk.0.attn_q.weight", "expected"],
        ),
    ];
    for (tag, edit, needles) in cases {
        let err = load_err(tag, edit, None);
        let kind = if tag == "yarn" {
            ErrorKind::Unsupported
        } else {
            ErrorKind::InvalidModel
        };
        assert_eq!(err.kind(), kind, "{tag}: {err}");
        let err = err.to_string();
        assert!(needles.iter().all(|n| err.contains(n)), "{tag}: {err}");
    }
    let err = load_err(
        "missing",
        |_| {},
        Some((b"llama.feed_forward_length", b"xxxxx")),
    )
    .to_string();
    assert!(
        err.contains("llama.feed_forward_length") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn unsupported_tokenizer_is_an_error_when_text_is_used() {
    // "gpt2" -> "bert": a tokenizer model Fennec does not run.
    let (dir, path) = tiny_model("tok", |_| {}, Some((b"gpt2", b"bert")));
    let err = load(&path).unwrap().tokenizer().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tokenizer);
    let err = err.to_string();
    assert!(err.contains("bert"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn context_overflow_and_bad_tokens_are_errors() {
    let (dir, path) = tiny_model("ctx", |_| {}, None);
    let model = load(&path).unwrap();
    let mut s = Session::new(
        model,
        SessionOptions {
            n_ctx: 8,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let err = s.eval(&[Input::Tokens(&[1; 9])], Logits::Last).unwrap_err();
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
    s.eval(&[Input::Tokens(&[1; 5])], Logits::None)
        .unwrap()
        .to_vec();
    let err = s.eval(&[Input::Tokens(&[1; 4])], Logits::Last).unwrap_err();
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
    let err = s.eval(&[Input::Tokens(&[256])], Logits::Last).unwrap_err();
    assert!(
        err.to_string()
            .contains("token id 256 is outside the vocabulary (256 tokens)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kv_cache_types_agree_with_f32() {
    let (dir, path) = tiny_model("kv", |_| {}, None);
    let model = load(&path).unwrap();
    let tokens: Vec<u32> = (0..40).map(|i| (i * 37 % 256) as u32).collect();
    let run = |kv_type| {
        let opts = SessionOptions {
            n_ctx: 64,
            kv_type,
            n_ubatch: 16,
        };
        Session::new(model.clone(), opts)
            .unwrap()
            .eval(&[Input::Tokens(&tokens)], Logits::All)
            .unwrap()
            .to_vec()
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
