#!/bin/sh -eu
# Generate the initramfs once, at the end of this stage, not after every package that
# ships an initramfs hook: each run is minutes under emulation.
mkdir -p /etc/initramfs-tools
if [ "$(dpkg-divert --listpackage /usr/sbin/update-initramfs)" != pihub ]; then
  dpkg-divert --package pihub --rename --divert /usr/sbin/update-initramfs.pihub --add /usr/sbin/update-initramfs
fi
cat > /usr/sbin/update-initramfs <<'SH'
#!/bin/sh
# pihub: deferred during the image build; stage 10-system runs the real one once.
exit 0
SH
chmod 755 /usr/sbin/update-initramfs
# openssh-server's postinst makes host keys when there are none: RSA, ECDSA and Ed25519 under
# emulation, for keys no card may have (each card makes its own at its first boot). Empty
# files stand in for them while the packages are configured; 03-run-chroot.sh removes them.
mkdir -p /etc/ssh
for type in rsa ecdsa ed25519; do
  [ -e "/etc/ssh/ssh_host_${type}_key" ] || : > "/etc/ssh/ssh_host_${type}_key"
done
