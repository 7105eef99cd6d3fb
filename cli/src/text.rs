//! Text ↔ tokens for the CLI, through the model's tokenizer and chat template.

use anyhow::Result;
use fennec_core::chat::ChatMessage;
use fennec_core::Model;

/// Tokenizes `text` with the model's tokenizer.
pub fn tokenize(model: &Model, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>> {
    Ok(model.tokenizer()?.encode(text, add_bos, parse_special)?)
}

/// Renders `messages` through the model's chat template (with the assistant prompt) and
/// tokenizes the result with special tokens parsed, as llama.cpp does for chat.
pub fn chat_prompt(model: &Model, messages: &[ChatMessage]) -> Result<Vec<u32>> {
    let rendered = model.chat_template()?.render(messages, true)?;
    let tokenizer = model.tokenizer()?;
    // Templates that write the BOS text themselves must not get a second one.
    let bos_in_text = tokenizer
        .bos()
        .and_then(|b| tokenizer.token_text(b).ok())
        .is_some_and(|b| rendered.starts_with(b));
    let add_bos = tokenizer.add_bos_token() && !bos_in_text;
    Ok(tokenizer.encode(&rendered, add_bos, true)?)
}
