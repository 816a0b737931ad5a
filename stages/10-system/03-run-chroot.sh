#!/bin/sh -eu
systemctl set-default multi-user.target
systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
  pihub-grow-rootfs.service pihub-ssh-keygen.service pihub-userconf.service pihub-issue.service
# SSH is switched on by the settings stage when the config asks for it.
systemctl disable ssh.service
# The empty stand-ins for SSH host keys (00-run-chroot.sh); a card makes its own at first boot.
find /etc/ssh -maxdepth 1 -name 'ssh_host_*_key' -empty -delete
# The kernel's consoles, from base.consoles (the base profile's boot.consoles unless the config
# says otherwise): raspi-firmware's hooks write them into cmdline.txt, the last one gets the boot
# messages. A console the board does not have is skipped by the kernel. The value is a JSON list
# of names such as "ttyS1,115200" (the config allows letters, digits and one comma in each).
consoles=$(sed 's/^\[//; s/\]$//; s/","/ /g; s/"//g' <<CONSOLES
$PIHUB_BASE_CONSOLES
CONSOLES
)
sed -i '/^CONSOLES=/d' /etc/default/raspi-firmware
printf 'CONSOLES="%s"\n' "$consoles" >> /etc/default/raspi-firmware
# Now the one real initramfs for the kernel; its hook also writes /boot/firmware.
rm -f /usr/sbin/update-initramfs
dpkg-divert --package pihub --rename --remove /usr/sbin/update-initramfs
update-initramfs -c -k all
test -f /boot/firmware/config.txt
