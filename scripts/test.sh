#!/usr/bin/env bash
# Everything CI runs, on a fresh Debian machine or a developer's: installs what it needs
# (Rust components, nightly + cargo-fuzz, ALSA's headers, a Python venv with gguf-py, cross tools for the
# aarch64 run, a JDK, JNA, kotlinc and valgrind for the bindings), fetches the test models,
# then runs every check and prints "N passed, N failed" (tests, plus one per failed stage) as
# its last line.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOGS=$(mktemp -d)
export CARGO_TERM_COLOR=never
# Line tables are enough for test backtraces; full debug info makes every cdylib of the
# bindings a 200 MB link.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
# A one-off build: incremental state only costs disk and time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export FENNEC_MODELS="${FENNEC_MODELS:-$HOME/.cache/fennec/models}"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" # per target; four targets
# Property tests explore new random cases on developers' machines; CI replays a fixed seed
# so a run is reproducible (override to explore).
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261127}"

passed=0
failed=0
failed_stages=()

count_tests() { # sum cargo's "test result:" lines of a log
  local p f
  p=$(grep -hoE 'test result: [A-Za-z]+\. [0-9]+ passed' "$1" | awk '{s+=$4} END {print s+0}')
  f=$(grep -hoE '[0-9]+ failed;' "$1" | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p))
  failed=$((failed + f))
}

stage() { # name command...: runs, logs, records a failed stage
  local name=$1
  shift
  echo "=== $name"
  local start=$SECONDS
  "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  count_tests "$LOGS/$name.log"
  if [ $rc -ne 0 ]; then
    tail -n 60 "$LOGS/$name.log"
    echo "=== $name FAILED (exit $rc, $((SECONDS - start)) s)"
    failed_stages+=("$name")
  else
    echo "=== $name ok ($((SECONDS - start)) s)"
  fi
  return $rc
}

setup_rust() {
  rustup show active-toolchain # installs the pinned toolchain (rust-toolchain.toml) if absent
  rustup component add rustfmt clippy
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
}

setup_apt() { # system packages: ALSA for microphone capture, make and g++ for whisper.cpp's quantize, lavapipe
  local need=()
  pkg-config --exists alsa 2>/dev/null || need+=(libasound2-dev pkg-config)
  command -v aplay >/dev/null || need+=(alsa-utils) # ALSA's file plugin feeds capture tests
  command -v make >/dev/null || need+=(make)    # whisper.cpp's quantize makes the quantized .bin fixtures
  command -v g++ >/dev/null || need+=(g++)
  # Mesa's lavapipe: a Vulkan driver on the CPU, so the GPU kernels run (and must pass) here.
  ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers libvulkan1)
  if [ ${#need[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
}

setup_python() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check gguf==0.19.0 numpy
}

fuzz_target() { # name: runs one fuzz target for $FUZZ_SECONDS on a copy of its committed seeds
  local corpus
  corpus=$(mktemp -d)
  cp "fuzz/corpus/$1"/* "$corpus/"
  # cargo-fuzz sets its own flags, on nightly: neither the stable clippy wrapper nor -D warnings.
  env -u RUSTC_WORKSPACE_WRAPPER -u RUSTFLAGS cargo +nightly fuzz run "$1" "$corpus" -- \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10
}

stage setup-rust setup_rust
stage setup-apt setup_apt
stage setup-python setup_python
export FENNEC_PYTHON="$ROOT/.venv/bin/python"
stage fetch-models env FENNEC_PYTHON="$FENNEC_PYTHON" scripts/fetch-models.sh
stage fmt cargo fmt --all -- --check
# Clippy runs as the compiler of the workspace's own crates (what `cargo clippy` does, but
# with code generation), so the lints cost no second compilation of the dependencies; every
# warning, rustc's or clippy's, fails the build. Every host cargo call below inherits both
# variables, so they all share one build (the variables are part of cargo's fingerprints).
export RUSTC_WORKSPACE_WRAPPER="${RUSTC_WORKSPACE_WRAPPER-clippy-driver}"
export RUSTFLAGS="${RUSTFLAGS--D warnings}"
# One build of everything (libraries with their cdylib/staticlib, binaries, tests, benches,
# examples). Every later cargo call on the host uses this same selection (--workspace
# --all-targets, or `cargo test --workspace`, which resolves features identically), so
# nothing is compiled twice: selecting packages with -p resolves shared dependencies with
# other features and rebuilds them.
stage build+clippy cargo build --workspace --all-targets --locked
# The GPU tests fail rather than skip when they find no adapter: lavapipe is installed above.
export REQUIRE_GPU="${REQUIRE_GPU:-1}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
stage test cargo test --workspace --no-fail-fast
export FENNEC_WORKSPACE_TESTED=1
if [ -x scripts/test-aarch64.sh ]; then
  stage test-aarch64 scripts/test-aarch64.sh
fi
# The bindings, each proven from its own language (Python, Kotlin/JVM, Java/JNI, C under
# gcc, valgrind and qemu-aarch64, a bindgen-generated Rust client), and the device targets.
for binding in uniffi jni c; do
  stage "bindings-$binding" "bindings/$binding/test.sh"
done
stage check-targets scripts/check-targets.sh
for target in gguf_parse model_load session_restore mmproj_load; do
  stage "fuzz-$target" fuzz_target "$target"
done

failed=$((failed + ${#failed_stages[@]}))
echo
[ ${#failed_stages[@]} -gt 0 ] && echo "failed stages: ${failed_stages[*]}"
echo "logs in $LOGS"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
