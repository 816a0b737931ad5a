#!/bin/bash
# Publishes a release that ci/release.ts has built, checked and collected: creates the GitHub
# release TAG with every file in DIR as an asset and DIR/RELEASE_NOTES.md as its text.
#   ci/publish.sh TAG DIR        (gh reads GH_TOKEN, or its own login; GH_REPO names the repository)
# It builds nothing and runs no project code but itself: on GitHub it is the one step that holds
# a token that can write (release.yml's publish job, which has nothing but this folder).
# Before anything is sent: DIR holds only files; every file a .sha256 names is here (but a
# compressed image's raw .img) with that checksum, and every image and block map is named by one,
# so what is published is what the build job checked (download-artifact has already checked the
# artifact's own digest).
set -euo pipefail

fail() {
  echo "publish.sh: $1" >&2
  exit "${2:-1}"
}

[ $# -eq 2 ] || fail "usage: $0 TAG DIR" 2
tag=$1
dir=${2%/}
notes=RELEASE_NOTES.md
[[ $tag =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || fail "$tag: expected a tag name such as v1.0" 2
[ -d "$dir" ] || fail "$dir: no such folder" 2
for f in "$notes" rpi-imager.json pihub.png; do
  [ -f "$dir/$f" ] || fail "$dir has no $f: publish a folder that ci/release.ts collected"
done

assets=()
sums=()
while IFS= read -r -d '' path; do
  f=${path##*/}
  if [ -L "$path" ] || [ ! -f "$path" ]; then fail "$path is not a plain file; a release folder holds only files"; fi
  case $f in
    .*) fail "$path: a hidden file is no release file" ;;
    "$notes") ;;
    *.sha256) sums+=("$f"); assets+=("$dir/$f") ;;
    *) assets+=("$dir/$f") ;;
  esac
done < <(find "$dir" -mindepth 1 -maxdepth 1 -print0 | sort -z)

[ ${#sums[@]} -gt 0 ] || fail "$dir has no .sha256 file, so no image: nothing to publish"
named=$(cd "$dir" && sed -E 's/^[0-9a-f]{64} [ *]//' "${sums[@]}")
# Every file a .sha256 names is here, but the raw .img of a compressed image (not published).
while IFS= read -r f; do
  [ -n "$f" ] || continue
  [[ $f != */* ]] || fail "a .sha256 in $dir names $f, outside the folder: nothing was published"
  [ -f "$dir/$f" ] && continue
  if [[ $f == *.img ]]; then
    compressed=
    while IFS= read -r g; do
      if [[ $g == "$f".* && $g != *.bmap ]]; then compressed=$g; fi
    done <<<"$named"
    [ -n "$compressed" ] && continue
  fi
  fail "$f, which a .sha256 names, is not in $dir: nothing was published"
done <<<"$named"
# Every image and block map here is named by a .sha256.
for a in "${assets[@]}"; do
  f=${a##*/}
  case $f in
    *.img | *.img.*) grep -qxF -- "$f" <<<"$named" || fail "$f is named by no .sha256: nothing was published" ;;
  esac
done
# And every one of them has its checksum (--ignore-missing: the raw images).
(cd "$dir" && sha256sum --check --ignore-missing --quiet --strict "${sums[@]}") ||
  fail "a checksum in $dir does not match: nothing was published"

echo "publish.sh: ${#assets[@]} files for release $tag"
echo "\$ gh release create $tag --verify-tag --title \"pihub $tag\" --notes-file $dir/$notes ${assets[*]}"
exec gh release create "$tag" --verify-tag --title "pihub $tag" --notes-file "$dir/$notes" "${assets[@]}"
