#!/usr/bin/env bash
# Runs fennec-camera's tests for aarch64 (NEON paths of the yuv crate) under qemu-user.
# Idempotent: installs the rustup target and the cross linker / qemu only when missing.
# Usage: scripts/test-camera-aarch64.sh [extra cargo test args]
# Env: CARGO_TARGET_DIR (default: cargo's), QEMU_CPUS (default: "max cortex-a53").
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null \
    || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
    $sudo_cmd apt-get update
    $sudo_cmd apt-get install -y --no-install-recommends \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# binfmt is not registered in the sandbox: the runner is required. Run once per CPU model:
# `max` has every extension the yuv crate may dispatch to (rdm, …), `cortex-a53` plain NEON.
for cpu in ${QEMU_CPUS:-max cortex-a53}; do
    echo "== qemu-aarch64 -cpu $cpu"
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu $cpu -L /usr/aarch64-linux-gnu"
    cargo test -p fennec-camera --target "$target" "$@"
done
