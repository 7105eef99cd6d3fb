//! RGB-family frames are borrowed (no conversion); JPEG/PNG decode; content hashes.

mod common;

use common::*;
use fennec_camera::{CameraError, ConversionPath, Frame, FrameConverter, FrameFormat};
use fennec_core::vision::{ImageView, PixelLayout, Rotation};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

#[test]
fn rgb_family_frames_are_borrowed_not_converted() {
    // 3×2, row stride padded to 16 bytes; pixel (x, y) = (10x, 20y, 7, alpha).
    let (w, h, stride) = (3, 2, 16);
    let mut rgba = vec![0xEEu8; stride * (h - 1) + w * 4];
    let mut bgra = rgba.clone();
    let mut rgb = vec![0xEEu8; stride * (h - 1) + w * 3];
    for y in 0..h {
        for x in 0..w {
            let (r, g, b) = (10 * x as u8, 20 * y as u8, 7u8);
            rgba[y * stride + x * 4..][..4].copy_from_slice(&[r, g, b, 255]);
            bgra[y * stride + x * 4..][..4].copy_from_slice(&[b, g, r, 255]);
            rgb[y * stride + x * 3..][..3].copy_from_slice(&[r, g, b]);
        }
    }
    let frames = [
        Frame::rgba(&rgba, stride, w, h).unwrap(),
        Frame::bgra(&bgra, stride, w, h).unwrap(),
        Frame::cv_pixel_buffer_bgra(&bgra, stride, w, h).unwrap(),
        Frame::rgb(&rgb, stride, w, h).unwrap(),
    ];
    let mut conv = FrameConverter::new();
    for f in frames {
        assert!(matches!(f.format(), FrameFormat::Packed(_)));
        let v = conv.convert(&f.oriented(Rotation::Cw90, false)).unwrap();
        assert_eq!(v.size(), (2, 3));
        // Upright (x, y) after Cw90 comes from stored (y, h-1-x).
        assert_eq!(v.rgb(0, 2), [20, 20, 7]);
        assert_eq!(v.rgb(1, 0), [0, 0, 7]);
        assert_eq!(conv.last_path(), Some(ConversionPath::Borrowed));
        // No conversion buffer was ever touched.
        assert_eq!(conv.buffer_capacity(), 0);
    }
}

#[test]
fn packed_view_outlives_the_frame_value() {
    // `Frame::view` borrows the caller's bytes, not the frame or a converter: this compiles
    // only because the view's lifetime is the pixel buffer's.
    let data = vec![1u8, 2, 3, 4, 5, 6, 7, 8];
    let view: ImageView<'_> = {
        let frame = Frame::rgba(&data, 4, 1, 2).unwrap();
        frame.view().unwrap().unwrap()
    };
    assert_eq!(view.layout(), PixelLayout::Rgba8);
    assert_eq!(view.stored_size(), (1, 2));
    assert!(Frame::nv21(&[0; 4], 2, &[0; 2], 2, 2, 2)
        .unwrap()
        .view()
        .is_none());
}

#[test]
fn alpha_composites_on_white() {
    let data = [0u8, 0, 0, 0, 255, 0, 0, 255];
    let v = Frame::rgba(&data, 8, 2, 1)
        .unwrap()
        .view()
        .unwrap()
        .unwrap();
    assert_eq!(v.rgb(0, 0), [255, 255, 255]);
    assert_eq!(v.rgb(1, 0), [255, 0, 0]);
    // The iOS camera BGRA ignores the fourth byte.
    let v = Frame::cv_pixel_buffer_bgra(&data, 8, 2, 1)
        .unwrap()
        .view()
        .unwrap()
        .unwrap();
    assert_eq!(v.rgb(0, 0), [0, 0, 0]);
}

fn gradient(w: usize, h: usize, channels: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(w * h * channels);
    for y in 0..h {
        for x in 0..w {
            let px = [(x * 255 / w) as u8, (y * 255 / h) as u8, 128, 200];
            v.extend_from_slice(&px[..channels]);
        }
    }
    v
}

fn png(data: &[u8], w: usize, h: usize, color: ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(data, w as u32, h as u32, color)
        .unwrap();
    out
}

fn jpeg(w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 95)
        .write_image(
            &gradient(w, h, 3),
            w as u32,
            h as u32,
            ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

#[test]
fn png_decodes_exactly_in_every_colour_type() {
    let (w, h) = (13, 7);
    let rgb = gradient(w, h, 3);
    let rgba = gradient(w, h, 4);
    let grey: Vec<u8> = (0..w * h).map(|i| (i * 3) as u8).collect();
    let grey_a: Vec<u8> = grey.iter().flat_map(|&g| [g, 255]).collect();
    let wide = |v: &[u8]| -> Vec<u8> {
        v.iter()
            .flat_map(|&b| (u16::from(b) * 257).to_be_bytes())
            .collect()
    };
    let cases = [
        (png(&rgb, w, h, ExtendedColorType::Rgb8), "rgb8"),
        (png(&rgba, w, h, ExtendedColorType::Rgba8), "rgba8"),
        (png(&grey, w, h, ExtendedColorType::L8), "l8"),
        (png(&grey_a, w, h, ExtendedColorType::La8), "la8"),
        (png(&wide(&rgb), w, h, ExtendedColorType::Rgb16), "rgb16"),
        (png(&wide(&grey), w, h, ExtendedColorType::L16), "l16"),
    ];
    let mut conv = FrameConverter::new();
    for (bytes, name) in cases {
        let f = Frame::encoded(&bytes);
        assert_eq!(f.format(), FrameFormat::Encoded);
        let v = conv.convert(&f).unwrap();
        assert_eq!(v.size(), (w, h), "{name}");
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let want = match name {
                    "l8" | "la8" | "l16" => [grey[i]; 3],
                    // rgba8 has alpha 200: composited on white.
                    "rgba8" => {
                        let a = 200u32;
                        [0, 1, 2].map(|c| {
                            ((u32::from(rgba[i * 4 + c]) * a + 255 * (255 - a) + 127) / 255) as u8
                        })
                    }
                    _ => [rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]],
                };
                assert_eq!(v.rgb(x, y), want, "{name} ({x}, {y})");
            }
        }
        assert_eq!(conv.last_path(), Some(ConversionPath::Decoded));
    }
}

#[test]
fn jpeg_decodes_and_orients() {
    let (w, h) = (40, 24);
    let bytes = jpeg(w, h);
    let src = gradient(w, h, 3);
    let mut conv = FrameConverter::new();
    let f = Frame::encoded(&bytes).oriented(Rotation::Cw270, true);
    let v = conv.convert(&f).unwrap();
    assert_eq!(v.size(), (h, w));
    let reference: Vec<[u8; 3]> = src.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    let (exp, uw, uh) = rotate(&reference, w, h, Rotation::Cw270, true);
    // JPEG is lossy: a smooth gradient at quality 95 stays within a few levels.
    assert_close(&v, &exp, uw, uh, 12, "jpeg");
    // A second decode of the same size reuses the buffer.
    let cap = conv.buffer_capacity();
    conv.convert(&Frame::encoded(&bytes)).unwrap();
    assert_eq!(conv.buffer_capacity(), cap);
}

#[test]
fn truncated_or_corrupt_images_are_errors() {
    let bytes = jpeg(64, 48);
    let mut conv = FrameConverter::new();
    for cut in [2, 20, bytes.len() / 3, bytes.len() / 2, bytes.len() - 40] {
        let r = conv.convert(&Frame::encoded(&bytes[..cut]));
        assert!(
            matches!(r, Err(CameraError::Decode(_) | CameraError::Unsupported(_))),
            "JPEG cut at {cut} of {}: {r:?}",
            bytes.len()
        );
    }
    // Corrupt headers: Huffman tables removed, zero dimensions, a bad marker.
    let segment = |code: u8| {
        let at = bytes.windows(2).position(|w| w == [0xFF, code]).unwrap();
        let len = usize::from(bytes[at + 2]) << 8 | usize::from(bytes[at + 3]);
        (at, len + 2)
    };
    let (dht, dht_len) = segment(0xC4);
    let mut no_tables = bytes.clone();
    no_tables.drain(dht..dht + dht_len);
    let (sof, _) = segment(0xC0);
    let mut zero_size = bytes.clone();
    zero_size[sof + 5..sof + 9].fill(0);
    let mut bad_marker = bytes.clone();
    bad_marker[dht + 1] = 0x00;
    for (name, b) in [
        ("no DHT", no_tables),
        ("0×0", zero_size),
        ("bad marker", bad_marker),
    ] {
        let r = conv.convert(&Frame::encoded(&b));
        assert!(r.is_err(), "{name}: {r:?}");
    }
    // Garbage *inside* the entropy-coded scan is not detectable (JPEG has no checksum):
    // it decodes to wrong pixels, without a panic.
    let mut scan_garbage = bytes.clone();
    let n = scan_garbage.len();
    for b in &mut scan_garbage[n / 2..n - 2] {
        *b = 0x5A;
    }
    assert!(conv.convert(&Frame::encoded(&scan_garbage)).is_ok());
    let p = png(&gradient(16, 16, 3), 16, 16, ExtendedColorType::Rgb8);
    let r = conv.convert(&Frame::encoded(&p[..p.len() - 20]));
    assert!(
        matches!(r, Err(CameraError::Decode(_))),
        "truncated PNG: {r:?}"
    );
    for junk in [&b""[..], b"hello, world", &[0xFF, 0xD8]] {
        let r = conv.convert(&Frame::encoded(junk));
        assert!(r.is_err(), "{junk:?}: {r:?}");
    }
    let r = conv.convert(&Frame::encoded(b"GIF89a\x01\x00\x01\x00"));
    assert!(matches!(r, Err(CameraError::Unsupported(_))), "{r:?}");
}

#[test]
fn encoded_images_over_budget_are_refused_before_decoding() {
    let bytes = png(&gradient(64, 64, 3), 64, 64, ExtendedColorType::Rgb8);
    let mut conv = FrameConverter::with_max_pixels(64 * 63);
    let r = conv.convert(&Frame::encoded(&bytes));
    assert!(matches!(r, Err(CameraError::TooLarge { .. })), "{r:?}");
    assert_eq!(conv.buffer_capacity(), 0);
}

#[test]
fn content_hash_covers_visible_bytes_and_orientation() {
    let mut rng = Rng(9);
    let img = Yuv::random(7, 5, fennec_camera::YuvRange::Full, &mut rng);
    let cw = img.cw();
    let tight_y = Yuv::pack(&img.y, 7, 7, 1);
    let padded_y = Yuv::pack(&img.y, 7, 12, 1);
    let vu = Yuv::pack_pairs(&img.v, &img.u, cw, 2 * cw);
    let a = Frame::nv21(&tight_y, 7, &vu, 2 * cw, 7, 5).unwrap();
    let b = Frame::nv21(&padded_y, 12, &vu, 2 * cw, 7, 5).unwrap();
    assert_eq!(a.content_hash(), b.content_hash(), "padding is not content");
    let mut other_pad = padded_y.clone();
    other_pad[8] ^= 0xFF; // row 0 padding
    let c = Frame::nv21(&other_pad, 12, &vu, 2 * cw, 7, 5).unwrap();
    assert_eq!(a.content_hash(), c.content_hash());
    let mut changed = tight_y.clone();
    changed[3] ^= 1;
    let d = Frame::nv21(&changed, 7, &vu, 2 * cw, 7, 5).unwrap();
    assert_ne!(a.content_hash(), d.content_hash());
    assert_ne!(
        a.content_hash(),
        a.oriented(Rotation::Cw90, false).content_hash()
    );
    assert_ne!(
        a.content_hash(),
        a.oriented(Rotation::None, true).content_hash()
    );
    assert_ne!(
        a.content_hash(),
        a.center_cropped(1, 1).unwrap().content_hash()
    );
    assert_ne!(
        a.content_hash(),
        a.with_range(fennec_camera::YuvRange::Limited)
            .content_hash()
    );
    let nv12 = Frame::nv12(&tight_y, 7, &vu, 2 * cw, 7, 5).unwrap();
    assert_ne!(
        a.content_hash(),
        nv12.content_hash(),
        "format is part of the key"
    );
    let bytes = jpeg(8, 8);
    assert_eq!(
        Frame::encoded(&bytes).content_hash(),
        Frame::encoded(&bytes.clone()).content_hash()
    );
}
