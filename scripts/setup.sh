#!/usr/bin/env bash
# Prepare this machine for mkube: Debian packages (busybox-static, docker-registry,
# postgresql, iproute2; python3.11 + venv if needed; their services are not started),
# a Python 3.11 venv in .venv with `pip install -e '.[test]'`. Idempotent and quick
# when everything is in place (pip runs again only when pyproject.toml changed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh

need=(busybox-static docker-registry postgresql iproute2)
if ! command -v python3.11 >/dev/null 2>&1; then
    need+=(python3.11 python3.11-venv)
elif ! python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need+=(python3.11-venv)
fi
mkube_ensure_packages "${need[@]}"
command -v python3.11 >/dev/null 2>&1 || mkube_die "python3.11 is not on PATH"

if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    mkube_log ".venv is not Python 3.11; recreating it"
    rm -rf .venv
fi
[ -x .venv/bin/python ] || python3.11 -m venv .venv
stamp=.venv/.mkube-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! .venv/bin/python -c 'import mkube' 2>/dev/null; then
    PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install -q -e '.[test]'
    touch "$stamp"
fi
