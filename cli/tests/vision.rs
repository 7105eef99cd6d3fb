//! `fennec describe` and `fennec embed-image` on the tiny Llama 4 vision fixture: answers and
//! embeddings equal transformers', raw camera frames (RGB, NV21, rotated, padded rows) give
//! the same pixels as the decoded file, and bad images are clear errors.

mod common;

use std::path::PathBuf;

use common::fennec;
use fennec_tests::{fixture, max_abs_diff, read_npy_f32, temp_dir};
use serde_json::Value;

fn vision_file(rel: &str) -> String {
    fixture(&format!("llama4_vision/{rel}"))
        .to_string_lossy()
        .into_owned()
}

fn golden(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(vision_file(&format!("goldens/{name}.json"))).unwrap())
        .unwrap()
}

/// `fennec embed-image` of `image` plus `extra` flags: the embeddings, or the error text.
fn embed(image: &str, extra: &[&str]) -> Result<Vec<f32>, String> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out: PathBuf = temp_dir("embed").join(format!("e{n}.npy"));
    let mmproj = vision_file("models/mmproj-tiny.f32.gguf");
    let mut args = vec![
        "embed-image",
        "--mmproj",
        &mmproj,
        "--image",
        image,
        "--out",
        out.to_str().unwrap(),
        "-t",
        "2",
    ];
    args.extend_from_slice(extra);
    let (ok, _, err) = fennec(&args);
    if !ok {
        return Err(err);
    }
    Ok(read_npy_f32(&out).1)
}

#[test]
fn describe_answers_as_transformers_generates() {
    for name in ["one_tile", "four_tiles"] {
        let g = golden(name);
        let (model, mmproj, image) = (
            vision_file("models/tiny.f32.gguf"),
            vision_file("models/mmproj-tiny.f32.gguf"),
            vision_file(g["image"].as_str().unwrap()),
        );
        let question = g["messages"][0]["content"][1]["text"].as_str().unwrap();
        let (ok, out, err) = fennec(&[
            "describe", "-m", &model, "--mmproj", &mmproj, "--image", &image, "-p", question,
            "--temp", "0", "-n", "16", "-t", "2", "--json",
        ]);
        assert!(ok, "{err}");
        let r: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["tokens"], g["greedy"]["tokens"], "{name}");
        assert_eq!(r["prompt_tokens"], g["n_positions"], "{name}");
        assert_eq!(r["image"]["tokens"], g["n_image_tokens"], "{name}");
        for stage in [
            "convert",
            "preprocess",
            "encode",
            "prefill",
            "first_token",
            "total",
        ] {
            assert!(r["seconds"][stage].as_f64().unwrap() >= 0.0, "{stage}");
        }
    }
}

#[test]
fn embed_image_writes_transformers_embeddings() {
    let want = read_npy_f32(&fixture("llama4_vision/goldens/four_tiles.embeddings.npy")).1;
    let got = embed(&vision_file("images/four_tiles.png"), &[]).unwrap();
    assert!(max_abs_diff(&got, &want) < 1e-5);
}

/// The decoded RGB of a fixture image: (bytes, width, height).
fn rgb_of(name: &str) -> (Vec<u8>, usize, usize) {
    let img = image::open(vision_file(&format!("images/{name}.png")))
        .unwrap()
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    (img.into_raw(), w, h)
}

fn write(bytes: &[u8], file: &str) -> String {
    let path = temp_dir("frames").join(file);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn raw_frames_rotated_or_padded_give_the_files_embeddings() {
    let want = embed(&vision_file("images/four_tiles.png"), &[]).unwrap();
    let (rgb, w, h) = rgb_of("four_tiles");
    // Packed RGB with 5 bytes of padding per row.
    let stride = w * 3 + 5;
    let mut padded = vec![0u8; stride * h];
    for y in 0..h {
        padded[y * stride..][..w * 3].copy_from_slice(&rgb[y * w * 3..][..w * 3]);
    }
    let size = format!("{w}x{h}");
    let stride_s = stride.to_string();
    let raw = write(&padded, "padded.rgb");
    let got = embed(
        &raw,
        &[
            "--format",
            "rgb",
            "--size",
            &size,
            "--row-stride",
            &stride_s,
        ],
    )
    .unwrap();
    assert_eq!(got, want, "padded RGB frame");
    // The frame as a sensor mounted at 90° delivers it: stored rotated 90° counter-clockwise;
    // `--rotate 90` (clockwise) makes it upright again.
    let mut sensor = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            // upright (x, y) is stored at (sx, sy) = (y, w - 1 - x) in an h-wide frame.
            let (sx, sy) = (y, w - 1 - x);
            sensor[(sy * h + sx) * 3..][..3].copy_from_slice(&rgb[(y * w + x) * 3..][..3]);
        }
    }
    let raw = write(&sensor, "sensor.rgb");
    let rotated_size = format!("{h}x{w}");
    let got = embed(
        &raw,
        &["--format", "rgb", "--size", &rotated_size, "--rotate", "90"],
    )
    .unwrap();
    assert_eq!(got, want, "rotated frame");
}

#[test]
fn nv21_frames_convert_close_to_the_rgb_file() {
    // A full-range BT.601 NV21 encoding of the image: the converted pixels are within a few
    // levels, so the embeddings stay close (not equal: chroma is subsampled).
    let (rgb, w, h) = rgb_of("four_tiles");
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut nv21 = vec![0u8; w * h + cw * ch * 2];
    let px = |x: usize, y: usize| {
        let p = &rgb[(y.min(h - 1) * w + x.min(w - 1)) * 3..][..3];
        (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]))
    };
    for y in 0..h {
        for x in 0..w {
            let (r, g, b) = px(x, y);
            nv21[y * w + x] = (0.299 * r + 0.587 * g + 0.114 * b).round() as u8;
        }
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut u, mut v) = (0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (r, g, b) = px(2 * cx + dx, 2 * cy + dy);
                u += -0.168_736 * r - 0.331_264 * g + 0.5 * b + 128.0;
                v += 0.5 * r - 0.418_688 * g - 0.081_312 * b + 128.0;
            }
            let base = w * h + (cy * cw + cx) * 2;
            nv21[base] = (v / 4.0).round().clamp(0.0, 255.0) as u8;
            nv21[base + 1] = (u / 4.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    assert_eq!(
        w % 2,
        0,
        "the chroma row stride below assumes an even width"
    );
    let raw = write(&nv21, "frame.nv21");
    let size = format!("{w}x{h}");
    let got = embed(&raw, &["--format", "nv21", "--size", &size]).unwrap();
    let want = embed(&vision_file("images/four_tiles.png"), &[]).unwrap();
    let diff = max_abs_diff(&got, &want);
    // The same bytes read with the chroma planes swapped (NV12) must be much further off.
    let swapped = embed(&raw, &["--format", "nv12", "--size", &size]).unwrap();
    let wrong = max_abs_diff(&swapped, &want);
    eprintln!("NV21: max |diff| {diff:.3}; read as NV12: {wrong:.3}");
    assert!(
        diff < 0.2 && wrong > 2.0 * diff,
        "NV21 {diff}, swapped {wrong}"
    );
}

#[test]
fn bad_images_are_clear_errors() {
    let jpeg = std::fs::read(vision_file("images/photo.jpg")).unwrap();
    let truncated = write(&jpeg[..jpeg.len() / 2], "truncated.jpg");
    let err = embed(&truncated, &[]).unwrap_err();
    assert!(err.contains("error"), "{err}");
    let garbage = write(b"not an image at all", "garbage.png");
    assert!(embed(&garbage, &[]).is_err());
    let empty = write(b"", "empty.rgb");
    let err = embed(&empty, &["--format", "rgb", "--size", "0x0"]).unwrap_err();
    assert!(
        err.to_lowercase().contains("empty") || err.contains("0x0") || err.contains("0×0"),
        "{err}"
    );
    let short = write(&[0u8; 100], "short.nv21");
    let err = embed(&short, &["--format", "nv21", "--size", "64x64"]).unwrap_err();
    assert!(err.contains("short") || err.contains("bytes"), "{err}");
    let err = embed(&vision_file("images/one_tile.png"), &["--rotate", "45"]).unwrap_err();
    assert!(err.contains("rotation"), "{err}");
    // A text model where the mmproj goes, and an mmproj of another model.
    let model = vision_file("models/tiny.f32.gguf");
    let other = vision_file("models/mmproj-other.f32.gguf");
    let image = vision_file("images/one_tile.png");
    let (ok, _, err) = fennec(&[
        "describe", "-m", &model, "--mmproj", &other, "--image", &image,
    ]);
    assert!(!ok && err.contains("another model"), "{err}");
    let (ok, _, err) = fennec(&[
        "describe", "-m", &model, "--mmproj", &model, "--image", &image,
    ]);
    assert!(!ok && err.contains("clip"), "{err}");
}
