#!/bin/sh -eu
# hub.https.mode files: put the certificate and key given on the build machine into the image
# (the key readable by root only). self-signed: nothing to do here; the card makes its own.
dir="$ROOTFS_DIR/etc/pihub/https"
mkdir -p "$dir"
chmod 755 "$dir"
rm -f "$dir/hub.crt" "$dir/hub.key"
if [ "$PIHUB_HUB_HTTPS_MODE" = files ]; then
  install -m 644 -o root -g root "$PIHUB_HUB_HTTPS_CERT_FILE" "$dir/hub.crt"
  install -m 600 -o root -g root "$PIHUB_HUB_HTTPS_KEY_FILE" "$dir/hub.key"
fi
