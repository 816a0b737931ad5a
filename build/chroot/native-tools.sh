#!/bin/sh
# native-tools.sh on|off — runs inside the target (foreign architecture only), around a step.
# on:  the shell, Python, depmod, dracut-install, mkinitramfs and debconf's frontend are diverted
#      (dpkg-divert, so a package upgrade during the step lands beside them) and stand-ins take
#      their place (native-prepare.sh made the native programs); nothing happens when the tools
#      root is not mounted.
#        dash (/bin/sh)          the native copy itself: every maintainer script and stage
#                                script in /bin/sh runs natively (a shell script does not
#                                depend on the architecture; what it runs is the target's);
#        depmod, dracut-install  the native copies from the tools root;
#        python3.X               the target's own, except the standard library's byte-compiling
#                                in its postinst, which the native one does;
#        debconf's frontend      the target's own, run by the native perl: every maintainer
#                                script that uses debconf starts it (a second under emulation);
#        mkinitramfs             the target's own, in a mount namespace of its own where the
#                                shell (dash) and the text tools (bin/) are the native copies,
#                                bound over the target's: its hooks and shell loops run at
#                                native speed, and nothing in the target changes. dpkg never
#                                runs in there, so no package replaces a file bound over.
# off: the target's own programs are back.
set -eu
native=/run/pihub/tools/usr/lib/pihub-native
tools="/usr/bin/dash:sh /usr/sbin/depmod:depmod /usr/lib/dracut/dracut-install:dracut-install /usr/sbin/mkinitramfs:sh /usr/share/debconf/frontend:perl-run"
for python in "$native"/python3.*; do
  if [ -e "$python" ]; then tools="$tools /usr/bin/${python##*/}:${python##*/}"; fi
done
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
      if [ "$path" = /usr/bin/dash ]; then
        # A new file: the old one may be running this very script.
        cp "$native/sh" "$path.new"
        mv -f "$path.new" "$path"
      elif [ "$path" = /usr/sbin/mkinitramfs ]; then
        cat > "$path" <<SH
#!/bin/sh
# pihub: during the build, mkinitramfs with the native shell and text tools (native-tools.sh).
if ! unshare --mount --propagation unchanged true 2>/dev/null; then
  exec $path.pihub "\$@"
fi
exec unshare --mount --propagation unchanged /bin/sh -c '
  set -e
  mount --bind $native/sh "\$(readlink -f /bin/sh)"
  for tool in $native/bin/*; do
    # Programs only: the Perl programs there are scripts that run the target'"'"'s own.
    IFS= read -r first < "\$tool" || true
    case \$first in "#!"*) continue ;; esac
    target=/usr/bin/\${tool##*/}
    if [ -f "\$target" ]; then mount --bind "\$tool" "\$target"; fi
  done
  exec $path.pihub "\$@"' mkinitramfs "\$@"
SH
      elif [ "${name#python3.}" != "$name" ]; then
        cat > "$path" <<SH
#!$native/sh
# pihub: during the build, the target's $name (native-tools.sh). Its postinst byte-compiles the
# standard library with it; that, alone, runs natively when the native root's $name is the
# same version (byte code depends on the version, not on the architecture).
version() { sed -n '/^Package: $name-minimal\$/,/^\$/s/^Version: //p' "\$1"; }
if [ "\$1 \$2 \$3" = "-E -S /usr/lib/$name/py_compile.py" ] &&
  [ "\$(version /var/lib/dpkg/status)" = "\$(version /run/pihub/tools/var/lib/dpkg/status)" ]; then
  shift 3
  exec $native/$name -E -S /run/pihub/tools/usr/lib/$name/py_compile.py "\$@"
fi
# Anything else: the target's own, under the name it was called by (sys.executable).
exec $native/perl-run -e 'exec { \$ARGV[0] } @ARGV[1 .. \$#ARGV] or die "\$ARGV[0]: \$!\\n"' $path.pihub "\$0" "\$@"
SH
      elif [ "$name" = perl-run ]; then
        printf '#!%s\n# pihub: during the build, run by the native perl (native-tools.sh).\nexec %s %s "$@"\n' \
          "$native/sh" "$native/perl-run" "$path.pihub" > "$path"
      else
        {
          echo '#!/bin/sh'
          echo '# pihub: during the build, the native program from the tools root (native-tools.sh).'
          # dracut-install runs `cp` once per module: the native one.
          [ "$name" = dracut-install ] && echo "PATH=$native/bin:\$PATH; export PATH"
          echo "exec $native/$name \"\$@\""
        } > "$path"
      fi
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
