//! [`CameraError`]: why a frame was refused.

/// Why a camera frame or encoded image could not be turned into an image view.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CameraError {
    /// Width or height is zero.
    #[error("frame is empty ({width}×{height})")]
    EmptyFrame {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// A side exceeds [`fennec_core::vision::MAX_IMAGE_SIDE`], or the pixel count exceeds the
    /// converter's budget.
    #[error("frame {width}×{height} exceeds the limit ({max_pixels} pixels, {max_side} per side)")]
    TooLarge {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// The pixel budget in force.
        max_pixels: usize,
        /// The largest side allowed.
        max_side: usize,
    },
    /// A plane's row stride is shorter than the bytes one row of it spans.
    #[error("{plane} plane: row stride {row_stride} is shorter than a row ({row_bytes} bytes)")]
    RowStrideTooSmall {
        /// Which plane (`"y"`, `"uv"`, `"u"`, `"v"`, `"rgb"`).
        plane: &'static str,
        /// The stride given.
        row_stride: usize,
        /// Bytes one row spans.
        row_bytes: usize,
    },
    /// A plane's buffer is shorter than its size and strides imply.
    #[error("{plane} plane holds {len} bytes; its size and strides need {needed}")]
    PlaneTooShort {
        /// Which plane.
        plane: &'static str,
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// A pixel stride other than 1 (planar) or 2 (interleaved chroma).
    #[error("{plane} plane: pixel stride {pixel_stride} is not supported (1 or 2 for chroma, 1 for luma)")]
    BadPixelStride {
        /// Which plane.
        plane: &'static str,
        /// The pixel stride given.
        pixel_stride: usize,
    },
    /// Size and stride arithmetic overflowed.
    #[error("frame size overflows")]
    Overflow,
    /// A crop aspect with a zero side.
    #[error("crop aspect {aspect_w}:{aspect_h} must be positive and at most MAX_IMAGE_SIDE")]
    BadCropAspect {
        /// Aspect width.
        aspect_w: usize,
        /// Aspect height.
        aspect_h: usize,
    },
    /// Encoded bytes are truncated or corrupt.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// Encoded bytes are not a JPEG or PNG, or use a form this crate does not read.
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The YUV converter refused the planes (should not happen: inputs are checked first).
    #[error("yuv conversion failed: {0}")]
    Yuv(String),
    /// `fennec-core` refused the view.
    #[error(transparent)]
    Core(#[from] fennec_core::Error),
}

impl From<CameraError> for fennec_core::Error {
    fn from(e: CameraError) -> Self {
        match e {
            CameraError::Core(e) => e,
            CameraError::Unsupported(_) => fennec_core::Error::Unsupported(e.to_string()),
            other => fennec_core::Error::InvalidArgument(other.to_string()),
        }
    }
}

/// This crate's result type.
pub type Result<T, E = CameraError> = std::result::Result<T, E>;
