#!/usr/bin/env bash
# Run mkube's test suite on this machine: scripts/test.sh [PYTEST ARGS...]
# Sets the machine up first (scripts/setup.sh: packages, .venv), builds the test images
# and starts the local registry on localhost:5000 if none answers (stopped at exit).
# The README and .ci/run both call this. Exit status is pytest's (5: no tests ran).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
if [ -z "${MKUBE_TEST_NO_REGISTRY:-}" ] && ! scripts/registry.sh status >/dev/null 2>&1; then
    registry_dir=$(mktemp -d "${TMPDIR:-/tmp}/mkube-test-registry.XXXXXX")
    trap 'MKUBE_REGISTRY_DIR="$registry_dir" scripts/registry.sh stop >/dev/null 2>&1 || true; rm -rf "$registry_dir"' EXIT
    MKUBE_REGISTRY_DIR="$registry_dir" scripts/registry.sh start
fi
images/build.sh --quiet --push localhost:5000
rc=0
.venv/bin/python -m pytest -q "$@" || rc=$?
exit "$rc"
