package dev.fennec.camera

import android.graphics.ImageFormat

/**
 * Converts an Android `YUV_420_888` image (from `ImageReader`, or CameraX's
 * `ImageProxy.image`) into a Fennec image, reading its planes in place. Pass the rotation
 * that makes the frame upright (CameraX: `imageProxy.imageInfo.rotationDegrees`) and
 * [mirror] for front cameras. The image may be closed as soon as this returns.
 *
 * @throws IllegalArgumentException if the image is not `YUV_420_888`, or its U and V planes
 *   disagree on strides (the platform guarantees they agree).
 * @throws FennecCameraException if the planes are refused by the native layer.
 */
fun android.media.Image.toFennecImage(rotationDegrees: Int, mirror: Boolean = false): dev.fennec.Image {
    require(format == ImageFormat.YUV_420_888) {
        "toFennecImage needs a YUV_420_888 image (format 0x23), got format 0x${format.toString(16)}"
    }
    val planes = planes
    require(planes.size == 3) { "a YUV_420_888 image has 3 planes, got ${planes.size}" }
    val (y, u, v) = planes
    require(u.rowStride == v.rowStride && u.pixelStride == v.pixelStride) {
        "U and V planes differ in strides (row ${u.rowStride} vs ${v.rowStride}, " +
            "pixel ${u.pixelStride} vs ${v.pixelStride})"
    }
    return FennecCamera.imageFromYuv420(
        y.buffer, y.rowStride, u.buffer, v.buffer, u.rowStride, u.pixelStride,
        width, height, rotationDegrees, mirror,
    )
}
