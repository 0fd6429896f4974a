"""kubectl's JSONPath templates (`-o jsonpath=...`), as in client-go's util/jsonpath.

Supported: text outside braces; `{.a.b}`, `{.items[*].metadata.name}`, `{.items[0]}`,
`{.items[-1:]}`, `{.items[0:2]}`, `{.items[0,2]}`, `{['a.b']}`, `{.metadata.labels.app\\.kubernetes\\.io/name}`,
`{..name}` (recursive), `{.*}` (wildcard), filters `[?(@.type=="Ready")]` (==, !=, <, >,
<=, >= and existence), `{range .items[*]}...{end}` (nested), literals `{"\\n"}`, `@`, `$`.

Printing follows kubectl: the results of one `{...}` are joined by a space; strings print
raw, numbers and booleans as Go prints them, maps and lists as compact JSON. Missing keys
print nothing (kubectl enables allowMissingKeys); an out-of-range index is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mkube.kubectl.encoding import go_float, to_compact_json


class JsonPathError(ValueError):
    """A template that does not parse or cannot be executed; the message says why."""


# ---------------------------------------------------------------- nodes

@dataclass
class _Field:
    names: list[str]  # several for a union ['a','b']


@dataclass
class _Index:
    # (start, end, step); end None = to the end; single=True for [n]
    slices: list[tuple[int | None, int | None, int | None, bool]]


@dataclass
class _Wildcard:
    pass


@dataclass
class _Recursive:
    pass


@dataclass
class _Root:
    pass


@dataclass
class _Literal:
    value: Any


@dataclass
class _Filter:
    left: list[Any]
    op: str | None
    right: list[Any] | None


Expr = list[Any]


@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    expr: Expr


@dataclass
class _Range:
    expr: Expr
    body: list[Any] = field(default_factory=list)


# ---------------------------------------------------------------- parsing

_NAME_STOP = set(".[] \t\n,{}()@$=!<>'\"|&")
_OPS = ("==", "!=", "<=", ">=", "<", ">")


def _unquote(body: str, quote: str) -> str:
    out: list[str] = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0",
               "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            if nxt == "u" and i + 6 <= len(body):
                try:
                    out.append(chr(int(body[i + 2:i + 6], 16)))
                    i += 6
                    continue
                except ValueError:
                    pass
            out.append(nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _read_quoted(s: str, i: int) -> tuple[str, int]:
    """The string literal starting at s[i] (a quote) and the index after it."""
    quote = s[i]
    j = i + 1
    while j < len(s):
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == quote:
            return _unquote(s[i + 1:j], quote), j + 1
        j += 1
    raise JsonPathError(f"unterminated quoted string in {s!r}")


def _matching(s: str, i: int, open_: str, close: str) -> int:
    """Index of the bracket closing the one at s[i], skipping quoted strings."""
    depth = 0
    j = i
    while j < len(s):
        c = s[j]
        if c in "'\"":
            _, j = _read_quoted(s, j)
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise JsonPathError(f"unclosed {open_!r} in {s!r}")


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise JsonPathError(f"invalid array index {text.strip()!r}") from None


def _parse_bracket(inner: str) -> Any:
    inner = inner.strip()
    if inner.startswith("?"):
        body = inner[1:].strip()
        if not (body.startswith("(") and body.endswith(")")):
            raise JsonPathError(f"invalid filter [{inner}]")
        return _parse_filter(body[1:-1])
    if inner == "*":
        return _Wildcard()
    if inner[:1] in "'\"":
        names: list[str] = []
        i = 0
        while i < len(inner):
            if inner[i] in "'\"":
                name, i = _read_quoted(inner, i)
                names.append(name)
            elif inner[i] in ", \t":
                i += 1
            else:
                raise JsonPathError(f"invalid field list [{inner}]")
        return _Field(names)
    slices: list[tuple[int | None, int | None, int | None, bool]] = []
    for part in inner.split(","):
        if ":" in part:
            bits = part.split(":")
            if len(bits) > 3:
                raise JsonPathError(f"invalid slice [{inner}]")
            start = _parse_int(bits[0]) if bits[0].strip() else None
            end = _parse_int(bits[1]) if bits[1].strip() else None
            step = _parse_int(bits[2]) if len(bits) == 3 and bits[2].strip() else None
            slices.append((start, end, step, False))
        else:
            slices.append((_parse_int(part), None, None, True))
    return _Index(slices)


def _parse_filter(body: str) -> _Filter:
    i = 0
    while i < len(body):
        c = body[i]
        if c in "'\"":
            _, i = _read_quoted(body, i)
            continue
        for op in _OPS:
            if body.startswith(op, i):
                return _Filter(_parse_expr(body[:i]), op, _parse_expr(body[i + len(op):]))
        i += 1
    return _Filter(_parse_expr(body), None, None)


def _parse_expr(s: str) -> Expr:
    nodes: Expr = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c in " \t\n" or c == "@":
            i += 1
        elif c == "$":
            nodes.append(_Root())
            i += 1
        elif c in "'\"":
            text, i = _read_quoted(s, i)
            nodes.append(_Literal(text))
        elif c == "[":
            j = _matching(s, i, "[", "]")
            nodes.append(_parse_bracket(s[i + 1:j]))
            i = j + 1
        elif c == ".":
            if i + 1 < n and s[i + 1] == ".":
                nodes.append(_Recursive())
                i += 1  # the second dot starts the field that follows (`..name`)
                continue
            i += 1
            if i < n and s[i] == "*":
                nodes.append(_Wildcard())
                i += 1
                continue
            name: list[str] = []
            while i < n and s[i] not in _NAME_STOP:
                if s[i] == "\\" and i + 1 < n:
                    name.append(s[i + 1])
                    i += 2
                    continue
                name.append(s[i])
                i += 1
            if name:
                nodes.append(_Field(["".join(name)]))
        elif c == "-" or c.isdigit():
            j = i + 1
            while j < n and (s[j].isdigit() or s[j] == "."):
                j += 1
            text = s[i:j]
            try:
                nodes.append(_Literal(float(text) if "." in text else int(text)))
            except ValueError:
                raise JsonPathError(f"invalid number {text!r}") from None
            i = j
        elif s.startswith("true", i) or s.startswith("false", i):
            value = s.startswith("true", i)
            nodes.append(_Literal(value))
            i += 4 if value else 5
        else:
            raise JsonPathError(f"unrecognized character in action: {c!r} in {s!r}")
    return nodes


def _tokens(template: str) -> Iterator[_Text | _Action | str | _Range]:
    i = 0
    n = len(template)
    while i < n:
        j = template.find("{", i)
        if j < 0:
            yield _Text(template[i:])
            return
        if j > i:
            yield _Text(template[i:j])
        k = _matching(template, j, "{", "}")
        action = template[j + 1:k].strip()
        if action == "end":
            yield "end"
        elif action == "range" or action.startswith(("range ", "range\t")):
            yield _Range(_parse_expr(action[5:]))
        else:
            yield _Action(_parse_expr(action))
        i = k + 1


def parse(template: str) -> list[Any]:
    """The template as a tree of text, actions and ranges. Raises JsonPathError."""
    root: list[Any] = []
    stack: list[list[Any]] = [root]
    for tok in _tokens(template):
        if tok == "end":
            if len(stack) == 1:
                raise JsonPathError("not in range, nothing to end")
            stack.pop()
        elif isinstance(tok, _Range):
            stack[-1].append(tok)
            stack.append(tok.body)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise JsonPathError("unclosed range: missing {end}")
    return root


# ---------------------------------------------------------------- evaluation

def _eval(expr: Expr, cur: Any, root: Any) -> list[Any]:
    values = [cur]
    for node in expr:
        values = _step(node, values, root)
    return values


def _step(node: Any, values: list[Any], root: Any) -> list[Any]:
    out: list[Any] = []
    if isinstance(node, _Root):
        return [root]
    if isinstance(node, _Literal):
        return [node.value]
    if isinstance(node, _Field):
        for v in values:
            if isinstance(v, dict):
                out.extend(v[name] for name in node.names if name in v)
        return out
    if isinstance(node, _Wildcard):
        for v in values:
            if isinstance(v, dict):
                out.extend(v[k] for k in sorted(v))
            elif isinstance(v, list):
                out.extend(v)
        return out
    if isinstance(node, _Recursive):
        for v in values:
            out.extend(_descendants(v))
        return out
    if isinstance(node, _Index):
        for v in values:
            if isinstance(v, list):
                for sl in node.slices:
                    out.extend(_slice(v, sl))
        return out
    if isinstance(node, _Filter):
        for v in values:
            if isinstance(v, list):
                out.extend(item for item in v if _filter_ok(node, item, root))
        return out
    raise JsonPathError(f"unsupported node {node!r}")


def _descendants(v: Any) -> list[Any]:
    children: list[Any] = []
    if isinstance(v, dict):
        children = [v[k] for k in sorted(v)]
    elif isinstance(v, list):
        children = list(v)
    if not children:
        return []
    out = [v]
    for c in children:
        out.extend(_descendants(c))
    return out


def _slice(v: list[Any], sl: tuple[int | None, int | None, int | None, bool]) -> list[Any]:
    start, end, step, single = sl
    length = len(v)
    s = start or 0
    if s < 0:
        s += length
    if single:
        if s < 0 or s >= length:
            raise JsonPathError(f"array index out of bounds: index {start}, length {length}")
        return [v[s]]
    e = length if end is None else end
    if e < 0:
        e += length
    if e == s:
        return []
    if s >= length or s < 0:
        raise JsonPathError(f"array index out of bounds: index {s}, length {length}")
    if e > length or e < 0:
        raise JsonPathError(f"array index out of bounds: index {e - 1}, length {length}")
    if s > e:
        raise JsonPathError(f"starting index {s} is greater than ending index {e}")
    return v[s:e:step or 1]


def _filter_ok(node: _Filter, item: Any, root: Any) -> bool:
    left = _eval(node.left, item, root)
    if node.op is None:
        return bool(left)
    right = _eval(node.right or [], item, root)
    if not left or not right:
        return False
    a, b = left[0], right[0]
    try:
        if node.op == "==":
            return bool(_norm(a) == _norm(b))
        if node.op == "!=":
            return bool(_norm(a) != _norm(b))
        if node.op == "<":
            return bool(a < b)
        if node.op == ">":
            return bool(a > b)
        if node.op == "<=":
            return bool(a <= b)
        return bool(a >= b)
    except TypeError:
        raise JsonPathError(f"cannot compare {a!r} with {b!r}") from None


def _norm(v: Any) -> Any:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


def format_value(v: Any) -> str:
    """One result as kubectl prints it."""
    if isinstance(v, dict | list):
        return to_compact_json(v)
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return go_float(v)
    return str(v)


def _run(nodes: list[Any], cur: Any, root: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Action):
            out.append(" ".join(format_value(v) for v in _eval(node.expr, cur, root)))
        elif isinstance(node, _Range):
            for item in _eval(node.expr, cur, root):
                _run(node.body, item, root, out)


def execute(template: str | list[Any], data: Any) -> str:
    """Render `template` (text or the result of `parse`) against `data`."""
    nodes = parse(template) if isinstance(template, str) else template
    out: list[str] = []
    _run(nodes, data, data, out)
    return "".join(out)


def find(expr: str, data: Any) -> list[Any]:
    """The values one expression (`.spec.replicas`, `{.a}`) selects (custom columns)."""
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text and text[0] not in ".[$@":
        text = "." + text
    return _eval(_parse_expr(text), data, data)
