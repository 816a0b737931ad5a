#!/bin/sh -eu
# The proxy it runs is Debian's configurable-http-proxy, or npm's (stage 22-proxy).
systemctl enable jupyterhub.service
