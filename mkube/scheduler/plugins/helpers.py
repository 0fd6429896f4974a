"""Shared pieces of the plugins: toleration matching and score normalisation."""

from __future__ import annotations

from collections.abc import Iterable

from mkube.api.types import Taint, Toleration
from mkube.scheduler.framework import MAX_NODE_SCORE


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Kubernetes' Toleration.ToleratesTaint: an empty effect or key matches any;
    operator Exists ignores the value, Equal (the default) compares it."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    op = toleration.operator or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.value or "") == (taint.value or "")
    return False


def tolerated(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def taint_text(taint: Taint) -> str:
    """`{key: value}` as kube-scheduler prints a taint in reasons."""
    return f"{{{taint.key}: {taint.value or ''}}}"


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """Scale scores in place to 0..100 by the highest (kube's DefaultNormalizeScore);
    with `reverse`, the highest raw score becomes 0 and a raw 0 becomes 100."""
    top = max(scores, default=0)
    if top <= 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    if reverse:
        scores[:] = [MAX_NODE_SCORE - MAX_NODE_SCORE * s // top for s in scores]
    else:
        scores[:] = [MAX_NODE_SCORE * s // top for s in scores]
