#!/usr/bin/env bash
# aellm predict checked on this machine. First `aellm predict --calibrate`
# measures the rate of each kernel kind alone (products per weight type,
# attention per KV cache type, the cost of a barrier) and, per weight type,
# a whole model of a held-in shape (dim 1024, 6 layers) over the sum of its
# kernels; then every weight format and KV option runs as a whole model of
# the 110M and 1.1B shapes (random weights: speed does not depend on their
# values) under `aellm bench`, and the prediction for the same request is
# set beside it. Those shapes are held out: the calibration never runs them.
# Each row is predicted twice: from the one calibration at the start, and
# from a calibration of just the kinds it reads (its weight type, f32, its
# KV cache type) taken right before it runs ("paired", as the search pairs
# its latencies: a shared machine's bandwidth moves by tens of percent
# within minutes, and this separates that drift from the model's error).
# Prints the markdown table of bench/README.md and the median absolute
# percentage errors (targets: latency <= 5 %, memory <= 2 %).
#
#   bench/predict_validate.sh [BUILD_DIR]      (default: build)
#   env: SHAPES="110M 1.1B" P=128 G=16 REPS=3 OUT=/tmp/aellm-predict-validate
#        PAIRED=1 (0: the start calibration only)
#        PREV=OLD/rows.jsonl (an earlier run's rows: how far the measured side
#        itself moved between the two runs, the floor under any prediction)
# Run it on a quiet machine: a second load halves the rates either way.
set -euo pipefail
build=${1:-build}
aellm=$build/aellm
shapes=${SHAPES:-110M 1.1B}
P=${P:-128}
G=${G:-16}
reps=${REPS:-3}
paired=${PAIRED:-1}
out=${OUT:-/tmp/aellm-predict-validate}
[ -x "$aellm" ] || { echo "no $aellm: build first" >&2; exit 1; }
mkdir -p "$out"
bin=$out/aellm
cp "$aellm" "$bin" # frozen: a rebuild during the run cannot swap it

formats="f32 f16 bf16 fp8_e4m3 int8 q8_0 q4_0 q4_1 int4s_g64 int4s_g128 int4a_g64 int4a_g128 nf4"
# KV options on f16 weights: the cache types, and pooled heads (a half, a quarter)
kv_options="f16:0 q8_0:0 f32:2 f32:4"

echo "calibrating (kernel kinds only) ..." >&2
"$bin" predict --calibrate "$out/calib.json" >"$out/calib.txt"
cat "$out/calib.txt" >&2

run() { # shape type kv_type kv_div -> one JSON line of measured and predicted
    local shape=$1 type=$2 kv=$3 div=$4 heads=0 kvopt=() cfg
    if [ "$div" != 0 ]; then # the shape's own KV heads, from its unpooled runs above
        local n_kv
        n_kv=$(python3 -c 'import json, sys
print(next(r["kv_heads"] for r in map(json.loads, open(sys.argv[1])) if r["shape"] == sys.argv[2]))' \
            "$rows" "$shape")
        heads=$((n_kv / div))
        kvopt=(--kv-heads "$heads")
    fi
    [ "$kv" != f32 ] && kvopt+=(--kv-type "$kv")
    cfg=$out/config-$type-$kv-$heads.json
    printf '{"inference": {"weights": "%s", "kv_cache": "%s"%s}}\n' "$type" "$kv" \
        "$([ "$heads" != 0 ] && printf ', "kv_heads": %d' "$heads")" >"$cfg"
    local pred=(--shape "$shape" --base-type "$type" --config "$cfg" -p "$P" -n "$G" --batch "$P")
    if [ "$paired" = 1 ]; then
        "$bin" predict --calibrate "$out/calib-row.json" --types "$type,$kv" --rounds 3 --json \
            >/dev/null
        "$bin" predict --hardware "$out/calib-row.json" "${pred[@]}" --json >"$out/pp.json"
    fi
    "$bin" bench --shape "$shape" --type "$type" -p "$P" -n "$G" -d "$P" -r "$reps" \
        --no-bandwidth --json "${kvopt[@]}" >"$out/m.json"
    "$bin" predict --hardware "$out/calib.json" "${pred[@]}" --json >"$out/p.json"
    [ "$paired" = 1 ] || cp "$out/p.json" "$out/pp.json"
    python3 - "$shape" "$type" "$kv" "$heads" "$out/m.json" "$out/p.json" "$P" "$G" \
        "$out/pp.json" <<'EOF'
import json, sys
shape, typ, kv, heads, mf, pf, P, G, ppf = sys.argv[1:]
m, p, pp = json.load(open(mf)), json.load(open(pf)), json.load(open(ppf))
P, G = int(P), int(G)
row = dict(shape=shape, type=typ, kv=kv, kv_heads=int(heads) or m["kv_heads"],
           prefill_meas=P / m["pp_tps"], prefill_pred=p["prefill_s"],
           decode_meas=G / m["tg_tps"], decode_pred=p["decode_s"],
           mem_meas=m["peak_mem_bytes"], mem_pred=p["memory_bytes"],
           energy_pred=p["energy_j"])
row["total_meas"] = row["prefill_meas"] + row["decode_meas"]
row["total_pred"] = row["prefill_pred"] + row["decode_pred"]
row["paired_pred"] = pp["prefill_s"] + pp["decode_s"]
row["paired_meas"] = row["total_meas"]
row["pprefill_pred"], row["pprefill_meas"] = pp["prefill_s"], row["prefill_meas"]
row["pdecode_pred"], row["pdecode_meas"] = pp["decode_s"], row["decode_meas"]
print(json.dumps(row))
EOF
}

rows=$out/rows.jsonl
: >"$rows"
for shape in $shapes; do
    for t in $formats; do
        echo "$shape $t ..." >&2
        run "$shape" "$t" f32 0 >>"$rows"
    done
    for o in $kv_options; do
        echo "$shape f16 KV ${o%%:*} /${o##*:} ..." >&2
        run "$shape" f16 "${o%%:*}" "${o##*:}" >>"$rows"
    done
done

python3 - "$rows" "$P" "$G" <<'EOF'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
P, G = sys.argv[2], sys.argv[3]
def err(r, k):
    return 100.0 * (r[k + "_pred"] - r[k + "_meas"]) / r[k + "_meas"]
print(f"| shape | weights | KV cache | prefill {P} s meas / pred | decode {G} s meas / pred "
      "| request err | paired: prefill / decode pred | paired err "
      "| memory MiB meas / pred | memory err |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    kv = f'{r["kv"]}, {r["kv_heads"]} heads'
    print(f'| {r["shape"]} | {r["type"]} | {kv} | {r["prefill_meas"]:.3f} / {r["prefill_pred"]:.3f} '
          f'| {r["decode_meas"]:.3f} / {r["decode_pred"]:.3f} | {err(r, "total"):+.1f} % '
          f'| {r["pprefill_pred"]:.3f} / {r["pdecode_pred"]:.3f} | {err(r, "paired"):+.1f} % '
          f'| {r["mem_meas"] / 2**20:.1f} / {r["mem_pred"] / 2**20:.1f} | {err(r, "mem"):+.2f} % |')
def mape(k, sel=lambda r: True):
    return statistics.median(abs(err(r, k)) for r in rows if sel(r))
print()
for k, name in (("total", "request latency"), ("prefill", "prefill"), ("decode", "decode"),
                ("paired", "request latency, paired calibration"),
                ("pprefill", "prefill, paired"), ("pdecode", "decode, paired"), ("mem", "memory")):
    per = ", ".join(f"{s} {mape(k, lambda r, s=s: r['shape'] == s):.1f} %"
                    for s in dict.fromkeys(r["shape"] for r in rows))
    print(f"median absolute error, {name}: {mape(k):.1f} % ({per})")
prev = os.environ.get("PREV")
if prev:
    old = {(r["shape"], r["type"], r["kv"], r["kv_heads"]): r for r in map(json.loads, open(prev))}
    for k in ("total", "prefill", "decode"):
        d = [100.0 * abs(r[k + "_meas"] - o[k + "_meas"]) / o[k + "_meas"] for r in rows
             if (o := old.get((r["shape"], r["type"], r["kv"], r["kv_heads"])))]
        if d:
            print(f"measured {k} against {prev}: median difference {statistics.median(d):.1f} %, "
                  f"largest {max(d):.1f} % over {len(d)} rows")
print("energy: this machine has no energy counter aellm can read, so measured energy is its power "
      "model over the measured time and the predicted energy the same model over the predicted "
      "time: its error is the request latency's")
EOF
