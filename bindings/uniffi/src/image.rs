//! Images for chat messages: decoded files, camera frames, or frames converted by a native
//! layer (JNI) and handed over without crossing the foreign heap.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use fennec_camera::{Frame, FrameConverter, Plane, YuvRange};
use fennec_core::vision::{ImageView, PixelLayout, Rotation};

use crate::error::{FennecError, Result};

/// An upright 8-bit RGB image, ready to be shown to a vision model in a [`crate::ChatMessage`].
/// Conversion (YUV to RGB, rotation, mirror, decoding) happens once, when it is made.
#[derive(Debug, uniffi::Object)]
pub struct Image {
    rgb: Vec<u8>,
    width: u32,
    height: u32,
}

/// Pixel formats of camera frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum FrameFormat {
    /// Y plane, then interleaved V/U (Android `NV21`, camera1 default). Planes: `[y, vu]`.
    Nv21,
    /// Y plane, then interleaved U/V (`NV12`, iOS `420YpCbCr8BiPlanar`). Planes: `[y, uv]`.
    Nv12,
    /// Y, U and V planes (`I420` / `YUV_420_888` from Android `ImageReader`, with each
    /// plane's row and pixel stride). Planes: `[y, u, v]`.
    Yuv420,
    /// Packed R, G, B bytes. Planes: `[rgb]`.
    Rgb,
    /// Packed R, G, B, A bytes (alpha composited on white). Planes: `[rgba]`.
    Rgba,
    /// Packed B, G, R, A bytes (iOS `32BGRA`). Planes: `[bgra]`.
    Bgra,
}

/// One plane of a camera frame.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FramePlane {
    /// The plane's bytes.
    pub data: Vec<u8>,
    /// Bytes from one row to the next (at least the row's width in bytes).
    pub row_stride: u32,
    /// Bytes from one sample to the next within a row (1 for planar, 2 for interleaved
    /// chroma; ignored for packed formats).
    #[uniffi(default = 1)]
    pub pixel_stride: u32,
}

/// A raw camera frame as the platform delivers it.
#[derive(Clone, Debug, uniffi::Record)]
pub struct CameraFrame {
    /// Pixel format; says how many planes follow.
    pub format: FrameFormat,
    /// Width in pixels, as stored (before rotation).
    pub width: u32,
    /// Height in pixels, as stored.
    pub height: u32,
    /// The planes, in the order the format names.
    pub planes: Vec<FramePlane>,
    /// Clockwise rotation that makes the frame upright: 0, 90, 180 or 270 (Android's
    /// `imageInfo.rotationDegrees`).
    #[uniffi(default = 0)]
    pub rotation_degrees: u32,
    /// Mirror horizontally after rotating (front cameras).
    #[uniffi(default = false)]
    pub mirror: bool,
    /// YUV samples use the limited (video) range 16–235 rather than full range.
    #[uniffi(default = false)]
    pub limited_range: bool,
}

#[uniffi::export]
impl Image {
    /// Decodes a JPEG or PNG.
    #[uniffi::constructor]
    pub fn from_encoded(bytes: Vec<u8>) -> Result<Arc<Self>> {
        let mut converter = FrameConverter::new();
        let view = converter.convert(&Frame::encoded(&bytes))?;
        Ok(Arc::new(Self::from_view(&view)))
    }

    /// Reads and decodes a JPEG or PNG file.
    #[uniffi::constructor]
    pub fn from_file(path: String) -> Result<Arc<Self>> {
        let bytes = std::fs::read(&path)
            .map_err(|e| FennecError::Io(format!("cannot read image {path}: {e}")))?;
        Self::from_encoded(bytes)
    }

    /// Converts a camera frame (YUV or packed RGB, any strides), rotated and mirrored upright.
    #[uniffi::constructor]
    pub fn from_frame(frame: CameraFrame) -> Result<Arc<Self>> {
        let mut converter = FrameConverter::new();
        let parsed = parse_frame(&frame)?;
        let view = converter.convert(&parsed)?;
        Ok(Arc::new(Self::from_view(&view)))
    }

    /// Takes the image a native layer (the Android JNI camera layer) converted and handed over
    /// under `ticket`. A ticket can be taken once.
    #[uniffi::constructor]
    pub fn from_ticket(ticket: u64) -> Result<Arc<Self>> {
        take_handed_over(ticket).ok_or_else(|| {
            FennecError::InvalidArgument(format!(
                "no image is waiting under ticket {ticket} (taken already, or evicted after \
                 {MAX_WAITING} newer hand-overs)"
            ))
        })
    }

    /// Width in pixels, upright.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels, upright.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, row-major R, G, B bytes (`width × height × 3`).
    pub fn rgb(&self) -> Vec<u8> {
        self.rgb.clone()
    }
}

impl Image {
    /// Copies an upright view into an owned image.
    pub fn from_view(view: &ImageView<'_>) -> Self {
        let (w, h) = view.size();
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&view.rgb(x, y));
            }
        }
        Self {
            rgb,
            width: w as u32,
            height: h as u32,
        }
    }

    /// A view of the pixels.
    pub(crate) fn view(&self) -> Result<ImageView<'_>> {
        Ok(ImageView::packed(
            &self.rgb,
            self.width as usize,
            self.height as usize,
            PixelLayout::Rgb8,
        )?)
    }
}

fn parse_frame(f: &CameraFrame) -> Result<Frame<'_>> {
    let (w, h) = (f.width as usize, f.height as usize);
    let want = match f.format {
        FrameFormat::Nv21 | FrameFormat::Nv12 => 2,
        FrameFormat::Yuv420 => 3,
        FrameFormat::Rgb | FrameFormat::Rgba | FrameFormat::Bgra => 1,
    };
    if f.planes.len() != want {
        return Err(FennecError::InvalidArgument(format!(
            "a {:?} frame has {want} plane(s), not {}",
            f.format,
            f.planes.len()
        )));
    }
    let p = &f.planes;
    let stride = |i: usize| p[i].row_stride as usize;
    let frame = match f.format {
        FrameFormat::Nv21 => Frame::nv21(&p[0].data, stride(0), &p[1].data, stride(1), w, h)?,
        FrameFormat::Nv12 => Frame::nv12(&p[0].data, stride(0), &p[1].data, stride(1), w, h)?,
        FrameFormat::Yuv420 => {
            let plane =
                |i: usize| Plane::new(&p[i].data, stride(i), p[i].pixel_stride.max(1) as usize);
            Frame::yuv_420_888(plane(0), plane(1), plane(2), w, h)?
        }
        FrameFormat::Rgb => Frame::rgb(&p[0].data, stride(0), w, h)?,
        FrameFormat::Rgba => Frame::rgba(&p[0].data, stride(0), w, h)?,
        FrameFormat::Bgra => Frame::bgra(&p[0].data, stride(0), w, h)?,
    };
    let range = if f.limited_range {
        YuvRange::Limited
    } else {
        YuvRange::Full
    };
    let rotation = Rotation::from_degrees(f.rotation_degrees)?;
    Ok(frame.oriented(rotation, f.mirror).with_range(range))
}

/// Images handed over and not yet taken; the oldest is dropped beyond this many.
const MAX_WAITING: usize = 16;

struct Waiting {
    next_ticket: u64,
    images: VecDeque<(u64, Arc<Image>)>,
}

static WAITING: Mutex<Waiting> = Mutex::new(Waiting {
    next_ticket: 1,
    images: VecDeque::new(),
});

/// Hands `image` over to the foreign side, which takes it with `Image.fromTicket(ticket)`:
/// how a native layer in the same library (JNI) passes a converted frame to the generated
/// bindings without copying it through the foreign heap.
pub fn hand_over(image: Image) -> u64 {
    let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    let ticket = waiting.next_ticket;
    waiting.next_ticket += 1;
    if waiting.images.len() == MAX_WAITING {
        waiting.images.pop_front();
    }
    waiting.images.push_back((ticket, Arc::new(image)));
    ticket
}

fn take_handed_over(ticket: u64) -> Option<Arc<Image>> {
    let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    let at = waiting.images.iter().position(|(t, _)| *t == ticket)?;
    waiting.images.remove(at).map(|(_, image)| image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(width: u32, height: u32) -> Image {
        Image {
            rgb: vec![128; (width * height * 3) as usize],
            width,
            height,
        }
    }

    #[test]
    fn a_ticket_is_taken_once_and_old_ones_are_evicted() {
        let first = hand_over(gray(1, 1));
        let t = hand_over(gray(2, 3));
        let image = Image::from_ticket(t).unwrap();
        assert_eq!((image.width(), image.height()), (2, 3));
        assert!(Image::from_ticket(t).is_err());
        for _ in 0..MAX_WAITING {
            hand_over(gray(1, 1));
        }
        assert!(matches!(
            Image::from_ticket(first),
            Err(FennecError::InvalidArgument(_))
        ));
    }

    #[test]
    fn an_nv21_frame_with_padded_rows_is_rotated_upright() {
        // 4×2 frame, rows padded to 6 bytes; luma rises left to right, chroma neutral.
        let (w, h, stride) = (4u32, 2u32, 6u32);
        let mut y = vec![0u8; (stride * h) as usize];
        for row in 0..h as usize {
            for x in 0..w as usize {
                y[row * stride as usize + x] = 40 * (x as u8 + 1);
            }
        }
        let vu = vec![128u8; stride as usize];
        let frame = CameraFrame {
            format: FrameFormat::Nv21,
            width: w,
            height: h,
            planes: vec![
                FramePlane {
                    data: y,
                    row_stride: stride,
                    pixel_stride: 1,
                },
                FramePlane {
                    data: vu,
                    row_stride: stride,
                    pixel_stride: 2,
                },
            ],
            rotation_degrees: 90,
            mirror: false,
            limited_range: false,
        };
        let image = Image::from_frame(frame).unwrap();
        assert_eq!((image.width(), image.height()), (2, 4));
        let rgb = image.rgb();
        // After a clockwise quarter turn, stored column x becomes upright row x.
        for row in 0..4usize {
            let expected = 40 * (row as u8 + 1);
            for col in 0..2usize {
                let px = &rgb[(row * 2 + col) * 3..][..3];
                assert!(
                    px.iter().all(|&c| c.abs_diff(expected) <= 1),
                    "{row} {col} {px:?}"
                );
            }
        }
    }

    #[test]
    fn a_frame_with_the_wrong_plane_count_is_an_error() {
        let frame = CameraFrame {
            format: FrameFormat::Yuv420,
            width: 2,
            height: 2,
            planes: vec![],
            rotation_degrees: 0,
            mirror: false,
            limited_range: false,
        };
        assert!(matches!(
            Image::from_frame(frame),
            Err(FennecError::InvalidArgument(_))
        ));
        assert!(matches!(
            Image::from_encoded(b"not an image".to_vec()),
            Err(FennecError::InvalidImage(_)
                | FennecError::InvalidArgument(_)
                | FennecError::Unsupported(_))
        ));
    }
}
