#!/usr/bin/env bash
# Start and stop a local Redis (Debian's redis-server) for escli's shared cache level: demo, tests, benchmarks.
#
#   scripts/redis.sh up      [REDIS_PORT=6379]  installs redis-server if missing, starts it on 127.0.0.1
#   scripts/redis.sh down    stops the server this script started on REDIS_PORT
#   scripts/redis.sh status  prints the URL and pid of the server on REDIS_PORT
#   scripts/redis.sh url     prints redis://127.0.0.1:REDIS_PORT/0
#
# Idempotent like es.sh: a second `up` finds the live pid and says "already running"; `down` kills only the pid
# from its own pid file; a port held by something else is refused. As root the server runs as the system user
# `escli-redis` (it needs no privileges). No persistence: a cache, not a database.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_USER=${REDIS_USER:-escli-redis}
REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}

log() { printf 'redis.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ensure_installed() {
  [ -x "$REDIS_SERVER" ] && return 0
  [ "$(id -u)" = 0 ] || die "redis-server is not installed; as root: apt-get install redis-server"
  log "installing redis-server"
  # Several installs may run at once on a shared machine: wait for the dpkg lock instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq redis-server >&2
  [ -x "$REDIS_SERVER" ] || die "redis-server still missing after apt-get"
}

ensure_user() {
  [ "$(id -u)" = 0 ] || return 0
  id "$REDIS_USER" >/dev/null 2>&1 && return 0
  log "creating system user $REDIS_USER (the server runs unprivileged)"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$REDIS_USER"
}

choose_run_dir() {
  # The server's user must reach its directory through every parent: a checkout under /root cannot be reached.
  RUN_DIR=${ESCLI_REDIS_RUN:-$REPO_ROOT/.cache/redis/$REDIS_PORT}
  if [ -z "${ESCLI_REDIS_RUN:-}" ] && [ "$(id -u)" = 0 ]; then
    ensure_user
    if ! su "$REDIS_USER" -s /bin/bash -c "test -x '$REPO_ROOT'" 2>/dev/null; then
      RUN_DIR=/var/tmp/escli-redis/$(printf '%s' "$REPO_ROOT" | md5sum | cut -c1-12)/$REDIS_PORT
    fi
  fi
  PID_FILE=$RUN_DIR/redis.pid
}
choose_run_dir

live_pid() { # the live pid from our pid file, or nothing
  [ -s "$PID_FILE" ] || return 0
  local pid; pid=$(cat "$PID_FILE")
  if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; }

answers() { # PING over the wire with bash's /dev/tcp: no client needed
  local reply
  # stderr silenced inside the substitution: a redirection after it comes too late for bash's own
  # "connect: Connection refused" while the server is still starting
  reply=$(exec 2>/dev/null; exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" && printf 'PING\r\n' >&3 \
    && timeout 2 head -c 7 <&3) || return 1
  [ "${reply%$'\r'}" = "+PONG" ]
}

up() {
  local pid; pid=$(live_pid)
  if [ -n "$pid" ]; then
    answers || die "pid $pid from $PID_FILE is alive but port $REDIS_PORT does not answer PING"
    log "already running on 127.0.0.1:$REDIS_PORT (pid $pid)"
    return 0
  fi
  port_busy && die "port $REDIS_PORT is in use by another process; choose REDIS_PORT"
  ensure_installed
  ensure_user
  mkdir -p "$RUN_DIR"
  rm -f "$PID_FILE"
  cat >"$RUN_DIR/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $PID_FILE
logfile $RUN_DIR/redis.log
dir $RUN_DIR
save ""
appendonly no
maxmemory 256mb
maxmemory-policy volatile-lru
EOF
  if [ "$(id -u)" = 0 ]; then
    chown -R "$REDIS_USER" "$RUN_DIR"
    su "$REDIS_USER" -s /bin/bash -c "'$REDIS_SERVER' '$RUN_DIR/redis.conf'" || die "redis-server did not start"
  else
    "$REDIS_SERVER" "$RUN_DIR/redis.conf" || die "redis-server did not start"
  fi
  local t=0
  while ! answers; do
    t=$((t + 1))
    [ $t -gt 100 ] && die "redis-server on port $REDIS_PORT did not answer within 10 s (see $RUN_DIR/redis.log)"
    sleep 0.1
  done
  log "started on 127.0.0.1:$REDIS_PORT (pid $(live_pid), as $(stat -c %U "$RUN_DIR"))"
}

down() {
  local pid; pid=$(live_pid)
  if [ -z "$pid" ]; then
    rm -f "$PID_FILE"
    log "not running on port $REDIS_PORT"
    return 0
  fi
  kill "$pid"
  local t=0
  while kill -0 "$pid" 2>/dev/null && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  log "stopped (pid $pid)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    pid=$(live_pid)
    if [ -n "$pid" ]; then echo "redis://127.0.0.1:$REDIS_PORT/0 pid $pid"; else echo "not running"; exit 1; fi ;;
  url) echo "redis://127.0.0.1:$REDIS_PORT/0" ;;
  *) die "usage: scripts/redis.sh up|down|status|url [REDIS_PORT=6379]" ;;
esac
