//! Fennec's image preprocessing against transformers' `Llama4ImageProcessorFast`
//! (goldens by `tests/fixtures/llama4_vision/make_tiny_vision.py`): every pixel of every tile,
//! for images of several sizes and aspect ratios, must be exactly what transformers gives.

use fennec_core::vision::{preprocess, ImageView, PixelLayout, PixelTensor, PreprocessOptions};
use fennec_tests::{fixture, read_npy_u8};
use serde_json::Value as Json;

fn golden_json(name: &str) -> Json {
    let path = fixture(&format!("llama4_vision/goldens/{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// transformers' normalised value of each byte (`bf16_pixel_table.npy`, stored as its
/// bfloat16 bits' upper half… read as f32 values).
fn value_of_byte() -> Vec<f32> {
    let path = fixture("llama4_vision/goldens/bf16_pixel_table.npy");
    let (shape, data) = fennec_tests::read_npy_f32(&path);
    assert_eq!(shape, [256]);
    data
}

fn decode(path: &str) -> (Vec<u8>, usize, usize, PixelLayout) {
    let img = image::open(fixture(&format!("llama4_vision/{path}"))).unwrap();
    let (w, h) = (img.width() as usize, img.height() as usize);
    match img {
        image::DynamicImage::ImageRgba8(b) => (b.into_raw(), w, h, PixelLayout::Rgba8),
        other => (other.to_rgb8().into_raw(), w, h, PixelLayout::Rgb8),
    }
}

fn tiny_options() -> PreprocessOptions {
    PreprocessOptions {
        tile_size: 84,
        ..PreprocessOptions::default()
    }
}

/// Compares `px` with the golden bytes `want` (mapped through transformers' table); returns
/// the number of differing values and the largest difference in byte steps.
fn compare(px: &PixelTensor, want: &[u8], table: &[f32]) -> (usize, usize) {
    assert_eq!(px.data.len(), want.len());
    // The byte each of our values stands for (values are distinct per byte up to bf16 ties).
    let byte_of = |v: f32| {
        table
            .iter()
            .position(|&t| t == v)
            .unwrap_or_else(|| panic!("value {v} is no byte's normalised value"))
    };
    let mut bad = 0;
    let mut worst = 0;
    for (&v, &w) in px.data.iter().zip(want) {
        if v != table[usize::from(w)] {
            bad += 1;
            worst = worst.max(byte_of(v).abs_diff(usize::from(w)));
        }
    }
    (bad, worst)
}

#[test]
fn tiles_equal_transformers_for_every_test_image() {
    let table = value_of_byte();
    for name in [
        "one_tile",
        "square",
        "four_tiles",
        "tiny",
        "wide",
        "tall",
        "large",
    ] {
        let meta = golden_json(name);
        let (bytes, w, h, layout) = decode(meta["image"].as_str().unwrap());
        let view = ImageView::packed(&bytes, w, h, layout).unwrap();
        let px = preprocess(&view, &tiny_options()).unwrap();
        let grid = (
            meta["grid"]["rows"].as_u64().unwrap() as usize,
            meta["grid"]["cols"].as_u64().unwrap() as usize,
        );
        assert_eq!(px.grid, grid, "{name}: grid");
        assert_eq!(
            px.has_global,
            meta["has_global_tile"].as_bool().unwrap(),
            "{name}"
        );
        let resized = (
            meta["resized"]["width"].as_u64().unwrap() as usize,
            meta["resized"]["height"].as_u64().unwrap() as usize,
        );
        assert_eq!(px.resized, resized, "{name}: resized size");
        let (shape, want) = read_npy_u8(&fixture(&format!(
            "llama4_vision/goldens/{name}.pixels.npy"
        )));
        assert_eq!(shape[0], px.n_tiles(), "{name}: tiles");
        let (bad, worst) = compare(&px, &want, &table);
        println!(
            "{name}: {} tiles, {bad} values differ (worst {worst} byte steps)",
            px.n_tiles()
        );
        assert_eq!(
            bad, 0,
            "{name}: {bad} pixel values differ from transformers (worst by {worst})"
        );
    }
}

/// The synthetic images of `scout_preprocess.json`: pixel (x, y) = ((7x+3y) % 256,
/// (x·y) % 256, (x+2y) % 256).
fn synthetic(w: usize, h: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            v.extend_from_slice(&[
                ((7 * x + 3 * y) % 256) as u8,
                ((x * y) % 256) as u8,
                ((x + 2 * y) % 256) as u8,
            ]);
        }
    }
    v
}

#[test]
fn scout_sized_tiles_equal_transformers_samples() {
    let table = value_of_byte();
    let golden = golden_json("scout_preprocess");
    for case in golden["cases"].as_array().unwrap() {
        let (w, h) = (
            case["width"].as_u64().unwrap() as usize,
            case["height"].as_u64().unwrap() as usize,
        );
        let bytes = synthetic(w, h);
        let view = ImageView::packed(&bytes, w, h, PixelLayout::Rgb8).unwrap();
        let px = preprocess(&view, &PreprocessOptions::default()).unwrap();
        let grid = (
            case["grid"]["rows"].as_u64().unwrap() as usize,
            case["grid"]["cols"].as_u64().unwrap() as usize,
        );
        assert_eq!(px.grid, grid, "{w}×{h}: grid");
        assert_eq!(
            px.data.len(),
            case["flat_len"].as_u64().unwrap() as usize,
            "{w}×{h}"
        );
        let stride = case["stride"].as_u64().unwrap() as usize;
        let mut bad = 0;
        for (i, s) in case["samples"].as_array().unwrap().iter().enumerate() {
            let want = table[s.as_u64().unwrap() as usize];
            if px.data[i * stride] != want {
                bad += 1;
            }
        }
        assert_eq!(bad, 0, "{w}×{h}: {bad} sampled values differ");
    }
}

/// Grid and resized size for every size of a 46 × 46 sweep at 84- and 336-pixel tiles, plus 28
/// whose size depends on transformers computing some ratios in float32.
#[test]
fn grid_and_resize_plan_equal_transformers_over_a_size_sweep() {
    let table = golden_json("grid_table");
    let mut checked = 0;
    for (tile, rows) in table["tiles"].as_object().unwrap() {
        let opts = PreprocessOptions {
            tile_size: tile.parse().unwrap(),
            ..PreprocessOptions::default()
        };
        for row in rows.as_array().unwrap() {
            let v: Vec<usize> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            let (w, h) = (v[0], v[1]);
            let plan = fennec_core::vision::plan(w, h, &opts);
            assert_eq!(
                (plan.grid, plan.resized),
                ((v[2], v[3]), (v[5], v[4])),
                "{w}×{h} at tile {tile}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4_000, "only {checked} sizes in the table");
}

/// RGBA composited on white, as Meta's reference does (transformers drops alpha instead):
/// every composited byte equals PIL's `alpha_composite` onto white, and the tiles equal the
/// processor's output for that composited image.
#[test]
fn rgba_is_composited_on_white_like_meta() {
    let (bytes, w, h, layout) = decode("images/rgba.png");
    assert_eq!(layout, PixelLayout::Rgba8);
    let view = ImageView::packed(&bytes, w, h, layout).unwrap();
    let (shape, want) = read_npy_u8(&fixture(
        "llama4_vision/goldens/rgba_on_white.composited.npy",
    ));
    assert_eq!(shape, [h, w, 3]);
    let mut bad = 0;
    for y in 0..h {
        for x in 0..w {
            if view.rgb(x, y)[..] != want[(y * w + x) * 3..][..3] {
                bad += 1;
            }
        }
    }
    assert_eq!(bad, 0, "{bad} composited pixels differ from PIL");
    let px = preprocess(&view, &tiny_options()).unwrap();
    let (_, want) = read_npy_u8(&fixture("llama4_vision/goldens/rgba_on_white.pixels.npy"));
    let (bad, worst) = compare(&px, &want, &value_of_byte());
    assert_eq!(bad, 0, "{bad} values differ (worst {worst})");
}
