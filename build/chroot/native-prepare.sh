#!/bin/sh
# native-prepare.sh ROOT MOUNT — runs once, when the native tools root ROOT is made.
# Copies some of its programs to ROOT/usr/lib/pihub-native with their ELF interpreter and
# library path pointing into MOUNT, where the tools root is mounted inside the target while a
# step runs: there they run natively, straight from the target's chroot, at native speed.
#   bin/            small text and file tools that maintainer scripts run over and over
#                   (update-ca-certificates runs several per certificate); first on the PATH
#                   of every step in the target (stages/step.ts). Only tools whose result does
#                   not depend on the architecture or on user and group names, and
#                   dpkg-divert (the diversions database; pihub's stand-ins are diversions
#                   made and taken back in every step, a tenth of a second each emulated). Also there:
#                   deb-systemd-helper, deb-systemd-invoke and update-rc.d, the target's own
#                   Perl programs run by the native perl (half a second each under emulation,
#                   and a service's postinst runs several).
#   depmod          the kernel's module index      } stand in for the target's own during
#   dracut-install  copies modules to the initramfs } a step (native-tools.sh)
#   sh, perl        the shell (dash) and perl: mkinitramfs runs with this shell and the bin/
#                   tools (native-tools.sh); perl runs the Perl programs above and debconf's
#   perl-run        frontend (native-tools.sh), through perl-run
#   python3.X       the standard library's byte-compiling in python3.X's postinst (native-tools.sh)
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
  readlink realpath rm rmdir chmod sed seq sha256sum sort tail tee touch tr uniq wc xargs dpkg-divert; do
  native "bin/$tool" "$(chroot "$root" sh -c "readlink -f \"\$(command -v $tool)\"")"
done
native depmod /usr/bin/kmod
native sh "$(chroot "$root" readlink -f /bin/sh)"
native perl /usr/bin/perl
# Python (python3.X): byte-compiles the standard library when python3.X's own postinst asks
# (native-tools.sh). Not a patched copy (patchelf breaks this binary): the tools root's own,
# started by its dynamic loader, finds its standard library from where it lies.
python=$(basename "$(chroot "$root" readlink -f /usr/bin/python3)")
cat > "$root$out/$python" <<SH
#!$mount$out/sh
# pihub: the native root's $python (native-prepare.sh).
exec $mount$interp --library-path $mount$libdir $mount/usr/bin/$python "\$@"
SH
chmod 755 "$root$out/$python"
# perl-run PROGRAM [ARG]...: the target's Perl PROGRAM run by the native perl. Perl is the same
# version (same suite); the native perl's architecture-dependent modules are in the tools root
# (its perl-base), the rest of its @INC is the target's own.
cat > "$root$out/perl-run" <<SH
#!$mount$out/sh
# pihub: a Perl program of the target run by the native perl during the build (native-prepare.sh).
# -I, not PERL5LIB: the Perl programs they start are the target's (emulated) perl.
exec $mount$out/perl -I$mount$libdir/perl-base "\$@"
SH
chmod 755 "$root$out/perl-run"
# These read and write only symlinks and state files: the result is the target's own.
for prog in /usr/bin/deb-systemd-helper /usr/bin/deb-systemd-invoke /usr/sbin/update-rc.d; do
  cat > "$root$out/bin/${prog##*/}" <<SH
#!$mount$out/sh
# pihub: the target's $prog, run by the native perl during the build (native-prepare.sh).
[ -e $prog ] || { echo "${prog##*/}: not found" >&2; exit 127; }
exec $mount$out/perl-run $prog "\$@"
SH
  chmod 755 "$root$out/bin/${prog##*/}"
done
# initramfs-tools uses dracut-install from trixie on; older suites have no such package. It is
# installed with apt on the build machine, through the configuration mmdebstrap gives hooks.
if [ -n "${MMDEBSTRAP_APT_CONFIG:-}" ]; then
  export APT_CONFIG="$MMDEBSTRAP_APT_CONFIG"
fi
if apt-cache show dracut-install >/dev/null 2>&1; then
  apt-get install -y -q --no-install-recommends dracut-install
  native dracut-install /usr/lib/dracut/dracut-install
fi
