// Test stub, NOT the Android SDK: mirrors the public signatures of android.media.Image (API 19+)
// that toFennecImage uses, so ImageProxyExt.kt compiles and runs on a desktop JVM. Bodies are
// abstract as in the SDK; the test subclasses it with direct buffers.
package android.media;

import java.nio.ByteBuffer;

public abstract class Image implements AutoCloseable {
    protected Image() {}

    public abstract int getFormat();

    public abstract int getWidth();

    public abstract int getHeight();

    public abstract long getTimestamp();

    public abstract Plane[] getPlanes();

    @Override
    public abstract void close();

    public abstract static class Plane {
        protected Plane() {}

        public abstract int getRowStride();

        public abstract int getPixelStride();

        public abstract ByteBuffer getBuffer();
    }
}
