#!/bin/sh
# scripts/deps.sh: installs the Debian packages beard builds and tests with, if any is
# missing. Needs root (or sudo) only when something has to be installed.
set -e
PKGS="build-essential pkg-config libopenblas-dev libzip-dev zlib1g-dev libcjson-dev libsqlite3-dev
libpng-dev libjpeg-dev libcurl4-openssl-dev libarchive-dev libssl-dev libmatio-dev clang libclang-rt-14-dev
libcairo2-dev fonts-dejavu-core libopenmpi-dev openmpi-bin chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "scripts/deps.sh: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing
