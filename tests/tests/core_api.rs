//! The core API as bindings will use it: inputs as embeddings, prefix reuse, fork,
//! save/restore, cancellation in prefill, error kinds — on SmolLM2 (llama) and the tiny
//! Llama 4 models (chunked attention, MoE).

use std::sync::Arc;

use fennec_core::sampler::argmax;
use fennec_core::{
    CancelHandle, Error, ErrorKind, GenerateOptions, Input, KvType, LoadOptions, Logits, Model,
    SamplerOptions, Session, SessionOptions, StopReason,
};
use fennec_tests::{fixture, smollm2_path, temp_dir, write_tiny_llama};

fn smollm2() -> Arc<Model> {
    Model::load(smollm2_path(), &LoadOptions::with_threads(2)).unwrap()
}

/// The tiny Llama 4 with 16-token chunks (`chunked`), top-2 MoE.
fn tiny_llama4() -> Arc<Model> {
    let path = fixture("llama4/models/chunked.f32.gguf");
    Model::load(path, &LoadOptions::with_threads(2)).unwrap()
}

fn session(model: &Arc<Model>, n_ctx: usize, kv_type: KvType, n_ubatch: usize) -> Session {
    let opts = SessionOptions {
        n_ctx,
        kv_type,
        n_ubatch,
    };
    Session::new(model.clone(), opts).unwrap()
}

fn prompt_ids(model: &Model, n: usize) -> Vec<u32> {
    let v = model.n_vocab() as u32;
    (0..n as u32).map(|i| (i * 7919 + 13) % v).collect()
}

/// Greedy continuation of `n` tokens after what `s` holds, starting from `logits`.
fn greedy(s: &mut Session, logits: &[f32], n: usize) -> Vec<u32> {
    let mut out = Vec::new();
    let mut next = argmax(logits);
    for _ in 0..n {
        out.push(next);
        next = argmax(s.eval(&[Input::Tokens(&[next])], Logits::Last).unwrap());
    }
    out
}

#[test]
fn embedding_rows_give_the_logits_of_their_token_ids() {
    for model in [smollm2(), tiny_llama4()] {
        let ids = prompt_ids(&model, 40);
        let mut a = session(&model, 64, KvType::F16, 16);
        let by_ids = a
            .eval(&[Input::Tokens(&ids)], Logits::All)
            .unwrap()
            .to_vec();
        let rows = model.token_embeddings(&ids).unwrap();
        assert_eq!(rows.len(), ids.len() * model.n_embd());
        // Mixed: ids, then rows of the middle, then ids, split across micro-batches.
        let d = model.n_embd();
        let mut b = session(&model, 64, KvType::F16, 16);
        let mixed = [
            Input::Tokens(&ids[..5]),
            Input::Embeddings {
                data: &rows[5 * d..30 * d],
                n: 25,
            },
            Input::Tokens(&ids[30..]),
        ];
        let by_rows = b.eval(&mixed, Logits::All).unwrap().to_vec();
        assert_eq!(by_ids, by_rows, "bit-identical logits");
        assert_eq!(&b.tokens()[..5], &ids[..5]);
        assert!(b.tokens()[5..30]
            .iter()
            .all(|&t| t == fennec_core::EMBEDDING_TOKEN));
        // Continuing after embedding positions works like after ids.
        let last_a = by_ids[by_ids.len() - model.n_vocab()..].to_vec();
        assert_eq!(greedy(&mut a, &last_a, 6), greedy(&mut b, &last_a, 6));
    }
}

#[test]
fn reuse_prefix_keeps_shared_ids_and_identical_images() {
    let model = smollm2();
    let ids = prompt_ids(&model, 24);
    let image = model.token_embeddings(&ids[..8]).unwrap();
    let other_image: Vec<f32> = image.iter().map(|v| v * 0.5).collect();
    let mut s = session(&model, 128, KvType::F16, 512);
    let turn1 = [
        Input::Tokens(&ids[..4]),
        Input::Embeddings { data: &image, n: 8 },
        Input::Tokens(&ids[12..20]),
    ];
    s.eval(&turn1, Logits::None).unwrap();
    // The next turn repeats turn 1 and adds more: all of turn 1 is kept.
    let turn2 = [
        Input::Tokens(&ids[..4]),
        Input::Embeddings { data: &image, n: 8 },
        Input::Tokens(&ids[12..24]),
    ];
    assert_eq!(s.reuse_prefix(&turn2).unwrap(), 20);
    let rest = Input::skip(&turn2, 20);
    let got = s.eval(&rest, Logits::Last).unwrap().to_vec();
    let mut fresh = session(&model, 128, KvType::F16, 512);
    let want = fresh.eval(&turn2, Logits::Last).unwrap().to_vec();
    assert_eq!(got, want);
    // Another image at the same place: only the ids before it are kept.
    let turn3 = [
        Input::Tokens(&ids[..4]),
        Input::Embeddings {
            data: &other_image,
            n: 8,
        },
    ];
    assert_eq!(s.reuse_prefix(&turn3).unwrap(), 4);
    assert_eq!(s.n_past(), 4);
    // The same input again keeps all but its last position (its logits are needed).
    let again = [Input::Tokens(&ids[..4])];
    assert_eq!(s.reuse_prefix(&again).unwrap(), 3);
}

/// Tokens generated after a restore: enough to cross two 16-token chunk starts on Llama 4.
const N_CONTINUE: usize = 20;

/// Saves after a prefix, restores, continues: equal to continuing the original, token for
/// token; fork too.
fn save_restore_and_fork_continue_like_the_original(model: Arc<Model>, n_prefix: usize) {
    for kv_type in [KvType::F16, KvType::Q8_0] {
        let ids = prompt_ids(&model, n_prefix);
        let mut original = session(&model, 256, kv_type, 8);
        let logits = original
            .eval(&[Input::Tokens(&ids)], Logits::Last)
            .unwrap()
            .to_vec();
        let mut saved = Vec::new();
        original.save(&mut saved).unwrap();
        let mut forked = original.fork().unwrap();
        let mut restored = Session::restore(model.clone(), &mut saved.as_slice()).unwrap();
        assert_eq!(restored.tokens(), original.tokens());
        assert_eq!(restored.options(), original.options());
        let mut into = session(&model, 256, kv_type, 8);
        into.eval(&[Input::Tokens(&ids[..3])], Logits::None)
            .unwrap();
        into.restore_into(&mut saved.as_slice()).unwrap();
        let want = greedy(&mut original, &logits, N_CONTINUE);
        assert_eq!(
            greedy(&mut restored, &logits, N_CONTINUE),
            want,
            "{kv_type} restore"
        );
        assert_eq!(
            greedy(&mut forked, &logits, N_CONTINUE),
            want,
            "{kv_type} fork"
        );
        assert_eq!(
            greedy(&mut into, &logits, N_CONTINUE),
            want,
            "{kv_type} restore_into"
        );
    }
}

#[test]
fn save_restore_and_fork_on_smollm2() {
    save_restore_and_fork_continue_like_the_original(smollm2(), 37);
}

#[test]
fn save_restore_and_fork_on_llama4_across_chunk_boundaries() {
    // 16-token chunks and an 8-token micro-batch: the ring holds 24 cells, the prefix
    // of 45 positions has wrapped it, and the continuation crosses two more chunk starts.
    save_restore_and_fork_continue_like_the_original(tiny_llama4(), 45);
}

#[test]
fn a_saved_session_is_refused_by_another_model_and_when_damaged() {
    let model = tiny_llama4();
    let ids = prompt_ids(&model, 20);
    let mut s = session(&model, 64, KvType::F16, 8);
    s.eval(&[Input::Tokens(&ids)], Logits::None).unwrap();
    let mut saved = Vec::new();
    s.save(&mut saved).unwrap();

    let other = Model::load(
        fixture("llama4/models/scout.f32.gguf"),
        &LoadOptions::with_threads(1),
    )
    .unwrap();
    assert_ne!(other.fingerprint(), model.fingerprint());
    let err = Session::restore(other, &mut saved.as_slice()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SessionMismatch, "{err}");

    // Another KV type.
    let mut q8 = session(&model, 64, KvType::Q8_0, 8);
    let err = q8.restore_into(&mut saved.as_slice()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SessionMismatch, "{err}");
    assert_eq!(q8.n_past(), 0);

    // Every truncation is refused as corrupt.
    for len in (0..saved.len()).step_by(7).chain([saved.len() - 1]) {
        let err = Session::restore(model.clone(), &mut &saved[..len]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CorruptSession, "cut at {len}: {err}");
    }
    // Every flipped bit is refused (a flip in the fingerprint reads as another model).
    let mut target = session(&model, 64, KvType::F16, 8);
    for bit in (0..saved.len() * 8).step_by(13) {
        let mut bad = saved.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = target.restore_into(&mut bad.as_slice()).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::CorruptSession | ErrorKind::SessionMismatch
            ),
            "bit {bit}: {err}"
        );
        assert_eq!(
            target.n_past(),
            0,
            "a refused restore leaves the session empty"
        );
    }
}

#[test]
fn a_cancel_during_prefill_returns_within_one_micro_batch() {
    let model = smollm2();
    let ids = prompt_ids(&model, 200);
    let mut s = session(&model, 256, KvType::F16, 32);
    let cancel = CancelHandle::new();
    let mut calls = Vec::new();
    let err = s
        .eval_with_progress(
            &[Input::Tokens(&ids)],
            Logits::Last,
            &cancel,
            &mut |done, total| {
                calls.push((done, total));
                cancel.cancel();
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled { evaluated: 32 }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(calls, [(32, 200)]);
    assert_eq!(
        s.n_past(),
        32,
        "the evaluated micro-batch stays in the context"
    );

    // A cancel issued before generate is not lost: nothing is evaluated.
    let before = s.n_past();
    let done = s
        .generate(
            &[Input::Tokens(&ids[..10])],
            &GenerateOptions::new(8, SamplerOptions::greedy()),
            &cancel,
            &mut |_| true,
        )
        .unwrap();
    assert_eq!(done.stop, StopReason::Cancelled);
    assert!(done.tokens.is_empty());
    assert_eq!(s.n_past(), before);
    // After a reset the handle works again; a callback returning false stops generation.
    cancel.reset();
    let done = s
        .generate(
            &[Input::Tokens(&ids[..10])],
            &GenerateOptions::new(8, SamplerOptions::greedy()),
            &cancel,
            &mut |piece| piece.token.is_none(),
        )
        .unwrap();
    assert_eq!(done.stop, StopReason::Callback);
    assert_eq!(done.tokens.len(), 1);
}

#[test]
fn errors_carry_their_kind() {
    let model = smollm2();
    let mut s = session(&model, 16, KvType::F16, 8);
    let err = s
        .eval(&[Input::Tokens(&[1; 17])], Logits::Last)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::ContextFull {
            needed: 17,
            n_ctx: 16
        }
    ));
    assert_eq!(err.kind(), ErrorKind::ContextFull);
    let bad = model.n_vocab() as u32;
    let err = s.eval(&[Input::Tokens(&[bad])], Logits::Last).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidToken);
    let err = s
        .eval(
            &[Input::Embeddings {
                data: &[0.0; 3],
                n: 1,
            }],
            Logits::Last,
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let nan = vec![f32::NAN; model.n_embd()];
    let err = s
        .eval(&[Input::Embeddings { data: &nan, n: 1 }], Logits::Last)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_eq!(s.n_past(), 0, "refused inputs evaluate nothing");
    assert_eq!(
        model.token_text(bad).unwrap_err().kind(),
        ErrorKind::InvalidToken
    );
    for kind in ErrorKind::ALL {
        assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
    }
}

#[test]
fn rewinding_past_the_ring_is_cannot_rewind() {
    let model = tiny_llama4();
    let ids = prompt_ids(&model, 60);
    let mut s = session(&model, 128, KvType::F16, 8);
    s.eval(&[Input::Tokens(&ids)], Logits::None).unwrap();
    let err = s.truncate(10).unwrap_err();
    let earliest = s.earliest_rewind();
    assert!(
        matches!(err, Error::CannotRewind { n: 10, earliest: e } if e == earliest),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::CannotRewind);
    assert!(earliest > 10 && earliest <= 60);
    s.truncate(earliest).unwrap();
    assert_eq!(s.n_past(), earliest);
}

#[test]
fn hostile_arguments_get_errors_not_panics() {
    let model = smollm2();
    let huge = |n_ctx| {
        Session::new(
            model.clone(),
            SessionOptions {
                n_ctx,
                ..SessionOptions::default()
            },
        )
    };
    assert_eq!(
        huge(usize::MAX).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        huge(u32::MAX as usize).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // 2^24 positions of SmolLM2's f16 KV is ~370 GB: refused before anything is touched.
    let err = huge(fennec_core::MAX_CTX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
    let zero_ubatch = SessionOptions {
        n_ubatch: 0,
        ..SessionOptions::default()
    };
    assert!(Session::new(model.clone(), zero_ubatch).is_err());
    let mut s = session(&model, 32, KvType::F16, 8);
    assert!(s.eval(&[], Logits::All).unwrap().is_empty());
    assert!(s
        .eval(&[Input::Tokens(&[])], Logits::Last)
        .unwrap()
        .is_empty());
    assert!(s
        .eval_with_ubatch(&[Input::Tokens(&[1])], Logits::Last, 0)
        .is_err());
    let err = s
        .eval(
            &[Input::Embeddings {
                data: &[],
                n: usize::MAX,
            }],
            Logits::All,
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = s
        .eval(&[Input::Tokens(&[u32::MAX])], Logits::All)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidToken);
    assert!(s.truncate(usize::MAX).is_ok());
    assert_eq!(s.reuse_prefix(&[]).unwrap(), 0);
    assert!(s
        .generate(
            &[],
            &GenerateOptions::default(),
            &CancelHandle::new(),
            &mut |_| true
        )
        .is_err());
    assert!(model.token_embeddings(&[u32::MAX]).is_err());
    assert!(model.decode(&[u32::MAX]).is_err());
    assert!(model.token_text(u32::MAX).is_err());
    assert!(model.encode("", true, true).is_ok());
    assert!(model
        .kv_cache_bytes(KvType::F16, usize::MAX, usize::MAX)
        .is_ok());
    assert!(Session::restore(model.clone(), &mut &[][..]).is_err());
    let mut sampler = fennec_core::sampler::Sampler::new(SamplerOptions::default());
    let _ = sampler.sample(&mut [], &[]);
    let _ = sampler.sample(&mut [f32::NAN, f32::NAN], &[u32::MAX, 7]);
    assert!(model.chat_template().unwrap().render(&[], true).is_ok());
    assert!(fennec_core::gguf::GgufFile::from_vec(Vec::new()).is_err());
    model.set_expert_residency(fennec_core::ExpertResidencyOptions {
        advice: fennec_core::ExpertAdvice::Random,
        cache_bytes: u64::MAX,
        lookahead: usize::MAX,
    });
    let file = std::fs::File::open(smollm2_path()).unwrap();
    let opts = LoadOptions::with_threads(1);
    assert_eq!(
        Model::load_range(&file, u64::MAX, 1, &opts)
            .unwrap_err()
            .kind(),
        ErrorKind::Io
    );
    assert_eq!(
        Model::load_range(&file, 1, 0, &opts).unwrap_err().kind(),
        ErrorKind::InvalidGguf
    );
}

#[test]
fn a_model_inside_a_bigger_file_loads_from_its_range() {
    let dir = temp_dir("range");
    let inner = dir.join("m.gguf");
    write_tiny_llama(&inner, |_| {});
    let model_bytes = std::fs::read(&inner).unwrap();
    // An "asset bundle": 4097 bytes of something else, the model, a trailer.
    let mut bundle = vec![0xabu8; 4097];
    bundle.extend_from_slice(&model_bytes);
    bundle.extend_from_slice(b"trailer");
    let packed = dir.join("bundle.bin");
    std::fs::write(&packed, &bundle).unwrap();
    let file = std::fs::File::open(&packed).unwrap();
    let opts = LoadOptions::with_threads(1);
    let a = Model::load_range(&file, 4097, model_bytes.len() as u64, &opts).unwrap();
    let b = Model::load(&inner, &opts).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    let ids = [1u32, 2, 3];
    let la = session(&a, 8, KvType::F32, 8)
        .eval(&[Input::Tokens(&ids)], Logits::Last)
        .unwrap()
        .to_vec();
    let lb = session(&b, 8, KvType::F32, 8)
        .eval(&[Input::Tokens(&ids)], Logits::Last)
        .unwrap()
        .to_vec();
    assert_eq!(la, lb);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn chat_equals_render_encode_generate_and_reuses_the_previous_turns() {
    use fennec_core::chat::ChatMessage;
    let model = smollm2();
    let opts = GenerateOptions::new(12, SamplerOptions::greedy());
    let mut messages = vec![ChatMessage::new("user", "What is the capital of France?")];

    // By hand: render, tokenize, generate from an empty session.
    let ids = model
        .encode(
            &model
                .chat_template()
                .unwrap()
                .render(&messages, true)
                .unwrap(),
            false,
            true,
        )
        .unwrap();
    let mut manual = session(&model, 512, KvType::F16, 64);
    let expected = manual
        .generate(
            &[Input::Tokens(&ids)],
            &opts,
            &CancelHandle::new(),
            &mut |_| true,
        )
        .unwrap();

    let mut s = session(&model, 512, KvType::F16, 64);
    let mut streamed = String::new();
    let first = s
        .chat(&messages, &opts, &CancelHandle::new(), &mut |p| {
            streamed.push_str(p.text);
            true
        })
        .unwrap();
    assert_eq!(first.tokens, expected.tokens);
    assert_eq!(streamed, first.text);
    assert_eq!(first.stats.prompt_tokens, ids.len());

    // The next turn re-sends the whole conversation; only what follows the kept prefix is
    // evaluated.
    messages.push(ChatMessage::new("assistant", first.text.trim()));
    messages.push(ChatMessage::new("user", "And of Italy?"));
    let second = s
        .chat(&messages, &opts, &CancelHandle::new(), &mut |_| true)
        .unwrap();
    let all = model
        .encode(
            &model
                .chat_template()
                .unwrap()
                .render(&messages, true)
                .unwrap(),
            false,
            true,
        )
        .unwrap();
    assert!(
        second.stats.prompt_tokens < all.len() - ids.len() + 8,
        "{second:?}"
    );
    let mut fresh = session(&model, 512, KvType::F16, 64);
    let again = fresh
        .chat(&messages, &opts, &CancelHandle::new(), &mut |_| true)
        .unwrap();
    assert_eq!(second.tokens, again.tokens);
    assert_eq!(again.stats.prompt_tokens, all.len());
}
