//! A borrowed view of an 8-bit RGB-family image: the one input type of image
//! preprocessing. Camera adapters (`fennec-camera`) convert whatever a sensor produces into
//! one of these — or borrow the frame itself when it already is interleaved RGB/BGR — and
//! the orientation and crop are applied while reading, so no pixel is copied twice.

use crate::error::{Error, Result};

/// Channel order of one pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PixelLayout {
    /// `R, G, B`, three bytes.
    Rgb8,
    /// `R, G, B, A`, four bytes; alpha is composited on white.
    Rgba8,
    /// `B, G, R, A`, four bytes (Android `ARGB_8888` read as bytes is RGBA; iOS
    /// `kCVPixelFormatType_32BGRA` is this); alpha is composited on white.
    Bgra8,
    /// `B, G, R, X`, four bytes, the fourth ignored.
    Bgrx8,
    /// `R, G, B, X`, four bytes, the fourth ignored.
    Rgbx8,
}

impl PixelLayout {
    /// Bytes per pixel.
    pub const fn bytes_per_pixel(self) -> usize {
        match self {
            PixelLayout::Rgb8 => 3,
            _ => 4,
        }
    }

    /// Byte offsets of red, green and blue in a pixel, and of alpha when it counts.
    pub(crate) const fn offsets(self) -> ([usize; 3], Option<usize>) {
        match self {
            PixelLayout::Rgb8 => ([0, 1, 2], None),
            PixelLayout::Rgba8 => ([0, 1, 2], Some(3)),
            PixelLayout::Rgbx8 => ([0, 1, 2], None),
            PixelLayout::Bgra8 => ([2, 1, 0], Some(3)),
            PixelLayout::Bgrx8 => ([2, 1, 0], None),
        }
    }
}

/// The clockwise rotation that makes a frame upright (Android's sensor-orientation
/// convention: a sensor mounted at 90° needs `Rotation::Cw90`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Rotation {
    /// Already upright.
    #[default]
    None,
    /// 90° clockwise.
    Cw90,
    /// 180°.
    Cw180,
    /// 270° clockwise (90° counter-clockwise).
    Cw270,
}

impl Rotation {
    /// The rotation of `degrees` (0, 90, 180 or 270; clockwise).
    pub fn from_degrees(degrees: u32) -> Result<Self> {
        match degrees {
            0 => Ok(Rotation::None),
            90 => Ok(Rotation::Cw90),
            180 => Ok(Rotation::Cw180),
            270 => Ok(Rotation::Cw270),
            _ => Err(Error::InvalidArgument(format!(
                "rotation must be 0, 90, 180 or 270 degrees, not {degrees}"
            ))),
        }
    }

    /// Whether width and height swap.
    pub const fn swaps_axes(self) -> bool {
        matches!(self, Rotation::Cw90 | Rotation::Cw270)
    }
}

/// A rectangle in upright coordinates (after rotation and mirroring).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// Largest side an [`ImageView`] may have (a bound on what a caller can make us allocate).
pub const MAX_IMAGE_SIDE: usize = 1 << 15;

/// A borrowed 8-bit image: `height` rows of `width` pixels, rows `row_stride` bytes apart,
/// plus how to turn it upright (rotation, then a horizontal mirror) and an optional crop of
/// the upright image. Reading a pixel goes through that mapping; the bytes are never copied.
#[derive(Clone, Copy, Debug)]
pub struct ImageView<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    row_stride: usize,
    layout: PixelLayout,
    rotation: Rotation,
    mirror: bool,
    crop: Option<Rect>,
}

impl<'a> ImageView<'a> {
    /// A view of `data` holding `height` rows of `width` pixels in `layout`, each row starting
    /// `row_stride` bytes after the previous one (≥ `width × bytes per pixel`; the last row
    /// may end right after its pixels).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidImage`] for a zero or oversized side, a stride shorter
    /// than a row, or a buffer too short for the rows.
    pub fn new(
        data: &'a [u8],
        width: usize,
        height: usize,
        row_stride: usize,
        layout: PixelLayout,
    ) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidImage(format!(
                "image is empty ({width}×{height})"
            )));
        }
        if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
            return Err(Error::InvalidImage(format!(
                "image {width}×{height} exceeds the largest side, {MAX_IMAGE_SIDE}"
            )));
        }
        let row_bytes = width * layout.bytes_per_pixel();
        if row_stride < row_bytes {
            return Err(Error::InvalidImage(format!(
                "row stride {row_stride} is shorter than a row of {width} {layout:?} pixels ({row_bytes} bytes)"
            )));
        }
        let needed = (height - 1)
            .checked_mul(row_stride)
            .and_then(|b| b.checked_add(row_bytes))
            .ok_or_else(|| Error::InvalidImage("image size overflows".into()))?;
        if data.len() < needed {
            return Err(Error::InvalidImage(format!(
                "image buffer holds {} bytes; {width}×{height} {layout:?} with row stride {row_stride} needs {needed}",
                data.len()
            )));
        }
        Ok(Self {
            data,
            width,
            height,
            row_stride,
            layout,
            rotation: Rotation::None,
            mirror: false,
            crop: None,
        })
    }

    /// A tightly packed view (`row_stride = width × bytes per pixel`).
    pub fn packed(
        data: &'a [u8],
        width: usize,
        height: usize,
        layout: PixelLayout,
    ) -> Result<Self> {
        Self::new(
            data,
            width,
            height,
            width * layout.bytes_per_pixel(),
            layout,
        )
    }

    /// The same view turned upright by `rotation` (clockwise), then mirrored left-right when
    /// `mirror` (a front camera's selfie view). Clears any crop.
    pub fn oriented(mut self, rotation: Rotation, mirror: bool) -> Self {
        self.rotation = rotation;
        self.mirror = mirror;
        self.crop = None;
        self
    }

    /// The same view cropped to `rect` of the upright image.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] when `rect` is empty or leaves the image.
    pub fn cropped(mut self, rect: Rect) -> Result<Self> {
        let (w, h) = self.upright_size_uncropped();
        let inside = rect.width > 0
            && rect.height > 0
            && rect.x.checked_add(rect.width).is_some_and(|r| r <= w)
            && rect.y.checked_add(rect.height).is_some_and(|b| b <= h);
        if !inside {
            return Err(Error::InvalidArgument(format!(
                "crop {rect:?} is empty or outside the {w}×{h} image"
            )));
        }
        self.crop = Some(rect);
        Ok(self)
    }

    /// The same view cropped to the largest centred rectangle of aspect `aspect_w:aspect_h`
    /// (e.g. `1:1` for a square).
    pub fn center_cropped(self, aspect_w: usize, aspect_h: usize) -> Result<Self> {
        if aspect_w == 0 || aspect_h == 0 {
            return Err(Error::InvalidArgument(
                "crop aspect must be positive".into(),
            ));
        }
        let (w, h) = self.upright_size_uncropped();
        // Widest crop of that aspect that fits: compare w/h with aspect_w/aspect_h (in u128:
        // sides and aspects are each below 2^64, so no product overflows).
        let (w128, h128) = (w as u128, h as u128);
        let (aw, ah) = (aspect_w as u128, aspect_h as u128);
        let (cw, ch) = if w128 * ah >= h128 * aw {
            (((h128 * aw / ah) as usize).max(1), h)
        } else {
            (w, ((w128 * ah / aw) as usize).max(1))
        };
        self.cropped(Rect {
            x: (w - cw) / 2,
            y: (h - ch) / 2,
            width: cw,
            height: ch,
        })
    }

    fn upright_size_uncropped(&self) -> (usize, usize) {
        if self.rotation.swaps_axes() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// Width and height as the model sees the image: upright, cropped.
    pub fn size(&self) -> (usize, usize) {
        match self.crop {
            Some(r) => (r.width, r.height),
            None => self.upright_size_uncropped(),
        }
    }

    /// Pixel layout of the buffer.
    pub fn layout(&self) -> PixelLayout {
        self.layout
    }

    /// The stored (sensor) width and height, before rotation and crop.
    pub fn stored_size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Byte offset in the buffer of upright pixel `(x, y)` (`x < width`, `y < height` of
    /// [`ImageView::size`]).
    #[inline]
    pub(crate) fn offset(&self, x: usize, y: usize) -> usize {
        let (x, y) = match self.crop {
            Some(r) => (x + r.x, y + r.y),
            None => (x, y),
        };
        let (uw, _) = self.upright_size_uncropped();
        let x = if self.mirror { uw - 1 - x } else { x };
        // Upright (x, y) back to stored (sx, sy).
        let (sx, sy) = match self.rotation {
            Rotation::None => (x, y),
            // Rotating the stored image clockwise by 90° maps stored (sx, sy) to upright
            // (H-1-sy, sx), so upright (x, y) came from stored (y, H-1-x).
            Rotation::Cw90 => (y, self.height - 1 - x),
            Rotation::Cw180 => (self.width - 1 - x, self.height - 1 - y),
            Rotation::Cw270 => (self.width - 1 - y, x),
        };
        sy * self.row_stride + sx * self.layout.bytes_per_pixel()
    }

    /// Upright pixel `(x, y)` as RGB, alpha composited on white.
    #[inline]
    pub fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let o = self.offset(x, y);
        let p = &self.data[o..o + self.layout.bytes_per_pixel()];
        let ([r, g, b], alpha) = self.layout.offsets();
        let rgb = [p[r], p[g], p[b]];
        match alpha {
            Some(a) if p[a] != 255 => composite_on_white(rgb, p[a]),
            _ => rgb,
        }
    }
}

/// `c·a + 255·(255 − a)`, divided by 255 and rounded as PIL's `alpha_composite` does onto an
/// opaque white background (what transformers' `convert_to_rgb` calls).
#[inline]
pub(crate) fn composite_on_white(rgb: [u8; 3], a: u8) -> [u8; 3] {
    let a = u32::from(a);
    rgb.map(|c| {
        // PIL: blend = c·a + 255·(255−a) over an outAlpha of 255, computed with
        // PRECISION_BITS shifts; the rounded quotient by 255 is what it yields.
        let v = u32::from(c) * a + 255 * (255 - a);
        ((v + 127) / 255) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 RGB image whose pixel (x, y) has red = 10·y + x.
    fn img() -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..2u8 {
            for x in 0..3u8 {
                v.extend_from_slice(&[10 * y + x, 0, 0]);
            }
        }
        v
    }

    fn reds(view: &ImageView<'_>) -> Vec<Vec<u8>> {
        let (w, h) = view.size();
        (0..h)
            .map(|y| (0..w).map(|x| view.rgb(x, y)[0]).collect())
            .collect()
    }

    #[test]
    fn rotations_match_turning_the_picture() {
        let data = img();
        let v = ImageView::packed(&data, 3, 2, PixelLayout::Rgb8).unwrap();
        assert_eq!(reds(&v), [[0, 1, 2], [10, 11, 12]]);
        assert_eq!(
            reds(&v.oriented(Rotation::Cw90, false)),
            [[10, 0], [11, 1], [12, 2]]
        );
        assert_eq!(
            reds(&v.oriented(Rotation::Cw180, false)),
            [[12, 11, 10], [2, 1, 0]]
        );
        assert_eq!(
            reds(&v.oriented(Rotation::Cw270, false)),
            [[2, 12], [1, 11], [0, 10]]
        );
        assert_eq!(
            reds(&v.oriented(Rotation::Cw90, true)),
            [[0, 10], [1, 11], [2, 12]]
        );
    }

    #[test]
    fn crops_apply_upright() {
        let data = img();
        let v = ImageView::packed(&data, 3, 2, PixelLayout::Rgb8).unwrap();
        assert_eq!(reds(&v.center_cropped(1, 1).unwrap()), [[0, 1], [10, 11]]);
        let r = v
            .oriented(Rotation::Cw90, false)
            .center_cropped(1, 1)
            .unwrap();
        assert_eq!(reds(&r), [[10, 0], [11, 1]]);
        assert!(v
            .cropped(Rect {
                x: 2,
                y: 0,
                width: 2,
                height: 1
            })
            .is_err());
    }

    #[test]
    fn bad_shapes_are_errors() {
        let data = img();
        assert!(ImageView::packed(&data, 0, 2, PixelLayout::Rgb8).is_err());
        assert!(ImageView::packed(&data, 3, 3, PixelLayout::Rgb8).is_err());
        assert!(ImageView::new(&data, 3, 2, 8, PixelLayout::Rgb8).is_err());
        assert!(ImageView::new(&data, 2, 2, 9, PixelLayout::Rgb8).is_ok());
    }

    #[test]
    fn alpha_composites_on_white() {
        assert_eq!(composite_on_white([0, 100, 255], 0), [255, 255, 255]);
        assert_eq!(composite_on_white([0, 100, 255], 255), [0, 100, 255]);
        assert_eq!(composite_on_white([0, 0, 0], 128), [127, 127, 127]);
    }
}
