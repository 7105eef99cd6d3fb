//! A multi-turn chat with a GGUF model, one user turn per line of stdin:
//! `cargo run --release -p fennec-examples --example chat -- MODEL.gguf`.
//!
//! Each turn re-renders the whole conversation with the model's chat template and lets the
//! session keep the prefix it has already evaluated, so only the new turn is computed.

use std::io::{BufRead, Write};

use fennec_core::chat::ChatMessage;
use fennec_core::{
    CancelHandle, GenerateOptions, Input, LoadOptions, Model, SamplerOptions, Session,
    SessionOptions,
};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: chat MODEL.gguf"))?;
    let model = Model::load(&path, &LoadOptions::default())?;
    let mut session = Session::new(model.clone(), SessionOptions::default())?;
    let opts = GenerateOptions::new(256, SamplerOptions::greedy());
    let mut messages = Vec::new();
    for line in std::io::stdin().lock().lines() {
        messages.push(ChatMessage::new("user", line?.trim()));
        let prompt = model.chat_template()?.render(&messages, true)?;
        let tokens = model.encode(&prompt, false, true)?;
        let conversation = [Input::Tokens(&tokens)];
        let kept = session.reuse_prefix(&conversation)?;
        let new = Input::skip(&conversation, kept);
        let done = session.generate(&new, &opts, &CancelHandle::new(), &mut |piece| {
            print!("{}", piece.text);
            std::io::stdout().flush().is_ok()
        })?;
        println!();
        messages.push(ChatMessage::new("assistant", done.text.trim()));
    }
    Ok(())
}
