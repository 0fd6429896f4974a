"""YAML and JSON text exactly as kubectl writes it.

kubectl turns objects into JSON (Go's encoding/json: sorted keys, 4-space indent, `<>&`
escaped as \\u003c...) and YAML through sigs.k8s.io/yaml (go-yaml v2: keys in go-yaml's
"natural" order; strings that would read back as another type in double quotes; strings
that cannot be plain in single quotes; multi-line strings as literal blocks; 80 columns).
PyYAML's emitter is a port of the same libyaml emitter, so only the resolver, the key
order and the quoting choice need adjusting here.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"

# go-yaml v2 resolve.go: the words that read as something other than a string.
_RESOLVE_MAP: dict[str, str] = {}
for _words, _tag in (
    (("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
      "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), _BOOL),
    (("", "~", "null", "Null", "NULL"), _NULL),
    ((".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
      "-.inf", "-.Inf", "-.INF"), _FLOAT),
    (("<<",), _MERGE),
):
    for _w in _words:
        _RESOLVE_MAP[_w] = _tag

_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_BASE60_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_TIMESTAMP_RE = re.compile(
    r"^\d{4}-\d{1,2}-\d{1,2}(?:[Tt ]\d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?(?:Z|[-+]\d{2}:\d{2})?)?$")
_GO_INT = re.compile(r"^[-+]?(?:0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[0-9]+)$")


def go_resolve(value: str) -> str:
    """The tag go-yaml v2 gives a plain scalar `value` (resolve.go `resolve("", value)`)."""
    if value in _RESOLVE_MAP:
        return _RESOLVE_MAP[value]
    first = value[0]
    if first == ".":
        try:
            float(value)
            return _FLOAT
        except ValueError:
            return _STR
    if first in "+-0123456789":
        if _TIMESTAMP_RE.match(value):
            return _TIMESTAMP
        plain = value.replace("_", "")
        if _GO_INT.match(plain):
            return _INT
        if _YAML_STYLE_FLOAT.match(plain):
            return _FLOAT
    return _STR


def _needs_double_quotes(value: str) -> bool:
    return go_resolve(value) != _STR or bool(_BASE60_FLOAT.match(value))


def go_key_less(a: str, b: str) -> bool:
    """go-yaml v2's map key order (keyList.Less): letters after other runes, digit runs
    compared as numbers ("a9" < "a10")."""
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            continue
        al, bl = ca.isalpha(), cb.isalpha()
        if al and bl:
            return ca < cb
        if al or bl:
            return bl
        an = bn = 0
        if ca == "0" or cb == "0":
            j = i - 1
            while j >= 0 and a[j].isdigit():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdigit():
            an = an * 10 + int(a[ai])
            ai += 1
        bi = i
        while bi < len(b) and b[bi].isdigit():
            bn = bn * 10 + int(b[bi])
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ca < cb
    return len(a) < len(b)


def _cmp(x: tuple[Any, Any], y: tuple[Any, Any]) -> int:
    a, b = str(x[0]), str(y[0])
    if go_key_less(a, b):
        return -1
    if go_key_less(b, a):
        return 1
    return 0


def go_float(f: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64): shortest digits, exponent form outside [1e-4, 1e21)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0"
    r = repr(f)
    sign = "-" if r.startswith("-") else ""
    r = r.lstrip("-")
    if "e" in r:
        mant, exp_s = r.split("e")
        exp = int(exp_s)
        intpart, _, frac = mant.partition(".")
        digits = intpart + frac
    else:
        intpart, _, frac = r.partition(".")
        if frac == "0":
            frac = ""
        if intpart != "0":
            digits, exp = intpart + frac, len(intpart) - 1
        else:
            stripped = frac.lstrip("0")
            digits, exp = stripped, -(len(frac) - len(stripped)) - 1
    digits = digits.rstrip("0") or "0"
    if exp < -4 or exp >= 21:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp >= 0:
        if len(digits) <= exp + 1:
            return sign + digits + "0" * (exp + 1 - len(digits))
        return sign + digits[:exp + 1] + "." + digits[exp + 1:]
    return sign + "0." + "0" * (-exp - 1) + digits


class _GoDumper(yaml.SafeDumper):
    """SafeDumper with go-yaml v2's resolver, key order and string styles."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:  # type: ignore[override]
        if kind is ScalarNode and implicit[0]:
            return go_resolve(value) if value else _NULL
        return super().resolve(kind, value, implicit)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style: str | None = None
    if "\n" in data:
        style = "|"
    elif _needs_double_quotes(data):
        style = '"'
    return dumper.represent_scalar(_STR, data, style=style)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    items = sorted(data.items(), key=functools.cmp_to_key(_cmp))
    return dumper.represent_mapping("tag:yaml.org,2002:map", items)


def _represent_float(dumper: yaml.SafeDumper, data: float) -> yaml.Node:
    if math.isnan(data):
        text = ".nan"
    elif math.isinf(data):
        text = ".inf" if data > 0 else "-.inf"
    else:
        text = go_float(data)
    return dumper.represent_scalar(_FLOAT, text)


_GoDumper.add_representer(str, _represent_str)
_GoDumper.add_representer(dict, _represent_dict)
_GoDumper.add_representer(float, _represent_float)


def to_yaml(obj: Any) -> str:
    """YAML as `kubectl get -o yaml` prints it (ends with a newline)."""
    return yaml.dump(obj, Dumper=_GoDumper, default_flow_style=False, allow_unicode=True,
                     sort_keys=False, width=80, indent=2)


def _escape_html(text: str) -> str:
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _go_json_value(obj: Any) -> Any:
    # Floats that are whole numbers print without ".0" in Go.
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 1e21:
        return int(obj)
    if isinstance(obj, dict):
        return {k: _go_json_value(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_go_json_value(v) for v in obj]
    return obj


def to_json(obj: Any, indent: int | None = 4) -> str:
    """JSON as Go's json.MarshalIndent(obj, "", "    ") writes it (no trailing newline)."""
    if indent is None:
        text = json.dumps(_go_json_value(obj), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    else:
        text = json.dumps(_go_json_value(obj), ensure_ascii=False, sort_keys=True, indent=indent)
    return _escape_html(text)


def to_compact_json(obj: Any) -> str:
    """Compact JSON with sorted keys (Go's json.Marshal), e.g. for annotations."""
    return to_json(obj, indent=None)
