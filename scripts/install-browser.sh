#!/usr/bin/env bash
# Installs what the dashboard's browser tests (tests/browser) drive: Debian's Chromium and its
# chromedriver. Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver; nothing is
# downloaded at test time (a browser download could not reach the internet here anyway).
# Idempotent: on a machine that has both it returns at once without calling apt-get.
set -euo pipefail

have_pkg() { # true if the Debian package is installed (not just known)
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
have_pkg chromium        || missing+=(chromium)
have_pkg chromium-driver || missing+=(chromium-driver)

if [ "${#missing[@]}" -eq 0 ]; then
    echo "browser: chromium and chromium-driver present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "browser: missing ${missing[*]}; run this script as root (or install them yourself)" >&2
    exit 1
fi
echo "browser: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "browser: done"
