#!/usr/bin/env bash
# Debian packages the tests need: promtool (Prometheus's format checker).
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: promtool is all we need, not a running Prometheus server.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package may start a server through its init script; tests need only the binary.
$SUDO pkill -x prometheus 2>/dev/null || true
