//! The Llama 4 vision path against transformers on a tiny random
//! `Llama4ForConditionalGeneration` (made and converted with llama.cpp's converter by
//! `tests/fixtures/llama4_vision/make_tiny_vision.py`): projected image embeddings, the
//! fused prompt's ids, text logits with the image in the prompt, and greedy generation.

use std::sync::Arc;

use fennec_core::chat::ChatMessage;
use fennec_core::vision::{ImageView, PixelLayout, Prompt, VisionModel};
use fennec_core::{
    CancelHandle, ErrorKind, KvType, LoadOptions, Logits, Model, Session, SessionOptions,
};
use fennec_tests::{fixture, greedy_tokens, max_abs_diff, read_npy_f32};
use serde_json::Value as Json;

fn path(rel: &str) -> std::path::PathBuf {
    fixture(&format!("llama4_vision/{rel}"))
}

fn golden(name: &str) -> Json {
    serde_json::from_slice(&std::fs::read(path(&format!("goldens/{name}.json"))).unwrap()).unwrap()
}

fn text_model() -> Arc<Model> {
    Model::load(path("models/tiny.f32.gguf"), &LoadOptions::with_threads(2)).unwrap()
}

fn decode(rel: &str) -> (Vec<u8>, usize, usize, PixelLayout) {
    let img = image::open(path(rel)).unwrap();
    let (w, h) = (img.width() as usize, img.height() as usize);
    match img {
        image::DynamicImage::ImageRgba8(b) => (b.into_raw(), w, h, PixelLayout::Rgba8),
        other => (other.to_rgb8().into_raw(), w, h, PixelLayout::Rgb8),
    }
}

/// The preprocessed pixels of a fixture image.
fn pixels(vision: &VisionModel, rel: &str) -> fennec_core::vision::PixelTensor {
    let (bytes, w, h, layout) = decode(rel);
    vision
        .preprocess(&ImageView::packed(&bytes, w, h, layout).unwrap())
        .unwrap()
}

fn embed(vision: &VisionModel, name: &str) -> fennec_core::vision::ImageEmbeddings {
    let pixels = pixels(vision, golden(name)["image"].as_str().unwrap());
    vision.encode(&pixels, &CancelHandle::new()).unwrap()
}

const IMAGES: [&str; 6] = ["one_tile", "square", "four_tiles", "tiny", "wide", "tall"];

#[test]
fn projected_embeddings_equal_transformers() {
    let model = text_model();
    for (file, tol) in [
        ("mmproj-tiny.f32.gguf", 1e-5f32),
        ("mmproj-tiny.f16.gguf", 2e-3),
    ] {
        let vision = VisionModel::load_for(path(&format!("models/{file}")), &model).unwrap();
        for name in IMAGES {
            let emb = embed(&vision, name);
            let (shape, want) = read_npy_f32(&path(&format!("goldens/{name}.embeddings.npy")));
            assert_eq!(shape, [emb.n_rows(), emb.n_embd], "{file} {name}");
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let diff = max_abs_diff(&emb.data, &want);
            eprintln!("{file} {name}: max |diff| {diff:.2e} (max |value| {scale:.2})");
            assert!(diff < tol, "{file} {name}: max |diff| {diff}");
        }
    }
}

#[test]
fn fused_prompt_ids_logits_and_greedy_equal_transformers() {
    let model = text_model();
    let vision = VisionModel::load_for(path("models/mmproj-tiny.f32.gguf"), &model).unwrap();
    for name in ["one_tile", "four_tiles", "wide"] {
        let meta = golden(name);
        let image = Arc::new(embed(&vision, name));
        let question = meta["messages"][0]["content"][1]["text"].as_str().unwrap();
        let chat = [ChatMessage::with_image("user", image, question)];
        let prompt = Prompt::from_chat(&model, &chat, true).unwrap();
        let want_ids: Vec<u32> = meta["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(prompt.token_ids(), want_ids, "{name}: prompt ids");

        let n_ctx = prompt.len() + 32;
        let opts = SessionOptions {
            n_ctx,
            kv_type: KvType::F32,
            n_ubatch: 16,
        };
        let mut session = Session::new(model.clone(), opts).unwrap();
        let logits = session
            .eval(&prompt.inputs(), Logits::All)
            .unwrap()
            .to_vec();
        let (shape, want) = read_npy_f32(&path(&format!("goldens/{name}.logits.npy")));
        assert_eq!(shape, [prompt.len(), model.n_vocab()], "{name}");
        let diff = max_abs_diff(&logits, &want);
        eprintln!(
            "{name}: logits max |diff| {diff:.2e} over {} positions",
            prompt.len()
        );
        assert!(diff < 1e-4, "{name}: logits max |diff| {diff}");

        // Greedy, no end-of-generation stop, as transformers' generate(do_sample=False).
        let expected: Vec<u32> = meta["greedy"]["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let last = &logits[logits.len() - model.n_vocab()..];
        let got = greedy_tokens(&mut session, last, expected.len());
        assert_eq!(got, expected, "{name}: greedy tokens");
    }
}

#[test]
fn an_mmproj_for_another_model_is_refused() {
    let model = text_model();
    let err = VisionModel::load_for(path("models/mmproj-other.f32.gguf"), &model).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidModel);
    assert!(err.to_string().contains("another model"), "{err}");
    // A text GGUF given as the mmproj, and an mmproj given as the text model.
    let err = VisionModel::load(path("models/tiny.f32.gguf"), &LoadOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let err =
        Model::load(path("models/mmproj-tiny.f32.gguf"), &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("clip"), "{err}");
}

#[test]
fn cancelling_the_encoder_returns_cancelled() {
    let model = text_model();
    let vision = VisionModel::load_for(path("models/mmproj-tiny.f32.gguf"), &model).unwrap();
    let pixels = pixels(&vision, "images/wide.png");
    assert_eq!(pixels.n_tiles(), 10);
    // Cancelled before it starts.
    let cancel = CancelHandle::new();
    cancel.cancel();
    let err = vision.encode(&pixels, &cancel).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    // Cancelled while encoding: after the first tile, the second stops at its first block.
    let cancel = CancelHandle::new();
    let mut tiles_done = 0;
    let err = vision
        .encode_with_progress(&pixels, &cancel, &mut |done, _| {
            tiles_done = done;
            cancel.cancel();
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(tiles_done, 1);
}

#[test]
fn cancelling_the_image_prefill_stops_at_the_next_micro_batch() {
    let model = text_model();
    let vision = VisionModel::load_for(path("models/mmproj-tiny.f32.gguf"), &model).unwrap();
    let pixels = pixels(&vision, "images/wide.png");
    let image = Arc::new(vision.encode(&pixels, &CancelHandle::new()).unwrap());
    let chat = [ChatMessage::with_image("user", image, "What is it?")];
    let prompt = Prompt::from_chat(&model, &chat, true).unwrap();
    let opts = SessionOptions {
        n_ctx: 256,
        kv_type: KvType::F32,
        n_ubatch: 16,
    };
    let mut session = Session::new(model.clone(), opts).unwrap();
    let cancel = CancelHandle::new();
    let err = session
        .eval_with_progress(&prompt.inputs(), Logits::Last, &cancel, &mut |done, _| {
            if done >= 16 {
                cancel.cancel();
            }
        })
        .unwrap_err();
    assert!(
        matches!(err, fennec_core::Error::Cancelled { evaluated: 16 }),
        "{err}"
    );
    assert_eq!(session.n_past(), 16);
}

#[test]
fn another_projector_type_or_a_missing_tensor_is_refused_at_load() {
    let src = path("models/mmproj-tiny.f32.gguf");
    let dir = fennec_tests::temp_dir("mmproj-edits");
    let other_type = dir.join("gemma3.gguf");
    fennec_tests::rewrite_gguf(
        &src,
        &other_type,
        |key, value| match key {
            "clip.projector_type" => Some(fennec_core::gguf::Value::String("gemma3".into())),
            _ => Some(value.clone()),
        },
        |_| true,
        &[],
    );
    let err = VisionModel::load(&other_type, &LoadOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("gemma3"), "{err}");
    let no_adapter = dir.join("no-adapter.gguf");
    fennec_tests::rewrite_gguf(
        &src,
        &no_adapter,
        |_, value| Some(value.clone()),
        |name| name != "mm.model.mlp.2.weight",
        &[],
    );
    let err = VisionModel::load(&no_adapter, &LoadOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidModel);
    assert!(err.to_string().contains("mm.model.mlp.2.weight"), "{err}");
}

#[test]
fn an_image_over_the_pixel_budget_is_refused() {
    let model = text_model();
    let vision = VisionModel::load_for(path("models/mmproj-tiny.f32.gguf"), &model).unwrap();
    let (bytes, w, h, layout) = decode("images/one_tile.png");
    let view = ImageView::packed(&bytes, w, h, layout).unwrap();
    let opts = fennec_core::vision::PreprocessOptions {
        max_pixels: w * h - 1,
        ..vision.preprocess_options()
    };
    let err = fennec_core::vision::preprocess(&view, &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidImage);
    assert!(err.to_string().contains("budget"), "{err}");
}

#[test]
fn inconsistent_image_embeddings_are_refused_not_sliced() {
    let model = text_model();
    let bad = fennec_core::vision::ImageEmbeddings {
        data: vec![0.0; 9 * 64],
        n_embd: 64,
        tokens_per_tile: 9,
        grid: (2, 2),
        has_global: true,
    };
    let chat = [ChatMessage::with_image("user", Arc::new(bad), "What?")];
    let err = Prompt::from_chat(&model, &chat, true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let narrow = fennec_core::vision::ImageEmbeddings {
        data: vec![0.0; 9 * 48],
        n_embd: 48,
        tokens_per_tile: 9,
        grid: (1, 1),
        has_global: false,
    };
    let chat = [ChatMessage::with_image("user", Arc::new(narrow), "What?")];
    let err = Prompt::from_chat(&model, &chat, true).unwrap_err();
    assert!(err.to_string().contains("64"), "{err}");
}
