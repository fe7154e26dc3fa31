#!/usr/bin/env bash
# Stops the local infrastructure started by up.sh, in reverse order. Only our own
# processes are stopped (a reused PostgreSQL/Kafka is left alone), and the data in
# $CERTROTATE_LOCAL_DIR (default <repo>/.local) is kept for the next up.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

"$HERE/kafka.sh" stop
"$HERE/postgres.sh" stop
