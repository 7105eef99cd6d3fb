//! What the fuzz targets share: [`Choices`], which turns the fuzzer's bytes into decisions,
//! and [`tiny_model`], which writes a tiny llama-family GGUF in memory whose metadata,
//! vocabulary, chat template and tensor table those decisions bend.
//!
//! Every decision reads one byte, and a zero byte (also what an exhausted input reads)
//! means "as a valid model has it", so the empty input is a valid model and the fuzzer
//! starts from there. Every dimension stays tiny, so nothing the harness builds is large;
//! the metadata may still claim anything.

use fennec_core::gguf::{Array, GgmlType, GgufError, GgufWriter, TensorData, Value};

/// Decisions read from the fuzzer's bytes, one byte each; zero once the input runs out.
#[derive(Clone, Debug)]
pub struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    /// Decisions from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next byte (0 at the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// One of `options`; the first when the byte is 0.
    pub fn pick<T: Clone>(&mut self, options: &[T]) -> T {
        options[usize::from(self.byte()) % options.len()].clone()
    }

    /// A little-endian u32 from the next four bytes.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A string of at most `max` bytes: a length byte, then the bytes (invalid UTF-8
    /// replaced).
    pub fn string(&mut self, max: usize) -> String {
        let len = usize::from(self.byte()).min(max);
        let bytes: Vec<u8> = (0..len).map(|_| self.byte()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The transformer shape the tensors are written with (the metadata may claim another).
#[derive(Clone, Copy, Debug)]
struct Shape {
    d: u64,
    ff: u64,
    layers: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u64,
    n_expert: u64,
}

/// Which architecture the file is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arch {
    Llama,
    Llama4,
    /// An architecture string the fuzzer chose.
    Other,
}

/// A tiny llama (or llama4) GGUF, bent by `c`; `Err` when the writer itself refuses what
/// was asked (a quantized type whose rows do not fill a block, a repeated name, …).
pub fn tiny_model(c: &mut Choices<'_>) -> Result<Vec<u8>, GgufError> {
    let arch = c.pick(&[Arch::Llama, Arch::Llama, Arch::Llama4, Arch::Other]);
    let arch_name = match arch {
        Arch::Llama => "llama".to_string(),
        Arch::Llama4 => "llama4".to_string(),
        Arch::Other => c.string(12),
    };
    let shape = choose_shape(c, arch);
    let mut w = GgufWriter::new();
    put(
        c,
        &mut w,
        "general.architecture",
        Value::String(arch_name.clone()),
    )?;
    let prefix = if arch == Arch::Other {
        "llama"
    } else {
        &arch_name
    };
    for (key, value) in hparams(&shape, arch) {
        put(c, &mut w, &format!("{prefix}.{key}"), value)?;
    }
    let n_vocab = vocabulary(c, &mut w)?;
    template(c, &mut w)?;
    tensors(c, &mut w, &shape, arch, n_vocab)?;
    w.try_to_vec()
}

fn choose_shape(c: &mut Choices<'_>, arch: Arch) -> Shape {
    let d = c.pick(&[16u64, 8, 32, 12, 4]);
    let heads = c.pick(&[2u32, 1, 4, 3]);
    let kv_heads = c.pick(&[1u32, 2, heads, 3]);
    let head_dim = c.pick(&[d / u64::from(heads), 4, 8, 6]);
    // Llama 4 needs four layers to reach its first NoPE layer.
    let layers = c.pick(&[if arch == Arch::Llama4 { 4 } else { 2 }, 1, 3, 4]);
    Shape {
        d,
        ff: c.pick(&[32u64, 16, 8, 24]),
        layers,
        heads,
        kv_heads,
        head_dim,
        n_expert: c.pick(&[2u64, 1, 4]),
    }
}

/// The `{arch}.*` keys a valid file of `shape` has (before the fuzzer bends them).
fn hparams(s: &Shape, arch: Arch) -> Vec<(&'static str, Value)> {
    let mut keys = vec![
        ("embedding_length", Value::U32(s.d as u32)),
        ("block_count", Value::U32(s.layers)),
        ("feed_forward_length", Value::U32(s.ff as u32)),
        ("attention.head_count", Value::U32(s.heads)),
        ("attention.head_count_kv", Value::U32(s.kv_heads)),
        ("attention.key_length", Value::U32(s.head_dim as u32)),
        ("attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("context_length", Value::U32(64)),
        ("rope.freq_base", Value::F32(10000.0)),
        ("rope.dimension_count", Value::U32(s.head_dim as u32)),
    ];
    if arch == Arch::Llama4 {
        keys.extend([
            ("expert_count", Value::U32(s.n_expert as u32)),
            ("expert_used_count", Value::U32(1)),
            ("expert_feed_forward_length", Value::U32(s.ff as u32)),
            ("interleave_moe_layer_step", Value::U32(2)),
            // A small chunk so chunked layers keep a ring shorter than the context.
            ("attention.chunk_size", Value::U32(4)),
            ("attention.temperature_length", Value::F32(4.0)),
        ]);
    }
    keys
}

/// Adds `key` with `value`, or with what the fuzzer puts instead: dropped, another number,
/// another type.
fn put(
    c: &mut Choices<'_>,
    w: &mut GgufWriter<'_>,
    key: &str,
    value: Value,
) -> Result<(), GgufError> {
    let value = match c.byte() % 16 {
        1 => return Ok(()),
        2 => Value::U32(u32::from(c.byte())),
        3 => Value::I32(-i32::from(c.byte())),
        4 => Value::U64(u64::MAX - u64::from(c.byte())),
        5 => Value::U32(c.u32()),
        6 => Value::F32(f32::from_bits(c.u32())),
        7 => Value::String(c.string(16)),
        8 => Value::Bool(c.byte() & 1 == 1),
        9 => Value::Array(Array::U32(vec![u32::from(c.byte()); 2])),
        10 => Value::U8(c.byte()),
        11 => Value::F64(f64::from(c.pick(&[
            f32::NAN,
            f32::INFINITY,
            -1.0,
            0.0,
            1e30,
        ]))),
        _ => value,
    };
    w.add(key, value)?;
    Ok(())
}

/// GPT-2's byte-level spelling of `b` (printable Latin-1 stands for itself, the rest is
/// shifted past U+00FF).
fn byte_char(b: u8, shifted: &mut u32) -> char {
    let printable = matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
    if printable {
        char::from(b)
    } else {
        let c = char::from_u32(256 + *shifted).unwrap_or('?');
        *shifted += 1;
        c
    }
}

/// Control tokens both vocabulary styles carry.
const SPECIALS: [&str; 4] = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"];

/// Writes the `tokenizer.ggml.*` keys (a byte-level BPE or a SentencePiece-style vocabulary,
/// then the fuzzer's extra tokens, merges and types); returns the number of tokens.
fn vocabulary(c: &mut Choices<'_>, w: &mut GgufWriter<'_>) -> Result<usize, GgufError> {
    let spm = c.byte() % 4 == 1;
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    let mut merges = Vec::new();
    if spm {
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        tokens.extend(["▁", "▁a", "▁the", "he", "llo"].map(String::from));
    } else {
        let mut shifted = 0;
        tokens.extend((0..=255u8).map(|b| byte_char(b, &mut shifted).to_string()));
        tokens.extend(["Ġt", "he", "Ġthe", "ll", "llo"].map(String::from));
        merges.extend(["Ġ t", "h e", "Ġt he", "l l", "ll o"].map(String::from));
    }
    for _ in 0..c.byte() % 8 {
        tokens.push(c.string(12));
    }
    for _ in 0..c.byte() % 8 {
        merges.push(c.string(12));
    }
    let n = tokens.len();
    let model = if spm { "llama" } else { "gpt2" };
    put(c, w, "tokenizer.ggml.model", Value::String(model.into()))?;
    let pre = c.pick(&["default", "smollm", "llama-bpe", "llama4", "gpt-2", "qwen2"]);
    put(c, w, "tokenizer.ggml.pre", Value::String(pre.into()))?;
    let types: Vec<i32> = (0..n)
        .map(|i| {
            if i < SPECIALS.len() {
                3
            } else if spm && i < 260 {
                6
            } else {
                1
            }
        })
        .map(|t| match c.byte() % 32 {
            1 => i32::from(c.byte() as i8),
            _ => t,
        })
        .collect();
    let scores: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
    put(
        c,
        w,
        "tokenizer.ggml.tokens",
        Value::Array(Array::String(tokens)),
    )?;
    put(
        c,
        w,
        "tokenizer.ggml.merges",
        Value::Array(Array::String(merges)),
    )?;
    put(
        c,
        w,
        "tokenizer.ggml.token_type",
        Value::Array(Array::I32(types)),
    )?;
    if spm {
        put(
            c,
            w,
            "tokenizer.ggml.scores",
            Value::Array(Array::F32(scores)),
        )?;
    }
    put(c, w, "tokenizer.ggml.bos_token_id", Value::U32(0))?;
    put(c, w, "tokenizer.ggml.eos_token_id", Value::U32(3))?;
    put(c, w, "tokenizer.ggml.add_bos_token", Value::Bool(spm))?;
    Ok(n)
}

/// A ChatML-style template written for these targets.
const CHATML: &str =
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n\
                      {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A template that uses BOS, slicing, filters and `raise_exception`.
const FANCY: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set rest = messages[1:] %}\
                     [S]{{ messages[0]['content'] | trim }}{% else %}{% set rest = messages %}{% endif %}\
                     {% for m in rest %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}\
                     {{ raise_exception('roles must alternate') }}{% endif %}[{{ m['role'] | upper }}]\
                     {{ m['content'] | tojson }}{% endfor %}{{ eos_token }}";

/// Writes `tokenizer.chat_template`: one of two templates, none, or the fuzzer's text.
fn template(c: &mut Choices<'_>, w: &mut GgufWriter<'_>) -> Result<(), GgufError> {
    let source = match c.byte() % 4 {
        1 => FANCY.to_string(),
        2 => return Ok(()),
        3 => c.string(255),
        _ => CHATML.to_string(),
    };
    put(c, w, "tokenizer.chat_template", Value::String(source))
}

/// The tensors a valid file of `shape` has: name and dims in GGML order.
fn tensor_table(s: &Shape, arch: Arch, n_vocab: u64) -> Vec<(String, Vec<u64>)> {
    let (d, ff, hd) = (s.d, s.ff, s.head_dim);
    let q = u64::from(s.heads) * hd;
    let kv = u64::from(s.kv_heads) * hd;
    let mut table = vec![
        ("token_embd.weight".to_string(), vec![d, n_vocab]),
        ("output_norm.weight".to_string(), vec![d]),
    ];
    for l in 0..s.layers {
        let mut add = |t: &str, dims: Vec<u64>| table.push((format!("blk.{l}.{t}.weight"), dims));
        add("attn_norm", vec![d]);
        add("attn_q", vec![d, q]);
        add("attn_k", vec![d, kv]);
        add("attn_v", vec![d, kv]);
        add("attn_output", vec![q, d]);
        add("ffn_norm", vec![d]);
        add("ffn_gate", vec![d, ff]);
        add("ffn_up", vec![d, ff]);
        add("ffn_down", vec![ff, d]);
        if arch == Arch::Llama4 {
            let e = s.n_expert;
            add("ffn_gate_inp", vec![d, e]);
            add("ffn_gate_exps", vec![d, ff, e]);
            add("ffn_up_exps", vec![d, ff, e]);
            add("ffn_down_exps", vec![ff, d, e]);
            add("ffn_gate_shexp", vec![d, ff]);
            add("ffn_up_shexp", vec![d, ff]);
            add("ffn_down_shexp", vec![ff, d]);
        }
    }
    table
}

/// Adds the tensors, each kept, dropped, reshaped or given another type by the fuzzer.
fn tensors(
    c: &mut Choices<'_>,
    w: &mut GgufWriter<'_>,
    shape: &Shape,
    arch: Arch,
    n_vocab: usize,
) -> Result<(), GgufError> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(c.byte());
    for (name, mut dims) in tensor_table(shape, arch, n_vocab as u64) {
        let mut ty = GgmlType::F32;
        match c.byte() % 16 {
            1 => continue,
            2 => {
                let last = dims.len() - 1;
                dims.swap(0, last);
            }
            3 => dims[0] += 1,
            4 => {
                dims.pop();
            }
            5 => dims.push(2),
            6 => dims[0] = 0,
            7 => {
                ty = c.pick(&[
                    GgmlType::F16,
                    GgmlType::BF16,
                    GgmlType::Q8_0,
                    GgmlType::Q4_0,
                ])
            }
            8 => ty = c.pick(&[GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q4K, GgmlType::Q6K]),
            9 => ty = GgmlType::from_u32(u32::from(c.byte())).unwrap_or(GgmlType::I8),
            _ => {}
        }
        let size = fennec_core::gguf::tensor_bytes(&name, ty, &dims)?;
        // Small floats for F32 (a working model); arbitrary bytes for the other types.
        let bytes: Vec<u8> = if ty == GgmlType::F32 {
            (0..size / 4)
                .flat_map(|_| {
                    ((next(&mut seed) as f32 / u32::MAX as f32 - 0.5) * 0.5).to_le_bytes()
                })
                .collect()
        } else {
            (0..size).map(|_| next(&mut seed) as u8).collect()
        };
        w.add_tensor(name, ty, &dims, TensorData::Bytes(bytes.into()))?;
    }
    Ok(())
}

/// xorshift64: the tensors' contents.
fn next(state: &mut u64) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 32) as u32
}

/// The models and sessions the `session_restore` target restores into, and its seeds.
pub mod restore_fixture {
    use std::sync::Arc;

    use fennec_core::gguf::GgufFile;
    use fennec_core::{Input, KvType, LoadOptions, Logits, Model, Session, SessionOptions};

    use super::{tiny_model, Choices};

    /// Which model and KV type a restore runs against (the input's first byte).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Variant {
        /// Llama 4 (chunked layers keep a ring of positions) rather than llama.
        pub llama4: bool,
        /// The session's KV cache type.
        pub kv: KvType,
    }

    const KV_TYPES: [KvType; 3] = [KvType::F16, KvType::F32, KvType::Q8_0];

    impl Variant {
        /// Number of variants.
        pub const COUNT: usize = 6;

        /// The variant a selector byte names.
        pub fn from_byte(b: u8) -> Self {
            Self {
                llama4: b & 1 == 1,
                kv: KV_TYPES[usize::from(b >> 1) % KV_TYPES.len()],
            }
        }

        /// Its selector byte (and index below [`Variant::COUNT`]).
        pub fn index(self) -> usize {
            let kv = KV_TYPES.iter().position(|&k| k == self.kv).unwrap_or(0);
            kv * 2 + usize::from(self.llama4)
        }
    }

    /// The tiny model of `variant`: the default [`tiny_model`] of its architecture with one
    /// 32-wide head (Q8_0 KV rows are whole 32-element blocks).
    pub fn model(variant: Variant) -> Arc<Model> {
        let select: &[u8] = if variant.llama4 {
            &[2, 2, 1]
        } else {
            &[0, 2, 1]
        };
        let bytes = tiny_model(&mut Choices::new(select)).expect("the default tiny model writes");
        let file = GgufFile::from_vec(bytes).expect("the default tiny model parses");
        Model::from_gguf(file, &LoadOptions::with_threads(1)).expect("the default tiny model loads")
    }

    /// A small session: 32 positions, micro-batches of 2 (Llama 4's chunk of 4 then keeps a
    /// ring of 6 cells, shorter than the context).
    pub fn session_options(variant: Variant) -> SessionOptions {
        SessionOptions {
            n_ctx: 32,
            kv_type: variant.kv,
            n_ubatch: 2,
        }
    }

    /// A seed: the selector byte, then a session of `variant` saved after `inputs`.
    pub fn saved(variant: Variant, model: &Arc<Model>, inputs: &[Input<'_>]) -> Vec<u8> {
        let mut session = Session::new(model.clone(), session_options(variant)).expect("session");
        session.eval(inputs, Logits::None).expect("eval");
        let mut out = vec![variant.index() as u8];
        session.save(&mut out).expect("save");
        out
    }
}
