#!/usr/bin/env bash
# Fennec against llama.cpp on the same GGUF file, threads and machine, interleaved: each round
# runs `fennec bench` once and `llama-bench` once (each with its own warm-up), so drift in the
# machine (turbo, page cache, a noisy neighbour) hits both alike. Prints one line per round
# and a summary with medians and the ratio fennec / llama.cpp for prompt processing (pp) and
# generation (tg), plus peak RSS; `--json FILE` also writes the raw numbers.
#
#   scripts/bench-vs-llamacpp.sh -m MODEL [-t 2] [-p 512] [-n 128] [-r 5] \
#       [--llama-bench PATH] [--llama-args "--repack 0"] [--fennec PATH] [--json FILE]
#
# llama-bench: built from the llama.cpp that the PyPI sdist of llama-cpp-python vendors (see
# docs/performance.md for the exact build); PATH defaults to $LLAMA_BENCH, then to
# llama-bench on $PATH. Fennec: target/release/fennec, built here unless --fennec is given.
set -euo pipefail
cd "$(dirname "$0")/.."

model="" threads=2 n_prompt=512 n_gen=128 rounds=5 json_out=""
llama_bench=${LLAMA_BENCH:-llama-bench} llama_args="" fennec=""
while [ $# -gt 0 ]; do
    case "$1" in
        -m) model=$2; shift 2 ;;
        -t) threads=$2; shift 2 ;;
        -p) n_prompt=$2; shift 2 ;;
        -n) n_gen=$2; shift 2 ;;
        -r) rounds=$2; shift 2 ;;
        --llama-bench) llama_bench=$2; shift 2 ;;
        --llama-args) llama_args=$2; shift 2 ;;
        --fennec) fennec=$2; shift 2 ;;
        --json) json_out=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -f "$model" ] || { echo "no model file: '$model' (-m)" >&2; exit 2; }
command -v "$llama_bench" >/dev/null || { echo "llama-bench not found: $llama_bench" >&2; exit 2; }
if [ -z "$fennec" ]; then
    cargo build --release --quiet -p fennec-cli
    fennec=target/release/fennec
fi

raw=$(mktemp)
trap 'rm -f "$raw" "$raw.err"' EXIT
peak_rss() { # command...: runs it; GNU time adds 'PEAK_RSS_KB n' (its peak RSS in KiB) to stderr
    /usr/bin/time -f 'PEAK_RSS_KB %M' "$@"
}

for round in $(seq 1 "$rounds"); do
    f=$("$fennec" bench -m "$model" -t "$threads" -p "$n_prompt" -n "$n_gen" -r 1 --json 2>/dev/null)
    # shellcheck disable=SC2086
    l=$(peak_rss "$llama_bench" -m "$model" -t "$threads" -p "$n_prompt" -n "$n_gen" -r 1 \
        $llama_args -o json 2>"$raw.err") || { cat "$raw.err" >&2; exit 1; }
    l_rss=$(grep -o 'PEAK_RSS_KB [0-9]*' "$raw.err" | awk '{print $2}')
    printf '%s\n' "$f" | head -n 1 | python3 -c '
import json, sys
f = json.load(sys.stdin)
l = json.loads(sys.argv[1])
pp = next((r["avg_ts"] for r in l if r["n_prompt"] > 0 and r["n_gen"] == 0), None)
tg = next((r["avg_ts"] for r in l if r["n_gen"] > 0 and r["n_prompt"] == 0), None)
print(json.dumps({"round": int(sys.argv[2]),
    "fennec": {"pp": f["pp_tok_s"], "tg": f["tg_tok_s"], "rss_mb": f["peak_rss_mb"],
               "cpu": f["cpu"], "kernels": f["kernels"]},
    "llama": {"pp": pp, "tg": tg, "rss_mb": int(sys.argv[3]) / 1024,
              "cpu": l[0].get("cpu_info"), "build": l[0].get("build_commit")}}))
' "$l" "$round" "$l_rss" >>"$raw"
    tail -n 1 "$raw" | python3 -c '
import json, sys
r = json.load(sys.stdin)
f, l = r["fennec"], r["llama"]
print("round %d: pp fennec %.1f llama.cpp %.1f | tg fennec %.2f llama.cpp %.2f tok/s"
      % (r["round"], f["pp"], l["pp"], f["tg"], l["tg"]))'
done

python3 - "$raw" "$model" "$threads" "$n_prompt" "$n_gen" "$llama_args" "$json_out" <<'EOF'
import json, statistics, sys
path, model, threads, n_prompt, n_gen, llama_args, json_out = sys.argv[1:]
rounds = [json.loads(line) for line in open(path)]
med = lambda side, key: statistics.median(r[side][key] for r in rounds)
summary = {
    "model": model, "threads": int(threads), "n_prompt": int(n_prompt), "n_gen": int(n_gen),
    "llama_args": llama_args, "rounds": len(rounds),
    "fennec_cpu_level": rounds[0]["fennec"]["cpu"], "llama_cpu": rounds[0]["llama"]["cpu"],
    "llama_build": rounds[0]["llama"]["build"],
    "pp": {"fennec": med("fennec", "pp"), "llama": med("llama", "pp")},
    "tg": {"fennec": med("fennec", "tg"), "llama": med("llama", "tg")},
    "rss_mb": {"fennec": med("fennec", "rss_mb"), "llama": med("llama", "rss_mb")},
}
for k in ("pp", "tg"):
    summary[k]["ratio"] = summary[k]["fennec"] / summary[k]["llama"]
summary["rss_mb"]["ratio"] = summary["rss_mb"]["fennec"] / summary["rss_mb"]["llama"]
print()
print(f"| {model.split('/')[-1]} | t={threads} | pp{n_prompt} {summary['pp']['fennec']:.1f} vs "
      f"{summary['pp']['llama']:.1f} = {summary['pp']['ratio']:.2f}x | tg{n_gen} "
      f"{summary['tg']['fennec']:.2f} vs {summary['tg']['llama']:.2f} = {summary['tg']['ratio']:.2f}x "
      f"| peak RSS {summary['rss_mb']['fennec']:.0f} vs {summary['rss_mb']['llama']:.0f} MiB |")
print(f"medians of {len(rounds)} interleaved rounds; fennec kernels at {summary['fennec_cpu_level']}; "
      f"llama.cpp {summary['llama_build']} {llama_args}")
if json_out:
    summary["raw"] = rounds
    json.dump(summary, open(json_out, "w"), indent=1)
EOF
