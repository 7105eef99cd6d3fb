//! Pre-tokenizer variants (`tokenizer.ggml.pre`): the split regexes llama.cpp applies before BPE.
//!
//! Each variant is a list of regexes applied one after another; each one splits every piece
//! produced so far, keeping both the matches and the text between them. The regexes are the
//! ones llama.cpp uses (which spell contractions case by case instead of `(?i:…)` and emulate
//! upper/lower-case letter classes with lookaheads), so pieces come out the same.

/// The GPT-2 split regex.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// The contraction alternatives, spelled case by case.
const CONTRACTIONS: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/// How text is split before BPE and how merges apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PreTokenizer {
    /// The name from the metadata.
    pub name: String,
    /// Split regexes, applied in order.
    pub regexes: Vec<String>,
    /// A piece that is already a token is emitted whole, without merging (Llama 3 style).
    pub ignore_merges: bool,
    /// Whether the model adds BOS by default (before `tokenizer.ggml.add_bos_token`).
    pub add_bos_default: bool,
}

impl PreTokenizer {
    /// The pre-tokenizer called `name`, if Fennec implements it.
    pub fn from_name(name: &str) -> Option<Self> {
        let llama3 = format!(
            r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}{{1,3}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        );
        let qwen2 = format!(
            r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        );
        // Upper case = a letter that is not a-z; lower case = a letter that is not A-Z.
        let upper = r"(?:(?=\p{L})[^a-z])";
        let lower = r"(?:(?=\p{L})[^A-Z])";
        let gpt4o = format!(
            r"[^\r\n\p{{L}}\p{{N}}]?{upper}*{lower}+{CONTRACTIONS}?|[^\r\n\p{{L}}\p{{N}}]?{upper}+{lower}*{CONTRACTIONS}?|\p{{N}}{{1,3}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        );
        let (regexes, ignore_merges, add_bos_default): (Vec<String>, bool, bool) = match name {
            "default" => (
                vec![
                    r"[\p{P}\$\+<=>\^~\|]+".into(),
                    GPT2.into(),
                    r"\p{N}+".into(),
                    r"[0-9][0-9][0-9]".into(),
                ],
                false,
                false,
            ),
            "gpt-2" | "phi-2" | "mpt" | "olmo" => (vec![GPT2.into()], false, false),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" => (vec![llama3], true, true),
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" => {
                (vec![r"\p{N}".into(), GPT2.into()], false, false)
            }
            "qwen2" | "stablelm2" | "megrez" => (vec![qwen2], false, false),
            "gpt-4o" | "llama4" => (vec![gpt4o], false, false),
            _ => return None,
        };
        Some(Self {
            name: name.to_string(),
            regexes,
            ignore_merges,
            add_bos_default,
        })
    }
}
