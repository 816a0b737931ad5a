#!/bin/bash
# Runs ShellCheck over every shell script of the project: stage and overlay scripts (also the ones
# copied into the image), pihub's own helpers in build/, and the CI scripts. A script is a file
# whose first line is a #! naming sh, bash or dash.
set -euo pipefail
cd "$(dirname "$0")/.."

# SC1091: files sourced on the card (/etc/os-release, /etc/pihub/hub.env) are not here to follow.
excludes=SC1091

scripts=()
while IFS= read -r -d '' f; do
  if head -n 1 "$f" | grep -qE '^#!.*\b(sh|bash|dash)\b'; then scripts+=("$f"); fi
done < <(find stages overlays build ci .ci -type f ! -name '*.md' ! -name '*.ts' ! -name '*.js' -print0 | sort -z)

if [ "${#scripts[@]}" -eq 0 ]; then
  echo "shellcheck.sh: no shell scripts found" >&2
  exit 1
fi
shellcheck --exclude="$excludes" "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"
