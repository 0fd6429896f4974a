"""NodeAffinity: spec.nodeSelector and required node affinity (filter); preferred node
affinity (score: the sum of the weights of the matching terms, normalised).

Selector semantics are Kubernetes': terms are ORed, the requirements of a term ANDed,
an empty term matches nothing; In/NotIn/Exists/DoesNotExist/Gt/Lt on labels (NotIn and
DoesNotExist match when the label is missing; Gt/Lt compare integers), and
matchFields on `metadata.name` (In/NotIn).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mkube.api.types import NodeSelectorRequirement, NodeSelectorTerm
from mkube.scheduler.framework import NodeInfo, PodInfo, Snapshot
from mkube.scheduler.plugins.helpers import default_normalize
from mkube.scheduler.status import SKIP, SUCCESS, Status, unresolvable

REASON = "node(s) didn't match Pod's node affinity/selector"
_REJECT = unresolvable(REASON)

Matcher = Callable[[NodeInfo], bool]


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _label_matcher(req: NodeSelectorRequirement) -> Matcher:
    key, op, values = req.key, req.operator, tuple(req.values or ())
    if op == "In":
        allowed = frozenset(values)
        return lambda n: key in n.labels and n.labels[key] in allowed
    if op == "NotIn":
        banned = frozenset(values)
        return lambda n: n.labels.get(key) not in banned if key in n.labels else True
    if op == "Exists":
        return lambda n: key in n.labels
    if op == "DoesNotExist":
        return lambda n: key not in n.labels
    if op in ("Gt", "Lt"):
        bound = _int(values[0]) if len(values) == 1 else None
        if bound is None:
            return lambda n: False

        def compare(n: NodeInfo) -> bool:
            value = _int(n.labels[key]) if key in n.labels else None
            if value is None:
                return False
            return value > bound if op == "Gt" else value < bound

        return compare
    return lambda n: False  # unknown operator: validation rejects it; match nothing


def _field_matcher(req: NodeSelectorRequirement) -> Matcher:
    names = frozenset(req.values or ())
    if req.key != "metadata.name" or req.operator not in ("In", "NotIn"):
        return lambda n: False
    if req.operator == "In":
        return lambda n: n.name in names
    return lambda n: n.name not in names


def compile_term(term: NodeSelectorTerm) -> Matcher:
    """A node predicate for one term (all requirements must hold; empty: none match)."""
    checks = [_label_matcher(r) for r in term.match_expressions or ()]
    checks += [_field_matcher(r) for r in term.match_fields or ()]
    if not checks:
        return lambda n: False
    if len(checks) == 1:
        return checks[0]
    return lambda n: all(c(n) for c in checks)


def compile_terms(terms: Sequence[NodeSelectorTerm]) -> Matcher:
    """A node predicate for a NodeSelector: any term matches."""
    matchers = [compile_term(t) for t in terms]
    if len(matchers) == 1:
        return matchers[0]
    return lambda n: any(m(n) for m in matchers)


def _required(pod: PodInfo) -> Matcher | None:
    """The pod's nodeSelector AND required affinity as one predicate (None: no constraint)."""
    memo = pod.state.get("NodeAffinity/required", False)
    if memo is not False:
        return memo  # type: ignore[no-any-return]
    spec = pod.pod.spec
    checks: list[Matcher] = []
    if spec.node_selector:
        wanted = tuple(spec.node_selector.items())
        checks.append(lambda n: all(n.labels.get(k) == v for k, v in wanted))
    na = spec.affinity.node_affinity if spec.affinity else None
    required = na.required_during_scheduling_ignored_during_execution if na else None
    if required is not None:
        checks.append(compile_terms(required.node_selector_terms))
    matcher: Matcher | None
    if not checks:
        matcher = None
    elif len(checks) == 1:
        matcher = checks[0]
    else:
        matcher = lambda n: all(c(n) for c in checks)  # noqa: E731
    pod.state["NodeAffinity/required"] = matcher
    return matcher


def _preferred(pod: PodInfo) -> list[tuple[int, Matcher]]:
    memo = pod.state.get("NodeAffinity/preferred")
    if memo is not None:
        return memo  # type: ignore[no-any-return]
    spec = pod.pod.spec
    na = spec.affinity.node_affinity if spec.affinity else None
    terms = (na.preferred_during_scheduling_ignored_during_execution if na else None) or ()
    out = [(t.weight, compile_term(t.preference)) for t in terms
           if t.weight and (t.preference.match_expressions or t.preference.match_fields)]
    pod.state["NodeAffinity/preferred"] = out
    return out


class NodeAffinity:
    name = "NodeAffinity"
    weight = 2

    def __init__(self, weight: int = 2) -> None:
        self.weight = weight

    def pre_filter(self, pod: PodInfo) -> Status:
        return SUCCESS if _required(pod) is not None else SKIP

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        matcher = _required(pod)
        if matcher is None or matcher(node):
            return SUCCESS
        return _REJECT

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo], snapshot: Snapshot) -> Status:
        return SUCCESS if _preferred(pod) else SKIP

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        return sum(w for w, m in _preferred(pod) if m(node))

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores)
