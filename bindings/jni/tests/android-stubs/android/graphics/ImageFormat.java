// Test stub, NOT the Android SDK: mirrors android.graphics.ImageFormat's constants used here
// (same names and values as the SDK).
package android.graphics;

public class ImageFormat {
    public static final int UNKNOWN = 0;
    public static final int NV21 = 0x11;
    public static final int JPEG = 0x100;
    public static final int YUV_420_888 = 0x23;

    public ImageFormat() {}
}
