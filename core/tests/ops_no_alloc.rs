//! A warm second call of each op of a forward pass (and of the sampler) allocates nothing,
//! on the calling thread or on the pool's workers: a counting global allocator watches.
//! One test only, so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use fennec_core::kv_cache::{KvCache, KvLayerSpec, KvType, KvWindow};
use fennec_core::ops::{
    self, ActivationScratch, Activations, AttentionScratch, AttentionShape, Rope, RopeMode,
    ThreadPool, Weight,
};
use fennec_core::sampler::{Sampler, SamplerOptions};
use fennec_quant::{quantize_row, row_bytes, GgmlType};

/// The system allocator, counting allocations while `COUNTING` is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` twice and returns how many allocations the second run made.
fn warm_allocations(mut f: impl FnMut()) -> usize {
    f();
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
        .collect()
}

#[test]
fn warm_ops_allocate_nothing() {
    let pool = ThreadPool::new(3, Duration::from_micros(200)).unwrap();
    let (n_head, n_head_kv, head_dim, d) = (6, 2, 64, 384);
    let kv_dim = n_head_kv * head_dim;
    let q_dim = n_head * head_dim;
    let spec = KvLayerSpec {
        row_len: kv_dim,
        window: KvWindow::Full,
    };
    let shape = AttentionShape {
        n_head,
        n_head_kv,
        head_dim,
        scale: 0.125,
    };
    let rope = Rope {
        mode: RopeMode::Normal,
        n_rot: head_dim,
        freq_base: 10000.0,
        freq_scale: 1.0,
        freq_factors: None,
    };
    let w_ty = GgmlType::Q4_1;
    let n_out = 1024;
    let mut w_data = vec![0u8; n_out * row_bytes(w_ty, d).unwrap()];
    quantize_row(w_ty, &values(n_out * d, 5), &mut w_data).unwrap();
    let weight = Weight {
        ty: w_ty,
        n_in: d,
        n_out,
        data: &w_data,
    };
    let norm_w = values(d, 9);

    // The counter sees allocations on the workers too.
    let count = warm_allocations(|| {
        pool.for_each(6, |_| {
            std::hint::black_box(Vec::<u8>::with_capacity(8));
        })
    });
    assert_eq!(count, 6, "the counting allocator misses allocations");

    // One decoded row (n = 1) and a prompt batch (n = 16).
    for n in [1usize, 16] {
        for ty in [KvType::F32, KvType::F16, KvType::Q8_0] {
            let mut kv = KvCache::new(ty, &[spec], 64, 16).unwrap();
            for p in 0..40 {
                kv.layers[0]
                    .store(
                        p,
                        &values(kv_dim, p as u32),
                        &values(kv_dim, 100 + p as u32),
                    )
                    .unwrap();
            }
            let positions: Vec<usize> = (40 - n..40).collect();
            let q = values(n * q_dim, 3);
            let mut out = vec![0.0; n * q_dim];
            let mut scratch = AttentionScratch::default();
            let count = warm_allocations(|| {
                ops::attention(
                    &q,
                    &positions,
                    &kv.layers[0],
                    shape,
                    &mut out,
                    &mut scratch,
                    &pool,
                )
            });
            assert_eq!(count, 0, "attention, {ty} cache, {n} rows");
        }

        let x = values(n * d, 1);
        let mut out = vec![0.0; n * n_out];
        let mut acts = ActivationScratch::default();
        let count = warm_allocations(|| {
            let mut a = Activations::new(&x, d, &mut acts);
            a.matmul(&weight, &mut out, &pool).unwrap();
            a.matmul(&weight, &mut out, &pool).unwrap();
        });
        assert_eq!(count, 0, "matmul, {n} rows");

        let mut rows = values(n * d, 2);
        let count = warm_allocations(|| ops::rms_norm(&mut rows, &norm_w, 1e-5, &pool));
        assert_eq!(count, 0, "rms_norm, {n} rows");

        let mut qk = values(n * q_dim, 4);
        let positions: Vec<usize> = (7..7 + n).collect();
        let count = warm_allocations(|| rope.apply(&mut qk, head_dim, &positions, &pool));
        assert_eq!(count, 0, "rope, {n} rows");

        let (mut gate, up) = (values(n * n_out, 6), values(n * n_out, 7));
        let count = warm_allocations(|| ops::swiglu(&mut gate, &up, n_out, &pool));
        assert_eq!(count, 0, "swiglu, {n} rows");
    }

    let mut sampler = Sampler::new(SamplerOptions {
        repeat_penalty: 1.1,
        ..SamplerOptions::default()
    });
    let logits = values(5000, 8);
    let history: Vec<u32> = (0..100).map(|i| i * 7 % 5000).collect();
    let mut work = logits.clone();
    let count = warm_allocations(|| {
        work.copy_from_slice(&logits);
        sampler.sample(&mut work, &history);
    });
    assert_eq!(count, 0, "sampler");
}
