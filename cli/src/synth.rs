//! `fennec synth`: a GGUF with a real model's exact layout and random weights, to measure
//! speed and memory at true size without downloading the model.
//!
//! The file has the tensor names, GGML dims, per-tensor types and metadata that llama.cpp's
//! converter followed by `llama-quantize --pure` gives the real model (Llama 4: spec §3.2,
//! §3.3). Weights come from a small pool of quantized random rows per (type, row length),
//! written row by row in a seeded random order through the writer's streaming API, so a
//! 60 GB file is written with a few MB of memory.
//!
//! The text file's vocabulary has the real size with Llama 4's special tokens at their real
//! ids (spec §4.3: `<|begin_of_text|>` 200000 … `<|image_start|>` 200080, `<|image|>` 200090,
//! `<|patch|>` 200092 …) and carries the chat template transformers' `Llama4Processor`
//! ships, which renders content given as a string or as a list of `{"type": "image"}` /
//! `{"type": "text", "text": …}` parts (an image part becomes `<|image|>`).
//!
//! `--mmproj` writes the vision tower and projector instead (spec §1.2, §5.7): the mmproj
//! GGUF llama.cpp's converter writes for Scout and Maverick (the same tower for both:
//! 336-pixel tiles of 14-pixel patches, 34 blocks 1408 wide with 16 heads and an MLP of
//! 5632, the 5632 → 4096 → 4096 adapter and the 4096 → 5120 projector), with
//! `general.architecture = "clip"`. Its matmul weights take `--type` (default f16); rows of
//! 1408 are not whole blocks of 256, so only types with blocks of 32 or less fit (q8_0, q4_0,
//! q5_0, …, f16, bf16, f32; the converter writes f16, bf16, q8_0 or f32). As the converter
//! does, `v.patch_embd.weight` is F16 in an f16 file and F32 otherwise, and biases, norms and
//! the class and position embeddings are F32. The random weights are scaled by
//! `1/sqrt(n_in)` (LayerNorm weights near 1, small biases), so that a forward pass through
//! all 34 blocks stays finite and of moderate size.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use fennec_core::gguf::{GgmlType, GgufWriter, TensorData};
use fennec_core::tensor_names::{
    blk, ATTN_K, ATTN_NORM, ATTN_OUTPUT, ATTN_Q, ATTN_V, FFN_DOWN, FFN_DOWN_EXPS, FFN_DOWN_SHEXP,
    FFN_GATE, FFN_GATE_EXPS, FFN_GATE_INP, FFN_GATE_SHEXP, FFN_NORM, FFN_UP, FFN_UP_EXPS,
    FFN_UP_SHEXP, OUTPUT, OUTPUT_NORM, ROPE_FREQS, TOKEN_EMBD,
};
use fennec_core::tokenizer::byte_to_char;
use fennec_quant::rng::Rng;
use indicatif::{ProgressBar, ProgressStyle};

/// Examples shown after `fennec synth --help`.
pub const AFTER_HELP: &str = "\
Examples:
  fennec synth --arch llama4 --preset scout -o scout-q4_k.gguf
  fennec synth --arch llama4 --preset maverick --sparse -o maverick-shape.gguf
  fennec synth --arch llama4 --preset scout --mmproj -o mmproj-scout-f16.gguf
  fennec synth --arch llama4 --preset scout --mmproj --type q8_0 -o mmproj-scout-q8_0.gguf

--mmproj writes the vision tower and projector (the same for Scout and Maverick: 336-pixel \
tiles, 14-pixel patches, 34 blocks 1408 wide, 16 heads, MLP 5632, adapter 5632 -> 4096 -> \
4096, projector 4096 -> 5120) as llama.cpp's converter lays out an mmproj GGUF.";

/// Architectures `fennec synth` knows.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Arch {
    /// Meta Llama 4: the text model, or with --mmproj its vision tower and projector.
    Llama4,
}

/// Published models of an architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Llama-4-Scout-17B-16E-Instruct: 16 experts, every layer MoE.
    Scout,
    /// Llama-4-Maverick-17B-128E-Instruct: 128 experts, odd layers MoE, even layers dense.
    Maverick,
}

/// Arguments of `fennec synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Architecture.
    #[arg(long, value_enum)]
    arch: Arch,
    /// Which model of the architecture.
    #[arg(long, value_enum)]
    preset: Preset,
    /// Write the model's vision tower and projector (an mmproj GGUF, `general.architecture
    /// = clip`) instead of the text model.
    #[arg(long)]
    mmproj: bool,
    /// Number of layers (default: the model's: 48; with --mmproj, 34 vision blocks).
    #[arg(long)]
    layers: Option<u32>,
    /// Type of every matmul weight (ggml name, e.g. q4_k, q8_0, f16, iq4_xs; default q4_k).
    /// With --mmproj (default f16) only types whose blocks divide rows of 1408 fit: q8_0,
    /// q4_0, q5_0, f16, bf16, f32, …; K-quants and IQ4_XS (blocks of 256) are refused.
    #[arg(long = "type", value_name = "TYPE")]
    ty: Option<String>,
    /// Write weights as holes: a shape-only sparse file, written instantly.
    #[arg(long)]
    sparse: bool,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The GGUF file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Test knob: vocabulary size instead of the model's.
    #[arg(long, hide = true, conflicts_with = "mmproj")]
    vocab: Option<u64>,
    /// Test knob: expert count instead of the model's.
    #[arg(long, hide = true, conflicts_with = "mmproj")]
    experts: Option<u64>,
    /// Test knob: embedding length instead of the model's (with --mmproj: the projector's
    /// output width, the text model's embedding length).
    #[arg(long, hide = true)]
    embd: Option<u64>,
}

/// The hyper-parameters that decide a Llama 4 file's layout (spec §1.1, §3.2).
#[derive(Clone, Debug)]
struct Llama4Shape {
    name: &'static str,
    layers: u32,
    context_length: u32,
    embd: u64,
    ff_dense: u64,
    ff_expert: u64,
    heads: u64,
    kv_heads: u64,
    head_dim: u64,
    vocab: u64,
    experts: u64,
    moe_step: u32,
    /// Scout-Instruct's llama3 rope scaling: `rope_freqs.weight` is written.
    rope_freqs: bool,
}

impl Llama4Shape {
    /// The real model's shape.
    fn preset(preset: Preset) -> Self {
        let scout = preset == Preset::Scout;
        Self {
            name: if scout {
                "Llama 4 Scout 17B 16E Instruct (synthetic)"
            } else {
                "Llama 4 Maverick 17B 128E Instruct (synthetic)"
            },
            layers: 48,
            context_length: if scout { 10_485_760 } else { 1_048_576 },
            embd: 5120,
            ff_dense: 16384,
            ff_expert: 8192,
            heads: 40,
            kv_heads: 8,
            head_dim: 128,
            vocab: 202_048,
            experts: if scout { 16 } else { 128 },
            moe_step: if scout { 1 } else { 2 },
            rope_freqs: scout,
        }
    }

    /// Whether layer `il` is MoE (HF `moe_layers = range(step - 1, L, step)`).
    fn is_moe(&self, il: u32) -> bool {
        (il + 1).is_multiple_of(self.moe_step)
    }
}

/// What a tensor is filled with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fill {
    /// F32 values `1 + N(0, 0.02)`: RMSNorm and LayerNorm weights.
    NearOne,
    /// F32 values `N(0, sd)`: biases, the class and position embeddings.
    Small { sd: f32 },
    /// `rope_freqs.weight`: F32 frequency divisors.
    RopeFreqs,
    /// Rows of `N(0, sd)` in the tensor's type, drawn from a pool; `hole`: written as zeros
    /// (a hole of the sparse file) with `--sparse`.
    Rows { sd: f32, hole: bool },
}

/// One tensor of the plan.
#[derive(Clone, Debug)]
struct TensorPlan {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    fill: Fill,
}

impl TensorPlan {
    /// Whether it is written as a hole of a sparse file.
    fn is_hole(&self, sparse: bool) -> bool {
        sparse && matches!(self.fill, Fill::Rows { hole: true, .. })
    }

    /// Bytes it streams from a row pool when written (what the progress bar counts).
    fn streamed_bytes(&self, sparse: bool) -> u64 {
        match self.fill {
            Fill::Rows { .. } if !self.is_hole(sparse) => {
                let rows: u64 = self.dims[1..].iter().product();
                self.ty.row_bytes(self.dims[0]).unwrap_or(0) * rows
            }
            _ => 0,
        }
    }
}

/// The tensors of a Llama 4 text GGUF with matmul weights of `ty`, in file order (spec §3.3).
fn llama4_tensors(s: &Llama4Shape, ty: GgmlType) -> Vec<TensorPlan> {
    let mut out = Vec::new();
    let weight = Fill::Rows {
        sd: WEIGHT_SD,
        hole: true,
    };
    // MoE router: F32 (never quantized by llama-quantize), always real data.
    let router = Fill::Rows {
        sd: WEIGHT_SD,
        hole: false,
    };
    let mut add = |name: String, dims: &[u64], fill| {
        // Matmul weights (the tensors a sparse file leaves as holes) take `ty`; the rest F32.
        let tensor_ty = if matches!(fill, Fill::Rows { hole: true, .. }) {
            ty
        } else {
            GgmlType::F32
        };
        out.push(TensorPlan {
            name,
            dims: dims.to_vec(),
            ty: tensor_ty,
            fill,
        })
    };
    let (d, q, kv) = (s.embd, s.heads * s.head_dim, s.kv_heads * s.head_dim);
    if s.rope_freqs {
        add(ROPE_FREQS.into(), &[s.head_dim / 2], Fill::RopeFreqs);
    }
    add(TOKEN_EMBD.into(), &[d, s.vocab], weight);
    for il in 0..s.layers {
        let p = |t: &str| blk(il as usize, t);
        add(p(ATTN_NORM), &[d], Fill::NearOne);
        add(p(ATTN_Q), &[d, q], weight);
        add(p(ATTN_K), &[d, kv], weight);
        add(p(ATTN_V), &[d, kv], weight);
        add(p(ATTN_OUTPUT), &[q, d], weight);
        add(p(FFN_NORM), &[d], Fill::NearOne);
        if s.is_moe(il) {
            let (f, e) = (s.ff_expert, s.experts);
            add(p(FFN_GATE_INP), &[d, e], router);
            add(p(FFN_GATE_EXPS), &[d, f, e], weight);
            add(p(FFN_UP_EXPS), &[d, f, e], weight);
            add(p(FFN_DOWN_EXPS), &[f, d, e], weight);
            add(p(FFN_GATE_SHEXP), &[d, f], weight);
            add(p(FFN_UP_SHEXP), &[d, f], weight);
            add(p(FFN_DOWN_SHEXP), &[f, d], weight);
        } else {
            let f = s.ff_dense;
            add(p(FFN_GATE), &[d, f], weight);
            add(p(FFN_UP), &[d, f], weight);
            add(p(FFN_DOWN), &[f, d], weight);
        }
    }
    add(OUTPUT_NORM.into(), &[d], Fill::NearOne);
    add(OUTPUT.into(), &[d, s.vocab], weight);
    out
}

/// The hyper-parameters of a Llama 4 vision tower and projector (spec §1.2, §5.7).
#[derive(Clone, Debug)]
struct VisionShape {
    name: &'static str,
    /// Encoder blocks.
    layers: u32,
    image_size: u32,
    patch_size: u32,
    embd: u64,
    ff: u64,
    heads: u32,
    eps: f32,
    /// Pixel-shuffle merge per side (1 / pixel_shuffle_ratio).
    merge: u32,
    /// Width of the adapter MLP.
    adapter: u64,
    /// Width of the projected embeddings: the text model's `n_embd`.
    projection: u64,
}

impl VisionShape {
    /// The real tower: the same for Scout and Maverick.
    fn preset(preset: Preset) -> Self {
        Self {
            name: match preset {
                Preset::Scout => "Llama 4 Scout 17B 16E Instruct vision (synthetic)",
                Preset::Maverick => "Llama 4 Maverick 17B 128E Instruct vision (synthetic)",
            },
            layers: 34,
            image_size: 336,
            patch_size: 14,
            embd: 1408,
            ff: 5632,
            heads: 16,
            eps: 1e-5,
            merge: 2,
            adapter: 4096,
            projection: 5120,
        }
    }

    /// Values of a flattened patch (`3·p·p`, 588).
    fn patch_len(&self) -> u64 {
        3 * u64::from(self.patch_size).pow(2)
    }

    /// Encoder positions: the patches and the class token (577).
    fn positions(&self) -> u64 {
        u64::from(self.image_size / self.patch_size).pow(2) + 1
    }
}

/// Standard deviation that keeps a matmul over `n_in` inputs at the scale of its input.
fn fan_in_sd(n_in: u64) -> f32 {
    1.0 / (n_in as f32).sqrt()
}

/// The tensors of a Llama 4 mmproj GGUF with matmul weights of `ty` (spec §5.7), in the
/// order of the forward pass.
fn vision_tensors(s: &VisionShape, ty: GgmlType) -> Vec<TensorPlan> {
    let mut out = Vec::new();
    let mut add = |name: String, dims: &[u64], ty: GgmlType, fill: Fill| {
        out.push(TensorPlan {
            name,
            dims: dims.to_vec(),
            ty,
            fill,
        })
    };
    let f32 = GgmlType::F32;
    let bias = Fill::Small { sd: WEIGHT_SD };
    let matmul = |n_in: u64| Fill::Rows {
        sd: fan_in_sd(n_in),
        hole: true,
    };
    let (c, ff) = (s.embd, s.ff);
    // The converter keeps the patch embedding F16 in an f16 file and F32 otherwise.
    let patch_ty = if ty == GgmlType::F16 {
        GgmlType::F16
    } else {
        GgmlType::F32
    };
    let patch = s.patch_len();
    add(V_PATCH_EMBD.into(), &[patch, c], patch_ty, matmul(patch));
    let embedding = Fill::Small { sd: fan_in_sd(c) };
    add(V_CLASS_EMBD.into(), &[c], f32, embedding);
    add(V_POSITION_EMBD.into(), &[c, s.positions()], f32, embedding);
    add("v.pre_ln.weight".into(), &[c], f32, Fill::NearOne);
    add("v.pre_ln.bias".into(), &[c], f32, bias);
    for il in 0..s.layers {
        let p = |t: &str| format!("v.blk.{il}.{t}");
        add(p("ln1.weight"), &[c], f32, Fill::NearOne);
        add(p("ln1.bias"), &[c], f32, bias);
        for m in ["attn_q", "attn_k", "attn_v", "attn_out"] {
            add(p(&format!("{m}.weight")), &[c, c], ty, matmul(c));
            add(p(&format!("{m}.bias")), &[c], f32, bias);
        }
        add(p("ln2.weight"), &[c], f32, Fill::NearOne);
        add(p("ln2.bias"), &[c], f32, bias);
        add(p("ffn_up.weight"), &[c, ff], ty, matmul(c));
        add(p("ffn_up.bias"), &[ff], f32, bias);
        add(p("ffn_down.weight"), &[ff, c], ty, matmul(ff));
        add(p("ffn_down.bias"), &[c], f32, bias);
    }
    add("v.post_ln.weight".into(), &[c], f32, Fill::NearOne);
    add("v.post_ln.bias".into(), &[c], f32, bias);
    let shuffled = c * u64::from(s.merge).pow(2);
    let a = s.adapter;
    add(
        "mm.model.mlp.1.weight".into(),
        &[shuffled, a],
        ty,
        matmul(shuffled),
    );
    add("mm.model.mlp.2.weight".into(), &[a, a], ty, matmul(a));
    add(
        "mm.model.fc.weight".into(),
        &[a, s.projection],
        ty,
        matmul(a),
    );
    out
}

/// Names of vision tensors used in more than one place.
const V_PATCH_EMBD: &str = "v.patch_embd.weight";
const V_CLASS_EMBD: &str = "v.class_embd";
const V_POSITION_EMBD: &str = "v.position_embd.weight";

/// Scout-Instruct's `rope_freqs`: llama3 scaling with factor 16, low/high frequency factors 1
/// and original context 8192 gives 1 for the 35 high-frequency pairs and 16 for the rest.
fn scout_rope_freqs(n: usize) -> Vec<f32> {
    (0..n).map(|i| if i < 35 { 1.0 } else { 16.0 }).collect()
}

/// llama.cpp's `general.file_type` for a file whose weights are all `ty` (the value
/// llama.cpp's loader guesses for such a file), or why `ty` cannot be a weight type.
fn file_type_of(ty: GgmlType) -> Result<u32> {
    use GgmlType::*;
    Ok(match ty {
        F32 => 0,
        F16 => 1,
        Q4_0 => 2,
        Q4_1 => 3,
        Q8_0 => 7,
        Q5_0 => 8,
        Q5_1 => 9,
        Q2K => 10,
        Q3K => 12,
        Q4K => 15,
        Q5K => 17,
        Q6K => 18,
        Iq4Nl => 25,
        Iq4Xs => 30,
        BF16 => 32,
        Q8_1 | Q8K => bail!(
            "{ty} is an activation type: llama.cpp has no file type for weights of it; \
             use q8_0 for 8-bit weights"
        ),
        other => bail!("no llama.cpp file type is known for {other} weights"),
    })
}

/// Weight types `fennec synth` writes: those Fennec quantizes and llama.cpp names.
fn writable_types() -> Vec<GgmlType> {
    GgmlType::ALL
        .into_iter()
        .filter(|&t| fennec_quant::formats::is_supported(t) && file_type_of(t).is_ok())
        .collect()
}

/// Parses `--type`, with a list of the accepted names when it is not one.
fn parse_type(name: &str) -> Result<GgmlType> {
    let accepted = || {
        writable_types()
            .iter()
            .map(|t| t.name().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(ty) = GgmlType::from_name(name) else {
        bail!("unknown tensor type {name:?}; accepted: {}", accepted());
    };
    if !fennec_quant::formats::is_supported(ty) {
        bail!("Fennec cannot quantize to {ty}; accepted: {}", accepted());
    }
    file_type_of(ty)?;
    Ok(ty)
}

/// The generator for `seed`: xorshift64* started at SplitMix64 of the seed (made odd), so
/// nearby seeds give unrelated streams and 0 is fine.
fn seeded(seed: u64) -> Rng {
    Rng::xorshift64star(Rng::new(seed).next_u64() | 1)
}

/// Normal with mean 0 and standard deviation `sd` (Box–Muller).
fn normal(rng: &mut Rng, sd: f32) -> f32 {
    // Uniform in (0, 1], so that the logarithm is finite.
    let mut unit = || rng.next_f32() + 1.0 / (1u64 << 24) as f32;
    let (u, v) = (unit(), unit());
    sd * (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// Standard deviation of the random weights, about that of trained LLM matrices.
const WEIGHT_SD: f32 = 0.02;
/// Bytes of quantized rows kept per pool (the pool has at least `MIN_POOL_ROWS` rows).
const POOL_BYTES: usize = 1 << 20;
/// Fewest rows a pool has.
const MIN_POOL_ROWS: usize = 16;
/// Most rows a pool has.
const MAX_POOL_ROWS: usize = 256;
/// Bytes handed to the file per write.
const CHUNK_BYTES: usize = 4 << 20;

/// Quantized random rows of one (type, row length), the material of every tensor of it.
struct RowPool {
    row_bytes: usize,
    rows: usize,
    data: Vec<u8>,
}

impl RowPool {
    /// Rows of `n` values ~N(0, `sd`) quantized to `ty`.
    fn new(ty: GgmlType, n: usize, sd: f32, seed: u64) -> Result<Self> {
        let row_bytes = fennec_quant::row_bytes(ty, n)?;
        let rows = (POOL_BYTES / row_bytes).clamp(MIN_POOL_ROWS, MAX_POOL_ROWS);
        let mut rng = seeded(seed ^ ((ty as u64) << 32) ^ n as u64);
        let mut data = vec![0u8; rows * row_bytes];
        let mut src = vec![0f32; n];
        for dst in data.chunks_mut(row_bytes) {
            src.iter_mut().for_each(|x| *x = normal(&mut rng, sd));
            fennec_quant::quantize_row(ty, &src, dst)?;
        }
        Ok(Self {
            row_bytes,
            rows,
            data,
        })
    }

    fn row(&self, i: usize) -> &[u8] {
        &self.data[i * self.row_bytes..(i + 1) * self.row_bytes]
    }
}

/// A tensor of `rows` rows drawn from `pool` in an order seeded by `seed`, streamed in
/// chunks of about [`CHUNK_BYTES`], advancing `bar` by the bytes written.
fn pooled_stream(
    pool: Arc<RowPool>,
    rows: u64,
    seed: u64,
    bar: ProgressBar,
) -> TensorData<'static> {
    TensorData::stream(move |sink| {
        let per_chunk = (CHUNK_BYTES / pool.row_bytes).max(1) as u64;
        let mut buf = Vec::with_capacity(per_chunk as usize * pool.row_bytes);
        let mut rng = seeded(seed);
        let mut left = rows;
        while left > 0 {
            let n = left.min(per_chunk);
            buf.clear();
            for _ in 0..n {
                buf.extend_from_slice(pool.row(rng.below(pool.rows as u64) as usize));
            }
            sink.write_all(&buf)?;
            bar.inc(buf.len() as u64);
            left -= n;
        }
        Ok(())
    })
}

/// FNV-1a of a tensor name, to give every tensor its own row order.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Llama 4's chat template, as transformers' `Llama4Processor` ships it (spec §4.4): the
/// template of the real GGUF files. It renders a message's content given as a string or as a
/// list of parts (`{"type": "image"}` → `<|image|>`, `{"type": "text", "text": …}` → the
/// text); the chat goldens check Fennec's rendering of it against Python's jinja2.
const LLAMA4_CHAT_TEMPLATE: &str = include_str!("../../tests/fixtures/chat/llama4.jinja");

/// Llama 4's special tokens before the reserved ones (ids 200000 + i in the real vocabulary).
const NAMED: [&str; 10] = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|header_start|>",
    "<|header_end|>",
    "<|eom|>",
    "<|eot|>",
    "<|step|>",
];

/// The text of Llama 4's special token `i` (id 200000 + i in the real vocabulary), in the
/// order of Meta's tokenizer (spec §4.3): text, vision, reasoning, then reserved tokens.
fn special_token(i: usize) -> String {
    let reserved = |kind: &str, n: usize| format!("<|{kind}_reserved_special_token_{n}|>");
    let named = match i {
        0..=9 => NAMED[i],
        10..=15 => return reserved("text_post_train", i - 10),
        16 => "<|python_start|>",
        17 => "<|python_end|>",
        18 => "<|finetune_right_pad|>",
        19..=79 => return reserved("text_post_train", i - 13),
        80 => "<|image_start|>",
        81 => "<|image_end|>",
        82..=83 => return reserved("vision", i - 82),
        84 => "<|tile_x_separator|>",
        85 => "<|tile_y_separator|>",
        86..=89 => return reserved("vision", i - 84),
        90 => "<|image|>",
        91 => return reserved("vision", 6),
        92 => "<|patch|>",
        93..=1133 => return reserved("vision", i - 86),
        1134..=1141 => return reserved("reasoning", i - 1134),
        1142 => "<|reasoning_thinking_start|>",
        1143 => "<|reasoning_thinking_end|>",
        _ => return format!("<|reserved_special_token_{}|>", i - 1144),
    };
    named.to_string()
}

/// Special tokens of the real vocabulary (ids 200000..202048).
const N_SPECIAL: usize = 2048;

/// A byte-level BPE vocabulary of the real size (no merges): the 256 byte tokens, filler
/// tokens, and Llama 4's 2048 special tokens at the top as control tokens, at their real ids
/// when the vocabulary has the real size (so `<|image|>` is 200090 and `<|patch|>` 200092),
/// and Llama 4's chat template, so that tools that insist on a tokenizer (llama.cpp among
/// them) load the file and chats with images render. Text through it is one token per byte;
/// benchmarks feed token ids. Smaller vocabularies keep the first special tokens that fit;
/// those too small for the byte tokens (test sizes) get no tokenizer.
fn add_tokenizer(w: &mut GgufWriter<'static>, vocab: u64) -> Result<()> {
    let vocab = usize::try_from(vocab)?;
    if vocab < 256 + NAMED.len() {
        // Only the hidden test-size vocabularies are this small: they get no tokenizer.
        return Ok(());
    }
    let n_special = (vocab - 256).min(N_SPECIAL);
    let first_special = vocab - n_special;
    let mut tokens: Vec<String> = (0..=255).map(byte_to_char).map(String::from).collect();
    tokens.extend((256..first_special).map(|i| format!("<synth{i}>")));
    tokens.extend((0..n_special).map(special_token));
    let types: Vec<i32> = (0..vocab)
        .map(|i| if i < first_special { 1 } else { 3 })
        .collect();
    w.add("tokenizer.ggml.model", "gpt2")?;
    w.add("tokenizer.ggml.pre", "llama4")?;
    w.add_array("tokenizer.ggml.tokens", tokens)?;
    w.add_array("tokenizer.ggml.token_type", types)?;
    w.add_array("tokenizer.ggml.merges", Vec::<String>::new())?;
    w.add("tokenizer.ggml.bos_token_id", first_special as u32)?;
    w.add("tokenizer.ggml.eos_token_id", (first_special + 8) as u32)?;
    w.add("tokenizer.ggml.add_bos_token", true)?;
    w.add("tokenizer.chat_template", LLAMA4_CHAT_TEMPLATE)?;
    Ok(())
}

/// Adds the tensors of `plan` to `w`: F32 values made here, rows streamed from pools of
/// random rows (holes for matmul weights when `sparse`), advancing `bar`.
fn add_tensors(
    w: &mut GgufWriter<'static>,
    plan: &[TensorPlan],
    sparse: bool,
    seed: u64,
    bar: &ProgressBar,
) -> Result<()> {
    // Check every row length against its type's blocks before building anything.
    for t in plan.iter().filter(|t| matches!(t.fill, Fill::Rows { .. })) {
        let block = t.ty.block_len() as u64;
        ensure!(
            t.dims[0].is_multiple_of(block),
            "{ty} cannot store {name}: its rows of {n} values are not a whole number of \
             {ty} blocks of {block}",
            ty = t.ty,
            name = t.name,
            n = t.dims[0]
        );
    }
    type PoolKey = (GgmlType, u64, u32);
    let mut pools: Vec<(PoolKey, Arc<RowPool>)> = Vec::new();
    let mut pool_for = |ty: GgmlType, n: u64, sd: f32| -> Result<Arc<RowPool>> {
        let key = (ty, n, sd.to_bits());
        if let Some((_, pool)) = pools.iter().find(|(k, _)| *k == key) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(
            RowPool::new(ty, n as usize, sd, seed)
                .with_context(|| format!("cannot quantize rows of {n} values to {ty}"))?,
        );
        pools.push((key, pool.clone()));
        Ok(pool)
    };
    let mut small_rng = seeded(seed ^ 0x6e6f_726d);
    for t in plan {
        let rows: u64 = t.dims[1..].iter().product();
        let count: u64 = t.dims.iter().product();
        let mut values = |f: &mut dyn FnMut(&mut Rng) -> f32| -> TensorData<'static> {
            let v: Vec<f32> = (0..count).map(|_| f(&mut small_rng)).collect();
            TensorData::Bytes(f32_bytes(&v).into())
        };
        let data = match t.fill {
            Fill::NearOne => values(&mut |rng| 1.0 + normal(rng, WEIGHT_SD)),
            Fill::Small { sd } => values(&mut |rng| normal(rng, sd)),
            Fill::RopeFreqs => {
                TensorData::Bytes(f32_bytes(&scout_rope_freqs(count as usize)).into())
            }
            Fill::Rows { .. } if t.is_hole(sparse) => TensorData::Zeros,
            Fill::Rows { sd, .. } => {
                let pool = pool_for(t.ty, t.dims[0], sd)?;
                pooled_stream(pool, rows, seed ^ name_hash(&t.name), bar.clone())
            }
        };
        w.add_tensor(t.name.clone(), t.ty, &t.dims, data)
            .with_context(|| format!("cannot add {}", t.name))?;
    }
    Ok(())
}

/// The metadata every synthetic file starts with.
fn add_general(w: &mut GgufWriter<'static>, arch: &str, name: &str) -> Result<()> {
    w.add("general.architecture", arch)?;
    w.add(
        "general.type",
        if arch == "clip" { "mmproj" } else { "model" },
    )?;
    w.add("general.name", name)?;
    w.add(
        "general.description",
        "random weights in the real model's layout, written by `fennec synth`; not a usable model",
    )?;
    Ok(())
}

fn u32_of(v: u64, what: &str) -> Result<u32> {
    u32::try_from(v).with_context(|| format!("{what} {v} does not fit in a u32"))
}

/// Builds the writer for `shape`: metadata and every tensor. Weights are holes when `sparse`.
fn build_llama4(
    shape: &Llama4Shape,
    ty: GgmlType,
    sparse: bool,
    seed: u64,
    bar: &ProgressBar,
) -> Result<GgufWriter<'static>> {
    let mut w = GgufWriter::new();
    add_general(&mut w, "llama4", shape.name)?;
    let p = |k: &str| format!("llama4.{k}");
    w.add(p("block_count"), shape.layers)?;
    w.add(p("context_length"), shape.context_length)?;
    w.add(
        p("embedding_length"),
        u32_of(shape.embd, "embedding length")?,
    )?;
    w.add(
        p("feed_forward_length"),
        u32_of(shape.ff_dense, "feed-forward length")?,
    )?;
    w.add(
        p("expert_feed_forward_length"),
        u32_of(shape.ff_expert, "expert feed-forward length")?,
    )?;
    w.add(
        p("attention.head_count"),
        u32_of(shape.heads, "head count")?,
    )?;
    w.add(
        p("attention.head_count_kv"),
        u32_of(shape.kv_heads, "KV head count")?,
    )?;
    w.add(
        p("attention.key_length"),
        u32_of(shape.head_dim, "head dim")?,
    )?;
    w.add(
        p("attention.value_length"),
        u32_of(shape.head_dim, "head dim")?,
    )?;
    w.add(
        p("rope.dimension_count"),
        u32_of(shape.head_dim, "head dim")?,
    )?;
    w.add(p("rope.freq_base"), 500_000f32)?;
    w.add(p("attention.layer_norm_rms_epsilon"), 1e-5f32)?;
    w.add(p("expert_count"), u32_of(shape.experts, "expert count")?)?;
    w.add(p("expert_used_count"), 1u32)?;
    w.add(p("interleave_moe_layer_step"), shape.moe_step)?;
    w.add(p("vocab_size"), u32_of(shape.vocab, "vocabulary size")?)?;
    w.add("general.quantization_version", 2u32)?;
    w.add("general.file_type", file_type_of(ty)?)?;
    add_tokenizer(&mut w, shape.vocab)?;
    add_tensors(&mut w, &llama4_tensors(shape, ty), sparse, seed, bar)?;
    Ok(w)
}

/// Builds the writer of the mmproj of `shape`: the `clip.*` metadata llama.cpp's converter
/// writes for Llama 4 and every tensor. Matmul weights are holes when `sparse`.
fn build_llama4_mmproj(
    shape: &VisionShape,
    ty: GgmlType,
    sparse: bool,
    seed: u64,
    bar: &ProgressBar,
) -> Result<GgufWriter<'static>> {
    let plan = vision_tensors(shape, ty);
    let mut rows: Vec<u64> = plan
        .iter()
        .filter(|t| t.ty == ty && matches!(t.fill, Fill::Rows { .. }))
        .map(|t| t.dims[0])
        .collect();
    rows.sort_unstable();
    rows.dedup();
    if let Some(&bad) = rows
        .iter()
        .find(|&&n| !n.is_multiple_of(ty.block_len() as u64))
    {
        let mut fits: Vec<String> = writable_types()
            .into_iter()
            .filter(|t| rows.iter().all(|n| n.is_multiple_of(t.block_len() as u64)))
            .map(|t| t.name().to_ascii_lowercase())
            .collect();
        let last = fits.pop().unwrap_or_default();
        bail!(
            "{ty} cannot store the vision tower: its rows of {bad} values are not a whole \
             number of {ty} blocks of {}; an mmproj takes {} or {last} (llama.cpp's converter \
             writes f16, bf16, q8_0 or f32)",
            ty.block_len(),
            fits.join(", ")
        );
    }
    let mut w = GgufWriter::new();
    add_general(&mut w, "clip", shape.name)?;
    w.add("general.file_type", file_type_of(ty)?)?;
    w.add("general.quantization_version", 2u32)?;
    w.add("clip.projector_type", "llama4")?;
    w.add("clip.has_vision_encoder", true)?;
    let p = |k: &str| format!("clip.vision.{k}");
    w.add(p("image_size"), shape.image_size)?;
    w.add(p("patch_size"), shape.patch_size)?;
    w.add(
        p("embedding_length"),
        u32_of(shape.embd, "embedding length")?,
    )?;
    w.add(
        p("feed_forward_length"),
        u32_of(shape.ff, "feed-forward length")?,
    )?;
    w.add(p("block_count"), shape.layers)?;
    w.add(p("attention.head_count"), shape.heads)?;
    w.add(p("attention.layer_norm_epsilon"), shape.eps)?;
    w.add(
        p("projection_dim"),
        u32_of(shape.projection, "projection width")?,
    )?;
    w.add_array(p("image_mean"), vec![0.5f32; 3])?;
    w.add_array(p("image_std"), vec![0.5f32; 3])?;
    w.add(p("projector.scale_factor"), shape.merge)?;
    w.add("clip.use_gelu", true)?;
    add_tensors(&mut w, &plan, sparse, seed, bar)?;
    Ok(w)
}

/// Bytes the streamed tensors of `plan` write (what the progress bar counts).
fn streamed_bytes(plan: &[TensorPlan], sparse: bool) -> u64 {
    plan.iter().map(|t| t.streamed_bytes(sparse)).sum()
}

/// Bytes free for an unprivileged user on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .with_context(|| format!("{} contains a NUL byte", dir.display()))?;
    // SAFETY: statvfs only fills the zeroed plain C struct it is given; the path is a valid
    // NUL-terminated string that outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot statvfs {}", dir.display()));
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// `bytes` as GB (10^9) and GiB.
fn human(bytes: u64) -> String {
    format!(
        "{:.2} GB ({:.2} GiB)",
        bytes as f64 / 1e9,
        bytes as f64 / (1u64 << 30) as f64
    )
}

/// Runs `fennec synth`.
pub fn run(args: &SynthArgs) -> Result<()> {
    match args.arch {
        Arch::Llama4 => {}
    }
    let default_type = if args.mmproj { "f16" } else { "q4_k" };
    let ty = parse_type(args.ty.as_deref().unwrap_or(default_type))?;
    if let Some(layers) = args.layers {
        ensure!(layers >= 1, "--layers must be at least 1");
    }
    if let Some(embd) = args.embd {
        ensure!(embd >= 1, "--embd must be at least 1");
    }
    let bar_of = |plan: &[TensorPlan]| {
        let bar = ProgressBar::new(streamed_bytes(plan, args.sparse)).with_style(
            ProgressStyle::with_template(
                "writing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        if args.sparse {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar
    };
    let (writer, bar) = if args.mmproj {
        let mut shape = VisionShape::preset(args.preset);
        if let Some(layers) = args.layers {
            shape.layers = layers;
        }
        if let Some(embd) = args.embd {
            shape.projection = embd;
        }
        let bar = bar_of(&vision_tensors(&shape, ty));
        let writer = build_llama4_mmproj(&shape, ty, args.sparse, args.seed, &bar)?;
        (writer, bar)
    } else {
        let mut shape = Llama4Shape::preset(args.preset);
        if let Some(layers) = args.layers {
            shape.layers = layers;
        }
        if let Some(vocab) = args.vocab {
            ensure!(vocab >= 1, "--vocab must be at least 1");
            shape.vocab = vocab;
        }
        if let Some(experts) = args.experts {
            ensure!(experts >= 1, "--experts must be at least 1");
            shape.experts = experts;
        }
        if let Some(embd) = args.embd {
            shape.embd = embd;
        }
        let bar = bar_of(&llama4_tensors(&shape, ty));
        let writer = build_llama4(&shape, ty, args.sparse, args.seed, &bar)?;
        (writer, bar)
    };
    let size = writer.file_size();

    if !args.sparse {
        let dir = match args.output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // An existing file is truncated first, so its blocks count as free.
        let reusable = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&args.output).map_or(0, |m| m.blocks() * 512)
        };
        let free = free_bytes(&dir)? + reusable;
        if free < size {
            bail!(
                "not enough disk space in {}: the file needs {}, {} is free \
                 (use --sparse for a shape-only file)",
                dir.display(),
                human(size),
                human(free)
            );
        }
    }

    let started = Instant::now();
    let written = writer.write_to_path(&args.output);
    bar.finish_and_clear();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&args.output);
        return Err(e).with_context(|| format!("cannot write {}", args.output.display()));
    }
    println!(
        "wrote {}: {} tensors, {} bytes = {}{}, in {:.1} s",
        args.output.display(),
        writer.tensor_count(),
        size,
        human(size),
        if args.sparse { ", sparse" } else { "" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fennec_core::gguf::GgufFile;

    fn tiny_scout() -> Llama4Shape {
        Llama4Shape {
            layers: 2,
            embd: 256,
            vocab: 300,
            experts: 2,
            ..Llama4Shape::preset(Preset::Scout)
        }
    }

    #[test]
    fn presets_have_the_published_tensor_counts() {
        assert_eq!(
            llama4_tensors(&Llama4Shape::preset(Preset::Scout), GgmlType::Q4K).len(),
            628
        );
        assert_eq!(
            llama4_tensors(&Llama4Shape::preset(Preset::Maverick), GgmlType::Q4K).len(),
            531
        );
    }

    #[test]
    fn rope_freqs_are_35_ones_then_29_sixteens() {
        let f = scout_rope_freqs(64);
        assert_eq!(f.iter().filter(|&&x| x == 1.0).count(), 35);
        assert!(f[35..].iter().all(|&x| x == 16.0));
    }

    #[test]
    fn random_weights_are_valid_and_deterministic() {
        let dir = std::env::temp_dir().join(format!("fennec-synth-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shape = tiny_scout();
        for ty in [GgmlType::Q4K, GgmlType::Q8_0, GgmlType::F16] {
            let bar = ProgressBar::hidden();
            let w = build_llama4(&shape, ty, false, 7, &bar).unwrap();
            let path = dir.join(format!("{ty}.gguf"));
            w.write_to_path(&path).unwrap();
            assert_eq!(
                bar.position(),
                streamed_bytes(&llama4_tensors(&shape, ty), false)
            );
            let again = build_llama4(&shape, ty, false, 7, &ProgressBar::hidden()).unwrap();
            assert_eq!(again.try_to_vec().unwrap(), std::fs::read(&path).unwrap());

            let file = GgufFile::open(&path).unwrap();
            assert_eq!(file.tensor_infos().len(), 13 * 2 + 4);
            let t = file.require_tensor(&blk(1, FFN_DOWN_EXPS)).unwrap();
            assert_eq!(t.info.ty, ty);
            let n = t.info.dims[0] as usize;
            let mut row = vec![0f32; n];
            let (mut sum, mut sum_sq, mut count) = (0f64, 0f64, 0usize);
            for bytes in t.data.chunks(t.info.row_bytes() as usize) {
                fennec_quant::dequantize_row(ty, bytes, &mut row).unwrap();
                for &x in &row {
                    assert!(x.is_finite());
                    sum += f64::from(x);
                    sum_sq += f64::from(x) * f64::from(x);
                    count += 1;
                }
            }
            let mean = sum / count as f64;
            let sd = (sum_sq / count as f64 - mean * mean).sqrt();
            assert!(
                mean.abs() < 1e-3 && (sd - 0.02).abs() < 0.004,
                "{ty}: {mean} {sd}"
            );
            let norm = file.require_tensor(&blk(0, ATTN_NORM)).unwrap();
            assert_eq!(norm.info.ty, GgmlType::F32);
            assert!(norm.data.chunks(4).all(|b| {
                let x = f32::from_le_bytes(b.try_into().unwrap());
                (0.8..1.2).contains(&x)
            }));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn types_without_a_weight_file_type_are_refused() {
        assert!(parse_type("q4_k").is_ok());
        assert!(parse_type("IQ4_XS").is_ok());
        for bad in ["q8_k", "q8_1", "iq2_xxs", "q1_0", "nope", "i32"] {
            assert!(parse_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rows_that_are_not_whole_blocks_are_refused() {
        let shape = Llama4Shape {
            embd: 320,
            ..tiny_scout()
        };
        let err = build_llama4(&shape, GgmlType::Q4K, true, 0, &ProgressBar::hidden())
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a whole number"), "{err}");
        assert!(build_llama4(&shape, GgmlType::Q8_0, true, 0, &ProgressBar::hidden()).is_ok());
    }

    #[test]
    fn special_tokens_follow_meta_s_order() {
        let names: Vec<String> = (0..N_SPECIAL).map(special_token).collect();
        // Spec §4.3, as ids of the real vocabulary.
        for (id, name) in [
            (200_000, "<|begin_of_text|>"),
            (200_008, "<|eot|>"),
            (200_010, "<|text_post_train_reserved_special_token_0|>"),
            (200_016, "<|python_start|>"),
            (200_018, "<|finetune_right_pad|>"),
            (200_019, "<|text_post_train_reserved_special_token_6|>"),
            (200_079, "<|text_post_train_reserved_special_token_66|>"),
            (200_080, "<|image_start|>"),
            (200_081, "<|image_end|>"),
            (200_083, "<|vision_reserved_special_token_1|>"),
            (200_084, "<|tile_x_separator|>"),
            (200_085, "<|tile_y_separator|>"),
            (200_089, "<|vision_reserved_special_token_5|>"),
            (200_090, "<|image|>"),
            (200_091, "<|vision_reserved_special_token_6|>"),
            (200_092, "<|patch|>"),
            (200_093, "<|vision_reserved_special_token_7|>"),
            (201_133, "<|vision_reserved_special_token_1047|>"),
            (201_134, "<|reasoning_reserved_special_token_0|>"),
            (201_142, "<|reasoning_thinking_start|>"),
            (201_143, "<|reasoning_thinking_end|>"),
            (201_144, "<|reserved_special_token_0|>"),
            (202_047, "<|reserved_special_token_903|>"),
        ] {
            assert_eq!(names[id - 200_000], name, "id {id}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), N_SPECIAL);
    }

    #[test]
    fn vision_presets_have_the_converter_s_tensor_count() {
        for preset in [Preset::Scout, Preset::Maverick] {
            let plan = vision_tensors(&VisionShape::preset(preset), GgmlType::F16);
            // 5 tensors before the blocks, 16 per block, 2 after, then the adapter and projector.
            assert_eq!(plan.len(), 5 + 34 * 16 + 2 + 3);
            let patch = plan.iter().find(|t| t.name == V_PATCH_EMBD).unwrap();
            assert_eq!(
                (patch.ty, patch.dims.as_slice()),
                (GgmlType::F16, &[588, 1408][..])
            );
        }
        let plan = vision_tensors(&VisionShape::preset(Preset::Scout), GgmlType::Q8_0);
        let patch = plan.iter().find(|t| t.name == V_PATCH_EMBD).unwrap();
        assert_eq!(
            patch.ty,
            GgmlType::F32,
            "the converter keeps it F32 outside f16 files"
        );
    }

    #[test]
    fn mmproj_types_with_blocks_of_256_are_refused() {
        let shape = VisionShape {
            layers: 1,
            ..VisionShape::preset(Preset::Scout)
        };
        for ty in [GgmlType::Q4K, GgmlType::Q6K, GgmlType::Iq4Xs] {
            let err = build_llama4_mmproj(&shape, ty, true, 0, &ProgressBar::hidden())
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("rows of 1408 values"), "{err}");
            assert!(err.contains("q8_0") && err.contains("f16"), "{err}");
            assert!(!err.contains("q4_k"), "{err}");
        }
        for ty in [
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::BF16,
            GgmlType::F32,
        ] {
            assert!(build_llama4_mmproj(&shape, ty, true, 0, &ProgressBar::hidden()).is_ok());
        }
    }
}
