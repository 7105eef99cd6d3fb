//! A multi-turn chat with a GGUF model, read from stdin: `cargo run --release -p fennec-examples --example chat -- MODEL.gguf`.

use std::io::{BufRead, Write};

use fennec_core::chat::ChatMessage;
use fennec_core::{
    CancelHandle, GenerateOptions, LoadOptions, Model, SamplerOptions, Session, SessionOptions,
};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: chat MODEL.gguf"))?;
    let model = Model::load(&path, &LoadOptions::default())?;
    let template = model.chat_template()?;
    let mut session = Session::new(model.clone(), SessionOptions::default())?;
    let opts = GenerateOptions {
        max_tokens: 256,
        sampler: SamplerOptions::greedy(),
        ..Default::default()
    };
    let mut messages = Vec::new();
    for line in std::io::stdin().lock().lines() {
        messages.push(ChatMessage::new("user", line?.trim()));
        let prompt = template.render(&messages, true)?;
        let tokens = model.tokenizer()?.encode(&prompt, false, true)?;
        session.clear();
        let done = session.generate(&tokens, &opts, &CancelHandle::new(), &mut |t| {
            print!("{t}");
            let _ = std::io::stdout().flush();
        })?;
        println!();
        messages.push(ChatMessage::new("assistant", &done.text));
    }
    Ok(())
}
