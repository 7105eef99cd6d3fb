//! Fuzzes model loading from a file's metadata: the fuzzer's bytes bend a tiny valid llama
//! GGUF (hyperparameters, vocabulary, merges, token types, chat template, architecture,
//! tensor dims and types), then the file is loaded and, when it loads, used: text encoded
//! and decoded, the chat template rendered, a small session created and a few tokens
//! evaluated and generated. Anything may fail with an error; nothing may panic or abort.
#![no_main]

use fennec_core::chat::ChatMessage;
use fennec_core::gguf::GgufFile;
use fennec_core::{
    CancelHandle, GenerateOptions, Input, KvType, LoadOptions, Logits, Model, SamplerOptions,
    Session, SessionOptions,
};
use fennec_fuzz::{tiny_model, Choices};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let Ok(bytes) = tiny_model(&mut c) else {
        return;
    };
    let Ok(file) = GgufFile::from_vec(bytes) else {
        return;
    };
    if let Ok(model) = Model::from_gguf(file, &LoadOptions::with_threads(1)) {
        exercise(&model, &mut c);
    }
});

/// Uses a loaded model the way an application would, with the rest of the input.
fn exercise(model: &std::sync::Arc<Model>, c: &mut Choices<'_>) {
    let _ = model.fingerprint();
    let text = match c.string(48) {
        t if t.is_empty() => "<|im_start|>user\nHello the llama".to_string(),
        t => t,
    };
    let mut ids = model.encode(&text, true, true).unwrap_or_default();
    let _ = model.decode(&ids);
    let _ = model.decode(&[c.u32(), c.u32()]);
    let _ = model.token_text(c.u32());
    if let Ok(template) = model.chat_template() {
        let messages = [
            ChatMessage::new("system", "be brief"),
            ChatMessage::new("user", text.as_str()),
        ];
        let _ = template.render(&messages, c.byte() & 1 == 0);
    }
    let opts = SessionOptions {
        n_ctx: 16,
        kv_type: c.pick(&[KvType::F16, KvType::F32, KvType::Q8_0]),
        n_ubatch: c.pick(&[4, 1, 16]),
    };
    let Ok(mut session) = Session::new(model.clone(), opts) else {
        return;
    };
    ids.truncate(8);
    if ids.is_empty() || c.byte() % 8 == 1 {
        ids = vec![c.u32() % 300, 1];
    }
    if session.eval(&[Input::Tokens(&ids)], Logits::All).is_err() {
        return;
    }
    let gen = GenerateOptions::new(3, SamplerOptions::greedy());
    let _ = session.generate(
        &[Input::Tokens(&ids[..1])],
        &gen,
        &CancelHandle::new(),
        &mut |_| true,
    );
}
