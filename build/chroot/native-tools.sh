#!/bin/sh
# native-tools.sh on|off — runs inside the target (foreign architecture only), around a step.
# on:  depmod and dracut-install are diverted (dpkg-divert, so a package upgrade during the
#      step lands beside them) and stand-ins run the native copies from the tools root
#      (native-prepare.sh); nothing happens when the tools root is not mounted.
# off: the target's own programs are back.
set -eu
native=/run/pihub/tools/usr/lib/pihub-native
tools="/usr/sbin/depmod:depmod /usr/lib/dracut/dracut-install:dracut-install"
case ${1:-} in
  on)
    for spec in $tools; do
      path=${spec%%:*}
      name=${spec#*:}
      [ -x "$native/$name" ] || continue
      if [ "$(dpkg-divert --listpackage "$path")" != pihub ]; then
        dpkg-divert --quiet --package pihub --rename --divert "$path.pihub" --add "$path"
      fi
      mkdir -p "$(dirname "$path")"
      {
        echo '#!/bin/sh'
        echo '# pihub: during the build, the native program from the tools root (native-tools.sh).'
        # dracut-install runs `cp` once per module: the native one.
        [ "$name" = dracut-install ] && echo "PATH=$native/bin:\$PATH; export PATH"
        echo "exec $native/$name \"\$@\""
      } > "$path"
      chmod 755 "$path"
    done
    ;;
  off)
    for spec in $tools; do
      path=${spec%%:*}
      [ "$(dpkg-divert --listpackage "$path")" = pihub ] || continue
      rm -f "$path"
      dpkg-divert --quiet --package pihub --rename --remove "$path"
      # The stand-in's directory, made for a package that was not installed after all.
      rmdir "$(dirname "$path")" 2>/dev/null || true
    done
    ;;
  *)
    echo "usage: $0 on|off" >&2
    exit 2
    ;;
esac
