#!/usr/bin/env bash
# A local, unauthenticated image registry (Debian's docker-registry) for demos and CI.
#
#   scripts/registry.sh start|stop|status
#
# Environment:
#   MKUBE_REGISTRY_ADDR  listen address (default 127.0.0.1:5000). Docker treats
#                        localhost registries as insecure, so `docker push
#                        localhost:5000/hello:1` works without TLS.
#   MKUBE_REGISTRY_DIR   state directory: config.yml, storage/, registry.pid,
#                        registry.log (default ${XDG_STATE_HOME:-~/.local/state}/mkube/registry)
#
# start: idempotent; waits until GET /v2/ answers. If some other registry already
#        answers on the address, it is left alone and start succeeds.
# stop:  stops only the process recorded in our pidfile (TERM, then KILL after 10 s).
# status: exit 0 when a registry answers on the address, 3 when none does.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/deps.sh
. "$repo/scripts/lib/deps.sh"
MKUBE_LOG_PREFIX="registry.sh"

addr="${MKUBE_REGISTRY_ADDR:-127.0.0.1:5000}"
dir="${MKUBE_REGISTRY_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/mkube/registry}"
pidfile="$dir/registry.pid"
logfile="$dir/registry.log"
config="$dir/config.yml"

port="${addr##*:}"
host="${addr%:*}"
case "$host" in
    "" | 0.0.0.0 | "[::]") probe_host=127.0.0.1 ;;
    *) probe_host="$host" ;;
esac
url="http://$probe_host:$port/v2/"

usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"
}

# our_pid: print the pid from our pidfile if that process is alive and is docker-registry.
our_pid() {
    local pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'docker-registry' || return 1
    echo "$pid"
}

answers() {
    mkube_http_ok "$url"
}

write_config() {
    mkdir -p "$dir/storage"
    local secret
    secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    cat >"$config" <<EOF
# Written by scripts/registry.sh; rewritten on every start.
version: 0.1
log:
  level: info
  fields:
    service: mkube-registry
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $addr
  secret: $secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF
}

start() {
    local pid i
    if pid=$(our_pid); then
        for _ in $(seq 1 50); do
            if answers; then
                echo "registry running at localhost:$port (pid $pid, data $dir)"
                return 0
            fi
            sleep 0.2
        done
        mkube_die "registry pid $pid runs but $url does not answer; see $logfile"
    fi
    if answers; then
        echo "a registry already answers at $probe_host:$port (not started by this script; left alone)"
        return 0
    fi
    command -v docker-registry >/dev/null 2>&1 || mkube_ensure_packages docker-registry
    command -v docker-registry >/dev/null 2>&1 || mkube_die "docker-registry not found after install"
    write_config
    : >>"$logfile"
    # setsid: the registry outlives this script and does not get the caller's Ctrl-C.
    setsid docker-registry serve "$config" >>"$logfile" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"
    for i in $(seq 1 75); do
        if answers; then
            echo "registry running at localhost:$port (pid $pid, data $dir)"
            return 0
        fi
        if ! [ -d "/proc/$pid" ]; then
            rm -f "$pidfile"
            tail -n 20 "$logfile" >&2
            mkube_die "docker-registry exited at start (is $addr in use?); log: $logfile"
        fi
        sleep 0.2
    done
    mkube_die "docker-registry (pid $pid) did not answer $url within $((i / 5)) s; log: $logfile"
}

stop() {
    local pid
    if ! pid=$(our_pid); then
        rm -f "$pidfile"
        echo "registry not running (no live process in $pidfile)"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        [ -d "/proc/$pid" ] || break
        sleep 0.2
    done
    if [ -d "/proc/$pid" ]; then
        mkube_log "pid $pid ignored SIGTERM for 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "registry stopped (pid $pid)"
}

status() {
    local pid
    if pid=$(our_pid) && answers; then
        echo "registry running at localhost:$port (pid $pid, data $dir)"
    elif answers; then
        echo "a registry answers at $probe_host:$port (not started by this script)"
    elif pid=$(our_pid); then
        echo "registry pid $pid runs but $url does not answer; see $logfile"
        return 1
    else
        echo "no registry answers at $probe_host:$port"
        return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
