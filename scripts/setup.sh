#!/usr/bin/env bash
# Installs the Debian 12 packages csft builds and tests with (skips what is already there).
set -euo pipefail
pkgs="gcc make pkg-config libcjson-dev libdnnl-dev libyaml-dev libutf8proc-dev libpcre2-dev
      libsnappy-dev libzstd-dev zlib1g-dev liblz4-dev libbrotli-dev libsqlite3-dev sqlite3 libopenmpi-dev openmpi-bin
      chromium fonts-dejavu-core jq"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
