"""Go-style durations on the command line: `30s`, `5m`, `1h30m`, `500ms`, `0`."""

from __future__ import annotations

import re

from mkube.kubectl.errors import CommandError

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds of a Go duration string (time.ParseDuration). Raises CommandError."""
    s = text.strip()
    if s in ("0", ""):
        return 0.0
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    total = 0.0
    pos = 0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise CommandError(f'invalid duration "{text}"' if s and not s[-1].isdigit() else
                           f'time: missing unit in duration "{text}"')
    return sign * total
