# Sourced by the bench scripts that train on TinyStories and score on it:
# with $1 = BUILD_DIR and $2 = DATA_DIR (default ../shared/data) and
# $threads set, makes $work (removed on exit), exports the thread count and
# a private cache folder, and writes $work/task.json: perplexity on the
# first 64 KiB of tinystories_val.txt, training text $work/train.txt = the
# same file from byte 65,536 on (the two never overlap). model_args NAME
# sets the array m to the real model's -m/-z options.
build=${1:?usage: $0 BUILD_DIR [DATA_DIR]}
data=$(cd "${2:-$(dirname "$0")/../../shared/data}" && pwd)
aellm=$build/aellm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=$threads AELLM_CACHE_DIR=$work/cache
val=$data/tinystories/tinystories_val.txt
tail -c +65537 "$val" >"$work/train.txt"
cat >"$work/task.json" <<JSON
{"name": "tinystories-64k", "kind": "perplexity", "data": "$val", "max_bytes": 65536,
 "train": "$work/train.txt"}
JSON
model_args() {
    case $1 in
    stories260K) m=(-m "$data/stories260K/stories260K.bin" -z "$data/stories260K/tok512.bin") ;;
    babyllama) m=(-m "$data/babyllama/babyllama-1M.bin" -z "$data/babyllama/tok105.bin") ;;
    *) echo "unknown model $1" >&2; exit 1 ;;
    esac
}
