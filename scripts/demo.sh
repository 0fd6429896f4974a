#!/usr/bin/env bash
# The mkube demo, from a fresh machine with Docker:
#
#   scripts/demo.sh          set up, start a one-node cluster, deploy and expose hello, curl it
#   scripts/demo.sh down     stop the cluster (containers and state are kept; `mkube reset` removes them)
#
# build the hello image (FROM scratch, static busybox) -> push it to a local registry
# (localhost:5000) -> `mkube up` (in the background) -> `mkubectl create -f manifests/hello.yaml`
# -> `mkubectl expose deployment hello --port 80 --type NodePort` -> rollout status -> curl.
#
# Environment: MKUBE_DATA_DIR (default ~/.mkube), MKUBE_PORT (6443), MKUBE_KUBELET_PORT (10250),
# MKUBE_NODE_NAME (the node's name, passed as --node-name; default: the hostname).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
MKUBE_LOG_PREFIX=demo

data="${MKUBE_DATA_DIR:-$HOME/.mkube}"
port="${MKUBE_PORT:-6443}"
kubelet_port="${MKUBE_KUBELET_PORT:-10250}"
node_args=()
[ -n "${MKUBE_NODE_NAME:-}" ] && node_args=(--node-name "$MKUBE_NODE_NAME")
pidfile="$data/mkube.pid"
export KUBECONFIG="$data/kubeconfig.yaml"
mkubectl=.venv/bin/mkubectl

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

if [ "${1:-}" = "down" ]; then
    if running; then
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        mkube_log "cluster stopped (containers keep running; '.venv/bin/mkube reset --data-dir $data${node_args[*]:+ ${node_args[*]}}' removes them)"
    else
        mkube_log "no cluster running from $data"
    fi
    rm -f "$pidfile"
    exit 0
fi

scripts/setup.sh
timeout 30 docker info >/dev/null 2>&1 || mkube_die "Docker does not answer ('docker info'); start dockerd first"
mkube_log "building images"
images/build.sh --quiet
scripts/registry.sh start
docker push -q localhost:5000/hello:1 >/dev/null
mkube_log "pushed localhost:5000/hello:1"

mkdir -p "$data"
if running; then
    mkube_log "cluster already running (pid $(cat "$pidfile"))"
else
    mkube_log "starting a one-node cluster (log: $data/mkube.log)"
    nohup .venv/bin/mkube up --data-dir "$data" --port "$port" --kubelet-port "$kubelet_port" \
        ${node_args[@]+"${node_args[@]}"} >"$data/mkube.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 600); do
        grep -q "one-node cluster ready" "$data/mkube.log" 2>/dev/null && break
        running || { cat "$data/mkube.log" >&2; mkube_die "mkube up exited"; }
        sleep 0.1
    done
    grep -q "one-node cluster ready" "$data/mkube.log" || mkube_die "cluster not ready after 60 s (see $data/mkube.log)"
    grep "ready in" "$data/mkube.log" >&2
fi

set -x
$mkubectl get deployment hello >/dev/null 2>&1 || $mkubectl create -f manifests/hello.yaml
$mkubectl get service hello >/dev/null 2>&1 || $mkubectl expose deployment hello --port 80 --type NodePort
$mkubectl rollout status deployment/hello --timeout 120s
$mkubectl get pods -o wide
$mkubectl get service hello
set +x
nodeport=$($mkubectl get service hello -o jsonpath='{.spec.ports[0].nodePort}')
mkube_log "curl http://127.0.0.1:$nodeport/"
for _ in $(seq 50); do
    if out=$(curl -fsS "http://127.0.0.1:$nodeport/" 2>/dev/null); then
        printf '%s\n' "$out" | grep -o 'Hello from [^<]*'
        mkube_log "demo done. Try: export KUBECONFIG=$KUBECONFIG; $mkubectl get all"
        mkube_log "stop it with: scripts/demo.sh down"
        exit 0
    fi
    sleep 0.2
done
mkube_die "the NodePort $nodeport did not answer"
