"""Label and field selectors, with the string syntax and semantics of Kubernetes.

Label selectors (k8s.io/apimachinery/pkg/labels):

    app=web,tier!=db,env in (prod, staging),track notin (canary),gpu,!legacy,replicas>2

A `Selector` is an AND of `Requirement`s; the empty selector matches everything and
`Selector.nothing()` (what a nil LabelSelector means) matches nothing. Requirements are
kept sorted by key, so `str(selector)` is the canonical form Kubernetes prints.

Field selectors (k8s.io/apimachinery/pkg/fields): `metadata.name=x,spec.nodeName!=y`;
only `=`, `==` and `!=`; each kind supports a fixed set of fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mkube.api.names import is_label_value, is_qualified_name

# Operators (the Kubernetes selection.Operator strings).
IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"

_SET_OPS = {IN, NOT_IN}
_EXACT_OPS = {EQUALS, DOUBLE_EQUALS, NOT_EQUALS}


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: `key op values`."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        # gt / lt: the label must hold an integer
        if self.key not in labels:
            return False
        try:
            have, want = int(labels[self.key]), int(self.values[0])
        except ValueError:
            return False
        return have > want if op == GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.op
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op in _SET_OPS:
            return f"{self.key} {op} ({','.join(sorted(self.values))})"
        sym = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{sym}{self.values[0] if self.values else ''}"


def new_requirement(key: str, op: str, values: Iterable[str] = ()) -> Requirement:
    """A checked requirement (key a qualified name, values valid label values); ValueError otherwise."""
    vals = tuple(values)
    errs = [f"key: Invalid value: {key!r}: {m}" for m in is_qualified_name(key)]
    if op in _SET_OPS:
        if not vals:
            errs.append("values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty")
    elif op in _EXACT_OPS:
        if len(vals) != 1:
            errs.append(f"values: Invalid value: {list(vals)}: exact-match compatibility requires one single value")
    elif op in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(f"values: Invalid value: {list(vals)}: values set must be empty for exists and does not exist")
    elif op in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(f"values: Invalid value: {list(vals)}: for 'Gt', 'Lt' operators, exactly one value is required")
        else:
            try:
                int(vals[0])
            except ValueError:
                errs.append(f"values[0]: Invalid value: {vals[0]!r}: for 'Gt', 'Lt' operators, the value must be an integer")
    else:
        errs.append(f"operator: Unsupported value: {op!r}")
    if op not in (GREATER_THAN, LESS_THAN):
        for i, v in enumerate(vals):
            errs.extend(f"values[{i}][{key}]: Invalid value: {v!r}: {m}" for m in is_label_value(v))
    if errs:
        raise ValueError("unable to parse requirement: " + "; ".join(errs))
    if op in _SET_OPS:
        vals = tuple(sorted(set(vals)))
    return Requirement(key, op, vals)


class Selector:
    """An AND of requirements. Immutable; `matches(labels)` is the hot path (controllers, lists)."""

    __slots__ = ("requirements", "_nothing")

    def __init__(self, requirements: Iterable[Requirement] = (), nothing: bool = False) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def everything(cls) -> Selector:
        return cls()

    @classmethod
    def nothing(cls) -> Selector:
        """The selector of a nil LabelSelector: matches no object."""
        return cls(nothing=True)

    def empty(self) -> bool:
        """True when this selector matches everything."""
        return not self._nothing and not self.requirements

    def is_nothing(self) -> bool:
        return self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        lbls = labels or {}
        return all(r.matches(lbls) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"Selector({str(self)!r})" if not self._nothing else "Selector.nothing()"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Selector) and self._nothing == other._nothing
                and self.requirements == other.requirements)

    def __hash__(self) -> int:
        return hash((self._nothing, self.requirements))

    def to_label_selector(self) -> dict[str, Any]:
        """The LabelSelector wire dict (matchLabels for =/==, matchExpressions for the rest).

        Raises ValueError for `!=`, `>`, `<` terms, which a LabelSelector cannot express.
        """
        match_labels: dict[str, str] = {}
        exprs: list[dict[str, Any]] = []
        for r in self.requirements:
            if r.op in (EQUALS, DOUBLE_EQUALS):
                match_labels[r.key] = r.values[0]
            elif r.op in _SET_OPS:
                exprs.append({"key": r.key, "operator": "In" if r.op == IN else "NotIn", "values": list(r.values)})
            elif r.op == EXISTS:
                exprs.append({"key": r.key, "operator": "Exists"})
            elif r.op == DOES_NOT_EXIST:
                exprs.append({"key": r.key, "operator": "DoesNotExist"})
            else:
                raise ValueError(f"{str(r)!r} cannot be expressed as a LabelSelector")
        out: dict[str, Any] = {}
        if match_labels:
            out["matchLabels"] = match_labels
        if exprs:
            out["matchExpressions"] = exprs
        return out


# ---------------------------------------------------------------- label selector string syntax

_SPECIAL = "=!(),<>"
_WS = " \t\r\n"
_SYMBOLS = ("!=", "==", "=", "!", "(", ")", ",", "<", ">")

# token kinds
_ID, _END, _SYM = "identifier", "end of string", "symbol"


def _lex(s: str) -> list[tuple[str, str]]:
    toks: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in _WS:
            i += 1
            continue
        if c in _SPECIAL:
            for sym in _SYMBOLS:
                if s.startswith(sym, i):
                    toks.append((_SYM, sym))
                    i += len(sym)
                    break
            continue
        j = i
        while j < n and s[j] not in _WS and s[j] not in _SPECIAL:
            j += 1
        toks.append((_ID, s[i:j]))
        i = j
    toks.append((_END, ""))
    return toks


class _Parser:
    def __init__(self, s: str) -> None:
        self.toks = _lex(s)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.pos]

    def take(self) -> tuple[str, str]:
        tok = self.toks[self.pos]
        if tok[0] != _END:
            self.pos += 1
        return tok

    @staticmethod
    def found(tok: tuple[str, str]) -> str:
        return f"found '{tok[1] if tok[0] != _END else 'end of string'}'"

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok = self.peek()
            if tok[0] == _END:
                return reqs
            if tok[0] == _ID or tok == (_SYM, "!"):
                reqs.append(self.requirement())
                nxt = self.take()
                if nxt[0] == _END:
                    return reqs
                if nxt != (_SYM, ","):
                    raise ValueError(f"{self.found(nxt)}, expected: ',' or 'end of string'")
                after = self.peek()
                if after[0] != _ID and after != (_SYM, "!"):
                    raise ValueError(f"{self.found(after)}, expected: identifier after ','")
            else:
                raise ValueError(f"{self.found(tok)}, expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        negate = False
        tok = self.take()
        if tok == (_SYM, "!"):
            negate = True
            tok = self.take()
        if tok[0] != _ID:
            raise ValueError(f"{self.found(tok)}, expected: identifier")
        key = tok[1]
        nxt = self.peek()
        if negate or nxt[0] == _END or nxt == (_SYM, ","):
            if negate and not (nxt[0] == _END or nxt == (_SYM, ",")):
                raise ValueError(f"{self.found(nxt)}, expected: ',' or 'end of string'")
            return new_requirement(key, DOES_NOT_EXIST if negate else EXISTS)
        op_tok = self.take()
        if op_tok == (_ID, "in") or op_tok == (_ID, "notin"):
            return new_requirement(key, op_tok[1], self.set_values())
        symbol_ops = {"=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS, ">": GREATER_THAN, "<": LESS_THAN}
        if op_tok[0] == _SYM and op_tok[1] in symbol_ops:
            return new_requirement(key, symbol_ops[op_tok[1]], [self.exact_value()])
        raise ValueError(f"{self.found(op_tok)}, expected: =, !=, ==, in, notin, >, <")

    def exact_value(self) -> str:
        tok = self.peek()
        if tok[0] == _END or tok == (_SYM, ","):
            return ""
        tok = self.take()
        if tok[0] == _ID:
            return tok[1]
        raise ValueError(f"{self.found(tok)}, expected: identifier")

    def set_values(self) -> list[str]:
        tok = self.take()
        if tok != (_SYM, "("):
            raise ValueError(f"{self.found(tok)}, expected: '('")
        values: list[str] = []
        tok = self.peek()
        if tok == (_SYM, ")"):
            self.take()
            return [""]
        if tok[0] != _ID and tok != (_SYM, ","):
            raise ValueError(f"{self.found(tok)}, expected: ',', ')' or identifier")
        expect_value = True
        while True:
            tok = self.take()
            if tok[0] == _ID:
                if not expect_value:
                    raise ValueError(f"{self.found(tok)}, expected: ',' or ')'")
                values.append(tok[1])
                expect_value = False
            elif tok == (_SYM, ","):
                if expect_value:
                    values.append("")  # "a,,b" and "(,a)" carry empty values, as in Kubernetes
                expect_value = True
            elif tok == (_SYM, ")"):
                if expect_value:
                    values.append("")
                return values
            else:
                raise ValueError(f"{self.found(tok)}, expected: ',', ')' or identifier")


def parse_selector(s: str | None) -> Selector:
    """Parse the string form of a label selector. Empty/None -> everything. ValueError on bad syntax."""
    if not s or not s.strip():
        return Selector()
    return Selector(_Parser(s).parse())


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """The selector `k1=v1,k2=v2` of a plain map (a Service's spec.selector). Empty map -> everything."""
    return Selector(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())


_EXPR_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_label_selector(ls: Mapping[str, Any] | Any | None) -> Selector:
    """A `LabelSelector` (wire dict or model) as a Selector, like metav1.LabelSelectorAsSelector.

    None -> matches nothing; `{}` -> matches everything. ValueError on an invalid selector.
    """
    if ls is None:
        return Selector.nothing()
    if not isinstance(ls, Mapping):
        ls = ls.to_dict()
    reqs: list[Requirement] = []
    for k, v in (ls.get("matchLabels") or {}).items():
        reqs.append(new_requirement(k, EQUALS, [v]))
    for expr in ls.get("matchExpressions") or []:
        op = _EXPR_OPS.get(expr.get("operator", ""))
        if op is None:
            raise ValueError(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(new_requirement(expr.get("key", ""), op, expr.get("values") or []))
    return Selector(reqs)


def selector_to_string(ls: Mapping[str, Any] | Any | None) -> str:
    """The canonical string of a LabelSelector (`app=web,tier in (a,b)`); "" for None or empty."""
    if ls is None:
        return ""
    return str(selector_from_label_selector(ls))


def label_selector_matches(ls: Mapping[str, Any] | Any | None, labels: Mapping[str, str] | None) -> bool:
    """Whether a LabelSelector (wire dict or model) selects these labels; None selects nothing."""
    return selector_from_label_selector(ls).matches(labels)


def format_labels(labels: Mapping[str, str] | None) -> str:
    """`k=v,k2=v2` sorted by key, or `<none>` (labels.FormatLabels)."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


# ---------------------------------------------------------------- field selectors

_COMMON_NAMESPACED = frozenset({"metadata.name", "metadata.namespace"})
_COMMON_CLUSTER = frozenset({"metadata.name"})

FIELDS_BY_KIND: dict[str, frozenset[str]] = {
    "Pod": _COMMON_NAMESPACED | {
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"},
    "Node": _COMMON_CLUSTER | {"spec.unschedulable"},
    "Namespace": _COMMON_CLUSTER | {"status.phase"},
    "Secret": _COMMON_NAMESPACED | {"type"},
    "Event": _COMMON_NAMESPACED | {
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type"},
    "ReplicaSet": _COMMON_NAMESPACED | {"status.replicas"},
    "Service": _COMMON_NAMESPACED | {"spec.clusterIP", "spec.type"},
    "Deployment": _COMMON_NAMESPACED,
    "Endpoints": _COMMON_NAMESPACED,
    "ConfigMap": _COMMON_NAMESPACED,
    "Lease": _COMMON_NAMESPACED,
}

# Fields whose Go type is bool or int: a missing value reads as the zero value.
_ZERO_DEFAULTS = {"spec.hostNetwork": "false", "spec.unschedulable": "false", "status.replicas": "0"}
# Fields whose selector name is not their path in the object.
_FIELD_PATHS = {"source": ("source", "component"), "reportingComponent": ("reportingComponent",)}


def supported_fields(kind: str, namespaced: bool = True) -> frozenset[str]:
    """The field selector labels a kind supports (metadata.name/namespace for unknown kinds)."""
    return FIELDS_BY_KIND.get(kind, _COMMON_NAMESPACED if namespaced else _COMMON_CLUSTER)


@dataclass(frozen=True)
class FieldRequirement:
    """One term of a field selector: `field=value` or `field!=value`."""

    field: str
    op: str  # "=" or "!="
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.op}{_escape(self.value)}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """The string a field selector compares for `field` of a wire dict ("" when missing)."""
    cur: Any = obj
    for part in _FIELD_PATHS.get(field) or field.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return _ZERO_DEFAULTS.get(field, "")
        cur = cur[part]
    if cur is None:
        return _ZERO_DEFAULTS.get(field, "")
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


class FieldSelector:
    """An AND of `field=value` / `field!=value` terms over a wire dict."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        self.requirements = tuple(requirements)

    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for r in self.requirements:
            equal = field_value(obj, r.field) == r.value
            if equal != (r.op == "="):
                return False
        return True

    def requires(self, field: str) -> str | None:
        """The value an `=` term pins `field` to, if any (lets the server narrow a list by index)."""
        for r in self.requirements:
            if r.field == field and r.op == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_unescaped(s: str, sep: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(v: str) -> str:
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if c == "\\":
            if i + 1 >= len(v) or v[i + 1] not in "\\,=":
                raise ValueError(f"invalid field selector: {v!r}: invalid escape sequence")
            out.append(v[i + 1])
            i += 2
            continue
        if c in ",=":
            raise ValueError(f"invalid field selector: {v!r}: unescaped {c!r}")
        out.append(c)
        i += 1
    return "".join(out)


def parse_field_selector(s: str | None, kind: str | None = None, namespaced: bool = True) -> FieldSelector:
    """Parse `a=b,c!=d`. With `kind`, reject fields the kind does not support:
    ValueError("field label not supported: X")."""
    if not s or not s.strip():
        return FieldSelector()
    allowed = supported_fields(kind, namespaced) if kind else None
    reqs: list[FieldRequirement] = []
    for term in _split_unescaped(s, ","):
        if not term.strip():
            continue
        split = _split_term(term)
        if split is None:
            raise ValueError(f"invalid field selector: {term!r}: expected '=', '==' or '!='")
        field, op, raw = split
        field = field.strip()
        if not field:
            raise ValueError(f"invalid field selector: {term!r}: empty field name")
        if allowed is not None and field not in allowed:
            raise ValueError(f"field label not supported: {field}")
        reqs.append(FieldRequirement(field, op, _unescape(raw)))
    return FieldSelector(reqs)


def _split_term(term: str) -> tuple[str, str, str] | None:
    """Split at the first unescaped operator, scanning left to right (fields.splitTerm)."""
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for sym in ("!=", "==", "="):
            if term.startswith(sym, i):
                return term[:i], "!=" if sym == "!=" else "=", term[i + len(sym):]
        i += 1
    return None
