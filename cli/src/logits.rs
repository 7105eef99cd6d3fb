//! `fennec logits`: the float32 logits of every position, as `.npy` (a verification tool).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use fennec_core::{Input, KvType, LoadOptions, Logits, Model, Session, SessionOptions};

/// Arguments of `fennec logits`.
#[derive(clap::Args)]
pub struct LogitsArgs {
    /// The GGUF model.
    #[arg(short, long)]
    model: PathBuf,
    /// Text to tokenize and evaluate.
    #[arg(long, conflicts_with = "tokens")]
    prompt: Option<String>,
    /// A file of token ids separated by commas or whitespace, used verbatim (no BOS added).
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Do not add the BOS token to --prompt.
    #[arg(long)]
    no_bos: bool,
    /// KV cache type.
    #[arg(long, default_value = "f32")]
    kv: KvType,
    /// Micro-batch size.
    #[arg(long, default_value_t = 512)]
    ubatch: usize,
    /// Evaluate one token at a time (same as --ubatch 1).
    #[arg(long)]
    one_by_one: bool,
    /// Worker threads (0 = all cores).
    #[arg(short = 't', long, default_value_t = 0)]
    threads: usize,
    /// Output `.npy` file: float32 [n_tokens, n_vocab].
    #[arg(long)]
    out: PathBuf,
}

/// Reads ids separated by commas and/or whitespace.
pub fn read_token_file(path: &PathBuf) -> Result<Vec<u32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .with_context(|| format!("{s:?} in {} is not a token id", path.display()))
        })
        .collect()
}

/// Runs `fennec logits`.
pub fn run(args: &LogitsArgs) -> Result<()> {
    let model = Model::load(&args.model, &LoadOptions::with_threads(args.threads))
        .with_context(|| format!("cannot load {}", args.model.display()))?;
    let tokens = match (&args.tokens, &args.prompt) {
        (Some(file), _) => read_token_file(file)?,
        (None, Some(text)) => crate::text::tokenize(&model, text, !args.no_bos, false)?,
        (None, None) => bail!("give --prompt TEXT or --tokens FILE"),
    };
    if tokens.is_empty() {
        bail!("no tokens to evaluate");
    }
    let mut session = Session::new(
        model.clone(),
        SessionOptions {
            n_ctx: tokens.len(),
            kv_type: args.kv,
            n_ubatch: args.ubatch,
        },
    )?;
    let ubatch = if args.one_by_one { 1 } else { args.ubatch };
    let logits = session.eval_with_ubatch(&[Input::Tokens(&tokens)], Logits::All, ubatch)?;
    crate::npy::write_f32(&args.out, &[tokens.len(), model.n_vocab()], logits)?;
    eprintln!(
        "wrote {} x {} logits to {}",
        tokens.len(),
        model.n_vocab(),
        args.out.display()
    );
    Ok(())
}
