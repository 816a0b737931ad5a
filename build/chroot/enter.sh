#!/bin/sh
# enter.sh ROOTFS [--bind=SRC:DEST | --ro-bind=SRC:DEST | --host-bind=SRC:DEST | --no-chroot]... -- COMMAND [ARG]...
# Runs COMMAND inside ROOTFS with /proc, /sys, /dev and a fresh /run (with --no-chroot: on the
# build machine, with those mounts in place for programs that chroot by themselves, such as
# `dpkg --root`; --host-bind mounts over a path of the build machine). pihub starts this script
# under `unshare --mount --pid --fork --kill-child`: every mount below lives in a private mount
# namespace and disappears with it, even when the build is killed.
set -eu
root=$1
shift
mount --make-rprivate /
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mkdir -p "$root/run/lock" "$root/run/pihub"

# Name resolution for apt and npm inside the target, without touching the image's resolv.conf.
conf="$root/etc/resolv.conf"
if [ -L "$conf" ]; then
  link=$(readlink "$conf")
  case $link in
    /run/*|../run/*)
      dest="$root/run/${link#*run/}"
      mkdir -p "$(dirname "$dest")"
      cat /etc/resolv.conf > "$dest"
      ;;
  esac
elif [ -f "$conf" ]; then
  mount --bind /etc/resolv.conf "$conf"
fi

chroot=yes
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in
    --no-chroot)
      chroot=no
      ;;
    --host-bind=*)
      spec=${1#--host-bind=}
      mount --bind "${spec%%:*}" "${spec#*:}"
      ;;
    --bind=*)
      spec=${1#--bind=}
      src=${spec%%:*}
      dest=$root${spec#*:}
      mkdir -p "$dest"
      mount --bind "$src" "$dest"
      ;;
    --ro-bind=*)
      spec=${1#--ro-bind=}
      src=${spec%%:*}
      dest=$root${spec#*:}
      mkdir -p "$dest"
      mount --bind "$src" "$dest"
      mount -o remount,bind,ro "$dest"
      ;;
    *)
      echo "enter.sh: unknown option $1" >&2
      exit 2
      ;;
  esac
  shift
done
[ "${1:-}" = "--" ] && shift
if [ "$chroot" = no ]; then
  exec "$@"
fi
exec chroot "$root" "$@"
