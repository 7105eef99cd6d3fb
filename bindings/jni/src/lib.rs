//! Fennec on Android: one library, `libfennec_jni.so`, holding
//!
//! * the uniffi API of [`fennec_ffi`] (model, session, chat, images), re-exported so its
//!   scaffolding symbols land in this library and the generated Kotlin bindings
//!   (package `dev.fennec`, `cdylib_name = "fennec_jni"`) load it through JNA; and
//! * a small hand-written JNI layer for what uniffi cannot do without copies: Android
//!   `ImageReader` / CameraX `YUV_420_888` planes and NV21 buffers arrive as **direct**
//!   `java.nio.ByteBuffer`s with row and pixel strides. The native methods of
//!   `dev.fennec.camera.FennecCamera` (see `bindings/jni/kotlin/`) read those buffers in
//!   place, convert the frame upright into RGB with a per-thread
//!   [`fennec_camera::FrameConverter`], and hand the result over to the uniffi side with
//!   [`fennec_ffi::hand_over`]; Kotlin takes it with `Image.fromTicket(ticket)`.
//!
//! Errors become Java exceptions: bad arguments (null or heap buffers, negative sizes,
//! buffers too short for their strides, unsupported rotations or pixel strides) throw
//! `dev.fennec.camera.FennecCameraException`, a subclass of `IllegalArgumentException`
//! (plain `IllegalArgumentException` if that class cannot be loaded); JNI failures and
//! panics throw `RuntimeException`. No panic unwinds into the JVM: every native method body
//! runs inside `catch_unwind` (see [`exports`]). This relies on `panic = "unwind"`, the
//! default; a build with `panic = "abort"` would end the process on a panic instead.

#![warn(missing_docs)]

/// The uniffi API (model, session, chat, images); its scaffolding is exported by this library.
pub use fennec_ffi;

pub mod error;
pub mod exports;
pub mod frames;

pub use error::{JniLayerError, ThrowFennecException};
pub use frames::{nv21_ticket, yuv420_ticket};
