#!/usr/bin/env bash
# Fetch, start and stop a local Elasticsearch for escli's demo, tests and benchmarks.
#
#   scripts/es.sh up      [NODES=1|3] [ES_VERSION=9.5.4] [ES_PORT=9200] [SECURE=0|1] [TLS=0|1] [ES_HEAP=1g]
#   scripts/es.sh down    stops the cluster this script started on ES_PORT (or every one with ALL=1)
#   scripts/es.sh status  prints the URL and pids of the cluster on ES_PORT
#   scripts/es.sh fetch   downloads and unpacks the distribution only
#   scripts/es.sh rundir  prints where the cluster on ES_PORT keeps its config, data, logs and password
#   ENGINE=opensearch scripts/es.sh up|down|...   the same for OpenSearch 2.19 or 3.x (scripts/opensearch.sh)
#
# Versions tested here: 9.5.4 (the default), 8.19.21 and 7.17.29 (ES_VERSION=...); Java comes from
# JVM_DIR (/usr/lib/jvm): 17 for 7.x and 8.x, 21+ for 9.x (ES_JAVA_HOME overrides).
# The distribution is Elasticsearch's integ-test-zip from Maven Central (a real server, no bundled JDK),
# fetched with Maven so the normal repository settings apply, and kept under .cache/ (git-ignored).
# Elasticsearch refuses to run as root, so as root the nodes run as the system user `escli-es`.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ES_VERSION=${ES_VERSION:-9.5.4}
NODES=${NODES:-1}
ES_PORT=${ES_PORT:-9200}
SECURE=${SECURE:-0}
TLS=${TLS:-0}
ES_HEAP=${ES_HEAP:-1g}
ES_USER=${ES_USER:-escli-es}
ES_WAIT_SECONDS=${ES_WAIT_SECONDS:-180}
ES_MAJOR=${ES_VERSION%%.*}
ENGINE=${ENGINE:-elasticsearch}
ENGINE_LABEL="Elasticsearch $ES_VERSION"
JVM_DIR=${JVM_DIR:-/usr/lib/jvm}
[ "$TLS" = 1 ] && SECURE=1

log() { printf 'es.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ensure_user() {
  [ "$(id -u)" = 0 ] || return 0
  id "$ES_USER" >/dev/null 2>&1 && return 0
  log "creating system user $ES_USER (Elasticsearch refuses to run as root)"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
}

choose_cache_dir() {
  # The engine's user must reach the distribution and its data through every parent directory. A checkout
  # under a private home (e.g. /root) cannot be reached, so the engine then lives under /var/tmp instead.
  CACHE_DIR=${ESCLI_ES_CACHE:-$REPO_ROOT/.cache/es}
  if [ -z "${ESCLI_ES_CACHE:-}" ] && [ "$(id -u)" = 0 ]; then
    ensure_user
    if ! su "$ES_USER" -s /bin/bash -c "test -x '$REPO_ROOT'" 2>/dev/null; then
      CACHE_DIR=/var/tmp/escli-es/$(printf '%s' "$REPO_ROOT" | md5sum | cut -c1-12)
    fi
  fi
  DIST_DIR="$CACHE_DIR/dist/elasticsearch-$ES_VERSION"
  RUN_DIR="$CACHE_DIR/run/$ES_PORT"
}
choose_cache_dir

java_home() {
  # Elasticsearch 9 needs Java 21+; 7.17 and 8.x run on 17. Prefer an explicit ES_JAVA_HOME.
  if [ -n "${ES_JAVA_HOME:-}" ]; then echo "$ES_JAVA_HOME"; return; fi
  if [ "$ES_MAJOR" -ge 9 ]; then
    pick_java "Java 21 or newer" temurin-25-jdk-amd64 temurin-21-jdk-amd64 java-21-openjdk-amd64
  else
    pick_java "Java 17" java-17-openjdk-amd64 temurin-17-jdk-amd64 temurin-21-jdk-amd64
  fi
}

pick_java() { # pick_java WHAT DIR...: the first of JVM_DIR's directories with a java, or one line and exit
  local what=$1 c; shift
  for c in "$@"; do
    if [ -x "$JVM_DIR/$c/bin/java" ]; then echo "$JVM_DIR/$c"; return; fi
  done
  local looked="$*"
  die "no $what found for $ENGINE_LABEL (looked in $JVM_DIR for ${looked// /, }); install one or set ES_JAVA_HOME"
}

as_es_user() {
  # Run a command as the engine's user; when we are not root that is simply us.
  if [ "$(id -u)" = 0 ]; then
    su "$ES_USER" -s /bin/bash -c "$*"
  else
    bash -c "$*"
  fi
}

fetch() {
  [ -x "$DIST_DIR/bin/elasticsearch" ] && return 0
  command -v mvn >/dev/null || die "mvn is needed to fetch Elasticsearch"
  command -v unzip >/dev/null || die "unzip is needed to unpack Elasticsearch"
  local dl="$CACHE_DIR/downloads" artifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip"
  mkdir -p "$dl" "$CACHE_DIR/dist"
  if [ ! -s "$dl/elasticsearch-$ES_VERSION.zip" ]; then
    log "fetching $artifact with Maven"
    mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$artifact" -DoutputDirectory="$dl" -Dmdep.overWriteIfNewer=true >&2 \
      || die "could not fetch $artifact"
  fi
  local tmp
  tmp=$(mktemp -d "$CACHE_DIR/dist/.unpack.XXXXXX")
  unzip -q "$dl/elasticsearch-$ES_VERSION.zip" -d "$tmp"
  mv "$tmp/elasticsearch-$ES_VERSION" "$DIST_DIR"
  rmdir "$tmp"
  log "unpacked Elasticsearch $ES_VERSION into $DIST_DIR"
}

install_analysis_plugin() {
  # The integ-test-zip has no analysis-common module, and the security index's "email" analyzer needs four of
  # its components; without them API keys and native users cannot be created. scripts/es-analysis-plugin is a
  # tiny plugin that provides them from Lucene's own classes, compiled here against the distribution's jars.
  # 7.x is never secured here (its Lucene 8 has no analysis.email package to build the plugin from).
  [ "$ES_MAJOR" -ge 8 ] || return 0
  local dest="$DIST_DIR/plugins/escli-analysis" src="$REPO_ROOT/scripts/es-analysis-plugin"
  [ -f "$dest/escli-analysis.jar" ] && return 0
  local java; java=$(java_home)
  local tmp; tmp=$(mktemp -d)
  if ! "$java/bin/javac" -nowarn -cp "$DIST_DIR/lib/*" -d "$tmp/classes" \
      "$src/src/escli/analysis/EscliAnalysisPlugin.java" >"$tmp/javac.log" 2>&1; then
    log "could not build the analysis plugin for $ES_VERSION (API keys will be unavailable):"
    tail -n 5 "$tmp/javac.log" >&2
    rm -rf "$tmp"
    return 0
  fi
  mkdir -p "$dest"
  "$java/bin/jar" --create --file "$dest/escli-analysis.jar" -C "$tmp/classes" .
  local jv; jv=$("$java/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  {
    echo "description=pattern_capture, lowercase, unique and uax_url_email for the security index (escli tests)"
    echo "version=1.0"
    echo "name=escli-analysis"
    echo "classname=escli.analysis.EscliAnalysisPlugin"
    echo "java.version=$jv"
    echo "elasticsearch.version=$ES_VERSION"
  } >"$dest/plugin-descriptor.properties"
  rm -rf "$tmp"
  log "installed the escli-analysis plugin into $DIST_DIR/plugins"
}

node_pid() { # live pid of node $1, or nothing
  local f="$RUN_DIR/node-$1/pid"
  [ -s "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

scheme() { if [ "$TLS" = 1 ]; then echo https; else echo http; fi; }

curl_es() { # curl_es PORT PATH [args]: talks to one node with the cluster's credentials and CA
  local port=$1 path=$2; shift 2
  local args=(-s --max-time 5)
  if [ "$SECURE" = 1 ]; then args+=(-u "elastic:$(cat "$RUN_DIR/elastic-password")"); fi
  if [ "$TLS" = 1 ]; then args+=(--cacert "$RUN_DIR/tls/ca.crt"); fi
  curl "${args[@]}" "$@" "$(scheme)://127.0.0.1:$port$path"
}

make_tls() {
  local d="$RUN_DIR/tls"
  [ -s "$d/node.crt" ] && return 0
  mkdir -p "$d"
  log "making a CA and a node certificate in $d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=escli test CA" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/node.key" -out "$d/node.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/node.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
    -extfile "$d/ext.cnf" -out "$d/node.crt" 2>/dev/null
}

node_yml() { # node_yml INDEX DIR MASTERS_KEY: the node settings both engines share (opensearch.sh uses it too)
  local i=$1 dir=$2 key=$3
  echo "cluster.name: escli-$ES_PORT"
  echo "node.name: node-$i"
  echo "network.host: 127.0.0.1"
  echo "http.port: $((ES_PORT + i))"
  echo "transport.port: $((ES_PORT + 100 + i))"
  echo "path.data: $dir/data"
  echo "path.logs: $dir/logs"
  echo "action.destructive_requires_name: false"
  if [ "$NODES" = 1 ]; then
    echo "discovery.type: single-node"
  else
    local seeds="" masters="" n
    for n in $(seq 0 $((NODES - 1))); do
      seeds="$seeds\"127.0.0.1:$((ES_PORT + 100 + n))\","
      masters="$masters\"node-$n\","
    done
    echo "discovery.seed_hosts: [${seeds%,}]"
    echo "$key: [${masters%,}]"
  fi
}

write_node_config() { # write_node_config INDEX
  local i=$1 dir="$RUN_DIR/node-$i"
  mkdir -p "$dir/data" "$dir/logs"
  rm -rf "$dir/config"
  cp -r "$DIST_DIR/config" "$dir/config"
  mkdir -p "$dir/config/jvm.options.d"
  printf -- '-Xms%s\n-Xmx%s\n' "$ES_HEAP" "$ES_HEAP" >"$dir/config/jvm.options.d/heap.options"
  # Keep GC logs inside the node's own log directory.
  sed -i "s|file=gc.log|file=$dir/logs/gc.log|; s|-XX:ErrorFile=.*|-XX:ErrorFile=$dir/logs/hs_err_pid%p.log|" \
    "$dir/config/jvm.options"
  {
    node_yml "$i" "$dir" cluster.initial_master_nodes
    if [ "$SECURE" = 1 ]; then
      echo "xpack.security.enabled: true"
      echo "xpack.security.authc.api_key.enabled: true"
      if [ "$TLS" = 1 ]; then
        echo "xpack.security.http.ssl.enabled: true"
        echo "xpack.security.http.ssl.key: certs/node.key"
        echo "xpack.security.http.ssl.certificate: certs/node.crt"
        echo "xpack.security.http.ssl.certificate_authorities: [\"certs/ca.crt\"]"
      fi
      if [ "$NODES" != 1 ]; then
        # A multi-node secured cluster needs transport TLS; the test CA serves both layers.
        echo "xpack.security.transport.ssl.enabled: true"
        echo "xpack.security.transport.ssl.verification_mode: certificate"
        echo "xpack.security.transport.ssl.key: certs/node.key"
        echo "xpack.security.transport.ssl.certificate: certs/node.crt"
        echo "xpack.security.transport.ssl.certificate_authorities: [\"certs/ca.crt\"]"
      fi
    else
      echo "xpack.security.enabled: false"
    fi
  } >"$dir/config/elasticsearch.yml"
  if [ "$SECURE" = 1 ]; then
    # Elasticsearch 9 only reads TLS material from inside its config directory.
    mkdir -p "$dir/config/certs"
    cp "$RUN_DIR/tls/ca.crt" "$RUN_DIR/tls/node.crt" "$RUN_DIR/tls/node.key" "$dir/config/certs/"
    # The keystore is written as the caller; up() hands the whole run directory to the engine's user after.
    rm -f "$dir/config/elasticsearch.keystore"
    ES_JAVA_HOME=$(java_home) ES_PATH_CONF="$dir/config" "$DIST_DIR/bin/elasticsearch-keystore" create -s >/dev/null
    ES_JAVA_HOME=$(java_home) ES_PATH_CONF="$dir/config" "$DIST_DIR/bin/elasticsearch-keystore" add -x -f \
      bootstrap.password <"$RUN_DIR/elastic-password" >/dev/null
  fi
}

start_node() { # start_node INDEX
  local i=$1
  local dir="$RUN_DIR/node-$i"  # a separate `local`: $i is not set yet while one `local` expands its words
  rm -f "$dir/pid"
  as_es_user "cd '$dir' && ES_JAVA_HOME='$(java_home)' ES_PATH_CONF='$dir/config' \
    '$DIST_DIR/bin/elasticsearch' -d -p '$dir/pid' >'$dir/logs/startup.out' 2>&1" || {
    log "node-$i failed to start; last lines of its log:"
    tail -n 40 "$dir/logs/startup.out" "$dir/logs/escli-$ES_PORT.log" >&2 2>/dev/null || true
    return 1
  }
}

wait_ready() {
  local deadline=$((SECONDS + ES_WAIT_SECONDS)) body=""
  while [ $SECONDS -lt $deadline ]; do
    body=$(curl_es "$ES_PORT" "/_cluster/health?wait_for_nodes=$NODES&timeout=2s" 2>/dev/null || true)
    case "$body" in
      *'"status":"green"'*|*'"status":"yellow"'*)
        case "$body" in *'"timed_out":false'*) return 0 ;; esac ;;
    esac
    local i
    for i in $(seq 0 $((NODES - 1))); do
      if [ -z "$(node_pid "$i")" ] && [ -s "$RUN_DIR/node-$i/pid" ]; then
        log "node-$i exited during start-up; last lines of its log:"
        tail -n 40 "$RUN_DIR/node-$i/logs/escli-$ES_PORT.log" >&2 2>/dev/null || true
        return 1
      fi
    done
    sleep 1
  done
  log "cluster on port $ES_PORT not ready after ${ES_WAIT_SECONDS}s (last answer: ${body:-none}); last lines of node-0's log:"
  tail -n 40 "$RUN_DIR/node-0/logs/escli-$ES_PORT.log" >&2 2>/dev/null || true
  return 1
}

up() {
  java_home >/dev/null  # no suitable Java: one line and stop, before anything is fetched or started
  ensure_user
  fetch
  install_analysis_plugin
  mkdir -p "$RUN_DIR"
  # Already running (ours)? Then there is nothing to do: es-up is idempotent.
  local running=0 i
  for i in $(seq 0 $((NODES - 1))); do [ -n "$(node_pid "$i")" ] && running=$((running + 1)); done
  if [ "$running" = "$NODES" ] && [ -f "$RUN_DIR/settings" ] && [ "$(cat "$RUN_DIR/settings")" = "$(settings_line)" ]; then
    if wait_ready; then
      log "already running"
      echo "$(scheme)://127.0.0.1:$ES_PORT"
      return 0
    fi
  fi
  [ "$running" -gt 0 ] && down_port
  if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$ES_PORT/" || curl -sk --max-time 2 -o /dev/null "https://127.0.0.1:$ES_PORT/"; then
    die "port $ES_PORT is taken by something this script did not start; choose ES_PORT=..."
  fi
  # A cluster's data is tied to its shape: start from scratch when the settings changed.
  if [ ! -f "$RUN_DIR/settings" ] || [ "$(cat "$RUN_DIR/settings")" != "$(settings_line)" ]; then
    [ -f "$RUN_DIR/settings" ] && log "settings changed ($(cat "$RUN_DIR/settings") -> $(settings_line)): fresh data directory"
    rm -rf "${RUN_DIR:?}"/node-* "$RUN_DIR/tls" "$RUN_DIR/elastic-password"
  fi
  settings_line >"$RUN_DIR/settings"
  if [ "$SECURE" = 1 ]; then
    if [ ! -s "$RUN_DIR/elastic-password" ]; then
      (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$RUN_DIR/elastic-password")
    fi
    make_tls
  fi
  for i in $(seq 0 $((NODES - 1))); do write_node_config "$i"; done
  if [ "$(id -u)" = 0 ]; then
    chown -R "$ES_USER" "$RUN_DIR" "$DIST_DIR"
    chmod 644 "$RUN_DIR/elastic-password" 2>/dev/null || true
    check_reachable
  fi
  for i in $(seq 0 $((NODES - 1))); do start_node "$i"; done
  if ! wait_ready; then
    down_port
    exit 1
  fi
  log "$ENGINE_LABEL up: $NODES node(s), logs in $RUN_DIR/node-*/logs"
  echo "$(scheme)://127.0.0.1:$ES_PORT"
}

check_reachable() {
  # The engine's user must reach the distribution through every parent directory.
  if ! su "$ES_USER" -s /bin/bash -c "test -x '$DIST_DIR/bin/elasticsearch'"; then
    die "user $ES_USER cannot reach $DIST_DIR; set ESCLI_ES_CACHE to a directory it can traverse (e.g. /var/tmp/escli-es)"
  fi
}

settings_line() { echo "version=$ES_VERSION nodes=$NODES secure=$SECURE tls=$TLS heap=$ES_HEAP"; }

down_port() {
  local i pid pids=""
  for d in "$RUN_DIR"/node-*; do
    [ -d "$d" ] || continue
    i=${d##*/node-}
    pid=$(node_pid "$i")
    [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; pids="$pids $pid"; }
  done
  for pid in $pids; do
    local t=0
    while kill -0 "$pid" 2>/dev/null && [ $t -lt 60 ]; do sleep 0.5; t=$((t + 1)); done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$RUN_DIR"/node-*/pid
  [ -n "$pids" ] && log "stopped cluster on port $ES_PORT (pids:$pids)"
  return 0
}

down() {
  if [ "${ALL:-0}" = 1 ]; then
    for d in "$CACHE_DIR"/run/*; do
      [ -d "$d" ] || continue
      RUN_DIR=$d ES_PORT=${d##*/} down_port
    done
  else
    down_port
  fi
}

stop_node() { # stop one node of a running cluster (tests use it to fail a node)
  local pid; pid=$(node_pid "$1")
  [ -n "$pid" ] || die "node-$1 on port $ES_PORT is not running"
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
  log "stopped node-$1 (pid $pid)"
}

status() {
  local i pid any=0
  for d in "$RUN_DIR"/node-*; do
    [ -d "$d" ] || continue
    i=${d##*/node-}
    pid=$(node_pid "$i")
    if [ -n "$pid" ]; then echo "node-$i pid $pid port $((ES_PORT + i))"; any=1; fi
  done
  [ $any = 1 ] && { echo "$(scheme)://127.0.0.1:$ES_PORT"; return 0; }
  echo "not running on port $ES_PORT"
  return 1
}

case "$ENGINE" in
  elasticsearch) ;;
  opensearch) . "$REPO_ROOT/scripts/opensearch.sh" ;;  # replaces fetch, node config and start
  *) die "ENGINE must be elasticsearch or opensearch, not $ENGINE" ;;
esac

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  fetch) fetch ;;
  rundir) echo "$RUN_DIR" ;;
  stop-node) stop_node "${2:?node index}" ;;
  start-node) start_node "${2:?node index}" ;;
  *) echo "usage: $0 up|down|status|fetch|stop-node N|start-node N" >&2; exit 2 ;;
esac
