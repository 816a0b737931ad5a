#!/bin/sh -eu
systemctl set-default multi-user.target
systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
  pihub-grow-rootfs.service pihub-ssh-keygen.service pihub-userconf.service pihub-issue.service
# SSH is switched on by the settings stage when the config asks for it.
systemctl disable ssh.service
# Now the one real initramfs for the kernel; its hook also writes /boot/firmware.
rm -f /usr/sbin/update-initramfs
dpkg-divert --package pihub --rename --remove /usr/sbin/update-initramfs
update-initramfs -c -k all
test -f /boot/firmware/config.txt
