#!/bin/sh
# native-prepare.sh ROOT MOUNT — runs once, when the native tools root ROOT is made.
# Copies some of its programs to ROOT/usr/lib/pihub-native with their ELF interpreter and
# library path pointing into MOUNT, where the tools root is mounted inside the target while a
# step runs: there they run natively, straight from the target's chroot, at native speed.
#   bin/            small text and file tools that maintainer scripts run over and over
#                   (update-ca-certificates runs several per certificate); first on the PATH
#                   of every step in the target (stages/step.ts). Only tools whose result does
#                   not depend on the architecture or on user and group names.
#   depmod          the kernel's module index      } stand in for the target's own during
#   dracut-install  copies modules to the initramfs } a step (native-tools.sh)
set -eu
root=$1
mount=$2
out=/usr/lib/pihub-native
interp=$(chroot "$root" readlink -f "$(chroot "$root" patchelf --print-interpreter /usr/bin/cp)")
libdir=$(dirname "$interp")
mkdir -p "$root$out/bin"

native() { # native NAME SOURCE
  cp "$root$2" "$root$out/$1"
  # DT_RPATH (not RUNPATH), so that it applies to the libraries' own dependencies too.
  chroot "$root" patchelf --set-interpreter "$mount$interp" --force-rpath --set-rpath "$mount$libdir" "$out/$1"
}

for tool in basename cat cmp cp cut dirname expr find grep head ln md5sum mkdir mktemp mv \
  readlink realpath rm rmdir chmod sed seq sha256sum sort tail tee touch tr uniq wc xargs; do
  native "bin/$tool" "$(chroot "$root" sh -c "readlink -f \"\$(command -v $tool)\"")"
done
native depmod /usr/bin/kmod
# initramfs-tools uses dracut-install from trixie on; older suites have no such package. It is
# installed with apt on the build machine, through the configuration mmdebstrap gives hooks.
if [ -n "${MMDEBSTRAP_APT_CONFIG:-}" ]; then
  export APT_CONFIG="$MMDEBSTRAP_APT_CONFIG"
fi
if apt-cache show dracut-install >/dev/null 2>&1; then
  apt-get install -y -q --no-install-recommends dracut-install
  native dracut-install /usr/lib/dracut/dracut-install
fi
