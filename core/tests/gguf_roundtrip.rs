//! Write → read round trips through the GGUF writer and reader.

use fennec_core::gguf::{Array, GgmlType, GgufError, GgufFile, GgufWriter, TensorData, Value};

fn every_value_type(w: &mut GgufWriter<'_>) {
    w.add("t.u8", 200u8).unwrap();
    w.add("t.i8", -100i8).unwrap();
    w.add("t.u16", 60000u16).unwrap();
    w.add("t.i16", -30000i16).unwrap();
    w.add("t.u32", 4_000_000_000u32).unwrap();
    w.add("t.i32", -2_000_000_000i32).unwrap();
    w.add("t.f32", 1.5e-3f32).unwrap();
    w.add("t.bool", true).unwrap();
    w.add("t.string", "héllo 🦊").unwrap();
    w.add("t.u64", u64::MAX).unwrap();
    w.add("t.i64", i64::MIN).unwrap();
    w.add("t.f64", -2.25e300f64).unwrap();
    w.add_array("t.arr.u8", vec![1u8, 2, 255]).unwrap();
    w.add_array("t.arr.i8", vec![-1i8, 7]).unwrap();
    w.add_array("t.arr.u16", vec![1u16, 65535]).unwrap();
    w.add_array("t.arr.i16", vec![-7i16]).unwrap();
    w.add_array("t.arr.u32", vec![1u32, 2, 3]).unwrap();
    w.add_array("t.arr.i32", vec![-1i32, 0, 1]).unwrap();
    w.add_array("t.arr.f32", vec![0.5f32, -0.0, f32::INFINITY])
        .unwrap();
    w.add_array("t.arr.bool", vec![true, false, true]).unwrap();
    w.add_array(
        "t.arr.string",
        vec!["a".to_string(), String::new(), "ü".into()],
    )
    .unwrap();
    w.add_array("t.arr.u64", vec![u64::MAX, 0]).unwrap();
    w.add_array("t.arr.i64", vec![i64::MIN, 5]).unwrap();
    w.add_array("t.arr.f64", vec![1e-300f64, 2.0]).unwrap();
    w.add_array("t.arr.empty", Vec::<u32>::new()).unwrap();
    w.add_array(
        "t.arr.nested",
        vec![
            Array::from(vec![1i32, 2]),
            Array::from(vec!["x".to_string()]),
        ],
    )
    .unwrap();
}

#[test]
fn every_metadata_type_and_several_tensor_types_round_trip() {
    let f32_data: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let q4_0_data: Vec<u8> = (0..2 * 18 * 2).map(|i| i as u8).collect();
    let q4_k_data: Vec<u8> = (0..144).map(|i| (i * 7) as u8).collect();
    let f16_data = vec![0x3cu8; 2 * 5];
    let mut w = GgufWriter::new();
    every_value_type(&mut w);
    w.add_tensor(
        "a.f32",
        GgmlType::F32,
        &[3, 4],
        TensorData::Bytes(f32_data.clone().into()),
    )
    .unwrap();
    w.add_tensor(
        "b.q4_0",
        GgmlType::Q4_0,
        &[64, 2],
        TensorData::Bytes(q4_0_data.clone().into()),
    )
    .unwrap();
    w.add_tensor(
        "c.q4_k",
        GgmlType::Q4K,
        &[256],
        TensorData::Bytes(q4_k_data.clone().into()),
    )
    .unwrap();
    w.add_tensor(
        "d.f16",
        GgmlType::F16,
        &[5, 1, 1],
        TensorData::Bytes(f16_data.clone().into()),
    )
    .unwrap();
    w.add_tensor("e.zeros", GgmlType::Q8_0, &[32, 3], TensorData::Zeros)
        .unwrap();

    let gguf = GgufFile::from_vec(w.to_vec()).unwrap();
    assert_eq!(gguf.version(), 3);
    let md = gguf.metadata();
    assert_eq!(md.len(), 26);
    assert_eq!(md.get_u8("t.u8").unwrap(), 200);
    assert_eq!(md.get_i8("t.i8").unwrap(), -100);
    assert_eq!(md.get_u16("t.u16").unwrap(), 60000);
    assert_eq!(md.get_i16("t.i16").unwrap(), -30000);
    assert_eq!(md.get_u32("t.u32").unwrap(), 4_000_000_000);
    assert_eq!(md.get_i32("t.i32").unwrap(), -2_000_000_000);
    assert_eq!(md.get_f32("t.f32").unwrap(), 1.5e-3);
    assert!(md.get_bool("t.bool").unwrap());
    assert_eq!(md.get_str("t.string").unwrap(), "héllo 🦊");
    assert_eq!(md.get_u64("t.u64").unwrap(), u64::MAX);
    assert_eq!(md.get_i64("t.i64").unwrap(), i64::MIN);
    assert_eq!(md.get_f64("t.f64").unwrap(), -2.25e300);
    assert_eq!(md.get_array_of::<u8>("t.arr.u8").unwrap(), &[1, 2, 255]);
    assert_eq!(md.get_array_of::<i8>("t.arr.i8").unwrap(), &[-1, 7]);
    assert_eq!(md.get_array_of::<u16>("t.arr.u16").unwrap(), &[1, 65535]);
    assert_eq!(md.get_array_of::<i16>("t.arr.i16").unwrap(), &[-7]);
    assert_eq!(md.get_array_of::<u32>("t.arr.u32").unwrap(), &[1, 2, 3]);
    assert_eq!(md.get_array_of::<i32>("t.arr.i32").unwrap(), &[-1, 0, 1]);
    assert_eq!(
        md.get_array_of::<f32>("t.arr.f32").unwrap(),
        &[0.5, -0.0, f32::INFINITY]
    );
    assert_eq!(
        md.get_array_of::<bool>("t.arr.bool").unwrap(),
        &[true, false, true]
    );
    assert_eq!(
        md.get_array_of::<String>("t.arr.string").unwrap(),
        &["a", "", "ü"]
    );
    assert_eq!(md.get_array_of::<u64>("t.arr.u64").unwrap(), &[u64::MAX, 0]);
    assert_eq!(md.get_array_of::<i64>("t.arr.i64").unwrap(), &[i64::MIN, 5]);
    assert_eq!(md.get_array_of::<f64>("t.arr.f64").unwrap(), &[1e-300, 2.0]);
    assert!(md.get_array_of::<u32>("t.arr.empty").unwrap().is_empty());
    let Array::Array(nested) = md.get_array("t.arr.nested").unwrap() else {
        panic!("nested array lost its type")
    };
    assert_eq!(nested[0], Array::I32(vec![1, 2]));
    assert_eq!(nested[1], Array::String(vec!["x".into()]));

    let t = gguf.tensor("a.f32").unwrap();
    assert_eq!(
        (t.info.ty, t.info.dims.as_slice(), t.data),
        (GgmlType::F32, &[3u64, 4][..], &f32_data[..])
    );
    assert_eq!(gguf.tensor("b.q4_0").unwrap().data, &q4_0_data[..]);
    assert_eq!(gguf.tensor("c.q4_k").unwrap().data, &q4_k_data[..]);
    assert_eq!(gguf.tensor("d.f16").unwrap().info.dims, vec![5, 1, 1]);
    assert_eq!(gguf.tensor("d.f16").unwrap().data, &f16_data[..]);
    let zeros = gguf.tensor("e.zeros").unwrap();
    assert_eq!(zeros.data.len(), 3 * 34);
    assert!(zeros.data.iter().all(|&b| b == 0));
    for t in gguf.tensor_infos() {
        assert_eq!(t.offset % 32, 0, "{} misaligned", t.name);
    }
    assert!(gguf.tensor("missing").is_none());
}

#[test]
fn custom_alignment_is_honoured() {
    let mut w = GgufWriter::new();
    w.add("general.alignment", 64u32).unwrap();
    w.add_tensor(
        "x",
        GgmlType::F32,
        &[3],
        TensorData::Bytes(vec![1u8; 12].into()),
    )
    .unwrap();
    w.add_tensor(
        "y",
        GgmlType::F32,
        &[5],
        TensorData::Bytes(vec![2u8; 20].into()),
    )
    .unwrap();
    let gguf = GgufFile::from_vec(w.to_vec()).unwrap();
    assert_eq!(gguf.header().alignment, 64);
    assert_eq!(gguf.header().data_offset % 64, 0);
    assert_eq!(gguf.tensor("y").unwrap().info.offset, 64);
    assert_eq!(gguf.tensor("y").unwrap().data, &[2u8; 20]);
}

#[test]
fn file_round_trip_through_mmap() {
    let dir = std::env::temp_dir().join(format!("fennec-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rt.gguf");
    let mut w = GgufWriter::new();
    every_value_type(&mut w);
    w.add_tensor(
        "w",
        GgmlType::Q8_0,
        &[64, 2],
        TensorData::Bytes(vec![9u8; 136].into()),
    )
    .unwrap();
    w.add_tensor("hole", GgmlType::F32, &[1024], TensorData::Zeros)
        .unwrap();
    w.write_to_path(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), w.to_vec());
    let gguf = GgufFile::open(&path).unwrap();
    assert_eq!(gguf.tensor("w").unwrap().data, &[9u8; 136]);
    assert!(gguf.tensor("hole").unwrap().data.iter().all(|&b| b == 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn typed_accessors_name_key_and_types() {
    let mut w = GgufWriter::new();
    w.add("llama.block_count", 30u32).unwrap();
    w.add_array("tokenizer.ggml.tokens", vec!["a".to_string()])
        .unwrap();
    let gguf = GgufFile::from_vec(w.to_vec()).unwrap();
    let md = gguf.metadata();
    let err = md.get_u64("llama.block_count").unwrap_err().to_string();
    assert!(
        err.contains("llama.block_count") && err.contains("u32") && err.contains("u64"),
        "{err}"
    );
    let err = md
        .get_array_of::<i32>("tokenizer.ggml.tokens")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("array of string") && err.contains("array of i32"),
        "{err}"
    );
    let err = md.get_u32("llama.nope").unwrap_err().to_string();
    assert!(
        err.contains("llama.nope") && err.contains("missing"),
        "{err}"
    );
    assert_eq!(md.get_uint("llama.block_count").unwrap(), 30);
    assert_eq!(md.get_opt_scalar::<u32>("absent").unwrap(), None);
    assert!(matches!(
        gguf.require_tensor("nope"),
        Err(GgufError::MissingTensor(_))
    ));
    assert_eq!(md.get("llama.block_count"), Some(&Value::U32(30)));
}

#[test]
fn writer_refuses_inconsistent_input() {
    let mut w = GgufWriter::new();
    w.add("k", 1u8).unwrap();
    assert!(matches!(w.add("k", 2u8), Err(GgufError::DuplicateKey(_))));
    assert!(matches!(
        w.add("general.alignment", 48u32),
        Err(GgufError::BadAlignment(48))
    ));
    assert!(matches!(
        w.add("general.alignment", 64u64),
        Err(GgufError::WrongType { .. })
    ));
    let short = TensorData::Bytes(vec![0u8; 10].into());
    assert!(matches!(
        w.add_tensor("t", GgmlType::F32, &[3], short),
        Err(GgufError::BadTensorData { .. })
    ));
    assert!(matches!(
        w.add_tensor("t", GgmlType::Q4_0, &[33], TensorData::Zeros),
        Err(GgufError::PartialBlock { .. })
    ));
    w.add_tensor("t", GgmlType::F32, &[1], TensorData::Zeros)
        .unwrap();
    assert!(matches!(
        w.add_tensor("t", GgmlType::F32, &[1], TensorData::Zeros),
        Err(GgufError::DuplicateTensor(_))
    ));
}
