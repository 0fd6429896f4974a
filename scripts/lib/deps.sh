# shellcheck shell=bash
# Shared helpers for mkube's shell scripts. Source it; it defines functions only.

# mkube_log MSG...: one line on stderr, prefixed with the calling script's name.
mkube_log() {
    printf '%s: %s\n' "${MKUBE_LOG_PREFIX:-$(basename "$0")}" "$*" >&2
}

# mkube_die MSG...: log and exit 1.
mkube_die() {
    mkube_log "error: $*"
    exit 1
}

# mkube_as_root CMD...: run CMD as root (directly, or through passwordless sudo).
# Fails with a clear message when neither is possible.
mkube_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        mkube_die "need root to run: $* (run as root or configure passwordless sudo)"
    fi
}

# mkube_missing_packages PKG...: print the Debian packages among PKG that are not installed.
mkube_missing_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            printf '%s\n' "$pkg"
        fi
    done
}

# mkube_ensure_packages PKG...: install the Debian packages among PKG that are missing.
# Runs `apt-get update` at most once per process, and never starts the packages'
# system services (docker-registry, postgresql): tests and scripts start their own
# instances with their own configuration and data directories.
_MKUBE_APT_UPDATED=0
mkube_ensure_packages() {
    local missing
    missing=$(mkube_missing_packages "$@")
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null 2>&1 \
        || mkube_die "missing packages: $(echo "$missing" | tr '\n' ' ')and no apt-get on this machine"
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    mkube_log "installing Debian packages:" $missing
    if [ "$_MKUBE_APT_UPDATED" -eq 0 ]; then
        mkube_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _MKUBE_APT_UPDATED=1
    fi
    # policy-rc.d exit 101 = "action forbidden": invoke-rc.d and deb-systemd-invoke then
    # install the services without starting them. Only add it when none exists, and
    # remove exactly the file we created.
    local policy=/usr/sbin/policy-rc.d created_policy=0 rc=0
    if [ ! -e "$policy" ]; then
        mkube_as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        created_policy=1
    fi
    # shellcheck disable=SC2086
    mkube_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        $missing >/dev/null || rc=$?
    if [ "$created_policy" -eq 1 ]; then
        mkube_as_root rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || mkube_die "apt-get install failed (exit $rc)"
}

# mkube_http_ok URL: true when URL answers HTTP 2xx within 3 seconds.
mkube_http_ok() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O /dev/null -T 3 "$1" 2>/dev/null
    else
        busybox wget -q -O /dev/null -T 3 "$1" 2>/dev/null
    fi
}
