//! Chat templates: the Jinja template stored in `tokenizer.chat_template`, rendered the way
//! Hugging Face transformers renders it.
//!
//! The environment mirrors transformers' (`ImmutableSandboxedEnvironment` with `trim_blocks` and
//! `lstrip_blocks`): the context has `messages`, `add_generation_prompt`, `bos_token`,
//! `eos_token` (and `tools`/`documents`, `None` unless given); globals `raise_exception(msg)` and `strftime_now(fmt)`; a `tojson` filter that
//! writes JSON like Python's `json.dumps(ensure_ascii=False)`; Python string/dict/list methods
//! (`.strip()`, `.items()`, …) from minijinja-contrib's pycompat; and values printed as Python
//! prints them (`None`, `True`, `False`).

mod json;
mod time;

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, ErrorKind};

use crate::gguf::{GgufError, Metadata};

/// Metadata key holding the default chat template.
pub const CHAT_TEMPLATE_KEY: &str = "tokenizer.chat_template";

/// Prefix that marks an error raised by the template's `raise_exception`.
const RAISED: &str = "\u{1}raise_exception\u{1}";

/// An error loading or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The model has no `tokenizer.chat_template`.
    #[error("the model has no chat template ({CHAT_TEMPLATE_KEY} is missing)")]
    MissingTemplate,
    /// A metadata key has the wrong type.
    #[error("chat template metadata: {0}")]
    Metadata(#[from] GgufError),
    /// The template does not parse.
    #[error("chat template syntax error: {0}")]
    Syntax(String),
    /// The template called `raise_exception(message)`.
    #[error("chat template raised an exception: {0}")]
    Raised(String),
    /// Rendering failed for another reason (bad value, undefined call, …).
    #[error("chat template render error: {0}")]
    Render(String),
    /// A conversation given as JSON is not an array of objects.
    #[error("invalid messages: {0}")]
    InvalidMessages(String),
}

/// Result type of the chat module.
pub type Result<T, E = ChatError> = std::result::Result<T, E>;

/// One part of a message: text, or an image (encoded, ready to take its positions).
#[derive(Clone, Debug, PartialEq)]
pub enum ContentPart {
    /// Text.
    Text(String),
    /// An image's projected embeddings; the template renders it as an image marker
    /// (`{"type": "image"}` in transformers' convention) that
    /// [`crate::vision::Prompt`] replaces with the image's tokens and rows.
    Image(std::sync::Arc<crate::vision::ImageEmbeddings>),
}

/// One message of a conversation: a role and parts (text, images).
#[derive(Clone, Debug, PartialEq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, …
    pub role: String,
    /// The message's parts, in order.
    pub parts: Vec<ContentPart>,
}

impl ChatMessage {
    /// A text message with `role` and `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            parts: vec![ContentPart::Text(content.into())],
        }
    }

    /// A message showing `image` and then saying `text` (the usual way to ask about a
    /// picture).
    pub fn with_image(
        role: impl Into<String>,
        image: std::sync::Arc<crate::vision::ImageEmbeddings>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            role: role.into(),
            parts: vec![ContentPart::Image(image), ContentPart::Text(text.into())],
        }
    }

    /// The text parts, joined.
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text(t) => Some(t.as_str()),
                ContentPart::Image(_) => None,
            })
            .collect()
    }

    /// The images, in order.
    pub fn images(&self) -> impl Iterator<Item = &std::sync::Arc<crate::vision::ImageEmbeddings>> {
        self.parts.iter().filter_map(|p| match p {
            ContentPart::Image(i) => Some(i),
            ContentPart::Text(_) => None,
        })
    }

    /// The value a template sees as `content`: a string for a text-only message (what every
    /// template expects), else a list of `{"type": "image"}` / `{"type": "text", "text": …}`
    /// parts as transformers passes them.
    fn content_value(&self) -> Value {
        if let [ContentPart::Text(t)] = self.parts.as_slice() {
            return Value::from(t.as_str());
        }
        let parts: Vec<Value> = self
            .parts
            .iter()
            .map(|p| match p {
                ContentPart::Text(t) => Value::from_pairs([
                    ("type", Value::from("text")),
                    ("text", Value::from(t.as_str())),
                ]),
                ContentPart::Image(_) => Value::from_pairs([("type", Value::from("image"))]),
            })
            .collect();
        Value::from(parts)
    }
}

/// A compiled chat template plus the special-token strings it may use.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

/// The text of the token whose id is stored at `key`, or `""`.
fn token_text(md: &Metadata, key: &str) -> Result<String> {
    let Some(value) = md.get(key) else {
        return Ok(String::new());
    };
    let Some(id) = value.as_u64_lossless() else {
        return Ok(String::new());
    };
    let tokens = md.get_array_of::<String>("tokenizer.ggml.tokens")?;
    Ok(usize::try_from(id)
        .ok()
        .and_then(|i| tokens.get(i))
        .cloned()
        .unwrap_or_default())
}

impl ChatTemplate {
    /// The template in `tokenizer.chat_template`, with BOS/EOS texts from the vocabulary.
    pub fn from_gguf(md: &Metadata) -> Result<Self> {
        if !md.contains(CHAT_TEMPLATE_KEY) {
            return Err(ChatError::MissingTemplate);
        }
        let source = md.get_str(CHAT_TEMPLATE_KEY)?;
        let bos = token_text(md, "tokenizer.ggml.bos_token_id")?;
        let eos = token_text(md, "tokenizer.ggml.eos_token_id")?;
        Self::new(source, bos, eos)
    }

    /// Compiles `source`; `bos_token`/`eos_token` are the strings the template sees.
    pub fn new(
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .map_err(|e| ChatError::Syntax(describe(&e)))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(python_formatter);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat_template", source.into())
            .map_err(|e| ChatError::Syntax(describe(&e)))?;
        Ok(Self {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// Renders a conversation; with `add_generation_prompt` the text ends with the header
    /// that starts the assistant's reply.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_pairs([
                    ("role", Value::from(m.role.as_str())),
                    ("content", m.content_value()),
                ])
            })
            .collect();
        self.render_values(Value::from(msgs), add_generation_prompt, Vec::new())
    }

    /// Renders messages given as JSON (content arrays, tool calls, …) with extra context
    /// variables (for example `tools`), for templates that use more than role and content.
    pub fn render_json(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String> {
        let serde_json::Value::Array(list) = messages else {
            return Err(ChatError::InvalidMessages("expected an array".into()));
        };
        if let Some(bad) = list.iter().find(|m| !m.is_object()) {
            return Err(ChatError::InvalidMessages(format!(
                "each message must be an object, found {bad}"
            )));
        }
        let extra = extra
            .iter()
            .map(|(k, v)| (k.clone(), json::to_value(v)))
            .collect();
        self.render_values(json::to_value(messages), add_generation_prompt, extra)
    }

    fn render_values(
        &self,
        messages: Value,
        add_generation_prompt: bool,
        extra: Vec<(String, Value)>,
    ) -> Result<String> {
        let template = self
            .env
            .get_template("chat_template")
            .map_err(|e| ChatError::Render(describe(&e)))?;
        let mut ctx: Vec<(String, Value)> = extra;
        // transformers always passes these two, as None when not given.
        for key in ["tools", "documents"] {
            if !ctx.iter().any(|(k, _)| k == key) {
                ctx.push((key.into(), Value::from(())));
            }
        }
        ctx.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "messages" | "add_generation_prompt" | "bos_token" | "eos_token"
            )
        });
        ctx.push(("messages".into(), messages));
        ctx.push((
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        ));
        ctx.push(("bos_token".into(), Value::from(self.bos_token.as_str())));
        ctx.push(("eos_token".into(), Value::from(self.eos_token.as_str())));
        template
            .render(Value::from_pairs(ctx))
            .map_err(|e| classify(&e))
    }
}

/// Walks an error chain: `raise_exception` errors become [`ChatError::Raised`].
fn classify(err: &minijinja::Error) -> ChatError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(mj) = e.downcast_ref::<minijinja::Error>() {
            if let Some(msg) = mj.detail().and_then(|d| d.strip_prefix(RAISED)) {
                return ChatError::Raised(msg.to_string());
            }
        }
        cur = e.source();
    }
    ChatError::Render(describe(err))
}

/// An error with its location and causes on one line.
fn describe(err: &minijinja::Error) -> String {
    let mut s = err.to_string();
    let mut cur = std::error::Error::source(err);
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}

/// `raise_exception(message)`: fails the render with `message`.
fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("{RAISED}{message}"),
    ))
}

/// `strftime_now(format)`: the current UTC time formatted like Python's `strftime`.
fn strftime_now(format: String) -> std::result::Result<String, minijinja::Error> {
    time::strftime(&format, time::now_utc())
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e))
}

/// `tojson(indent=None, ensure_ascii=False, separators=None, sort_keys=False)`.
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match (v.as_i64(), v.as_str()) {
            (Some(n), _) => Some(" ".repeat(usize::try_from(n).unwrap_or(0))),
            (None, Some(s)) => Some(s.to_string()),
            _ => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be an integer or a string",
                ))
            }
        },
    };
    let separators = match separators {
        Some(v) if !v.is_none() => {
            let parts: Vec<String> = v
                .try_iter()?
                .map(|p| p.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    )
                })?;
            match <[String; 2]>::try_from(parts) {
                Ok([a, b]) => Some((a, b)),
                Err(_) => {
                    return Err(minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    ))
                }
            }
        }
        _ => None,
    };
    let opts = json::Options {
        indent,
        ensure_ascii: ensure_ascii.unwrap_or(false),
        separators,
        sort_keys: sort_keys.unwrap_or(false),
    };
    let mut out = String::new();
    json::dump(value, &opts, 0, &mut out)?;
    Ok(Value::from(out))
}

/// Prints values as Python does: `None`, `True`, `False`; undefined prints nothing.
fn python_formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> std::result::Result<(), minijinja::Error> {
    use minijinja::value::ValueKind;
    let text = match value.kind() {
        ValueKind::None => "None",
        ValueKind::Bool if value.is_true() => "True",
        ValueKind::Bool => "False",
        _ => return minijinja::escape_formatter(out, state, value),
    };
    out.write_str(text).map_err(minijinja::Error::from)
}
