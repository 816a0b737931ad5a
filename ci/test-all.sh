#!/bin/bash
# The whole suite, as `npm test` runs it: lint, type-check, then unit, integration and
# end-to-end tests in one run of node's test runner. Integration and end-to-end tests
# build and boot real images: they need root and the host set-up (ci/setup-host.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== lint (eslint)"
npx eslint .
echo "== lint (shellcheck)"
ci/shellcheck.sh
echo "== type-check (tsc --noEmit, strict)"
npx tsc --noEmit

tiers=(test/unit test/integration test/e2e)
if [ -n "${PIHUB_TEST_TIERS:-}" ]; then read -r -a tiers <<< "$PIHUB_TEST_TIERS"; fi

# Each test file in its own run of node's test runner, tier by tier (fast tiers first), so that
# the time of every file and tier is printed; the totals are summed. The end-to-end files run
# PIHUB_TEST_JOBS at a time (default 2): most of their time is a QEMU guest or a build that keeps
# one core busy, so two of them fill this machine's two cores. Their output lines are prefixed
# with the file's name. PIHUB_TEST_JOBS=1 runs them one after the other, unprefixed.
jobs_e2e=${PIHUB_TEST_JOBS:-2}
if ! [[ "$jobs_e2e" =~ ^[1-9][0-9]*$ ]]; then
  echo "PIHUB_TEST_JOBS=$jobs_e2e: expected a whole number of 1 or more" >&2
  exit 2
fi
# The longest end-to-end file starts first, so that the others share the second core with it.
LONGEST_FIRST=(test/e2e/image.test.ts test/e2e/armhf.test.ts)
total=0 passed=0 failed=0 skipped=0 status=0
logs=$(mktemp -d)
times="$logs/times"
: > "$times"
trap 'rm -rf "$logs"' EXIT
# Files side by side run as jobs in their own process groups (job control on), so Ctrl-C or a
# TERM is passed on to each whole group: node, the builds and QEMU guests it started, its tee.
# shellcheck disable=SC2317  # called by the traps below
stop_jobs() {
  local p
  for p in $(jobs -p); do kill -"$1" -- "-$p" 2>/dev/null || true; done
  wait
  exit 130
}
trap 'stop_jobs INT' INT
trap 'stop_jobs TERM' TERM
# A figure from the reporter's summary of one file's run, e.g. `count tests LOG`.
count() { local n; n=$(grep -E "^ℹ $1 [0-9]+" "$2" | tail -n 1 | awk '{print $3}'); echo "${n:-0}"; }
clock() { date +%s; }

# One file: its output (prefixed when files run side by side) and, in LOG.rc, its exit code.
run_file() {
  local file=$1 log=$2 prefix=$3 start code
  start=$(clock)
  set +e
  # An empty sed script passes the lines through as they are.
  node --import tsx --experimental-websocket --test --test-concurrency=1 --test-reporter=spec "$file" 2>&1 | tee "$log" | sed -u "${prefix:+s|^|[$prefix] |}"
  code=${PIPESTATUS[0]}
  set -e
  echo "$code" > "$log.rc"
  printf '%6d s  %s (%s passed, %s failed)\n' "$(($(clock) - start))" "$file" "$(count pass "$log")" "$(count fail "$log")" >> "$times"
}

suite_start=$(clock)
n=0
for tier in "${tiers[@]}"; do
  files=()
  while IFS= read -r f; do files+=("$f"); done < <(find "$tier" -name '*.test.ts' | sort)
  if [ "${#files[@]}" -eq 0 ]; then
    echo "no test files in $tier" >&2
    exit 1
  fi
  jobs=1
  if [ "$tier" = test/e2e ]; then
    jobs=$jobs_e2e
    [ "$jobs" -eq 1 ] || set -m
    ordered=()
    for f in "${LONGEST_FIRST[@]}"; do [[ " ${files[*]} " == *" $f "* ]] && ordered+=("$f"); done
    for f in "${files[@]}"; do [[ " ${ordered[*]} " == *" $f "* ]] || ordered+=("$f"); done
    files=("${ordered[@]}")
  fi
  echo "== $tier (${#files[@]} files, $jobs at a time)"
  tier_start=$(clock)
  tier_logs=()
  for file in "${files[@]}"; do
    n=$((n + 1))
    log="$logs/$n.log"
    tier_logs+=("$log")
    if [ "$jobs" -eq 1 ]; then
      run_file "$file" "$log" ''
    else
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
      run_file "$file" "$log" "$(basename "$file" .test.ts)" &
    fi
  done
  wait
  for log in "${tier_logs[@]}"; do
    [ "$(cat "$log.rc" 2>/dev/null || echo 1)" -eq 0 ] || status=1
    total=$((total + $(count tests "$log")))
    passed=$((passed + $(count pass "$log")))
    failed=$((failed + $(count fail "$log")))
    skipped=$((skipped + $(count skipped "$log")))
  done
  printf '%6d s  %s (tier)\n' "$(($(clock) - tier_start))" "$tier" >> "$times"
done

echo "== time per file and tier"
cat "$times"
printf '%6d s  whole suite (tests only)\n' "$(($(clock) - suite_start))"
if [ "$total" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
if [ "$skipped" -ne 0 ]; then
  echo "$skipped test(s) were skipped; a skipped test is not a pass" >&2
  status=1
fi
echo "${passed} passed, ${failed} failed"
exit "$status"
