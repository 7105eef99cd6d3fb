//! `fennec perplexity` and `fennec bench`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use fennec_core::{Input, KvType, LoadOptions, Logits, Model, Session, SessionOptions};
use fennec_quant::GgmlType;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Arguments of `fennec perplexity`.
#[derive(clap::Args)]
pub struct PerplexityArgs {
    /// The GGUF model.
    #[arg(short, long)]
    model: PathBuf,
    /// The text file.
    #[arg(short = 'f', long)]
    file: PathBuf,
    /// Chunk (context) size.
    #[arg(short = 'c', long = "ctx", default_value_t = 512)]
    ctx: usize,
    /// Worker threads (0 = all cores).
    #[arg(short = 't', long, default_value_t = 0)]
    threads: usize,
    /// KV cache type.
    #[arg(long, default_value = "f16")]
    kv: KvType,
    /// Score at most this many chunks (0 = all).
    #[arg(long, default_value_t = 0)]
    chunks: usize,
}

/// Runs `fennec perplexity` with llama.cpp's convention: the text is cut into chunks of
/// `ctx` tokens, each evaluated from an empty context (its first token replaced by BOS when
/// the model adds one), and only the second half of each chunk is scored.
pub fn perplexity(args: &PerplexityArgs) -> Result<()> {
    let model = Model::load(&args.model, &LoadOptions::with_threads(args.threads))
        .with_context(|| format!("cannot load {}", args.model.display()))?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let tokenizer = model.tokenizer()?;
    let add_bos = tokenizer.add_bos_token();
    let tokens = tokenizer.encode(&text, add_bos, false)?;
    let n_ctx = args.ctx;
    if n_ctx < 4 {
        bail!("--ctx must be at least 4");
    }
    let mut n_chunks = tokens.len() / n_ctx;
    if args.chunks > 0 {
        n_chunks = n_chunks.min(args.chunks);
    }
    if n_chunks == 0 {
        bail!("{} tokens is less than one chunk of {n_ctx}", tokens.len());
    }
    let mut session = Session::new(
        model.clone(),
        SessionOptions {
            n_ctx,
            kv_type: args.kv,
            ..SessionOptions::default()
        },
    )?;
    let n_vocab = model.n_vocab();
    let first = n_ctx / 2;
    let (mut nll, mut count) = (0.0f64, 0usize);
    eprintln!("{} tokens, {n_chunks} chunks of {n_ctx}", tokens.len());
    for chunk in 0..n_chunks {
        let mut ids = tokens[chunk * n_ctx..(chunk + 1) * n_ctx].to_vec();
        if add_bos {
            if let Some(bos) = tokenizer.bos() {
                ids[0] = bos;
            }
        }
        session.clear();
        let logits = session.eval(&[Input::Tokens(&ids)], Logits::All)?;
        for j in first..n_ctx - 1 {
            let row = &logits[j * n_vocab..(j + 1) * n_vocab];
            nll += log_softmax_at(row, ids[j + 1] as usize);
            count += 1;
        }
        print!("[{}]{:.4},", chunk + 1, (nll / count as f64).exp());
        use std::io::Write;
        std::io::stdout().flush()?;
    }
    println!();
    println!("PPL = {:.4}", (nll / count as f64).exp());
    Ok(())
}

/// `-log softmax(row)[target]`, computed in f64.
fn log_softmax_at(row: &[f32], target: usize) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&l| (l as f64 - max).exp()).sum();
    -(row[target] as f64 - max - sum.ln())
}

/// Arguments of `fennec bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The GGUF model.
    #[arg(short, long)]
    model: PathBuf,
    /// Prompt tokens evaluated in one batch (pp).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Tokens generated one at a time (tg).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Context depth: tokens already in the context (filled untimed) before each pp and tg
    /// test; a comma list (`-d 0,4096`) measures each depth.
    #[arg(
        short = 'd',
        long = "n-depth",
        value_delimiter = ',',
        default_value = "0"
    )]
    depths: Vec<usize>,
    /// Worker threads (0 = all cores).
    #[arg(short = 't', long, default_value_t = 0)]
    threads: usize,
    /// Repetitions of each test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    reps: usize,
    /// KV cache type.
    #[arg(long, default_value = "f16")]
    kv: KvType,
    /// Micro-batch size for the prompt.
    #[arg(long, default_value_t = 512)]
    ubatch: usize,
    /// Print one JSON object per depth, one a line.
    #[arg(long)]
    json: bool,
    /// Rewrite dense Q4_0/Q4_1/Q8_0/Q4_K matrices at load into the panels this CPU's kernels
    /// read directly (`off`: run on the file's rows, to measure the lever).
    #[arg(long, default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    repack: bool,
    #[command(flatten)]
    experts: crate::experts::ExpertArgs,
    #[command(flatten)]
    backend: crate::backend::BackendArgs,
}

/// `on` or `off` as a bool.
fn parse_on_off(s: &str) -> std::result::Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, got {s:?}")),
    }
}

/// Tokens routed to experts so far (0 for models without experts).
fn expert_hits(model: &Model) -> u64 {
    model.expert_stats().map_or(0, |s| s.total_hits())
}

/// Deterministic pseudo-random token ids below `n_vocab` (llama-bench uses random ones).
struct TokenSource {
    state: u64,
    n_vocab: u64,
}

impl TokenSource {
    fn new(n_vocab: usize) -> Self {
        Self {
            state: 0x2545_f491_4f6c_dd1d,
            n_vocab: n_vocab as u64,
        }
    }

    fn next(&mut self) -> u32 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % self.n_vocab) as u32
    }

    fn take(&mut self, n: usize) -> Vec<u32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// The measured repetitions of pp and tg at one context depth.
#[derive(Debug, Default)]
struct DepthResult {
    depth: usize,
    /// Prompt tokens per second, one per measured rep.
    pp: Vec<f64>,
    /// Generated tokens per second, one per measured rep.
    tg: Vec<f64>,
    /// Major page faults (pages read from disk, e.g. mmapped weights) of the measured reps.
    pp_faults: u64,
    tg_faults: u64,
    /// Expert routings of the measured reps.
    pp_hits: u64,
    tg_hits: u64,
    /// Bytes read from storage during the measured reps (`None`: no /proc).
    pp_read: Option<u64>,
    tg_read: Option<u64>,
    /// CPU seconds (user, system) of all threads during the measured reps.
    pp_cpu: (f64, f64),
    tg_cpu: (f64, f64),
}

/// Runs `fennec bench`: like llama-bench, prompt processing and generation measured
/// separately after one warm-up run, each after `depth` tokens already in the context.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let opts = LoadOptions {
        repack: args.repack,
        ..LoadOptions::with_threads(args.threads)
    };
    let model = args.backend.load(&args.model, opts)?;
    args.experts.apply(&model);
    let max_depth = args.depths.iter().copied().max().unwrap_or(0);
    let n_ctx = max_depth
        .checked_add(args.n_prompt.max(args.n_gen))
        .context("--n-depth plus the test size overflows")?;
    let mut session = Session::new(
        model.clone(),
        SessionOptions {
            n_ctx: n_ctx.max(1),
            kv_type: args.kv,
            n_ubatch: args.ubatch,
        },
    )?;
    let mut tokens = TokenSource::new(model.n_vocab());
    let tests = usize::from(args.n_prompt > 0) + usize::from(args.n_gen > 0);
    let bar = ProgressBar::new((args.depths.len() * (args.reps + 1) * tests) as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}").expect("valid template"),
    );
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let file_mb = std::fs::metadata(&args.model)
        .map(|m| m.len() as f64 / (1024.0 * 1024.0))
        .with_context(|| format!("cannot stat {}", args.model.display()))?;
    let read_before = disk_read_bytes();
    let mut results = Vec::with_capacity(args.depths.len());
    for &depth in &args.depths {
        results.push(bench_depth(
            &mut session,
            &model,
            args,
            depth,
            &mut tokens,
            &bar,
        )?);
    }
    bar.finish_and_clear();
    let summary = Summary {
        rss: peak_rss_mb(),
        kv_mb: session.kv_bytes() as f64 / (1024.0 * 1024.0),
        file_mb,
        disk_read_mb: disk_read_bytes()
            .zip(read_before)
            .map(|(after, before)| after.saturating_sub(before) as f64 / (1024.0 * 1024.0)),
        kernels: kernel_paths(&model),
    };
    if args.json {
        for r in &results {
            println!("{}", bench_json(args, &model, &summary, r));
        }
    } else {
        print_bench_table(args, &model, &summary, &results);
    }
    Ok(())
}

/// Measures the warm-up and `args.reps` repetitions of pp and tg at `depth`.
fn bench_depth(
    session: &mut Session,
    model: &Model,
    args: &BenchArgs,
    depth: usize,
    tokens: &mut TokenSource,
    bar: &ProgressBar,
) -> Result<DepthResult> {
    let context = tokens.take(depth);
    let mut r = DepthResult {
        depth,
        pp_read: disk_read_bytes().map(|_| 0),
        tg_read: disk_read_bytes().map(|_| 0),
        ..DepthResult::default()
    };
    for rep in 0..=args.reps {
        if args.n_prompt > 0 {
            bar.set_message(format!("prompt @ depth {depth}"));
            let prompt = tokens.take(args.n_prompt);
            fill_depth(session, &context)?;
            let (faults, hits, read) = (major_faults(), expert_hits(model), disk_read_bytes());
            let cpu = cpu_seconds();
            let t = Instant::now();
            session.eval(&[Input::Tokens(&prompt)], Logits::Last)?;
            if rep > 0 {
                r.pp.push(args.n_prompt as f64 / t.elapsed().as_secs_f64());
                r.pp_faults += major_faults().saturating_sub(faults);
                r.pp_hits += expert_hits(model) - hits;
                add_read_since(&mut r.pp_read, read);
                add_cpu_since(&mut r.pp_cpu, cpu);
            }
            bar.inc(1);
        }
        if args.n_gen > 0 {
            bar.set_message(format!("generate @ depth {depth}"));
            fill_depth(session, &context)?;
            let (faults, hits, read) = (major_faults(), expert_hits(model), disk_read_bytes());
            let cpu = cpu_seconds();
            let t = Instant::now();
            for _ in 0..args.n_gen {
                session.eval(&[Input::Tokens(&[tokens.next()])], Logits::Last)?;
            }
            if rep > 0 {
                r.tg.push(args.n_gen as f64 / t.elapsed().as_secs_f64());
                r.tg_faults += major_faults().saturating_sub(faults);
                r.tg_hits += expert_hits(model) - hits;
                add_read_since(&mut r.tg_read, read);
                add_cpu_since(&mut r.tg_cpu, cpu);
            }
            bar.inc(1);
        }
    }
    Ok(r)
}

/// Adds the bytes read from storage since `before` to `total` (which stays `None` once a
/// reading of /proc failed).
fn add_read_since(total: &mut Option<u64>, before: Option<u64>) {
    *total = total
        .zip(before)
        .zip(disk_read_bytes())
        .map(|((sum, before), now)| sum + now.saturating_sub(before));
}

/// Adds the CPU seconds (user, system) used since `before` to `total`.
fn add_cpu_since(total: &mut (f64, f64), before: (f64, f64)) {
    let now = cpu_seconds();
    total.0 += now.0 - before.0;
    total.1 += now.1 - before.1;
}

/// Leaves exactly `context` in the session, untimed: by dropping what a previous test
/// appended when the session still starts with it, else by evaluating it again.
fn fill_depth(session: &mut Session, context: &[u32]) -> Result<()> {
    let n = context.len();
    let holds = session.tokens().get(..n) == Some(context);
    if holds && session.truncate(n).is_ok() {
        return Ok(());
    }
    session.clear();
    session.eval(&[Input::Tokens(context)], Logits::None)?;
    Ok(())
}

/// What one bench run measured beside the per-depth rates.
struct Summary {
    rss: f64,
    kv_mb: f64,
    file_mb: f64,
    /// Bytes this process read from storage during the measured runs (`None`: no /proc).
    disk_read_mb: Option<f64>,
    /// Each matrix weight type of the model with the dot-product path it runs on.
    kernels: Vec<KernelUse>,
}

/// One weight type of the model and the kernel path its matrix products take.
struct KernelUse {
    ty: GgmlType,
    path: &'static str,
    /// The matmul arithmetic ([`fennec_quant::matmul::arithmetic`]): `row-lane` or `dot`,
    /// with ` panels` when the type's matrices were repacked at load.
    matmul: String,
    mb: f64,
}

/// The matrix (2-D and up) weight types of `model`, largest share first, with the path
/// [`fennec_quant::dot::kernel_path`] picks at this CPU's level.
fn kernel_paths(model: &Model) -> Vec<KernelUse> {
    let mut by_type: Vec<KernelUse> = Vec::new();
    for t in model
        .gguf()
        .tensor_infos()
        .iter()
        .filter(|t| t.dims.len() >= 2)
    {
        let mb = t.size as f64 / (1024.0 * 1024.0);
        match by_type.iter_mut().find(|k| k.ty == t.ty) {
            Some(k) => k.mb += mb,
            None => by_type.push(KernelUse {
                ty: t.ty,
                path: fennec_quant::dot::kernel_path(fennec_quant::cpu::level(), t.ty)
                    .unwrap_or("none"),
                matmul: matmul_path(model, t.ty),
                mb,
            }),
        }
    }
    by_type.sort_by(|a, b| b.mb.total_cmp(&a.mb));
    by_type
}

/// The matmul arithmetic of `ty` in `model`, with ` panels` when matrices of that type were
/// repacked at load.
fn matmul_path(model: &Model, ty: GgmlType) -> String {
    let arithmetic = fennec_quant::matmul::arithmetic(fennec_quant::cpu::level(), ty);
    if model.repacked_types().contains(&ty) {
        format!("{arithmetic} panels")
    } else {
        arithmetic.to_string()
    }
}

/// `F32: avx2 dot, Q4_1: avx2 row-lane panels` — the kernel list as one line.
fn kernels_line(kernels: &[KernelUse]) -> String {
    let parts: Vec<String> = kernels
        .iter()
        .map(|k| format!("{}: {} {}", k.ty, k.path, k.matmul))
        .collect();
    parts.join(", ")
}

/// One depth's result as the JSON object `--json` prints.
fn bench_json(
    args: &BenchArgs,
    model: &Model,
    summary: &Summary,
    r: &DepthResult,
) -> serde_json::Value {
    let (pp_mean, pp_sd) = mean_sd(&r.pp);
    let (tg_mean, tg_sd) = mean_sd(&r.tg);
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let tg_tokens = (r.tg.len() * args.n_gen).max(1) as f64;
    let experts_json = model.expert_stats().map(|s| {
        json!({
            "pp_hits": r.pp_hits, "tg_hits": r.tg_hits,
            "tg_routed_mb_per_token": mb(r.tg_hits * s.expert_bytes) / tg_tokens,
            "used": s.experts_used(),
            "total": s.layers.iter().map(|l| l.hits.len()).sum::<usize>(),
            "expert_mb": s.expert_bytes as f64 / (1024.0 * 1024.0),
            "pinned_mb": s.pinned_bytes as f64 / (1024.0 * 1024.0),
            "pin_error": s.pin_error,
            "expert_uses": s.expert_uses, "prefetched": s.prefetched,
            "prefetch_hits": s.prefetch_hits,
            "hits_per_layer": s.layers.iter().map(|l| &l.hits).collect::<Vec<_>>(),
        })
    });
    json!({
        "n_depth": r.depth,
        "pp_tokens": args.n_prompt, "pp_tok_s": pp_mean, "pp_tok_s_sd": pp_sd,
        "tg_tokens": args.n_gen, "tg_tok_s": tg_mean, "tg_tok_s_sd": tg_sd,
        "threads": model.n_threads(), "peak_rss_mb": summary.rss,
        "kv": args.kv.to_string(), "cpu": fennec_quant::cpu::level().name(),
        "backend": crate::backend::describe(model),
        "pp_major_faults": r.pp_faults, "tg_major_faults": r.tg_faults,
        "file_mb": summary.file_mb, "kv_mb": summary.kv_mb, "experts": experts_json,
        "repacked_mb": model.repacked_bytes() as f64 / (1024.0 * 1024.0),
        "disk_read_mb": summary.disk_read_mb,
        "pp_read_mb": r.pp_read.map(mb), "tg_read_mb": r.tg_read.map(mb),
        "tg_read_mb_per_token": r.tg_read.map(|b| mb(b) / tg_tokens),
        "pp_cpu_user_s": r.pp_cpu.0, "pp_cpu_sys_s": r.pp_cpu.1,
        "tg_cpu_user_s": r.tg_cpu.0, "tg_cpu_sys_s": r.tg_cpu.1,
        "kernels": summary.kernels.iter().map(|k| json!({
            "type": k.ty.to_string(), "path": k.path, "matmul": k.matmul, "mb": k.mb,
        })).collect::<Vec<_>>(),
    })
}

/// The llama-bench style table: one pp and one tg row per depth (`pp512 @ d4096`).
fn print_bench_table(args: &BenchArgs, model: &Model, summary: &Summary, results: &[DepthResult]) {
    println!("| model | threads | test | t/s | major faults |");
    println!("|---|---|---|---|---|");
    let name = args
        .model
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let threads = model.n_threads();
    for r in results {
        let at = if r.depth > 0 {
            format!(" @ d{}", r.depth)
        } else {
            String::new()
        };
        if args.n_prompt > 0 {
            let (mean, sd) = mean_sd(&r.pp);
            let (n, faults) = (args.n_prompt, r.pp_faults);
            println!("| {name} | {threads} | pp{n}{at} | {mean:.2} ± {sd:.2} | {faults} |");
        }
        if args.n_gen > 0 {
            let (mean, sd) = mean_sd(&r.tg);
            let (n, faults) = (args.n_gen, r.tg_faults);
            println!("| {name} | {threads} | tg{n}{at} | {mean:.2} ± {sd:.2} | {faults} |");
        }
    }
    println!(
        "model file {:.1} MB, peak RSS {:.1} MB, read from disk {}, CPU level {} (kernels: {})",
        summary.file_mb,
        summary.rss,
        summary
            .disk_read_mb
            .map_or_else(|| "n/a".to_string(), |mb| format!("{mb:.1} MB")),
        fennec_quant::cpu::level(),
        kernels_line(&summary.kernels)
    );
    println!("major faults: totals over the {} measured reps", args.reps);
    println!("backend: {}", crate::backend::describe(model));
    println!("KV cache {:.1} MB", summary.kv_mb);
    if let Some(s) = model.expert_stats() {
        let total: usize = s.layers.iter().map(|l| l.hits.len()).sum();
        let pp_hits: u64 = results.iter().map(|r| r.pp_hits).sum();
        let tg_hits: u64 = results.iter().map(|r| r.tg_hits).sum();
        println!(
            "experts: {pp_hits} prompt and {tg_hits} generation routings over the measured reps; \
             {} of {total} experts used since load; {:.1} MB each; {:.1} MB pinned",
            s.experts_used(),
            s.expert_bytes as f64 / (1024.0 * 1024.0),
            s.pinned_bytes as f64 / (1024.0 * 1024.0),
        );
    }
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
    (mean, var.sqrt())
}

/// This process's resource usage so far (all threads), `None` where unavailable.
fn rusage() -> Option<libc::rusage> {
    // SAFETY: getrusage only fills the zeroed plain C struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    (unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0).then_some(usage)
}

/// Major page faults of this process so far (`getrusage`'s `ru_majflt`; 0 where unavailable).
fn major_faults() -> u64 {
    rusage().map_or(0, |u| u64::try_from(u.ru_majflt).unwrap_or(0))
}

/// CPU seconds (user, system) this process has used so far, all threads (0 where unavailable).
fn cpu_seconds() -> (f64, f64) {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    rusage().map_or((0.0, 0.0), |u| (secs(u.ru_utime), secs(u.ru_stime)))
}

/// Peak resident set size of this process in MB (from /proc, 0 where unavailable).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Bytes this process has read from storage (`read_bytes` of /proc/self/io: page-cache
/// misses, including those of memory-mapped weights), `None` where unavailable.
fn disk_read_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/io")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("read_bytes:"))?
        .trim()
        .parse()
        .ok()
}
