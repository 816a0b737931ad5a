#!/bin/sh -e
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
# Build leftovers: package lists (apt update fetches fresh ones), caches, logs, temp files.
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
rm -rf /root/.cache /root/.npm /tmp/* /var/tmp/*
find /var/log -type f -exec truncate --size=0 {} +
# What systemd would otherwise redo on the card's first boot because /etc and /var look older
# than /usr (ldconfig, the journal's message catalog, sysusers): done here, then marked done.
ldconfig
journalctl --update-catalog
/usr/lib/systemd/systemd-update-done
