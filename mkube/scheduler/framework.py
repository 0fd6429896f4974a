"""The scheduling framework: plugin protocols, profiles and the pure `schedule_one`.

`schedule_one(pod, snapshot, profile, start_index, rng)` decides where one pod goes and
does nothing else: no I/O, no cache changes, no binding (the scheduler injects those).
Like kube-scheduler it
1. runs each filter plugin's optional `pre_filter` once per pod (Skip drops the plugin
   for this pod, a rejection makes the pod unschedulable everywhere);
2. filters nodes, cheapest plugin first, starting at `start_index` (round robin over
   cycles) and stopping once `num_feasible_nodes_to_find` feasible nodes are found;
3. scores the feasible nodes with each score plugin, normalises to 0-100, weights and
   sums; ties are broken by `rng` (uniformly among the best, so a seeded rng reproduces runs).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from mkube.api.types import Pod
from mkube.scheduler.nodeinfo import HostPort, NodeInfo, PodInfo, Snapshot
from mkube.scheduler.status import SKIP, SUCCESS, Code, Status

__all__ = [
    "Code", "FilterPlugin", "FitError", "HostPort", "NodeInfo", "PodInfo", "Profile", "ScheduleResult",
    "SchedulingError", "ScorePlugin", "Snapshot", "Status", "MAX_NODE_SCORE", "num_feasible_nodes_to_find",
    "schedule_one",
]

MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
MIN_CHUNK = 16  # nodes filtered per batch at least (see _find_feasible)
BASE_PERCENTAGE_OF_NODES_TO_SCORE = 50
NO_NODES_MESSAGE = "no nodes available to schedule pods"


@runtime_checkable
class FilterPlugin(Protocol):
    """Says whether a pod fits a node. May also define `pre_filter(pod) -> Status`:
    SKIP (nothing to check for this pod), SUCCESS, or a rejection for every node; and
    `filter_all(pod, nodes) -> list[NodeInfo] | None`: the nodes that pass, in order, in
    one call (None: "ask `filter` node by node"); it must agree with `filter`, which
    still gives the reasons for the nodes it leaves out."""

    name: str

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        """SUCCESS (the module constant) or a rejection with its reason(s)."""
        ...


@runtime_checkable
class ScorePlugin(Protocol):
    """Ranks feasible nodes. May also define `pre_score(pod, nodes, snapshot) -> Status`
    (SKIP: contributes nothing for this pod), `score_nodes(pod, nodes) -> list[int]` (the
    same as `score` for each node, in one call: no per-node call overhead) and
    `normalize(pod, scores)` that rewrites the raw scores in place to 0..MAX_NODE_SCORE;
    without it raw scores must be 0..100."""

    name: str
    weight: int

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        ...


@dataclass
class Profile:
    """The plugins of one scheduler profile, filters in the order they run."""

    filters: Sequence[FilterPlugin]
    scores: Sequence[ScorePlugin]
    #: 0 = adaptive (50% at 100 nodes down to 5%, at least 100 nodes), else a fixed percentage.
    percentage_of_nodes_to_score: int = 0
    scheduler_name: str = "default-scheduler"


@dataclass
class ScheduleResult:
    """Where the pod goes, and how much of the cluster was looked at to decide."""

    node_name: str
    evaluated_nodes: int
    feasible_nodes: int
    next_start_index: int
    score: int = 0


class SchedulingError(Exception):
    """A plugin failed (Error status or exception): retry the pod with backoff."""


@dataclass
class FitError(Exception):
    """No node fits. `message` is kube-scheduler's summary, e.g.
    "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient memory."
    """

    pod_key: str
    num_all_nodes: int
    #: node name -> why it was rejected (every node was evaluated when no node fits)
    statuses: Mapping[str, Status] = field(default_factory=dict)
    pre_filter_message: str = ""
    next_start_index: int = 0

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def reason_counts(self) -> Counter[str]:
        """How many nodes gave each reason (a node with two reasons counts for both)."""
        return Counter(reason for st in self.statuses.values() for reason in st.reasons)

    @property
    def message(self) -> str:
        if self.num_all_nodes == 0:
            return NO_NODES_MESSAGE
        text = f"0/{self.num_all_nodes} nodes are available:"
        if self.pre_filter_message:
            # Every node carries the pre-filter's status too; kube-scheduler prints it once.
            return f"{text} {self.pre_filter_message}."
        # kube-scheduler sorts the "<count> <reason>" strings as strings.
        histogram = sorted(f"{count} {reason}" for reason, count in self.reason_counts().items())
        if histogram:
            text += f" {', '.join(histogram)}."
        return text

    def __str__(self) -> str:
        return self.message


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough (kube's percentageOfNodesToScore).

    Below 100 nodes: all. Otherwise `percentage` of them (adaptive when 0: 50% minus
    1% per 125 nodes, at least 5%), and never fewer than 100.
    """
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage <= 0:
        percentage = max(BASE_PERCENTAGE_OF_NODES_TO_SCORE - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE)
    percentage = min(percentage, 100)
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def _error(plugin: object, status: Status) -> SchedulingError:
    return SchedulingError(f"plugin {getattr(plugin, 'name', plugin)!s}: {status.message}")


def _reject(plugin: FilterPlugin, pod: PodInfo, nodes: Sequence[NodeInfo],
            failed: dict[str, Status]) -> list[NodeInfo]:
    """Run `plugin.filter` node by node; record rejections; return the nodes that pass."""
    check = plugin.filter
    passed = []
    for ni in nodes:
        st = check(pod, ni)
        if st is SUCCESS or st.code is Code.SUCCESS:
            passed.append(ni)
        elif st.code is Code.ERROR:
            raise _error(plugin, st)
        else:
            failed[ni.name] = st
    return passed


def _find_feasible(pod: PodInfo, ordered: tuple[NodeInfo, ...], filters: Sequence[FilterPlugin], want: int,
                   failed: dict[str, Status]) -> tuple[list[NodeInfo], int]:
    """The first `want` nodes of `ordered` that pass every filter, and how many nodes of
    `ordered` that took (exactly what checking node by node and stopping at the `want`th
    feasible node gives). Works in chunks so that plugins with `filter_all` test a whole
    chunk in one call; a node's reasons come from `filter` when it is rejected."""
    feasible: list[NodeInfo] = []
    pos = 0
    n = len(ordered)
    while pos < n and len(feasible) < want:
        room = want - len(feasible)
        chunk = ordered[pos:pos + max(room, MIN_CHUNK)]
        survivors: Sequence[NodeInfo] = chunk
        for plugin in filters:
            batch = getattr(plugin, "filter_all", None)
            passed = batch(pod, survivors) if batch is not None else None
            if passed is None:
                survivors = _reject(plugin, pod, survivors, failed)
            else:
                if len(passed) != len(survivors):
                    kept = {id(ni) for ni in passed}
                    dropped = [ni for ni in survivors if id(ni) not in kept]
                    if _reject(plugin, pod, dropped, failed):
                        raise SchedulingError(f"plugin {plugin.name}: filter_all and filter disagree")
                survivors = passed
            if not survivors:
                break
        if len(survivors) > room:
            survivors = list(survivors[:room])
            pos += chunk.index(survivors[-1]) + 1
        else:
            pos += len(chunk)
        feasible.extend(survivors)
    return feasible, pos


def schedule_one(pod: Pod | PodInfo, snapshot: Snapshot, profile: Profile, start_index: int = 0,
                 rng: random.Random | None = None) -> ScheduleResult | FitError:
    """Pick a node for `pod` in `snapshot` (pure; see the module docstring).

    Returns a ScheduleResult, or a FitError when no node fits. Raises SchedulingError
    when a plugin reports an Error. Without `rng`, ties go to the first node scanned.
    """
    pinfo = pod if isinstance(pod, PodInfo) else PodInfo(pod)
    nodes = snapshot.nodes
    n = len(nodes)
    if n == 0:
        return FitError(pinfo.key, 0)
    start = start_index % n

    filters: list[FilterPlugin] = []
    for plugin in profile.filters:
        pre = getattr(plugin, "pre_filter", None)
        if pre is not None:
            st: Status = pre(pinfo)
            if st.code is Code.SKIP:
                continue
            if st.code is Code.ERROR:
                raise _error(plugin, st)
            if st.rejected:
                return FitError(pinfo.key, n, {ni.name: st for ni in nodes}, st.message, start)
        filters.append(plugin)

    want = num_feasible_nodes_to_find(n, profile.percentage_of_nodes_to_score)
    failed: dict[str, Status] = {}
    feasible, processed = _find_feasible(pinfo, nodes[start:] + nodes[:start], filters, want, failed)
    next_start = (start + processed) % n

    if not feasible:
        return FitError(pinfo.key, n, failed, "", next_start)
    if len(feasible) == 1:
        return ScheduleResult(feasible[0].name, processed, 1, next_start)

    totals = [0] * len(feasible)
    for splugin in profile.scores:
        pre_score = getattr(splugin, "pre_score", None)
        if pre_score is not None:
            pst: Status = pre_score(pinfo, feasible, snapshot)
            if pst is SKIP or pst.code is Code.SKIP:
                continue
            if pst.code is not Code.SUCCESS:
                raise _error(splugin, pst)
        batch = getattr(splugin, "score_nodes", None)
        if batch is not None:
            raw = batch(pinfo, feasible)
        else:
            score = splugin.score
            raw = [score(pinfo, ni) for ni in feasible]
        normalize = getattr(splugin, "normalize", None)
        if normalize is not None:
            normalize(pinfo, raw)
        weight = splugin.weight
        totals = [t + s * weight for t, s in zip(totals, raw, strict=True)]

    best_score = max(totals)
    best = totals.index(best_score)
    if rng is not None:
        ties = [i for i, s in enumerate(totals) if s == best_score]
        if len(ties) > 1:
            best = ties[rng.randrange(len(ties))]
    return ScheduleResult(feasible[best].name, processed, len(feasible), next_start, best_score)
