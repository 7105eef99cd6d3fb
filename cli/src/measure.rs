//! `fennec perplexity` and `fennec bench`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use fennec_core::{Input, KvType, LoadOptions, Logits, Model, Session, SessionOptions};
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
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    experts: crate::experts::ExpertArgs,
}

/// Tokens routed to experts so far (0 for models without experts).
fn expert_hits(model: &Model) -> u64 {
    model.expert_stats().map_or(0, |s| s.total_hits())
}

/// Runs `fennec bench`: like llama-bench, prompt processing and generation measured
/// separately, each from an empty context, after one warm-up run.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let model = Model::load(&args.model, &LoadOptions::with_threads(args.threads))
        .with_context(|| format!("cannot load {}", args.model.display()))?;
    args.experts.apply(&model);
    let n_vocab = model.n_vocab() as u64;
    let mut session = Session::new(
        model.clone(),
        SessionOptions {
            n_ctx: args.n_prompt.max(args.n_gen).max(1),
            kv_type: args.kv,
            n_ubatch: args.ubatch,
        },
    )?;
    // Deterministic pseudo-random tokens, as llama-bench uses random ones.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next_token = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n_vocab) as u32
    };
    let bar = ProgressBar::new((args.reps * 2 + 2) as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}").expect("valid template"),
    );
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let file_mb = std::fs::metadata(&args.model)
        .map(|m| m.len() as f64 / (1024.0 * 1024.0))
        .with_context(|| format!("cannot stat {}", args.model.display()))?;
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    // Major page faults (pages read from disk, e.g. mmapped weights) of the measured reps.
    let (mut pp_faults, mut tg_faults) = (0u64, 0u64);
    let (mut pp_hits, mut tg_hits) = (0u64, 0u64);
    for rep in 0..=args.reps {
        if args.n_prompt > 0 {
            bar.set_message("prompt");
            let prompt: Vec<u32> = (0..args.n_prompt).map(|_| next_token()).collect();
            session.clear();
            let (faults, hits) = (major_faults(), expert_hits(&model));
            let t = Instant::now();
            session.eval(&[Input::Tokens(&prompt)], Logits::Last)?;
            if rep > 0 {
                pp.push(args.n_prompt as f64 / t.elapsed().as_secs_f64());
                pp_faults += major_faults().saturating_sub(faults);
                pp_hits += expert_hits(&model) - hits;
            }
            bar.inc(1);
        }
        if args.n_gen > 0 {
            bar.set_message("generate");
            session.clear();
            let (faults, hits) = (major_faults(), expert_hits(&model));
            let t = Instant::now();
            for _ in 0..args.n_gen {
                session.eval(&[Input::Tokens(&[next_token()])], Logits::Last)?;
            }
            if rep > 0 {
                tg.push(args.n_gen as f64 / t.elapsed().as_secs_f64());
                tg_faults += major_faults().saturating_sub(faults);
                tg_hits += expert_hits(&model) - hits;
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let (pp_mean, pp_sd) = mean_sd(&pp);
    let (tg_mean, tg_sd) = mean_sd(&tg);
    let rss = peak_rss_mb();
    let kv_mb = session.kv_bytes() as f64 / (1024.0 * 1024.0);
    let experts = model.expert_stats();
    let experts_json = experts.as_ref().map(|s| {
        json!({
            "pp_hits": pp_hits, "tg_hits": tg_hits,
            "used": s.experts_used(),
            "total": s.layers.iter().map(|l| l.hits.len()).sum::<usize>(),
            "expert_mb": s.expert_bytes as f64 / (1024.0 * 1024.0),
            "pinned_mb": s.pinned_bytes as f64 / (1024.0 * 1024.0),
            "pin_error": s.pin_error,
            "hits_per_layer": s.layers.iter().map(|l| &l.hits).collect::<Vec<_>>(),
        })
    });
    if args.json {
        println!(
            "{}",
            json!({
                "pp_tokens": args.n_prompt, "pp_tok_s": pp_mean, "pp_tok_s_sd": pp_sd,
                "tg_tokens": args.n_gen, "tg_tok_s": tg_mean, "tg_tok_s_sd": tg_sd,
                "threads": model.n_threads(), "peak_rss_mb": rss,
                "kv": args.kv.to_string(), "cpu": fennec_quant::cpu::level().name(),
                "pp_major_faults": pp_faults, "tg_major_faults": tg_faults,
                "file_mb": file_mb, "kv_mb": kv_mb, "experts": experts_json,
            })
        );
    } else {
        println!("| model | threads | test | t/s | major faults |");
        println!("|---|---|---|---|---|");
        let name = args
            .model
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        if args.n_prompt > 0 {
            println!(
                "| {name} | {} | pp{} | {pp_mean:.2} ± {pp_sd:.2} | {pp_faults} |",
                model.n_threads(),
                args.n_prompt
            );
        }
        if args.n_gen > 0 {
            println!(
                "| {name} | {} | tg{} | {tg_mean:.2} ± {tg_sd:.2} | {tg_faults} |",
                model.n_threads(),
                args.n_gen
            );
        }
        println!(
            "model file {file_mb:.1} MB, peak RSS {rss:.1} MB, kernels: {}",
            fennec_quant::cpu::level()
        );
        println!("major faults: totals over the {} measured reps", args.reps);
        println!("KV cache {kv_mb:.1} MB");
        if let Some(s) = &experts {
            let total: usize = s.layers.iter().map(|l| l.hits.len()).sum();
            println!(
                "experts: {pp_hits} prompt and {tg_hits} generation routings over the measured reps; \
                 {} of {total} experts used since load; {:.1} MB each; {:.1} MB pinned",
                s.experts_used(),
                s.expert_bytes as f64 / (1024.0 * 1024.0),
                s.pinned_bytes as f64 / (1024.0 * 1024.0),
            );
        }
    }
    Ok(())
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
    (mean, var.sqrt())
}

/// Major page faults of this process so far (`getrusage`'s `ru_majflt`; 0 where unavailable).
fn major_faults() -> u64 {
    // SAFETY: getrusage only fills the zeroed plain C struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    u64::try_from(usage.ru_majflt).unwrap_or(0)
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
