#!/bin/bash
# The whole suite, as `npm test` runs it: lint, type-check, then unit, integration and
# end-to-end tests in one run of node's test runner. Integration and end-to-end tests
# build and boot real images: they need root and the host set-up (ci/setup-host.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== lint (eslint)"
npx eslint .
echo "== type-check (tsc --noEmit, strict)"
npx tsc --noEmit

tiers=(test/unit test/integration test/e2e)
if [ -n "${PIHUB_TEST_TIERS:-}" ]; then read -r -a tiers <<< "$PIHUB_TEST_TIERS"; fi
files=()
for tier in "${tiers[@]}"; do
  while IFS= read -r f; do files+=("$f"); done < <(find "$tier" -name '*.test.ts' | sort)
done
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found in: ${tiers[*]}" >&2
  exit 1
fi

echo "== tests: ${tiers[*]} (${#files[@]} files)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
node --import tsx --experimental-websocket --test --test-concurrency=1 --test-reporter=spec "${files[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
ran=$(grep -E '^ℹ tests [0-9]+' "$log" | tail -n 1 | awk '{print $3}')
passed=$(grep -E '^ℹ pass [0-9]+' "$log" | tail -n 1 | awk '{print $3}')
failed=$(grep -E '^ℹ fail [0-9]+' "$log" | tail -n 1 | awk '{print $3}')
skipped=$(grep -E '^ℹ skipped [0-9]+' "$log" | tail -n 1 | awk '{print $3}')
if [ -z "$ran" ] || [ "$ran" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
if [ "${skipped:-0}" -ne 0 ]; then
  echo "$skipped test(s) were skipped; a skipped test is not a pass" >&2
  status=1
fi
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$status"
