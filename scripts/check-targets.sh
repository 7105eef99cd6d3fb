#!/usr/bin/env bash
# CI-cheap cross-compilation check: `cargo check` (no codegen, no linking, no NDK or Xcode) of
#   fennec-jni for aarch64-linux-android  (the Android .so: uniffi API + JNI layer)
#   fennec-ffi for aarch64-apple-ios      (the iOS static library)
#   fennec-gpu for both                   (wgpu on Vulkan and on Metal)
# so that code that does not compile for a phone target fails CI without full device builds.
# Installs the rustup targets if they are missing. Exits non-zero on any error.
#
# Environment: CARGO_TARGET_DIR as usual; PROFILE (default dev) is passed to cargo check.
set -euo pipefail

cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-dev}
start=$(date +%s)
step() { echo "== [$(( $(date +%s) - start ))s] $*"; }

for t in aarch64-linux-android aarch64-apple-ios; do
    if ! rustup target list --installed | grep -qx "$t"; then
        step "rustup target add $t"
        rustup target add "$t"
    fi
done

step "cargo check -p fennec-jni --target aarch64-linux-android"
cargo check --profile "$PROFILE" --locked -p fennec-jni --target aarch64-linux-android

step "cargo check -p fennec-ffi --target aarch64-apple-ios"
cargo check --profile "$PROFILE" --locked -p fennec-ffi --target aarch64-apple-ios

for t in aarch64-linux-android aarch64-apple-ios; do
    step "cargo check -p fennec-gpu --target $t"
    cargo check --profile "$PROFILE" --locked -p fennec-gpu --target "$t"
done

step "all targets check (${PROFILE}) in $(( $(date +%s) - start ))s"
