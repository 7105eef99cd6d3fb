//! Conversion and hashing time of a 1920×1080 frame per YUV path:
//! `cargo bench -p fennec-camera --bench convert`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fennec_camera::{Frame, FrameConverter, Plane};

fn bench(c: &mut Criterion) {
    let (w, h) = (1920, 1080);
    let data: Vec<u8> = (0..w * h * 3 / 2).map(|i| (i * 31 % 251) as u8).collect();
    let (y, vu) = data.split_at(w * h);
    // The same bytes as Android YUV_420_888 with interleaved V/U views (pixel stride 2), and
    // as separate pixel-stride-2 buffers (the scalar path).
    let (u2, v2): (Vec<u8>, Vec<u8>) = (vu[1..].to_vec(), vu[..vu.len() - 1].to_vec());
    let frames = [
        ("NV21", Frame::nv21_contiguous(&data, w, h)),
        (
            "YUV_420_888 interleaved views",
            Frame::yuv_420_888(
                Plane::new(y, w, 1),
                Plane::new(&vu[1..], w, 2),
                Plane::new(&vu[..vu.len() - 1], w, 2),
                w,
                h,
            ),
        ),
        (
            "YUV_420_888 separate stride-2 planes",
            Frame::yuv_420_888(
                Plane::new(y, w, 1),
                Plane::new(&u2, w, 2),
                Plane::new(&v2, w, 2),
                w,
                h,
            ),
        ),
    ];
    let mut conv = FrameConverter::new();
    for (name, frame) in frames {
        let frame = frame.expect("a valid benchmark frame");
        c.bench_function(&format!("{name} 1080p to RGB"), |b| {
            b.iter(|| {
                let view = conv.convert(black_box(&frame)).expect("converts");
                black_box(view.rgb(0, 0))
            })
        });
        c.bench_function(&format!("{name} 1080p content_hash"), |b| {
            b.iter(|| black_box(frame.content_hash()))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
