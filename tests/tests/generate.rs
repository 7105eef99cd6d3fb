//! Generation on SmolLM2: streaming, stop conditions, cancellation, several sessions.

use std::sync::Arc;
use std::time::Duration;

use fennec_core::chat::ChatMessage;
use fennec_core::{
    CancelHandle, GenerateOptions, Input, LoadOptions, Model, SamplerOptions, Session,
    SessionOptions, StopReason,
};
use fennec_tests::smollm2_path;

fn model() -> Arc<Model> {
    Model::load(smollm2_path(), &LoadOptions::with_threads(2)).unwrap()
}

fn prompt(model: &Model, text: &str) -> Vec<u32> {
    model
        .tokenizer()
        .unwrap()
        .encode(text, false, false)
        .unwrap()
}

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        sampler: SamplerOptions::greedy(),
        ..GenerateOptions::default()
    }
}

#[test]
fn streamed_text_is_the_completion_and_decodes_its_tokens() {
    let model = model();
    let mut s = Session::new(model.clone(), SessionOptions::default()).unwrap();
    let mut streamed = String::new();
    let done = s
        .generate(
            &[Input::Tokens(&prompt(&model, "Once upon a time"))],
            &greedy(24),
            &CancelHandle::new(),
            &mut |piece| {
                streamed.push_str(piece.text);
                true
            },
        )
        .unwrap();
    assert_eq!(done.stop, StopReason::Length);
    assert_eq!(done.tokens.len(), 24);
    assert_eq!(streamed, done.text);
    assert_eq!(
        done.text,
        model.tokenizer().unwrap().decode(&done.tokens).unwrap()
    );
    assert!(done.stats.generation_tok_s() > 0.0 && done.stats.time_to_first_token > 0.0);
}

#[test]
fn stop_strings_end_generation_and_are_not_emitted() {
    let model = model();
    let mut s = Session::new(model.clone(), SessionOptions::default()).unwrap();
    let p = prompt(&model, "Count: 1, 2, 3, 4,");
    let free = s
        .generate(
            &[Input::Tokens(&p)],
            &greedy(12),
            &CancelHandle::new(),
            &mut |_| true,
        )
        .unwrap();
    let stop = free.text.trim_start().chars().next().unwrap().to_string();
    s.clear();
    let opts = GenerateOptions {
        stop_strings: vec![stop.clone()],
        ..greedy(12)
    };
    let mut streamed = String::new();
    let done = s
        .generate(
            &[Input::Tokens(&p)],
            &opts,
            &CancelHandle::new(),
            &mut |t| {
                streamed.push_str(t.text);
                true
            },
        )
        .unwrap();
    assert_eq!(done.stop, StopReason::StopString, "{free:?} / {done:?}");
    assert!(
        !done.text.contains(&stop) && !streamed.contains(&stop),
        "{done:?}"
    );
}

#[test]
fn generation_stops_when_the_context_is_full() {
    let model = model();
    let p = prompt(&model, "The weather today is");
    let n_ctx = p.len() + 5;
    let mut s = Session::new(
        model.clone(),
        SessionOptions {
            n_ctx,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let done = s
        .generate(
            &[Input::Tokens(&p)],
            &greedy(0),
            &CancelHandle::new(),
            &mut |_| true,
        )
        .unwrap();
    assert_eq!(done.stop, StopReason::ContextFull, "{done:?}");
    assert_eq!(s.n_past(), n_ctx);
    let err = s
        .generate(
            &[Input::Tokens(&p)],
            &greedy(4),
            &CancelHandle::new(),
            &mut |_| true,
        )
        .unwrap_err();
    assert!(err.to_string().contains("context is full"), "{err}");
}

#[test]
fn another_thread_can_cancel_a_generation() {
    let model = model();
    let mut s = Session::new(model.clone(), SessionOptions::default()).unwrap();
    let cancel = CancelHandle::new();
    let remote = cancel.clone();
    let messages = [ChatMessage::new(
        "user",
        "Write a very long story about a fox.",
    )];
    let text = model
        .chat_template()
        .unwrap()
        .render(&messages, true)
        .unwrap();
    let p = model.encode(&text, false, true).unwrap();
    let (started, wait) = std::sync::mpsc::channel();
    let canceller = std::thread::spawn(move || {
        if wait.recv().is_ok() {
            remote.cancel();
        }
    });
    let mut pieces = 0;
    let done = s
        .generate(&[Input::Tokens(&p)], &greedy(3000), &cancel, &mut |_| {
            pieces += 1;
            if pieces == 1 {
                started.send(()).unwrap();
            }
            // Give the other thread time to cancel between tokens.
            std::thread::sleep(Duration::from_millis(20));
            true
        })
        .unwrap();
    drop(started);
    canceller.join().unwrap();
    assert_eq!(done.stop, StopReason::Cancelled, "{done:?}");
    assert!(done.tokens.len() < 10, "{}", done.tokens.len());
    assert!(
        cancel.is_cancelled(),
        "the handle stays cancelled until reset"
    );
}

#[test]
fn sessions_on_one_model_run_concurrently_and_agree() {
    let model = model();
    let p = prompt(&model, "The three primary colors are");
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (model, p) = (model.clone(), p.clone());
            std::thread::spawn(move || {
                let mut s = Session::new(model, SessionOptions::default()).unwrap();
                s.generate(
                    &[Input::Tokens(&p)],
                    &greedy(16),
                    &CancelHandle::new(),
                    &mut |_| true,
                )
                .unwrap()
                .tokens
            })
        })
        .collect();
    let outs: Vec<Vec<u32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(outs.windows(2).all(|w| w[0] == w[1]), "{outs:?}");
}

#[test]
fn seeded_sampling_repeats_and_differs_across_seeds() {
    let model = model();
    let p = prompt(&model, "My favourite animal is");
    let run = |seed| {
        let mut s = Session::new(model.clone(), SessionOptions::default()).unwrap();
        let opts = GenerateOptions {
            max_tokens: 16,
            sampler: SamplerOptions {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed,
                ..SamplerOptions::default()
            },
            ..GenerateOptions::default()
        };
        s.generate(
            &[Input::Tokens(&p)],
            &opts,
            &CancelHandle::new(),
            &mut |_| true,
        )
        .unwrap()
        .tokens
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}
