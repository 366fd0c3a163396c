#!/usr/bin/env bash
# The main job of an earlier commit beside this checkout's code, on the same machine, one after the other.
#
#   tests/Nemotron.Gym.Benchmarks/demo-side-by-side.sh [--base COMMIT] [--head-first] [--out DIR] [--set KEY=VALUE ...]
#
# The earlier commit (default ac95295, main on the day the CPU-speed issue was filed) runs its own `gym demo` with its own
# embedded configs. This checkout then runs the same job: the same configs (printed by the earlier tool), the same data
# (copied from the earlier run's data folder), stage by stage (`gym pretrain`, `gym sft`, `gym generate --eval` for the
# demo's arithmetic score, `gym rl`). Comparing the two `gym demo`s would compare two different jobs: the demo's
# configs have grown since. --set KEY=VALUE (the demo's keys, e.g. rl.train.steps=5) goes to both. Prints each stage's
# time, the RL stage's generation and training seconds summed over its steps, the mean rollout length (the two runs'
# policies differ in rounding, so their rollouts differ), the totals and the ratios.
# Only meaningful with nothing else running: both runs use every core. kernels/Nemotron.Gym.Kernels/Cpu/PERF.md quotes it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
base=ac95295 out="$root/runs/side-by-side" head_first=0 sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --out) out="$(realpath -m "$2")"; shift 2 ;;
    --head-first) head_first=1; shift ;;
    --set) sets+=("$2"); shift 2 ;;
    *) echo "demo-side-by-side: unknown argument '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p "$out"
src="$out/base-src"
if [ ! -d "$src" ]; then git -C "$root" worktree add --quiet --detach "$src" "$base"; fi
echo "building $base in $src and this checkout ($(git -C "$root" rev-parse --short HEAD)) ..."
dotnet build "$src/gym/Nemotron.Gym.Cli" -c Release -v q --nologo >/dev/null
dotnet build "$root/gym/Nemotron.Gym.Cli" -c Release -v q --nologo >/dev/null
base_gym="$src/gym/Nemotron.Gym.Cli/bin/Release/net10.0/gym"
head_gym="$root/gym/Nemotron.Gym.Cli/bin/Release/net10.0/gym"
rm -rf "$out/base" "$out/head" "$out"/head-*.yaml
mkdir -p "$out/head"

# The earlier tool's configs, with the head run's folder as {run}, one file per stage.
"$base_gym" demo --out "$out/head" --print-configs | awk -v dir="$out" '/^# ---- /{f=dir "/head-" $3; next} {print > f}'
base_sets=()
for s in "${sets[@]+"${sets[@]}"}"; do base_sets+=(--set "$s"); done

run_base() {
  local start; start=$(date +%s)
  "$base_gym" demo --out "$out/base" "${base_sets[@]+"${base_sets[@]}"}" > "$out/base.log" 2>&1
  echo "TOTAL $(( $(date +%s) - start ))" >> "$out/base.log"
}
# One stage of the head run, with the --set keys addressed to it (prefix taken off), timed as a whole process.
stage() {
  local name="$1" prefix="$2"; shift 2
  local args=() start
  for s in "${sets[@]+"${sets[@]}"}"; do [[ "$s" == "$prefix".* ]] && args+=(--set "${s#"$prefix".}"); done
  start=$(date +%s)
  "$head_gym" "$@" "${args[@]+"${args[@]}"}" >> "$out/head.log" 2>&1
  echo "STAGE $name $(( $(date +%s) - start ))" >> "$out/head.log"
}
run_head() {
  : > "$out/head.log"
  local start; start=$(date +%s)
  stage pretrain pretrain pretrain -c "$out/head-demo-pretrain.yaml"
  stage sft sft sft -c "$out/head-demo-sft.yaml"
  stage arithmetic none generate --checkpoint "$out/head/sft/final" --eval "$out/head/data/eval.heldout.jsonl" --max-tokens 160 --show 6
  stage rl rl rl -c "$out/head-demo-rl.yaml"
  echo "TOTAL $(( $(date +%s) - start ))" >> "$out/head.log"
}
# The head run needs the base run's data. With --head-first the base tool writes it alone first: its demo is stopped
# once pretraining starts (the data comes before it, and is written with the demo's fixed seed).
write_data() {
  rm -rf "$out/data-only"
  "$base_gym" demo --out "$out/data-only" "${base_sets[@]+"${base_sets[@]}"}" > "$out/data-only.log" 2>&1 & local pid=$!
  while kill -0 $pid 2>/dev/null && ! grep -q "^pretrain pretrain" "$out/data-only.log"; do sleep 0.2; done
  kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  [ -f "$out/data-only/data/eval.heldout.jsonl" ] || { echo "demo-side-by-side: $base wrote no data (see $out/data-only.log)" >&2; exit 1; }
}
if [ $head_first = 1 ]; then
  write_data; cp -r "$out/data-only/data" "$out/head/"; echo "running this checkout's stages ..."; run_head
  echo "running $base's gym demo ..."; run_base
else
  echo "running $base's gym demo ..."; run_base
  cp -r "$out/base/data" "$out/head/"; echo "running this checkout's stages ..."; run_head
fi

# Seconds from the "... | 4m09s elapsed" of a stage's last step line.
elapsed() { grep "^$2 step .* elapsed" "$1" | tail -1 | sed -E 's/.*\| ([0-9hms]+) elapsed.*/\1/' |
  awk '{ t = 0; s = $0; while (match(s, /^[0-9]+[hms]/)) { n = substr(s, 1, RLENGTH - 1) + 0; u = substr(s, RLENGTH, 1);
         t += (u == "h" ? 3600 : u == "m" ? 60 : 1) * n; s = substr(s, RLENGTH + 1) } print t }'; }
# Sums over the RL stage's step lines: generation seconds, training seconds, mean rollout length, steps.
rl_sums() { grep "^grpo step .* gen " "$1" | sed -E 's/.*\| len ([0-9.]+) .*\| gen ([0-9.]+)s.* train ([0-9.]+)s.*/\1 \2 \3/' |
  awk '{ l += $1; g += $2; t += $3; n++ } END { if (n) printf "%.1f %.1f %.1f %d", g, t, l / n, n; else print "0 0 0 0" }'; }
# A row: what, the base's figure, this checkout's, and base / this unless a fourth argument says not to.
row() { awk -v w="$1" -v b="$2" -v h="$3" -v plain="${4:-}" 'BEGIN { printf "%-48s %10s %10s %8s\n", w, b, h, (plain == "" && h > 0 ? sprintf("%.2f×", b / h) : "") }'; }

read -r bg bt bl bn <<< "$(rl_sums "$out/base.log")"
read -r hg ht hl hn <<< "$(rl_sums "$out/head.log")"
echo
order="$base's gym demo first, then this checkout's stages"
[ $head_first = 1 ] && order="this checkout's stages first, then $base's gym demo"
echo "side by side on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, same configs and data: $order"
printf "%-48s %10s %10s %8s\n" "" "$base" "$(git -C "$root" rev-parse --short HEAD)" "ratio"
row "pretraining, s (its steps' elapsed time)" "$(elapsed "$out/base.log" pretrain)" "$(elapsed "$out/head.log" pretrain)"
row "SFT, s (its steps' elapsed time)" "$(elapsed "$out/base.log" sft)" "$(elapsed "$out/head.log" sft)"
row "RL: generation, s (summed over $bn / $hn steps)" "$bg" "$hg"
row "RL: training, s" "$bt" "$ht"
row "RL: mean rollout length, tokens" "$bl" "$hl" plain
row "whole job, s (wall)" "$(sed -n 's/^TOTAL //p' "$out/base.log")" "$(sed -n 's/^TOTAL //p' "$out/head.log")"
echo "(the whole job of $base includes writing its data, which this checkout's run copies; logs: $out/base.log, $out/head.log)"
