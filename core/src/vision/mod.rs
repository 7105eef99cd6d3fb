//! Llama 4 vision: images in, projected embeddings out, fused into a prompt.
//!
//! [`ImageView`] borrows camera or decoded pixels; preprocessing turns it into tiles of
//! normalised pixels, the vision encoder turns those into rows of text-space embeddings,
//! and [`Input::Embeddings`](crate::Input::Embeddings) feeds them to a session.

mod image;

pub use image::{ImageView, PixelLayout, Rect, Rotation, MAX_IMAGE_SIDE};
