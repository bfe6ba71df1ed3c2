#!/usr/bin/env bash
# Debian packages the build and the tests need: promtool (Prometheus's format checker),
# Node.js and npm (to build the web console), Chromium (the browser tests drive it headless),
# a CJK font (so screenshots of the Chinese console show text, not boxes) and nginx (the
# deployment tests check deploy/nginx/nginx.conf with `nginx -t`; no server is started).
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg-query -W -f='${Status}' fonts-wqy-microhei 2>/dev/null | grep -q "ok installed" \
  || missing+=(fonts-wqy-microhei)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Packages must not start their servers (Prometheus, nginx): the tests need only the
  # binaries. policy-rc.d answering 101 tells the packages' scripts not to start anything.
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
    own_policy=1
  fi
  # --no-install-recommends: promtool is all we need, not a running Prometheus server.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$own_policy" ] && $SUDO rm -f "$policy"
  # An init script that ignored the policy may have started a server anyway.
  $SUDO pkill -x prometheus 2>/dev/null || true
fi
# The web build (Vite 6) needs Node.js 18 or later.
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "Node.js $(node --version) is too old to build the web console: 18 or later is needed" >&2
  exit 1
fi
