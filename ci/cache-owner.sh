#!/bin/bash
# The stage cache (/var/cache/pihub) between GitHub's actions/cache and pihub, which runs as root.
# Its snapshots hold whole root filesystems, /etc/shadow included (a config's password hashes),
# so it is never made world-readable: it belongs to the runner's own account, mode 0700.
#   ci/cache-owner.sh prepare   before actions/cache restores: an empty cache folder the runner owns
#   ci/cache-owner.sh save      after the build: everything in it handed to the runner, owner-only
# Run it with sudo; SUDO_UID/SUDO_GID name the runner's account (or pass UID GID after the action).
set -euo pipefail
dir=${PIHUB_CACHE_DIR:-/var/cache/pihub}
action=${1:-}
uid=${2:-${SUDO_UID:-}}
gid=${3:-${SUDO_GID:-}}
if [ "$(id -u)" != 0 ] || [ -z "$uid" ] || [ -z "$gid" ]; then
  echo "cache-owner.sh: run it as: sudo $0 prepare|save   (or as root: $0 prepare|save UID GID)" >&2
  exit 2
fi
case $action in
  prepare)
    install -d -m 0700 -o "$uid" -g "$gid" "$dir"
    ;;
  save)
    [ -d "$dir" ] || exit 0
    chown -R "$uid:$gid" "$dir"
    chmod 0700 "$dir"
    chmod -R go-rwx "$dir"
    ;;
  *)
    echo "cache-owner.sh: expected prepare or save, got '${action}'" >&2
    exit 2
    ;;
esac
