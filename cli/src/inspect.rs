//! `fennec inspect`: what a GGUF file holds, for people (aligned text) and tools (`--json`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use fennec_core::gguf::{file_type_name, Array, GgmlType, GgufFile, Metadata, TensorInfo, Value};
use serde::Serialize;
use serde_json::json;

/// Arguments of `fennec inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The GGUF file.
    model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also list every tensor.
    #[arg(long)]
    tensors: bool,
}

/// Array elements shown in summaries.
const ARRAY_HEAD: usize = 4;

#[derive(Serialize)]
struct Report {
    path: String,
    file_size: u64,
    version: u32,
    alignment: u64,
    data_offset: u64,
    architecture: Option<String>,
    name: Option<String>,
    file_type: Option<FileType>,
    hyperparameters: BTreeMap<String, serde_json::Value>,
    tokenizer: Option<Tokenizer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    llama4: Option<serde_json::Value>,
    metadata_count: usize,
    tensor_count: usize,
    parameter_count: u64,
    tensor_bytes: u64,
    totals_by_type: Vec<TypeTotal>,
    metadata: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tensors: Option<Vec<TensorRow>>,
}

#[derive(Serialize)]
struct FileType {
    id: u32,
    name: Option<&'static str>,
}

#[derive(Serialize)]
struct Tokenizer {
    model: Option<String>,
    pre: Option<String>,
    tokens: usize,
    merges: usize,
    special: BTreeMap<String, SpecialToken>,
    add_bos_token: Option<bool>,
    add_eos_token: Option<bool>,
    chat_template_chars: Option<usize>,
}

#[derive(Serialize)]
struct SpecialToken {
    id: u64,
    text: Option<String>,
}

#[derive(Serialize)]
struct TypeTotal {
    #[serde(rename = "type")]
    ty: String,
    tensors: usize,
    elements: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct TensorRow {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    dims: Vec<u64>,
    bytes: u64,
    offset: u64,
}

/// Runs `fennec inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let gguf = GgufFile::open(&args.model)
        .with_context(|| format!("cannot open {}", args.model.display()))?;
    let report = build_report(&gguf, &args.model, args.tensors);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn build_report(gguf: &GgufFile, path: &std::path::Path, with_tensors: bool) -> Report {
    let md = gguf.metadata();
    let header = gguf.header();
    let architecture = md.get_str("general.architecture").ok().map(str::to_string);
    let hyperparameters = architecture
        .as_deref()
        .map(|arch| {
            let prefix = format!("{arch}.");
            md.iter()
                .filter_map(|(k, v)| {
                    let short = k.strip_prefix(&prefix)?;
                    (!matches!(v, Value::Array(_))).then(|| (short.to_string(), value_json(v)))
                })
                .collect()
        })
        .unwrap_or_default();
    let tensors = gguf.tensor_infos();
    Report {
        path: path.display().to_string(),
        file_size: gguf.file_size(),
        version: gguf.version(),
        alignment: header.alignment,
        data_offset: header.data_offset,
        architecture,
        name: md.get_str("general.name").ok().map(str::to_string),
        file_type: md.get_uint("general.file_type").ok().map(|id| FileType {
            id: id as u32,
            name: u32::try_from(id).ok().and_then(file_type_name),
        }),
        hyperparameters,
        tokenizer: tokenizer_summary(md),
        llama4: llama4_plan(gguf),
        metadata_count: md.len(),
        tensor_count: tensors.len(),
        parameter_count: tensors.iter().map(TensorInfo::n_elements).sum(),
        tensor_bytes: tensors.iter().map(|t| t.size).sum(),
        totals_by_type: totals_by_type(tensors),
        metadata: md
            .iter()
            .map(|(k, v)| (k.to_string(), value_json(v)))
            .collect(),
        tensors: with_tensors.then(|| {
            tensors
                .iter()
                .map(|t| TensorRow {
                    name: t.name.clone(),
                    ty: t.ty.name().to_string(),
                    dims: t.dims.clone(),
                    bytes: t.size,
                    offset: t.offset,
                })
                .collect()
        }),
    }
}

/// How Fennec will run a `llama4` file: the layer pattern and the values llama.cpp
/// hard-codes, with which of them the file overrides (or why the file cannot run).
fn llama4_plan(gguf: &GgufFile) -> Option<serde_json::Value> {
    use fennec_core::Llama4Hparams;
    let md = gguf.metadata();
    if md.get_str("general.architecture").ok()? != "llama4" {
        return None;
    }
    let embd_rows = gguf
        .tensor(fennec_core::tensor_names::TOKEN_EMBD)
        .and_then(|t| t.info.dims.get(1).copied())
        .unwrap_or(0) as usize;
    let hp = match Llama4Hparams::from_metadata(md, embd_rows) {
        Ok(hp) => hp,
        Err(e) => return Some(json!({ "error": e.to_string() })),
    };
    let layers: Vec<_> = (0..hp.base.n_layer).map(|il| hp.layer_kind(il)).collect();
    let which = |f: &dyn Fn(&fennec_core::Llama4LayerKind) -> bool| {
        layers
            .iter()
            .enumerate()
            .filter(|(_, k)| f(k))
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    let keyed = |k: &str| md.contains(&format!("llama4.{k}"));
    Some(json!({
        "chunk_size": hp.chunk_size,
        "chunk_size_from": if keyed("attention.sliding_window") || keyed("attention.chunk_size") { "file" } else { "default" },
        "temperature_length": f32_json(hp.temp_length),
        "temperature_scale": f32_json(hp.temp_scale),
        "temperature_from": if keyed("attention.temperature_length") || keyed("attention.temperature_scale") { "file" } else { "default" },
        "qk_norm": hp.use_qk_norm,
        "qk_norm_from": if keyed("attention.use_qk_norm") || keyed("use_qk_norm") { "file" } else { "default (on unless 128 experts)" },
        "experts": hp.n_expert,
        "experts_per_token": hp.n_expert_used,
        "nope_layers": which(&|k| !k.rope),
        "chunked_layers": which(&|k| k.chunked).len(),
        "moe_layers": which(&|k| k.moe),
        "dense_layers": which(&|k| !k.moe),
    }))
}

fn tokenizer_summary(md: &Metadata) -> Option<Tokenizer> {
    let model = md.get_str("tokenizer.ggml.model").ok().map(str::to_string);
    let tokens = md.get_array_of::<String>("tokenizer.ggml.tokens").ok();
    if model.is_none() && tokens.is_none() {
        return None;
    }
    let special = [
        "bos",
        "eos",
        "eot",
        "eom",
        "unknown",
        "padding",
        "separator",
        "mask",
    ]
    .into_iter()
    .filter_map(|role| {
        let id = md
            .get_uint(&format!("tokenizer.ggml.{role}_token_id"))
            .ok()?;
        let text = tokens
            .and_then(|t| t.get(usize::try_from(id).ok()?))
            .cloned();
        Some((role.to_string(), SpecialToken { id, text }))
    })
    .collect();
    Some(Tokenizer {
        model,
        pre: md.get_str("tokenizer.ggml.pre").ok().map(str::to_string),
        tokens: tokens.map_or(0, <[String]>::len),
        merges: md.get_array("tokenizer.ggml.merges").map_or(0, Array::len),
        special,
        add_bos_token: md.get_bool("tokenizer.ggml.add_bos_token").ok(),
        add_eos_token: md.get_bool("tokenizer.ggml.add_eos_token").ok(),
        chat_template_chars: md
            .get_str("tokenizer.chat_template")
            .ok()
            .map(|t| t.chars().count()),
    })
}

fn totals_by_type(tensors: &[TensorInfo]) -> Vec<TypeTotal> {
    let mut by_type: BTreeMap<GgmlType, TypeTotal> = BTreeMap::new();
    for t in tensors {
        let total = by_type.entry(t.ty).or_insert_with(|| TypeTotal {
            ty: t.ty.name().to_string(),
            tensors: 0,
            elements: 0,
            bytes: 0,
        });
        total.tensors += 1;
        total.elements += t.n_elements();
        total.bytes += t.size;
    }
    by_type.into_values().collect()
}

/// A metadata value as JSON; arrays become `{type, len, head}` summaries.
fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => f32_json(*x),
        Value::Bool(x) => json!(x),
        Value::String(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Array(a) => array_json(a),
    }
}

/// An f32 as the shortest decimal that reads back as the same f32 (`1e-5`, not `9.99…e-6`).
fn f32_json(x: f32) -> serde_json::Value {
    x.to_string()
        .parse::<f64>()
        .map_or(serde_json::Value::Null, |v| json!(v))
}

fn array_json(a: &Array) -> serde_json::Value {
    macro_rules! head {
        ($v:expr) => {
            json!($v.iter().take(ARRAY_HEAD).collect::<Vec<_>>())
        };
    }
    let head = match a {
        Array::U8(v) => head!(v),
        Array::I8(v) => head!(v),
        Array::U16(v) => head!(v),
        Array::I16(v) => head!(v),
        Array::U32(v) => head!(v),
        Array::I32(v) => head!(v),
        Array::F32(v) => json!(v
            .iter()
            .take(ARRAY_HEAD)
            .map(|x| f32_json(*x))
            .collect::<Vec<_>>()),
        Array::Bool(v) => head!(v),
        Array::String(v) => head!(v),
        Array::U64(v) => head!(v),
        Array::I64(v) => head!(v),
        Array::F64(v) => head!(v),
        Array::Array(v) => json!(v
            .iter()
            .take(ARRAY_HEAD)
            .map(array_json)
            .collect::<Vec<_>>()),
    };
    json!({ "array": a.element_type().name(), "len": a.len(), "head": head })
}

fn print_text(r: &Report) {
    let mut rows: Vec<(String, String)> = vec![
        ("file".into(), r.path.clone()),
        ("size".into(), human_bytes(r.file_size)),
        ("gguf version".into(), r.version.to_string()),
        (
            "architecture".into(),
            r.architecture.clone().unwrap_or_else(|| "-".into()),
        ),
        ("name".into(), r.name.clone().unwrap_or_else(|| "-".into())),
    ];
    if let Some(ft) = &r.file_type {
        rows.push((
            "file type".into(),
            format!("{} ({})", ft.name.unwrap_or("unknown"), ft.id),
        ));
    }
    rows.push((
        "parameters".into(),
        format!("{} ({})", r.parameter_count, human_count(r.parameter_count)),
    ));
    rows.push((
        "tensors".into(),
        format!("{} in {}", r.tensor_count, human_bytes(r.tensor_bytes)),
    ));
    rows.push(("metadata keys".into(), r.metadata_count.to_string()));
    print_section("model", &rows);

    let hp: Vec<(String, String)> = r
        .hyperparameters
        .iter()
        .map(|(k, v)| (k.clone(), compact(v)))
        .collect();
    if !hp.is_empty() {
        print_section("hyperparameters", &hp);
    }
    if let Some(plan) = &r.llama4 {
        let rows: Vec<(String, String)> = plan
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), compact(v))).collect())
            .unwrap_or_default();
        print_section("llama4 as Fennec runs it", &rows);
    }
    if let Some(t) = &r.tokenizer {
        let mut rows = vec![
            (
                "model".into(),
                t.model.clone().unwrap_or_else(|| "-".into()),
            ),
            (
                "pre-tokenizer".into(),
                t.pre.clone().unwrap_or_else(|| "-".into()),
            ),
            ("tokens".into(), t.tokens.to_string()),
            ("merges".into(), t.merges.to_string()),
        ];
        for (role, tok) in &t.special {
            let text = tok
                .text
                .as_deref()
                .map(|s| format!(" {s:?}"))
                .unwrap_or_default();
            rows.push((format!("{role} token"), format!("{}{text}", tok.id)));
        }
        if let Some(n) = t.chat_template_chars {
            rows.push(("chat template".into(), format!("{n} chars")));
        }
        print_section("tokenizer", &rows);
    }
    println!("\ntotals by type");
    let widths = [8, 8, 14, 12];
    println!(
        "  {:<w0$} {:>w1$} {:>w2$} {:>w3$}",
        "type",
        "tensors",
        "elements",
        "bytes",
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2],
        w3 = widths[3]
    );
    for t in &r.totals_by_type {
        println!(
            "  {:<w0$} {:>w1$} {:>w2$} {:>w3$}",
            t.ty,
            t.tensors,
            t.elements,
            human_bytes(t.bytes),
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    if let Some(tensors) = &r.tensors {
        let name_w = tensors
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!("\ntensors");
        println!(
            "  {:<name_w$} {:<7} {:<24} {:>12} {:>14}",
            "name", "type", "dims", "bytes", "offset"
        );
        for t in tensors {
            let dims = t
                .dims
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" x ");
            println!(
                "  {:<name_w$} {:<7} {:<24} {:>12} {:>14}",
                t.name, t.ty, dims, t.bytes, t.offset
            );
        }
    }
}

fn print_section(title: &str, rows: &[(String, String)]) {
    println!("\n{title}");
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("  {k:<w$}  {v}");
    }
}

fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}
