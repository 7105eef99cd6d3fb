//! JPEG/PNG bytes decoded straight into the converter's buffer.

use std::io::Cursor;

use fennec_core::vision::{ImageView, PixelLayout, MAX_IMAGE_SIDE};
use image::{ColorType, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use crate::error::{CameraError, Result};
use crate::frame::check_size;

fn map_err(e: ImageError) -> CameraError {
    match e {
        ImageError::Unsupported(e) => CameraError::Unsupported(e.to_string()),
        other => CameraError::Decode(other.to_string()),
    }
}

/// Walks a JPEG's marker segments from SOI to EOI, without decoding: the JPEG decoder
/// (zune-jpeg) fills a truncated scan with grey and reports success, so a missing EOI is
/// the check for truncation. Segment lengths are followed (so EXIF thumbnails inside APP1
/// are skipped), entropy-coded data is scanned for the next marker (`FF` followed by
/// anything but `00` or a restart marker), and bytes after EOI (trailers, appended
/// videos) are ignored. Corruption *inside* entropy-coded data is not detectable in
/// general: JPEG carries no checksum.
fn check_jpeg_complete(b: &[u8]) -> Result<()> {
    let truncated = || CameraError::Decode("JPEG is truncated (no end-of-image marker)".into());
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return Err(CameraError::Decode("JPEG does not start with SOI".into()));
    }
    let mut i = 2;
    loop {
        // A marker: one or more 0xFF fill bytes, then its code.
        if b.get(i) != Some(&0xFF) {
            return Err(CameraError::Decode(format!(
                "JPEG marker expected at byte {i}"
            )));
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let code = *b.get(i).ok_or_else(truncated)?;
        i += 1;
        match code {
            0xD9 => return Ok(()),
            // Standalone markers: TEM, RSTn.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = match (b.get(i), b.get(i + 1)) {
            (Some(&hi), Some(&lo)) => usize::from(hi) << 8 | usize::from(lo),
            _ => return Err(truncated()),
        };
        if len < 2 {
            return Err(CameraError::Decode(format!(
                "JPEG segment length {len} at byte {i}"
            )));
        }
        i += len;
        if i > b.len() {
            return Err(truncated());
        }
        if code == 0xDA {
            // Entropy-coded data runs to the next marker that is not stuffing or RSTn.
            loop {
                let at = b.get(i..).ok_or_else(truncated)?;
                let ff = at.iter().position(|&x| x == 0xFF).ok_or_else(truncated)?;
                i += ff;
                match b.get(i + 1) {
                    None => return Err(truncated()),
                    Some(0x00 | 0xD0..=0xD7) => i += 2,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Decodes `bytes` (JPEG or PNG) into `buf` and views it: 8-bit RGB and RGBA as decoded,
/// grey expanded to RGB in place, 16-bit samples narrowed to 8 in place. The size is
/// checked against `max_pixels` from the header, before the buffer grows.
pub(crate) fn decode_into<'b>(
    bytes: &[u8],
    max_pixels: usize,
    buf: &'b mut Vec<u8>,
) -> Result<ImageView<'b>> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| CameraError::Decode(e.to_string()))?;
    match reader.format() {
        Some(ImageFormat::Jpeg) => check_jpeg_complete(bytes)?,
        Some(ImageFormat::Png) => {}
        Some(f) => return Err(CameraError::Unsupported(format!("{f:?} images"))),
        None => {
            return Err(CameraError::Unsupported(
                "bytes are neither JPEG nor PNG".into(),
            ))
        }
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE as u32);
    limits.max_image_height = Some(MAX_IMAGE_SIDE as u32);
    // Room for the decoded image at 16-bit RGBA plus the decoder's own state.
    limits.max_alloc = Some(
        (max_pixels as u64)
            .saturating_mul(8)
            .saturating_add(64 << 20),
    );
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(map_err)?;
    let (w, h) = decoder.dimensions();
    let (w, h) = (w as usize, h as usize);
    check_size(w, h)?;
    if w.checked_mul(h).is_none_or(|n| n > max_pixels) {
        return Err(CameraError::TooLarge {
            width: w,
            height: h,
            max_pixels,
            max_side: MAX_IMAGE_SIDE,
        });
    }
    let color = decoder.color_type();
    let (channels, wide) = match color {
        ColorType::L8 => (1, false),
        ColorType::La8 => (2, false),
        ColorType::Rgb8 => (3, false),
        ColorType::Rgba8 => (4, false),
        ColorType::L16 => (1, true),
        ColorType::La16 => (2, true),
        ColorType::Rgb16 => (3, true),
        ColorType::Rgba16 => (4, true),
        other => {
            return Err(CameraError::Unsupported(format!(
                "{other:?} pixels (8- and 16-bit grey, grey+alpha, RGB and RGBA are read)"
            )))
        }
    };
    let pixels = w * h;
    let samples = pixels * channels;
    let decoded = usize::try_from(decoder.total_bytes()).map_err(|_| CameraError::Overflow)?;
    if decoded != samples * if wide { 2 } else { 1 } {
        return Err(CameraError::Decode(format!(
            "decoder reports {decoded} bytes for {w}×{h} {color:?}"
        )));
    }
    let out_channels = if channels >= 3 {
        channels
    } else {
        channels + 2
    };
    buf.resize(decoded.max(pixels * out_channels), 0);
    decoder.read_image(&mut buf[..decoded]).map_err(map_err)?;
    if wide {
        // Native-endian u16 → u8, rounded; writes trail the reads.
        for i in 0..samples {
            let v = u16::from_ne_bytes([buf[2 * i], buf[2 * i + 1]]);
            buf[i] = ((u32::from(v) * 255 + 32767) / 65535) as u8;
        }
    }
    match channels {
        // Grey → RGB / grey+alpha → RGBA, back to front so writes never pass the reads.
        1 => {
            for i in (0..pixels).rev() {
                let g = buf[i];
                buf[3 * i..3 * i + 3].fill(g);
            }
        }
        2 => {
            for i in (0..pixels).rev() {
                let (g, a) = (buf[2 * i], buf[2 * i + 1]);
                buf[4 * i..4 * i + 4].copy_from_slice(&[g, g, g, a]);
            }
        }
        _ => {}
    }
    buf.truncate(pixels * out_channels);
    let layout = if out_channels == 3 {
        PixelLayout::Rgb8
    } else {
        PixelLayout::Rgba8
    };
    Ok(ImageView::packed(buf, w, h, layout)?)
}
