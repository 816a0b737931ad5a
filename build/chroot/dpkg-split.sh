#!/bin/sh
# pihub's dpkg for apt during a foreign-architecture build (apt -o Dir::Bin::dpkg=this).
# Unpacking - decompressing and writing every file - is the build machine's dpkg working on
# the target (`--root`), at native speed; maintainer scripts still run inside the target
# (dpkg chroots for them). Configuring, and every query, is the target's own dpkg, whose
# architecture is the target's, so dependencies are judged as on the Pi.
set -eu
root=${PIHUB_TARGET_ROOT:?PIHUB_TARGET_ROOT is not set}
for arg in "$@"; do
  case $arg in
    --unpack|--install)
      # apt has already resolved dependencies for the target's architecture; the host's
      # dpkg would judge them as foreign, so it is told not to.
      exec /usr/bin/dpkg --root="$root" --log="$root/var/log/dpkg.log" \
        --force-architecture --force-depends --force-unsafe-io "$@"
      ;;
  esac
done
exec chroot "$root" /usr/bin/dpkg "$@"
