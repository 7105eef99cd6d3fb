//! The JNI-free half of the camera layer: argument checks and frame → ticket conversion over
//! plain byte slices, so it is unit-tested without a JVM. [`crate::exports`] only turns
//! direct `ByteBuffer`s into slices and calls these.

use std::cell::RefCell;

use fennec_camera::{Frame, FrameConverter, Plane};
use fennec_core::vision::Rotation;
use fennec_ffi::{hand_over, Image};

use crate::error::{JniLayerError, Result};

thread_local! {
    /// One converter per thread: after the first frame of a size, converting allocates
    /// nothing but the handed-over image itself.
    static CONVERTER: RefCell<FrameConverter> = RefCell::new(FrameConverter::new());
}

/// A Java `int` that must be non-negative (a size or stride), as `usize`.
pub fn non_negative(name: &str, value: i32) -> Result<usize> {
    usize::try_from(value).map_err(|_| {
        JniLayerError::InvalidArgument(format!("{name} must not be negative, got {value}"))
    })
}

/// Java `rotationDegrees` (0, 90, 180 or 270; negative values are refused too).
pub fn rotation(degrees: i32) -> Result<Rotation> {
    u32::try_from(degrees)
        .ok()
        .and_then(|d| Rotation::from_degrees(d).ok())
        .ok_or_else(|| {
            JniLayerError::InvalidArgument(format!(
                "rotationDegrees must be 0, 90, 180 or 270, got {degrees}"
            ))
        })
}

/// Converts an oriented frame with this thread's converter and hands the image over.
fn convert_and_hand_over(frame: Frame<'_>) -> Result<u64> {
    CONVERTER.with(|converter| {
        let mut converter = converter.borrow_mut();
        let view = converter.convert(&frame)?;
        Ok(hand_over(Image::from_view(&view)))
    })
}

/// Bytes this thread's converter holds allocated (for tests of buffer reuse).
pub fn converter_capacity() -> usize {
    CONVERTER.with(|c| c.borrow().buffer_capacity())
}

/// Converts a `YUV_420_888` frame (Android `Image.getPlanes()`: Y with pixel stride 1, U and
/// V sharing a row stride and a pixel stride of 1 or 2) upright into an RGB image and hands
/// it over: the returned ticket is taken with `Image.fromTicket` on the uniffi side.
///
/// Each slice is a whole plane buffer from its first sample; sizes and strides are checked
/// against the slice lengths (the last row may stop after its last sample, as Android's
/// buffers do).
///
/// # Errors
/// [`JniLayerError::InvalidArgument`] for negative sizes or strides and bad rotations;
/// [`JniLayerError::Camera`] when a buffer is too short, a pixel stride is unsupported, or
/// the frame is empty or too large.
#[allow(clippy::too_many_arguments)]
pub fn yuv420_ticket(
    y: &[u8],
    y_row_stride: i32,
    u: &[u8],
    v: &[u8],
    uv_row_stride: i32,
    uv_pixel_stride: i32,
    width: i32,
    height: i32,
    rotation_degrees: i32,
    mirror: bool,
) -> Result<u64> {
    let y_row_stride = non_negative("yRowStride", y_row_stride)?;
    let uv_row_stride = non_negative("uvRowStride", uv_row_stride)?;
    let uv_pixel_stride = non_negative("uvPixelStride", uv_pixel_stride)?;
    let (width, height) = (
        non_negative("width", width)?,
        non_negative("height", height)?,
    );
    let rotation = rotation(rotation_degrees)?;
    let frame = Frame::yuv_420_888(
        Plane::new(y, y_row_stride, 1),
        Plane::new(u, uv_row_stride, uv_pixel_stride),
        Plane::new(v, uv_row_stride, uv_pixel_stride),
        width,
        height,
    )?;
    convert_and_hand_over(frame.oriented(rotation, mirror))
}

/// Converts an NV21 frame (a Y plane, then interleaved V/U pairs, each with its own row
/// stride) upright into an RGB image and hands it over; see [`yuv420_ticket`].
///
/// # Errors
/// As [`yuv420_ticket`].
#[allow(clippy::too_many_arguments)]
pub fn nv21_ticket(
    y: &[u8],
    y_row_stride: i32,
    vu: &[u8],
    vu_row_stride: i32,
    width: i32,
    height: i32,
    rotation_degrees: i32,
    mirror: bool,
) -> Result<u64> {
    let y_row_stride = non_negative("yRowStride", y_row_stride)?;
    let vu_row_stride = non_negative("vuRowStride", vu_row_stride)?;
    let (width, height) = (
        non_negative("width", width)?,
        non_negative("height", height)?,
    );
    let rotation = rotation(rotation_degrees)?;
    let frame = Frame::nv21(y, y_row_stride, vu, vu_row_stride, width, height)?;
    convert_and_hand_over(frame.oriented(rotation, mirror))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fennec_camera::CameraError;

    /// BT.601 full-range reference.
    fn rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
        let (y, u, v) = (y as f32, u as f32 - 128.0, v as f32 - 128.0);
        let c = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        [
            c(y + 1.402 * v),
            c(y - 0.344_136 * u - 0.714_136 * v),
            c(y + 1.772 * u),
        ]
    }

    const W: usize = 6;
    const H: usize = 4;
    const STRIDE: usize = 8;

    fn luma(x: usize, y: usize) -> u8 {
        (20 + 37 * x + 11 * y) as u8
    }
    fn cb(cx: usize, cy: usize) -> u8 {
        (90 + 23 * cx + 31 * cy) as u8
    }
    fn cr(cx: usize, cy: usize) -> u8 {
        (170 - 19 * cx - 27 * cy) as u8
    }

    fn y_plane() -> Vec<u8> {
        let mut y = vec![0xEE; STRIDE * H];
        for row in 0..H {
            for x in 0..W {
                y[row * STRIDE + x] = luma(x, row);
            }
        }
        y
    }

    fn take(ticket: u64) -> (u32, u32, Vec<u8>) {
        let image = Image::from_ticket(ticket).unwrap();
        (image.width(), image.height(), image.rgb())
    }

    fn assert_close(got: &[u8], want: [u8; 3], at: (usize, usize)) {
        for c in 0..3 {
            assert!(got[c].abs_diff(want[c]) <= 2, "{at:?}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn nv21_with_padded_rows_matches_the_reference_and_rotates() {
        let y = y_plane();
        // VU rows: the last one stops after its last pair.
        let mut vu = vec![0xEE; STRIDE * (H / 2 - 1) + W];
        for cy in 0..H / 2 {
            for cx in 0..W / 2 {
                vu[cy * STRIDE + 2 * cx] = cr(cx, cy);
                vu[cy * STRIDE + 2 * cx + 1] = cb(cx, cy);
            }
        }
        let (w, h, px) = take(nv21_ticket(&y, 8, &vu, 8, 6, 4, 0, false).unwrap());
        assert_eq!((w, h), (6, 4));
        for row in 0..H {
            for x in 0..W {
                let want = rgb(luma(x, row), cb(x / 2, row / 2), cr(x / 2, row / 2));
                assert_close(&px[(row * W + x) * 3..], want, (x, row));
            }
        }
        // A clockwise quarter turn: upright (c, r) is stored (r, H-1-c).
        let (w, h, px) = take(nv21_ticket(&y, 8, &vu, 8, 6, 4, 90, false).unwrap());
        assert_eq!((w, h), (4, 6));
        for r in 0..W {
            for c in 0..H {
                let (sx, sy) = (r, H - 1 - c);
                let want = rgb(luma(sx, sy), cb(sx / 2, sy / 2), cr(sx / 2, sy / 2));
                assert_close(&px[(r * H + c) * 3..], want, (c, r));
            }
        }
    }

    #[test]
    fn yuv_420_888_with_interleaved_chroma_matches_nv21() {
        let y = y_plane();
        // Android's usual layout: one interleaved U/V buffer, V one byte after U.
        let mut uv = [0xEE; STRIDE * (H / 2 - 1) + W];
        for cy in 0..H / 2 {
            for cx in 0..W / 2 {
                uv[cy * STRIDE + 2 * cx] = cb(cx, cy);
                uv[cy * STRIDE + 2 * cx + 1] = cr(cx, cy);
            }
        }
        let (u, v) = (&uv[..uv.len() - 1], &uv[1..]);
        let (w, h, px) = take(yuv420_ticket(&y, 8, u, v, 8, 2, 6, 4, 180, true).unwrap());
        assert_eq!((w, h), (6, 4));
        // 180° then mirror = a vertical flip.
        for r in 0..H {
            for x in 0..W {
                let sy = H - 1 - r;
                let want = rgb(luma(x, sy), cb(x / 2, sy / 2), cr(x / 2, sy / 2));
                assert_close(&px[(r * W + x) * 3..], want, (x, r));
            }
        }
    }

    #[test]
    fn short_buffers_and_bad_arguments_are_refused_with_clear_messages() {
        let y = y_plane();
        let vu = vec![128; STRIDE * 2];
        let err = nv21_ticket(&y[..STRIDE * 3], 8, &vu, 8, 6, 4, 0, false).unwrap_err();
        assert!(matches!(
            err,
            JniLayerError::Camera(CameraError::PlaneTooShort { .. })
        ));
        assert!(err.to_string().contains("y plane holds 24 bytes"), "{err}");
        let err = nv21_ticket(&y, -8, &vu, 8, 6, 4, 0, false).unwrap_err();
        assert_eq!(err.to_string(), "yRowStride must not be negative, got -8");
        let err = nv21_ticket(&y, 8, &vu, 8, 6, 4, 45, false).unwrap_err();
        assert!(err.to_string().contains("rotationDegrees"), "{err}");
        let err = nv21_ticket(&y, 4, &vu, 8, 6, 4, 0, false).unwrap_err();
        assert!(matches!(
            err,
            JniLayerError::Camera(CameraError::RowStrideTooSmall { .. })
        ));
        let err = yuv420_ticket(&y, 8, &vu, &vu, 8, 3, 6, 4, 0, false).unwrap_err();
        assert!(matches!(
            err,
            JniLayerError::Camera(CameraError::BadPixelStride { .. })
        ));
        let err = nv21_ticket(&[], 0, &[], 0, 0, 0, 0, false).unwrap_err();
        assert!(matches!(
            err,
            JniLayerError::Camera(CameraError::EmptyFrame { .. })
        ));
    }

    #[test]
    fn the_thread_converter_keeps_its_buffer_between_frames() {
        let (w, h) = (64usize, 48usize);
        let y = vec![100; w * h];
        let vu = vec![128; w * h / 2];
        Image::from_ticket(nv21_ticket(&y, 64, &vu, 64, 64, 48, 0, false).unwrap()).unwrap();
        let cap = converter_capacity();
        assert!(cap >= w * h * 3);
        for _ in 0..3 {
            Image::from_ticket(nv21_ticket(&y, 64, &vu, 64, 64, 48, 90, false).unwrap()).unwrap();
            assert_eq!(converter_capacity(), cap);
        }
    }
}
