//! Shared helpers for Fennec's integration tests: where the real models and Python are,
//! and the JSON summaries that are compared against reference tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use fennec_core::gguf::{Array, GgufFile, Value};
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

/// File name of the SmolLM2 test model inside the model cache.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A committed fixture, by path relative to `tests/fixtures`.
pub fn fixture(relative: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(relative)
}

/// Where `scripts/fetch-models.sh` puts models: `$FENNEC_MODELS`, else `~/.cache/fennec/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FENNEC_MODELS") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".cache/fennec/models")
}

/// The SmolLM2-135M-Instruct Q4_1 file. Panics with instructions when it was not fetched:
/// the tests that need it are part of the suite, never silently skipped.
pub fn smollm2_path() -> PathBuf {
    let path = models_dir().join(SMOLLM2_FILE);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models.sh (scripts/test.sh does) or set FENNEC_MODELS",
        path.display()
    );
    path
}

/// A Python interpreter with gguf-py importable: `$FENNEC_PYTHON`, else `python3`.
/// `None` only when no Python is installed at all.
pub fn python_with_gguf() -> Option<PathBuf> {
    let python: PathBuf = std::env::var_os("FENNEC_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| "python3".into());
    let status = Command::new(&python)
        .arg("-c")
        .arg("import gguf, numpy")
        .status();
    match status {
        Err(_) => None,
        Ok(s) => {
            assert!(
                s.success(),
                "{} cannot import gguf/numpy: run scripts/test.sh (it installs them) or set FENNEC_PYTHON",
                python.display()
            );
            Some(python)
        }
    }
}

/// Runs `tests/fixtures/gguf/dump_gguf_py.py` on `gguf` and parses its JSON.
pub fn dump_with_gguf_py(python: &Path, gguf: &Path) -> Json {
    let out = Command::new(python)
        .arg(fixture("gguf/dump_gguf_py.py"))
        .arg(gguf)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "gguf-py failed to read {}: {}",
        gguf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("gguf-py dump is JSON")
}

/// Fennec's view of a file in the format of `dump_gguf_py.py`.
pub fn gguf_summary(file: &GgufFile) -> Json {
    let header = file.header();
    let metadata: Map<String, Json> = file
        .metadata()
        .iter()
        .map(|(k, v)| (k.to_string(), value_summary(v)))
        .collect();
    let tensors: Vec<Json> = file
        .tensor_infos()
        .iter()
        .map(|t| {
            json!({"name": t.name, "type": t.ty.name(), "dims": t.dims,
                   "offset": t.offset, "bytes": t.size})
        })
        .collect();
    json!({"version": header.version, "alignment": header.alignment,
           "data_offset": header.data_offset, "metadata": metadata, "tensors": tensors})
}

const HEAD: usize = 8;

fn value_summary(v: &Value) -> Json {
    let (ty, value) = match v {
        Value::U8(x) => ("u8", json!(x)),
        Value::I8(x) => ("i8", json!(x)),
        Value::U16(x) => ("u16", json!(x)),
        Value::I16(x) => ("i16", json!(x)),
        Value::U32(x) => ("u32", json!(x)),
        Value::I32(x) => ("i32", json!(x)),
        Value::F32(x) => ("f32", json!(f64::from(*x))),
        Value::Bool(x) => ("bool", json!(x)),
        Value::String(x) => ("string", json!(x)),
        Value::U64(x) => ("u64", json!(x)),
        Value::I64(x) => ("i64", json!(x)),
        Value::F64(x) => ("f64", json!(x)),
        Value::Array(a) => return array_summary(a),
    };
    json!({"type": ty, "value": value})
}

fn array_summary(a: &Array) -> Json {
    let mut hash = Sha256::new();
    macro_rules! numeric {
        ($v:expr, $conv:expr) => {{
            for x in $v.iter() {
                hash.update(x.to_le_bytes());
            }
            $v.iter().take(HEAD).map($conv).collect::<Vec<Json>>()
        }};
    }
    let head: Vec<Json> = match a {
        Array::U8(v) => numeric!(v, |x| json!(x)),
        Array::I8(v) => numeric!(v, |x| json!(x)),
        Array::U16(v) => numeric!(v, |x| json!(x)),
        Array::I16(v) => numeric!(v, |x| json!(x)),
        Array::U32(v) => numeric!(v, |x| json!(x)),
        Array::I32(v) => numeric!(v, |x| json!(x)),
        Array::F32(v) => numeric!(v, |x| json!(f64::from(*x))),
        Array::U64(v) => numeric!(v, |x| json!(x)),
        Array::I64(v) => numeric!(v, |x| json!(x)),
        Array::F64(v) => numeric!(v, |x| json!(x)),
        Array::Bool(v) => {
            for &b in v {
                hash.update([u8::from(b)]);
            }
            v.iter().take(HEAD).map(|x| json!(x)).collect()
        }
        Array::String(v) => {
            for s in v {
                hash.update(s.as_bytes());
                hash.update([0]);
            }
            v.iter().take(HEAD).map(|x| json!(x)).collect()
        }
        Array::Array(v) => {
            return json!({"type": "array", "element_type": "array", "len": v.len()});
        }
    };
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    json!({"type": "array", "element_type": a.element_type().name(), "len": a.len(),
           "head": head, "sha256": digest})
}

/// Writes a tiny random `llama` model (F32 weights, 2 layers, GQA, vocabulary of 256
/// byte-ish tokens) to `path`, with `edit` applied to the writer before the tensors are added.
pub fn write_tiny_llama(
    path: &Path,
    edit: impl FnOnce(&mut fennec_core::gguf::GgufWriter<'static>),
) {
    use fennec_core::gguf::{GgmlType, GgufWriter, TensorData};
    use fennec_core::tensor_names::{
        blk, ATTN_K, ATTN_NORM, ATTN_OUTPUT, ATTN_Q, ATTN_V, FFN_DOWN, FFN_GATE, FFN_NORM, FFN_UP,
        OUTPUT_NORM, TOKEN_EMBD,
    };
    use fennec_quant::rng::Rng;
    let (d, ff, layers, vocab, heads, kv_heads) = (64u64, 128u64, 2, 256u64, 4u32, 2u32);
    let head_dim = d / u64::from(heads);
    let mut w: GgufWriter<'static> = GgufWriter::new();
    w.add("general.architecture", "llama").unwrap();
    w.add("llama.embedding_length", d as u32).unwrap();
    w.add("llama.block_count", layers).unwrap();
    w.add("llama.feed_forward_length", ff as u32).unwrap();
    w.add("llama.attention.head_count", heads).unwrap();
    w.add("llama.attention.head_count_kv", kv_heads).unwrap();
    w.add("llama.attention.layer_norm_rms_epsilon", 1e-5f32)
        .unwrap();
    w.add("llama.context_length", 256u32).unwrap();
    w.add("tokenizer.ggml.model", "gpt2").unwrap();
    w.add("tokenizer.ggml.pre", "default").unwrap();
    let tokens: Vec<String> = (0..vocab).map(|i| format!("t{i}")).collect();
    w.add_array("tokenizer.ggml.tokens", tokens).unwrap();
    w.add_array("tokenizer.ggml.merges", Vec::<String>::new())
        .unwrap();
    edit(&mut w);
    let mut rng = Rng::xorshift64(0x1234_5678);
    let mut tensor = |w: &mut GgufWriter<'static>, name: String, dims: &[u64], scale: f32| {
        let n: u64 = dims.iter().product();
        let bytes: Vec<u8> = (0..n)
            .flat_map(|_| ((rng.next_f32() - 0.5) * scale).to_le_bytes())
            .collect();
        w.add_tensor(name, GgmlType::F32, dims, TensorData::Bytes(bytes.into()))
            .unwrap();
    };
    let kv = u64::from(kv_heads) * head_dim;
    tensor(&mut w, TOKEN_EMBD.into(), &[d, vocab], 1.0);
    tensor(&mut w, OUTPUT_NORM.into(), &[d], 2.0);
    for l in 0..layers as usize {
        tensor(&mut w, blk(l, ATTN_NORM), &[d], 2.0);
        tensor(&mut w, blk(l, ATTN_Q), &[d, d], 0.5);
        tensor(&mut w, blk(l, ATTN_K), &[d, kv], 0.5);
        tensor(&mut w, blk(l, ATTN_V), &[d, kv], 0.5);
        tensor(&mut w, blk(l, ATTN_OUTPUT), &[d, d], 0.5);
        tensor(&mut w, blk(l, FFN_NORM), &[d], 2.0);
        tensor(&mut w, blk(l, FFN_GATE), &[d, ff], 0.5);
        tensor(&mut w, blk(l, FFN_UP), &[d, ff], 0.5);
        tensor(&mut w, blk(l, FFN_DOWN), &[ff, d], 0.5);
    }
    w.write_to_path(path).unwrap();
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fennec-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads a NumPy `.npy` file (format 1.0, C order) whose dtype descriptor is `descr`
/// (`"<f4"`, `"|u1"`): (shape, data bytes).
pub fn read_npy_raw(path: &Path, descr: &str) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).expect("ASCII header");
    assert!(
        header.contains(&format!("'{descr}'")),
        "{}: not {descr}: {header}",
        path.display()
    );
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape");
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("dim"))
        .collect();
    (shape, bytes[10 + header_len..].to_vec())
}

/// Reads a little-endian float32 NumPy `.npy` file (format 1.0, C order): (shape, data).
pub fn read_npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let (shape, bytes) = read_npy_raw(path, "<f4");
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}",
        path.display()
    );
    (shape, data)
}

/// Reads a uint8 NumPy `.npy` file: (shape, data).
pub fn read_npy_u8(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let (shape, data) = read_npy_raw(path, "|u1");
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}",
        path.display()
    );
    (shape, data)
}

/// Copies the GGUF at `src` to `dst`, letting `edit_key` change (`Some`) or drop (`None`)
/// each metadata value and `keep_tensor` drop tensors; `extra` adds keys at the end.
pub fn rewrite_gguf(
    src: &Path,
    dst: &Path,
    edit_key: impl Fn(&str, &Value) -> Option<Value>,
    keep_tensor: impl Fn(&str) -> bool,
    extra: &[(&str, Value)],
) {
    use fennec_core::gguf::{GgufWriter, TensorData};
    let source = GgufFile::open(src).unwrap();
    let mut w = GgufWriter::new();
    for (key, value) in source.metadata().iter() {
        if let Some(v) = edit_key(key, value) {
            w.add(key, v).unwrap();
        }
    }
    for (key, value) in extra {
        w.add(*key, value.clone()).unwrap();
    }
    for info in source.tensor_infos() {
        if !keep_tensor(&info.name) {
            continue;
        }
        let data = source.tensor(&info.name).unwrap().data;
        w.add_tensor(
            info.name.clone(),
            info.ty,
            &info.dims,
            TensorData::Bytes(data.to_vec().into()),
        )
        .unwrap();
    }
    w.write_to_path(dst).unwrap();
}

/// A committed JSON fixture, by path relative to `tests/fixtures`.
pub fn fixture_json(relative: &str) -> Json {
    let path = fixture(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON array of token ids.
pub fn json_ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .expect("an array of ids")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

/// Largest |a − b| over two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `n` greedy tokens after a prompt whose last logits are `logits`, one token per eval and
/// no end-of-generation stop (transformers' `generate(do_sample=False)` with a fixed length).
pub fn greedy_tokens(session: &mut fennec_core::Session, logits: &[f32], n: usize) -> Vec<u32> {
    use fennec_core::{Input, Logits};
    let mut last = logits.to_vec();
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        let next = fennec_core::sampler::argmax(&last);
        got.push(next);
        last = session
            .eval(&[Input::Tokens(&[next])], Logits::Last)
            .unwrap()
            .to_vec();
    }
    got
}

/// Where ALSA's own configuration lives (Debian's `libasound2-data`).
const ALSA_CONF: &str = "/usr/share/alsa/alsa.conf";

/// An `ALSA_CONFIG_PATH` value that makes ALSA's `file` plugin the default capture device,
/// playing the raw samples of `raw` (in whatever format the capture asks for: the plugin
/// converts nothing), with a null playback device: microphone tests without a sound card.
/// The configuration is written into `dir`.
pub fn alsa_capture_from_file(dir: &Path, raw: &Path) -> String {
    assert!(
        Path::new(ALSA_CONF).exists(),
        "{ALSA_CONF} missing: apt-get install alsa-utils (libasound2-data)"
    );
    let conf = dir.join("asound.conf");
    std::fs::write(
        &conf,
        format!(
            "pcm.feed {{ type file slave.pcm \"null\" file \"/dev/null\" infile \"{}\" format \"raw\"\n\
             hint {{ show on description \"test capture\" }} }}\n\
             pcm.!default {{ type asym playback.pcm \"null\" capture.pcm \"feed\" }}\n",
            raw.display()
        ),
    )
    .unwrap();
    format!("{ALSA_CONF}:{}", conf.display())
}
