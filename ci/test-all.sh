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
# the time of every file and tier is printed; the totals are summed.
total=0 passed=0 failed=0 skipped=0 status=0
log=$(mktemp)
times=$(mktemp)
trap 'rm -f "$log" "$times"' EXIT
# A figure from the reporter's summary of the last run, e.g. `count pass`.
count() { local n; n=$(grep -E "^ℹ $1 [0-9]+" "$log" | tail -n 1 | awk '{print $3}'); echo "${n:-0}"; }
clock() { date +%s; }
suite_start=$(clock)
for tier in "${tiers[@]}"; do
  files=()
  while IFS= read -r f; do files+=("$f"); done < <(find "$tier" -name '*.test.ts' | sort)
  if [ "${#files[@]}" -eq 0 ]; then
    echo "no test files in $tier" >&2
    exit 1
  fi
  echo "== $tier (${#files[@]} files)"
  tier_start=$(clock)
  for file in "${files[@]}"; do
    file_start=$(clock)
    set +e
    node --import tsx --experimental-websocket --test --test-concurrency=1 --test-reporter=spec "$file" 2>&1 | tee "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    set -e
    total=$((total + $(count tests)))
    passed=$((passed + $(count pass)))
    failed=$((failed + $(count fail)))
    skipped=$((skipped + $(count skipped)))
    printf '%6d s  %s (%s passed, %s failed)\n' "$(($(clock) - file_start))" "$file" "$(count pass)" "$(count fail)" >> "$times"
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
