//! `fennec`: run, inspect and measure GGUF models on this device.

mod backend;
mod experts;
mod generate;
mod inspect;
mod logits;
mod measure;
mod npy;
mod prompt_cache;
mod synth;
mod text;
mod vision;
mod voice;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "fennec",
    version,
    about = "On-device runtime for quantized GGUF language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a GGUF file's architecture, hyperparameters, tokenizer and tensors.
    Inspect(inspect::InspectArgs),
    /// Generate text from a prompt (streams it; --json for one object).
    Run(generate::RunArgs),
    /// Chat with the model through its chat template (reads turns from stdin).
    Chat(generate::ChatArgs),
    /// Print the token ids of a text as a JSON array.
    Tokenize(generate::TokenizeArgs),
    /// Perplexity of a text file with llama.cpp's convention.
    Perplexity(measure::PerplexityArgs),
    /// Prompt and generation speed, like llama-bench.
    Bench(measure::BenchArgs),
    /// Write the float32 logits of every position of a prompt as a .npy file.
    Logits(logits::LogitsArgs),
    /// Write a GGUF with a real model's exact layout and random weights (size/speed tests);
    /// --mmproj writes its vision tower and projector.
    #[command(after_help = synth::AFTER_HELP)]
    Synth(synth::SynthArgs),
    /// Answer a question about an image (JPEG/PNG or a raw camera frame) with a Llama 4
    /// model and its mmproj.
    Describe(vision::DescribeArgs),
    /// Write an image's projected embeddings ([n_tokens, n_embd] float32 .npy).
    EmbedImage(vision::EmbedImageArgs),
    /// Transcribe an audio file (WAV/FLAC) with a Whisper model.
    Transcribe(voice::TranscribeArgs),
    /// Microphone → voice activity → Whisper transcript (→ a chat model's spoken-to answer).
    Listen(voice::ListenArgs),
}

fn main() -> std::process::ExitCode {
    // Output piped into `head` and the like: end quietly when the reader goes away, as Unix
    // tools do, instead of panicking in `println!` on EPIPE.
    // SAFETY: restoring SIGPIPE's default disposition at start-up, before any thread exists.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL)
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FENNEC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fennec: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Logits(args) => logits::run(&args),
        Command::Run(args) => generate::run(&args),
        Command::Chat(args) => generate::chat(&args),
        Command::Tokenize(args) => generate::tokenize(&args),
        Command::Perplexity(args) => measure::perplexity(&args),
        Command::Bench(args) => measure::bench(&args),
        Command::Synth(args) => synth::run(&args),
        Command::Describe(args) => vision::describe(&args),
        Command::EmbedImage(args) => vision::embed_image(&args),
        Command::Transcribe(args) => voice::transcribe(&args),
        Command::Listen(args) => voice::listen(&args),
    }
}
