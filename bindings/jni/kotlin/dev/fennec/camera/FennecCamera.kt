package dev.fennec.camera

import dev.fennec.Image
import java.nio.ByteBuffer

/**
 * Thrown when a camera frame is refused: a null or heap (non-direct) buffer, a negative size
 * or stride, a buffer shorter than its size and strides need, an unsupported pixel stride or
 * rotation. It is an [IllegalArgumentException], so callers may catch either.
 */
class FennecCameraException(message: String) : IllegalArgumentException(message)

/**
 * Camera frames to Fennec [Image]s without copying them through the Java heap: the planes are
 * read in place from **direct** [ByteBuffer]s (Android `ImageReader` / CameraX plane buffers,
 * or [ByteBuffer.allocateDirect]) by `libfennec_jni.so`, converted upright to RGB (BT.601,
 * full range) once, and handed to the generated bindings as an [Image].
 *
 * Each buffer is read from its start (address) to its capacity; position and limit are
 * ignored. Do not write a buffer while a call reads it.
 *
 * Errors throw [FennecCameraException]; a Rust panic (a bug) throws [RuntimeException].
 * Calls are thread-safe; each thread keeps its own conversion buffer.
 */
object FennecCamera {
    init {
        System.loadLibrary("fennec_jni")
    }

    /**
     * Converts an Android `YUV_420_888` frame: the Y plane (pixel stride 1) and the U and V
     * planes, which share [uvRowStride] and [uvPixelStride] (1 planar, 2 interleaved).
     * [rotationDegrees] (0, 90, 180 or 270, clockwise) turns the frame upright, as
     * `ImageInfo.rotationDegrees` says; [mirror] flips it horizontally afterwards.
     */
    fun imageFromYuv420(
        y: ByteBuffer,
        yRowStride: Int,
        u: ByteBuffer,
        v: ByteBuffer,
        uvRowStride: Int,
        uvPixelStride: Int,
        width: Int,
        height: Int,
        rotationDegrees: Int = 0,
        mirror: Boolean = false,
    ): Image {
        val ticket = nativeYuv420(
            y, yRowStride, u, v, uvRowStride, uvPixelStride, width, height, rotationDegrees, mirror,
        )
        return Image.fromTicket(ticket.toULong())
    }

    /**
     * Converts an NV21 frame (camera1 previews, some CameraX analysis paths): the Y plane and
     * the interleaved V/U plane, each with its own row stride. Rotation and mirror as for
     * [imageFromYuv420].
     */
    fun imageFromNv21(
        y: ByteBuffer,
        yRowStride: Int,
        vu: ByteBuffer,
        vuRowStride: Int,
        width: Int,
        height: Int,
        rotationDegrees: Int = 0,
        mirror: Boolean = false,
    ): Image {
        val ticket = nativeNv21(y, yRowStride, vu, vuRowStride, width, height, rotationDegrees, mirror)
        return Image.fromTicket(ticket.toULong())
    }

    /**
     * Test hook: panics inside Rust. Proves that a panic surfaces as a [RuntimeException]
     * and that the library keeps working afterwards. Never call it in an app.
     */
    external fun nativeDebugPanic()

    private external fun nativeYuv420(
        y: ByteBuffer,
        yRowStride: Int,
        u: ByteBuffer,
        v: ByteBuffer,
        uvRowStride: Int,
        uvPixelStride: Int,
        width: Int,
        height: Int,
        rotationDegrees: Int,
        mirror: Boolean,
    ): Long

    private external fun nativeNv21(
        y: ByteBuffer,
        yRowStride: Int,
        vu: ByteBuffer,
        vuRowStride: Int,
        width: Int,
        height: Int,
        rotationDegrees: Int,
        mirror: Boolean,
    ): Long
}
