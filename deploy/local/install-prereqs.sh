#!/usr/bin/env bash
# Installs what the local infrastructure needs on Debian 12: PostgreSQL, a JDK 17,
# Maven (to fetch the Kafka broker from Maven Central), ca-certificates and curl.
# Idempotent: it only calls apt-get when something is missing, so a ready machine
# passes in well under a second.
set -euo pipefail

missing=()

have_pkg() { # true if the Debian package is installed (not just known)
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

java_major() { # major version of the default java, or 0
    command -v java >/dev/null 2>&1 || { echo 0; return; }
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

# PostgreSQL: we need the server binaries (initdb, pg_ctl) and the client (psql).
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || ! command -v psql >/dev/null 2>&1; then
    missing+=(postgresql)
fi

# JDK 17: Kafka 3.9 runs on 11+, but we standardise on 17 (Debian 12's default).
# A -jdk (not just -jre) so single-file `java Foo.java` helpers work too.
if [ "$(java_major)" -lt 17 ] || ! command -v javac >/dev/null 2>&1; then
    missing+=(default-jdk-headless)
fi

command -v mvn  >/dev/null 2>&1 || missing+=(maven)
command -v curl >/dev/null 2>&1 || missing+=(curl)
have_pkg ca-certificates         || missing+=(ca-certificates)

if [ "${#missing[@]}" -eq 0 ]; then
    echo "prereqs: all present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "prereqs: missing ${missing[*]}; run this script as root (or install them yourself)" >&2
    exit 1
fi

echo "prereqs: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# --no-install-recommends keeps a fresh machine lean (no sysstat, no GUI bits).
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "prereqs: done"
