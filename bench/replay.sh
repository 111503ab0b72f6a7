#!/usr/bin/env bash
# Replay benchmark: the whole `kumo run` process on a recipe of CELLS
# cells (default 50) of CALLS journaled calls each (default 10: 500
# calls; ssh_run on a local node), timed end to end:
#
#   unchanged  nothing changed: every cell replays (target: under 150 ms
#              for 500 calls, under 1 s for 10,000)
#   edited     one cell in the middle edited: only that cell runs live
#
# Usage: [CELLS=100 CALLS=100] bench/replay.sh [ROUNDS] [BASELINE_REV]
# With BASELINE_REV (a git revision, e.g. the last commit before reactive
# replay), that kumo is built from the repository and measured in the same
# run, on the same recipe, for the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
baseline=${2:-}
cells=${CELLS:-50}
per_cell=${CALLS:-10}
make -s build >/dev/null
repo=$PWD
work=$(mktemp -d)
cleanup() {
  for k in "$work"/bin/*; do (cd "$work/$(basename "$k")" 2>/dev/null && "$k" destroy --yes >/dev/null 2>&1) || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bin"
cp bin/kumo "$work/bin/current"
if [ -n "$baseline" ]; then
  mkdir "$work/src"
  git archive "$baseline" | tar -x -C "$work/src"
  (cd "$work/src" && CGO_ENABLED=1 go build -o "$work/bin/baseline" ./cmd/kumo)
fi

recipe() { # recipe EDIT: the benchmark recipe, cell 25's first call edited when EDIT=1
  echo '# %% Node'
  echo 'n = unit_group("bench").create_unit("n", spec("local", "small")).nodes()[0]'
  for c in $(seq 0 $((cells - 1))); do
    [ "$c" = 0 ] || echo "# %% Cell $c"
    for i in $(seq 1 "$per_cell"); do
      if [ "$1" = 1 ] && [ "$c" = $((cells / 2)) ] && [ "$i" = 1 ]; then
        echo "r${c}_$i = ssh_run(n, \"echo cell $c call $i, edited\")"
      else
        echo "r${c}_$i = ssh_run(n, \"echo cell $c call $i\")"
      fi
    done
  done
}

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # measure NAME: prints "NAME unchanged_ms edited_ms ran_when_edited peak_rss_kb"
  local name=$1 kumo=$work/bin/$1 dir=$work/$1
  mkdir -p "$dir"
  cd "$dir"
  recipe 0 > replay.star
  "$kumo" run replay.star >/dev/null
  local unchanged=() edited=() ran=0 rss=0
  for _ in $(seq 1 "$rounds"); do
    local start=$(date +%s%N)
    /usr/bin/time -f %M -o rss "$kumo" run replay.star --json 2>/dev/null | grep -c '"status":"replayed"' | grep -qx "$cells"
    unchanged+=($(ms "$start"))
    rss=$(( $(cat rss) > rss ? $(cat rss) : rss ))
  done
  for r in $(seq 1 "$rounds"); do
    recipe $(( r % 2 )) > replay.star # edit the cell, then undo the edit: each run has one edited cell
    local start=$(date +%s%N)
    ran=$("$kumo" run replay.star --json 2>/dev/null | grep -c '"status":"ran"' || true)
    edited+=($(ms "$start"))
  done
  echo "$name $(printf '%s\n' "${unchanged[@]}" | median) $(printf '%s\n' "${edited[@]}" | median) $ran $rss"
  cd "$repo"
}

calls=$(recipe 0 | grep -c 'ssh_run')
echo "cells=$cells journaled_calls=$((calls + 3)) rounds=$rounds (medians of whole kumo run processes)"
read -r _ cur_un cur_ed cur_ran cur_rss < <(measure current)
echo "current:  unchanged ${cur_un} ms (peak RSS $((cur_rss / 1024)) MB); one cell edited: ${cur_ed} ms, ${cur_ran} cell(s) ran live"
if [ -n "$baseline" ]; then
  read -r _ base_un base_ed base_ran _ < <(measure baseline)
  echo "baseline ($baseline):  unchanged ${base_un} ms; one cell edited: ${base_ed} ms, ${base_ran} cell(s) ran live"
  echo "ratios current/baseline: unchanged $(awk "BEGIN {printf \"%.2f\", $cur_un/$base_un}"), edited $(awk "BEGIN {printf \"%.2f\", $cur_ed/$base_ed}")"
fi
target=150
[ $((calls)) -lt 10000 ] || target=1000
echo "RESULT replay_unchanged_ms=$cur_un replay_edited_ms=$cur_ed edited_ran=$cur_ran peak_rss_kb=$cur_rss target_ms=$target"
