//! `fennec synth`: a GGUF with a real model's exact layout and random weights, to measure
//! speed and memory at true size without downloading the model.
//!
//! The file has the tensor names, GGML dims, per-tensor types and metadata that llama.cpp's
//! converter followed by `llama-quantize --pure` gives the real model (Llama 4: spec §3.2,
//! §3.3). Weights come from a small pool of quantized random rows per (type, row length),
//! written row by row in a seeded random order through the writer's streaming API, so a
//! 60 GB file is written with a few MB of memory.

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

/// Architectures `fennec synth` knows.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Arch {
    /// Meta Llama 4 (text model).
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
    /// Number of layers (default: the model's, 48).
    #[arg(long)]
    layers: Option<u32>,
    /// Type of every matmul weight (ggml name, e.g. q4_k, q8_0, f16, iq4_xs).
    #[arg(long = "type", value_name = "TYPE", default_value = "q4_k")]
    ty: String,
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
    #[arg(long, hide = true)]
    vocab: Option<u64>,
    /// Test knob: expert count instead of the model's.
    #[arg(long, hide = true)]
    experts: Option<u64>,
    /// Test knob: embedding length instead of the model's.
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

/// What a tensor holds, which decides its type and content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// RMSNorm weight: F32 near 1.
    Norm,
    /// `rope_freqs.weight`: F32 frequency divisors.
    RopeFreqs,
    /// MoE router: F32 (never quantized by llama-quantize).
    Router,
    /// A matmul weight: the chosen type.
    Weight,
}

/// One tensor of the plan.
#[derive(Clone, Debug)]
struct TensorPlan {
    name: String,
    dims: Vec<u64>,
    kind: Kind,
}

/// The tensors of a Llama 4 text GGUF, in file order (spec §3.3).
fn llama4_tensors(s: &Llama4Shape) -> Vec<TensorPlan> {
    let mut out = Vec::new();
    let mut add = |name: String, dims: &[u64], kind| {
        out.push(TensorPlan {
            name,
            dims: dims.to_vec(),
            kind,
        })
    };
    let (d, q, kv) = (s.embd, s.heads * s.head_dim, s.kv_heads * s.head_dim);
    if s.rope_freqs {
        add(ROPE_FREQS.into(), &[s.head_dim / 2], Kind::RopeFreqs);
    }
    add(TOKEN_EMBD.into(), &[d, s.vocab], Kind::Weight);
    for il in 0..s.layers {
        let p = |t: &str| blk(il as usize, t);
        add(p(ATTN_NORM), &[d], Kind::Norm);
        add(p(ATTN_Q), &[d, q], Kind::Weight);
        add(p(ATTN_K), &[d, kv], Kind::Weight);
        add(p(ATTN_V), &[d, kv], Kind::Weight);
        add(p(ATTN_OUTPUT), &[q, d], Kind::Weight);
        add(p(FFN_NORM), &[d], Kind::Norm);
        if s.is_moe(il) {
            let (f, e) = (s.ff_expert, s.experts);
            add(p(FFN_GATE_INP), &[d, e], Kind::Router);
            add(p(FFN_GATE_EXPS), &[d, f, e], Kind::Weight);
            add(p(FFN_UP_EXPS), &[d, f, e], Kind::Weight);
            add(p(FFN_DOWN_EXPS), &[f, d, e], Kind::Weight);
            add(p(FFN_GATE_SHEXP), &[d, f], Kind::Weight);
            add(p(FFN_UP_SHEXP), &[d, f], Kind::Weight);
            add(p(FFN_DOWN_SHEXP), &[f, d], Kind::Weight);
        } else {
            let f = s.ff_dense;
            add(p(FFN_GATE), &[d, f], Kind::Weight);
            add(p(FFN_UP), &[d, f], Kind::Weight);
            add(p(FFN_DOWN), &[f, d], Kind::Weight);
        }
    }
    add(OUTPUT_NORM.into(), &[d], Kind::Norm);
    add(OUTPUT.into(), &[d, s.vocab], Kind::Weight);
    out
}

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
    /// Rows of `n` values ~N(0, [`WEIGHT_SD`]) quantized to `ty`.
    fn new(ty: GgmlType, n: usize, seed: u64) -> Result<Self> {
        let row_bytes = fennec_quant::row_bytes(ty, n)?;
        let rows = (POOL_BYTES / row_bytes).clamp(MIN_POOL_ROWS, MAX_POOL_ROWS);
        let mut rng = seeded(seed ^ ((ty as u64) << 32) ^ n as u64);
        let mut data = vec![0u8; rows * row_bytes];
        let mut src = vec![0f32; n];
        for dst in data.chunks_mut(row_bytes) {
            src.iter_mut()
                .for_each(|x| *x = normal(&mut rng, WEIGHT_SD));
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

/// A byte-level BPE vocabulary of the real size (no merges): the 256 byte tokens, filler
/// tokens, and Llama 4's special tokens at the top as control tokens, so that tools that
/// insist on a tokenizer (llama.cpp among them) load the file. Text through it is one
/// token per byte; benchmarks feed token ids. Vocabularies too small for the byte tokens
/// (test sizes) get none.
fn add_tokenizer(w: &mut GgufWriter<'static>, vocab: u64) -> Result<()> {
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
    let vocab = usize::try_from(vocab)?;
    if vocab < 256 + NAMED.len() {
        // Only the hidden test-size vocabularies are this small: they get no tokenizer.
        return Ok(());
    }
    let n_special = (vocab - 256).min(2048);
    let first_special = vocab - n_special;
    let mut tokens: Vec<String> = (0..=255).map(byte_to_char).map(String::from).collect();
    tokens.extend((256..first_special).map(|i| format!("<synth{i}>")));
    tokens.extend((0..n_special).map(|i| match NAMED.get(i) {
        Some(name) => (*name).to_string(),
        None => format!("<|reserved_special_token_{i}|>"),
    }));
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
    Ok(())
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
    w.add("general.architecture", "llama4")?;
    w.add("general.type", "model")?;
    w.add("general.name", shape.name)?;
    w.add(
        "general.description",
        "random weights in the real model's layout, written by `fennec synth`; not a usable model",
    )?;
    let p = |k: &str| format!("llama4.{k}");
    let u32_of = |v: u64, what: &str| -> Result<u32> {
        u32::try_from(v).with_context(|| format!("{what} {v} does not fit in a u32"))
    };
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

    let plan = llama4_tensors(shape);
    // Check every row length against the type's blocks before building anything.
    for t in plan.iter().filter(|t| t.kind == Kind::Weight) {
        let block = ty.block_len() as u64;
        ensure!(
            t.dims[0].is_multiple_of(block),
            "{ty} cannot store {}: its rows of {} values are not a whole number of \
             {ty} blocks of {block}",
            t.name,
            t.dims[0]
        );
    }
    let mut pools: Vec<((GgmlType, u64), Arc<RowPool>)> = Vec::new();
    let mut pool_for = |ty: GgmlType, n: u64| -> Result<Arc<RowPool>> {
        if let Some((_, pool)) = pools.iter().find(|(key, _)| *key == (ty, n)) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(
            RowPool::new(ty, n as usize, seed)
                .with_context(|| format!("cannot quantize rows of {n} values to {ty}"))?,
        );
        pools.push(((ty, n), pool.clone()));
        Ok(pool)
    };
    let mut norm_rng = seeded(seed ^ 0x6e6f_726d);
    for t in &plan {
        let rows: u64 = t.dims[1..].iter().product();
        let tensor_seed = seed ^ name_hash(&t.name);
        let (tensor_ty, data) = match t.kind {
            Kind::Norm => {
                let values: Vec<f32> = (0..t.dims[0])
                    .map(|_| 1.0 + normal(&mut norm_rng, WEIGHT_SD))
                    .collect();
                (GgmlType::F32, TensorData::Bytes(f32_bytes(&values).into()))
            }
            Kind::RopeFreqs => (
                GgmlType::F32,
                TensorData::Bytes(f32_bytes(&scout_rope_freqs(t.dims[0] as usize)).into()),
            ),
            Kind::Router => {
                let pool = pool_for(GgmlType::F32, t.dims[0])?;
                let data = pooled_stream(pool, rows, tensor_seed, bar.clone());
                (GgmlType::F32, data)
            }
            Kind::Weight if sparse => (ty, TensorData::Zeros),
            Kind::Weight => {
                let pool = pool_for(ty, t.dims[0])?;
                (ty, pooled_stream(pool, rows, tensor_seed, bar.clone()))
            }
        };
        w.add_tensor(t.name.clone(), tensor_ty, &t.dims, data)
            .with_context(|| format!("cannot add {}", t.name))?;
    }
    Ok(w)
}

/// Bytes the streamed tensors of `w`'s plan write (what the progress bar counts).
fn streamed_bytes(shape: &Llama4Shape, ty: GgmlType, sparse: bool) -> u64 {
    llama4_tensors(shape)
        .iter()
        .map(|t| {
            let n: u64 = t.dims.iter().product();
            match t.kind {
                Kind::Router => n * 4,
                Kind::Weight if !sparse => ty.row_bytes(t.dims[0]).unwrap_or(0) * (n / t.dims[0]),
                _ => 0,
            }
        })
        .sum()
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
    let ty = parse_type(&args.ty)?;
    let mut shape = Llama4Shape::preset(args.preset);
    if let Some(layers) = args.layers {
        ensure!(layers >= 1, "--layers must be at least 1");
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
        ensure!(embd >= 1, "--embd must be at least 1");
        shape.embd = embd;
    }

    let bar = ProgressBar::new(streamed_bytes(&shape, ty, args.sparse)).with_style(
        ProgressStyle::with_template(
            "writing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    if args.sparse {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let writer = build_llama4(&shape, ty, args.sparse, args.seed, &bar)?;
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
            llama4_tensors(&Llama4Shape::preset(Preset::Scout)).len(),
            628
        );
        assert_eq!(
            llama4_tensors(&Llama4Shape::preset(Preset::Maverick)).len(),
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
            assert_eq!(bar.position(), streamed_bytes(&shape, ty, false));
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
}
