#!/usr/bin/env bash
# Installs the Debian packages fnhost builds and tests with, only those that are missing;
# packages named as arguments (e.g. valgrind for `make bench-instructions`) as well.
set -euo pipefail
need=()
for pkg in libhiredis-dev librabbitmq-dev libffi-dev libssl-dev libpng-dev pkg-config redis-server rabbitmq-server python3-venv "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${need[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
