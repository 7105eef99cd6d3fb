//! [`Frame`]: a borrowed camera frame, checked once when it is made.

use fennec_core::vision::{ImageView, PixelLayout, Rotation, MAX_IMAGE_SIDE};
use std::hash::Hash;

use xxhash_rust::xxh3::Xxh3;

use crate::error::{CameraError, Result};

/// Numeric range of 8-bit YUV samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum YuvRange {
    /// Y, U and V span 0..=255 (JPEG / Android camera default; iOS `…FullRange`).
    #[default]
    Full,
    /// Y spans 16..=235 and U, V 16..=240 (video / iOS `…VideoRange`).
    Limited,
}

/// One plane of a planar frame: bytes, the distance between rows, and between samples.
#[derive(Clone, Copy, Debug)]
pub struct Plane<'a> {
    /// The plane's bytes, starting at its first sample.
    pub data: &'a [u8],
    /// Bytes from the start of one row to the next.
    pub row_stride: usize,
    /// Bytes from one sample to the next in a row (1 planar, 2 interleaved).
    pub pixel_stride: usize,
}

impl<'a> Plane<'a> {
    /// A plane of `data` with the given row and pixel strides (Android `Image.Plane`).
    pub fn new(data: &'a [u8], row_stride: usize, pixel_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            pixel_stride,
        }
    }

    /// Bytes one row of `samples` samples spans (first sample to last, inclusive).
    pub(crate) fn row_span(&self, samples: usize) -> usize {
        (samples - 1) * self.pixel_stride + 1
    }
}

/// Order of the two chroma bytes in a bi-planar (semi-planar) frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChromaOrder {
    /// `U, V` (Cb first): NV12, iOS bi-planar.
    Uv,
    /// `V, U` (Cr first): NV21, Android `ImageFormat.NV21`.
    Vu,
}

/// What a frame holds, as reported by [`Frame::format`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameFormat {
    /// Y plane + interleaved chroma plane (NV12 / NV21).
    BiPlanar(ChromaOrder),
    /// Y, U, V planes with row and pixel strides (I420, YV12, Android `YUV_420_888`).
    Planar,
    /// Interleaved 8-bit RGB-family pixels, viewed without conversion.
    Packed(PixelLayout),
    /// JPEG or PNG bytes.
    Encoded,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind<'a> {
    BiPlanar {
        y: &'a [u8],
        y_stride: usize,
        chroma: &'a [u8],
        chroma_stride: usize,
        order: ChromaOrder,
    },
    Planar {
        y: Plane<'a>,
        u: Plane<'a>,
        v: Plane<'a>,
    },
    Packed {
        data: &'a [u8],
        row_stride: usize,
        layout: PixelLayout,
    },
    Encoded(&'a [u8]),
}

/// A borrowed camera frame (or encoded image) plus how to show it upright: rotation,
/// mirror, optional centre crop and, for YUV, the sample range.
///
/// Constructors check sizes and strides against the buffers, so a `Frame` that exists can
/// be converted without further bounds failures. Convert it with
/// [`FrameConverter::convert`](crate::FrameConverter::convert), or view packed RGB-family
/// frames directly with [`Frame::view`].
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub(crate) kind: Kind<'a>,
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) rotation: Rotation,
    pub(crate) mirror: bool,
    pub(crate) crop: Option<(usize, usize)>,
    pub(crate) range: YuvRange,
}

/// Checks `width × height` against the largest side; zero sides are errors.
pub(crate) fn check_size(width: usize, height: usize) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(CameraError::EmptyFrame { width, height });
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(CameraError::TooLarge {
            width,
            height,
            max_pixels: usize::MAX,
            max_side: MAX_IMAGE_SIDE,
        });
    }
    Ok(())
}

/// Checks that `data` holds `rows` rows of `row_bytes` bytes, `row_stride` apart.
fn check_plane(
    plane: &'static str,
    data: &[u8],
    rows: usize,
    row_bytes: usize,
    row_stride: usize,
) -> Result<()> {
    if row_stride < row_bytes {
        return Err(CameraError::RowStrideTooSmall {
            plane,
            row_stride,
            row_bytes,
        });
    }
    let needed = (rows - 1)
        .checked_mul(row_stride)
        .and_then(|b| b.checked_add(row_bytes))
        .ok_or(CameraError::Overflow)?;
    if data.len() < needed {
        return Err(CameraError::PlaneTooShort {
            plane,
            len: data.len(),
            needed,
        });
    }
    Ok(())
}

impl<'a> Frame<'a> {
    fn with_kind(kind: Kind<'a>, width: usize, height: usize) -> Self {
        Self {
            kind,
            width,
            height,
            rotation: Rotation::None,
            mirror: false,
            crop: None,
            range: YuvRange::Full,
        }
    }

    /// A bi-planar 4:2:0 frame: a Y plane and one plane of interleaved chroma pairs
    /// (`⌈width/2⌉` pairs per row, `⌈height/2⌉` rows), each with its own row stride.
    pub fn bi_planar(
        y: &'a [u8],
        y_row_stride: usize,
        chroma: &'a [u8],
        chroma_row_stride: usize,
        order: ChromaOrder,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        check_size(width, height)?;
        check_plane("y", y, height, width, y_row_stride)?;
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        check_plane("uv", chroma, ch, 2 * cw, chroma_row_stride)?;
        Ok(Self::with_kind(
            Kind::BiPlanar {
                y,
                y_stride: y_row_stride,
                chroma,
                chroma_stride: chroma_row_stride,
                order,
            },
            width,
            height,
        ))
    }

    /// An NV21 frame (Android `ImageFormat.NV21`, camera1 previews): Y plane, then V/U pairs.
    pub fn nv21(
        y: &'a [u8],
        y_row_stride: usize,
        vu: &'a [u8],
        vu_row_stride: usize,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        Self::bi_planar(
            y,
            y_row_stride,
            vu,
            vu_row_stride,
            ChromaOrder::Vu,
            width,
            height,
        )
    }

    /// An NV12 frame: Y plane, then U/V pairs.
    pub fn nv12(
        y: &'a [u8],
        y_row_stride: usize,
        uv: &'a [u8],
        uv_row_stride: usize,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        Self::bi_planar(
            y,
            y_row_stride,
            uv,
            uv_row_stride,
            ChromaOrder::Uv,
            width,
            height,
        )
    }

    /// A contiguous NV21 buffer as Android's camera1 API delivers it: `width × height` Y
    /// bytes, then the V/U rows, both with row stride `width` (chroma row stride `2⌈w/2⌉`).
    pub fn nv21_contiguous(data: &'a [u8], width: usize, height: usize) -> Result<Self> {
        check_size(width, height)?;
        let y_len = width.checked_mul(height).ok_or(CameraError::Overflow)?;
        if data.len() < y_len {
            return Err(CameraError::PlaneTooShort {
                plane: "y",
                len: data.len(),
                needed: y_len,
            });
        }
        let (y, vu) = data.split_at(y_len);
        Self::nv21(y, width, vu, 2 * width.div_ceil(2), width, height)
    }

    /// An iOS `CVPixelBuffer` in `kCVPixelFormatType_420YpCbCr8BiPlanar{Full,Video}Range`:
    /// plane 0 (Y) and plane 1 (CbCr) base addresses with their bytes-per-row. For
    /// `…VideoRange` buffers add `.with_range(YuvRange::Limited)`.
    pub fn cv_pixel_buffer_nv12(
        y: &'a [u8],
        y_bytes_per_row: usize,
        cbcr: &'a [u8],
        cbcr_bytes_per_row: usize,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        Self::nv12(y, y_bytes_per_row, cbcr, cbcr_bytes_per_row, width, height)
    }

    /// A three-plane 4:2:0 frame: Android `YUV_420_888` (`Image.getPlanes()`: each plane's
    /// buffer, row stride and pixel stride), or I420 / YV12 with pixel stride 1. The luma
    /// pixel stride must be 1; chroma pixel strides 1 or 2.
    pub fn yuv_420_888(
        y: Plane<'a>,
        u: Plane<'a>,
        v: Plane<'a>,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        check_size(width, height)?;
        if y.pixel_stride != 1 {
            return Err(CameraError::BadPixelStride {
                plane: "y",
                pixel_stride: y.pixel_stride,
            });
        }
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        for (name, p) in [("u", &u), ("v", &v)] {
            if !matches!(p.pixel_stride, 1 | 2) {
                return Err(CameraError::BadPixelStride {
                    plane: name,
                    pixel_stride: p.pixel_stride,
                });
            }
        }
        check_plane("y", y.data, height, width, y.row_stride)?;
        check_plane("u", u.data, ch, u.row_span(cw), u.row_stride)?;
        check_plane("v", v.data, ch, v.row_span(cw), v.row_stride)?;
        Ok(Self::with_kind(Kind::Planar { y, u, v }, width, height))
    }

    /// An I420 frame: Y, U and V planes of pixel stride 1, each with its own row stride.
    #[allow(clippy::too_many_arguments)]
    pub fn i420(
        y: &'a [u8],
        y_row_stride: usize,
        u: &'a [u8],
        u_row_stride: usize,
        v: &'a [u8],
        v_row_stride: usize,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        Self::yuv_420_888(
            Plane::new(y, y_row_stride, 1),
            Plane::new(u, u_row_stride, 1),
            Plane::new(v, v_row_stride, 1),
            width,
            height,
        )
    }

    /// Interleaved 8-bit pixels in `layout`, rows `row_stride` bytes apart: viewed as they
    /// are, never converted.
    pub fn packed(
        data: &'a [u8],
        row_stride: usize,
        layout: PixelLayout,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        check_size(width, height)?;
        let row_bytes = width * layout.bytes_per_pixel();
        check_plane("rgb", data, height, row_bytes, row_stride)?;
        Ok(Self::with_kind(
            Kind::Packed {
                data,
                row_stride,
                layout,
            },
            width,
            height,
        ))
    }

    /// RGB pixels, three bytes each (zero-copy).
    pub fn rgb(data: &'a [u8], row_stride: usize, width: usize, height: usize) -> Result<Self> {
        Self::packed(data, row_stride, PixelLayout::Rgb8, width, height)
    }

    /// RGBA pixels (Android `Bitmap` `ARGB_8888` bytes, `RGBA_8888` ImageReader); alpha is
    /// composited on white when read (zero-copy).
    pub fn rgba(data: &'a [u8], row_stride: usize, width: usize, height: usize) -> Result<Self> {
        Self::packed(data, row_stride, PixelLayout::Rgba8, width, height)
    }

    /// BGRA pixels; alpha is composited on white when read (zero-copy).
    pub fn bgra(data: &'a [u8], row_stride: usize, width: usize, height: usize) -> Result<Self> {
        Self::packed(data, row_stride, PixelLayout::Bgra8, width, height)
    }

    /// An iOS `CVPixelBuffer` in `kCVPixelFormatType_32BGRA` (base address and
    /// bytes-per-row); the fourth byte is ignored, as camera buffers are opaque (zero-copy).
    pub fn cv_pixel_buffer_bgra(
        base: &'a [u8],
        bytes_per_row: usize,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        Self::packed(base, bytes_per_row, PixelLayout::Bgrx8, width, height)
    }

    /// JPEG or PNG bytes, decoded by the converter (the size is known only then).
    pub fn encoded(bytes: &'a [u8]) -> Self {
        Self::with_kind(Kind::Encoded(bytes), 0, 0)
    }

    /// The same frame turned upright by `rotation` (clockwise, Android sensor orientation),
    /// then mirrored left-right when `mirror`.
    pub fn oriented(mut self, rotation: Rotation, mirror: bool) -> Self {
        self.rotation = rotation;
        self.mirror = mirror;
        self
    }

    /// The same frame cropped, after orientation, to the largest centred rectangle of aspect
    /// `aspect_w:aspect_h` (e.g. `1, 1`; each side at most `MAX_IMAGE_SIDE`).
    pub fn center_cropped(mut self, aspect_w: usize, aspect_h: usize) -> Result<Self> {
        // Bounded so the aspect arithmetic of `ImageView::center_cropped` cannot overflow.
        if aspect_w == 0 || aspect_h == 0 || aspect_w > MAX_IMAGE_SIDE || aspect_h > MAX_IMAGE_SIDE
        {
            return Err(CameraError::BadCropAspect { aspect_w, aspect_h });
        }
        self.crop = Some((aspect_w, aspect_h));
        Ok(self)
    }

    /// The same frame with YUV samples read in `range` (default [`YuvRange::Full`]; ignored
    /// for RGB-family and encoded frames).
    pub fn with_range(mut self, range: YuvRange) -> Self {
        self.range = range;
        self
    }

    /// What the frame holds.
    pub fn format(&self) -> FrameFormat {
        match self.kind {
            Kind::BiPlanar { order, .. } => FrameFormat::BiPlanar(order),
            Kind::Planar { .. } => FrameFormat::Planar,
            Kind::Packed { layout, .. } => FrameFormat::Packed(layout),
            Kind::Encoded(_) => FrameFormat::Encoded,
        }
    }

    /// Stored (sensor) width and height; `None` for encoded images until decoded.
    pub fn size(&self) -> Option<(usize, usize)> {
        match self.kind {
            Kind::Encoded(_) => None,
            _ => Some((self.width, self.height)),
        }
    }

    /// The frame as an [`ImageView`] borrowing its own bytes, oriented and cropped, when it
    /// is packed RGB-family pixels; `None` for YUV and encoded frames (those need a
    /// [`FrameConverter`](crate::FrameConverter)).
    pub fn view(&self) -> Option<Result<ImageView<'a>>> {
        match self.kind {
            Kind::Packed {
                data,
                row_stride,
                layout,
            } => Some(
                ImageView::new(data, self.width, self.height, row_stride, layout)
                    .map_err(CameraError::from)
                    .and_then(|v| self.finish(v)),
            ),
            _ => None,
        }
    }

    /// Applies the frame's orientation and crop to `view`.
    pub(crate) fn finish<'v>(&self, view: ImageView<'v>) -> Result<ImageView<'v>> {
        let view = view.oriented(self.rotation, self.mirror);
        Ok(match self.crop {
            Some((aw, ah)) => view.center_cropped(aw, ah)?,
            None => view,
        })
    }

    /// A fast non-cryptographic hash (XXH3-64) of the frame's visible bytes (row padding
    /// excluded), format, size, orientation, crop and range: a cache key for what the
    /// frame converts to, computed without converting. Stable within a build of this
    /// crate, not across versions.
    pub fn content_hash(&self) -> u64 {
        let mut h = Xxh3::new();
        let rows = |h: &mut Xxh3, data: &[u8], n: usize, bytes: usize, stride: usize| {
            for r in 0..n {
                h.update(&data[r * stride..r * stride + bytes]);
            }
        };
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let tag: u8 = match self.kind {
            Kind::BiPlanar {
                y,
                y_stride,
                chroma,
                chroma_stride,
                order,
            } => {
                rows(&mut h, y, self.height, self.width, y_stride);
                rows(&mut h, chroma, ch, 2 * cw, chroma_stride);
                match order {
                    ChromaOrder::Uv => 1,
                    ChromaOrder::Vu => 2,
                }
            }
            Kind::Planar { y, u, v } => {
                rows(&mut h, y.data, self.height, self.width, y.row_stride);
                // Interleaved chroma planes (pixel stride 2) are hashed with the other
                // plane's bytes between their samples: still frame content.
                for p in [u, v] {
                    rows(&mut h, p.data, ch, p.row_span(cw), p.row_stride);
                    h.update(&[p.pixel_stride as u8]);
                }
                3
            }
            Kind::Packed {
                data,
                row_stride,
                layout,
            } => {
                rows(
                    &mut h,
                    data,
                    self.height,
                    self.width * layout.bytes_per_pixel(),
                    row_stride,
                );
                layout.hash(&mut h);
                4
            }
            Kind::Encoded(bytes) => {
                h.update(bytes);
                5
            }
        };
        let (aw, ah) = self.crop.unwrap_or((0, 0));
        let rotation: u8 = match self.rotation {
            Rotation::None => 0,
            Rotation::Cw90 => 1,
            Rotation::Cw180 => 2,
            Rotation::Cw270 => 3,
        };
        h.update(&[tag, rotation, self.mirror as u8, self.range as u8]);
        for n in [self.width, self.height, aw, ah] {
            h.update(&(n as u64).to_le_bytes());
        }
        h.digest()
    }
}
