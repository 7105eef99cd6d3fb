//! `fennec run`, `fennec chat` and `fennec tokenize`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use fennec_core::chat::ChatMessage;
use fennec_core::{
    CancelHandle, Completion, GenerateOptions, Input, KvType, LoadOptions, Logits, Model,
    SamplerOptions, Session, SessionOptions,
};
use serde_json::json;

/// Model, context and sampling flags shared by `run` and `chat`.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// The GGUF model.
    #[arg(short, long)]
    model: PathBuf,
    /// Worker threads (0 = all cores).
    #[arg(short = 't', long, default_value_t = 0)]
    threads: usize,
    /// Context size in tokens.
    #[arg(short = 'c', long = "ctx", default_value_t = 4096)]
    ctx: usize,
    /// KV cache type.
    #[arg(long, default_value = "f16")]
    kv: KvType,
    /// Tokens to generate (0 = until the context is full).
    #[arg(short = 'n', long = "n-predict", default_value_t = 256)]
    n_predict: usize,
    /// Temperature (0 = greedy).
    #[arg(long, default_value_t = 0.8)]
    temp: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Top-p (1 = off).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Min-p (0 = off).
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Frequency penalty (0 = off).
    #[arg(long, default_value_t = 0.0)]
    frequency_penalty: f32,
    /// Presence penalty (0 = off).
    #[arg(long, default_value_t = 0.0)]
    presence_penalty: f32,
    /// Random seed.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// A string that ends generation (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    #[command(flatten)]
    experts: crate::experts::ExpertArgs,
    #[command(flatten)]
    prompt_cache: crate::prompt_cache::PromptCacheArgs,
    #[command(flatten)]
    backend: crate::backend::BackendArgs,
}

impl ModelArgs {
    pub(crate) fn load(&self) -> Result<(std::sync::Arc<Model>, Session)> {
        let model = self
            .backend
            .load(&self.model, LoadOptions::with_threads(self.threads))?;
        self.experts.apply(&model);
        let session = Session::new(
            model.clone(),
            SessionOptions {
                n_ctx: self.ctx,
                kv_type: self.kv,
                ..SessionOptions::default()
            },
        )?;
        Ok((model, session))
    }

    pub(crate) fn generate_options(&self) -> GenerateOptions {
        GenerateOptions {
            max_tokens: self.n_predict,
            sampler: SamplerOptions {
                temperature: self.temp,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                frequency_penalty: self.frequency_penalty,
                presence_penalty: self.presence_penalty,
                seed: self.seed,
                ..SamplerOptions::default()
            },
            stop_strings: self.stop.clone(),
            stop_tokens: Vec::new(),
        }
    }
}

/// Arguments of `fennec run`.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: ModelArgs,
    /// The prompt.
    #[arg(short = 'p', long)]
    prompt: String,
    /// Wrap the prompt as one user turn through the model's chat template.
    #[arg(long)]
    chat: bool,
    /// System message (with --chat).
    #[arg(long)]
    system: Option<String>,
    /// Do not add BOS to a raw prompt.
    #[arg(long)]
    no_bos: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
}

/// Runs `fennec run`.
pub fn run(args: &RunArgs) -> Result<()> {
    let (model, mut session) = args.common.load()?;
    let prompt = if args.chat {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage::new("system", system));
        }
        messages.push(ChatMessage::new("user", &args.prompt));
        crate::text::chat_prompt(&model, &messages)?
    } else {
        let add_bos = model.tokenizer()?.add_bos_token() && !args.no_bos;
        crate::text::tokenize(&model, &args.prompt, add_bos, false)?
    };
    let cache = crate::prompt_cache::PromptCache::from_args(&args.common.prompt_cache);
    let restored = cache.as_ref().map_or(0, |c| c.load(&mut session));
    let started = Instant::now();
    let cached = prefill_all_but_last(&mut session, &prompt)?;
    let prefill_seconds = started.elapsed().as_secs_f64();
    if let Some(cache) = &cache {
        // Unchanged when the whole cached context was reused and nothing was added to it.
        if restored == 0 || cached != restored || session.n_past() != restored {
            cache.save(&session);
        }
    }
    let opts = args.common.generate_options();
    let cancel = CancelHandle::new();
    let last = &prompt[session.n_past().min(prompt.len())..];
    let mut completion = session.generate(
        &[Input::Tokens(last)],
        &opts,
        &cancel,
        &mut print_pieces(!args.json),
    )?;
    let s = &mut completion.stats;
    s.prompt_tokens = prompt.len() - cached;
    s.prompt_seconds += prefill_seconds;
    s.time_to_first_token += prefill_seconds;
    report(&completion, &prompt, cached, args.json)
}

/// A generation callback that writes each piece to stdout as it comes (when `stream`) and
/// never stops generation.
pub(crate) fn print_pieces(stream: bool) -> impl FnMut(fennec_core::Piece<'_>) -> bool {
    let stdout = std::io::stdout();
    move |piece| {
        if stream {
            let mut out = stdout.lock();
            let _ = out.write_all(piece.text.as_bytes());
            let _ = out.flush();
        }
        true
    }
}

/// Evaluates `prompt` but its last token, after the longest prefix of it the session
/// already holds (from a prompt cache); returns the positions reused. The last token is
/// left for [`Session::generate`], so the session can be saved right after the prompt.
fn prefill_all_but_last(session: &mut Session, prompt: &[u32]) -> Result<usize> {
    let kept = session.reuse_prefix(&[Input::Tokens(prompt)])?;
    let end = prompt.len().saturating_sub(1).max(kept);
    session.eval(&[Input::Tokens(&prompt[kept..end])], Logits::None)?;
    Ok(kept)
}

/// Prints the result of `fennec run`: one JSON object, or a summary line on stderr after
/// the streamed text.
fn report(completion: &Completion, prompt: &[u32], cached: usize, json: bool) -> Result<()> {
    let s = &completion.stats;
    if json {
        let out = json!({
            "prompt_tokens": prompt,
            "cached_tokens": cached,
            "tokens": completion.tokens,
            "text": completion.text,
            "stop": completion.stop.as_str(),
            "stats": {
                "prompt_tok_s": s.prompt_tok_s(),
                "generation_tok_s": s.generation_tok_s(),
                "time_to_first_token_s": s.time_to_first_token,
            },
        });
        println!("{out}");
    } else {
        println!();
        eprintln!(
            "[{} prompt tokens at {:.1} tok/s ({cached} cached), {} generated at {:.1} tok/s, stop: {}]",
            s.prompt_tokens,
            s.prompt_tok_s(),
            s.generated_tokens,
            s.generation_tok_s(),
            completion.stop.as_str()
        );
    }
    Ok(())
}

/// Arguments of `fennec chat`.
#[derive(clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    common: ModelArgs,
    /// System message.
    #[arg(long)]
    system: Option<String>,
}

/// Runs `fennec chat`: reads user turns from stdin until EOF or `/exit`.
pub fn chat(args: &ChatArgs) -> Result<()> {
    let (model, mut session) = args.common.load()?;
    let cache = crate::prompt_cache::PromptCache::from_args(&args.common.prompt_cache);
    if let Some(cache) = &cache {
        let restored = cache.load(&mut session);
        if restored > 0 {
            eprintln!("[prompt cache: {restored} positions restored]");
        }
    }
    let opts = args.common.generate_options();
    let cancel = CancelHandle::new();
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(ChatMessage::new("system", system));
    }
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        write!(stdout, "> ")?;
        stdout.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim() == "/exit" {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            continue;
        }
        messages.push(ChatMessage::new("user", line));
        // Re-render the whole conversation and reuse the cached prefix it shares.
        let tokens = crate::text::chat_prompt(&model, &messages)?;
        let conversation = [Input::Tokens(&tokens)];
        let kept = session.reuse_prefix(&conversation)?;
        let new = Input::skip(&conversation, kept);
        let completion = session.generate(&new, &opts, &cancel, &mut |piece| {
            let _ = stdout.write_all(piece.text.as_bytes());
            let _ = stdout.flush();
            true
        })?;
        writeln!(stdout)?;
        if let Some(cache) = &cache {
            cache.save(&session);
        }
        messages.push(ChatMessage::new("assistant", completion.text.trim()));
    }
    Ok(())
}

/// Arguments of `fennec tokenize`.
#[derive(clap::Args)]
pub struct TokenizeArgs {
    /// The GGUF model.
    #[arg(short, long)]
    model: PathBuf,
    /// The text.
    text: String,
    /// Match special tokens written in the text.
    #[arg(long)]
    special: bool,
    /// Do not add BOS even if the model asks for it.
    #[arg(long)]
    no_bos: bool,
}

/// Runs `fennec tokenize`.
pub fn tokenize(args: &TokenizeArgs) -> Result<()> {
    let file = fennec_core::gguf::GgufFile::open(&args.model)
        .with_context(|| format!("cannot open {}", args.model.display()))?;
    let tokenizer = fennec_core::tokenizer::Tokenizer::from_gguf(file.metadata())?;
    let add_bos = tokenizer.add_bos_token() && !args.no_bos;
    let ids = tokenizer.encode(&args.text, add_bos, args.special)?;
    println!("{}", serde_json::to_string(&ids)?);
    Ok(())
}
