#!/bin/sh -eu
# Applies the settings of the build config (PIHUB_* variables) to the image.

# Time zone
if [ ! -f "/usr/share/zoneinfo/$PIHUB_TIMEZONE" ]; then
  echo "pihub: unknown time zone \`$PIHUB_TIMEZONE\` (see /usr/share/zoneinfo; e.g. Europe/London)" >&2
  exit 1
fi
ln -sf "/usr/share/zoneinfo/$PIHUB_TIMEZONE" /etc/localtime
echo "$PIHUB_TIMEZONE" > /etc/timezone

# Locale: generate only the one configured (plus C.UTF-8, which is built in)
if [ "$PIHUB_LOCALE" != C.UTF-8 ]; then
  if ! grep -q "^# *$PIHUB_LOCALE " /usr/share/i18n/SUPPORTED && ! grep -q "^$PIHUB_LOCALE " /usr/share/i18n/SUPPORTED; then
    echo "pihub: unknown locale \`$PIHUB_LOCALE\` (see /usr/share/i18n/SUPPORTED; e.g. en_GB.UTF-8)" >&2
    exit 1
  fi
  grep "^$PIHUB_LOCALE " /usr/share/i18n/SUPPORTED > /etc/locale.gen
  locale-gen
fi
update-locale "LANG=$PIHUB_LOCALE"

# Wi-Fi: the SSID in hex (any name is safe), the passphrase only as its WPA PSK
rm -f /etc/wpa_supplicant/wpa_supplicant-wlan0.conf /etc/modprobe.d/pihub-wifi.conf
systemctl disable wpa_supplicant@wlan0.service
if [ -n "$PIHUB_WIFI_SSID" ]; then
  mkdir -p /etc/wpa_supplicant
  /usr/local/lib/pihub/wifi-config /etc/wpa_supplicant/wpa_supplicant-wlan0.conf
  echo "options cfg80211 ieee80211_regdom=$PIHUB_WIFI_COUNTRY" > /etc/modprobe.d/pihub-wifi.conf
  systemctl enable wpa_supplicant@wlan0.service
fi

# SSH
if [ "$PIHUB_SSH_PASSWORD_AUTH" = true ]; then auth=yes; else auth=no; fi
cat > /etc/ssh/sshd_config.d/20-pihub-auth.conf <<CONF
# Written by pihub from ssh.password_auth (off when users have keys, unless set).
PasswordAuthentication $auth
KbdInteractiveAuthentication no
CONF
if [ "$PIHUB_SSH_ENABLED" = true ]; then
  systemctl enable ssh.service
else
  systemctl disable ssh.service
fi

# Updates the card installs on its own: apt's daily timers run unattended-upgrades. This file
# sorts after Debian's 20auto-upgrades and 50unattended-upgrades (left as packaged, so package
# upgrades never ask about them) and so overrides them.
case $PIHUB_UPDATES_AUTOMATIC in
  off) periodic=0 ;;
  *) periodic=1 ;;
esac
{
  cat <<CONF
// Written by pihub from updates.automatic: $PIHUB_UPDATES_AUTOMATIC
// (security: Debian's security updates, and the updates of what came from backports, such as
// the kernel, whose security fixes arrive only there; all: also the stable point releases; off: none).
APT::Periodic::Update-Package-Lists "$periodic";
APT::Periodic::Unattended-Upgrade "$periodic";
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern {
CONF
  if [ "$PIHUB_UPDATES_AUTOMATIC" != off ]; then
    cat <<'CONF'
  "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
  "origin=Debian Backports,codename=${distro_codename}-backports,label=Debian Backports";
CONF
  fi
  if [ "$PIHUB_UPDATES_AUTOMATIC" = all ]; then
    cat <<'CONF'
  "origin=Debian,codename=${distro_codename},label=Debian";
  "origin=Debian,codename=${distro_codename}-updates,label=Debian";
CONF
  fi
  echo '};'
} > /etc/apt/apt.conf.d/90pihub-updates

# The proxy runs as an unprivileged user with no capability; a hub.port below 1024 needs the
# one that opens such a port (stage 25-security's drop-in; hub-proxy says so if it is missing).
dropin=/etc/systemd/system/jupyterhub-proxy.service.d/60-pihub-low-port.conf
rm -f "$dropin"
if [ "$PIHUB_HUB_PORT" -lt 1024 ]; then
  mkdir -p "$(dirname "$dropin")"
  cp /usr/share/pihub/proxy-low-port.conf "$dropin"
fi

# Backups to a NAS (backup.sftp) need the network, which the sandboxes of the backup and the
# restore otherwise lack.
for unit in pihub-backup pihub-backup-restore; do
  dropin=/etc/systemd/system/$unit.service.d/60-pihub-nas.conf
  rm -f "$dropin"
  if [ -n "$PIHUB_BACKUP_SFTP" ]; then
    cat > "$dropin" <<'CONF'
# pihub: backup.sftp is set, so this also reaches a NAS over SFTP (docs/security.md).
[Service]
PrivateNetwork=no
RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6
CONF
  fi
done

# Hub groups (system groups, so the first person keeps uid/gid 1000)
for group in "$PIHUB_HUB_USERS_GROUP" "$PIHUB_HUB_ADMIN_GROUP"; do
  getent group "$group" >/dev/null || groupadd --system "$group"
done

# Every account made with `adduser` (by hand, from userconf.txt or below) joins the hub's users
# group and the usual groups of a Pi user.
extra="users audio video plugdev netdev dialout $PIHUB_HUB_USERS_GROUP"
sed -i -E \
  -e 's/^#? *ADD_EXTRA_GROUPS=.*/ADD_EXTRA_GROUPS=1/' \
  -e "s/^#? *EXTRA_GROUPS=.*/EXTRA_GROUPS=\"$extra\"/" \
  /etc/adduser.conf
grep -q '^ADD_EXTRA_GROUPS=1' /etc/adduser.conf
grep -q "^EXTRA_GROUPS=\"$extra\"" /etc/adduser.conf

# Users from the config: hashes only (pihub hashed any plain password on the build machine)
python3 - <<'PY'
import json, os, pwd, subprocess

admin_group = os.environ['PIHUB_HUB_ADMIN_GROUP']
for user in json.loads(os.environ['PIHUB_USERS'] or '[]'):
    name = user['name']
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(['adduser', '--disabled-password', '--comment', '', name], check=True, stdout=subprocess.DEVNULL)
    # The hash through stdin: a command line is visible to every process on the machine.
    subprocess.run(['chpasswd', '--encrypted'], input=f"{name}:{user['password_hash']}\n", text=True, check=True)
    if user['admin']:
        subprocess.run(['usermod', '--append', '--groups', f'sudo,{admin_group}', name], check=True)
    keys = user['ssh_authorized_keys']
    if keys:
        entry = pwd.getpwnam(name)
        ssh_dir = os.path.join(entry.pw_dir, '.ssh')
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        path = os.path.join(ssh_dir, 'authorized_keys')
        with open(path, 'w') as f:
            f.write(''.join(k.strip() + '\n' for k in keys))
        os.chmod(path, 0o600)
        for p in (ssh_dir, path):
            os.chown(p, entry.pw_uid, entry.pw_gid)
    print(f"pihub: user {name}{' (admin)' if user['admin'] else ''}")
PY

# No account with an empty password; root is locked
usermod --lock root
if awk -F: '$2 == "" { bad = 1; print "pihub: account " $1 " has an empty password" > "/dev/stderr" } END { exit bad }' /etc/shadow; then :; else exit 1; fi
