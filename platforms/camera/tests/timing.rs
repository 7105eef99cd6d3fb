//! Conversion time of a 1920×1080 NV21 frame. Ignored by default; run
//! `cargo test --release -p fennec-camera --test timing -- --ignored --nocapture`.

use std::time::Instant;

use fennec_camera::{Frame, FrameConverter, Plane};

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn nv21_1080p_conversion_time() {
    let (w, h) = (1920, 1080);
    let data: Vec<u8> = (0..w * h * 3 / 2).map(|i| (i * 31 % 251) as u8).collect();
    let frame = Frame::nv21_contiguous(&data, w, h).unwrap();
    let (y, vu) = data.split_at(w * h);
    // The same bytes as Android YUV_420_888 with interleaved V/U views (pixel stride 2).
    let android = Frame::yuv_420_888(
        Plane::new(y, w, 1),
        Plane::new(&vu[1..], w, 2),
        Plane::new(&vu[..vu.len() - 1], w, 2),
        w,
        h,
    )
    .unwrap();
    // Separate pixel-stride-2 buffers (not one interleaved buffer): the scalar path.
    let (u2, v2): (Vec<u8>, Vec<u8>) = (vu[1..].to_vec(), vu[..vu.len() - 1].to_vec());
    let scalar = Frame::yuv_420_888(
        Plane::new(y, w, 1),
        Plane::new(&u2, w, 2),
        Plane::new(&v2, w, 2),
        w,
        h,
    )
    .unwrap();
    let mut conv = FrameConverter::new();
    for (name, f) in [
        ("NV21", frame),
        ("YUV_420_888 interleaved views", android),
        ("YUV_420_888 separate ps2", scalar),
    ] {
        conv.convert(&f).unwrap();
        let n = 50;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(conv.convert(&f).unwrap().rgb(0, 0));
        }
        let per = t.elapsed() / n;
        println!(
            "{name} 1920×1080 → RGB: {per:?} per frame ({:?})",
            conv.last_path().unwrap()
        );
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(f.content_hash());
        }
        println!("{name} content_hash: {:?} per frame", t.elapsed() / n);
    }
}
