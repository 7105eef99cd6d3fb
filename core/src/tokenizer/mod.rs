//! Text ↔ token ids for GGUF models, matching llama.cpp's tokenizer token for token.
//!
//! Supported: `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the pre-tokenizers listed in
//! [`TokenizerError::UnsupportedPre`]. BPE itself runs on the `tokenizers` crate; special tokens
//! are split out first the way llama.cpp does it (longest token text first, over the whole
//! text), so the ids agree with llama.cpp's `llama_tokenize`.

mod bytes;
mod error;
mod pretok;
mod stream;

use std::collections::{BTreeSet, HashMap};

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

use crate::gguf::{Array, GgufError, Metadata, Value};

pub use bytes::byte_to_char;
pub use error::{Result, TokenizerError};
pub use stream::StreamDecoder;

use pretok::PreTokenizer;

/// The kind of a vocabulary entry (`tokenizer.ggml.token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// Type 0: not specified (decodes to nothing, as in llama.cpp).
    Undefined,
    /// Type 1: an ordinary BPE token.
    Normal,
    /// Type 2: the unknown token.
    Unknown,
    /// Type 3: a control token (BOS, EOS, chat markers); matched in text only with `parse_special`.
    Control,
    /// Type 4: a user-defined token; always matched in text, stored as raw text.
    UserDefined,
    /// Type 5: an unused slot (padding); decodes to nothing, as in llama.cpp.
    Unused,
    /// Type 6: a byte token.
    Byte,
}

impl TokenType {
    /// The type for a GGUF type number; unknown numbers read as `Undefined`.
    pub fn from_i32(v: i32) -> Self {
        match v {
            1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Undefined,
        }
    }
}

/// Token texts treated as end-of-generation when present in the vocabulary: llama.cpp's list
/// plus Llama 4's `<|eot|>` and `<|eom|>` (Meta stops on both; llama.cpp relies on the GGUF's
/// EOS id for them, see shared/specs/llama4.md §4.3).
const EOG_TEXTS: &[&str] = &[
    "<|eot|>",
    "<|eom|>",
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<|return|>",
    "<|call|>",
    "[EOT]",
    "[EOS]",
];

/// Token texts llama.cpp picks as the FIM padding token when the metadata names none.
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];

/// Token texts llama.cpp picks as the FIM repository token when the metadata names none.
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];

/// Token texts llama.cpp picks as the end-of-turn token when the metadata names none.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "<end_of_utterance>",
];

/// A tokenizer built from a GGUF file's `tokenizer.*` metadata.
pub struct Tokenizer {
    model: String,
    pre: String,
    tokens: Vec<String>,
    types: Vec<TokenType>,
    /// The bytes each token stands for.
    pieces: Vec<Vec<u8>>,
    /// The length of the longest piece (what a stream decoder must hold at once).
    longest_piece: usize,
    /// Special tokens matched in text before BPE, longest text first.
    special: Vec<u32>,
    bpe: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    eom: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    eog: BTreeSet<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("model", &self.model)
            .field("pre", &self.pre)
            .field("vocab_size", &self.tokens.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .field("eog", &self.eog)
            .finish()
    }
}

/// Reads an optional token id key; ids outside the vocabulary are ignored, as llama.cpp does.
fn opt_id(md: &Metadata, key: &str, n: usize) -> Result<Option<u32>> {
    let Some(value) = md.get(key) else {
        return Ok(None);
    };
    let id = value
        .as_u64_lossless()
        .ok_or_else(|| GgufError::WrongType {
            key: key.to_string(),
            expected: "a non-negative integer".to_string(),
            found: value.type_description(),
        })?;
    if id < n as u64 {
        Ok(Some(id as u32))
    } else {
        tracing::warn!(
            key,
            id,
            vocab = n,
            "token id out of vocabulary range, ignored"
        );
        Ok(None)
    }
}

/// Reads an optional boolean key.
fn opt_bool(md: &Metadata, key: &str) -> Result<Option<bool>> {
    Ok(md.get_opt_scalar::<bool>(key)?.copied())
}

/// Splits a merge written as `"left right"` at the first space after the first byte.
fn split_merge(s: &str) -> (String, String) {
    // Searching bytes from index 1 (possibly inside a character) as llama.cpp does; a space
    // byte is always a character boundary, so the slices below are valid.
    match s.as_bytes().iter().skip(1).position(|&b| b == b' ') {
        Some(p) => (s[..p + 1].to_string(), s[p + 2..].to_string()),
        None => (String::new(), String::new()),
    }
}

/// The merges, stored as `"a b"` strings or as arrays of two strings.
fn read_merges(md: &Metadata) -> Result<Vec<(String, String)>> {
    const KEY: &str = "tokenizer.ggml.merges";
    let Some(value) = md.get(KEY) else {
        return Err(GgufError::MissingKey(KEY.to_string()).into());
    };
    let bad = || {
        TokenizerError::InvalidVocab(format!(
            "{KEY} must be an array of \"a b\" strings or of [a, b] string pairs, found {}",
            value.type_description()
        ))
    };
    match value {
        Value::Array(Array::String(v)) => Ok(v.iter().map(|s| split_merge(s)).collect()),
        Value::Array(Array::Array(v)) => v
            .iter()
            .map(|pair| match pair {
                Array::String(p) if p.len() == 2 => Ok((p[0].clone(), p[1].clone())),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

impl Tokenizer {
    /// Builds the tokenizer described by a GGUF file's metadata.
    pub fn from_gguf(md: &Metadata) -> Result<Self> {
        let model = md.get_str("tokenizer.ggml.model")?.to_string();
        if model != "gpt2" {
            return Err(TokenizerError::UnsupportedModel(model));
        }
        let pre_name = match md.get("tokenizer.ggml.pre") {
            None => {
                tracing::warn!("tokenizer.ggml.pre missing, using 'default'");
                "default".to_string()
            }
            Some(_) => md.get_str("tokenizer.ggml.pre")?.to_string(),
        };
        let pre = PreTokenizer::from_name(&pre_name)
            .ok_or_else(|| TokenizerError::UnsupportedPre(pre_name.clone()))?;

        let tokens: Vec<String> = md.get_array_of::<String>("tokenizer.ggml.tokens")?.to_vec();
        let n = tokens.len();
        if n == 0 {
            return Err(TokenizerError::InvalidVocab(
                "tokenizer.ggml.tokens is empty".into(),
            ));
        }
        if n > u32::MAX as usize {
            return Err(TokenizerError::InvalidVocab(format!(
                "{n} tokens is too many"
            )));
        }
        let mut types: Vec<TokenType> = match md.get("tokenizer.ggml.token_type") {
            None => vec![TokenType::Normal; n],
            Some(_) => {
                let raw = md.get_array_of::<i32>("tokenizer.ggml.token_type")?;
                if raw.len() < n {
                    return Err(TokenizerError::InvalidVocab(format!(
                        "tokenizer.ggml.token_type has {} entries for {n} tokens",
                        raw.len()
                    )));
                }
                raw[..n].iter().map(|&t| TokenType::from_i32(t)).collect()
            }
        };
        let merges = read_merges(md)?;

        // Text → id; a text that appears twice maps to its last id, as in llama.cpp.
        let mut token_to_id: HashMap<String, u32> = HashMap::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            token_to_id.insert(t.clone(), i as u32);
        }

        // Special ids: llama.cpp's defaults for gpt2 are 11, overridden by the metadata.
        let default_id = |id: u32| (id < n as u32).then_some(id);
        let bos = opt_id(md, "tokenizer.ggml.bos_token_id", n)?.or(default_id(11));
        let eos = opt_id(md, "tokenizer.ggml.eos_token_id", n)?.or(default_id(11));
        let add_bos = opt_bool(md, "tokenizer.ggml.add_bos_token")?.unwrap_or(pre.add_bos_default);
        let add_eos = opt_bool(md, "tokenizer.ggml.add_eos_token")?.unwrap_or(false);

        // Tokens found by their text, as llama.cpp does; each found one becomes a control token.
        let mut found: Vec<u32> = Vec::new();
        let mut by_text = |key: &str, texts: &[&str]| -> Result<Option<u32>> {
            if let Some(id) = opt_id(md, key, n)? {
                return Ok(Some(id));
            }
            let id = texts
                .iter()
                .filter_map(|t| token_to_id.get(*t).copied())
                .min();
            found.extend(id);
            Ok(id)
        };
        let eot = by_text("tokenizer.ggml.eot_token_id", EOT_TEXTS)?;
        let eom = by_text("tokenizer.ggml.eom_token_id", &["<|eom_id|>"])?;
        let fim_pad = by_text("tokenizer.ggml.fim_pad_token_id", FIM_PAD_TEXTS)?;
        let fim_rep = by_text("tokenizer.ggml.fim_rep_token_id", FIM_REP_TEXTS)?;
        let fim_sep = by_text("tokenizer.ggml.fim_sep_token_id", &["<|file_sep|>"])?;

        // End-of-generation tokens.
        let mut eog = BTreeSet::new();
        eog.extend(fim_pad);
        eog.extend(fim_rep);
        eog.extend(fim_sep);
        for text in EOG_TEXTS {
            if let Some(&id) = token_to_id.get(*text) {
                eog.insert(id);
                found.push(id);
            }
        }
        eog.extend(eos);
        eog.extend(eot);
        eog.extend(eom);
        // With both `<|return|>` and `<|call|>` (gpt-oss), `<|end|>` is an ordinary token.
        let end = token_to_id.get("<|end|>").copied();
        if let (Some(end), true) = (
            end,
            token_to_id.contains_key("<|return|>") && token_to_id.contains_key("<|call|>"),
        ) {
            eog.remove(&end);
            found.retain(|&i| i != end);
            types[end as usize] = TokenType::UserDefined;
        }
        for id in found {
            types[id as usize] = TokenType::Control;
        }

        // The bytes of each token.
        let pieces: Vec<Vec<u8>> = tokens
            .iter()
            .zip(&types)
            .map(|(text, ty)| token_piece(text, *ty))
            .collect();

        // Special tokens, longest text first (ties by id).
        let mut special: Vec<u32> = (0..n as u32)
            .filter(|&i| {
                matches!(
                    types[i as usize],
                    TokenType::Control | TokenType::UserDefined | TokenType::Unknown
                ) && !tokens[i as usize].is_empty()
            })
            .collect();
        special.sort_by(|&a, &b| {
            tokens[b as usize]
                .len()
                .cmp(&tokens[a as usize].len())
                .then(a.cmp(&b))
        });

        let bpe = build_bpe(token_to_id, merges, &pre)?;

        let longest_piece = pieces.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Self {
            model,
            pre: pre_name,
            tokens,
            types,
            pieces,
            longest_piece,
            special,
            bpe,
            bos,
            eos,
            eot,
            eom,
            add_bos,
            add_eos,
            eog,
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// `tokenizer.ggml.model`.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// `tokenizer.ggml.pre` (or `"default"` when absent).
    pub fn pre(&self) -> &str {
        &self.pre
    }

    /// The beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// The end-of-turn token, from the metadata or found by its text.
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }

    /// The end-of-message token (`<|eom_id|>`), if any.
    pub fn eom(&self) -> Option<u32> {
        self.eom
    }

    /// Whether [`Tokenizer::encode`] with `add_bos` prepends BOS for this model.
    pub fn add_bos_token(&self) -> bool {
        self.add_bos
    }

    /// Whether [`Tokenizer::encode`] with `add_bos` appends EOS for this model.
    pub fn add_eos_token(&self) -> bool {
        self.add_eos
    }

    /// Whether `id` ends generation (EOS, EOT, EOM and llama.cpp's end-of-generation names).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// All end-of-generation ids, ascending.
    pub fn eog_ids(&self) -> Vec<u32> {
        self.eog.iter().copied().collect()
    }

    /// The vocabulary text of `id`, as stored in the GGUF file.
    pub fn token_text(&self, id: u32) -> Result<&str> {
        self.check(id)?;
        Ok(&self.tokens[id as usize])
    }

    /// The type of `id`.
    pub fn token_type(&self, id: u32) -> Result<TokenType> {
        self.check(id)?;
        Ok(self.types[id as usize])
    }

    /// The id whose vocabulary text is exactly `text`, if any.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.bpe.token_to_id(text)
    }

    /// The token that spells the single byte `b` (byte-level vocabularies have one per byte,
    /// though some omit a few).
    pub fn byte_to_token(&self, b: u8) -> Option<u32> {
        let c = byte_to_char(b);
        self.token_id(c.encode_utf8(&mut [0; 4]))
    }

    /// The raw bytes `id` stands for (special tokens give their text, unused slots nothing);
    /// empty for an invalid id.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        self.pieces.get(id as usize).cloned().unwrap_or_default()
    }

    fn check(&self, id: u32) -> Result<()> {
        if (id as usize) < self.tokens.len() {
            Ok(())
        } else {
            Err(TokenizerError::InvalidTokenId {
                id,
                vocab_size: self.tokens.len(),
            })
        }
    }

    /// Tokenizes `text`. With `add_bos`, adds BOS/EOS as the model asks
    /// (`tokenizer.ggml.add_bos_token` / `add_eos_token`; this is llama.cpp's `add_special`).
    /// With `parse_special`, control and unknown tokens written in the text become their ids;
    /// without it they are tokenized as plain text. User-defined tokens always match.
    pub fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        if add_bos && self.add_bos {
            if let Some(b) = self.bos {
                out.push(b);
            }
        }
        for frag in self.partition(text, parse_special) {
            match frag {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(s) => {
                    let enc = self
                        .bpe
                        .encode(s, false)
                        .map_err(|e| TokenizerError::Backend(e.to_string()))?;
                    out.extend_from_slice(enc.get_ids());
                }
            }
        }
        if add_bos && self.add_eos {
            if let Some(e) = self.eos {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Splits `text` into special tokens and plain-text fragments: for each special token,
    /// longest text first, every remaining text fragment is split at its occurrences.
    fn partition<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        let mut frags = Vec::new();
        if text.is_empty() {
            return frags;
        }
        frags.push(Fragment::Text(text));
        for &id in &self.special {
            let ty = self.types[id as usize];
            if !parse_special && matches!(ty, TokenType::Control | TokenType::Unknown) {
                continue;
            }
            let needle = self.tokens[id as usize].as_str();
            if !frags
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(needle)))
            {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                match f {
                    Fragment::Text(mut t) => {
                        while let Some(pos) = t.find(needle) {
                            if pos > 0 {
                                next.push(Fragment::Text(&t[..pos]));
                            }
                            next.push(Fragment::Token(id));
                            t = &t[pos + needle.len()..];
                        }
                        if !t.is_empty() {
                            next.push(Fragment::Text(t));
                        }
                    }
                    tok => next.push(tok),
                }
            }
            frags = next;
        }
        frags
    }

    /// The text of `ids`: bytes joined, invalid UTF-8 replaced by U+FFFD. Special tokens
    /// are rendered as their text. An id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            self.check(id)?;
            bytes.extend_from_slice(&self.pieces[id as usize]);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A decoder for streaming generated ids into complete UTF-8 text.
    pub fn stream_decoder(self: &std::sync::Arc<Self>) -> StreamDecoder {
        StreamDecoder::new(self.clone())
    }
}

/// A piece of partitioned input text.
enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// The bytes a vocabulary entry stands for, as llama.cpp renders it: byte-level decoding for
/// normal tokens, the raw text for control/user-defined/unknown ones, the byte for `<0xNN>`
/// byte tokens, and nothing for unused or undefined slots.
fn token_piece(text: &str, ty: TokenType) -> Vec<u8> {
    match ty {
        TokenType::Normal => {
            bytes::decode_byte_level(text).unwrap_or_else(|| text.as_bytes().to_vec())
        }
        TokenType::Byte => text
            .strip_prefix("<0x")
            .and_then(|h| h.strip_suffix('>'))
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map(|b| vec![b])
            .or_else(|| bytes::decode_byte_level(text))
            .unwrap_or_else(|| text.as_bytes().to_vec()),
        TokenType::Control | TokenType::UserDefined | TokenType::Unknown => {
            text.as_bytes().to_vec()
        }
        TokenType::Unused | TokenType::Undefined => Vec::new(),
    }
}

/// The `tokenizers` pipeline for plain text: split regexes, byte-level mapping, BPE.
fn build_bpe(
    vocab: HashMap<String, u32>,
    merges: Vec<(String, String)>,
    pre: &PreTokenizer,
) -> Result<tokenizers::Tokenizer> {
    // The backend requires both halves and the result of a merge to be tokens.
    let total = merges.len();
    let merges: Vec<(String, String)> = merges
        .into_iter()
        .filter(|(a, b)| {
            vocab.contains_key(a) && vocab.contains_key(b) && vocab.contains_key(&format!("{a}{b}"))
        })
        .collect();
    if merges.len() != total {
        tracing::warn!(
            dropped = total - merges.len(),
            "merges whose parts or result are not tokens were ignored"
        );
    }
    let backend = |e: tokenizers::Error| TokenizerError::Backend(e.to_string());
    let vocab: tokenizers::models::bpe::Vocab = vocab.into_iter().collect();
    let model = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(pre.ignore_merges)
        .build()
        .map_err(backend)?;
    let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
    for re in &pre.regexes {
        let split = Split::new(
            SplitPattern::Regex(re.clone()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(backend)?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, false, false).into());
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Sequence::new(steps)));
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_split_matches_llama_cpp() {
        assert_eq!(split_merge("Ġ t"), ("Ġ".into(), "t".into()));
        assert_eq!(split_merge("  a"), (" ".into(), "a".into()));
        assert_eq!(split_merge("ab"), (String::new(), String::new()));
        assert_eq!(split_merge("Ġ Ġ"), ("Ġ".into(), "Ġ".into()));
        assert_eq!(split_merge("é"), (String::new(), String::new()));
        assert_eq!(split_merge(""), (String::new(), String::new()));
    }

    #[test]
    fn byte_map_round_trips() {
        for b in 0..=255u8 {
            let c = byte_to_char(b);
            assert_eq!(bytes::char_to_byte(c), Some(b));
        }
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
    }
}
