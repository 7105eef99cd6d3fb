//! `fennec describe` and `fennec embed-image`: images (files or raw camera frames) through
//! a Llama 4 vision tower into a chat, or out as projected embeddings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use fennec_camera::{Frame, FrameConverter, YuvRange};
use fennec_core::chat::ChatMessage;
use fennec_core::vision::{ImageEmbeddings, PixelTensor, Prompt, Rotation, VisionModel};
use fennec_core::{CancelHandle, LoadOptions, Model};
use serde_json::json;

/// Layouts of a raw frame file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RawFormat {
    /// Y plane then interleaved V/U (Android camera default).
    Nv21,
    /// Y plane then interleaved U/V (iOS `420f`/`420v`).
    Nv12,
    /// Y, U and V planes (YUV 4:2:0 planar).
    I420,
    /// B, G, R, A bytes.
    Bgra,
    /// R, G, B, A bytes.
    Rgba,
    /// R, G, B bytes.
    Rgb,
}

/// YUV value range of a raw frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RangeArg {
    /// 0–255 (JPEG/BT.601 full range; most phone cameras).
    Full,
    /// 16–235 luma, 16–240 chroma (video range).
    Limited,
}

/// Where the image comes from and how to turn it upright.
#[derive(clap::Args, Clone, Debug)]
pub struct ImageArgs {
    /// The image: a JPEG or PNG file, or a raw camera frame with --format and --size.
    #[arg(long)]
    image: PathBuf,
    /// The raw frame's layout (omit for JPEG/PNG).
    #[arg(long, value_enum, requires = "size")]
    format: Option<RawFormat>,
    /// The raw frame's size, WIDTHxHEIGHT.
    #[arg(long, value_parser = parse_size)]
    size: Option<(usize, usize)>,
    /// Bytes from one row to the next in the raw frame (default: tightly packed). For YUV
    /// it is the luma plane's; chroma rows are as long (NV21/NV12) or half (I420).
    #[arg(long)]
    row_stride: Option<usize>,
    /// Clockwise rotation that makes the frame upright (Android's sensor orientation).
    #[arg(long, default_value_t = 0, value_parser = parse_rotation)]
    rotate: u32,
    /// Mirror left-right after rotating (front camera).
    #[arg(long)]
    mirror: bool,
    /// Crop the centre to this aspect, W:H (e.g. 1:1).
    #[arg(long, value_parser = parse_aspect)]
    crop: Option<(usize, usize)>,
    /// YUV range of the raw frame.
    #[arg(long, value_enum, default_value = "full")]
    yuv_range: RangeArg,
}

fn parse_rotation(s: &str) -> std::result::Result<u32, String> {
    match s.trim() {
        "0" => Ok(0),
        "90" => Ok(90),
        "180" => Ok(180),
        "270" => Ok(270),
        _ => Err(format!("rotation must be 0, 90, 180 or 270, not {s:?}")),
    }
}

fn parse_size(s: &str) -> std::result::Result<(usize, usize), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got {s:?}"))?;
    let p = |v: &str| v.trim().parse::<usize>().map_err(|e| format!("{v:?}: {e}"));
    Ok((p(w)?, p(h)?))
}

fn parse_aspect(s: &str) -> std::result::Result<(usize, usize), String> {
    let (w, h) = s
        .split_once(':')
        .ok_or_else(|| format!("expected W:H, got {s:?}"))?;
    let p = |v: &str| v.trim().parse::<usize>().map_err(|e| format!("{v:?}: {e}"));
    Ok((p(w)?, p(h)?))
}

impl ImageArgs {
    /// Reads, converts and preprocesses the image for `vision`; returns the pixel tensor and
    /// the seconds spent converting and preprocessing.
    fn pixels(&self, vision: &VisionModel) -> Result<(PixelTensor, f64, f64)> {
        let bytes = std::fs::read(&self.image)
            .with_context(|| format!("cannot read {}", self.image.display()))?;
        let started = Instant::now();
        let frame = self.frame(&bytes)?;
        let mut converter = FrameConverter::new();
        let view = converter.convert(&frame)?;
        let converted = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let pixels = vision.preprocess(&view)?;
        Ok((pixels, converted, started.elapsed().as_secs_f64()))
    }

    /// The frame described by the flags, borrowing `bytes`.
    fn frame<'a>(&self, bytes: &'a [u8]) -> Result<Frame<'a>> {
        let frame = match (self.format, self.size) {
            (None, _) => Frame::encoded(bytes),
            (Some(format), Some((w, h))) => raw_frame(bytes, format, w, h, self.row_stride)?,
            (Some(_), None) => bail!("--format needs --size WIDTHxHEIGHT"),
        };
        let range = match self.yuv_range {
            RangeArg::Full => YuvRange::Full,
            RangeArg::Limited => YuvRange::Limited,
        };
        let mut frame = frame
            .oriented(Rotation::from_degrees(self.rotate)?, self.mirror)
            .with_range(range);
        if let Some((w, h)) = self.crop {
            frame = frame.center_cropped(w, h)?;
        }
        Ok(frame)
    }
}

/// A raw frame file's planes, back to back, as the camera APIs hand them over.
fn raw_frame(
    bytes: &[u8],
    format: RawFormat,
    w: usize,
    h: usize,
    row_stride: Option<usize>,
) -> Result<Frame<'_>> {
    let chroma_rows = h.div_ceil(2);
    let split = |at: usize| -> Result<(&[u8], &[u8])> {
        if at > bytes.len() {
            bail!(
                "{} bytes is too short for a {w}x{h} {} frame",
                bytes.len(),
                format!("{format:?}").to_lowercase()
            );
        }
        Ok(bytes.split_at(at))
    };
    Ok(match format {
        RawFormat::Nv21 | RawFormat::Nv12 => {
            let stride = row_stride.unwrap_or(w);
            let (y, chroma) = split(stride * h)?;
            if format == RawFormat::Nv21 {
                Frame::nv21(y, stride, chroma, stride, w, h)?
            } else {
                Frame::nv12(y, stride, chroma, stride, w, h)?
            }
        }
        RawFormat::I420 => {
            let stride = row_stride.unwrap_or(w);
            let c_stride = stride.div_ceil(2);
            let (y, rest) = split(stride * h)?;
            if c_stride * chroma_rows > rest.len() {
                bail!(
                    "{} bytes is too short for a {w}x{h} I420 frame",
                    bytes.len()
                );
            }
            let (u, v) = rest.split_at(c_stride * chroma_rows);
            Frame::i420(y, stride, u, c_stride, v, c_stride, w, h)?
        }
        RawFormat::Bgra => Frame::bgra(bytes, row_stride.unwrap_or(w * 4), w, h)?,
        RawFormat::Rgba => Frame::rgba(bytes, row_stride.unwrap_or(w * 4), w, h)?,
        RawFormat::Rgb => Frame::rgb(bytes, row_stride.unwrap_or(w * 3), w, h)?,
    })
}

/// Arguments of `fennec embed-image`.
#[derive(clap::Args)]
pub struct EmbedImageArgs {
    /// The mmproj GGUF (vision tower and projector).
    #[arg(long)]
    mmproj: PathBuf,
    #[command(flatten)]
    image: ImageArgs,
    /// Where to write the projected embeddings, float32 `[n_tokens, n_embd]` .npy.
    #[arg(long)]
    out: PathBuf,
    /// Worker threads (0 = all cores).
    #[arg(short = 't', long, default_value_t = 0)]
    threads: usize,
}

/// Runs `fennec embed-image`.
pub fn embed_image(args: &EmbedImageArgs) -> Result<()> {
    let vision = VisionModel::load(&args.mmproj, &LoadOptions::with_threads(args.threads))
        .with_context(|| format!("cannot load {}", args.mmproj.display()))?;
    let (pixels, convert_s, preprocess_s) = args.image.pixels(&vision)?;
    let started = Instant::now();
    let emb = encode_with_bar(&vision, &pixels, &CancelHandle::new())?;
    let encode_s = started.elapsed().as_secs_f64();
    crate::npy::write_f32(&args.out, &[emb.n_rows(), emb.n_embd], &emb.data)?;
    eprintln!(
        "[{} tiles ({}x{} grid{}) → {} embeddings of {}; convert {:.3} s, preprocess {:.3} s, encode {:.2} s]",
        pixels.n_tiles(),
        pixels.grid.0,
        pixels.grid.1,
        if pixels.has_global { " + global" } else { "" },
        emb.n_rows(),
        emb.n_embd,
        convert_s,
        preprocess_s,
        encode_s
    );
    Ok(())
}

/// Encodes with a progress bar on stderr, one step per tile.
fn encode_with_bar(
    vision: &VisionModel,
    pixels: &PixelTensor,
    cancel: &CancelHandle,
) -> Result<ImageEmbeddings> {
    let bar = indicatif::ProgressBar::new(pixels.n_tiles() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "encoding image {bar:30} {pos}/{len} tiles {elapsed}",
        )
        .expect("template"),
    );
    let emb = vision
        .encode_with_progress(pixels, cancel, &mut |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    Ok(emb)
}

/// Arguments of `fennec describe`.
#[derive(clap::Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    common: crate::generate::ModelArgs,
    /// The mmproj GGUF (vision tower and projector) that pairs with the model.
    #[arg(long)]
    mmproj: PathBuf,
    #[command(flatten)]
    image: ImageArgs,
    /// The question about the image.
    #[arg(
        short = 'p',
        long,
        default_value = "Describe this image in one sentence."
    )]
    prompt: String,
    /// System message.
    #[arg(long)]
    system: Option<String>,
    /// Print one JSON object (text, token counts, per-stage times) instead of streaming.
    #[arg(long)]
    json: bool,
}

/// Runs `fennec describe`.
pub fn describe(args: &DescribeArgs) -> Result<()> {
    let total = Instant::now();
    let (model, mut session) = args.common.load()?;
    let vision = VisionModel::load_for(&args.mmproj, &model)
        .with_context(|| format!("cannot load {}", args.mmproj.display()))?;
    let load_s = total.elapsed().as_secs_f64();
    let started = Instant::now();
    let (pixels, convert_s, preprocess_s) = args.image.pixels(&vision)?;
    let cancel = CancelHandle::new();
    let encode_start = Instant::now();
    let image = Arc::new(if args.json {
        vision.encode(&pixels, &cancel)?
    } else {
        encode_with_bar(&vision, &pixels, &cancel)?
    });
    let encode_s = encode_start.elapsed().as_secs_f64();
    let prompt = image_prompt(&model, image, args.system.as_deref(), &args.prompt)?;
    let inputs = prompt.inputs();
    let opts = args.common.generate_options();
    let json = args.json;
    let completion = session.generate(
        &inputs,
        &opts,
        &cancel,
        &mut crate::generate::print_pieces(!json),
    )?;
    let s = &completion.stats;
    let image_tokens = pixels.n_tiles() * vision.hparams().tokens_per_tile();
    // From the image arriving to the first generated token: convert, preprocess, encode,
    // prefill and one sampling step.
    let first_token_s = convert_s + preprocess_s + encode_s + s.time_to_first_token;
    let _ = started;
    if json {
        let out = json!({
            "text": completion.text,
            "tokens": completion.tokens,
            "stop": completion.stop.as_str(),
            "image": {
                "tiles": pixels.n_tiles(),
                "grid": [pixels.grid.0, pixels.grid.1],
                "global_tile": pixels.has_global,
                "tokens": image_tokens,
            },
            "prompt_tokens": prompt.len(),
            "generated_tokens": s.generated_tokens,
            "seconds": {
                "load": load_s,
                "convert": convert_s,
                "preprocess": preprocess_s,
                "encode": encode_s,
                "prefill": s.prompt_seconds,
                "first_token": first_token_s,
                "generate": s.generation_seconds,
                "total": total.elapsed().as_secs_f64(),
            },
            "prefill_tok_s": s.prompt_tok_s(),
            "generation_tok_s": s.generation_tok_s(),
        });
        println!("{out}");
    } else {
        println!();
        eprintln!(
            "[image: {} tiles, {image_tokens} tokens; convert {:.3} s, preprocess {:.3} s, encode {:.2} s, \
             prefill {} tokens at {:.1} tok/s, first token after {:.2} s, {} generated at {:.1} tok/s]",
            pixels.n_tiles(),
            convert_s,
            preprocess_s,
            encode_s,
            prompt.len(),
            s.prompt_tok_s(),
            first_token_s,
            s.generated_tokens,
            s.generation_tok_s()
        );
    }
    Ok(())
}

/// One user turn showing `image` and asking `question`, after an optional system message.
pub fn image_prompt(
    model: &Model,
    image: Arc<ImageEmbeddings>,
    system: Option<&str>,
    question: &str,
) -> Result<Prompt> {
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(ChatMessage::new("system", system));
    }
    messages.push(ChatMessage::with_image("user", image, question));
    Ok(Prompt::from_chat(model, &messages, true)?)
}
