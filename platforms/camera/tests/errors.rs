//! Bad inputs are named errors; no input panics.

use fennec_camera::{CameraError, Frame, FrameConverter, Plane};
use proptest::prelude::*;

#[test]
fn bad_frames_are_named_errors() {
    let b = vec![0u8; 4096];
    use CameraError::*;
    assert!(matches!(
        Frame::nv21(&b, 0, &b, 0, 0, 4),
        Err(EmptyFrame { .. })
    ));
    assert!(matches!(
        Frame::i420(&b, 4, &b, 2, &b, 2, 4, 0),
        Err(EmptyFrame { .. })
    ));
    assert!(matches!(Frame::rgba(&b, 0, 0, 0), Err(EmptyFrame { .. })));
    // Row stride shorter than a row.
    assert!(matches!(
        Frame::nv12(&b, 7, &b, 8, 8, 8),
        Err(RowStrideTooSmall { plane: "y", .. })
    ));
    assert!(matches!(
        Frame::nv12(&b, 9, &b, 9, 9, 8),
        Err(RowStrideTooSmall {
            plane: "uv",
            row_bytes: 10,
            ..
        })
    ));
    assert!(matches!(
        Frame::bgra(&b, 11, 3, 2),
        Err(RowStrideTooSmall { plane: "rgb", .. })
    ));
    // Plane shorter than its strides imply (the last row may end at its last sample).
    let y = vec![0u8; 8 * 7 + 7];
    assert!(matches!(
        Frame::nv21(&y, 8, &b, 8, 8, 8),
        Err(PlaneTooShort {
            plane: "y",
            needed: 64,
            ..
        })
    ));
    let y = vec![0u8; 64];
    assert!(Frame::nv21(&y, 8, &b[..8 * 3 + 8], 8, 8, 8).is_ok());
    assert!(matches!(
        Frame::nv21(&y, 8, &b[..8 * 3 + 7], 8, 8, 8),
        Err(PlaneTooShort { plane: "uv", .. })
    ));
    assert!(matches!(
        Frame::i420(&y, 8, &b, 4, &b[..10], 4, 8, 8),
        Err(PlaneTooShort {
            plane: "v",
            needed: 16,
            ..
        })
    ));
    // Pixel strides other than 1/2 (and luma must be 1).
    for ps in [0, 3, 4] {
        let r = Frame::yuv_420_888(
            Plane::new(&y, 8, 1),
            Plane::new(&b, 16, ps),
            Plane::new(&b, 16, 2),
            8,
            8,
        );
        assert!(
            matches!(r, Err(BadPixelStride { plane: "u", pixel_stride }) if pixel_stride == ps)
        );
    }
    let r = Frame::yuv_420_888(
        Plane::new(&b, 16, 2),
        Plane::new(&b, 8, 2),
        Plane::new(&b, 8, 2),
        8,
        8,
    );
    assert!(matches!(r, Err(BadPixelStride { plane: "y", .. })));
    // Pixel stride 2 needs the longer row span.
    let r = Frame::yuv_420_888(
        Plane::new(&y, 8, 1),
        Plane::new(&b, 6, 2),
        Plane::new(&b, 8, 2),
        8,
        8,
    );
    assert!(matches!(
        r,
        Err(RowStrideTooSmall {
            plane: "u",
            row_bytes: 7,
            ..
        })
    ));
    // Oversized sides.
    assert!(matches!(
        Frame::rgb(&b, 3 * 40000, 40000, 1),
        Err(TooLarge { .. })
    ));
    // Stride arithmetic that overflows.
    assert!(matches!(Frame::rgb(&b, usize::MAX, 2, 3), Err(Overflow)));
    // Crop aspects.
    let f = Frame::nv21(&y, 8, &b, 8, 8, 8).unwrap();
    assert!(matches!(f.center_cropped(0, 1), Err(BadCropAspect { .. })));
    assert!(matches!(
        f.center_cropped(usize::MAX, 1),
        Err(BadCropAspect { .. })
    ));
}

#[test]
fn budget_is_checked_before_allocating() {
    let y = vec![0u8; 64 * 64];
    let vu = vec![0u8; 64 * 32];
    let f = Frame::nv21(&y, 64, &vu, 64, 64, 64).unwrap();
    let mut conv = FrameConverter::with_max_pixels(64 * 64 - 1);
    assert!(matches!(
        conv.convert(&f),
        Err(CameraError::TooLarge { .. })
    ));
    assert_eq!(conv.buffer_capacity(), 0);
    let mut conv = FrameConverter::with_max_pixels(64 * 64);
    assert!(conv.convert(&f).is_ok());
    assert_eq!(
        FrameConverter::new().max_pixels(),
        fennec_camera::DEFAULT_MAX_PIXELS
    );
    // Errors map into fennec-core's.
    let e: fennec_core::Error = CameraError::EmptyFrame {
        width: 0,
        height: 1,
    }
    .into();
    assert!(matches!(e, fennec_core::Error::InvalidArgument(_)));
}

/// Reads every pixel of whatever a frame converts to.
fn exercise(f: Frame<'_>, conv: &mut FrameConverter) {
    let _ = f.content_hash();
    if let Ok(v) = conv.convert(&f) {
        let (w, h) = v.size();
        for y in 0..h {
            for x in 0..w {
                let _ = v.rgb(x, y);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn no_input_panics(
        w in 0usize..40, h in 0usize..40,
        strides in proptest::array::uniform4(0usize..100),
        pixel_strides in proptest::array::uniform3(0usize..4),
        lens in proptest::array::uniform3(0usize..3000),
        rot in 0u32..4, mirror: bool, crop: bool,
        budget in 1usize..2000,
        seed: u8,
    ) {
        let buf: Vec<u8> = (0..9000u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let (a, rest) = buf.split_at(lens[0]);
        let (b, c) = rest.split_at(lens[1].min(rest.len()));
        let c = &c[..lens[2].min(c.len())];
        let mut conv = FrameConverter::with_max_pixels(budget);
        let rotation = fennec_core::vision::Rotation::from_degrees(rot * 90).unwrap();
        let frames = [
            Frame::nv21(a, strides[0], b, strides[1], w, h),
            Frame::nv12(a, strides[0], b, strides[1], w, h),
            Frame::nv21_contiguous(a, w, h),
            Frame::i420(a, strides[0], b, strides[1], c, strides[2], w, h),
            Frame::yuv_420_888(
                Plane::new(a, strides[0], pixel_strides[0]),
                Plane::new(b, strides[1], pixel_strides[1]),
                Plane::new(c, strides[2], pixel_strides[2]),
                w, h,
            ),
            // Overlapping views of one buffer, as Android gives interleaved chroma.
            Frame::yuv_420_888(
                Plane::new(a, strides[0], 1),
                Plane::new(&b[b.len().min(1)..], strides[1], 2),
                Plane::new(b, strides[1], 2),
                w, h,
            ),
            Frame::yuv_420_888(
                Plane::new(a, strides[0], 1),
                Plane::new(b, strides[1], 2),
                Plane::new(&b[b.len().min(1)..], strides[1], 2),
                w, h,
            ),
            Frame::rgba(a, strides[3], w, h),
            Frame::rgb(a, strides[3], w, h),
            Frame::cv_pixel_buffer_bgra(a, strides[3], w, h),
            Ok(Frame::encoded(a)),
        ];
        for f in frames.into_iter().flatten() {
            let mut f = f.oriented(rotation, mirror);
            if crop {
                f = f.center_cropped(1 + w % 3, 1 + h % 4).unwrap();
            }
            exercise(f, &mut conv);
        }
    }

    #[test]
    fn mangled_images_never_panic(cut in 0usize..2000, flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8), png: bool) {
        use image::ImageEncoder;
        let (w, h) = (21u32, 13u32);
        let px: Vec<u8> = (0..w * h * 3).map(|i| (i * 7) as u8).collect();
        let mut bytes = Vec::new();
        if png {
            image::codecs::png::PngEncoder::new(&mut bytes).write_image(&px, w, h, image::ExtendedColorType::Rgb8).unwrap();
        } else {
            image::codecs::jpeg::JpegEncoder::new(&mut bytes).write_image(&px, w, h, image::ExtendedColorType::Rgb8).unwrap();
        }
        for (at, x) in flips {
            if let Some(b) = bytes.get_mut(at) { *b ^= x; }
        }
        bytes.truncate(cut.max(1));
        let mut conv = FrameConverter::new();
        exercise(Frame::encoded(&bytes), &mut conv);
    }
}
