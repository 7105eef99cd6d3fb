//! Decoding a token allocates nothing once a session is warm: every buffer of the forward
//! pass, attention, matmul tiling, sampling and streaming is reused. Counted with a global
//! allocator (all threads, the pool's workers included), so this binary holds one test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fennec_core::{
    CancelHandle, GenerateOptions, Input, KvType, LoadOptions, Logits, Model, SamplerOptions,
    Session, SessionOptions,
};
use fennec_tests::{fixture, smollm2_path};

/// Counts allocations and reallocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Allocations of each of `n` decode steps (eval of one token + greedy pick) after `warm`
/// steps.
fn eval_allocations(model: &Arc<Model>, kv_type: KvType, warm: usize, n: usize) -> Vec<u64> {
    let opts = SessionOptions {
        n_ctx: 256,
        kv_type,
        n_ubatch: 32,
    };
    let mut s = Session::new(model.clone(), opts).unwrap();
    let prompt: Vec<u32> = (1..40).collect();
    let mut next =
        fennec_core::sampler::argmax(s.eval(&[Input::Tokens(&prompt)], Logits::Last).unwrap());
    let mut counts = Vec::with_capacity(warm + n);
    for _ in 0..warm + n {
        let before = allocations();
        let logits = s.eval(&[Input::Tokens(&[next])], Logits::Last).unwrap();
        next = fennec_core::sampler::argmax(logits);
        counts.push(allocations() - before);
    }
    counts.split_off(warm)
}

/// Allocations between consecutive streamed pieces of `generate` after `warm` pieces.
fn generate_allocations(model: &Arc<Model>, sampler: SamplerOptions, warm: usize) -> Vec<u64> {
    let mut s = Session::new(model.clone(), SessionOptions::with_ctx(256)).unwrap();
    let prompt: Vec<u32> = (1..40).collect();
    let mut opts = GenerateOptions::new(warm + 16, sampler);
    opts.stop_tokens = Vec::new();
    let mut counts = Vec::with_capacity(64);
    let mut last = allocations();
    let done = s
        .generate(
            &[Input::Tokens(&prompt)],
            &opts,
            &CancelHandle::new(),
            &mut |piece| {
                let now = allocations();
                if piece.token.is_some() {
                    counts.push(now - last);
                }
                last = allocations();
                true
            },
        )
        .unwrap();
    let n = counts.len();
    assert!(
        n > warm,
        "{:?} after {} tokens",
        done.stop,
        done.tokens.len()
    );
    counts.split_off(warm)
}

#[test]
fn a_warm_decode_step_allocates_nothing() {
    let smollm2 = Model::load(smollm2_path(), &LoadOptions::with_threads(2)).unwrap();
    let llama4 = Model::load(
        fixture("llama4/models/chunked.f32.gguf"),
        &LoadOptions::with_threads(2),
    )
    .unwrap();
    for (name, model) in [("SmolLM2", &smollm2), ("tiny Llama 4", &llama4)] {
        for kv_type in [KvType::F16, KvType::F32, KvType::Q8_0] {
            let counts = eval_allocations(model, kv_type, 4, 16);
            assert!(
                counts.iter().all(|&c| c == 0),
                "{name} eval, {kv_type} cache: {counts:?}"
            );
        }
    }
    let sampled = SamplerOptions {
        repeat_penalty: 1.1,
        frequency_penalty: 0.1,
        ..SamplerOptions::default()
    };
    for sampler in [SamplerOptions::greedy(), sampled] {
        let counts = generate_allocations(&smollm2, sampler.clone(), 4);
        assert!(
            counts.iter().all(|&c| c == 0),
            "SmolLM2 generate with {sampler:?}: {counts:?}"
        );
    }
}
