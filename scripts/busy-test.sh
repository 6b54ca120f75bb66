#!/usr/bin/env bash
# Runs the tap suite N times in a row (default 3) while two `yes` processes keep both cores busy, as a user's
# shared CI machine would, and prints each run's wall time and result. Needs the services of `npm test`.
#   scripts/busy-test.sh [runs]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
yes > /dev/null & hog1=$!
yes > /dev/null & hog2=$!
trap 'kill $hog1 $hog2 2>/dev/null' EXIT
failed=0
for run in $(seq 1 "$runs"); do
  started=$(date +%s)
  if npx tap --reporter=terse > "/tmp/busy-test-$run.log" 2>&1; then result=pass; else result=FAIL; failed=1; fi
  echo "run $run: $result in $(( $(date +%s) - started )) s (log: /tmp/busy-test-$run.log)"
done
exit $failed
