#!/bin/sh -eu
# The nightly backup (it does nothing until an admin runs `sudo pihub-backup setup`) and the
# restore at boot when the card carries pihub-backup.txt.
systemctl enable pihub-backup.timer pihub-backup-restore.service
mkdir -p /var/lib/pihub/backup
chmod 755 /var/lib/pihub/backup
restic version
