#!/bin/bash
# Prepares a Debian 12+ or Ubuntu 22.04+ machine to build and boot pihub images:
# installs the host packages pihub needs and makes the kernel run arm64 programs
# through the qemu-user that is installed now.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "setup-host.sh: run it as root: sudo $0" >&2
  exit 1
fi
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive

# qemu-user 10 is about 4x faster than Debian 12's 7.2 on the Python work of a build:
# on bookworm take it (and QEMU for booting) from bookworm-backports.
backports=()
if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/pihub-bookworm-backports.list
  fi
  backports=(-t bookworm-backports)
fi

apt-get update -q
apt-get install -y -q "${backports[@]}" qemu-user-static qemu-system-arm qemu-utils mmdebstrap
apt-get install -y -q \
  arch-test genimage dosfstools mtools e2fsprogs fdisk util-linux mount tar \
  xz-utils zstd gzip whois openssl debian-archive-keyring ca-certificates \
  openssh-client libcap2-bin acl attr python3 curl gnupg device-tree-compiler \
  shellcheck shfmt bmap-tools

# For the tests only: OpenSSH's server plays a household's NAS, started by QEMU for each
# connection (`sshd -i`, test/helpers/nas.ts). Its own service is not wanted here: when this
# script is what installs it, the service is kept from starting, now and at boot.
if [ ! -x /usr/sbin/sshd ]; then
  policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# setup-host.sh: no service starts while it installs openssh-server\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy=yes
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -q openssh-server
  if [ -n "$policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  if [ -d /run/systemd/system ]; then systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true; fi
fi

# binfmt_misc: mounted, and the arm64/armhf entries registered afresh. An entry with the
# F flag keeps the qemu binary that was open when it was registered, so after an upgrade
# the old, slow qemu keeps running until the entry is registered again.
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
for name in aarch64 arm; do
  entry=/proc/sys/fs/binfmt_misc/qemu-$name
  conf=
  for candidate in /usr/lib/binfmt.d/qemu-"$name".conf /usr/lib/binfmt.d/qemu-"$name"-static.conf; do
    if [ -z "$conf" ] && [ -e "$candidate" ]; then conf=$candidate; fi
  done
  if [ -n "$conf" ]; then
    [ -e "$entry" ] && echo -1 > "$entry"
    grep -v '^#' "$conf" > /proc/sys/fs/binfmt_misc/register
  elif command -v update-binfmts >/dev/null; then
    [ -e "$entry" ] && echo -1 > "$entry"
    update-binfmts --enable "qemu-$name"
  fi
done

# The architectures pihub builds: arm64 (qemu-aarch64) and armhf (qemu-arm).
arch-test arm64
arch-test armhf
for name in aarch64 arm; do
  grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-$name || {
    echo "setup-host.sh: the qemu-$name binfmt entry has no F flag; pihub needs qemu-user-static" >&2
    exit 1
  }
done
qemu=$(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)
echo "setup-host.sh: ready ($("$(readlink -f "$qemu")" --version | head -n 1))"
