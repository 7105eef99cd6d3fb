//! Fuzzes image-projector loading and use: the fuzzer's bytes bend the tiny Llama 4 mmproj of
//! the vision fixtures (metadata values changed or dropped, tensors dropped, re-typed or
//! re-shaped with data to match), then the file is loaded and, when it loads, an image of a
//! fuzzer-chosen size is preprocessed and encoded. Anything may fail with an error; nothing
//! may panic or abort.
#![no_main]

use fennec_core::gguf::{GgmlType, GgufFile, GgufWriter, TensorData, Value};
use fennec_core::vision::{ImageView, PixelLayout, Rotation, VisionModel};
use fennec_core::{CancelHandle, LoadOptions};
use fennec_fuzz::Choices;
use libfuzzer_sys::fuzz_target;

/// The F16 tiny projector (149 KB): every tensor type the loader treats differently.
static MMPROJ: &[u8] =
    include_bytes!("../../tests/fixtures/llama4_vision/models/mmproj-tiny.f16.gguf");

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let Ok(bytes) = bent_mmproj(&mut c) else {
        return;
    };
    let Ok(file) = GgufFile::from_vec(bytes) else {
        return;
    };
    let Ok(vision) = VisionModel::from_file(file, &LoadOptions::with_threads(1)) else {
        return;
    };
    let (w, h) = (
        usize::from(c.byte() % 200) + 1,
        usize::from(c.byte() % 200) + 1,
    );
    let rgb = vec![c.byte(); w * h * 3];
    let Ok(view) = ImageView::packed(&rgb, w, h, PixelLayout::Rgb8) else {
        return;
    };
    let view = view.oriented(c.pick(&[Rotation::None, Rotation::Cw90]), c.byte() & 1 == 0);
    if let Ok(pixels) = vision.preprocess(&view) {
        let _ = vision.encode(&pixels, &CancelHandle::new());
    }
});

/// The fixture with fuzzer-chosen edits.
fn bent_mmproj(c: &mut Choices<'_>) -> Result<Vec<u8>, fennec_core::gguf::GgufError> {
    let src = GgufFile::from_vec(MMPROJ.to_vec()).expect("fixture parses");
    let mut w = GgufWriter::new();
    for (key, value) in src.metadata().iter() {
        match c.byte() {
            0 => continue, // dropped
            1 => w.add(key, Value::U32(c.u32()))?,
            2 => w.add(key, Value::U32(c.u32() % 64))?,
            3 => w.add(key, Value::F32(f32::from_bits(c.u32())))?,
            4 => w.add(key, Value::String(c.string(12)))?,
            _ => w.add(key, value.clone())?,
        };
    }
    for info in src.tensor_infos() {
        let data = src.tensor(&info.name).expect("listed tensor").data;
        match c.byte() {
            0 => continue, // dropped
            1 | 2 => {
                // Another type or row length, zero-filled at the size that takes.
                let ty = c.pick(&[GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4K]);
                let mut dims = info.dims.clone();
                if let Some(d) = dims.first_mut() {
                    *d = u64::from(c.pick(&[1u32, 16, 32, 64, 128, 256]));
                }
                w.add_tensor(info.name.clone(), ty, &dims, TensorData::Zeros)?;
            }
            _ => {
                w.add_tensor(
                    info.name.clone(),
                    info.ty,
                    &info.dims,
                    TensorData::Bytes(data.into()),
                )?;
            }
        }
    }
    w.try_to_vec()
}
