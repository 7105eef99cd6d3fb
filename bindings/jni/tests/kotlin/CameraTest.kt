// End-to-end test of the JNI camera layer on a desktop JVM: direct ByteBuffers with padded
// rows go through FennecCamera (and the android.media.Image extension, against the stubs in
// tests/android-stubs), and the pixels are checked against a BT.601 full-range reference.
// A `main` that exits non-zero on failure; run by bindings/jni/test.sh.

import dev.fennec.CameraFrame
import dev.fennec.FrameFormat
import dev.fennec.FramePlane
import dev.fennec.Image
import dev.fennec.camera.FennecCamera
import dev.fennec.camera.FennecCameraException
import dev.fennec.camera.toFennecImage
import java.nio.ByteBuffer
import kotlin.math.abs
import kotlin.math.roundToInt
import kotlin.system.exitProcess

private var failures = 0
private var checks = 0

private fun check(ok: Boolean, what: () -> String) {
    checks++
    if (!ok) {
        failures++
        System.err.println("FAIL: ${what()}")
    }
}

// A 6×4 frame with rows padded to 8 bytes, odd-looking values, garbage in the padding.
private const val W = 6
private const val H = 4
private const val STRIDE = 8
private const val PAD = 0xEE.toByte()

private fun luma(x: Int, y: Int) = (20 + 37 * x + 11 * y) and 0xFF
private fun cb(cx: Int, cy: Int) = (90 + 23 * cx + 31 * cy) and 0xFF
private fun cr(cx: Int, cy: Int) = (170 - 19 * cx - 27 * cy) and 0xFF

/** BT.601 full range, rounded and clamped. */
private fun reference(y: Int, u: Int, v: Int): IntArray {
    val (uu, vv) = (u - 128).toDouble() to (v - 128).toDouble()
    fun c(x: Double) = x.roundToInt().coerceIn(0, 255)
    return intArrayOf(c(y + 1.402 * vv), c(y - 0.344136 * uu - 0.714136 * vv), c(y + 1.772 * uu))
}

/** Where upright pixel (c, r) comes from in the stored frame, for a rotation then a mirror. */
private fun source(c0: Int, r: Int, outW: Int, rotation: Int, mirror: Boolean): Pair<Int, Int> {
    val c = if (mirror) outW - 1 - c0 else c0
    return when (rotation) {
        0 -> c to r
        90 -> r to (H - 1 - c)
        180 -> (W - 1 - c) to (H - 1 - r)
        270 -> (W - 1 - r) to c
        else -> error("rotation $rotation")
    }
}

private fun direct(bytes: ByteArray): ByteBuffer = ByteBuffer.allocateDirect(bytes.size).put(bytes).also { it.clear() }

private fun yBytes(): ByteArray {
    val y = ByteArray(STRIDE * H) { PAD }
    for (r in 0 until H) for (x in 0 until W) y[r * STRIDE + x] = luma(x, r).toByte()
    return y
}

/** Interleaved chroma, first byte of each pair from [first], second from [second]; the last
 *  row stops after its last pair (as Android's buffers do). */
private fun interleaved(first: (Int, Int) -> Int, second: (Int, Int) -> Int): ByteArray {
    val out = ByteArray(STRIDE * (H / 2 - 1) + W) { PAD }
    for (cy in 0 until H / 2) for (cx in 0 until W / 2) {
        out[cy * STRIDE + 2 * cx] = first(cx, cy).toByte()
        out[cy * STRIDE + 2 * cx + 1] = second(cx, cy).toByte()
    }
    return out
}

private fun planar(sample: (Int, Int) -> Int): ByteArray {
    val out = ByteArray(STRIDE * (H / 2 - 1) + W / 2) { PAD }
    for (cy in 0 until H / 2) for (cx in 0 until W / 2) out[cy * STRIDE + cx] = sample(cx, cy).toByte()
    return out
}

private fun checkImage(name: String, image: Image, rotation: Int, mirror: Boolean) {
    image.use {
        val (outW, outH) = if (rotation % 180 == 0) W to H else H to W
        check(it.width() == outW.toUInt() && it.height() == outH.toUInt()) {
            "$name: size ${it.width()}×${it.height()}, expected $outW×$outH"
        }
        val rgb = it.rgb()
        check(rgb.size == outW * outH * 3) { "$name: ${rgb.size} bytes" }
        if (rgb.size != outW * outH * 3) return
        var worst = 0
        for (r in 0 until outH) for (c in 0 until outW) {
            val (sx, sy) = source(c, r, outW, rotation, mirror)
            val want = reference(luma(sx, sy), cb(sx / 2, sy / 2), cr(sx / 2, sy / 2))
            for (k in 0 until 3) {
                val got = rgb[(r * outW + c) * 3 + k].toInt() and 0xFF
                worst = maxOf(worst, abs(got - want[k]))
            }
        }
        check(worst <= 2) { "$name: off by $worst from the BT.601 reference" }
        println("  $name: ${outW}x$outH, max |error| $worst")
    }
}

private inline fun <reified E : Throwable> expectThrows(name: String, needle: String, block: () -> Unit) {
    try {
        block()
        check(false) { "$name: no exception" }
    } catch (e: Throwable) {
        check(e is E && (e.message ?: "").contains(needle)) {
            "$name: expected ${E::class.simpleName} containing '$needle', got $e"
        }
        println("  $name: ${e::class.simpleName}: ${e.message}")
    }
}

/** An android.media.Image (stub) over direct buffers, as ImageReader would hand out. */
private class FakeImage(
    private val fmt: Int,
    private val planeList: Array<Plane>,
) : android.media.Image() {
    override fun getFormat() = fmt
    override fun getWidth() = W
    override fun getHeight() = H
    override fun getTimestamp() = 0L
    override fun getPlanes() = planeList
    override fun close() {}

    class FakePlane(private val buf: ByteBuffer, private val row: Int, private val pixel: Int) : Plane() {
        override fun getRowStride() = row
        override fun getPixelStride() = pixel
        override fun getBuffer() = buf
    }
}

private fun timeNs(frames: Int, block: () -> Unit): Double {
    repeat(20) { block() }
    val t0 = System.nanoTime()
    repeat(frames) { block() }
    return (System.nanoTime() - t0).toDouble() / frames
}

fun main() {
    println("pixels")
    val y = direct(yBytes())
    val vu = direct(interleaved(::cr, ::cb))
    for ((rot, mirror) in listOf(0 to false, 90 to false, 180 to false, 270 to false, 90 to true)) {
        checkImage("nv21 rot $rot mirror $mirror", FennecCamera.imageFromNv21(y, STRIDE, vu, STRIDE, W, H, rot, mirror), rot, mirror)
    }
    // YUV_420_888 as ImageReader gives it: one interleaved U/V buffer, V starting one byte in.
    val uvBytes = interleaved(::cb, ::cr)
    val u = direct(uvBytes.copyOf(uvBytes.size - 1))
    val v = direct(uvBytes.copyOfRange(1, uvBytes.size))
    checkImage("yuv420 pixel stride 2", FennecCamera.imageFromYuv420(y, STRIDE, u, v, STRIDE, 2, W, H), 0, false)
    checkImage("yuv420 pixel stride 2 rot 90", FennecCamera.imageFromYuv420(y, STRIDE, u, v, STRIDE, 2, W, H, 90), 90, false)
    val up = direct(planar(::cb))
    val vp = direct(planar(::cr))
    checkImage("yuv420 planar (I420) rot 270 mirror", FennecCamera.imageFromYuv420(y, STRIDE, up, vp, STRIDE, 1, W, H, 270, true), 270, true)

    println("android.media.Image extension (SDK stubs)")
    val planes: Array<android.media.Image.Plane> = arrayOf(
        FakeImage.FakePlane(y, STRIDE, 1), FakeImage.FakePlane(u, STRIDE, 2), FakeImage.FakePlane(v, STRIDE, 2),
    )
    checkImage("toFennecImage rot 90", FakeImage(android.graphics.ImageFormat.YUV_420_888, planes).toFennecImage(90), 90, false)
    expectThrows<IllegalArgumentException>("toFennecImage on JPEG", "YUV_420_888") {
        FakeImage(android.graphics.ImageFormat.JPEG, planes).toFennecImage(0)
    }

    println("errors")
    expectThrows<IllegalArgumentException>("heap buffer", "not a direct ByteBuffer") {
        FennecCamera.imageFromNv21(ByteBuffer.wrap(yBytes()), STRIDE, vu, STRIDE, W, H)
    }
    expectThrows<FennecCameraException>("heap buffer (dedicated class)", "vu buffer") {
        FennecCamera.imageFromNv21(y, STRIDE, ByteBuffer.allocate(64), STRIDE, W, H)
    }
    expectThrows<FennecCameraException>("short y buffer", "y plane holds 24 bytes") {
        FennecCamera.imageFromNv21(direct(yBytes().copyOf(STRIDE * 3)), STRIDE, vu, STRIDE, W, H)
    }
    expectThrows<IllegalArgumentException>("short v buffer", "v plane holds") {
        FennecCamera.imageFromYuv420(y, STRIDE, u, direct(ByteArray(4)), STRIDE, 2, W, H)
    }
    expectThrows<FennecCameraException>("negative stride", "yRowStride must not be negative") {
        FennecCamera.imageFromNv21(y, -8, vu, STRIDE, W, H)
    }
    expectThrows<FennecCameraException>("bad rotation", "rotationDegrees must be 0, 90, 180 or 270") {
        FennecCamera.imageFromNv21(y, STRIDE, vu, STRIDE, W, H, 45)
    }
    expectThrows<FennecCameraException>("bad pixel stride", "pixel stride 3") {
        FennecCamera.imageFromYuv420(y, STRIDE, u, v, STRIDE, 3, W, H)
    }

    println("panic")
    expectThrows<RuntimeException>("nativeDebugPanic", "Rust panic in fennec_jni: nativeDebugPanic") {
        FennecCamera.nativeDebugPanic()
    }
    checkImage("nv21 after the panic", FennecCamera.imageFromNv21(y, STRIDE, vu, STRIDE, W, H, 90), 90, false)
    expectThrows<RuntimeException>("a second panic", "deliberate panic") { FennecCamera.nativeDebugPanic() }

    println("timing: 640x480 NV21 -> Image, steady state")
    val (tw, th) = 640 to 480
    val yBig = ByteBuffer.allocateDirect(tw * th)
    val vuBig = ByteBuffer.allocateDirect(tw * th / 2)
    for (i in 0 until tw * th) yBig.put(i, (i * 7).toByte())
    for (i in 0 until tw * th / 2) vuBig.put(i, (128 + (i % 13) - 6).toByte())
    val frames = 200
    val jniNs = timeNs(frames) { FennecCamera.imageFromNv21(yBig, tw, vuBig, tw, tw, th, 90).close() }
    val jniRgbNs = timeNs(frames) { FennecCamera.imageFromNv21(yBig, tw, vuBig, tw, tw, th, 90).use { it.rgb() } }
    val yArr = ByteArray(tw * th)
    val vuArr = ByteArray(tw * th / 2)
    val uniffiNs = timeNs(frames) {
        yBig.get(0, yArr)
        vuBig.get(0, vuArr)
        val frame = CameraFrame(
            FrameFormat.NV21, tw.toUInt(), th.toUInt(),
            listOf(FramePlane(yArr, tw.toUInt(), 1u), FramePlane(vuArr, tw.toUInt(), 2u)),
            90u, false, false,
        )
        Image.fromFrame(frame).close()
    }
    // Both paths give the same pixels.
    val a = FennecCamera.imageFromNv21(yBig, tw, vuBig, tw, tw, th, 90).use { it.rgb() }
    val b = Image.fromFrame(
        CameraFrame(FrameFormat.NV21, tw.toUInt(), th.toUInt(),
            listOf(FramePlane(yArr, tw.toUInt(), 1u), FramePlane(vuArr, tw.toUInt(), 2u)), 90u, false, false),
    ).use { it.rgb() }
    check(a.contentEquals(b)) { "JNI and uniffi paths disagree on a 640x480 frame" }
    println("  JNI direct buffers -> Image.fromTicket:        %8.1f us/frame".format(jniNs / 1000))
    println("  same, plus Image.rgb() back to Kotlin:         %8.1f us/frame".format(jniRgbNs / 1000))
    println("  ByteArray copy + uniffi Image.fromFrame:       %8.1f us/frame".format(uniffiNs / 1000))
    println("  ($frames frames each after 20 warm-up frames, rotation 90)")

    println("$checks checks, $failures failures")
    if (failures > 0) exitProcess(1)
}
