#!/usr/bin/env bash
# Proves the C ABI (bindings/c): builds fennec-c, runs its Rust tests (API, header
# freshness, the C example against Session::chat token for token), compiles
# examples/generate.c with gcc -std=c99 -Wall -Wextra -Werror against the staticlib and the
# cdylib, runs it under valgrind, cross-builds and runs it for aarch64 under qemu (same greedy
# tokens as x86), drives a generation through bindgen's declarations of the header, runs
# tests/speech.c (Whisper transcription and a pushed-PCM speech stream against the goldens), and
# checks the header compiles alone and that every function it declares is exported.
# Works on a fresh Debian 12 as root (installs what is missing). Exits non-zero on failure.
#
# Environment: CARGO_TARGET_DIR (default target/), FENNEC_MODELS, N_TOKENS (default 12),
# QEMU_TOKENS (default 6),
# SKIP_AARCH64=1 / SKIP_VALGRIND=1 / SKIP_BINDGEN=1 / SKIP_SPEECH=1 to leave a step out.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
N_TOKENS=${N_TOKENS:-12}
QEMU_TOKENS=${QEMU_TOKENS:-6} # at most N_TOKENS
MODEL=${FENNEC_MODELS:-$HOME/.cache/fennec/models}/SmolLM2-135M-Instruct.Q4_1.gguf
WHISPER=${FENNEC_MODELS:-$HOME/.cache/fennec/models}/whisper-tiny.en-f16.gguf
WHISPER_DIR=$ROOT/tests/fixtures/whisper
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
CFLAGS=(-std=c99 -Wall -Wextra -Werror -O1 -I bindings/c/include)
LIBS=(-lpthread -ldl -lm)
START=$(date +%s)
TIMES=()

step() { # step NAME COMMAND...: runs a step, records its wall time
    local name=$1
    shift
    echo
    echo "==== $name"
    local t0
    t0=$(date +%s.%N)
    "$@"
    TIMES+=("$(printf '%-44s %6.1f s' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)")")
}

tokens_of() { sed -n 's/^FENNEC_TOKENS//p' "$1"; }

# ---- tools (idempotent) ---------------------------------------------------------------
install_tools() {
    local need=()
    command -v gcc >/dev/null || need+=(gcc libc6-dev)
    command -v bc >/dev/null || need+=(bc)
    command -v valgrind >/dev/null || need+=(valgrind)
    command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
    [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need+=(libc6-dev-arm64-cross)
    command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
    # libclang itself (bindgen loads it), not libclang-cpp, which other LLVM packages bring.
    compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null ||
        compgen -G '/usr/lib/*/libclang-[0-9]*.so*' >/dev/null || need+=(libclang-dev)
    if [ ${#need[@]} -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
    fi
    rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
        rustup target add aarch64-unknown-linux-gnu
    [ -f "$MODEL" ] && [ -f "$WHISPER" ] || scripts/fetch-models.sh
}
command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc; }
step "tools" install_tools

LIB=$CARGO_TARGET_DIR/debug

# ---- 1. build + Rust tests ---------------------------------------------------------------
# Always the whole workspace, all targets: the selection scripts/test.sh builds, so that cargo
# resolves the same features and rebuilds nothing (`-p fennec-c` alone would resolve shared
# dependencies with fewer features and rebuild ~40 crates, fennec-core among them).
step "cargo build --workspace --all-targets" cargo build --workspace --all-targets
# scripts/test.sh has just run these in its test stage.
[ "${FENNEC_WORKSPACE_TESTED:-0}" = 1 ] ||
    step "cargo test: fennec-c's API, header and C-vs-Rust tests" \
        cargo test --workspace --test api --test header --test c_program

# ---- 2. the C example against the staticlib and the cdylib -----------------------------------
run_static() {
    gcc "${CFLAGS[@]}" bindings/c/examples/generate.c "$LIB/libfennec.a" "${LIBS[@]}" -o "$OUT/generate"
    "$OUT/generate" "$MODEL" "$N_TOKENS" 2 | tee "$OUT/static.txt"
    grep -q FENNEC_OK_ALL "$OUT/static.txt"
}
run_shared() {
    gcc "${CFLAGS[@]}" bindings/c/examples/generate.c -L "$LIB" -lfennec -Wl,-rpath,"$LIB" \
        "${LIBS[@]}" -o "$OUT/generate-so"
    ldd "$OUT/generate-so" | grep -q "$LIB/libfennec.so"
    "$OUT/generate-so" "$MODEL" "$N_TOKENS" 2 >"$OUT/shared.txt"
    grep -q FENNEC_OK_ALL "$OUT/shared.txt"
    [ "$(tokens_of "$OUT/static.txt")" = "$(tokens_of "$OUT/shared.txt")" ] ||
        { echo "cdylib tokens differ from staticlib" >&2; return 1; }
    echo "cdylib: same tokens:$(tokens_of "$OUT/shared.txt")"
}
step "gcc + run (staticlib)" run_static
step "gcc + run (cdylib)" run_shared

# ---- 3. valgrind ----------------------------------------------------------------------
run_valgrind() {
    # What must be clean: invalid reads/writes, frees, definite and indirect leaks. Undefined-
    # value tracking stays off: in safe Rust it flags LLVM's speculative reads of an enum's
    # unused payload (e.g. KvWindow::Full's absent chunk size in attention), which are not bugs.
    valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
        --undef-value-errors=no --quiet "$OUT/generate" "$MODEL" 3 1 quick >"$OUT/valgrind.txt"
    grep -q FENNEC_OK_ALL "$OUT/valgrind.txt"
    echo "valgrind: no errors, no definite or indirect leaks"
}
[ "${SKIP_VALGRIND:-0}" = 1 ] || step "valgrind (3 tokens, 1 thread)" run_valgrind

# ---- 4. aarch64 under qemu ---------------------------------------------------------------
run_aarch64() {
    (
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
        export CARGO_PROFILE_DEV_OPT_LEVEL=${CARGO_PROFILE_DEV_OPT_LEVEL:-1}
        export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}
        # The selection scripts/test-aarch64.sh builds (same features: nothing rebuilt).
        cargo build -p fennec-quant -p fennec-camera -p fennec-c --lib --tests \
            --target aarch64-unknown-linux-gnu
    )
    aarch64-linux-gnu-gcc "${CFLAGS[@]}" bindings/c/examples/generate.c \
        "$CARGO_TARGET_DIR/aarch64-unknown-linux-gnu/debug/libfennec.a" "${LIBS[@]}" \
        -o "$OUT/generate-aarch64"
    qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu "$OUT/generate-aarch64" "$MODEL" \
        "$QEMU_TOKENS" 2 quick >"$OUT/aarch64.txt"
    grep -q FENNEC_OK_ALL "$OUT/aarch64.txt"
    # Greedy: the first QEMU_TOKENS tokens of the x86 reply.
    local x86
    x86=$(tokens_of "$OUT/static.txt" | tr ' ' '\n' | grep . | head -n "$QEMU_TOKENS" | tr '\n' ' ')
    [ "$x86" = "$(tokens_of "$OUT/aarch64.txt" | sed 's/^ //') " ] || {
        echo "aarch64 tokens differ: x86 $x86 vs aarch64$(tokens_of "$OUT/aarch64.txt")" >&2
        return 1
    }
    echo "aarch64 (qemu -cpu max): same tokens:$(tokens_of "$OUT/aarch64.txt")"
}
[ "${SKIP_AARCH64:-0}" = 1 ] || step "aarch64: cross-build + qemu run" run_aarch64

# ---- 5. bindgen ----------------------------------------------------------------------
[ "${SKIP_BINDGEN:-0}" = 1 ] ||
    step "bindgen-check (bindgen + generation)" \
        env -u RUSTC_WORKSPACE_WRAPPER -u RUSTFLAGS FENNEC_C_LIB_DIR="$LIB" FENNEC_SMOLLM2="$MODEL" \
            cargo test --manifest-path bindings/c/bindgen-check/Cargo.toml

# ---- 6. speech to text from C ------------------------------------------------------------
# tests/speech.c against the staticlib: speech_us.wav must transcribe to faster-whisper's text
# (the golden), two_sentences.wav pushed in 10 ms chunks must give the two sentences (allowing
# one word to differ: a sentence cut alone is not the clip the golden transcribes).
run_speech() {
    gcc "${CFLAGS[@]}" bindings/c/tests/speech.c "$LIB/libfennec.a" "${LIBS[@]}" -o "$OUT/speech"
    local golden
    golden=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clips/speech_us.wav"]["faster_whisper"]["text"])' \
        "$WHISPER_DIR/goldens/transcripts.json")
    "$OUT/speech" "$WHISPER" "$WHISPER_DIR/clips" "$golden" | tee "$OUT/speech.txt"
    grep -q FENNEC_SPEECH_OK "$OUT/speech.txt"
    python3 - "$OUT/speech.txt" <<'PY'
import sys
want = ["Turn off the lights.", "What will the weather be like tomorrow morning?"]
heard = [l.split(" ", 3)[3] for l in open(sys.argv[1]) if l.startswith("FENNEC_HEARD ")]
assert len(heard) == 4, heard  # the clip twice: i16 chunks, then f32 after a reset
words = lambda t: [w.strip(".,?!").lower() for w in t.split()]
for got, sentence in zip(heard, want + want):
    g, w = words(got), words(sentence)
    assert len(g) == len(w) and sum(a != b for a, b in zip(g, w)) <= 1, (got, sentence)
print("speech: golden text, two utterances per pass, error codes as documented")
PY
}
[ "${SKIP_SPEECH:-0}" = 1 ] || step "speech: tests/speech.c (Whisper through the C ABI)" run_speech

# ---- 7. header alone + exported symbols --------------------------------------------------
check_header() {
    gcc -fsyntax-only -std=c99 -Wall -Wextra -Werror -pedantic -x c bindings/c/include/fennec.h
    mapfile -t fns < <(grep -oE '\bfennec_[a-z0-9_]+\(' bindings/c/include/fennec.h | tr -d '(' | sort -u)
    [ ${#fns[@]} -gt 20 ] || { echo "only ${#fns[@]} functions found in the header" >&2; return 1; }
    local so_syms a_syms missing=0
    so_syms=$(nm -D --defined-only "$LIB/libfennec.so" | awk '{print $3}')
    a_syms=$(nm --defined-only "$LIB/libfennec.a" 2>/dev/null | awk '$2 == "T" {print $3}')
    for f in "${fns[@]}"; do
        grep -qx "$f" <<<"$so_syms" || { echo "$f not exported by libfennec.so" >&2; missing=1; }
        grep -qx "$f" <<<"$a_syms" || { echo "$f not defined in libfennec.a" >&2; missing=1; }
    done
    [ $missing = 0 ]
    echo "header compiles alone; all ${#fns[@]} functions exported by the .so and the .a"
}
step "header syntax + exported symbols" check_header

echo
echo "==== timings"
printf '%s\n' "${TIMES[@]}"
echo "total $(($(date +%s) - START)) s"
echo "bindings/c/test.sh: all passed"
