#!/usr/bin/env bash
# Single-node Apache Kafka broker (KRaft combined broker+controller) for stream-monitor dev/tests.
# No Docker, no Kafka download archive: the broker's jars come from Maven Central via ./pom.xml.
#
# Usage: deploy/kafka/broker.sh start|stop|status     (works from any cwd)
#
#   start   Fetch the jars once (cached), format a FRESH data dir (KAFKA_KEEP_DATA=1: keep an
#           existing one, for restart tests), start the broker in the
#           background and wait until it serves. The last stdout line is the bootstrap address,
#           exactly "127.0.0.1:PORT"; progress messages go to stderr.
#           A second start for the same port while the broker is up reuses it (message on
#           stderr, same address on stdout, exit 0; its data is NOT wiped in that case).
#   stop    SIGTERM the broker by the pid in its pid file, SIGKILL after KAFKA_STOP_TIMEOUT s.
#           Exit 0, also when nothing was running.
#   status  "running pid N 127.0.0.1:PORT" (exit 0), "stopped ..." (exit 3), or
#           "unhealthy ..." when the process lives but the port does not accept (exit 1).
#
# Environment:
#   KAFKA_PORT             PLAINTEXT port (default 9092)
#   KAFKA_CONTROLLER_PORT  CONTROLLER port (default KAFKA_PORT+1)
#   KAFKA_RUN_DIR          server.properties, broker.pid, data/, logs/ (default deploy/kafka/.run/PORT)
#   KAFKA_LIBS_DIR         jar cache, owned by this script (default deploy/kafka/.cache/libs)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness (default 120)
#   KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL (default 30)
#   KAFKA_HEAP_OPTS        default "-Xms256m -Xmx512m"
#   KAFKA_JVM_OPTS         extra JVM options appended to the defaults (optional)
#   KAFKA_OWNER_PID        optional: a pid (e.g. the pytest process); a watchdog stops the broker
#                          once that process is gone, so a killed test run leaves no broker behind
#   JAVA_HOME              used if set (needs Java 17+)
#
# Optional SASL_SSL listener (off unless KAFKA_SASL_SSL_PORT is set; the PLAINTEXT listener, the
# inter-broker listener and the last stdout line stay exactly as without it):
#   KAFKA_SASL_SSL_PORT    port of a SASL_SSL://127.0.0.1:PORT listener with mechanisms PLAIN,
#                          SCRAM-SHA-256 and SCRAM-SHA-512. Every start makes a fresh self-signed
#                          CA and a broker certificate for 127.0.0.1/localhost (openssl) in
#                          RUN_DIR/tls/ (ca.pem is what clients trust), and one user known to all
#                          three mechanisms (SCRAM credentials via StorageTool format --add-scram).
#   KAFKA_SASL_USERNAME    that user's name (default stream-monitor)
#   KAFKA_SASL_PASSWORD    its password (default: random); always written to RUN_DIR/sasl/password
#                          (mode 600) and never printed
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
SCRIPT_PATH="$SCRIPT_DIR/$(basename -- "${BASH_SOURCE[0]}")"

HOST=127.0.0.1
PORT="${KAFKA_PORT:-9092}"
is_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( 10#$1 >= 1 && 10#$1 <= 65535 )); }
is_port "$PORT" || { echo "broker.sh: KAFKA_PORT must be a TCP port number, got '$PORT'" >&2; exit 2; }
PORT=$((10#$PORT))
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
is_port "$CPORT" || { echo "broker.sh: KAFKA_CONTROLLER_PORT must be a TCP port number, got '$CPORT'" >&2; exit 2; }
CPORT=$((10#$CPORT))
[[ "$PORT" != "$CPORT" ]] || { echo "broker.sh: KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ" >&2; exit 2; }

LIBS_DIR="${KAFKA_LIBS_DIR:-$SCRIPT_DIR/.cache/libs}"
RUN_DIR="${KAFKA_RUN_DIR:-$SCRIPT_DIR/.run/$PORT}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
SPORT="${KAFKA_SASL_SSL_PORT:-}"
if [[ -n "$SPORT" ]]; then
  is_port "$SPORT" || { echo "broker.sh: KAFKA_SASL_SSL_PORT must be a TCP port number, got '$SPORT'" >&2; exit 2; }
  SPORT=$((10#$SPORT))
  [[ "$SPORT" != "$PORT" && "$SPORT" != "$CPORT" ]] || { echo "broker.sh: KAFKA_SASL_SSL_PORT must differ from the other ports" >&2; exit 2; }
fi
SASL_USER="${KAFKA_SASL_USERNAME:-stream-monitor}"

POM="$SCRIPT_DIR/pom.xml"
LOG4J_CONFIG="$SCRIPT_DIR/log4j2.properties"
PID_FILE="$RUN_DIR/broker.pid"
PROPS="$RUN_DIR/server.properties"
DATA_DIR="$RUN_DIR/data"
LOG_DIR="$RUN_DIR/logs"
SERVER_LOG="$LOG_DIR/server.log"
STDOUT_LOG="$LOG_DIR/stdout.log"
ADDRESS="$HOST:$PORT"
INSTALL_HINT="install OpenJDK 17 and Maven, e.g. apt-get install openjdk-17-jre-headless maven"

say() { echo "broker.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# ---------------------------------------------------------------- helpers

# 0 if something accepts TCP connections on 127.0.0.1:$1
port_open() {
  if command -v timeout >/dev/null 2>&1; then
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
  fi
}

read_pid() {
  local pid=""
  [[ -f "$PID_FILE" ]] && pid="$(head -n1 "$PID_FILE" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]]; then echo "$pid"; fi
}

# 0 if $1 is alive AND is the broker started for this run dir (guards against pid reuse)
is_our_broker() {
  local pid="$1" cmd=""
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  else
    cmd="$(ps -o args= -p "$pid" 2>/dev/null || true)"
  fi
  [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$PROPS"* ]]
}

find_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    JAVA="$(command -v java)"
  else
    die "java not found: Kafka 4.x needs Java 17+; $INSTALL_HINT"
  fi
  local v major
  v="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
  major="${v%%[.+-]*}"
  [[ "$major" == 1 ]] && major="$(echo "$v" | cut -d. -f2)"
  if [[ "$major" =~ ^[0-9]+$ ]] && (( major < 17 )); then
    die "$JAVA is Java $v; Kafka 4.x needs Java 17+; $INSTALL_HINT"
  fi
}

with_lock() { # with_lock FILE FD: take an exclusive lock if flock exists (fd stays open)
  command -v flock >/dev/null 2>&1 || return 0
  eval "exec $2>\"\$1\""
  flock -w 600 "$2" || die "timed out waiting for lock $1"
}

# ---------------------------------------------------------------- jars

fetch_jars() {
  local marker="$LIBS_DIR/.complete" stamp
  stamp="$(cksum <"$POM" | cut -d' ' -f1)"
  if [[ -f "$marker" && "$(cat "$marker")" == "$stamp" ]]; then
    return 0
  fi
  mkdir -p "$(dirname "$LIBS_DIR")"
  with_lock "$LIBS_DIR.lock" 8
  if [[ -f "$marker" && "$(cat "$marker")" == "$stamp" ]]; then
    return 0 # another process fetched while we waited
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to fetch the Kafka jars into $LIBS_DIR); $INSTALL_HINT"
  say "fetching Kafka jars with Maven into $LIBS_DIR (first time only)"
  local staging="$LIBS_DIR.partial.$$" t0=$SECONDS
  rm -rf -- "$staging"
  if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$staging" -DincludeScope=runtime >"$staging.mvn.log" 2>&1; then
    cat "$staging.mvn.log" >&2 || true
    rm -rf -- "$staging" "$staging.mvn.log"
    die "Maven could not fetch the Kafka jars (see above)"
  fi
  rm -f -- "$staging.mvn.log"
  ls "$staging"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf -- "$staging"; die "Maven ran but no kafka_2.13 jar was copied"; }
  echo "$stamp" >"$staging/.complete" # marker: written only after a successful copy
  rm -rf -- "${LIBS_DIR:?}"
  mv -- "$staging" "$LIBS_DIR"
  say "fetched $(find "$LIBS_DIR" -maxdepth 1 -name '*.jar' | wc -l) jars in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- start

write_properties() {
  local listeners="PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CPORT"
  local protocol_map="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [[ -n "$SPORT" ]]; then
    listeners="$listeners,SASL_SSL://$HOST:$SPORT"
    protocol_map="$protocol_map,SASL_SSL:SASL_SSL"
  fi
  cat >"$PROPS" <<EOF
# Generated by deploy/kafka/broker.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$CPORT
listeners=$listeners
advertised.listeners=$listeners
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocol_map
log.dirs=$DATA_DIR

num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true

# The defaults (3/3/2) leave the group and transaction coordinators unavailable on one node:
# consumer groups and init_transactions() would hang.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# One partition each: faster first coordinator lookup in tests.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1

group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
# Default 128 MiB would come out of a 512 MiB heap.
log.cleaner.dedupe.buffer.size=33554432
log.retention.check.interval.ms=30000
EOF
  if [[ -n "$SPORT" ]]; then
    chmod 600 "$PROPS" # holds the PLAIN user's password and the keystore password
    cat >>"$PROPS" <<EOF

# SASL_SSL listener (KAFKA_SASL_SSL_PORT): TLS with a self-signed CA, SASL PLAIN + SCRAM.
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$KEYSTORE_PASSWORD
listener.name.sasl_ssl.ssl.key.password=$KEYSTORE_PASSWORD
listener.name.sasl_ssl.ssl.client.auth=none
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
  fi
}

# Fresh CA + broker key pair for the SASL_SSL listener, and the SASL user's password file.
# "make_sasl_ssl_material reuse" (KAFKA_KEEP_DATA restarts) keeps the existing ones: the SCRAM
# credentials live in the kept metadata log, so the password must not change.
make_sasl_ssl_material() {
  command -v openssl >/dev/null 2>&1 || die "openssl not found (needed for KAFKA_SASL_SSL_PORT); apt-get install openssl"
  [[ "$SASL_USER" =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_SASL_USERNAME may only use A-Z a-z 0-9 . _ -"
  TLS_DIR="$RUN_DIR/tls"; SASL_DIR="$RUN_DIR/sasl"
  if [[ "${1:-}" == reuse && -f "$SASL_DIR/password" && -f "$TLS_DIR/keystore.password" && -f "$TLS_DIR/broker.p12" ]]; then
    SASL_PASSWORD="$(cat "$SASL_DIR/password")"; KEYSTORE_PASSWORD="$(cat "$TLS_DIR/keystore.password")"
    return 0
  fi
  rm -rf -- "$TLS_DIR" "$SASL_DIR"
  mkdir -p "$TLS_DIR" "$SASL_DIR"
  chmod 700 "$SASL_DIR"
  SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-$(openssl rand -hex 16)}"
  [[ "$SASL_PASSWORD" =~ ^[A-Za-z0-9._~+/=-]+$ ]] || die "KAFKA_SASL_PASSWORD may only use A-Z a-z 0-9 . _ ~ + / = -"
  (umask 077 && printf '%s' "$SASL_PASSWORD" >"$SASL_DIR/password" && printf '%s' "$SASL_USER" >"$SASL_DIR/username")
  KEYSTORE_PASSWORD="$(openssl rand -hex 16)"
  (umask 077 && printf '%s' "$KEYSTORE_PASSWORD" >"$TLS_DIR/keystore.password")
  local log="$LOG_DIR/tls.log"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=stream-monitor test CA" \
      -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$TLS_DIR/broker.key" -out "$TLS_DIR/broker.csr" &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$TLS_DIR/broker.ext" &&
    openssl x509 -req -in "$TLS_DIR/broker.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
      -CAcreateserial -days 30 -sha256 -extfile "$TLS_DIR/broker.ext" -out "$TLS_DIR/broker.pem" &&
    openssl pkcs12 -export -in "$TLS_DIR/broker.pem" -inkey "$TLS_DIR/broker.key" -certfile "$TLS_DIR/ca.pem" \
      -name broker -passout "pass:$KEYSTORE_PASSWORD" -out "$TLS_DIR/broker.p12"
  } >"$log" 2>&1 || { cat "$log" >&2 || true; die "could not create the TLS material for the SASL_SSL listener"; }
  chmod 600 "$TLS_DIR/ca.key" "$TLS_DIR/broker.key" "$TLS_DIR/broker.p12"
}

print_failure_logs() {
  if [[ -s "$SERVER_LOG" ]]; then
    say "last 50 lines of $SERVER_LOG:"
    tail -n 50 "$SERVER_LOG" >&2 || true
  fi
  if [[ -s "$STDOUT_LOG" ]]; then
    say "last 20 lines of $STDOUT_LOG:"
    tail -n 20 "$STDOUT_LOG" >&2 || true
  fi
}

kill_pid() { # kill_pid PID: SIGTERM, wait STOP_TIMEOUT s, SIGKILL
  local pid="$1" waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if (( waited >= STOP_TIMEOUT * 4 )); then
      say "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      local n=0
      while kill -0 "$pid" 2>/dev/null && (( n < 40 )); do sleep 0.25; n=$((n + 1)); done
      break
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
}

start_watchdog() { # stops the broker once KAFKA_OWNER_PID is gone
  local owner="$1" broker="$2"
  [[ "$owner" =~ ^[0-9]+$ ]] || die "KAFKA_OWNER_PID must be a pid, got '$owner'"
  # shellcheck disable=SC2016  # the watchdog's script is expanded by its own bash
  KAFKA_PORT="$PORT" KAFKA_CONTROLLER_PORT="$CPORT" KAFKA_RUN_DIR="$RUN_DIR" KAFKA_LIBS_DIR="$LIBS_DIR" \
  KAFKA_STOP_TIMEOUT="$STOP_TIMEOUT" KAFKA_OWNER_PID="" \
    nohup bash -c '
      while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 2; done
      if kill -0 "$2" 2>/dev/null; then exec bash "$3" stop; fi
    ' watchdog "$owner" "$broker" "$SCRIPT_PATH" </dev/null >>"$LOG_DIR/watchdog.log" 2>&1 8>&- 9>&- &
}

cmd_start() {
  find_java
  [[ -f "$POM" ]] || die "missing $POM"
  [[ -f "$LOG4J_CONFIG" ]] || die "missing $LOG4J_CONFIG"
  mkdir -p "$RUN_DIR"
  RUN_DIR="$(cd -- "$RUN_DIR" && pwd -P)"
  PID_FILE="$RUN_DIR/broker.pid"; PROPS="$RUN_DIR/server.properties"; DATA_DIR="$RUN_DIR/data"
  LOG_DIR="$RUN_DIR/logs"; SERVER_LOG="$LOG_DIR/server.log"; STDOUT_LOG="$LOG_DIR/stdout.log"
  with_lock "$RUN_DIR/.lock" 9 # one start/stop at a time per run dir

  local pid
  pid="$(read_pid)"
  if [[ -n "$pid" ]] && is_our_broker "$pid"; then
    if port_open "$PORT"; then
      say "a broker is already running for port $PORT (pid $pid): reusing it (data not wiped)"
      echo "$ADDRESS"
      return 0
    fi
    say "broker pid $pid is alive but $ADDRESS does not accept connections: restarting it"
    kill_pid "$pid"
  fi
  rm -f -- "$PID_FILE"

  for p in "$PORT" "$CPORT" $SPORT; do
    if port_open "$p"; then
      die "port $p on $HOST is already in use by another process (pick other KAFKA_PORT / KAFKA_CONTROLLER_PORT / KAFKA_SASL_SSL_PORT)"
    fi
  done

  local t0=$SECONDS
  fetch_jars
  local cp="$LIBS_DIR/*"
  local l4j=(-Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR")
  # StorageTool logs its own config dump; keep it out of the broker's server.log
  local tool_l4j=(-Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR/storage-tool")

  if [[ "${KAFKA_KEEP_DATA:-0}" == 1 && -f "$DATA_DIR/meta.properties" ]]; then
    # restart on the same data (fault-injection tests): same ports required, no re-format
    say "KAFKA_KEEP_DATA=1: restarting on the existing data dir $DATA_DIR"
    [[ -d "$LOG_DIR" ]] && { rm -rf -- "${RUN_DIR:?}/logs.prev"; mv -- "$LOG_DIR" "$RUN_DIR/logs.prev"; }
    mkdir -p "$LOG_DIR"
    [[ -z "$SPORT" ]] || make_sasl_ssl_material reuse
    write_properties
  else
    # fresh data and logs every start (the previous logs are kept once as logs.prev)
    rm -rf -- "${RUN_DIR:?}/data" "${RUN_DIR:?}/logs.prev"
    [[ -d "$LOG_DIR" ]] && mv -- "$LOG_DIR" "$RUN_DIR/logs.prev"
    mkdir -p "$DATA_DIR" "$LOG_DIR"
    local scram=()
    if [[ -n "$SPORT" ]]; then
      make_sasl_ssl_material
      scram=(--add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]"
             --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]")
    fi
    write_properties

    local cid
    if ! cid="$("$JAVA" "${tool_l4j[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>"$LOG_DIR/storage-tool.log")"; then
      cat "$LOG_DIR/storage-tool.log" >&2 || true
      die "kafka.tools.StorageTool random-uuid failed"
    fi
    cid="$(echo "$cid" | tail -n1 | tr -d '[:space:]')"
    [[ "$cid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "unexpected cluster id from StorageTool: '$cid'"
    if ! "$JAVA" "${tool_l4j[@]}" -cp "$cp" kafka.tools.StorageTool format --standalone \
          -t "$cid" -c "$PROPS" ${scram[@]+"${scram[@]}"} >>"$LOG_DIR/storage-tool.log" 2>&1; then
      cat "$LOG_DIR/storage-tool.log" >&2 || true
      die "kafka.tools.StorageTool format failed"
    fi
  fi

  # -XX:+ExitOnOutOfMemoryError: a broken broker dies instead of half-working.
  # 8>&- 9>&-: the broker must not inherit the lock fds (or the lock lives as long as it does).
  # shellcheck disable=SC2086
  nohup "$JAVA" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
      -Djava.awt.headless=true "${l4j[@]}" ${KAFKA_JVM_OPTS:-} \
      -cp "$cp" kafka.Kafka "$PROPS" </dev/null >"$STDOUT_LOG" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  say "started broker pid $pid on $ADDRESS (controller $HOST:$CPORT), run dir $RUN_DIR; waiting up to ${START_TIMEOUT}s"

  local deadline=$((SECONDS + START_TIMEOUT)) port_ok=0 log_ok=0 log_grace=""
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      local rc=0
      wait "$pid" 2>/dev/null || rc=$?
      rm -f -- "$PID_FILE"
      print_failure_logs
      die "broker process $pid exited (status $rc) before it was ready"
    fi
    (( port_ok )) || { port_open "$PORT" && port_ok=1; } || true
    (( log_ok )) || { grep -q "Kafka Server started" "$SERVER_LOG" 2>/dev/null && log_ok=1; } || true
    if (( port_ok && log_ok )); then break; fi
    if (( port_ok )) && [[ -z "$log_grace" ]]; then log_grace=$((SECONDS + 15)); fi
    if [[ -n "$log_grace" ]] && (( SECONDS >= log_grace )); then
      say "warning: $ADDRESS accepts connections but 'Kafka Server started' is not in $SERVER_LOG; going on"
      break
    fi
    if (( SECONDS >= deadline )); then
      print_failure_logs
      kill_pid "$pid"
      rm -f -- "$PID_FILE"
      die "broker not ready within ${START_TIMEOUT}s (port open: $port_ok, 'Kafka Server started' logged: $log_ok); stopped it"
    fi
    sleep 0.2
  done

  if [[ -n "${KAFKA_OWNER_PID:-}" ]]; then
    start_watchdog "$KAFKA_OWNER_PID" "$pid"
    say "watchdog: the broker will be stopped when pid $KAFKA_OWNER_PID exits"
  fi
  if [[ -n "$SPORT" ]]; then
    say "SASL_SSL listener on $HOST:$SPORT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512): CA $TLS_DIR/ca.pem," \
        "user '$SASL_USER', password in $SASL_DIR/password"
  fi
  say "ready in $((SECONDS - t0)) s: $ADDRESS"
  echo "$ADDRESS"
}

# ---------------------------------------------------------------- stop / status

cmd_stop() {
  if [[ ! -d "$RUN_DIR" ]]; then
    say "not running (no run dir $RUN_DIR)"
    return 0
  fi
  RUN_DIR="$(cd -- "$RUN_DIR" && pwd -P)"
  PID_FILE="$RUN_DIR/broker.pid"; PROPS="$RUN_DIR/server.properties"
  with_lock "$RUN_DIR/.lock" 9
  local pid
  pid="$(read_pid)"
  if [[ -z "$pid" ]]; then
    say "not running (no pid file for port $PORT)"
    rm -f -- "$PID_FILE"
    return 0
  fi
  if ! is_our_broker "$pid"; then
    say "not running (stale pid file for pid $pid removed)"
    rm -f -- "$PID_FILE"
    return 0
  fi
  say "stopping broker pid $pid ($ADDRESS)"
  local t0=$SECONDS
  kill_pid "$pid"
  if kill -0 "$pid" 2>/dev/null; then
    die "pid $pid survived SIGKILL"
  fi
  rm -f -- "$PID_FILE"
  say "stopped in $((SECONDS - t0)) s"
}

cmd_status() {
  if [[ -d "$RUN_DIR" ]]; then
    RUN_DIR="$(cd -- "$RUN_DIR" && pwd -P)"
    PID_FILE="$RUN_DIR/broker.pid"; PROPS="$RUN_DIR/server.properties"
  fi
  local pid
  pid="$(read_pid)"
  if [[ -n "$pid" ]] && is_our_broker "$pid"; then
    if port_open "$PORT"; then
      echo "running pid $pid $ADDRESS"
      return 0
    fi
    echo "unhealthy pid $pid $ADDRESS (process alive, port not accepting connections)"
    return 1
  fi
  echo "stopped $ADDRESS${pid:+ (stale pid file for pid $pid)}"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $(basename -- "$0") start|stop|status   (env: KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_RUN_DIR, KAFKA_LIBS_DIR, KAFKA_SASL_SSL_PORT)" >&2
    exit 2
    ;;
esac
