//! whisper.cpp's own model files (`ggml-tiny.en.bin`, `ggml-base-q8_0.bin`, …): read into an
//! in-memory GGUF with the layout of `tests/fixtures/whisper/README.md`, so the rest of the
//! speech code sees one format.
//!
//! The `.bin` holds the shape (11 integers), the mel filters, the vocabulary as raw bytes in
//! rank order and the tensors under OpenAI's names (which the GGUF layout shares), packed with
//! no alignment. What it lacks is derived the way its creators do: the special token ids by
//! whisper.cpp's rule, the BPE merges from the ranks (tiktoken's algorithm: the pair whose
//! concatenation ranks lowest merges first), and the suppressed ids by faster-whisper's
//! non-speech rule over that tokenizer. The weights are copied once (the `.bin` layout leaves
//! tensors unaligned); GGUF files stay memory-mapped.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};
use crate::gguf::{
    map_file_range, tensor_bytes, Array, GgmlType, GgufError, GgufFile, GgufWriter, Metadata,
    TensorData,
};
use crate::tokenizer::{byte_to_char, Tokenizer};

/// The first four bytes of a whisper.cpp `.bin` (`0x67676d6c` little-endian: `"lmgg"`).
pub const GGML_BIN_MAGIC: [u8; 4] = *b"lmgg";

/// The codes of Whisper's language tokens, in token order (`<|en|>` is the first), as the
/// Hugging Face / CTranslate2 vocabularies spell them (Hebrew is `iw` there, `he` in OpenAI's).
const LANGUAGES: [&str; 100] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it",
    "id", "hi", "fi", "vi", "iw", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
    "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn",
    "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si",
    "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su", "yue",
];

/// Whether `head` (a file's first bytes) starts like a whisper.cpp `.bin`.
pub fn is_ggml_bin(head: &[u8]) -> bool {
    head.starts_with(&GGML_BIN_MAGIC)
}

/// Opens a Whisper model file: GGUF, mapped, or else a whisper.cpp `.bin` by `open_bin`
/// when the GGUF reader found the `.bin` magic.
pub(crate) fn open_either(
    open_gguf: impl FnOnce() -> crate::gguf::Result<GgufFile>,
    open_bin: impl FnOnce() -> Result<GgufFile>,
) -> Result<GgufFile> {
    match open_gguf() {
        Err(GgufError::BadMagic { found }) if is_ggml_bin(&found) => open_bin(),
        other => Ok(other?),
    }
}

/// Reads the whisper.cpp `.bin` at `path` into an in-memory GGUF.
pub(crate) fn open(path: &Path) -> Result<GgufFile> {
    let file = File::open(path).map_err(|source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    open_range(&file, 0, 0)
}

/// Reads the whisper.cpp `.bin` held in `len` bytes of `file` from `offset` (`len = 0`: to
/// the end) into an in-memory GGUF.
pub(crate) fn open_range(file: &File, offset: u64, len: u64) -> Result<GgufFile> {
    match map_file_range(file, offset, len)? {
        Some(map) => gguf_from_ggml_bin(&map),
        None => Err(bin_err("the file is empty")),
    }
}

/// Converts the bytes of a whisper.cpp `.bin` into a GGUF (see the module docs).
///
/// # Errors
/// [`crate::ErrorKind::InvalidModel`] naming what is wrong and where: a bad magic, a field
/// out of range, a truncated record, an unknown tensor type.
pub fn gguf_from_ggml_bin(bytes: &[u8]) -> Result<GgufFile> {
    let bin = parse(bytes)?;
    let md = metadata(&bin)?;
    let mut w = GgufWriter::new();
    for (key, value) in md.iter() {
        w.add(key, value.clone())?;
    }
    let mel: Vec<u8> = bin
        .mel_filters
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mel_dims = [bin.n_fft as u64, bin.hp.n_mels as u64];
    w.add_tensor(
        "mel_filters",
        GgmlType::F32,
        &mel_dims,
        TensorData::Bytes(mel.into()),
    )?;
    for t in &bin.tensors {
        w.add_tensor(
            &t.name,
            t.ty,
            &t.dims,
            TensorData::Bytes(Cow::Borrowed(t.data)),
        )?;
    }
    Ok(GgufFile::from_vec(w.try_to_vec()?)?)
}

/// The 11 integers after the magic.
#[derive(Debug)]
struct BinHparams {
    n_vocab: usize,
    n_audio_ctx: usize,
    n_audio_state: usize,
    n_audio_head: usize,
    n_audio_layer: usize,
    n_text_ctx: usize,
    n_text_state: usize,
    n_text_head: usize,
    n_text_layer: usize,
    n_mels: usize,
    /// `ftype % 1000` (whisper.cpp adds 1000 × its quantization version).
    ftype: u32,
}

/// One tensor record.
struct BinTensor<'a> {
    name: String,
    ty: GgmlType,
    /// GGML order (`ne`), as in GGUF.
    dims: Vec<u64>,
    data: &'a [u8],
}

/// A parsed `.bin`, borrowing its tensor data.
struct Bin<'a> {
    hp: BinHparams,
    n_fft: usize,
    mel_filters: Vec<f32>,
    /// The vocabulary entries the file holds (often fewer than `n_vocab`: the specials are
    /// implied).
    words: Vec<&'a [u8]>,
    tensors: Vec<BinTensor<'a>>,
}

/// A bounds-checked little-endian reader that names what it failed to read.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(bin_err(format!(
                "truncated: {what} needs {n} bytes at offset {} of {}",
                self.pos,
                self.bytes.len()
            )));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn i32(&mut self, what: &str) -> Result<i32> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An `i32` in `lo..=hi`, as a `usize`.
    fn size(&mut self, what: &str, lo: usize, hi: usize) -> Result<usize> {
        let at = self.pos;
        let v = self.i32(what)?;
        usize::try_from(v)
            .ok()
            .filter(|v| (lo..=hi).contains(v))
            .ok_or_else(|| {
                bin_err(format!(
                    "{what} is {v} at offset {at}; expected {lo}..={hi}"
                ))
            })
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

fn bin_err(msg: impl std::fmt::Display) -> Error {
    Error::InvalidModel(format!("whisper.cpp .bin: {msg}"))
}

fn parse(bytes: &[u8]) -> Result<Bin<'_>> {
    let mut c = Cursor { bytes, pos: 0 };
    let magic = c.take(4, "the magic")?;
    if !is_ggml_bin(magic) {
        return Err(bin_err(format!(
            "magic is {magic:02x?}, expected {GGML_BIN_MAGIC:02x?} (\"lmgg\")"
        )));
    }
    const W: usize = 1 << 14;
    let hp = BinHparams {
        n_vocab: c.size("n_vocab", 1, 1 << 20)?,
        n_audio_ctx: c.size("n_audio_ctx", 1, 1 << 16)?,
        n_audio_state: c.size("n_audio_state", 1, W)?,
        n_audio_head: c.size("n_audio_head", 1, 1024)?,
        n_audio_layer: c.size("n_audio_layer", 1, 1024)?,
        n_text_ctx: c.size("n_text_ctx", 1, 1 << 16)?,
        n_text_state: c.size("n_text_state", 1, W)?,
        n_text_head: c.size("n_text_head", 1, 1024)?,
        n_text_layer: c.size("n_text_layer", 1, 1024)?,
        n_mels: c.size("n_mels", 1, 512)?,
        ftype: (c.size("ftype", 0, i32::MAX as usize)? % 1000) as u32,
    };
    let n_mel = c.size("the mel filters' n_mel", 1, 512)?;
    if n_mel != hp.n_mels {
        return Err(bin_err(format!(
            "{n_mel} mel filters for a model of {} mel bins",
            hp.n_mels
        )));
    }
    let n_fft = c.size("the mel filters' n_fft", 1, 1 << 13)?;
    let mel_filters = c
        .take(n_mel * n_fft * 4, "the mel filters")?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n_words = c.size("the vocabulary size", 0, hp.n_vocab)?;
    let mut words = Vec::with_capacity(n_words);
    for i in 0..n_words {
        let len = c.size("a token's length", 0, 1 << 10)?;
        words.push(c.take(len, &format!("token {i}"))?);
    }
    let mut tensors = Vec::new();
    while !c.at_end() {
        tensors.push(tensor_record(&mut c)?);
    }
    Ok(Bin {
        hp,
        n_fft,
        mel_filters,
        words,
        tensors,
    })
}

fn tensor_record<'a>(c: &mut Cursor<'a>) -> Result<BinTensor<'a>> {
    let at = c.pos;
    let n_dims = c.size("a tensor's n_dims", 1, 4)?;
    let name_len = c.size("a tensor's name length", 1, 1 << 10)?;
    let ty_id = c.i32("a tensor's type")?;
    let ty = u32::try_from(ty_id)
        .ok()
        .and_then(|id| GgmlType::from_u32(id).ok())
        .ok_or_else(|| bin_err(format!("tensor at offset {at} has unknown type {ty_id}")))?;
    let mut dims = Vec::with_capacity(n_dims);
    for _ in 0..n_dims {
        dims.push(c.size("a tensor's dim", 1, i32::MAX as usize)? as u64);
    }
    let name = std::str::from_utf8(c.take(name_len, "a tensor's name")?)
        .map_err(|_| {
            bin_err(format!(
                "tensor at offset {at} has a name that is not UTF-8"
            ))
        })?
        .to_string();
    let size = tensor_bytes(&name, ty, &dims)?;
    let size = usize::try_from(size).map_err(|_| bin_err(format!("tensor {name:?} is too big")))?;
    let data = c.take(size, &format!("tensor {name:?}"))?;
    Ok(BinTensor {
        name,
        ty,
        dims,
        data,
    })
}

/// Special token ids as whisper.cpp assigns them: `.en` vocabularies (51 864) start at
/// eot = 50256; multilingual ones (≥ 51 865) one later, with the task tokens moved by the
/// number of languages beyond 98.
struct SpecialIds {
    eot: u32,
    sot: u32,
    translate: u32,
    transcribe: u32,
    start_of_lm: u32,
    start_of_prev: u32,
    no_speech: u32,
    no_timestamps: u32,
    timestamp_begin: u32,
}

impl SpecialIds {
    fn for_vocab(n_vocab: usize) -> Result<Self> {
        if n_vocab < 51_864 {
            return Err(bin_err(format!(
                "n_vocab is {n_vocab}; Whisper vocabularies have at least 51864 tokens"
            )));
        }
        let multilingual = n_vocab >= 51_865;
        let n_languages = n_vocab - 51_765 - usize::from(multilingual);
        let shift = if multilingual { n_languages - 98 } else { 0 } as u32;
        let first = u32::from(multilingual);
        Ok(Self {
            eot: 50_256 + first,
            sot: 50_257 + first,
            translate: 50_357 + shift,
            transcribe: 50_358 + shift,
            start_of_lm: 50_359 + shift,
            start_of_prev: 50_360 + shift,
            no_speech: 50_361 + shift,
            no_timestamps: 50_362 + shift,
            timestamp_begin: 50_363 + shift,
        })
    }
}

/// Token texts (GPT-2's byte-level characters for the file's words, Whisper's names for the
/// specials) and types (1 normal, 3 control, 5 unused).
fn vocabulary(bin: &Bin, ids: &SpecialIds, multilingual: bool) -> (Vec<String>, Vec<i32>) {
    let n = bin.hp.n_vocab;
    let mut texts = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut seen = std::collections::HashSet::new();
    for id in 0..n as u32 {
        let (text, ty) = if id < ids.eot {
            match bin.words.get(id as usize) {
                Some(w) if !w.is_empty() => (w.iter().map(|&b| byte_to_char(b)).collect(), 1),
                _ => (format!("<|unused_{id}|>"), 5),
            }
        } else {
            (special_name(id, ids, multilingual), 3)
        };
        // Texts key the tokenizer, so each must be unique.
        let (text, ty) = if seen.insert(text.clone()) {
            (text, ty)
        } else {
            (format!("<|duplicate_{id}|>"), 5)
        };
        texts.push(text);
        types.push(ty);
    }
    (texts, types)
}

fn special_name(id: u32, ids: &SpecialIds, multilingual: bool) -> String {
    let named = [
        (ids.eot, "<|endoftext|>"),
        (ids.sot, "<|startoftranscript|>"),
        (ids.translate, "<|translate|>"),
        (ids.transcribe, "<|transcribe|>"),
        (ids.start_of_lm, "<|startoflm|>"),
        (ids.start_of_prev, "<|startofprev|>"),
        (
            ids.no_speech,
            if multilingual {
                "<|nospeech|>"
            } else {
                "<|nocaptions|>"
            },
        ),
        (ids.no_timestamps, "<|notimestamps|>"),
    ];
    if let Some((_, name)) = named.iter().find(|(i, _)| *i == id) {
        return (*name).to_string();
    }
    if id > ids.sot && id < ids.translate {
        let k = (id - ids.sot - 1) as usize;
        return match LANGUAGES.get(k) {
            Some(code) => format!("<|{code}|>"),
            None => format!("<|language_{k}|>"),
        };
    }
    if id >= ids.timestamp_begin {
        let centis = 2 * (id - ids.timestamp_begin);
        return format!("<|{}.{:02}|>", centis / 100, centis % 100);
    }
    format!("<|special_{id}|>")
}

/// The BPE merges implied by ranked byte strings (GPT-2 / tiktoken vocabularies): each
/// token of rank r splits into the two parts that byte-pair encoding with only the ranks
/// below r leaves; merges are listed in rank order. Tokens that no merge sequence reaches
/// are left without a merge (as tiktoken never produces them either).
fn merges_from_ranks(words: &[&[u8]]) -> Vec<String> {
    let ranks: HashMap<&[u8], usize> = words
        .iter()
        .enumerate()
        .filter(|(_, w)| !w.is_empty())
        .map(|(r, w)| (*w, r))
        .collect();
    let text = |b: &[u8]| -> String { b.iter().map(|&c| byte_to_char(c)).collect() };
    let mut merges = Vec::new();
    for (rank, word) in words.iter().enumerate() {
        if word.len() < 2 || ranks.get(word) != Some(&rank) {
            continue;
        }
        let parts = bpe_parts(word, &ranks, rank);
        if let [left, right] = parts.as_slice() {
            merges.push(format!("{} {}", text(left), text(right)));
        }
    }
    merges
}

/// Byte-pair encodes `word` with the merges of rank below `max_rank`: repeatedly joins the
/// adjacent pair whose concatenation has the lowest rank.
fn bpe_parts<'w>(word: &'w [u8], ranks: &HashMap<&[u8], usize>, max_rank: usize) -> Vec<&'w [u8]> {
    let mut bounds: Vec<usize> = (0..=word.len()).collect();
    loop {
        let best = (0..bounds.len().saturating_sub(2))
            .filter_map(|i| {
                let r = *ranks.get(&word[bounds[i]..bounds[i + 2]])?;
                (r < max_rank).then_some((r, i))
            })
            .min();
        let Some((_, i)) = best else { break };
        bounds.remove(i + 1);
    }
    bounds.windows(2).map(|b| &word[b[0]..b[1]]).collect()
}

/// Token ids faster-whisper suppresses for `suppress_tokens=[-1]` (OpenAI's `non_speech_tokens`:
/// symbols and bracket runs that are one token alone or after a space, the first token of the
/// musical symbols, " -" and " '"), plus the task and prompt tokens it adds.
fn suppressed_ids(tok: &Tokenizer, ids: &SpecialIds) -> Result<Vec<i32>> {
    const SYMBOLS: &str = "\"#()*+/:;<=>@[\\]^_`{|}~「」『』";
    const RUNS: [&str; 20] = [
        "<<",
        ">>",
        "<<<",
        ">>>",
        "--",
        "---",
        "-(",
        "-[",
        "('",
        "(\"",
        "((",
        "))",
        "(((",
        ")))",
        "[[",
        "]]",
        "{{",
        "}}",
        "♪♪",
        "♪♪♪",
    ];
    const MUSIC: &str = "♩♪♫♬♭♮♯";
    let encode = |s: &str| tok.encode(s, false, false);
    let mut set = BTreeSet::new();
    for s in [" -", " '"] {
        set.extend(encode(s)?.first().copied());
    }
    let symbols = SYMBOLS.chars().map(String::from);
    let runs = RUNS.iter().map(|s| s.to_string());
    let music = MUSIC.chars().map(String::from);
    for (symbol, always) in symbols
        .chain(runs)
        .map(|s| (s, false))
        .chain(music.map(|s| (s, true)))
    {
        for s in [symbol.clone(), format!(" {symbol}")] {
            let t = encode(&s)?;
            if t.len() == 1 || always {
                set.extend(t.first().copied());
            }
        }
    }
    set.extend([
        ids.sot,
        ids.translate,
        ids.transcribe,
        ids.start_of_lm,
        ids.start_of_prev,
        ids.no_speech,
    ]);
    Ok(set.into_iter().map(|id| id as i32).collect())
}

/// The GGUF metadata of the layout, from the `.bin`'s fields and what they imply.
fn metadata(bin: &Bin) -> Result<Metadata> {
    let hp = &bin.hp;
    let ids = SpecialIds::for_vocab(hp.n_vocab)?;
    let multilingual = hp.n_vocab >= 51_865;
    let n_ff = bin
        .tensors
        .iter()
        .find(|t| t.name == "encoder.blocks.0.mlp.0.weight")
        .and_then(|t| t.dims.get(1).copied())
        .unwrap_or(4 * hp.n_audio_state as u64);
    let (texts, types) = vocabulary(bin, &ids, multilingual);
    let ranked = &bin.words[..bin.words.len().min(ids.eot as usize)];
    let merges = merges_from_ranks(ranked);

    let mut md = Metadata::new();
    let u = |v: usize| v as u32;
    md.insert("general.architecture", "whisper")?;
    md.insert("general.name", "whisper (from a whisper.cpp .bin)")?;
    md.insert("general.file_type", hp.ftype)?;
    md.insert("whisper.encoder.context_length", u(hp.n_audio_ctx))?;
    md.insert("whisper.encoder.embedding_length", u(hp.n_audio_state))?;
    md.insert("whisper.encoder.attention.head_count", u(hp.n_audio_head))?;
    md.insert("whisper.encoder.block_count", u(hp.n_audio_layer))?;
    md.insert("whisper.decoder.context_length", u(hp.n_text_ctx))?;
    md.insert("whisper.decoder.embedding_length", u(hp.n_text_state))?;
    md.insert("whisper.decoder.attention.head_count", u(hp.n_text_head))?;
    md.insert("whisper.decoder.block_count", u(hp.n_text_layer))?;
    md.insert("whisper.feed_forward_length", n_ff as u32)?;
    md.insert("whisper.vocab_size", u(hp.n_vocab))?;
    md.insert("whisper.attention.layer_norm_epsilon", 1e-5f32)?;
    md.insert("whisper.audio.num_mel_bins", u(hp.n_mels))?;
    // whisper.cpp's fixed front end (WHISPER_SAMPLE_RATE, WHISPER_N_FFT, WHISPER_HOP_LENGTH,
    // WHISPER_CHUNK_SIZE); the filters' width says n_fft too.
    md.insert("whisper.audio.sample_rate", 16_000u32)?;
    md.insert("whisper.audio.n_fft", u(2 * (bin.n_fft - 1).max(1)))?;
    md.insert("whisper.audio.hop_length", 160u32)?;
    md.insert("whisper.audio.chunk_length_s", 30u32)?;
    md.insert("whisper.multilingual", multilingual)?;
    for (name, id) in [
        ("eot", ids.eot),
        ("sot", ids.sot),
        ("translate", ids.translate),
        ("transcribe", ids.transcribe),
        ("startoflm", ids.start_of_lm),
        ("startofprev", ids.start_of_prev),
        ("no_speech", ids.no_speech),
        ("no_timestamps", ids.no_timestamps),
        ("timestamp_begin", ids.timestamp_begin),
        ("language_first", ids.sot + 1),
    ] {
        md.insert(format!("whisper.token.{name}_id"), id)?;
    }
    md.insert("whisper.token.language_count", ids.translate - ids.sot - 1)?;
    md.insert("tokenizer.ggml.model", "gpt2")?;
    md.insert("tokenizer.ggml.pre", "gpt-2")?;
    md.insert("tokenizer.ggml.tokens", Array::String(texts))?;
    md.insert("tokenizer.ggml.token_type", Array::I32(types))?;
    md.insert("tokenizer.ggml.merges", Array::String(merges))?;
    md.insert("tokenizer.ggml.bos_token_id", ids.sot)?;
    md.insert("tokenizer.ggml.eos_token_id", ids.eot)?;
    md.insert("tokenizer.ggml.add_bos_token", false)?;
    md.insert("tokenizer.ggml.add_eos_token", false)?;

    let tok = Tokenizer::from_gguf(&md)
        .map_err(|e| bin_err(format!("the vocabulary does not make a tokenizer: {e}")))?;
    let blank = tok.encode(" ", false, false)?;
    let mut begin: Vec<i32> = blank.first().map(|&t| t as i32).into_iter().collect();
    begin.push(ids.eot as i32);
    md.insert(
        "whisper.suppress_ids",
        Array::I32(suppressed_ids(&tok, &ids)?),
    )?;
    md.insert("whisper.suppress_ids_begin", Array::I32(begin))?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n_vocab: i32, words: &[&[u8]]) -> Vec<u8> {
        let mut b = GGML_BIN_MAGIC.to_vec();
        for v in [n_vocab, 1500, 8, 2, 1, 448, 8, 2, 1, 2, 1] {
            b.extend(v.to_le_bytes());
        }
        b.extend(2i32.to_le_bytes());
        b.extend(3i32.to_le_bytes());
        b.extend([0u8; 2 * 3 * 4]);
        b.extend((words.len() as i32).to_le_bytes());
        for w in words {
            b.extend((w.len() as u32).to_le_bytes());
            b.extend(*w);
        }
        b
    }

    fn tensor(b: &mut Vec<u8>, name: &str, dims: &[i32]) {
        b.extend((dims.len() as i32).to_le_bytes());
        b.extend((name.len() as i32).to_le_bytes());
        b.extend(0i32.to_le_bytes());
        for d in dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(name.as_bytes());
        b.extend(vec![0u8; 4 * dims.iter().product::<i32>() as usize]);
    }

    #[test]
    fn every_truncation_is_a_named_error() {
        let mut b = header(51_864, &[b"a", b"b", b"ab"]);
        let no_tensors = b.len(); // a valid, empty model: whisper.cpp loads it for tests
        tensor(&mut b, "decoder.ln.bias", &[8]);
        assert_eq!(parse(&b).expect("whole file parses").tensors.len(), 1);
        for cut in (0..b.len()).filter(|&c| c != no_tensors) {
            let err = parse(&b[..cut]).err().map(|e| e.to_string());
            let err = err.unwrap_or_else(|| panic!("a cut at {cut} parsed"));
            assert!(err.contains("whisper.cpp .bin"), "{err}");
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let mut b = header(51_864, &[]);
        b[0] = b'G';
        assert!(parse(&b)
            .err()
            .expect("an error")
            .to_string()
            .contains("magic"));
        let mut b = header(-3, &[]);
        assert!(parse(&b)
            .err()
            .expect("an error")
            .to_string()
            .contains("n_vocab is -3"));
        b = header(51_864, &[]);
        let mut t = Vec::new();
        tensor(&mut t, "x", &[4]);
        t[8..12].copy_from_slice(&99i32.to_le_bytes());
        b.extend(t);
        assert!(parse(&b)
            .err()
            .expect("an error")
            .to_string()
            .contains("unknown type 99"));
    }

    #[test]
    fn special_ids_follow_whisper_cpp() {
        let en = SpecialIds::for_vocab(51_864).unwrap();
        assert_eq!(
            (en.eot, en.sot, en.translate, en.timestamp_begin),
            (50_256, 50_257, 50_357, 50_363)
        );
        let multi = SpecialIds::for_vocab(51_865).unwrap();
        assert_eq!(
            (multi.eot, multi.sot, multi.translate, multi.no_speech),
            (50_257, 50_258, 50_358, 50_362)
        );
        let v3 = SpecialIds::for_vocab(51_866).unwrap();
        assert_eq!((v3.translate, v3.timestamp_begin), (50_359, 50_365));
        assert!(SpecialIds::for_vocab(1000).is_err());
    }

    #[test]
    fn merges_follow_ranks() {
        let words: Vec<&[u8]> = vec![b"a", b"b", b"c", b"ab", b"bc", b"abc", b"ca"];
        // "abc": "ab" (rank 3) joins before "bc" (rank 4), then "ab"+"c".
        // "ca" has rank 6: "c"+"a".
        assert_eq!(merges_from_ranks(&words), ["a b", "b c", "ab c", "c a"]);
    }
}
