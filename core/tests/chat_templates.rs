//! Chat templates rendered exactly as Python jinja2 renders them in transformers.
//!
//! Goldens: `tests/fixtures/chat/goldens.json`, made by `make_goldens.py` beside it.

use fennec_core::chat::{ChatError, ChatMessage, ChatTemplate};
use fennec_core::gguf::{Array, GgufFile, Metadata, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/chat");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

fn goldens() -> serde_json::Value {
    serde_json::from_str(&read("goldens.json")).unwrap()
}

fn template(g: &serde_json::Value, name: &str) -> ChatTemplate {
    let tokens = &g["tokens"][name];
    ChatTemplate::new(
        read(&format!("{name}.jinja")),
        tokens["bos_token"].as_str().unwrap(),
        tokens["eos_token"].as_str().unwrap(),
    )
    .unwrap()
}

/// The messages as plain role/content pairs, when every content is a string.
fn plain(messages: &serde_json::Value) -> Option<Vec<ChatMessage>> {
    messages
        .as_array()?
        .iter()
        .map(|m| {
            let obj = m.as_object()?;
            if obj.len() != 2 {
                return None;
            }
            Some(ChatMessage::new(
                m["role"].as_str()?,
                m["content"].as_str()?,
            ))
        })
        .collect()
}

#[test]
fn renderings_match_jinja2() {
    let g = goldens();
    let smol = template(&g, "smollm2");
    let llama4 = template(&g, "llama4");
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for c in cases {
        let t = match c["template"].as_str().unwrap() {
            "smollm2" => &smol,
            "llama4" => &llama4,
            other => panic!("unknown template {other}"),
        };
        let name = format!(
            "{}/{} agp={}",
            c["template"].as_str().unwrap(),
            c["name"].as_str().unwrap(),
            c["add_generation_prompt"]
        );
        let agp = c["add_generation_prompt"].as_bool().unwrap();
        let extra = c["extra"].as_object().unwrap();
        let got = t.render_json(&c["messages"], agp, extra);
        // The typed API must agree wherever it can express the conversation.
        if let (Some(msgs), true) = (plain(&c["messages"]), extra.is_empty()) {
            let typed = t.render(&msgs, agp);
            if format!("{typed:?}") != format!("{got:?}") {
                failures.push(format!("{name}: render and render_json differ"));
            }
        }
        match (got, c.get("output"), c.get("raised")) {
            (Ok(out), Some(want), _) if out == want.as_str().unwrap() => {}
            (Err(ChatError::Raised(msg)), _, Some(want)) if msg == want.as_str().unwrap() => {}
            (got, _, _) => failures.push(format!(
                "{name}\n  jinja2: {:?}\n  fennec: {got:?}",
                c.get("output").or(c.get("raised"))
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn metadata_with_template(source: Option<&str>) -> Metadata {
    let mut md = Metadata::new();
    md.insert(
        "tokenizer.ggml.tokens",
        Array::from(vec!["<s>".to_string(), "</s>".to_string(), "a".to_string()]),
    )
    .unwrap();
    md.insert("tokenizer.ggml.bos_token_id", Value::U32(0))
        .unwrap();
    md.insert("tokenizer.ggml.eos_token_id", Value::U32(1))
        .unwrap();
    if let Some(s) = source {
        md.insert("tokenizer.chat_template", s).unwrap();
    }
    md
}

#[test]
fn from_gguf_uses_vocab_bos_and_eos() {
    let md = metadata_with_template(Some(
        "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}",
    ));
    let t = ChatTemplate::from_gguf(&md).unwrap();
    let out = t.render(&[ChatMessage::new("user", "hi")], false).unwrap();
    assert_eq!(out, "<s>hi</s>");
}

#[test]
fn smollm2_model_template_matches_fixture() {
    let dir = std::env::var_os("FENNEC_MODELS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/fennec/models")
        });
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models.sh or set FENNEC_MODELS",
        path.display()
    );
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(
        file.metadata().get_str("tokenizer.chat_template").unwrap(),
        read("smollm2.jinja")
    );
    let t = ChatTemplate::from_gguf(file.metadata()).unwrap();
    let out = t
        .render(
            &[
                ChatMessage::new("system", "S"),
                ChatMessage::new("user", "U"),
            ],
            true,
        )
        .unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn missing_template_is_an_error() {
    let md = metadata_with_template(None);
    assert!(matches!(
        ChatTemplate::from_gguf(&md),
        Err(ChatError::MissingTemplate)
    ));
}

#[test]
fn broken_templates_are_errors_not_panics() {
    for src in [
        "{% for m in messages %}{{ m.content }}",
        "{{ messages[0].content ",
        "{% if %}{% endif %}",
        "{% endfor %}",
        "{{ 1 + }}",
    ] {
        let err = ChatTemplate::new(src, "", "").unwrap_err();
        assert!(matches!(err, ChatError::Syntax(_)), "{src}: {err:?}");
        assert!(err.to_string().contains("syntax error"), "{err}");
    }
    // Errors at render time.
    let t = ChatTemplate::new("{{ messages[0].content.nosuchmethod() }}", "", "").unwrap();
    let err = t
        .render(&[ChatMessage::new("user", "x")], false)
        .unwrap_err();
    assert!(matches!(err, ChatError::Render(_)), "{err:?}");
    let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
    let err = t.render(&[], false).unwrap_err();
    assert!(
        matches!(&err, ChatError::Raised(m) if m == "roles must alternate"),
        "{err:?}"
    );
    assert!(err.to_string().contains("roles must alternate"));
    // Messages that are not objects.
    let t = ChatTemplate::new("{{ messages }}", "", "").unwrap();
    let bad = serde_json::json!(["not an object"]);
    assert!(matches!(
        t.render_json(&bad, false, &serde_json::Map::new()),
        Err(ChatError::InvalidMessages(_))
    ));
}

#[test]
fn python_compat_helpers() {
    let t = ChatTemplate::new(
        "{{ messages[0].content.strip().upper() }}|{{ 'a,b'.split(',') | tojson }}|\
         {{ none }}|{{ true }}|{{ {'k': [1, 2.5, none, false]} | tojson }}|\
         {{ {'k': 'v'} | tojson(indent=2) }}|{{ strftime_now('%Y') | length }}",
        "",
        "",
    )
    .unwrap();
    let out = t
        .render(&[ChatMessage::new("user", "  hi  ")], false)
        .unwrap();
    assert_eq!(
        out,
        "HI|[\"a\", \"b\"]|None|True|{\"k\": [1, 2.5, null, false]}|{\n  \"k\": \"v\"\n}|4"
    );
}
