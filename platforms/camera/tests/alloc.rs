//! After the first frame of a size, converting allocates nothing (a counting allocator; one
//! test in this binary so no other thread allocates meanwhile).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use fennec_camera::{Frame, FrameConverter, Plane};
use fennec_core::vision::Rotation;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_conversion_allocates_nothing() {
    let (w, h) = (97, 45);
    let img = Yuv::random(w, h, fennec_camera::YuvRange::Full, &mut Rng(11));
    let cw = img.cw();
    let y = Yuv::pack(&img.y, w, w + 3, 1);
    let vu = Yuv::pack_pairs(&img.v, &img.u, cw, 2 * cw + 1);
    let u = Yuv::pack(&img.u, cw, cw, 1);
    let v = Yuv::pack(&img.v, cw, cw, 1);
    let u2 = Yuv::pack(&img.u, cw, 2 * cw, 2);
    let v2 = Yuv::pack(&img.v, cw, 2 * cw, 2);
    let n = vu.len();
    let frames = [
        Frame::nv21(&y, w + 3, &vu, 2 * cw + 1, w, h).unwrap(),
        Frame::i420(&y, w + 3, &u, cw, &v, cw, w, h).unwrap(),
        Frame::yuv_420_888(
            Plane::new(&y, w + 3, 1),
            Plane::new(&vu[1..], 2 * cw + 1, 2),
            Plane::new(&vu[..n - 1], 2 * cw + 1, 2),
            w,
            h,
        )
        .unwrap(),
        Frame::yuv_420_888(
            Plane::new(&y, w + 3, 1),
            Plane::new(&u2, 2 * cw, 2),
            Plane::new(&v2, 2 * cw, 2),
            w,
            h,
        )
        .unwrap(),
    ];
    let mut conv = FrameConverter::new();
    conv.convert(&frames[0]).unwrap();
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..3 {
        for f in frames {
            let f = f
                .oriented(Rotation::Cw90, true)
                .center_cropped(1, 1)
                .unwrap();
            let view = conv.convert(&f).unwrap();
            std::hint::black_box(view.rgb(0, 0));
            std::hint::black_box(f.content_hash());
        }
    }
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed) - before,
        0,
        "allocations in steady state"
    );
}
