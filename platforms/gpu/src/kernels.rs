//! The WGSL kernel set: which files make up each kernel, and the names its pipelines carry.
//!
//! Kernels are kept as `.wgsl` files under `shaders/` and joined here: a matrix-vector
//! kernel is the number helpers, the common bindings, its activation bindings, its own
//! `row_partials` and one of the two reductions ([`Reduction`]) that supply the entry point.

use fennec_quant::GgmlType;

const NUMBERS: &str = include_str!("../shaders/numbers.wgsl");
const MATVEC_COMMON: &str = include_str!("../shaders/matvec_common.wgsl");
const ACT_Q8: &str = include_str!("../shaders/act_q8.wgsl");
const ACT_F32: &str = include_str!("../shaders/act_f32.wgsl");
const K_COMMON: &str = include_str!("../shaders/matvec_q8_k_common.wgsl");
const REDUCE_SHARED: &str = include_str!("../shaders/reduce_shared.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("../shaders/reduce_subgroup.wgsl");
const QUANTIZE: &str = include_str!("../shaders/quantize.wgsl");
const ROWS: &str = include_str!("../shaders/rows.wgsl");
const ARGMAX: &str = include_str!("../shaders/argmax.wgsl");
const KV_STORE: &str = include_str!("../shaders/kv_store.wgsl");
const ATTEND: &str = include_str!("../shaders/attend.wgsl");

/// Weight types with a GPU matrix-vector kernel.
pub const MATVEC_TYPES: [GgmlType; 10] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

/// Output rows per workgroup of a matrix-vector kernel (`ROWS` in `matvec_common.wgsl`).
pub const ROWS_PER_GROUP: u32 = 4;

/// Threads per workgroup of every kernel (`WG` in the WGSL).
pub const WORKGROUP_SIZE: u32 = 64;

/// How a matrix-vector kernel sums its threads' partial results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// A shared-memory tree: runs on every adapter.
    Shared,
    /// `subgroupAdd`, then one pass over the subgroups: needs the `SUBGROUP` feature.
    Subgroup,
}

impl Reduction {
    /// Both variants, shared memory first.
    pub const ALL: [Reduction; 2] = [Reduction::Shared, Reduction::Subgroup];

    /// The variant's name in kernel names.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Shared => "shared",
            Reduction::Subgroup => "subgroup",
        }
    }
}

/// How a kernel takes its activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activations {
    /// Plain f32.
    F32,
    /// Quantized on the GPU to this block type (Q8_0, Q8_1 or Q8_K), as the CPU pairs it.
    Quantized(GgmlType),
}

/// The activations the matrix-vector kernel for weight type `ty` takes, or `None` if `ty`
/// has no GPU kernel. Quantized weights pair with the activation type the CPU kernels use
/// (`fennec_quant::dot::activation_type`); F16 and F32 weights take f32 activations.
pub fn activations(ty: GgmlType) -> Option<Activations> {
    if !MATVEC_TYPES.contains(&ty) {
        return None;
    }
    match ty {
        GgmlType::F32 | GgmlType::F16 => Some(Activations::F32),
        _ => fennec_quant::dot::activation_type(ty).map(Activations::Quantized),
    }
}

/// The kernel file with `row_partials` for weight type `ty`.
fn matvec_body(ty: GgmlType) -> Option<&'static str> {
    Some(match ty {
        GgmlType::F32 => include_str!("../shaders/matvec_f32.wgsl"),
        GgmlType::F16 => include_str!("../shaders/matvec_f16.wgsl"),
        GgmlType::Q4_0 => include_str!("../shaders/matvec_q4_0.wgsl"),
        GgmlType::Q4_1 => include_str!("../shaders/matvec_q4_1.wgsl"),
        GgmlType::Q5_0 => include_str!("../shaders/matvec_q5_0.wgsl"),
        GgmlType::Q5_1 => include_str!("../shaders/matvec_q5_1.wgsl"),
        GgmlType::Q8_0 => include_str!("../shaders/matvec_q8_0.wgsl"),
        GgmlType::Q4K => include_str!("../shaders/matvec_q4_k.wgsl"),
        GgmlType::Q5K => include_str!("../shaders/matvec_q5_k.wgsl"),
        GgmlType::Q6K => include_str!("../shaders/matvec_q6_k.wgsl"),
        _ => return None,
    })
}

/// The whole WGSL source of the matrix-vector kernel for `ty` with `reduction` (entry point
/// `main`), or `None` if `ty` has none.
pub fn matvec_source(ty: GgmlType, reduction: Reduction) -> Option<String> {
    let body = matvec_body(ty)?;
    let mut parts = vec![NUMBERS, MATVEC_COMMON];
    match activations(ty)? {
        Activations::F32 => parts.push(ACT_F32),
        Activations::Quantized(act) => {
            parts.push(ACT_Q8);
            if act == GgmlType::Q8K {
                parts.push(K_COMMON);
            }
        }
    }
    parts.push(body);
    parts.push(match reduction {
        Reduction::Shared => REDUCE_SHARED,
        Reduction::Subgroup => REDUCE_SUBGROUP,
    });
    Some(parts.join("\n"))
}

/// The name of the matrix-vector kernel for `ty` with `reduction`, e.g. `matvec_q4_k_shared`.
pub fn matvec_name(ty: GgmlType, reduction: Reduction) -> String {
    format!("matvec_{}_{}", ty.name().to_lowercase(), reduction.name())
}

/// The WGSL source of the activation quantizers (entry points [`quantize_entry`]).
pub fn quantize_source() -> String {
    [NUMBERS, QUANTIZE].join("\n")
}

/// The entry point in [`quantize_source`] that quantizes activations to `act`, with the
/// floats of scale data it writes per block; `None` for a type it does not make.
pub fn quantize_entry(act: GgmlType) -> Option<(&'static str, u32)> {
    match act {
        GgmlType::Q8_0 => Some(("quantize_q8_0", 1)),
        GgmlType::Q8_1 => Some(("quantize_q8_1", 2)),
        GgmlType::Q8K => Some(("quantize_q8_k", 17)),
        _ => None,
    }
}

/// The WGSL source of the row operations (entry points `rms_norm`, `rope`, `swiglu`, `add`).
pub fn rows_source() -> String {
    ROWS.to_string()
}

/// The WGSL source of the row-wise argmax (entry point `argmax`).
pub fn argmax_source() -> String {
    ARGMAX.to_string()
}

/// The WGSL source of the f16 KV store (entry point `kv_store`).
pub fn kv_store_source() -> String {
    [NUMBERS, KV_STORE].join("\n")
}

/// The WGSL source of attention over the f16 KV cache (entry point `attend`).
pub fn attend_source() -> String {
    [NUMBERS, ATTEND].join("\n")
}

/// `source` built wrong on purpose (outputs scaled by 1.5), for tests of the self-test.
pub fn with_fault(source: &str) -> String {
    source
        .replace(
            "fn write_rows(group: u32, vector: u32, sums: vec4<f32>) {",
            "fn write_rows(group: u32, vector: u32, exact: vec4<f32>) {\n    let sums = exact * 1.5;",
        )
        .replace("let scale = 1.0 / sqrt(", "let scale = 1.5 / sqrt(")
}

/// Every kernel source with its name and whether it needs subgroup operations: what the
/// translation tests check with naga.
pub fn all_sources() -> Vec<(String, String, bool)> {
    let mut all = vec![
        ("quantize".to_string(), quantize_source(), false),
        ("rows".to_string(), rows_source(), false),
        ("argmax".to_string(), argmax_source(), false),
        ("kv_store".to_string(), kv_store_source(), false),
        ("attend".to_string(), attend_source(), false),
    ];
    for ty in MATVEC_TYPES {
        for reduction in Reduction::ALL {
            if let Some(source) = matvec_source(ty, reduction) {
                all.push((
                    matvec_name(ty, reduction),
                    source,
                    reduction == Reduction::Subgroup,
                ));
            }
        }
    }
    all
}
