//! Fennec's GGUF reader and writer against gguf-py, the reference implementation.

use fennec_core::gguf::{Array, GgmlType, GgufFile, GgufWriter, TensorData};
use fennec_tests::{dump_with_gguf_py, fixture, gguf_summary, python_with_gguf, smollm2_path};

/// Compares two summaries key by key so a mismatch names the key, not the whole document.
fn assert_same(ours: &serde_json::Value, reference: &serde_json::Value) {
    for field in ["version", "alignment", "data_offset"] {
        assert_eq!(ours[field], reference[field], "{field}");
    }
    let (o, r) = (
        ours["metadata"].as_object().unwrap(),
        reference["metadata"].as_object().unwrap(),
    );
    assert_eq!(
        o.keys().collect::<Vec<_>>(),
        r.keys().collect::<Vec<_>>(),
        "metadata keys"
    );
    for (key, value) in r {
        assert_eq!(&o[key], value, "metadata {key}");
    }
    let (o, r) = (
        ours["tensors"].as_array().unwrap(),
        reference["tensors"].as_array().unwrap(),
    );
    assert_eq!(o.len(), r.len(), "tensor count");
    for (a, b) in o.iter().zip(r) {
        assert_eq!(a, b, "tensor {}", b["name"]);
    }
}

#[test]
fn smollm2_matches_the_committed_gguf_py_dump() {
    let file = GgufFile::open(smollm2_path()).unwrap();
    assert_eq!(file.tensor_infos().len(), 272);
    assert_eq!(file.metadata().len(), 33);
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("gguf/smollm2-135m-instruct-q4_1.gguf-py.json")).unwrap(),
    )
    .unwrap();
    assert_same(&gguf_summary(&file), &reference);
    // Every tensor's bytes are inside the mapping, and the last ends at the data section's end.
    let end = file
        .tensor_infos()
        .iter()
        .map(|t| t.offset + t.size)
        .max()
        .unwrap();
    assert!(end <= file.header().data_size);
    assert_eq!(
        file.tensor("token_embd.weight").unwrap().info.ty,
        GgmlType::Q8_0
    );
}

#[test]
fn a_file_fennec_writes_reads_the_same_in_gguf_py() {
    let Some(python) = python_with_gguf() else {
        eprintln!("SKIPPED: no python3 on this machine");
        return;
    };
    let mut w = GgufWriter::new();
    w.add("general.architecture", "llama").unwrap();
    w.add("general.alignment", 64u32).unwrap();
    w.add("k.u8", 7u8).unwrap();
    w.add("k.i8", -7i8).unwrap();
    w.add("k.u16", 65535u16).unwrap();
    w.add("k.i16", -32768i16).unwrap();
    w.add("k.u32", u32::MAX).unwrap();
    w.add("k.i32", i32::MIN).unwrap();
    w.add("k.f32", 0.1f32).unwrap();
    w.add("k.bool", false).unwrap();
    w.add("k.str", "Ünïcødé 🦊 \"quoted\"").unwrap();
    w.add("k.u64", u64::MAX).unwrap();
    w.add("k.i64", i64::MIN).unwrap();
    w.add("k.f64", std::f64::consts::PI).unwrap();
    w.add_array("a.u8", vec![0u8, 255]).unwrap();
    w.add_array("a.i8", vec![-128i8, 127]).unwrap();
    w.add_array("a.u16", vec![1u16, 2]).unwrap();
    w.add_array("a.i16", vec![-1i16]).unwrap();
    w.add_array("a.u32", (0..100u32).collect::<Vec<_>>())
        .unwrap();
    w.add_array("a.i32", vec![-5i32, 5]).unwrap();
    w.add_array("a.f32", vec![0.25f32, -1e-8]).unwrap();
    w.add_array("a.bool", vec![true, false]).unwrap();
    w.add_array("a.str", vec!["x".to_string(), "".into(), "日本".into()])
        .unwrap();
    w.add_array("a.u64", vec![u64::MAX]).unwrap();
    w.add_array("a.i64", vec![i64::MAX]).unwrap();
    w.add_array("a.f64", vec![1.0f64 / 3.0]).unwrap();
    w.add_array(
        "a.nested",
        vec![Array::from(vec![1u8]), Array::from(vec![2u8])],
    )
    .unwrap();
    let f32_bytes: Vec<u8> = (0..16)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    w.add_tensor(
        "t.f32",
        GgmlType::F32,
        &[4, 4],
        TensorData::Bytes(f32_bytes.into()),
    )
    .unwrap();
    w.add_tensor(
        "t.f16",
        GgmlType::F16,
        &[3],
        TensorData::Bytes(vec![0, 60, 0, 64, 0, 66].into()),
    )
    .unwrap();
    w.add_tensor(
        "t.q4_0",
        GgmlType::Q4_0,
        &[64, 3],
        TensorData::Bytes(vec![0x11; 108].into()),
    )
    .unwrap();
    w.add_tensor("t.q8_0", GgmlType::Q8_0, &[32, 2, 2], TensorData::Zeros)
        .unwrap();
    w.add_tensor(
        "t.q6_k",
        GgmlType::Q6K,
        &[256, 1, 1, 2],
        TensorData::Bytes(vec![3; 420].into()),
    )
    .unwrap();
    w.add_tensor(
        "t.i32",
        GgmlType::I32,
        &[5],
        TensorData::Bytes(vec![1; 20].into()),
    )
    .unwrap();

    let dir = std::env::temp_dir().join(format!("fennec-gguf-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("written.gguf");
    w.write_to_path(&path).unwrap();
    let reference = dump_with_gguf_py(&python, &path);
    let ours = GgufFile::open(&path).unwrap();
    assert_same(&gguf_summary(&ours), &reference);
    assert_eq!(reference["tensors"].as_array().unwrap().len(), 6);
    assert_eq!(
        reference["metadata"]["k.str"]["value"],
        "Ünïcødé 🦊 \"quoted\""
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
