#!/usr/bin/env bash
# Brings up the local infrastructure the integration tests use: installs what is
# missing, then starts (or reuses) PostgreSQL on 127.0.0.1:55432 and Kafka on 127.0.0.1:9092.
# Safe to run again at any time.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

"$HERE/install-prereqs.sh"
"$HERE/postgres.sh" start
"$HERE/kafka.sh" start
echo "up: PostgreSQL $("$HERE/postgres.sh" dsn), Kafka 127.0.0.1:9092"
