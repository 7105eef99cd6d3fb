#!/usr/bin/env bash
# Builds Fennec's device libraries with `--profile device` and lays them out under dist/:
#
#   dist/android/fennec/            an AAR / Gradle-module layout: AndroidManifest.xml, the Kotlin
#                                   (uniffi-generated + the JNI camera facade), jni/arm64-v8a/
#   dist/ios/Fennec.xcframework/    Info.plist, ios-arm64/libfennec_ffi.a + Headers/; Fennec.swift beside it
#   dist/linux-aarch64/             libfennec.so, libfennec.a, include/fennec.h (the C ABI)
#   dist/SIZES.md                   stripped sizes
#
# The Android .so is linked here with `zig cc` against a fake bionic sysroot of stub libraries:
# that is a LINK-AND-EXPORTS CHECK ONLY, NOT A RELEASE ARTIFACT (no NDK can be installed here).
# A shippable .so comes from the NDK:
#   cargo ndk -t arm64-v8a -o jniLibs build --profile device -p fennec-jni
#
# Works on a fresh Debian 12 as root and is idempotent (installs what is missing, rebuilds
# only what cargo finds stale, rewrites dist/ each run).
#
# Environment:
#   CARGO_TARGET_DIR     as usual (default: target)
#   DIST                 output folder (default: dist)
#   UNIFFI_BINDGEN       an already built uniffi-bindgen (default: built here, dev profile)
#   HOST_FFI             an already built x86_64 libfennec_ffi.so for the size table (default: built here)
#   REQUIRE_C_HEADER=0   tolerate a missing bindings/c/include/fennec.h (development only)
#   IOS_SIM=1            also build aarch64-apple-ios-sim (nightly, -Zbuild-std=std,panic_unwind)
#   SKIP_ANDROID_SO=1    skip the zig link check (the staticlib and its exports check still run)
#   PARALLEL=1           run the three cross builds at the same time (needs cores and ~3x memory)
#
# Each cross target builds in its own target folder, $CARGO_TARGET_DIR/split/<triple>, so that
# the builds never wait on one another's cargo lock and PARALLEL=1 can run them together.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=device
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=${DIST:-$ROOT/dist}
REQUIRE_C_HEADER=${REQUIRE_C_HEADER:-1}
CACHE=$HOME/.cache/fennec
start=$(date +%s)

step() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }
die() { echo "error: $*" >&2; exit 1; }
size_of() { stat -c %s "$1"; }

# ---- tools (idempotent) ----------------------------------------------------------------
step "tools"
need_apt=()
command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need_apt+=(libc6-dev-arm64-cross)
command -v readelf >/dev/null || need_apt+=(binutils)
command -v aarch64-linux-gnu-strip >/dev/null || need_apt+=(binutils-aarch64-linux-gnu)
python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v llvm-strip >/dev/null || need_apt+=(llvm)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
for t in aarch64-linux-android aarch64-apple-ios aarch64-unknown-linux-gnu; do
    if ! rustup target list --installed | grep -qx "$t"; then
        echo "rustup target add $t"
        rustup target add "$t"
    fi
done
ZIG_VENV=$CACHE/zig-venv
if ! "$ZIG_VENV/bin/python" -m ziglang version >/dev/null 2>&1; then
    echo "installing zig (PyPI ziglang) into $ZIG_VENV"
    python3 -m venv "$ZIG_VENV"
    "$ZIG_VENV/bin/pip" install -q ziglang
fi
zig() { "$ZIG_VENV/bin/python" -m ziglang "$@"; }

# Stub bionic libraries (empty; only their sonames matter) and a linker wrapper for
# aarch64-linux-android. cargo builds every crate type of a dependency, so even the fennec-jni
# staticlib build links fennec-ffi's cdylib and needs a linker. LINK CHECK ONLY.
STUBS=$CACHE/android-stub-sysroot/usr/lib
ANDROID_CC=$CACHE/zig-android-cc
mkdir -p "$STUBS"
echo '/* stub: only its soname matters */' > "$STUBS/empty.c"
for lib in c m dl log; do
    [ -f "$STUBS/lib$lib.so" ] || zig cc -target aarch64-linux-musl -shared -nostdlib \
        -Wl,-soname,lib$lib.so -o "$STUBS/lib$lib.so" "$STUBS/empty.c"
done
cat > "$ANDROID_CC.new" <<'WRAP'
#!/usr/bin/env bash
# Linker for aarch64-linux-android without an NDK (written by scripts/package.sh): zig cc
# against stub bionic libraries. A link-and-exports check only, never a release artifact.
# -lc/-lm/-ldl/-llog become the stub files (zig would try to provide a libc for -lc);
# -lunwind/-lgcc* are dropped: _Unwind_* stays undefined (the NDK links libunwind statically).
set -euo pipefail
STUBS=$HOME/.cache/fennec/android-stub-sysroot/usr/lib
args=()
for a in "$@"; do
    case "$a" in
        -lc|-lm|-ldl|-llog) args+=("$STUBS/lib${a#-l}.so") ;;
        -lunwind|-lgcc|-lgcc_s|-lgcc_eh) ;;
        *) args+=("$a") ;;
    esac
done
exec "$HOME/.cache/fennec/zig-venv/bin/python" -m ziglang cc -target aarch64-linux-android -nostdlib \
    -Wl,--allow-shlib-undefined -Wl,-z,max-page-size=16384 "${args[@]}"
WRAP
# Rewrite only when changed: the linker path is part of cargo's fingerprint, its mtime is not.
if cmp -s "$ANDROID_CC.new" "$ANDROID_CC"; then rm "$ANDROID_CC.new"; else mv "$ANDROID_CC.new" "$ANDROID_CC"; fi
chmod +x "$ANDROID_CC"

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
split() { echo "$TARGET_DIR/split/$1"; }

# The three cross builds. Android and iOS ask for the staticlib only (`cargo rustc
# --crate-type staticlib`): fennec-jni also declares a cdylib, which would need the NDK's
# linker; the staticlib needs no linker at all. fennec-c is linked with aarch64-linux-gnu-gcc.
build_android() { CARGO_TARGET_DIR=$(split aarch64-linux-android) \
    CARGO_TARGET_AARCH64_LINUX_ANDROID_LINKER=$ANDROID_CC cargo rustc --profile $PROFILE \
    --target aarch64-linux-android -p fennec-jni --lib --crate-type staticlib; }
build_ios() { CARGO_TARGET_DIR=$(split aarch64-apple-ios) cargo rustc --profile $PROFILE \
    --target aarch64-apple-ios -p fennec-ffi --lib --crate-type staticlib; }
build_linux() { CARGO_TARGET_DIR=$(split aarch64-unknown-linux-gnu) cargo build --profile $PROFILE \
    --target aarch64-unknown-linux-gnu -p fennec-c; }
if [ "${PARALLEL:-0}" = 1 ]; then
    step "cross builds in parallel: android, ios, linux-aarch64 (logs in $TARGET_DIR/split/*.log)"
    mkdir -p "$TARGET_DIR/split"
    build_android > "$TARGET_DIR/split/android.log" 2>&1 & p1=$!
    build_ios > "$TARGET_DIR/split/ios.log" 2>&1 & p2=$!
    build_linux > "$TARGET_DIR/split/linux.log" 2>&1 & p3=$!
    fail=0
    for p in $p1 $p2 $p3; do wait $p || fail=1; done
    [ $fail = 0 ] || { tail -n 20 "$TARGET_DIR"/split/*.log; die "a cross build failed"; }
fi

# ---- host library: sizes and the input of uniffi-bindgen -------------------------------
step "x86_64 libfennec_ffi.so (host, profile $PROFILE; for the size table)"
if [ -n "${HOST_FFI:-}" ]; then
    echo "using the given $HOST_FFI"
else
    cargo build --profile $PROFILE -p fennec-ffi
    HOST_FFI=$TARGET_DIR/$PROFILE/libfennec_ffi.so
fi
[ -f "$HOST_FFI" ] || die "missing $HOST_FFI"

step "uniffi-bindgen (host)"
if [ -z "${UNIFFI_BINDGEN:-}" ]; then
    cargo build -p uniffi-bindgen
    UNIFFI_BINDGEN=$TARGET_DIR/debug/uniffi-bindgen
fi
echo "using $UNIFFI_BINDGEN"

# ---- Android ---------------------------------------------------------------------------
step "aarch64-linux-android: fennec-jni staticlib"
build_android
ANDROID_A=$(split aarch64-linux-android)/aarch64-linux-android/$PROFILE/libfennec_jni.a
[ -f "$ANDROID_A" ] || die "missing $ANDROID_A"

step "exports of the Android staticlib (nm)"
nm -g --defined-only "$ANDROID_A" 2>/dev/null | awk '$2 == "T" {print $3}' | sort -u > "$TARGET_DIR/android-a-exports.txt"
a_uniffi=$(grep -c '^uniffi_fennec_' "$TARGET_DIR/android-a-exports.txt" || true)
a_java=$(grep -c '^Java_dev_fennec_' "$TARGET_DIR/android-a-exports.txt" || true)
echo "staticlib defines $a_uniffi uniffi_fennec_* and $a_java Java_dev_fennec_* functions"
[ "$a_uniffi" -gt 0 ] || die "no uniffi_fennec_* symbols in $ANDROID_A"

ANDROID_SO=""
if [ "${SKIP_ANDROID_SO:-0}" != 1 ]; then
    step "aarch64-linux-android: libfennec_jni.so via zig cc + stub bionic (LINK CHECK ONLY, NOT A RELEASE ARTIFACT)"
    LINK=$TARGET_DIR/android-link
    mkdir -p "$LINK"
    cat > "$LINK/exports.map" <<'EOF'
{
  global:
    Java_*;
    JNI_OnLoad;
    JNI_OnUnload;
    uniffi_*;
    ffi_fennec_*;
  local: *;
};
EOF
    ANDROID_SO=$LINK/libfennec_jni.so
    # The stubs are passed as files: `-lc` would make zig try to provide a libc, and it has no
    # bionic. 16 KiB pages: required on Android 15+ devices with a 16 KiB page size.
    zig cc -target aarch64-linux-android -shared -nostdlib -s \
        -o "$ANDROID_SO" \
        -Wl,--whole-archive "$ANDROID_A" -Wl,--no-whole-archive \
        -Wl,--no-as-needed "$STUBS/libc.so" "$STUBS/libm.so" "$STUBS/libdl.so" "$STUBS/liblog.so" \
        -Wl,--version-script="$LINK/exports.map" -Wl,-soname,libfennec_jni.so \
        -Wl,--gc-sections -Wl,-z,max-page-size=16384 -Wl,--allow-shlib-undefined -Wl,--undefined-version
    readelf -h "$ANDROID_SO" | grep -E 'Class|Machine|Type'
    readelf -d "$ANDROID_SO" | grep NEEDED

    step "exports and imports of libfennec_jni.so"
    readelf --dyn-syms -W "$ANDROID_SO" | awk 'NR>3 && $7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") {print $8}' \
        | sed 's/@.*//' | sort -u > "$LINK/defined.txt"
    readelf --dyn-syms -W "$ANDROID_SO" | awk 'NR>3 && $7 == "UND" && $8 != "" {print $8}' \
        | sed 's/@.*//' | sort -u > "$LINK/undefined.txt"
    so_uniffi=$(grep -c '^uniffi_fennec_' "$LINK/defined.txt" || true)
    so_java=$(grep -c '^Java_dev_fennec_' "$LINK/defined.txt" || true)
    others=$(grep -vE '^(Java_|JNI_On|uniffi_|ffi_fennec_)' "$LINK/defined.txt" || true)
    echo "exports: $so_uniffi uniffi_fennec_*, $so_java Java_dev_fennec_*"
    [ "$so_uniffi" = "$a_uniffi" ] || die "the .so exports $so_uniffi uniffi_fennec_* symbols, the staticlib defines $a_uniffi"
    [ "$so_java" = "$a_java" ] || die "the .so exports $so_java Java_dev_fennec_* symbols, the staticlib defines $a_java"
    [ -z "$others" ] || die "unexpected exports: $others"
    # Every import must come from bionic's libc/libm/libdl/liblog. Bionic is not here, so the
    # reference is glibc's aarch64 libc/libm/libdl plus the bionic-only names listed below;
    # _Unwind_* comes from the NDK's libunwind.a, which the NDK links statically.
    for f in /usr/aarch64-linux-gnu/lib/libc.so.6 /usr/aarch64-linux-gnu/lib/libm.so.6 \
             /usr/aarch64-linux-gnu/lib/libdl.so.2 /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1; do
        readelf --dyn-syms -W "$f" | awk 'NR>3 && $7 != "UND" {print $8}' | sed 's/@.*//'
    done | sort -u > "$LINK/libc-reference.txt"
    printf '%s\n' __errno __android_log_write __android_log_print __android_log_buf_write \
        __android_log_is_loggable android_set_abort_message __system_property_get \
        __sF __register_atfork __cxa_thread_atexit_impl __cxa_finalize __cxa_atexit \
        >> "$LINK/libc-reference.txt"
    foreign=$(grep -vE '^_Unwind_' "$LINK/undefined.txt" | grep -vxF -f "$LINK/libc-reference.txt" || true)
    echo "imports: $(wc -l < "$LINK/undefined.txt") symbols ($(grep -c '^_Unwind_' "$LINK/undefined.txt" || true) _Unwind_* from the NDK's static libunwind)"
    [ -z "$foreign" ] || die "imports from outside libc/libm/libdl/liblog: $foreign"
    echo "OK: libfennec_jni.so links; exports and imports as expected (link check only, not a release artifact)"
fi

# ---- iOS -------------------------------------------------------------------------------
step "aarch64-apple-ios: fennec-ffi staticlib"
build_ios
IOS_A=$(split aarch64-apple-ios)/aarch64-apple-ios/$PROFILE/libfennec_ffi.a
[ -f "$IOS_A" ] || die "missing $IOS_A"
IOS_SIM_A=""
if [ "${IOS_SIM:-0}" = 1 ]; then
    step "aarch64-apple-ios-sim: fennec-ffi staticlib (nightly, build-std with panic_unwind)"
    rustup component add rust-src --toolchain nightly >/dev/null
    CARGO_TARGET_DIR=$(split aarch64-apple-ios-sim) cargo +nightly rustc --profile $PROFILE \
        -Zbuild-std=std,panic_unwind --target aarch64-apple-ios-sim -p fennec-ffi --lib --crate-type staticlib
    IOS_SIM_A=$(split aarch64-apple-ios-sim)/aarch64-apple-ios-sim/$PROFILE/libfennec_ffi.a
fi

# ---- generated Kotlin and Swift ----------------------------------------------------------
# uniffi reads its metadata from the symbol table, which strip = "symbols" removes from the
# .so files; the static libraries keep it. Generating from the very archives that ship also
# guarantees the bindings match them.
step "uniffi-bindgen generate: Kotlin from the Android archive, Swift from the iOS archive"
GEN=$TARGET_DIR/package-gen
rm -rf "$GEN"
"$UNIFFI_BINDGEN" generate --no-format --library "$ANDROID_A" -l kotlin -o "$GEN/kotlin"
"$UNIFFI_BINDGEN" generate --no-format --library "$IOS_A" -l swift -o "$GEN/swift"
find "$GEN" -type f

# ---- aarch64 Linux (C ABI) -------------------------------------------------------------
step "aarch64-unknown-linux-gnu: fennec-c cdylib + staticlib"
build_linux
LINUX_DIR=$(split aarch64-unknown-linux-gnu)/aarch64-unknown-linux-gnu/$PROFILE
C_HEADER=$ROOT/bindings/c/include/fennec.h

# ---- dist/ -----------------------------------------------------------------------------
step "laying out $DIST"
rm -rf "$DIST"
mkdir -p "$DIST"

# Android: one folder that is both an unzipped AAR and a Gradle library module.
AND=$DIST/android/fennec
mkdir -p "$AND/src/main/kotlin" "$AND/jni/arm64-v8a"
cat > "$AND/AndroidManifest.xml" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="dev.fennec">
    <uses-sdk android:minSdkVersion="24" />
</manifest>
EOF
cp -r "$GEN/kotlin/." "$AND/src/main/kotlin/"
for dir in bindings/uniffi/kotlin bindings/jni/kotlin; do
    if [ -d "$dir" ]; then
        echo "adding the Kotlin of $dir"
        (cd "$dir" && find . -name '*.kt' -print0 | while IFS= read -r -d '' f; do
            mkdir -p "$AND/src/main/kotlin/$(dirname "$f")"
            cp "$f" "$AND/src/main/kotlin/$f"
        done)
    else
        echo "note: $dir not present (yet); its Kotlin is not in the package"
    fi
done
if [ -n "$ANDROID_SO" ]; then
    cp "$ANDROID_SO" "$AND/jni/arm64-v8a/libfennec_jni.so"
    echo "LINK CHECK ONLY: built with zig against stub bionic libraries, not for release. Replace with the NDK build:" \
        > "$AND/jni/arm64-v8a/NOT-A-RELEASE-ARTIFACT.txt"
    echo "  cargo ndk -t arm64-v8a -o jniLibs build --profile device -p fennec-jni" \
        >> "$AND/jni/arm64-v8a/NOT-A-RELEASE-ARTIFACT.txt"
fi
mkdir -p "$AND/staticlib/arm64-v8a"
cp "$ANDROID_A" "$AND/staticlib/arm64-v8a/libfennec_jni.a"
cat > "$AND/build.gradle.kts" <<'EOF'
// Drop this folder into an Android project as a library module (settings.gradle.kts:
// include(":fennec")). The native library comes from jni/ (replace it with the NDK build).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.fennec"
    compileSdk = 35
    defaultConfig { minSdk = 24 }
    sourceSets["main"].apply {
        manifest.srcFile("AndroidManifest.xml")
        java.srcDirs("src/main/kotlin")
        jniLibs.srcDirs("jni")
    }
}

dependencies {
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
}
EOF
cat > "$AND/README.md" <<'EOF'
# Fennec for Android (package `dev.fennec`, minSdk 24, arm64-v8a)

This folder is both the unpacked content of an `.aar` and a Gradle library module.

- `src/main/kotlin/` — the Kotlin API generated by uniffi from the library (`dev/fennec/fennec.kt`),
  the `Flow` extension (`Flows.kt`) and, when present, the JNI camera facade (`dev/fennec/camera/`).
- `jni/arm64-v8a/libfennec_jni.so` — **built here with `zig cc` against stub bionic libraries as a
  link-and-exports check; it is not a release artifact.** Build the real one with the NDK:

      cargo install cargo-ndk
      rustup target add aarch64-linux-android
      cargo ndk -t arm64-v8a -o jniLibs build --profile device -p fennec-jni

  (NDK r27+: keep 16 KiB page alignment, `-Wl,-z,max-page-size=16384`, which r28 does by default.)
- `staticlib/arm64-v8a/libfennec_jni.a` — the same code as a static library, for apps that link
  their own JNI library.

## As a Gradle module
Copy the folder into your project, `include(":fennec")` in `settings.gradle.kts`, and depend on it
(`implementation(project(":fennec"))`). `build.gradle.kts` here declares the two runtime
dependencies: JNA as an AAR (`net.java.dev.jna:jna:5.x@aar`, it carries JNA's own native
libraries) and `kotlinx-coroutines-android` (for the `Flow` extension).

## As an .aar
An `.aar` is a zip holding `AndroidManifest.xml`, `classes.jar` and `jni/<abi>/*.so`. Compile the
Kotlin into `classes.jar` (any Android library module does that), then:

    cd dist/android/fennec && zip -r ../fennec.aar AndroidManifest.xml classes.jar jni

and add the same two dependencies (JNA `@aar`, kotlinx-coroutines) to the app, since a local
`.aar` carries no dependency metadata.
EOF

# iOS: the xcframework layout xcodebuild would write.
IOS=$DIST/ios
XCF=$IOS/Fennec.xcframework
mkdir -p "$XCF/ios-arm64/Headers"
cp "$IOS_A" "$XCF/ios-arm64/libfennec_ffi.a"
cp "$GEN/swift/FennecFFI.h" "$XCF/ios-arm64/Headers/FennecFFI.h"
# Inside a framework's Headers/ the module map must be called module.modulemap.
cp "$GEN/swift/FennecFFI.modulemap" "$XCF/ios-arm64/Headers/module.modulemap"
cp "$GEN/swift/Fennec.swift" "$IOS/Fennec.swift"
[ -f bindings/uniffi/swift/Fennec+Async.swift ] && cp bindings/uniffi/swift/Fennec+Async.swift "$IOS/"
sim_entry=""
if [ -n "$IOS_SIM_A" ]; then
    mkdir -p "$XCF/ios-arm64-simulator/Headers"
    cp "$IOS_SIM_A" "$XCF/ios-arm64-simulator/libfennec_ffi.a"
    cp "$XCF/ios-arm64/Headers/"* "$XCF/ios-arm64-simulator/Headers/"
    sim_entry='
		<dict>
			<key>HeadersPath</key>
			<string>Headers</string>
			<key>LibraryIdentifier</key>
			<string>ios-arm64-simulator</string>
			<key>LibraryPath</key>
			<string>libfennec_ffi.a</string>
			<key>SupportedArchitectures</key>
			<array>
				<string>arm64</string>
			</array>
			<key>SupportedPlatform</key>
			<string>ios</string>
			<key>SupportedPlatformVariant</key>
			<string>simulator</string>
		</dict>'
fi
cat > "$XCF/Info.plist" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>AvailableLibraries</key>
	<array>
		<dict>
			<key>HeadersPath</key>
			<string>Headers</string>
			<key>LibraryIdentifier</key>
			<string>ios-arm64</string>
			<key>LibraryPath</key>
			<string>libfennec_ffi.a</string>
			<key>SupportedArchitectures</key>
			<array>
				<string>arm64</string>
			</array>
			<key>SupportedPlatform</key>
			<string>ios</string>
		</dict>$sim_entry
	</array>
	<key>CFBundlePackageType</key>
	<string>XFWK</string>
	<key>XCFrameworkFormatVersion</key>
	<string>1.0</string>
</dict>
</plist>
EOF
cat > "$IOS/README.md" <<'EOF'
# Fennec for iOS

- `Fennec.xcframework/` — `ios-arm64/libfennec_ffi.a` (device, arm64) with `Headers/FennecFFI.h`
  and `Headers/module.modulemap` (the C module `FennecFFI`), described by `Info.plist`.
- `Fennec.swift` — the Swift API generated by uniffi (`import FennecFFI` inside), and
  `Fennec+Async.swift`; add both to the app or to a Swift package target that depends on the
  xcframework.

The layout is written by `scripts/package.sh` on Linux. On macOS the same xcframework (plus
the simulator slice) is made by Apple's tool:

    cargo build --profile device --target aarch64-apple-ios     -p fennec-ffi
    cargo build --profile device --target aarch64-apple-ios-sim -p fennec-ffi   # rustup target add aarch64-apple-ios-sim
    mkdir -p headers && cp FennecFFI.h headers/ && cp FennecFFI.modulemap headers/module.modulemap
    xcodebuild -create-xcframework \
        -library target/aarch64-apple-ios/device/libfennec_ffi.a     -headers headers \
        -library target/aarch64-apple-ios-sim/device/libfennec_ffi.a -headers headers \
        -output Fennec.xcframework

The simulator slice can also be built on Linux with nightly (`IOS_SIM=1 scripts/package.sh`):
`cargo +nightly build -Zbuild-std=std,panic_unwind --target aarch64-apple-ios-sim` — it must be
`panic_unwind`, not `panic_abort`, because the device profile unwinds.
EOF

# aarch64 Linux: the C ABI.
LNX=$DIST/linux-aarch64
mkdir -p "$LNX/include"
cp "$LINUX_DIR/libfennec.so" "$LNX/libfennec.so"
cp "$LINUX_DIR/libfennec.a" "$LNX/libfennec.a"
if [ -f "$C_HEADER" ]; then
    cp "$C_HEADER" "$LNX/include/fennec.h"
elif [ "$REQUIRE_C_HEADER" = 1 ]; then
    die "missing $C_HEADER (set REQUIRE_C_HEADER=0 only while the C ABI is being written)"
else
    echo "WARNING: $C_HEADER missing; dist/linux-aarch64/include/ is empty (REQUIRE_C_HEADER=0)"
fi

# ---- sizes -----------------------------------------------------------------------------
step "sizes"
# Static archives are not stripped by the profile; measure them after `strip --strip-debug`
# (what a final link keeps is a subset anyway).
stripped_a() {
    local tmp=$TARGET_DIR/size-tmp.a
    cp "$1" "$tmp"
    "$2" --strip-debug "$tmp" 2>/dev/null || true
    size_of "$tmp"
    rm -f "$tmp"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
{
    echo "# Fennec library sizes (profile \`$PROFILE\`, $(git rev-parse --short HEAD), $(rustc --version | cut -d' ' -f2))"
    echo
    echo "Written by scripts/package.sh. Shared libraries are stripped by the profile (strip = \"symbols\");"
    echo "static archives are measured after \`strip --strip-debug\`."
    echo
    echo "| artifact | target | bytes | MiB |"
    echo "|---|---|---:|---:|"
    row() { echo "| $1 | $2 | $3 | $(mib "$3") |"; }
    if [ -n "$ANDROID_SO" ]; then
        row "libfennec_jni.so (zig link check, not a release artifact)" aarch64-linux-android "$(size_of "$ANDROID_SO")"
    fi
    row libfennec_jni.a aarch64-linux-android "$(stripped_a "$ANDROID_A" llvm-strip)"
    row libfennec_ffi.a aarch64-apple-ios "$(stripped_a "$IOS_A" llvm-strip)"
    [ -n "$IOS_SIM_A" ] && row libfennec_ffi.a aarch64-apple-ios-sim "$(stripped_a "$IOS_SIM_A" llvm-strip)"
    row libfennec.so aarch64-unknown-linux-gnu "$(size_of "$LNX/libfennec.so")"
    row libfennec.a aarch64-unknown-linux-gnu "$(stripped_a "$LNX/libfennec.a" aarch64-linux-gnu-strip)"
    row libfennec_ffi.so x86_64-unknown-linux-gnu "$(size_of "$HOST_FFI")"
} > "$DIST/SIZES.md"
cat "$DIST/SIZES.md"

step "done in $(( $(date +%s) - start ))s"
find "$DIST" -type f | sort
