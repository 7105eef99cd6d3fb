//! `--prompt-cache` / `--prompt-cache-ro` of `fennec run` and `fennec chat` on SmolLM2: the
//! cache never changes the output, later runs reuse the prompt, and damaged or foreign cache
//! files are ignored with a warning and then rewritten.

mod common;

use std::path::{Path, PathBuf};

use common::{fennec, fennec_with_stdin, smollm2};
use fennec_core::{Input, LoadOptions, Logits, Model, Session, SessionOptions};
use fennec_tests::{temp_dir, write_tiny_llama};
use serde_json::Value;

const PROMPT: &str = "The capital of France is";

/// `fennec run --json` of `prompt` (greedy, 6 tokens) with `extra` flags: (parsed, stderr).
fn run(prompt: &str, extra: &[&str]) -> (Value, String) {
    let m = smollm2();
    let mut args = vec![
        "run", "-m", &m, "-p", prompt, "--temp", "0", "-n", "6", "-t", "2", "--json",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = fennec(&args);
    assert!(ok, "{err}");
    (serde_json::from_str(&out).unwrap(), err)
}

/// `run` with `--prompt-cache cache`.
fn run_cached(prompt: &str, cache: &Path, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["--prompt-cache", cache.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(prompt, &args)
}

fn cached_tokens(r: &Value) -> u64 {
    r["cached_tokens"].as_u64().expect("cached_tokens")
}

fn prompt_len(r: &Value) -> u64 {
    r["prompt_tokens"].as_array().unwrap().len() as u64
}

/// A fresh cache path in a fresh directory of its own.
fn cache_in(tag: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (dir.join("prompt.cache"), dir)
}

#[test]
fn a_second_run_reuses_the_cached_prompt_and_answers_the_same() {
    let (cache, dir) = cache_in("pc-same");
    let (plain, _) = run(PROMPT, &[]);
    assert_eq!(cached_tokens(&plain), 0);

    let (first, _) = run_cached(PROMPT, &cache, &[]);
    assert_eq!(cached_tokens(&first), 0);
    assert!(cache.is_file());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "no temporary file is left behind: {names:?}"
    );

    let (second, _) = run_cached(PROMPT, &cache, &[]);
    let n = prompt_len(&second);
    // Everything but the last prompt token, which generation evaluates.
    assert!((n - 1..=n).contains(&cached_tokens(&second)), "{second}");
    for r in [&first, &second] {
        assert_eq!(r["tokens"], plain["tokens"]);
        assert_eq!(r["text"], plain["text"]);
    }
}

#[test]
fn a_prompt_sharing_a_prefix_reuses_that_prefix() {
    let (cache, _dir) = cache_in("pc-prefix");
    let longer = "The capital of France is a city where";
    let (plain, _) = run(longer, &[]);
    run_cached(PROMPT, &cache, &[]);
    let (r, _) = run_cached(longer, &cache, &[]);
    let a = plain["prompt_tokens"].as_array().unwrap();
    let (short, _) = run(PROMPT, &[]);
    let b = short["prompt_tokens"].as_array().unwrap();
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count() as u64;
    assert!(common > 0);
    // The cache holds the short prompt but its last token.
    assert_eq!(cached_tokens(&r), common.min(b.len() as u64 - 1), "{r}");
    assert_eq!(r["tokens"], plain["tokens"]);

    // Now the cache holds the longer prompt: the short one reuses all it can.
    let (again, _) = run_cached(PROMPT, &cache, &[]);
    assert_eq!(cached_tokens(&again), b.len() as u64 - 1);
    assert_eq!(again["tokens"], short["tokens"]);
}

#[test]
fn a_read_only_cache_is_used_but_never_written() {
    let (cache, dir) = cache_in("pc-ro");
    let (r, _) = run_cached(PROMPT, &cache, &["--prompt-cache-ro"]);
    assert_eq!(cached_tokens(&r), 0);
    assert!(!cache.exists(), "a read-only cache is not created");
    run_cached(PROMPT, &cache, &[]);
    let before = std::fs::read(&cache).unwrap();
    let (r, _) = run_cached("The capital of Italy is", &cache, &["--prompt-cache-ro"]);
    assert!(cached_tokens(&r) > 0, "{r}");
    assert_eq!(std::fs::read(&cache).unwrap(), before);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn a_truncated_cache_is_ignored_with_a_warning_and_rewritten() {
    let (cache, _dir) = cache_in("pc-trunc");
    let (plain, _) = run(PROMPT, &[]);
    run_cached(PROMPT, &cache, &[]);
    let bytes = std::fs::read(&cache).unwrap();
    std::fs::write(&cache, &bytes[..bytes.len() / 2]).unwrap();

    let (r, err) = run_cached(PROMPT, &cache, &[]);
    assert!(
        err.contains("warning") && err.contains("corrupt_session"),
        "{err}"
    );
    assert!(
        err.contains("truncated") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(cached_tokens(&r), 0);
    assert_eq!(r["tokens"], plain["tokens"]);

    let (r, err) = run_cached(PROMPT, &cache, &[]);
    assert!(
        !err.contains("warning"),
        "the cache was rewritten whole: {err}"
    );
    assert!(cached_tokens(&r) > 0);
    assert_eq!(r["tokens"], plain["tokens"]);
}

#[test]
fn a_cache_of_another_model_or_kv_type_is_ignored_with_a_warning() {
    let (cache, dir) = cache_in("pc-foreign");
    let tiny = dir.join("tiny.gguf");
    write_tiny_llama(&tiny, |_| {});
    let model = Model::load(&tiny, &LoadOptions::with_threads(1)).unwrap();
    let mut session = Session::new(model, SessionOptions::with_ctx(64)).unwrap();
    session
        .eval(&[Input::Tokens(&[1, 2, 3])], Logits::None)
        .unwrap();
    session
        .save(&mut std::fs::File::create(&cache).unwrap())
        .unwrap();

    let (plain, _) = run(PROMPT, &[]);
    let (r, err) = run_cached(PROMPT, &cache, &[]);
    assert!(
        err.contains("session_mismatch") && err.contains("another model"),
        "{err}"
    );
    assert_eq!(cached_tokens(&r), 0);
    assert_eq!(r["tokens"], plain["tokens"]);

    // Rewritten for SmolLM2 with an f16 cache: an f32 session ignores it too.
    let (r, err) = run_cached(PROMPT, &cache, &["--kv", "f32"]);
    assert!(
        err.contains("session_mismatch") && err.contains("KV cache"),
        "{err}"
    );
    assert_eq!(cached_tokens(&r), 0);

    // Garbage is a warning as well, never a crash.
    std::fs::write(&cache, b"not a session at all").unwrap();
    let (r, err) = run_cached(PROMPT, &cache, &[]);
    assert!(err.contains("corrupt_session"), "{err}");
    assert_eq!(r["tokens"], plain["tokens"]);
}

#[test]
fn chat_restores_the_cache_at_start_and_saves_it_after_each_turn() {
    let (cache, _dir) = cache_in("pc-chat");
    let m = smollm2();
    let args = [
        "chat",
        "-m",
        &m,
        "--temp",
        "0",
        "-n",
        "8",
        "-t",
        "2",
        "--system",
        "Be brief.",
        "--prompt-cache",
        cache.to_str().unwrap(),
    ];
    let (ok, first, err) = fennec_with_stdin(&args, "Hello\nWhat is 2+2?\n");
    assert!(ok, "{err}");
    assert!(cache.is_file());
    assert!(!err.contains("restored"), "{err}");
    let (ok, second, err) = fennec_with_stdin(&args, "Hello\nWhat is 2+2?\n");
    assert!(ok, "{err}");
    assert!(err.contains("positions restored"), "{err}");
    assert_eq!(first, second);
}
