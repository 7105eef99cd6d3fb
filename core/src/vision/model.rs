//! A Llama 4 vision tower and projector loaded from an mmproj GGUF (`general.architecture =
//! clip`, `clip.projector_type = llama4`; spec §5.7).

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, Metadata};
use crate::model::weights::{f32s, matrix_ref, optional_ref, TensorRef};
use crate::model::{LoadOptions, Model};
use crate::ops::ThreadPool;

use super::preprocess::PreprocessOptions;

/// Shape of a Llama 4 vision tower (read from `clip.vision.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct VisionHparams {
    /// Side of a tile in pixels (`clip.vision.image_size`, 336).
    pub image_size: usize,
    /// Side of a patch (`clip.vision.patch_size`, 14).
    pub patch_size: usize,
    /// Encoder width (`clip.vision.embedding_length`, 1408).
    pub n_embd: usize,
    /// Encoder MLP width (`clip.vision.feed_forward_length`, 5632).
    pub n_ff: usize,
    /// Encoder blocks (`clip.vision.block_count`, 34).
    pub n_layer: usize,
    /// Attention heads (`clip.vision.attention.head_count`, 16).
    pub n_head: usize,
    /// LayerNorm epsilon.
    pub eps: f32,
    /// Pixel-shuffle merge factor per side (`clip.vision.projector.scale_factor`, 2).
    pub merge: usize,
    /// Width of the adapter MLP's output (4096 for Scout).
    pub n_adapter: usize,
    /// Width of the projected embeddings: the text model's `n_embd` (5120 for Scout).
    pub n_out: usize,
    /// Per-channel mean and std of pixel normalisation.
    pub mean: [f32; 3],
    /// See `mean`.
    pub std: [f32; 3],
    /// Vision RoPE base (not stored in GGUF files; 10000).
    pub rope_theta: f32,
}

impl VisionHparams {
    /// Patches along a tile side.
    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Encoder positions per tile: the patches plus the class token.
    pub fn n_positions(&self) -> usize {
        self.patches_per_side().pow(2) + 1
    }

    /// Embeddings each tile becomes after the pixel shuffle (144 for Llama 4).
    pub fn tokens_per_tile(&self) -> usize {
        (self.patches_per_side() / self.merge).pow(2)
    }

    /// Elements per attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }
}

/// One encoder block's tensors.
#[derive(Debug)]
pub(super) struct VisionBlock {
    pub ln1_w: Vec<f32>,
    pub ln1_b: Vec<f32>,
    pub q: TensorRef,
    pub q_b: Vec<f32>,
    pub k: TensorRef,
    pub k_b: Vec<f32>,
    pub v: TensorRef,
    pub v_b: Vec<f32>,
    pub o: TensorRef,
    pub o_b: Vec<f32>,
    pub ln2_w: Vec<f32>,
    pub ln2_b: Vec<f32>,
    pub up: TensorRef,
    pub up_b: Vec<f32>,
    pub down: TensorRef,
    pub down_b: Vec<f32>,
}

/// Every tensor of the tower, adapter and projector.
#[derive(Debug)]
pub(super) struct VisionWeights {
    pub patch: TensorRef,
    pub class: Vec<f32>,
    pub pos: Vec<f32>,
    pub pre_ln_w: Vec<f32>,
    pub pre_ln_b: Vec<f32>,
    pub post_ln_w: Vec<f32>,
    pub post_ln_b: Vec<f32>,
    pub blocks: Vec<VisionBlock>,
    pub adapter_1: TensorRef,
    pub adapter_2: TensorRef,
    pub projector: TensorRef,
}

/// A loaded vision tower: shareable between threads (`Arc<VisionModel>`); weights stay in
/// the file's mapping.
pub struct VisionModel {
    pub(super) file: GgufFile,
    pub(super) hp: VisionHparams,
    pub(super) w: VisionWeights,
    pub(super) pool: Arc<ThreadPool>,
    /// `(cos, sin)` of each rotated pair at each encoder position (`n_positions × head_dim/2`).
    pub(super) rope: Vec<(f32, f32)>,
}

impl std::fmt::Debug for VisionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisionModel")
            .field("hparams", &self.hp)
            .finish_non_exhaustive()
    }
}

// Bindings share one vision model between threads.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<VisionModel>();
};

impl VisionModel {
    /// Loads the mmproj stored in `len` bytes of `file` from `offset` (`len = 0`: to the
    /// end), with its own worker threads: an mmproj inside an app bundle.
    pub fn load_range(
        file: &std::fs::File,
        offset: u64,
        len: u64,
        opts: &LoadOptions,
    ) -> Result<Arc<Self>> {
        let pool = Arc::new(ThreadPool::new(opts.n_threads, opts.idle_spin)?);
        Self::from_gguf(GgufFile::open_range(file, offset, len)?, pool)
    }

    /// Loads the mmproj at `path` with its own worker threads.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unsupported`] when the file is not a Llama 4 projector,
    /// [`crate::ErrorKind::InvalidModel`] for missing or misshapen tensors, and the errors
    /// of [`Model::load`].
    pub fn load(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Arc<Self>> {
        let pool = Arc::new(ThreadPool::new(opts.n_threads, opts.idle_spin)?);
        Self::from_gguf(GgufFile::open(path)?, pool)
    }

    /// Builds a vision model from an already opened mmproj file, with its own worker threads.
    pub fn from_file(file: GgufFile, opts: &LoadOptions) -> Result<Arc<Self>> {
        let pool = Arc::new(ThreadPool::new(opts.n_threads, opts.idle_spin)?);
        Self::from_gguf(file, pool)
    }

    /// Loads the mmproj at `path` to pair with `text`: sharing its worker threads, and
    /// refusing a projector whose output width is not `text`'s embedding width or a text
    /// model without Llama 4's image tokens.
    pub fn load_for(path: impl AsRef<Path>, text: &Model) -> Result<Arc<Self>> {
        let vision = Self::from_gguf(GgufFile::open(path)?, text.pool_handle())?;
        vision.check_pairs_with(text)?;
        Ok(vision)
    }

    /// Builds a vision model from an opened mmproj file, running on `pool`.
    pub(crate) fn from_gguf(file: GgufFile, pool: Arc<ThreadPool>) -> Result<Arc<Self>> {
        let md = file.metadata();
        let arch = md
            .get_str("general.architecture")
            .map_err(|e| Error::InvalidModel(e.to_string()))?;
        if arch != "clip" {
            return Err(Error::Unsupported(format!(
                "general.architecture is {arch:?}; an image projector (mmproj) file has \"clip\""
            )));
        }
        let projector = md
            .get_str("clip.projector_type")
            .map_err(|e| Error::InvalidModel(format!("mmproj: {e}")))?;
        if projector != "llama4" {
            return Err(Error::Unsupported(format!(
                "projector type {projector:?} is not supported; Fennec runs \"llama4\""
            )));
        }
        let mut hp = read_hparams(md)?;
        let w = load_weights(&file, &hp)?;
        hp.n_adapter = w.adapter_1.n_out;
        let rope = rope_table(&hp);
        Ok(Arc::new(Self {
            file,
            hp,
            w,
            pool,
            rope,
        }))
    }

    /// An error unless this projector feeds `text`: equal widths and the image tokens.
    pub fn check_pairs_with(&self, text: &Model) -> Result<()> {
        if self.hp.n_out != text.n_embd() {
            return Err(Error::InvalidModel(format!(
                "the mmproj projects to {}-wide embeddings but the text model is {} wide (n_embd): \
                 this projector belongs to another model",
                self.hp.n_out,
                text.n_embd()
            )));
        }
        super::prompt::ImageTokens::of(text).map(|_| ())
    }

    /// The tower's shape.
    pub fn hparams(&self) -> &VisionHparams {
        &self.hp
    }

    /// Preprocessing that matches this tower (tile size and normalisation from the file,
    /// up to 16 tiles).
    pub fn preprocess_options(&self) -> PreprocessOptions {
        PreprocessOptions {
            tile_size: self.hp.image_size,
            mean: self.hp.mean,
            std: self.hp.std,
            ..PreprocessOptions::default()
        }
    }

    /// Width of the projected embeddings (the text model's `n_embd`).
    pub fn n_embd_out(&self) -> usize {
        self.hp.n_out
    }

    /// Worker threads.
    pub fn n_threads(&self) -> usize {
        self.pool.n_threads()
    }
}

fn md_size(md: &Metadata, key: &str, max: usize) -> Result<usize> {
    let v = md
        .get_uint(key)
        .map_err(|e| Error::InvalidModel(format!("mmproj: {e}")))?;
    usize::try_from(v)
        .ok()
        .filter(|&v| (1..=max).contains(&v))
        .ok_or_else(|| Error::InvalidModel(format!("mmproj: {key} is {v}; expected 1..={max}")))
}

fn md_triple(md: &Metadata, key: &str, default: f32) -> Result<[f32; 3]> {
    if !md.contains(key) {
        return Ok([default; 3]);
    }
    let v = md
        .get_array_of::<f32>(key)
        .map_err(|e| Error::InvalidModel(format!("mmproj: {e}")))?;
    match v {
        [a, b, c] if v.iter().all(|x| x.is_finite()) => Ok([*a, *b, *c]),
        _ => Err(Error::InvalidModel(format!(
            "mmproj: {key} must hold three finite numbers"
        ))),
    }
}

fn read_hparams(md: &Metadata) -> Result<VisionHparams> {
    let image_size = md_size(md, "clip.vision.image_size", 4096)?;
    let patch_size = md_size(md, "clip.vision.patch_size", 256)?;
    let n_embd = md_size(md, "clip.vision.embedding_length", 1 << 15)?;
    let n_ff = md_size(md, "clip.vision.feed_forward_length", 1 << 17)?;
    let n_layer = md_size(md, "clip.vision.block_count", 1024)?;
    let n_head = md_size(md, "clip.vision.attention.head_count", 1024)?;
    let n_out = md_size(md, "clip.vision.projection_dim", 1 << 17)?;
    let merge = if md.contains("clip.vision.projector.scale_factor") {
        md_size(md, "clip.vision.projector.scale_factor", 16)?
    } else {
        2
    };
    let eps = match md
        .get_opt_scalar::<f32>("clip.vision.attention.layer_norm_epsilon")
        .map_err(|e| Error::InvalidModel(format!("mmproj: {e}")))?
    {
        Some(&e) if e.is_finite() && e >= 0.0 => e,
        Some(&e) => {
            return Err(Error::InvalidModel(format!(
                "mmproj: layer_norm_epsilon is {e}"
            )))
        }
        None => 1e-5,
    };
    let per_side = image_size / patch_size;
    if image_size % patch_size != 0 || per_side % merge != 0 {
        return Err(Error::InvalidModel(format!(
            "mmproj: a {image_size}-pixel tile is not a whole number of {patch_size}-pixel patches \
             in groups of {merge}"
        )));
    }
    let head_dim = n_embd / n_head;
    if n_embd % n_head != 0 || head_dim % 4 != 0 {
        return Err(Error::InvalidModel(format!(
            "mmproj: {n_embd} wide with {n_head} heads leaves heads that 2-D RoPE cannot split"
        )));
    }
    Ok(VisionHparams {
        image_size,
        patch_size,
        n_embd,
        n_ff,
        n_layer,
        n_head,
        eps,
        merge,
        n_adapter: 0, // read from the adapter's tensor below
        n_out,
        mean: md_triple(md, "clip.vision.image_mean", 0.5)?,
        std: md_triple(md, "clip.vision.image_std", 0.5)?,
        rope_theta: 10000.0,
    })
}

fn load_weights(file: &GgufFile, hp: &VisionHparams) -> Result<VisionWeights> {
    let (c, ff) = (hp.n_embd, hp.n_ff);
    let patch_len = 3 * hp.patch_size * hp.patch_size;
    let patch = patch_ref(file, patch_len, c)?;
    let vec = |name: &str, n: usize| f32s(file, name, &[n]);
    let mut blocks = Vec::new();
    for il in 0..hp.n_layer {
        let name = |s: &str| format!("v.blk.{il}.{s}");
        let ln2 = if file.tensor(&name("ln2.weight")).is_some() {
            "ln2"
        } else {
            "attn_post_norm"
        };
        blocks.push(VisionBlock {
            ln1_w: vec(&name("ln1.weight"), c)?,
            ln1_b: vec(&name("ln1.bias"), c)?,
            q: matrix_ref(file, &name("attn_q.weight"), &[c, c])?,
            q_b: vec(&name("attn_q.bias"), c)?,
            k: matrix_ref(file, &name("attn_k.weight"), &[c, c])?,
            k_b: vec(&name("attn_k.bias"), c)?,
            v: matrix_ref(file, &name("attn_v.weight"), &[c, c])?,
            v_b: vec(&name("attn_v.bias"), c)?,
            o: matrix_ref(file, &name("attn_out.weight"), &[c, c])?,
            o_b: vec(&name("attn_out.bias"), c)?,
            ln2_w: vec(&name(&format!("{ln2}.weight")), c)?,
            ln2_b: vec(&name(&format!("{ln2}.bias")), c)?,
            up: matrix_ref(file, &name("ffn_up.weight"), &[c, ff])?,
            up_b: vec(&name("ffn_up.bias"), ff)?,
            down: matrix_ref(file, &name("ffn_down.weight"), &[ff, c])?,
            down_b: vec(&name("ffn_down.bias"), c)?,
        });
    }
    let shuffled = c * hp.merge * hp.merge;
    let adapter_1 = adapter_ref(file, "mm.model.mlp.1.weight", shuffled)?;
    let n_adapter = adapter_1.n_out;
    let adapter_2 = matrix_ref(file, "mm.model.mlp.2.weight", &[n_adapter, n_adapter])?;
    let projector = matrix_ref(file, "mm.model.fc.weight", &[n_adapter, hp.n_out])?;
    Ok(VisionWeights {
        patch,
        class: vec("v.class_embd", c)?,
        pos: f32s(file, "v.position_embd.weight", &[c, hp.n_positions()])?,
        pre_ln_w: vec("v.pre_ln.weight", c)?,
        pre_ln_b: vec("v.pre_ln.bias", c)?,
        post_ln_w: vec("v.post_ln.weight", c)?,
        post_ln_b: vec("v.post_ln.bias", c)?,
        blocks,
        adapter_1,
        adapter_2,
        projector,
    })
}

/// The patch embedding, stored flat `[3·p·p, C]` or as a conv kernel `[p, p, 3, C]` (the
/// same element order).
fn patch_ref(file: &GgufFile, patch_len: usize, c: usize) -> Result<TensorRef> {
    let name = "v.patch_embd.weight";
    let view = file
        .tensor(name)
        .ok_or_else(|| Error::InvalidModel(format!("mmproj: tensor {name:?} is missing")))?;
    let dims: Vec<usize> = view.info.dims.iter().map(|&d| d as usize).collect();
    let flat = dims.len() >= 2 && dims[..dims.len() - 1].iter().product::<usize>() == patch_len;
    if !flat || dims[dims.len() - 1] != c {
        return Err(Error::InvalidModel(format!(
            "mmproj: {name} has dims {dims:?}; expected [{patch_len}, {c}]"
        )));
    }
    let mut r = optional_ref(file, name, &dims)?.expect("tensor present");
    r.n_in = patch_len;
    r.n_out = c;
    if fennec_quant::dot::activation_type(r.ty).is_none()
        || fennec_quant::row_bytes(r.ty, patch_len).is_err()
    {
        return Err(Error::InvalidModel(format!(
            "mmproj: {name} of type {} cannot be multiplied with rows of {patch_len}",
            r.ty
        )));
    }
    Ok(r)
}

/// The adapter's first matrix: `[shuffled, n_adapter]`, its output width read from the file.
fn adapter_ref(file: &GgufFile, name: &str, shuffled: usize) -> Result<TensorRef> {
    let view = file
        .tensor(name)
        .ok_or_else(|| Error::InvalidModel(format!("mmproj: tensor {name:?} is missing")))?;
    let dims = &view.info.dims;
    let n_adapter = match dims.as_slice() {
        [n_in, n_out] if *n_in as usize == shuffled && *n_out > 0 && *n_out <= 1 << 17 => {
            *n_out as usize
        }
        _ => {
            return Err(Error::InvalidModel(format!(
                "mmproj: {name} has dims {dims:?}; expected [{shuffled}, n]"
            )))
        }
    };
    matrix_ref(file, name, &[shuffled, n_adapter])
}

/// The vision RoPE's `(cos, sin)` per position and pair (spec §5.4): patch `p` at column
/// `x = p % side`, row `y = p / side`; the first half of a head's pairs turn by `(x+1)·f_k`,
/// the second by `(y+1)·f_k` with `f_k = θ^(−4k/head_dim)`; the class token (last) does not
/// turn. Angles are computed in f32 as transformers does.
fn rope_table(hp: &VisionHparams) -> Vec<(f32, f32)> {
    let side = hp.patches_per_side();
    let n_pairs = hp.head_dim() / 2;
    let half = n_pairs / 2;
    let freq_dim = (hp.head_dim() / 2) as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|k| 1.0 / hp.rope_theta.powf((2 * k) as f32 / freq_dim))
        .collect();
    let mut table = Vec::with_capacity(hp.n_positions() * n_pairs);
    for p in 0..hp.n_positions() {
        let is_class = p + 1 == hp.n_positions();
        let (x, y) = ((p % side + 1) as f32, (p / side + 1) as f32);
        for j in 0..n_pairs {
            let angle = if is_class {
                0.0
            } else if j < half {
                x * freqs[j]
            } else {
                y * freqs[j - half]
            };
            table.push((angle.cos(), angle.sin()));
        }
    }
    table
}
