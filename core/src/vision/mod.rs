//! Llama 4 vision: images in, projected embeddings out, fused into a prompt.
//!
//! An [`ImageView`] borrows camera or decoded pixels; [`preprocess`] turns it into tiles of
//! normalised pixels (cheap: run it while the camera buffer is borrowed);
//! [`VisionModel::encode`] turns those into rows of text-space embeddings (the slow part:
//! run it anywhere); a [`Prompt`] places them in a chat as
//! [`Input::Embeddings`](crate::Input::Embeddings).
//!
//! ```no_run
//! use std::sync::Arc;
//! use fennec_core::chat::ChatMessage;
//! use fennec_core::vision::{ImageView, PixelLayout, Prompt, VisionModel};
//! use fennec_core::{CancelHandle, GenerateOptions, LoadOptions, Model, SamplerOptions, Session, SessionOptions};
//!
//! let model = Model::load("scout.gguf", &LoadOptions::default())?;
//! let vision = VisionModel::load_for("mmproj-scout.gguf", &model)?;
//! # let rgb = vec![0u8; 640 * 480 * 3];
//! let view = ImageView::packed(&rgb, 640, 480, PixelLayout::Rgb8)?;
//! let pixels = vision.preprocess(&view)?;
//! let image = Arc::new(vision.encode(&pixels, &CancelHandle::new())?);
//! let chat = [ChatMessage::with_image("user", image, "What is in the picture?")];
//! let prompt = Prompt::from_chat(&model, &chat, true)?;
//! let mut session = Session::new(model.clone(), SessionOptions::default())?;
//! session.generate(&prompt.inputs(), &GenerateOptions::new(64, SamplerOptions::greedy()),
//!     &CancelHandle::new(), &mut |piece| { print!("{}", piece.text); true })?;
//! # Ok::<(), fennec_core::Error>(())
//! ```

mod cache;
mod encode;
mod image;
mod model;
mod preprocess;
mod prompt;

pub use cache::EmbeddingCache;
pub use encode::ImageEmbeddings;
pub use image::{ImageView, PixelLayout, Rect, Rotation, MAX_IMAGE_SIDE};
pub use model::{VisionHparams, VisionModel};
pub use preprocess::{best_grid, plan, preprocess, PixelTensor, Plan, PreprocessOptions};
pub use prompt::{ImageTokens, Prompt, IMAGE_MARKER};

impl VisionModel {
    /// [`preprocess`] with this model's [`VisionModel::preprocess_options`].
    pub fn preprocess(&self, image: &ImageView<'_>) -> crate::Result<PixelTensor> {
        preprocess(image, &self.preprocess_options())
    }
}
