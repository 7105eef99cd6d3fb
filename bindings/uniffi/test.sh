#!/usr/bin/env bash
# Proves the uniffi bindings end to end on real models:
#   Python  the generated module loads libfennec_ffi.so and runs tests/python/test_fennec.py
#   Kotlin  the generated bindings + kotlin/Flows.kt compiled with kotlinc, run on the JVM (JNA)
#           against libfennec_jni.so (the Android library: uniffi API + JNI camera layer)
#   Swift   the generated C header passes a syntax check; every function it declares is
#           exported by the built cdylib and staticlib (no Swift toolchain on Linux here)
# The expected tokens come from the Rust path (`fennec run --chat --json`); the speech tests
# compare with faster-whisper's transcripts (tests/fixtures/whisper/goldens/transcripts.json).
# Works on a fresh Debian 12 as root: installs a JDK, JNA and kotlinc (npm) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MODELS=${FENNEC_MODELS:-$HOME/.cache/fennec/models}
SMOLLM2=$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
WHISPER=$MODELS/whisper-tiny.en-f16.gguf
WHISPER_DIR=$ROOT/tests/fixtures/whisper
KOTLIN_HOME=${KOTLIN_HOME:-$HOME/.cache/fennec/kotlinc/node_modules/kotlin-compiler}
step() { echo "== $* ($SECONDS s)"; }

step "tools"
need_apt=()
command -v javac >/dev/null || need_apt+=(default-jdk-headless)
[ -f /usr/share/java/jna.jar ] || need_apt+=(libjna-java)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
if [ ! -x "$KOTLIN_HOME/bin/kotlinc" ]; then
  mkdir -p "$HOME/.cache/fennec/kotlinc"
  npm install --prefix "$HOME/.cache/fennec/kotlinc" --no-audit --no-fund kotlin-compiler@2.4.20
fi
for f in "$SMOLLM2" "$WHISPER"; do
  [ -f "$f" ] || { echo "missing $f: run scripts/fetch-models.sh" >&2; exit 1; }
done

step "build"
cargo build --workspace --all-targets # the same selection as scripts/test.sh: nothing rebuilt
LIB_FFI=$TARGET_DIR/debug/libfennec_ffi.so
LIB_JNI=$TARGET_DIR/debug/libfennec_jni.so
for lang in python kotlin swift; do
  "$TARGET_DIR/debug/uniffi-bindgen" generate --no-format "$LIB_FFI" -l "$lang" -o "$OUT/$lang" >/dev/null
done
PROMPT="What is the capital of France?"
EXPECTED=$("$TARGET_DIR/debug/fennec" run -m "$SMOLLM2" -p "$PROMPT" --chat --temp 0 -n 24 -t 2 --json)
TOKENS=$(printf '%s' "$EXPECTED" | python3 -c 'import json,sys; print(",".join(map(str, json.load(sys.stdin)["tokens"])))')
# faster-whisper's transcript of speech_us.wav (the reference the speech tests compare with).
SPEECH_US=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clips/speech_us.wav"]["faster_whisper"]["text"])' \
  "$WHISPER_DIR/goldens/transcripts.json")

step "python"
cp "$LIB_FFI" "$OUT/python/"
FENNEC_SMOLLM2=$SMOLLM2 FENNEC_EXPECTED=$EXPECTED FENNEC_VISION_DIR=$ROOT/tests/fixtures/llama4_vision \
  FENNEC_WHISPER=$WHISPER FENNEC_WHISPER_DIR=$WHISPER_DIR \
  PYTHONPATH=$OUT/python python3 bindings/uniffi/tests/python/test_fennec.py

step "swift header"
HEADER=$OUT/swift/FennecFFI.h
printf '#include "FennecFFI.h"\nint main(void) { return 0; }\n' >"$OUT/swift/check.c"
gcc -fsyntax-only -std=c99 -Wall -Wextra -Werror -D_Nullable= -D_Nonnull= -I"$OUT/swift" "$OUT/swift/check.c"
# Function declarations: `RET name(ARGS…);` for uniffi's scaffolding (uniffi_*/ffi_*).
mapfile -t declared < <(grep -oE '\b(uniffi|ffi)_fennec_ffi_[A-Za-z0-9_]+\(' "$HEADER" | tr -d '(' | sort -u)
nm -D --defined-only "$LIB_FFI" | awk '{print $3}' | sort -u >"$OUT/so.syms"
nm --defined-only "$TARGET_DIR/debug/libfennec_ffi.a" 2>/dev/null | awk '$2 == "T" {print $3}' | sort -u >"$OUT/a.syms"
missing=0
for f in "${declared[@]}"; do
  grep -qx "$f" "$OUT/so.syms" || { echo "not exported by libfennec_ffi.so: $f"; missing=1; }
  grep -qx "$f" "$OUT/a.syms" || { echo "not defined in libfennec_ffi.a: $f"; missing=1; }
done
[ $missing -eq 0 ] || exit 1
echo "${#declared[@]} declared functions, all in the .so and the .a"
[ ${#declared[@]} -gt 50 ] || { echo "too few declarations parsed from $HEADER" >&2; exit 1; }

step "kotlin"
CP=/usr/share/java/jna.jar:$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar
"$KOTLIN_HOME/bin/kotlinc" -nowarn -cp "$CP" -d "$OUT/smoke.jar" \
  "$OUT/kotlin/dev/fennec/fennec.kt" bindings/uniffi/kotlin/dev/fennec/Flows.kt \
  bindings/uniffi/tests/kotlin/SmokeTest.kt
java -Djna.library.path="$(dirname "$LIB_JNI")" -Djava.library.path="$(dirname "$LIB_JNI")" \
  -cp "$OUT/smoke.jar:$CP:$KOTLIN_HOME/lib/kotlin-stdlib.jar" SmokeTestKt "$SMOLLM2" "$TOKENS" \
  "$WHISPER" "$WHISPER_DIR/clips" "$SPEECH_US"

step "uniffi bindings: all checks passed"
