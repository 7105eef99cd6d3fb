//! A loaded model (text, and optionally its vision projector), shared by sessions.

use std::sync::Arc;
use std::time::Instant;

use fennec_core::chat::{ChatMessage as CoreMessage, ContentPart};
use fennec_core::vision::{EmbeddingCache, ImageEmbeddings, VisionModel};
use fennec_core::CancelHandle;

use crate::error::{FennecError, Result};
use crate::image::Image;
use crate::options::{ChatMessage, LoadOptions};

/// A model ready to run. Thread-safe: any number of sessions on any threads share it, and it
/// stays alive while a session holds it.
#[derive(uniffi::Object)]
pub struct Model {
    pub(crate) text: Arc<fennec_core::Model>,
    vision: Option<Arc<VisionModel>>,
    image_cache: EmbeddingCache,
}

/// What a model is.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ModelInfo {
    /// `general.architecture` (`llama`, `llama4`).
    pub architecture: String,
    /// Vocabulary size.
    pub n_vocab: u32,
    /// Embedding width.
    pub n_embd: u32,
    /// Context length the model was trained with.
    pub n_ctx_train: u32,
    /// Worker threads.
    pub n_threads: u32,
    /// Whether a vision projector is loaded (image messages work).
    pub has_vision: bool,
}

#[uniffi::export]
impl Model {
    /// Maps the GGUF at `path` (weights stay in the file's mapping), builds its tokenizer and
    /// chat template, and loads `options.mmproj_path` beside it when set.
    #[uniffi::constructor]
    pub fn load(path: String, options: LoadOptions) -> Result<Arc<Self>> {
        let core_opts = fennec_core::LoadOptions::with_threads(options.n_threads as usize);
        let text = fennec_core::Model::load(&path, &core_opts)?;
        let vision = match &options.mmproj_path {
            Some(p) => Some(VisionModel::load_for(p, &text)?),
            None => None,
        };
        Ok(Arc::new(Self {
            text,
            vision,
            image_cache: EmbeddingCache::new(options.image_cache_bytes as usize),
        }))
    }

    /// Architecture, sizes and whether images work.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            architecture: self.text.architecture_name().to_string(),
            n_vocab: self.text.n_vocab() as u32,
            n_embd: self.text.n_embd() as u32,
            n_ctx_train: self.text.n_ctx_train() as u32,
            n_threads: self.text.n_threads() as u32,
            has_vision: self.vision.is_some(),
        }
    }

    /// Token ids of `text`; `add_bos` prepends the beginning-of-sequence token,
    /// `parse_special` turns written special tokens (`<|im_start|>`) into their ids.
    pub fn encode(&self, text: String, add_bos: bool, parse_special: bool) -> Result<Vec<u32>> {
        Ok(self.text.encode(&text, add_bos, parse_special)?)
    }

    /// The text of token ids.
    pub fn decode(&self, tokens: Vec<u32>) -> Result<String> {
        Ok(self.text.decode(&tokens)?)
    }

    /// The conversation as the model's chat template writes it (the assistant header last
    /// when `add_generation_prompt`); images appear as the template's image marker.
    pub fn render_chat(
        &self,
        messages: Vec<ChatMessage>,
        add_generation_prompt: bool,
    ) -> Result<String> {
        let core: Vec<CoreMessage> = messages
            .iter()
            .map(|m| {
                let mut parts = vec![ContentPart::Text(m.text.clone())];
                for _ in &m.images {
                    parts.insert(0, ContentPart::Image(Arc::new(placeholder_image())));
                }
                CoreMessage {
                    role: m.role.clone(),
                    parts,
                }
            })
            .collect();
        Ok(self
            .text
            .chat_template()?
            .render(&core, add_generation_prompt)
            .map_err(fennec_core::Error::from)?)
    }
}

impl Model {
    /// `messages` as core messages, their images encoded (through the cache); returns the
    /// seconds spent encoding.
    pub(crate) fn core_messages(
        &self,
        messages: &[ChatMessage],
        cancel: &CancelHandle,
    ) -> Result<(Vec<CoreMessage>, f64)> {
        let start = Instant::now();
        let mut encoded_any = false;
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let mut parts = Vec::with_capacity(m.images.len() + 1);
            for image in &m.images {
                let (embeddings, fresh) = self.encode_image(image, cancel)?;
                encoded_any |= fresh;
                parts.push(ContentPart::Image(embeddings));
            }
            parts.push(ContentPart::Text(m.text.clone()));
            out.push(CoreMessage {
                role: m.role.clone(),
                parts,
            });
        }
        let seconds = if encoded_any {
            start.elapsed().as_secs_f64()
        } else {
            0.0
        };
        Ok((out, seconds))
    }

    /// The image's projected rows (cached by pixel content) and whether they were computed now.
    fn encode_image(
        &self,
        image: &Image,
        cancel: &CancelHandle,
    ) -> Result<(Arc<ImageEmbeddings>, bool)> {
        let vision = self.vision.as_ref().ok_or_else(|| {
            FennecError::InvalidArgument(
                "this message has an image but the model was loaded without an mmproj \
                 (LoadOptions.mmproj_path)"
                    .into(),
            )
        })?;
        let pixels = vision.preprocess(&image.view()?)?;
        let mut fresh = false;
        let embeddings = self.image_cache.get_or_encode(&pixels, |p| {
            fresh = true;
            vision.encode(p, cancel)
        })?;
        Ok((embeddings, fresh))
    }
}

/// An empty image standing for an image part when only the rendered text is wanted.
fn placeholder_image() -> ImageEmbeddings {
    ImageEmbeddings {
        data: Vec::new(),
        n_embd: 0,
        tokens_per_tile: 0,
        grid: (0, 0),
        has_global: false,
    }
}
