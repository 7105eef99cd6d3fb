//! The native methods of `dev.fennec.camera.FennecCamera` (a Kotlin `object`, so they are
//! instance methods: the second argument is the object itself, unused).
//!
//! Each body runs in [`EnvUnowned::with_env`], which wraps it in `catch_unwind`, and ends
//! with `resolve::<ThrowFennecException>()`, which throws a Java exception for an error or
//! a panic (see [`ThrowFennecException`]); nothing unwinds into the JVM.

use jni::objects::{JByteBuffer, JObject};
use jni::refs::Reference as _;
use jni::sys::{jboolean, jint, jlong};
use jni::{Env, EnvUnowned};

use crate::error::{JniLayerError, Result, ThrowFennecException};
use crate::frames::{nv21_ticket, yuv420_ticket};

/// The bytes of a direct `ByteBuffer`, from its address to its capacity (position and
/// limit are ignored, as for Android's plane buffers, which start at position 0). Null and
/// heap (non-direct) buffers are refused with messages naming `name`.
fn direct_bytes<'b>(env: &Env<'_>, buffer: &'b JByteBuffer<'_>, name: &str) -> Result<&'b [u8]> {
    if buffer.is_null() {
        return Err(JniLayerError::InvalidArgument(format!(
            "{name} buffer is null"
        )));
    }
    let not_direct = || {
        JniLayerError::InvalidArgument(format!(
            "{name} buffer is not a direct ByteBuffer: pass an ImageReader plane buffer or \
             ByteBuffer.allocateDirect (heap buffers have no stable address to read in place)"
        ))
    };
    let address = env
        .get_direct_buffer_address(buffer)
        .map_err(|_| not_direct())?;
    let capacity = env
        .get_direct_buffer_capacity(buffer)
        .map_err(|_| not_direct())?;
    if address.is_null() {
        return Err(not_direct());
    }
    // SAFETY: `address` is the non-null start of the direct buffer's memory and `capacity`
    // its length in bytes, both from the JVM. The memory stays allocated while the buffer
    // object is reachable, and `buffer` (a local reference, borrowed for 'b) keeps it so
    // for this native call, which is where 'b ends. Bytes are read only; the caller must
    // not write the buffer from another thread during the call (an acquired ImageReader
    // image is not written by the camera).
    Ok(unsafe { std::slice::from_raw_parts(address, capacity) })
}

/// `FennecCamera.nativeYuv420(y, yRowStride, u, v, uvRowStride, uvPixelStride, width,
/// height, rotationDegrees, mirror): Long` — converts a `YUV_420_888` frame read in place
/// from direct buffers; returns the ticket for `Image.fromTicket`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_dev_fennec_camera_FennecCamera_nativeYuv420<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _this: JObject<'caller>,
    y: JByteBuffer<'caller>,
    y_row_stride: jint,
    u: JByteBuffer<'caller>,
    v: JByteBuffer<'caller>,
    uv_row_stride: jint,
    uv_pixel_stride: jint,
    width: jint,
    height: jint,
    rotation_degrees: jint,
    mirror: jboolean,
) -> jlong {
    unowned_env
        .with_env(|env| -> Result<jlong> {
            let y = direct_bytes(env, &y, "y")?;
            let u = direct_bytes(env, &u, "u")?;
            let v = direct_bytes(env, &v, "v")?;
            let ticket = yuv420_ticket(
                y,
                y_row_stride,
                u,
                v,
                uv_row_stride,
                uv_pixel_stride,
                width,
                height,
                rotation_degrees,
                mirror,
            )?;
            Ok(ticket as jlong)
        })
        .resolve::<ThrowFennecException>()
}

/// `FennecCamera.nativeNv21(y, yRowStride, vu, vuRowStride, width, height,
/// rotationDegrees, mirror): Long` — converts an NV21 frame read in place from direct
/// buffers; returns the ticket for `Image.fromTicket`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_dev_fennec_camera_FennecCamera_nativeNv21<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _this: JObject<'caller>,
    y: JByteBuffer<'caller>,
    y_row_stride: jint,
    vu: JByteBuffer<'caller>,
    vu_row_stride: jint,
    width: jint,
    height: jint,
    rotation_degrees: jint,
    mirror: jboolean,
) -> jlong {
    unowned_env
        .with_env(|env| -> Result<jlong> {
            let y = direct_bytes(env, &y, "y")?;
            let vu = direct_bytes(env, &vu, "vu")?;
            let ticket = nv21_ticket(
                y,
                y_row_stride,
                vu,
                vu_row_stride,
                width,
                height,
                rotation_degrees,
                mirror,
            )?;
            Ok(ticket as jlong)
        })
        .resolve::<ThrowFennecException>()
}

/// `FennecCamera.nativeDebugPanic()` — test hook, always compiled: panics inside Rust so a
/// test can prove the panic surfaces as a Java `RuntimeException` and the JVM keeps running.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_fennec_camera_FennecCamera_nativeDebugPanic<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _this: JObject<'caller>,
) {
    unowned_env
        .with_env(|_env| -> Result<()> {
            panic!("nativeDebugPanic: deliberate panic to test the JNI boundary")
        })
        .resolve::<ThrowFennecException>()
}
