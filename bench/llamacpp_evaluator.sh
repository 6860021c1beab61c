#!/usr/bin/env bash
# A search driven by llama.cpp (issue 17): scripts/evaluators/llamacpp
# measures every configuration (made by aellm apply, scored by
# llama-perplexity, timed by llama-bench), then each measured configuration
# is scored again by aellm's own engine (aellm eval, same model, text,
# window and chunks) and the two perplexities compared. BabyLlama (its
# quantized rows are llama.cpp's blocks), 64 KiB of TinyStories with each
# run of newlines made one space (its vocabulary has no newline), window 256.
#
#   LLAMA_CPP=/path/to/llama.cpp/build/bin bench/llamacpp_evaluator.sh [BUDGET] [DATA_DIR]
#   env: BIN=build/aellm THREADS=2 WORK=/tmp/aellm-llamacpp-evaluator
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
budget=${1:-10}
data=$(cd "${2:-$src/../shared/data}" && pwd)
bin=${BIN:-$src/build/aellm}
: "${LLAMA_CPP:?set LLAMA_CPP to the folder of llama-bench and llama-perplexity}"
threads=${THREADS:-2}
work=${WORK:-/tmp/aellm-llamacpp-evaluator}
rm -rf "$work" && mkdir -p "$work"
export OMP_WAIT_POLICY=passive
head -c 65536 "$data/tinystories/tinystories_val.txt" | tr -s '\n' ' ' >"$work/text.txt"
cat >"$work/task.json" <<JSON
{"name": "ts64k-ppl", "kind": "perplexity", "data": "$work/text.txt", "n_ctx": 256, "max_chunks": 8}
JSON
"$bin" convert -m "$data/babyllama/babyllama-1M.bin" -z "$data/babyllama/tok105.bin" \
    -o "$work/f32.gguf" >/dev/null 2>&1
lat=(-t "$threads" --prompt 64 --gen 16)
echo "llama.cpp $(git -C "$LLAMA_CPP/../.." rev-parse --short HEAD 2>/dev/null || echo '?'); $("$bin" --version | head -1); $(date -u '+%Y-%m-%d %H:%M UTC')"
start=$(date +%s)
AELLM=$bin "$bin" search -m "$work/f32.gguf" --task "$work/task.json" --db "$work/llama.db" \
    --evaluator "$src/scripts/evaluators/llamacpp" --budget "$budget" "${lat[@]}" --json \
    >"$work/search.json" 2>"$work/search.err"
echo "search: $(( $(date +%s) - start )) s; $(grep -c '^failed' "$work/search.err" || true) configurations llama.cpp cannot run (stored as failed)"
echo
echo "| configuration | llama.cpp PPL | aellm PPL | rel. diff | llama.cpp s/request | peak RSS MiB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
python3 - "$work" "$bin" "${lat[@]}" <<'PY'
import json, subprocess, sys
work, aellm, lat = sys.argv[1], sys.argv[2], sys.argv[3:]
r = json.load(open(work + "/search.json"))
worst = 0.0
for i, p in enumerate(x for x in r["points"] if x["provenance"] == "measured"):
    m = p["measurement"]
    cfg = "%s/c%d.json" % (work, i)
    json.dump(p["eval_config"], open(cfg, "w"))
    out = subprocess.run([aellm, "eval", "-m", work + "/f32.gguf", "--task", work + "/task.json",
                          "--config", cfg, "--no-store", "--max-reps", "3", "--json"] + lat,
                         capture_output=True, text=True, check=True).stdout
    mine = json.loads(out)["accuracy"]["value"]
    theirs = 1.0 / p["acc"]  # acc = 1/ppl
    d = abs(mine - theirs) / theirs
    worst = max(worst, d)
    inf = p["config"].get("inference", p["config"])
    print("| %s | %.4f | %.4f | %.1e | %.4f | %.1f |" % (json.dumps(inf, separators=(",", ":")),
          theirs, mine, d, p["latency_s"], p["memory_bytes"] / 2**20))
print("\nlargest relative difference: %.1e" % worst)
PY
