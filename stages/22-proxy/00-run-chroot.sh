#!/bin/sh -eu
# configurable-http-proxy from npm, as the original guide installed it, when hub.proxy is npm.
# It goes to /usr/local/bin, ahead of Debian's /usr/bin one on the hub's PATH.
if [ "$PIHUB_HUB_PROXY" = npm ]; then
  apt-get install -y -q --no-install-recommends npm
  registry=${PIHUB_HUB_NPM_REGISTRY:-https://registry.npmjs.org/}
  npm install --global --no-audit --no-fund --registry "$registry" configurable-http-proxy
  npm cache clean --force
  /usr/local/bin/configurable-http-proxy --version
fi
