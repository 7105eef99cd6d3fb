//! `fennec-camera`: camera frames as phones and glasses SoCs produce them → a
//! [`fennec_core::vision::ImageView`] for image preprocessing, with at most one conversion
//! and no other copy.
//!
//! Make a [`Frame`] from borrowed buffers (its constructor checks sizes and strides), add
//! orientation, crop and range, and hand it to a [`FrameConverter`], which keeps one RGB
//! buffer between frames:
//!
//! ```
//! use fennec_camera::{Frame, FrameConverter};
//! use fennec_core::vision::Rotation;
//!
//! let (w, h) = (4, 2);
//! let nv21 = vec![128u8; w * h * 3 / 2];
//! let frame = Frame::nv21_contiguous(&nv21, w, h)?
//!     .oriented(Rotation::Cw90, false)
//!     .center_cropped(1, 1)?;
//! let mut converter = FrameConverter::new();
//! let view = converter.convert(&frame)?;
//! assert_eq!(view.size(), (2, 2));
//! assert_eq!(view.rgb(0, 0), [128, 128, 128]);
//! # Ok::<(), fennec_camera::CameraError>(())
//! ```
//!
//! # Paths
//!
//! | Frame | Path |
//! |---|---|
//! | NV21, NV12, iOS bi-planar `CVPixelBuffer` | `yuv` crate, SIMD bi-planar → RGB |
//! | I420 / `YUV_420_888` with chroma pixel stride 1 | `yuv` crate, SIMD planar → RGB |
//! | `YUV_420_888`, pixel stride 2, V and U slices one byte apart (one interleaved buffer, detected by address) | `yuv` crate, SIMD bi-planar over the earlier slice |
//! | `YUV_420_888`, other pixel strides (mixed, or stride-2 slices that are not one buffer) | scalar BT.601 (this crate; ~17× slower) |
//! | RGB, RGBA, BGRA, iOS BGRA `CVPixelBuffer` | none: the view borrows the frame |
//! | JPEG, PNG | `image` crate, decoded straight into the buffer |
//!
//! The `yuv` crate walks planes in whole row strides, so it is only given the pairs of rows
//! whose planes hold full strides; the rest — usually the last one or two rows, when a
//! plane ends right after its last sample as Android's do — go through the scalar path.
//!
//! All YUV paths use BT.601 with chroma nearest-sampled per 2×2 block; full range unless
//! the frame says [`YuvRange::Limited`]. In limited range a Y below 16 is read as 16 (the
//! `yuv` crate's SIMD rows clamp it; the scalar path does the same). Orientation and crop
//! are never a pass over the pixels: the returned view applies them while it is read.
//! JPEG EXIF orientation is not read: pass the rotation with [`Frame::oriented`].

#![warn(missing_docs)]

mod convert;
mod decode;
mod error;
mod frame;

pub use convert::{ConversionPath, FrameConverter, DEFAULT_MAX_PIXELS};
pub use error::{CameraError, Result};
pub use frame::{ChromaOrder, Frame, FrameFormat, Plane, YuvRange};
