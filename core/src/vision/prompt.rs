//! Early fusion (spec §5.6): a chat with images becomes token ids and rows of image
//! embeddings. Each image marker the template renders (`<|image|>`) expands to
//!
//! ```text
//! <|image_start|>
//!   (grids of more than one tile) per tile row: tile (<|tile_x_separator|> tile)* <|tile_y_separator|>
//!   <|image|> global tile (or the only tile)
//! <|image_end|>
//! ```
//!
//! where each tile is `tokens_per_tile` positions fed with the image's embedding rows —
//! the positions transformers fills with `<|patch|>` and then overwrites.

use std::sync::Arc;

use crate::chat::ChatMessage;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::session::Input;

use super::encode::ImageEmbeddings;

/// The text an image part renders to in Llama 4 chat templates.
pub const IMAGE_MARKER: &str = "<|image|>";

/// Ids of Llama 4's image tokens in a text model's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageTokens {
    /// `<|image_start|>`.
    pub start: u32,
    /// `<|image_end|>`.
    pub end: u32,
    /// `<|image|>`: before the global tile.
    pub image: u32,
    /// `<|patch|>`: the id transformers writes at embedding positions.
    pub patch: u32,
    /// `<|tile_x_separator|>`: between tiles of a row.
    pub tile_x: u32,
    /// `<|tile_y_separator|>`: after each row of tiles.
    pub tile_y: u32,
}

impl ImageTokens {
    /// Looks the image tokens up in `model`'s vocabulary.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidModel`] naming the first token the vocabulary lacks (a text
    /// model that is not Llama 4's), or the tokenizer's error.
    pub fn of(model: &Model) -> Result<Self> {
        let tok = model.tokenizer()?;
        let id = |text: &str| {
            tok.token_id(text).ok_or_else(|| {
                Error::InvalidModel(format!(
                    "the text model's vocabulary has no {text} token: it does not take Llama 4 images"
                ))
            })
        };
        Ok(Self {
            start: id("<|image_start|>")?,
            end: id("<|image_end|>")?,
            image: id(IMAGE_MARKER)?,
            patch: id("<|patch|>")?,
            tile_x: id("<|tile_x_separator|>")?,
            tile_y: id("<|tile_y_separator|>")?,
        })
    }
}

/// One run of a prompt.
#[derive(Clone, Debug)]
enum Piece {
    Tokens(Vec<u32>),
    /// Tile `tile` of image `image`.
    Tile {
        image: usize,
        tile: usize,
    },
}

/// A prompt with images: token runs and image tiles, in order, ready to evaluate.
#[derive(Clone, Debug)]
pub struct Prompt {
    pieces: Vec<Piece>,
    images: Vec<Arc<ImageEmbeddings>>,
    patch: u32,
}

impl Prompt {
    /// Renders `messages` with `model`'s chat template (the assistant header last when
    /// `add_generation_prompt`), tokenizes the text and expands each image part.
    ///
    /// # Errors
    /// The template's errors; [`crate::ErrorKind::ChatTemplate`] when the template does not
    /// render one image marker per image part (it ignores images);
    /// [`crate::ErrorKind::InvalidArgument`] when an image's rows are not `model`'s width.
    pub fn from_chat(
        model: &Model,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Self> {
        let rendered = model
            .chat_template()?
            .render(messages, add_generation_prompt)?;
        let images: Vec<Arc<ImageEmbeddings>> =
            messages.iter().flat_map(|m| m.images().cloned()).collect();
        Self::from_text(model, &rendered, images)
    }

    /// Tokenizes `text` (special tokens parsed; BOS added when the vocabulary asks for it and
    /// `text` does not start with it) and expands the `i`-th
    /// [`IMAGE_MARKER`] into `images[i]`.
    pub fn from_text(model: &Model, text: &str, images: Vec<Arc<ImageEmbeddings>>) -> Result<Self> {
        let segments: Vec<&str> = if images.is_empty() {
            vec![text]
        } else {
            text.split(IMAGE_MARKER).collect()
        };
        if segments.len() != images.len() + 1 {
            return Err(Error::Chat(crate::chat::ChatError::Render(format!(
                "the prompt places {} image marker(s) ({IMAGE_MARKER}) for {} image(s); \
                 this chat template may not support images",
                segments.len() - 1,
                images.len()
            ))));
        }
        for img in &images {
            let tiles = img.grid.0 * img.grid.1 + usize::from(img.has_global);
            let expected = tiles
                .checked_mul(img.tokens_per_tile)
                .and_then(|rows| rows.checked_mul(img.n_embd));
            if img.tokens_per_tile == 0 || expected != Some(img.data.len()) {
                return Err(Error::InvalidArgument(format!(
                    "image embeddings hold {} floats; a {}×{} grid{} of {} rows of {} needs {}",
                    img.data.len(),
                    img.grid.0,
                    img.grid.1,
                    if img.has_global { " + global tile" } else { "" },
                    img.tokens_per_tile,
                    img.n_embd,
                    expected.map_or("more than fits".into(), |e| e.to_string())
                )));
            }
            if img.n_embd != model.n_embd() {
                return Err(Error::InvalidArgument(format!(
                    "image embeddings are {} wide; the text model takes {}",
                    img.n_embd,
                    model.n_embd()
                )));
            }
        }
        let ids = if images.is_empty() {
            None
        } else {
            Some(ImageTokens::of(model)?)
        };
        // BOS as `fennec chat` adds it: when the vocabulary asks for one and the template
        // did not write it.
        let tokenizer = model.tokenizer()?;
        let bos_in_text = tokenizer
            .bos()
            .and_then(|b| tokenizer.token_text(b).ok())
            .is_some_and(|b| text.starts_with(b));
        let mut add_bos = tokenizer.add_bos_token() && !bos_in_text;
        let mut pieces = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            if !seg.is_empty() || add_bos {
                pieces.push(Piece::Tokens(tokenizer.encode(seg, add_bos, true)?));
                add_bos = false;
            }
            if let (Some(ids), Some(img)) = (ids, images.get(i)) {
                expand_image(&mut pieces, ids, i, img);
            }
        }
        Ok(Self {
            pieces,
            images,
            patch: ids.map_or(0, |t| t.patch),
        })
    }

    /// The inputs to evaluate: token runs and image rows.
    pub fn inputs(&self) -> Vec<Input<'_>> {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Tokens(ids) => Input::Tokens(ids),
                Piece::Tile { image, tile } => {
                    let img = &self.images[*image];
                    Input::Embeddings {
                        data: img.tile(*tile),
                        n: img.tokens_per_tile,
                    }
                }
            })
            .collect()
    }

    /// Every position's id as transformers' processor writes it: `<|patch|>` where image
    /// rows go.
    pub fn token_ids(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Tokens(ids) => out.extend_from_slice(ids),
                Piece::Tile { image, .. } => out.extend(std::iter::repeat_n(
                    self.patch,
                    self.images[*image].tokens_per_tile,
                )),
            }
        }
        out
    }

    /// Positions the prompt takes.
    pub fn len(&self) -> usize {
        self.inputs().iter().map(Input::len).sum()
    }

    /// Whether it takes none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Appends image `index`'s tokens and tiles to `pieces`.
fn expand_image(pieces: &mut Vec<Piece>, ids: ImageTokens, index: usize, img: &ImageEmbeddings) {
    let push_token = |pieces: &mut Vec<Piece>, id: u32| match pieces.last_mut() {
        Some(Piece::Tokens(run)) => run.push(id),
        _ => pieces.push(Piece::Tokens(vec![id])),
    };
    push_token(pieces, ids.start);
    let (rows, cols) = img.grid;
    let tile = |pieces: &mut Vec<Piece>, t: usize| {
        pieces.push(Piece::Tile {
            image: index,
            tile: t,
        })
    };
    if img.has_global {
        for r in 0..rows {
            for c in 0..cols {
                tile(pieces, r * cols + c);
                if c + 1 < cols {
                    push_token(pieces, ids.tile_x);
                }
            }
            push_token(pieces, ids.tile_y);
        }
    }
    push_token(pieces, ids.image);
    tile(pieces, if img.has_global { rows * cols } else { 0 });
    push_token(pieces, ids.end);
}
