#!/bin/sh
# Pod infra process: sleep until SIGTERM, SIGINT or SIGHUP, then exit 0 at once.
# PID 1 ignores signals it has no handler for, hence the trap; the sleep runs in the
# background so that `wait` (interrupted by the trapped signal) returns immediately.
trap 'exit 0' TERM INT HUP
while :; do
    sleep 86400 &
    wait $!
done
