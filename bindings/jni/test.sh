#!/usr/bin/env bash
# Proves the Android JNI camera layer end to end on a desktop JVM:
#   1. builds libfennec_jni.so (dev profile) and generates the uniffi Kotlin bindings from it;
#   2. compiles the Android SDK stubs (javac), then with kotlinc: the generated bindings, the
#      FennecCamera facade, the android.media.Image extension and tests/kotlin/CameraTest.kt;
#   3. runs the test on the JVM: JNA (uniffi) and System.loadLibrary (JNI) load the same .so.
# Prints timings; exits non-zero on failure. Works on a fresh Debian 12 as root: installs a
# JDK, JNA and kotlinc (npm, cached in ~/.cache/fennec/kotlinc) only when missing.
# PROFILE=release builds the library optimized (the timings in the dev profile are dominated
# by unoptimized workspace crates; dependencies like `yuv` are optimized in both).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
KOTLIN_HOME=${KOTLIN_HOME:-$HOME/.cache/fennec/kotlinc/node_modules/kotlin-compiler}
JNI=bindings/jni
step() { echo "== $* (${SECONDS}s)"; }

step "tools"
need_apt=()
command -v javac >/dev/null || need_apt+=(default-jdk-headless)
[ -f /usr/share/java/jna.jar ] || need_apt+=(libjna-java)
if [ ! -x "$KOTLIN_HOME/bin/kotlinc" ] && [ -x /work/kotlinc/node_modules/kotlin-compiler/bin/kotlinc ]; then
  KOTLIN_HOME=/work/kotlinc/node_modules/kotlin-compiler
fi
if [ ! -x "$KOTLIN_HOME/bin/kotlinc" ]; then command -v npm >/dev/null || need_apt+=(npm); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
if [ ! -x "$KOTLIN_HOME/bin/kotlinc" ]; then
  mkdir -p "$HOME/.cache/fennec/kotlinc"
  npm install --prefix "$HOME/.cache/fennec/kotlinc" --no-audit --no-fund kotlin-compiler@2.4.20
  KOTLIN_HOME=$HOME/.cache/fennec/kotlinc/node_modules/kotlin-compiler
fi

PROFILE=${PROFILE:-dev}
step "build libfennec_jni.so ($PROFILE) + uniffi-bindgen"
cargo build --workspace --all-targets # the same selection as scripts/test.sh: nothing rebuilt
if [ "$PROFILE" = dev ]; then
  LIB=$TARGET_DIR/debug/libfennec_jni.so
else
  cargo build -p fennec-jni --lib --profile "$PROFILE"
  LIB=$TARGET_DIR/$PROFILE/libfennec_jni.so
fi
EXPORTS=$(nm -D --defined-only "$LIB")
for sym in nativeYuv420 nativeNv21 nativeDebugPanic; do
  grep -q "Java_dev_fennec_camera_FennecCamera_$sym\$" <<<"$EXPORTS" ||
    { echo "libfennec_jni.so does not export Java_dev_fennec_camera_FennecCamera_$sym" >&2; exit 1; }
done
"$TARGET_DIR/debug/uniffi-bindgen" generate --no-format "$LIB" -l kotlin -o "$OUT/gen" >/dev/null
# Only the library's own copy is loaded: JNA and System.loadLibrary both get this directory.
mkdir -p "$OUT/lib" && cp "$LIB" "$OUT/lib/"

step "compile (javac stubs, kotlinc)"
STDLIB=$KOTLIN_HOME/lib/kotlin-stdlib.jar
javac -d "$OUT/stubs" $(find $JNI/tests/android-stubs -name '*.java')
"$KOTLIN_HOME/bin/kotlinc" -nowarn -cp "/usr/share/java/jna.jar:$OUT/stubs" -d "$OUT/test.jar" \
  "$OUT/gen/dev/fennec/fennec.kt" \
  $JNI/kotlin/dev/fennec/camera/FennecCamera.kt \
  $JNI/kotlin-android/dev/fennec/camera/ImageProxyExt.kt \
  $JNI/tests/kotlin/CameraTest.kt

step "run"
RUST_BACKTRACE=0 java -Djna.library.path="$OUT/lib" -Djava.library.path="$OUT/lib" \
  -cp "$OUT/test.jar:$OUT/stubs:/usr/share/java/jna.jar:$STDLIB" CameraTestKt

step "jni bindings: all checks passed"
