#!/usr/bin/env bash
# Replay benchmark: the whole `kumo run` process replaying a recipe of 50
# cells and 500 journaled calls (ssh_run on a local node), timed end to
# end. Target: under 150 ms. Usage: bench/replay.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
make -s build >/dev/null
kumo=$PWD/bin/kumo
work=$(mktemp -d)
trap '(cd "$work" && "$kumo" destroy --yes >/dev/null 2>&1); rm -rf "$work"' EXIT
cd "$work"

{
  echo '# %% Node'
  echo 'n = unit_group("bench").create_unit("n", spec("local", "small")).nodes()[0]'
  for c in $(seq 0 49); do
    [ "$c" = 0 ] || echo "# %% Cell $c"
    for i in $(seq 1 10); do
      echo "r${c}_$i = ssh_run(n, \"echo cell $c call $i\")"
    done
  done
} > replay.star
calls=$(grep -c 'ssh_run' replay.star)  # plus unit_group, create_unit and nodes

start=$(date +%s%N)
"$kumo" run replay.star >/dev/null
live_ms=$(( ($(date +%s%N) - start) / 1000000 ))

times=()
for _ in $(seq 1 "$rounds"); do
  start=$(date +%s%N)
  "$kumo" run replay.star --json 2>/dev/null | grep -c '"status":"replayed"' | grep -qx 50
  times+=($(( ($(date +%s%N) - start) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
median=${sorted[$(( rounds / 2 ))]}
p90=${sorted[$(( rounds * 9 / 10 ))]}
echo "cells=50 journaled_calls=$((calls + 3)) live_run_ms=$live_ms"
echo "replay (whole process, $rounds rounds): median_ms=$median p90_ms=$p90 min_ms=${sorted[0]} max_ms=${sorted[$((rounds-1))]}"
echo "RESULT replay_median_ms=$median target_ms=150"
