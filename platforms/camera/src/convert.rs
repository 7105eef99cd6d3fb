//! [`FrameConverter`]: one conversion of a frame into a reusable RGB buffer.

use fennec_core::vision::{ImageView, PixelLayout, MAX_IMAGE_SIDE};
use yuv::{
    YuvBiPlanarImage, YuvConversionMode, YuvPlanarImage, YuvRange as LibRange, YuvStandardMatrix,
};

use crate::error::{CameraError, Result};
use crate::frame::{ChromaOrder, Frame, Kind, Plane, YuvRange};

/// Default pixel budget: 16 MiP (4096 × 4096).
pub const DEFAULT_MAX_PIXELS: usize = 1 << 24;

/// Which code converted the last frame (for tests and diagnostics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConversionPath {
    /// No conversion: the view borrows the frame's own pixels.
    Borrowed,
    /// The `yuv` crate's SIMD bi-planar (NV12/NV21) converter (plus the scalar one for
    /// trailing rows whose planes do not hold whole row strides).
    SimdBiPlanar,
    /// The `yuv` crate's SIMD three-plane (I420) converter (plus the scalar one for
    /// trailing rows, as above).
    SimdPlanar,
    /// The `yuv` crate's bi-planar converter over interleaved chroma detected in a
    /// `YUV_420_888` frame, with the scalar converter for the rows it could not reach.
    SimdInterleavedDetected,
    /// This crate's scalar BT.601 converter.
    Scalar,
    /// Decoded from JPEG/PNG (`image` crate) into the buffer.
    Decoded,
}

/// Converts frames into RGB, reusing one buffer: after the first frame of a given size no
/// further allocation happens. The returned view borrows the converter (or the frame).
#[derive(Debug)]
pub struct FrameConverter {
    buf: Vec<u8>,
    max_pixels: usize,
    last_path: Option<ConversionPath>,
}

impl Default for FrameConverter {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameConverter {
    /// A converter with the [`DEFAULT_MAX_PIXELS`] budget and an empty buffer.
    pub fn new() -> Self {
        Self::with_max_pixels(DEFAULT_MAX_PIXELS)
    }

    /// A converter that refuses frames of more than `max_pixels` pixels before allocating.
    pub fn with_max_pixels(max_pixels: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_pixels,
            last_path: None,
        }
    }

    /// The pixel budget.
    pub fn max_pixels(&self) -> usize {
        self.max_pixels
    }

    /// Bytes the reusable buffer holds allocated.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Which path converted the last successful frame.
    pub fn last_path(&self) -> Option<ConversionPath> {
        self.last_path
    }

    /// Refuses `width × height` beyond the budget or the largest side.
    pub(crate) fn check_budget(&self, width: usize, height: usize) -> Result<()> {
        let over = width > MAX_IMAGE_SIDE
            || height > MAX_IMAGE_SIDE
            || width
                .checked_mul(height)
                .is_none_or(|n| n > self.max_pixels);
        if over {
            return Err(CameraError::TooLarge {
                width,
                height,
                max_pixels: self.max_pixels,
                max_side: MAX_IMAGE_SIDE,
            });
        }
        Ok(())
    }

    /// The frame as an upright, cropped [`ImageView`]: packed RGB-family frames are
    /// borrowed as they are; YUV frames are converted once into this converter's buffer;
    /// JPEG/PNG are decoded into it.
    ///
    /// # Errors
    /// [`CameraError::TooLarge`] beyond the pixel budget (checked before allocating);
    /// decode errors for encoded images.
    pub fn convert<'v>(&'v mut self, frame: &Frame<'v>) -> Result<ImageView<'v>> {
        self.last_path = None;
        let (w, h) = (frame.width, frame.height);
        let path = match frame.kind {
            Kind::Packed {
                data,
                row_stride,
                layout,
            } => {
                self.check_budget(w, h)?;
                let view = frame.finish(ImageView::new(data, w, h, row_stride, layout)?)?;
                self.last_path = Some(ConversionPath::Borrowed);
                return Ok(view);
            }
            Kind::Encoded(bytes) => {
                let max = self.max_pixels;
                let view = crate::decode::decode_into(bytes, max, &mut self.buf)?;
                self.last_path = Some(ConversionPath::Decoded);
                return frame.finish(view);
            }
            Kind::BiPlanar {
                y,
                y_stride,
                chroma,
                chroma_stride,
                order,
            } => {
                self.check_budget(w, h)?;
                self.buf.resize(w * h * 3, 0);
                bi_planar(
                    y,
                    y_stride,
                    chroma,
                    chroma_stride,
                    order,
                    w,
                    h,
                    frame.range,
                    &mut self.buf,
                )?;
                ConversionPath::SimdBiPlanar
            }
            Kind::Planar { y, u, v } => {
                self.check_budget(w, h)?;
                self.buf.resize(w * h * 3, 0);
                planar(y, u, v, w, h, frame.range, &mut self.buf)?
            }
        };
        self.last_path = Some(path);
        let view = ImageView::packed(&self.buf, w, h, PixelLayout::Rgb8)?;
        frame.finish(view)
    }
}

fn lib_range(range: YuvRange) -> LibRange {
    match range {
        YuvRange::Full => LibRange::Full,
        YuvRange::Limited => LibRange::Limited,
    }
}

fn yuv_err(e: yuv::YuvError) -> CameraError {
    CameraError::Yuv(e.to_string())
}

fn u32_of(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| CameraError::Overflow)
}

/// How many pairs of luma rows (from the top) the `yuv` crate can convert: it walks every
/// plane in whole row strides (`chunks_exact`) and takes an odd height's last row from the
/// *end of the slice*, so it only gets planes cut to whole strides and an even height —
/// a tight last row (Android's planes end at the last sample) or a buffer longer than the
/// frame would otherwise be skipped, misread or panic. `planes` are `(len, row stride)` of
/// chroma-resolution planes; `None` when a stride does not fit `u32`.
fn simd_pairs(h: usize, y: &[u8], y_stride: usize, planes: &[(usize, usize)]) -> usize {
    let fits = |n: usize| u32::try_from(n).is_ok();
    if !fits(y_stride) || planes.iter().any(|&(_, s)| !fits(s)) {
        return 0;
    }
    let mut k = (h / 2).min(y.len() / (2 * y_stride));
    for &(len, stride) in planes {
        k = k.min(len / stride);
    }
    k
}

/// The two chroma views of a bi-planar plane, as pixel-stride-2 [`Plane`]s `(u, v)`.
fn chroma_views(chroma: &[u8], stride: usize, order: ChromaOrder) -> (Plane<'_>, Plane<'_>) {
    let first = Plane::new(chroma, stride, 2);
    let second = Plane::new(&chroma[1..], stride, 2);
    match order {
        ChromaOrder::Uv => (first, second),
        ChromaOrder::Vu => (second, first),
    }
}

/// NV12/NV21: the `yuv` crate for the rows it can take whole ([`simd_pairs`]), the scalar
/// converter for the rest (usually none or the last two); `out` holds `w × h` packed RGB.
#[allow(clippy::too_many_arguments)]
fn bi_planar(
    y: &[u8],
    y_stride: usize,
    chroma: &[u8],
    chroma_stride: usize,
    order: ChromaOrder,
    w: usize,
    h: usize,
    range: YuvRange,
    out: &mut [u8],
) -> Result<()> {
    let k = simd_pairs(h, y, y_stride, &[(chroma.len(), chroma_stride)]);
    if k > 0 {
        let img = YuvBiPlanarImage {
            y_plane: &y[..2 * k * y_stride],
            y_stride: u32_of(y_stride)?,
            uv_plane: &chroma[..k * chroma_stride],
            uv_stride: u32_of(chroma_stride)?,
            width: u32_of(w)?,
            height: u32_of(2 * k)?,
        };
        let stride = u32_of(w * 3)?;
        let head = &mut out[..2 * k * w * 3];
        let (r, m, mode) = (
            lib_range(range),
            YuvStandardMatrix::Bt601,
            YuvConversionMode::Balanced,
        );
        match order {
            ChromaOrder::Uv => yuv::yuv_nv12_to_rgb(&img, head, stride, r, m, mode),
            ChromaOrder::Vu => yuv::yuv_nv21_to_rgb(&img, head, stride, r, m, mode),
        }
        .map_err(yuv_err)?;
    }
    if 2 * k < h {
        let (u, v) = chroma_views(chroma, chroma_stride, order);
        let y = Plane::new(y, y_stride, 1);
        scalar_rows(y, u, v, w, 2 * k..h, range, out);
    }
    Ok(())
}

/// Three planes: I420 through the `yuv` crate when both chroma pixel strides are 1;
/// interleaved chroma (pixel stride 2, the V and U slices one byte apart) through its
/// bi-planar converter; anything else through [`scalar_rows`]. As in [`bi_planar`], rows
/// the `yuv` crate cannot take whole go through the scalar converter.
fn planar(
    y: Plane<'_>,
    u: Plane<'_>,
    v: Plane<'_>,
    w: usize,
    h: usize,
    range: YuvRange,
    out: &mut [u8],
) -> Result<ConversionPath> {
    if u.pixel_stride == 1 && v.pixel_stride == 1 {
        let k = simd_pairs(
            h,
            y.data,
            y.row_stride,
            &[(u.data.len(), u.row_stride), (v.data.len(), v.row_stride)],
        );
        if k > 0 {
            let img = YuvPlanarImage {
                y_plane: &y.data[..2 * k * y.row_stride],
                y_stride: u32_of(y.row_stride)?,
                u_plane: &u.data[..k * u.row_stride],
                u_stride: u32_of(u.row_stride)?,
                v_plane: &v.data[..k * v.row_stride],
                v_stride: u32_of(v.row_stride)?,
                width: u32_of(w)?,
                height: u32_of(2 * k)?,
            };
            yuv::yuv420_to_rgb(
                &img,
                &mut out[..2 * k * w * 3],
                u32_of(w * 3)?,
                lib_range(range),
                YuvStandardMatrix::Bt601,
            )
            .map_err(yuv_err)?;
        }
        scalar_rows(y, u, v, w, 2 * k..h, range, out);
        return Ok(ConversionPath::SimdPlanar);
    }
    if let Some((chroma, order)) = interleaved(u, v) {
        // The earlier slice usually stops one byte short of the other plane's last sample
        // (Android), so it cannot pass as a whole bi-planar chroma plane: convert the pairs
        // of rows it holds whole, and the rest (the last one or two rows) scalar.
        let stride = u.row_stride;
        let cw = w.div_ceil(2);
        if stride >= 2 * cw {
            let k = simd_pairs(h, y.data, y.row_stride, &[(chroma.len(), stride)]);
            if k > 0 {
                bi_planar(
                    y.data,
                    y.row_stride,
                    &chroma[..k * stride],
                    stride,
                    order,
                    w,
                    2 * k,
                    range,
                    out,
                )?;
            }
            scalar_rows(y, u, v, w, 2 * k..h, range, out);
            return Ok(ConversionPath::SimdInterleavedDetected);
        }
    }
    scalar_rows(y, u, v, w, 0..h, range, out);
    Ok(ConversionPath::Scalar)
}

/// When `u` and `v` are pixel-stride-2 views of one interleaved buffer (their first bytes
/// one apart, with equal row strides), the slice that starts first, read as bi-planar
/// chroma, and its order. Detected by address only: the two slices then share bytes, so
/// the earlier one's odd bytes *are* the other plane's samples. No unsafe code.
fn interleaved<'a>(u: Plane<'a>, v: Plane<'a>) -> Option<(&'a [u8], ChromaOrder)> {
    if u.pixel_stride != 2 || v.pixel_stride != 2 || u.row_stride != v.row_stride {
        return None;
    }
    let (pu, pv) = (u.data.as_ptr() as usize, v.data.as_ptr() as usize);
    if pv.checked_add(1) == Some(pu) && v.data.len() >= 2 {
        Some((v.data, ChromaOrder::Vu))
    } else if pu.checked_add(1) == Some(pv) && u.data.len() >= 2 {
        Some((u.data, ChromaOrder::Uv))
    } else {
        None
    }
}

/// Fixed-point (16 fractional bits) BT.601 coefficients for one range.
struct Coeffs {
    y_off: i32,
    y_mul: i32,
    rv: i32,
    gu: i32,
    gv: i32,
    bu: i32,
}

impl Coeffs {
    fn new(range: YuvRange) -> Self {
        const KR: f64 = 0.299;
        const KB: f64 = 0.114;
        const KG: f64 = 1.0 - KR - KB;
        let (y_off, y_scale, c_scale) = match range {
            YuvRange::Full => (0, 1.0, 1.0),
            YuvRange::Limited => (16, 255.0 / 219.0, 255.0 / 224.0),
        };
        let fx = |v: f64| (v * 65536.0).round() as i32;
        Self {
            y_off,
            y_mul: fx(y_scale),
            rv: fx(2.0 * (1.0 - KR) * c_scale),
            gu: fx(2.0 * (1.0 - KB) * KB / KG * c_scale),
            gv: fx(2.0 * (1.0 - KR) * KR / KG * c_scale),
            bu: fx(2.0 * (1.0 - KB) * c_scale),
        }
    }
}

/// Scalar BT.601 for luma rows `rows` of any three-plane layout (any chroma pixel stride);
/// chroma is nearest-sampled (one pair per 2×2 block), as the `yuv` crate does.
fn scalar_rows(
    y: Plane<'_>,
    u: Plane<'_>,
    v: Plane<'_>,
    w: usize,
    rows: std::ops::Range<usize>,
    range: YuvRange,
    out: &mut [u8],
) {
    let c = Coeffs::new(range);
    let clamp = |x: i32| ((x + 32768) >> 16).clamp(0, 255) as u8;
    for row in rows {
        let yr = &y.data[row * y.row_stride..row * y.row_stride + w];
        let ur = &u.data[(row / 2) * u.row_stride..];
        let vr = &v.data[(row / 2) * v.row_stride..];
        let o = &mut out[row * w * 3..(row + 1) * w * 3];
        for (x, (px, &yv)) in o.chunks_exact_mut(3).zip(yr).enumerate() {
            // Limited range: Y below 16 clamps to 16, as the `yuv` crate's SIMD rows do.
            let yy = (i32::from(yv) - c.y_off).max(0) * c.y_mul;
            let du = i32::from(ur[(x / 2) * u.pixel_stride]) - 128;
            let dv = i32::from(vr[(x / 2) * v.pixel_stride]) - 128;
            px[0] = clamp(yy + c.rv * dv);
            px[1] = clamp(yy - c.gu * du - c.gv * dv);
            px[2] = clamp(yy + c.bu * du);
        }
    }
}
