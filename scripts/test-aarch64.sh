#!/usr/bin/env bash
# Cross-tests fennec-quant (our NEON kernels) and fennec-camera (the yuv crate's NEON paths)
# for aarch64 under qemu-user, once per emulated CPU model, so that every NEON dispatch
# branch runs:
#   max          dotprod + i8mm  (levels neon, dotprod, i8mm)
#   neoverse-n1  dotprod only    (levels neon, dotprod)
#   cortex-a53   neither         (level neon)
# The test binaries are built once; each is then run under each CPU model. Exits non-zero on
# any failure. Works on a fresh Debian 12 machine as root (installs what is missing).
#
# Environment:
#   CPUS="max cortex-a53"   the CPU models to run (default: max neoverse-n1 cortex-a53)
#   CARGO_TARGET_DIR        as usual
#   TEST_ARGS               extra arguments for the test binaries (e.g. a name filter)
set -euo pipefail

cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu
CPUS=${CPUS:-"max neoverse-n1 cortex-a53"}
start=$(date +%s)

# ---- toolchain (idempotent) ------------------------------------------------------------
need_apt=()
command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu)
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || need_apt+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need_apt+=(qemu-user)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    echo "== rustup target add $TARGET"
    rustup target add "$TARGET"
fi

# ---- build once ------------------------------------------------------------------------
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# Debug assertions and overflow checks stay on; optimise so qemu runs stay short.
export CARGO_PROFILE_DEV_OPT_LEVEL=${CARGO_PROFILE_DEV_OPT_LEVEL:-1}
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}
export RUST_BACKTRACE=${RUST_BACKTRACE:-0}

echo "== building fennec-quant and fennec-camera tests (and fennec-c) for $TARGET"
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
# fennec-c is in the selection only so that bindings/c/test.sh's aarch64 build of its
# staticlib (same packages, same features) reuses this build; its tests are not run here.
cargo test -p fennec-quant -p fennec-camera -p fennec-c --target "$TARGET" --no-run \
    --message-format=json-render-diagnostics >"$build_log"
# Test executables and their crate directories from cargo's JSON messages (no jq/python).
mapfile -t bins < <(
    grep '"reason":"compiler-artifact"' "$build_log" | grep '"test":true' |
        sed -n 's/.*"manifest_path":"\([^"]*\)\/Cargo.toml".*"executable":"\([^"]*\)".*/\1 \2/p' |
        grep -v '/bindings/c '
)
if [ ${#bins[@]} -eq 0 ]; then
    echo "no test binaries found" >&2
    exit 1
fi
echo "== ${#bins[@]} test binaries built in $(($(date +%s) - start)) s"

# ---- run under each CPU model -------------------------------------------------------------
expect_levels() {
    case "$1" in
        max) echo neon,dotprod,i8mm ;;
        neoverse-n1) echo neon,dotprod ;;
        cortex-a53) echo neon ;;
        *) echo "" ;;
    esac
}

failed=()
for cpu in $CPUS; do
    t0=$(date +%s)
    echo
    echo "==================== qemu-aarch64 -cpu $cpu ===================="
    expected=$(expect_levels "$cpu")
    for entry in "${bins[@]}"; do
        dir=${entry%% *}
        bin=${entry#* }
        name=$(basename "$bin")
        echo "-- [cpu=$cpu] $name"
        # Run from the crate directory, as `cargo test` does (fixtures are relative to it).
        # shellcheck disable=SC2086
        if ! (cd "$dir" && FENNEC_EXPECT_LEVELS="$expected" \
            qemu-aarch64 -cpu "$cpu" -L "$SYSROOT" "$bin" -q ${TEST_ARGS:-}); then
            failed+=("$cpu:$name")
        fi
    done
    echo "== cpu=$cpu done in $(($(date +%s) - t0)) s"
done

echo
echo "== total $(($(date +%s) - start)) s; cpu models: $CPUS"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "all passed"
