#!/bin/sh -eu
# Apply pihub's security patches to the packages just installed; any that does not fit the
# version it was written for stops the build (see /usr/share/pihub/security/advisories.json).
/usr/local/lib/pihub/security-fixes apply --strict
# The proxy's own unprivileged user (usr/lib/sysusers.d/pihub-proxy.conf).
systemd-sysusers pihub-proxy.conf
getent passwd jupyterhub-proxy >/dev/null
