#!/bin/sh -eu
# Nothing that must be unique to a card stays in the image: the first boot creates it.
rm -f /etc/ssh/ssh_host_*
printf 'uninitialized\n' > /etc/machine-id
if [ -d /var/lib/dbus ]; then
  rm -f /var/lib/dbus/machine-id
  ln -s /etc/machine-id /var/lib/dbus/machine-id
fi
rm -f /var/lib/systemd/random-seed /var/lib/systemd/credential.secret
# The hub's cookie secret and database are created on the card at its first start.
rm -rf /var/lib/jupyterhub/*

# The card's apt sources: the suite, its stable updates and Debian's security updates (which
# unattended-upgrades installs; see updates.automatic). Written last, after every stage's
# packages came from the build's own package lists.
components=$(python3 -c 'import json, os; print(" ".join(json.loads(os.environ["PIHUB_BASE_COMPONENTS"])))')
# The base's extra suites of the same archive (e.g. trixie-backports, where the kernel comes from)
# stay in the card's sources, so their updates reach it: the bootstrap put them into
# sources.list beside the suite, as `deb MIRROR SUITE-NAME COMPONENTS...` lines.
extra=$(awk -v m="$PIHUB_BASE_MIRROR" -v s="$PIHUB_BASE_SUITE" '$1 == "deb" && $2 == m && index($3, s "-") == 1 { printf " %s", $3 }' /etc/apt/sources.list 2>/dev/null || true)
rm -f /etc/apt/sources.list
cat > /etc/apt/sources.list.d/debian.sources <<SOURCES
# Written by pihub from base.mirror, base.suite and base.components.
Types: deb
URIs: $PIHUB_BASE_MIRROR
Suites: $PIHUB_BASE_SUITE $PIHUB_BASE_SUITE-updates$extra
Components: $components

Types: deb
URIs: http://security.debian.org/debian-security
Suites: $PIHUB_BASE_SUITE-security
Components: $components
SOURCES

# Unit states as built, for good. /etc/machine-id is `uninitialized`, so systemd applies the
# unit presets at the first boot, and Debian's presets enable every unit without a rule (SSH,
# which a stage disabled, among them). This preset file sorts first, so its rules win: the
# units enabled now, and no other.
python3 - <<'PY'
import collections, os

root = '/etc/systemd/system'
enabled = set()
for entry in os.listdir(root):
    path = os.path.join(root, entry)
    if os.path.islink(path):
        target = os.readlink(path)
        if target != '/dev/null':  # an alias, made by enabling the unit it names (not a mask)
            enabled.add(os.path.basename(target))
    elif os.path.isdir(path) and entry.endswith(('.wants', '.requires', '.upholds')):
        enabled.update(u for u in os.listdir(path) if os.path.islink(os.path.join(path, u)))
instances = collections.defaultdict(list)
lines = []
for unit in sorted(enabled):
    name, _, kind = unit.rpartition('.')
    template, at, instance = name.partition('@')
    if at and instance:
        instances[f'{template}@.{kind}'].append(instance)
    else:
        lines.append(f'enable {unit}')
lines += [f'enable {t} {" ".join(i)}' for t, i in sorted(instances.items())]
os.makedirs('/etc/systemd/system-preset', exist_ok=True)
with open('/etc/systemd/system-preset/00-pihub.preset', 'w') as f:
    f.write('# Written by pihub when the image was built: the units it enabled, and no others, so that\n'
            '# the presets systemd applies at the first boot keep them as built. (`systemctl preset`\n'
            '# on this Pi follows these rules too; delete this file to go back to Debian\'s.)\n')
    f.write(''.join(f'{line}\n' for line in sorted(lines)))
    f.write('disable *\n')
PY
# Check it as the first boot will apply it (in either preset mode): nothing may change.
snapshot() {
  find /etc/systemd/system -type l -printf '%p -> %l\n' > "$1"
  sort -o "$1" "$1"
}
snapshot /tmp/pihub-units.before
systemctl preset-all --preset-mode=full
snapshot /tmp/pihub-units.after
if ! diff -u /tmp/pihub-units.before /tmp/pihub-units.after >&2; then
  echo "pihub: the unit presets would change the image's unit states at the first boot (above)" >&2
  exit 1
fi

# pihub's security fixes are in place as the image ships (an overlay's packages cannot have
# undone them); the record the manifest and the SBOM are made from is written here.
if [ -x /usr/local/lib/pihub/security-fixes ]; then
  /usr/local/lib/pihub/security-fixes apply --strict
fi

# Build leftovers: package lists (apt update fetches fresh ones), caches, logs, temp files.
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
rm -rf /root/.cache /root/.npm /tmp/* /var/tmp/*
find /var/log -type f -exec truncate --size=0 {} +
# What systemd would otherwise redo on the card's first boot because /etc and /var look older
# than /usr (ldconfig, the journal's message catalog, sysusers): done here, then marked done.
ldconfig
journalctl --update-catalog
/usr/lib/systemd/systemd-update-done
