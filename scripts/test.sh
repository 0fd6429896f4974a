#!/usr/bin/env bash
# Run mkube's test suite: .venv/bin/python -m pytest -q [PYTEST ARGS...]
# The README and .ci/run both call this. Exit status is pytest's (5: no tests ran).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    echo "scripts/test.sh: no .venv; create it with:" >&2
    echo "  python3.11 -m venv .venv && .venv/bin/pip install -e '.[test]'" >&2
    exit 2
fi
exec .venv/bin/python -m pytest -q "$@"
