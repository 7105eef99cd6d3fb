//! Every YUV path against the scalar BT.601 reference (±2 per channel): odd sizes, padded
//! strides, pixel stride 2, both chroma orders, both ranges, all orientations and crops.

mod common;

use common::*;
use fennec_camera::{ConversionPath, Frame, FrameConverter, Plane, YuvRange};

const TOL: u8 = 2;
const RANGES: [YuvRange; 2] = [YuvRange::Full, YuvRange::Limited];

/// Row-stride paddings to try: tight, odd, large.
const PADS: [usize; 3] = [0, 3, 64];

#[test]
fn nv21_and_nv12_match_reference() {
    let mut rng = Rng(1);
    let mut conv = FrameConverter::new();
    for (range, (w, h)) in RANGES.iter().flat_map(|&r| SIZES.map(|s| (r, s))) {
        let img = Yuv::random(w, h, range, &mut rng);
        let (cw, _) = (img.cw(), img.ch());
        for pad in PADS {
            let (ys, cs) = (w + pad, 2 * cw + pad);
            let y = Yuv::pack(&img.y, w, ys, 1);
            let vu = Yuv::pack_pairs(&img.v, &img.u, cw, cs);
            let uv = Yuv::pack_pairs(&img.u, &img.v, cw, cs);
            {
                let want = img.reference(range);
                let what = format!("{w}×{h} pad {pad} {range:?}");
                let f = Frame::nv21(&y, ys, &vu, cs, w, h)
                    .unwrap()
                    .with_range(range);
                let v = conv.convert(&f).unwrap();
                assert_close(&v, &want, w, h, TOL, &format!("NV21 {what}"));
                assert_eq!(conv.last_path(), Some(ConversionPath::SimdBiPlanar));
                let f = Frame::nv12(&y, ys, &uv, cs, w, h)
                    .unwrap()
                    .with_range(range);
                let v = conv.convert(&f).unwrap();
                assert_close(&v, &want, w, h, TOL, &format!("NV12 {what}"));
            }
        }
    }
}

#[test]
fn chroma_order_matters() {
    // The same bytes read as NV21 and as NV12 swap U and V.
    let mut rng = Rng(2);
    let img = Yuv::random(9, 5, YuvRange::Full, &mut rng);
    let cw = img.cw();
    let y = Yuv::pack(&img.y, 9, 9, 1);
    let vu = Yuv::pack_pairs(&img.v, &img.u, cw, 2 * cw);
    let swapped = Yuv {
        w: 9,
        h: 5,
        y: img.y.clone(),
        u: img.v.clone(),
        v: img.u.clone(),
    };
    let mut conv = FrameConverter::new();
    let f = Frame::nv12(&y, 9, &vu, 2 * cw, 9, 5).unwrap();
    let v = conv.convert(&f).unwrap();
    assert_close(
        &v,
        &swapped.reference(YuvRange::Full),
        9,
        5,
        TOL,
        "NV21 bytes read as NV12",
    );
}

#[test]
fn contiguous_nv21_matches_reference() {
    let mut rng = Rng(3);
    let mut conv = FrameConverter::new();
    for (range, (w, h)) in RANGES.iter().flat_map(|&r| SIZES.map(|s| (r, s))) {
        let img = Yuv::random(w, h, range, &mut rng);
        let mut buf = img.y.clone();
        buf.extend(Yuv::pack_pairs(&img.v, &img.u, img.cw(), 2 * img.cw()));
        let f = Frame::nv21_contiguous(&buf, w, h)
            .unwrap()
            .with_range(range);
        let v = conv.convert(&f).unwrap();
        let what = format!("NV21 {w}×{h} {range:?}");
        assert_close(&v, &img.reference(range), w, h, TOL, &what);
    }
}

#[test]
fn i420_matches_reference() {
    let mut rng = Rng(4);
    let mut conv = FrameConverter::new();
    for (range, (w, h)) in RANGES.iter().flat_map(|&r| SIZES.map(|s| (r, s))) {
        let img = Yuv::random(w, h, range, &mut rng);
        let cw = img.cw();
        for pad in PADS {
            let (ys, us, vs) = (w + pad, cw + pad, cw + 2 * pad);
            let y = Yuv::pack(&img.y, w, ys, 1);
            let u = Yuv::pack(&img.u, cw, us, 1);
            let v = Yuv::pack(&img.v, cw, vs, 1);
            {
                let f = Frame::i420(&y, ys, &u, us, &v, vs, w, h)
                    .unwrap()
                    .with_range(range);
                let view = conv.convert(&f).unwrap();
                let what = format!("I420 {w}×{h} pad {pad} {range:?}");
                assert_close(&view, &img.reference(range), w, h, TOL, &what);
                assert_eq!(conv.last_path(), Some(ConversionPath::SimdPlanar));
            }
        }
    }
}

/// An Android-style `YUV_420_888` frame whose U and V planes are views of one interleaved
/// buffer: (buffer, offset of the U view, offset of the V view, view lengths).
fn interleaved_buffer(img: &Yuv, stride: usize, v_first: bool) -> Vec<u8> {
    if v_first {
        Yuv::pack_pairs(&img.v, &img.u, img.cw(), stride)
    } else {
        Yuv::pack_pairs(&img.u, &img.v, img.cw(), stride)
    }
}

#[test]
fn yuv_420_888_interleaved_views_match_reference() {
    let mut rng = Rng(5);
    let mut conv = FrameConverter::new();
    for (range, (w, h)) in RANGES.iter().flat_map(|&r| SIZES.map(|s| (r, s))) {
        let img = Yuv::random(w, h, range, &mut rng);
        let cw = img.cw();
        for pad in PADS {
            let (ys, cs) = (w + pad, 2 * cw + pad);
            let y = Yuv::pack(&img.y, w, ys, 1);
            for v_first in [true, false] {
                let buf = interleaved_buffer(&img, cs, v_first);
                let n = buf.len();
                // Android gives each view up to its own last sample (one byte short of the
                // other's); some HALs give both the whole buffer tail.
                for short in [true, false] {
                    let (first, second) = if short {
                        (&buf[..n - 1], &buf[1..])
                    } else {
                        (&buf[..], &buf[1..])
                    };
                    let (u, v) = if v_first {
                        (second, first)
                    } else {
                        (first, second)
                    };
                    {
                        let f = Frame::yuv_420_888(
                            Plane::new(&y, ys, 1),
                            Plane::new(u, cs, 2),
                            Plane::new(v, cs, 2),
                            w,
                            h,
                        )
                        .unwrap()
                        .with_range(range);
                        let view = conv.convert(&f).unwrap();
                        let what = format!(
                            "YUV_420_888 {w}×{h} pad {pad} v_first {v_first} short {short} {range:?}"
                        );
                        assert_close(&view, &img.reference(range), w, h, TOL, &what);
                        let path = conv.last_path().unwrap();
                        if w > 1 || h > 2 {
                            assert!(
                                path == ConversionPath::SimdInterleavedDetected
                                    || (h <= 2 && short && path == ConversionPath::Scalar),
                                "{what}: {path:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn yuv_420_888_separate_pixel_stride_2_uses_scalar() {
    let mut rng = Rng(6);
    let mut conv = FrameConverter::new();
    for (range, (w, h)) in RANGES.iter().flat_map(|&r| SIZES.map(|s| (r, s))) {
        let img = Yuv::random(w, h, range, &mut rng);
        let cw = img.cw();
        for pad in PADS {
            let (ys, cs) = (w + pad, 2 * cw + pad);
            let y = Yuv::pack(&img.y, w, ys, 1);
            // Separate buffers, garbage between samples: not one interleaved buffer.
            let u = Yuv::pack(&img.u, cw, cs, 2);
            let v = Yuv::pack(&img.v, cw, cs + 1, 2);
            let u1 = Yuv::pack(&img.u, cw, cw + pad, 1);
            {
                let want = img.reference(range);
                let what = format!("ps2 {w}×{h} pad {pad} {range:?}");
                let f = Frame::yuv_420_888(
                    Plane::new(&y, ys, 1),
                    Plane::new(&u, cs, 2),
                    Plane::new(&v, cs + 1, 2),
                    w,
                    h,
                )
                .unwrap()
                .with_range(range);
                let view = conv.convert(&f).unwrap();
                assert_close(&view, &want, w, h, TOL, &what);
                assert_eq!(conv.last_path(), Some(ConversionPath::Scalar), "{what}");
                // Mixed pixel strides.
                let f = Frame::yuv_420_888(
                    Plane::new(&y, ys, 1),
                    Plane::new(&u1, cw + pad, 1),
                    Plane::new(&v, cs + 1, 2),
                    w,
                    h,
                )
                .unwrap()
                .with_range(range);
                let view = conv.convert(&f).unwrap();
                assert_close(&view, &want, w, h, TOL, &format!("mixed {what}"));
                assert_eq!(conv.last_path(), Some(ConversionPath::Scalar), "{what}");
            }
        }
    }
}

#[test]
fn limited_range_footroom() {
    // Y below 16 ("blacker than black") is outside limited range. The `yuv` crate's SIMD
    // rows clamp it to 16 before the matrix (a saturating subtract); the scalar converter
    // here does the same so every path agrees. The `yuv` crate's own scalar tail pixels
    // apply the plain formula, so each pixel must match one of the two, within ±2.
    let mut rng = Rng(12);
    let mut conv = FrameConverter::new();
    for (w, h) in [(37, 6), (5, 3), (64, 4)] {
        let mut img = Yuv::random(w, h, YuvRange::Full, &mut rng);
        for y in &mut img.y {
            *y %= 16;
        }
        let cw = img.cw();
        let plain = img.reference(YuvRange::Limited);
        let clamped = Yuv {
            w,
            h,
            y: img.y.iter().map(|&y| y.max(16)).collect(),
            u: img.u.clone(),
            v: img.v.clone(),
        }
        .reference(YuvRange::Limited);
        let y = Yuv::pack(&img.y, w, w, 1);
        let vu = Yuv::pack_pairs(&img.v, &img.u, cw, 2 * cw);
        let u1 = Yuv::pack(&img.u, cw, cw, 1);
        let v1 = Yuv::pack(&img.v, cw, cw, 1);
        let n = vu.len();
        let u2 = Yuv::pack(&img.u, cw, 2 * cw, 2);
        let frames = [
            Frame::nv21(&y, w, &vu, 2 * cw, w, h).unwrap(),
            Frame::i420(&y, w, &u1, cw, &v1, cw, w, h).unwrap(),
            Frame::yuv_420_888(
                Plane::new(&y, w, 1),
                Plane::new(&vu[1..], 2 * cw, 2),
                Plane::new(&vu[..n - 1], 2 * cw, 2),
                w,
                h,
            )
            .unwrap(),
            Frame::yuv_420_888(
                Plane::new(&y, w, 1),
                Plane::new(&u2, 2 * cw, 2),
                Plane::new(&v1, cw, 1),
                w,
                h,
            )
            .unwrap(),
        ];
        for f in frames {
            let view = conv.convert(&f.with_range(YuvRange::Limited)).unwrap();
            for py in 0..h {
                for px in 0..w {
                    let got = view.rgb(px, py);
                    let near = |want: [u8; 3]| (0..3).all(|c| got[c].abs_diff(want[c]) <= TOL);
                    let i = py * w + px;
                    assert!(
                        near(clamped[i]) || near(plain[i]),
                        "{:?} {w}×{h} ({px}, {py}): {got:?} vs {:?} / {:?}",
                        f.format(),
                        clamped[i],
                        plain[i]
                    );
                }
            }
        }
    }
}

#[test]
fn limited_range_endpoints() {
    let mut conv = FrameConverter::new();
    for (yv, want) in [(16u8, 0u8), (235, 255)] {
        let y = [yv; 4];
        let vu = [128u8; 2];
        let f = Frame::nv21(&y, 2, &vu, 2, 2, 2)
            .unwrap()
            .with_range(YuvRange::Limited);
        assert_eq!(conv.convert(&f).unwrap().rgb(1, 1), [want; 3]);
    }
}

#[test]
fn every_orientation_and_crop_matches_the_rotated_reference() {
    let mut rng = Rng(7);
    let mut conv = FrameConverter::new();
    for (w, h) in [(1, 1), (5, 7), (17, 9), (64, 31), (2, 1)] {
        let img = Yuv::random(w, h, YuvRange::Full, &mut rng);
        let cw = img.cw();
        let want = img.reference(YuvRange::Full);
        let y = Yuv::pack(&img.y, w, w + 5, 1);
        let vu = Yuv::pack_pairs(&img.v, &img.u, cw, 2 * cw + 2);
        let u = Yuv::pack(&img.u, cw, cw + 1, 1);
        let v = Yuv::pack(&img.v, cw, cw + 7, 1);
        let us2 = Yuv::pack(&img.u, cw, 2 * cw + 3, 2);
        let nv21 = Frame::nv21(&y, w + 5, &vu, 2 * cw + 2, w, h).unwrap();
        let i420 = Frame::i420(&y, w + 5, &u, cw + 1, &v, cw + 7, w, h).unwrap();
        let scalar = Frame::yuv_420_888(
            Plane::new(&y, w + 5, 1),
            Plane::new(&us2, 2 * cw + 3, 2),
            Plane::new(&v, cw + 7, 1),
            w,
            h,
        )
        .unwrap();
        for (name, frame) in [("NV21", nv21), ("I420", i420), ("scalar", scalar)] {
            for rot in ROTATIONS {
                for mirror in [false, true] {
                    let (exp, uw, uh) = rotate(&want, w, h, rot, mirror);
                    let what = format!("{name} {w}×{h} {rot:?} mirror {mirror}");
                    let f = frame.oriented(rot, mirror);
                    let view = conv.convert(&f).unwrap();
                    assert_close(&view, &exp, uw, uh, TOL, &what);
                    // Centre crop 1:1 of the upright picture.
                    let side = uw.min(uh);
                    let (x0, y0) = ((uw - side) / 2, (uh - side) / 2);
                    let crop: Vec<[u8; 3]> = (0..side)
                        .flat_map(|y| (0..side).map(move |x| (x, y)))
                        .map(|(x, y)| exp[(y + y0) * uw + x + x0])
                        .collect();
                    let f = frame.oriented(rot, mirror).center_cropped(1, 1).unwrap();
                    let view = conv.convert(&f).unwrap();
                    assert_close(&view, &crop, side, side, TOL, &format!("{what} crop 1:1"));
                }
            }
        }
    }
}

#[test]
fn a_rotation_is_not_a_pass_over_the_pixels() {
    // The same converter buffer serves every orientation: orientation lives in the view.
    let y = vec![100u8; 6 * 4];
    let vu = vec![128u8; 6 * 2];
    let mut conv = FrameConverter::new();
    let f = Frame::nv21(&y, 6, &vu, 6, 6, 4).unwrap();
    conv.convert(&f).unwrap();
    let cap = conv.buffer_capacity();
    assert_eq!(cap, 6 * 4 * 3);
    for rot in ROTATIONS {
        let v = conv.convert(&f.oriented(rot, true)).unwrap();
        assert_eq!(v.stored_size(), (6, 4));
        assert_eq!(conv.buffer_capacity(), cap);
    }
}
