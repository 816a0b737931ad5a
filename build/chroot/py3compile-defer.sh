#!/bin/sh
# py3compile-defer.sh on|off|replay — runs inside the target.
# on:     py3compile (called by every Python package's postinst) only records its arguments;
# off:    the real py3compile is back. pihub then byte-compiles what was recorded with a native
#         Python of the same version (byte code does not depend on the architecture);
# replay: run the real py3compile for what was recorded (when no native Python matches).
set -eu
todo=/var/lib/pihub/py3compile.todo
case ${1:-} in
  on)
    mkdir -p /var/lib/pihub
    if ! dpkg-divert --list /usr/bin/py3compile | grep -q pihub; then
      dpkg-divert --quiet --package pihub --rename --divert /usr/bin/py3compile.pihub --add /usr/bin/py3compile
    fi
    cat > /usr/bin/py3compile <<'SH'
#!/bin/sh
# pihub: deferred during the build, compiled natively afterwards (see py3compile.pihub).
echo "$*" >> /var/lib/pihub/py3compile.todo
SH
    chmod 755 /usr/bin/py3compile
    ;;
  off)
    rm -f /usr/bin/py3compile
    dpkg-divert --quiet --package pihub --rename --remove /usr/bin/py3compile
    [ -f "$todo" ] || rmdir /var/lib/pihub 2>/dev/null || true
    ;;
  replay)
    if [ -f "$todo" ]; then
      while read -r args; do
        # shellcheck disable=SC2086 # the recorded arguments are words
        py3compile $args
      done < "$todo"
      rm -f "$todo"
    fi
    ;;
  *)
    echo "usage: $0 on|off|replay" >&2
    exit 2
    ;;
esac
