#!/usr/bin/env bash
# Single-node Apache Kafka 3.9.1 (KRaft) on 127.0.0.1:9092 for development and tests.
# No Docker and no Apache download site here, so the broker's classpath comes from
# Maven Central through deploy/kafka/pom.xml.
#
#   kafka.sh start    fetch the classpath if needed, format storage once, start,
#                     wait until the broker answers (reuses a broker already on 9092)
#   kafka.sh stop     stop our broker (pid file) and wait for it to exit
#   kafka.sh status   exit 0 if a broker answers on 127.0.0.1:9092, 3 if not
#
# State lives in $CERTROTATE_LOCAL_DIR/kafka (default <repo>/.local/kafka):
# data/ (log.dirs), server.properties (rendered), cluster-id, kafka.pid,
# kafka.out (JVM stdout/stderr), logs/server.log (broker log).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="${CERTROTATE_LOCAL_DIR:-$REPO/.local}"
KDIR="$LOCAL_DIR/kafka"
DATA="$KDIR/data"
LOGS="$KDIR/logs"
PIDFILE="$KDIR/kafka.pid"
OUT="$KDIR/kafka.out"
PROPS="$KDIR/server.properties"
POM="$REPO/deploy/kafka/pom.xml"
LIB="$REPO/deploy/kafka/lib"
STAMP="$LIB/.complete"
PROPS_SRC="$REPO/deploy/kafka/server.properties"
LOG4J="$REPO/deploy/kafka/log4j.properties"
HOST=127.0.0.1
PORT=9092
BOOTSTRAP="$HOST:$PORT"
START_TIMEOUT="${CERTROTATE_KAFKA_START_TIMEOUT:-120}"

die() { echo "kafka: $*" >&2; exit 1; }

log_tail() {
    local f
    for f in "$LOGS/server.log" "$OUT"; do
        [ -s "$f" ] || continue
        echo "---- last lines of $f ----" >&2
        tail -n 30 "$f" >&2
    done
}

# Runs a Kafka class from our classpath. CLI classes log into logs/tools/ so
# they neither print log noise nor interleave with the broker's own log.
kjava() {
    java -Dlog4j.configuration="file:$LOG4J" -Dkafka.logs.dir="$LOGS/tools" -cp "$LIB/*" "$@"
}

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

# The stamp is written only after Maven succeeded: first line the pom's hash,
# then one jar per line. Valid when the pom is unchanged and every jar is there.
lib_complete() {
    [ -f "$STAMP" ] || return 1
    [ "$(head -n1 "$STAMP")" = "pom-sha256 $(pom_hash)" ] || return 1
    local jar
    while read -r jar; do
        [ -s "$LIB/$jar" ] || return 1
    done < <(tail -n +2 "$STAMP")
}

ensure_lib() {
    lib_complete && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn not found; run deploy/local/install-prereqs.sh"
    echo "kafka: fetching the broker classpath from Maven Central into $LIB"
    # Start clean so jars of an older pom cannot linger on the classpath.
    rm -rf "$LIB"
    # Maven's output goes to a file (it prints stray colour codes even with -q) and is shown on failure.
    mkdir -p "$KDIR"
    if ! mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB" \
            >"$KDIR/mvn.log" 2>&1; then
        cat "$KDIR/mvn.log" >&2
        die "Maven could not fetch the classpath (is Maven Central reachable?)"
    fi
    { echo "pom-sha256 $(pom_hash)"; (cd "$LIB" && ls -1 -- *.jar); } >"$STAMP.tmp"
    mv "$STAMP.tmp" "$STAMP"
    ls "$LIB"/kafka_2.13-*.jar >/dev/null 2>&1 || die "classpath in $LIB has no kafka_2.13 jar"
}

# Cheap TCP check (bash's /dev/tcp), so we only pay for a JVM when something listens.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

# A real Kafka request: ApiVersions only succeeds once the broker processes
# requests, which in KRaft happens after it has caught up and been unfenced.
broker_answers() {
    port_open "$PORT" || return 1
    local cfg="$KDIR/probe.properties"
    mkdir -p "$KDIR"
    printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=5000\n' >"$cfg"
    timeout 30 java -Dlog4j.configuration="file:$LOG4J" -Dkafka.logs.dir="$LOGS/tools" -cp "$LIB/*" \
        kafka.admin.BrokerApiVersionsCommand --bootstrap-server "$BOOTSTRAP" --command-config "$cfg" \
        >/dev/null 2>&1
}

our_pid() { # prints the pid of our running broker, or fails
    [ -f "$PIDFILE" ] || return 1
    local pid; pid="$(cat "$PIDFILE")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid belonging to something else.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    echo "$pid"
}

wait_ready() {
    local pid="${1:-}" deadline=$((SECONDS + START_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            log_tail
            die "broker exited during startup (log above)"
        fi
        broker_answers && return 0
        sleep 1
    done
    log_tail
    die "broker did not answer on $BOOTSTRAP within ${START_TIMEOUT}s (log above)"
}

render_props() {
    mkdir -p "$DATA" "$LOGS"
    # Only log.dirs differs from the committed file: it must be absolute.
    sed "s|^log\.dirs=.*|log.dirs=$DATA|" "$PROPS_SRC" >"$PROPS.tmp"
    mv "$PROPS.tmp" "$PROPS"
}

# KRaft storage must be formatted once with a cluster id; we keep the id so a
# re-format after wiping data/ still belongs to the same cluster.
format_once() {
    [ -f "$DATA/meta.properties" ] && return 0
    if [ ! -s "$KDIR/cluster-id" ]; then
        kjava kafka.tools.StorageTool random-uuid | tail -n1 >"$KDIR/cluster-id.tmp"
        mv "$KDIR/cluster-id.tmp" "$KDIR/cluster-id"
    fi
    echo "kafka: formatting storage in $DATA (cluster id $(cat "$KDIR/cluster-id"))"
    kjava kafka.tools.StorageTool format -t "$(cat "$KDIR/cluster-id")" -c "$PROPS" --ignore-formatted >/dev/null
}

start() {
    ensure_lib
    local pid
    if pid="$(our_pid)"; then
        echo "kafka: already running (pid $pid); waiting until it answers"
        wait_ready "$pid"
        echo "kafka: ready on $BOOTSTRAP"
        return 0
    fi
    if port_open "$PORT"; then
        # Someone else's broker (another checkout, a container): use it rather than fight over the port.
        if broker_answers; then
            echo "kafka: a broker already answers on $BOOTSTRAP; reusing it"
            return 0
        fi
        # It may still be starting; give it the usual time before blaming it.
        echo "kafka: $BOOTSTRAP is listening but not answering yet; waiting"
        wait_ready ""
        echo "kafka: a broker already answers on $BOOTSTRAP; reusing it"
        return 0
    fi
    port_open 9093 && die "controller port $HOST:9093 is taken by something else"

    render_props
    format_once
    echo "kafka: starting broker on $BOOTSTRAP"
    # setsid+nohup: the broker survives the calling shell/CI step; output goes to files.
    setsid nohup java -Xms256m -Xmx1g -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$LOG4J" -Dkafka.logs.dir="$LOGS" \
        -cp "$LIB/*" kafka.Kafka "$PROPS" >>"$OUT" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    wait_ready "$pid"
    echo "kafka: ready on $BOOTSTRAP (pid $pid)"
}

stop() {
    local pid
    if pid="$(our_pid)"; then
        kill -TERM "$pid"
        # A clean shutdown flushes logs and avoids recovery on the next start.
        local deadline=$((SECONDS + 60))
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "kafka: broker did not exit within 60s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
        fi
        rm -f "$PIDFILE"
        echo "kafka: stopped"
    elif port_open "$PORT"; then
        rm -f "$PIDFILE"
        echo "kafka: $BOOTSTRAP is served by a broker that is not ours; leaving it alone"
    else
        rm -f "$PIDFILE"
        echo "kafka: not running"
    fi
}

status() {
    if lib_complete && broker_answers; then
        echo "kafka: ready on $BOOTSTRAP"
    else
        echo "kafka: not ready on $BOOTSTRAP"
        exit 3
    fi
}

case "${1:-}" in
    start)  start ;;
    stop)   stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
