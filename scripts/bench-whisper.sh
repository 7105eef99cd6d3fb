#!/usr/bin/env bash
# Interleaved rounds of whisper.cpp's whisper-cli (greedy, no temperature fallback, flash attention on
# and off) and `fennec transcribe` on the same whisper.cpp .bin files and jfk.wav; one line per run.
# docs/performance.md ("Whisper tiny.en against whisper.cpp and CTranslate2") has the figures and the
# whisper.cpp build. Usage: WHISPER_CLI=/path/to/whisper-cli scripts/bench-whisper.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
M="${FENNEC_MODELS:-$HOME/.cache/fennec/models}"
WCLI="${WHISPER_CLI:?set WHISPER_CLI to the path of whisper-cli}"
ROUNDS="${1:-3}"
cargo build --release --quiet -p fennec-cli
FEN=target/release/fennec
for r in $(seq "$ROUNDS"); do
  for f in ggml-tiny.en.bin ggml-tiny.en-q8_0.bin; do
    for t in 1 2; do
      for fa in -fa -nfa; do
        out=$("$WCLI" -m "$M/$f" -f "$M/jfk.wav" -t "$t" -bs 1 -bo 1 -nf -nt "$fa" 2>&1)
        ms() { echo "$out" | grep -oP "$1 time =\\s+\\K[0-9.]+"; }
        echo "round $r whisper.cpp$fa $f t=$t mel_ms=$(ms mel) encode_ms=$(ms encode) decode_ms=$(ms decode)"
      done
      "$FEN" transcribe -m "$M/$f" --audio "$M/jfk.wav" -t "$t" --json | python3 -c '
import json, sys
t = json.load(sys.stdin)["times_s"]
print(sys.argv[1], " ".join(f"{k}_ms={t[k] * 1000:.0f}" for k in ("mel", "encode", "decode")))' \
        "round $r fennec $f t=$t"
    done
  done
done
